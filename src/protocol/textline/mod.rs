//! Text-line GSR (Arduino / Grove style): one ASCII sample per line. Pure: no I/O, no clock;
//! time comes in as `now` (seconds on the caller's monotonic clock).
//!
//! Spec, provenance tags and golden vectors: `firmware-protocols/text-lines/SPEC.md` and
//! `vectors.json`; the reference sketch is `reference-sketch/attune_gsr.ino`. **Nothing here has
//! been checked against real hardware**: every vector is `DERIVED` (computed from the formula and
//! the layout below), none is `HW`.
//!
//! # Sources
//!
//! - `VENDOR` Seeed Grove-GSR wiki (`wiki.seeedstudio.com/Grove-GSR_Sensor`, source file
//!   `docs/Sensor/Grove/Grove_Sensors/Biometric/Grove-GSR_Sensor.md` of Seeed-Studio/wiki-documents
//!   at commit `1829eea6`): the sketch runs `Serial.begin(9600)`, sums ten `analogRead(A0)` with
//!   `delay(5)` between them, prints the integer mean with `Serial.println`; the potentiometer is
//!   trimmed until the reading is 512 while the sensor is *not* worn; "Human Resistance =
//!   ((1024+2*Serial_Port_Reading)*10000)/(512-Serial_Port_Reading), unit is ohm", the reading being
//!   "between 0~1023". Nothing paces the sketch beyond the 50 ms of delays (about 18 lines/s by
//!   arithmetic, not measured).
//! - `VENDOR` Arduino AVR core `cores/arduino/Print.cpp`: `println()` ends a line with `"\r\n"`;
//!   `print(double)` prints two decimals and `nan`, `inf` or `ovf` for unprintable values (so a
//!   fork printing a float can send those words: they are bad lines here).
//! - `VENDOR` Arduino `millis()` reference: an `unsigned long` of ms since the program started that
//!   "will overflow (go back to zero), after approximately 50 days" (2³² ms ≈ 49.7 days); on 16 MHz
//!   AVRs some values are skipped (±2 ms of jitter, well inside the 1.5-period jump rule).
//! - `3P` Seeed forum thread "Question on calculation of GSR sensor" (forum.seeedstudio.com
//!   `/t/question-on-calculation-of-gsr-sensor/5869`): a reply signed by Seeed support gives
//!   `((4096+2x)*10000)/(2048-x)` for a 12-bit ADC.
//! - `../shared/DEVICES.md` §6 (the team's reference): the line rules, the junk-at-start rule,
//!   the settings and the vectors this module implements.
//!
//! # Conversion `grove-gsr` (our reading)
//!
//! `R_Ω = ((full_scale + 2x)·10000)/(cal − x)`, `G_µS = 1e6/R_Ω` for `0 ≤ x < cal`; otherwise
//! the sample keeps its raw value with `Err(Invalid::OutOfRange)`, never clamped. The wiki's 1024
//! is read as the ADC's full scale (2¹⁰) and its 512 as the no-contact reading `cal`: with both
//! scaled together the formula depends only on `x/full_scale` and `cal/full_scale`, so a 12-bit
//! port (4096, 2048) gives the same resistance for the same voltage, which is what the `3P` forum
//! reply says. That reading is an inference, not a vendor statement. The forum's negative
//! resistances (x ≥ cal) are exactly the out-of-range case. Kinds `ohm` (the line carries R in Ω,
//! `G = 1e6/R`, valid for R > 0) and `us` (the line carries G in µS, valid for G ≥ 0) are for
//! forks that convert on the board.
//!
//! # Attune's extension: the `*HH` checksum
//!
//! Not in any vendor sketch: attune's own, decided for this protocol. A line may end in `*HH`, the
//! XOR of every byte of the line before the `*` as two hex digits (NMEA-0183 style, but over the
//! whole line). [`ChecksumMode`] says what the host does with it. A plain line cannot be checked:
//! a flipped bit can turn a digit into another digit (`SPEC.md` gives the measured share of
//! single-bit flips that plain lines catch).
//!
//! # Layout
//!
//! - [`mod@line`]: one line → sample / comment / bad, and the field splitter.
//! - [`host`]: [`TextlineHost`]: line assembly, the junk-at-start rule, timing and gaps.
//! - [`device`]: [`TextlineDevice`]: the reference sketch as a pure model, for the simulator.
//! - [`fuzz`]: the body of the cargo-fuzz target `fuzz/fuzz_targets/textline.rs`.

pub mod device;
mod fuzzing;
pub mod host;
pub mod line;

#[cfg(test)]
mod corruption;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use device::TextlineDevice;
pub use fuzzing::fuzz;
pub use host::TextlineHost;

use super::Invalid;
use crate::model::StreamKind;
use serde::{Deserialize, Serialize};

/// Longest line kept, bytes before the `\n` (a trailing `\r` counts). Longer lines are dropped.
pub const MAX_LINE: usize = 256;

/// Highest `rate_hz` accepted. A `millis,raw*HH\r\n` line is about 20 bytes, so 115 200 baud
/// carries roughly 570 lines/s at most.
pub const MAX_RATE_HZ: f64 = 1000.0;

/// Highest column index (`value_column`, `time_column`): a 256-byte line has at most 128 fields.
pub const MAX_COLUMN: usize = 127;

/// Longest run [`Settings::settle_lines`] may ask for (the host buffers the run).
pub const MAX_SETTLE_LINES: u32 = 16;

/// What the value column carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// A raw ADC reading `x`, converted with `grove-gsr` (module doc).
    #[default]
    Adc,
    /// Skin resistance in Ω, computed on the board.
    Ohm,
    /// Skin conductance in µS, computed on the board.
    Us,
}

impl ValueKind {
    /// The conversion id recorded with the data (`grove-gsr`, `ohm`, `us`).
    pub fn conversion(self) -> &'static str {
        match self {
            Self::Adc => "grove-gsr",
            Self::Ohm => "ohm",
            Self::Us => "us",
        }
    }
}

/// What the host does with the optional `*HH` suffix (attune's extension, module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumMode {
    /// Verify a suffix when there is one and accept lines without one, until a line with a
    /// correct checksum has been seen: from then on a line without one is a checksum failure.
    #[default]
    Auto,
    /// Every line must carry a correct checksum.
    Required,
    /// Never verify: a `*HH` suffix is removed unchecked. The simulated device prints none.
    Off,
}

/// Settings of the `textline` protocol (config table `[sources.serial.textline]`-style keys,
/// snake_case; every key is optional). Lines carry no rate, so `rate_hz` must be the sketch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Nominal line rate, Hz (default 20, the reference sketch's). In (0, 1000].
    pub rate_hz: f64,
    /// Field holding the sample, counted from 0 (default 0).
    pub value_column: usize,
    /// Field holding the device time in ms (`millis()`: u32, wraps at 2³²; going back means the
    /// board reset). Default: none, then lines are counted instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_column: Option<usize>,
    /// Tag the line must start with (such as `GSR:`); lines without it are other streams'
    /// lines and are ignored. Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// What the value column carries: `adc` (default), `ohm` or `us`.
    pub value: ValueKind,
    /// ADC reading with no skin contact (the wiki trims it to 512; default 512). `adc` only
    /// (and the simulated device's ADC for `ohm`/`us`).
    pub cal: f64,
    /// ADC full scale, the wiki's 1024 (default 1024; 4096 on 12-bit ports).
    pub full_scale: f64,
    /// `auto` (default), `required` or `off` (see [`ChecksumMode`]).
    pub checksum: ChecksumMode,
    /// Consecutive valid lines that end the start-up junk (default 3; 1..=16).
    pub settle_lines: u32,
    /// Seconds after open from which two consecutive valid lines are enough (default 2.0).
    pub settle_s: f64,
    /// Seconds after open without settling before the session fails (default 10.0; the host
    /// waits at least `2·(settle_lines + 1)/rate_hz` and `settle_s`, so slow sketches can settle).
    pub fail_after_s: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_hz: 20.0,
            value_column: 0,
            time_column: None,
            prefix: None,
            value: ValueKind::Adc,
            cal: 512.0,
            full_scale: 1024.0,
            checksum: ChecksumMode::Auto,
            settle_lines: 3,
            settle_s: 2.0,
            fail_after_s: 10.0,
        }
    }
}

impl Settings {
    /// Sets the nominal line rate (`--rate HZ`).
    pub fn set_rate(&mut self, hz: f64) -> Result<(), String> {
        if hz.is_finite() && hz > 0.0 && hz <= MAX_RATE_HZ {
            self.rate_hz = hz;
            Ok(())
        } else {
            Err(format!(
                "textline: the rate must be the sketch's line rate, in (0, {MAX_RATE_HZ}] Hz (got {hz})"
            ))
        }
    }

    /// The nominal line rate, Hz.
    pub fn rate_hz(&self) -> f64 {
        self.rate_hz
    }

    /// Checks the settings: one line naming the key if something is wrong.
    pub fn check(&self) -> Result<(), String> {
        let bad = |key: &str, why: String| Err(format!("textline: {key} {why}"));
        if !(self.rate_hz.is_finite() && self.rate_hz > 0.0 && self.rate_hz <= MAX_RATE_HZ) {
            return bad(
                "rate_hz",
                format!("must be in (0, {MAX_RATE_HZ}] (got {})", self.rate_hz),
            );
        }
        if self.value_column > MAX_COLUMN {
            return bad("value_column", format!("must be at most {MAX_COLUMN}"));
        }
        if let Some(t) = self.time_column {
            if t > MAX_COLUMN {
                return bad("time_column", format!("must be at most {MAX_COLUMN}"));
            }
            if t == self.value_column {
                return bad("time_column", "must differ from value_column".into());
            }
        }
        if let Some(p) = &self.prefix {
            let printable = p.bytes().all(|b| (0x20..=0x7e).contains(&b));
            let trimmed = !p.starts_with(' ') && !p.ends_with(' ');
            if p.is_empty() || p.len() > 32 || !printable || !trimmed {
                return bad("prefix", "must be 1-32 printable ASCII characters without leading or trailing spaces (omit the key for none)".into());
            }
            if p.starts_with('#') || p.contains('*') {
                return bad(
                    "prefix",
                    "must not start with '#' (comments) or contain '*' (checksums)".into(),
                );
            }
        }
        if !(self.full_scale.is_finite()
            && self.full_scale > 0.0
            && self.full_scale <= 16_777_216.0)
        {
            return bad(
                "full_scale",
                format!("must be in (0, 2^24] (got {})", self.full_scale),
            );
        }
        if !(self.cal.is_finite() && self.cal > 0.0 && self.cal <= self.full_scale) {
            return bad(
                "cal",
                format!("must be in (0, full_scale] (got {})", self.cal),
            );
        }
        if !(1..=MAX_SETTLE_LINES).contains(&self.settle_lines) {
            return bad("settle_lines", format!("must be in 1..={MAX_SETTLE_LINES}"));
        }
        if !(self.settle_s.is_finite() && (0.0..=60.0).contains(&self.settle_s)) {
            return bad(
                "settle_s",
                format!("must be in [0, 60] (got {})", self.settle_s),
            );
        }
        if !(self.fail_after_s.is_finite()
            && self.fail_after_s > 0.0
            && self.fail_after_s <= 3600.0)
        {
            return bad(
                "fail_after_s",
                format!("must be in (0, 3600] (got {})", self.fail_after_s),
            );
        }
        Ok(())
    }

    /// The stream kinds: one EDA channel.
    pub fn kinds(&self) -> Vec<StreamKind> {
        vec![StreamKind::Eda]
    }

    /// A host session for a freshly opened port (start-up junk rule on).
    pub fn host(&self) -> TextlineHost {
        TextlineHost::new(self)
    }

    /// A simulated device running the reference sketch with these settings.
    pub fn device(&self) -> TextlineDevice {
        TextlineDevice::new(self)
    }

    /// Seconds after open at which a host that has not settled fails: `fail_after_s`, but never
    /// less than `settle_s` or two periods per line of the settling run.
    pub fn fail_deadline_s(&self) -> f64 {
        let run = 2.0 * (f64::from(self.settle_lines) + 1.0) / self.rate_hz;
        self.fail_after_s.max(self.settle_s).max(run)
    }

    /// The value column's number in the channel's unit (µS), or why not.
    pub fn convert(&self, raw: f64) -> Result<f64, Invalid> {
        match self.value {
            ValueKind::Adc => grove_gsr_ohm(raw, self.cal, self.full_scale).map(|r| 1e6 / r),
            ValueKind::Ohm if raw > 0.0 && raw.is_finite() => Ok(1e6 / raw),
            ValueKind::Us if raw >= 0.0 && raw.is_finite() => Ok(raw),
            _ => Err(Invalid::OutOfRange),
        }
    }

    /// ADC bit depth when the value is an ADC reading and `full_scale` is a power of two.
    pub fn adc_bits(&self) -> Option<u8> {
        let fs = self.full_scale;
        let bits = fs.log2().round();
        (self.value == ValueKind::Adc && (1.0..=24.0).contains(&bits) && bits.exp2() == fs)
            .then_some(bits as u8)
    }
}

/// Skin resistance, Ω, from an ADC reading (`grove-gsr`, module doc): `Err(OutOfRange)` unless
/// `0 ≤ x < cal`.
pub fn grove_gsr_ohm(x: f64, cal: f64, full_scale: f64) -> Result<f64, Invalid> {
    if x >= 0.0 && x < cal {
        Ok((full_scale + 2.0 * x) * 10_000.0 / (cal - x))
    } else {
        Err(Invalid::OutOfRange)
    }
}

/// The ADC reading (not rounded) that gives `us` µS under `grove-gsr`: the inverse of
/// [`grove_gsr_ohm`], `x = (100·cal − full_scale·G)/(100 + 2G)`. `cal` for G ≤ 0 or NaN
/// (no contact), `-full_scale/2` for G = +∞.
pub fn grove_gsr_adc(us: f64, cal: f64, full_scale: f64) -> f64 {
    if us.is_nan() || us <= 0.0 {
        cal
    } else if us.is_infinite() {
        -full_scale / 2.0
    } else {
        (100.0 * cal - full_scale * us) / (100.0 + 2.0 * us)
    }
}

/// XOR of `bytes`: the `*HH` checksum of a line body.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}
