//! BITalino (r)evolution over serial (Bluetooth Classic SPP or a USB-serial cable): settings,
//! the host session and the simulated device. Pure: no I/O, no clock.
//!
//! The spec, with the source of every fact and the golden vectors, is
//! `firmware-protocols/bitalino/SPEC.md` and `vectors.json`. In short:
//!
//! * **Start-up** ([`BitalinoHost`]): write `0x00` (stop, in case the device was left streaming),
//!   discard what arrives for 150 ms, write `0x07` and expect a line `BITalino_v<major>.<minor>`
//!   within 2 s (bytes before `BITalino` are skipped). Firmware 5 or later is an (r)evolution;
//!   anything older fails. Then the sample-rate command and the start command
//!   `(mask << 2) | 0x01`, each at least 150 ms after the previous command, as the vendor
//!   libraries pace them. Stop is `0x00`.
//! * **Frames** ([`frame`]): 3 to 8 bytes depending only on the number of channels, a 4-bit
//!   sequence number and a CRC-4, no channel ids and no timestamps ([`Frame::device_t`] is
//!   `None`; [`Frame::index`] counts sample instants, lost ones included).
//! * **Decoding** ([`Decoder`]): CRC and sequence checks, confirmation by the next frames,
//!   byte-wise resync; every loss is a [`Decoded::Gap`]. Detected: every single-bit flip (CRC-4),
//!   dropped bytes and whole-frame losses (seq); not always: bytes inserted inside a frame
//!   (about 1 in 20 yields one wrong sample, SPEC.md §5), losses of 16+ frames (counted mod 16).
//!
//! Sources: the firmware (`main.c`, `uart.c`, `live.c`, `timer.c`), cpp-api `bitalino.cpp` and
//! revolution-python-api `bitalino.py` (BITalinoWorld), as SPEC.md cites them. None of it has been
//! checked against a real device.
//! * **Settings** ([`Settings`]): the rate (1, 10, 100 or 1000 Hz), which inputs carry ECG or EDA,
//!   and the EDA transfer function (the published ones disagree; each has an id recorded with
//!   the data in [`ChannelInfo::conversion`]).
//!
//! **The 5th and 6th acquired channels are 6-bit** (the firmware sends `adc10 >> 4`): with five
//! or six inputs, the two highest-numbered ones lose 4 bits ([`ChannelInfo::bits`] is 6 for
//! them). Keep EDA and ECG among the first four acquired inputs.
//!
//! The BLE variant (same commands and frames over GATT notifications) is specified in SPEC.md
//! and not implemented.

mod decoder;
mod device;
pub mod frame;
pub mod fuzzing;
mod host;
#[cfg(test)]
mod tests;

pub use decoder::{DecodeStats, Decoder};
pub use device::{BitalinoDevice, State, parse_state};
pub use host::BitalinoHost;
#[cfg(test)]
use host::firmware_major;

use super::{ChannelInfo, Decoded, Host, HostOut, Invalid, Phase, Stats};
use crate::model::StreamKind;
use serde::{Deserialize, Serialize};
use std::fmt;

#[cfg(doc)]
use super::Frame;

/// The supply voltage the transfer functions assume, V (the (r)evolution's regulated 3.3 V).
pub const VCC: f64 = 3.3;
/// The rates the firmware can sample at, Hz, by command code (`code << 6 | 0x03`).
pub const RATES_HZ: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];
/// The pause the vendor libraries keep before every command, s (cpp-api: 150 ms).
pub const COMMAND_GAP_S: f64 = 0.15;
/// How long the host waits for the version line, s.
pub const VERSION_TIMEOUT_S: f64 = 2.0;
/// The command bytes.
pub mod cmd {
    /// Stop acquisition (in idle mode the firmware reads it as "battery threshold 0", i.e. its
    /// default 3.4 V).
    pub const STOP: u8 = 0x00;
    /// Ask for the version line.
    pub const VERSION: u8 = 0x07;
    /// Ask for the 16-byte state (firmware 5.1; 5.2 adds the PWM value: 17 bytes).
    pub const STATE: u8 = 0x0B;
    /// Set the sample rate: `code << 6 | RATE` with code 0..=3 for 1, 10, 100, 1000 Hz.
    pub const RATE: u8 = 0x03;
    /// Start live acquisition: `mask << 2 | START_LIVE`, mask bit i = input A(i+1).
    pub const START_LIVE: u8 = 0x01;
}

/// An analog input, `A1`..`A6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Input(u8);

impl Input {
    /// Input `A<number>` (1..=6).
    pub fn new(number: u8) -> Option<Self> {
        (1..=6).contains(&number).then_some(Self(number))
    }
    /// Its number, 1..=6.
    pub fn number(self) -> u8 {
        self.0
    }
    /// Its bit in the start command's channel mask.
    pub fn mask_bit(self) -> u8 {
        1 << (self.0 - 1)
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{}", self.0)
    }
}

impl TryFrom<String> for Input {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.strip_prefix('A')
            .and_then(|d| d.parse().ok())
            .and_then(Self::new)
            .ok_or_else(|| format!("unknown BITalino input \"{s}\" (the inputs are A1 to A6)"))
    }
}

impl From<Input> for String {
    fn from(i: Input) -> String {
        i.to_string()
    }
}

/// What a wired input carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// ECG sensor, converted to mV.
    Ecg,
    /// EDA sensor, converted to µS by the [`EdaFormula`].
    Eda,
}

impl Signal {
    /// The stream kind it feeds.
    pub fn kind(self) -> StreamKind {
        match self {
            Self::Ecg => StreamKind::Ecg,
            Self::Eda => StreamKind::Eda,
        }
    }
}

/// One wired input: `{input = "A3", kind = "eda"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wiring {
    /// The input, `A1`..`A6`.
    pub input: Input,
    /// What it carries.
    pub kind: Signal,
}

/// The EDA transfer function (SPEC.md §6: the published sources disagree). ADC is the raw
/// value, n its bit depth, VCC 3.3 V.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EdaFormula {
    /// `µS = (ADC/2ⁿ)·VCC/0.132`: 0–25 µS, the (r)evolution EDA manual v1.0 (2020) range (the
    /// formula is inferred from that range and the 0.132 constant).
    #[default]
    #[serde(rename = "rev-2020")]
    Rev2020,
    /// `µS = ((ADC/2ⁿ)·VCC − 0.574)/0.132`: the older (r)evolution datasheet (−4.4…21 µS).
    #[serde(rename = "rev-legacy")]
    RevLegacy,
    /// `µS = 1/(1 − ADC/2ⁿ)`: the original BITalino (2014).
    #[serde(rename = "bitalino-v1")]
    BitalinoV1,
}

impl EdaFormula {
    /// The id (`rev-2020`, `rev-legacy`, `bitalino-v1`).
    pub fn id(self) -> &'static str {
        match self {
            Self::Rev2020 => "rev-2020",
            Self::RevLegacy => "rev-legacy",
            Self::BitalinoV1 => "bitalino-v1",
        }
    }
}

/// How one channel's ADC value becomes a value in its kind's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `mV = (ADC/2ⁿ − 0.5)·VCC/1100·1000` (the ECG sensor's gain is 1100).
    Ecg,
    /// EDA by a formula.
    Eda(EdaFormula),
}

impl Conversion {
    /// The conversion for a signal.
    pub fn of(signal: Signal, eda: EdaFormula) -> Self {
        match signal {
            Signal::Ecg => Self::Ecg,
            Signal::Eda => Self::Eda(eda),
        }
    }

    /// The id recorded with the data (`bitalino-ecg`, `bitalino-eda-rev-2020`, ...).
    pub fn id(self) -> String {
        match self {
            Self::Ecg => "bitalino-ecg".to_owned(),
            Self::Eda(f) => format!("bitalino-eda-{}", f.id()),
        }
    }

    /// The value in the unit (mV, µS) of an ADC reading of `bits` bits. A conductance below 0
    /// (the legacy formula under ADC10 ≈ 178) is out of the formula's range: no value.
    pub fn to_unit(self, adc: f64, bits: u8) -> Result<f64, Invalid> {
        let x = adc / f64::from(1u32 << bits);
        let v = match self {
            Self::Ecg => return Ok((x - 0.5) * VCC / 1100.0 * 1000.0),
            Self::Eda(EdaFormula::Rev2020) => x * VCC / 0.132,
            Self::Eda(EdaFormula::RevLegacy) => (x * VCC - 0.574) / 0.132,
            Self::Eda(EdaFormula::BitalinoV1) => 1.0 / (1.0 - x),
        };
        if v >= 0.0 {
            Ok(v)
        } else {
            Err(Invalid::OutOfRange)
        }
    }

    /// The inverse: the 10-bit ADC reading (rounded, clamped to 0..=1023) for a value in the
    /// unit. What the simulated device sends.
    pub fn to_adc10(self, v: f64) -> u16 {
        let x = match self {
            Self::Ecg => v * 1100.0 / 1000.0 / VCC + 0.5,
            Self::Eda(EdaFormula::Rev2020) => v * 0.132 / VCC,
            Self::Eda(EdaFormula::RevLegacy) => (v * 0.132 + 0.574) / VCC,
            Self::Eda(EdaFormula::BitalinoV1) => 1.0 - 1.0 / v,
        };
        // `as` saturates and maps NaN to 0.
        (x * 1024.0).round().clamp(0.0, 1023.0) as u16
    }
}

/// BITalino settings: the `[sources.settings]` of a BITalino serial source, or the
/// `--protocol bitalino --rate HZ` shortcut.
///
/// ```toml
/// rate_hz = 1000                     # 1, 10, 100 or 1000
/// channels = [{input = "A2", kind = "ecg"}, {input = "A3", kind = "eda"}]
/// eda_formula = "rev-2020"           # rev-2020 | rev-legacy | bitalino-v1
/// ```
///
/// The default wiring, A2 = ECG and A3 = EDA, is where OpenSignals' own (r)evolution sample
/// recordings have their ECG and EDA (SPEC.md §7); check your kit. One to six distinct inputs;
/// the 5th and 6th acquired (the highest-numbered, when five or six are listed) are 6-bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Sampling rate, Hz: 1, 10, 100 or 1000.
    pub rate_hz: f64,
    /// The inputs to acquire and what each carries.
    pub channels: Vec<Wiring>,
    /// The EDA transfer function.
    pub eda_formula: EdaFormula,
}

impl Default for Settings {
    fn default() -> Self {
        let wire = |n, kind| Wiring {
            input: Input(n),
            kind,
        };
        Self {
            rate_hz: 1000.0,
            channels: vec![wire(2, Signal::Ecg), wire(3, Signal::Eda)],
            eda_formula: EdaFormula::default(),
        }
    }
}

impl Settings {
    /// Sets the sampling rate; one line naming the supported rates if `hz` is not one.
    pub fn set_rate(&mut self, hz: f64) -> Result<(), String> {
        rate_code(hz)?;
        self.rate_hz = hz;
        Ok(())
    }

    /// The nominal sampling rate, Hz.
    pub fn rate_hz(&self) -> f64 {
        self.rate_hz
    }

    /// Checks the settings: one line naming the key if something is wrong.
    pub fn check(&self) -> Result<(), String> {
        rate_code(self.rate_hz)?;
        if self.channels.is_empty() || self.channels.len() > frame::MAX_CHANNELS {
            return Err(format!(
                "bitalino channels: {} listed; list 1 to 6 inputs, e.g. \
                 [{{input = \"A3\", kind = \"eda\"}}]",
                self.channels.len()
            ));
        }
        for (i, w) in self.channels.iter().enumerate() {
            if self.channels[..i].iter().any(|o| o.input == w.input) {
                return Err(format!("bitalino channels: {} is listed twice", w.input));
            }
        }
        Ok(())
    }

    /// The stream kinds the device feeds, each once, in acquisition order.
    pub fn kinds(&self) -> Vec<StreamKind> {
        let mut kinds = Vec::new();
        for w in self.acquired() {
            if !kinds.contains(&w.kind.kind()) {
                kinds.push(w.kind.kind());
            }
        }
        kinds
    }

    /// A host session (after [`Settings::check`]).
    pub fn host(&self) -> BitalinoHost {
        BitalinoHost::new(self)
    }

    /// A simulated device that encodes these settings' wiring and EDA formula.
    pub fn device(&self) -> BitalinoDevice {
        BitalinoDevice::new(self)
    }

    /// The wired inputs in acquisition (ascending input) order, as the frames carry them.
    pub fn acquired(&self) -> Vec<Wiring> {
        let mut w = self.channels.clone();
        w.sort_by_key(|w| w.input);
        w.dedup_by_key(|w| w.input);
        w.truncate(frame::MAX_CHANNELS);
        w
    }

    /// The channel mask of the start command (bit i = input A(i+1)).
    pub fn mask(&self) -> u8 {
        self.channels.iter().fold(0, |m, w| m | w.input.mask_bit())
    }

    /// The channels as the host describes them, in acquisition order.
    pub fn channel_infos(&self) -> Vec<ChannelInfo> {
        self.acquired()
            .iter()
            .enumerate()
            .map(|(i, w)| ChannelInfo {
                input: w.input.to_string(),
                kind: w.kind.kind(),
                rate_hz: self.rate_hz,
                conversion: Conversion::of(w.kind, self.eda_formula).id(),
                bits: Some(frame::bits_at(i)),
            })
            .collect()
    }

    fn conversions(&self) -> Vec<Conversion> {
        self.acquired()
            .iter()
            .map(|w| Conversion::of(w.kind, self.eda_formula))
            .collect()
    }
}

/// The rate command code of `hz` (0..=3), or the line saying which rates exist.
fn rate_code(hz: f64) -> Result<u8, String> {
    RATES_HZ
        .iter()
        .position(|&r| r == hz)
        .map(|c| c as u8)
        .ok_or_else(|| {
            format!("bitalino rate_hz: {hz} Hz is not a BITalino rate (1, 10, 100 or 1000)")
        })
}

/// The fuzz entry (`fuzz/fuzz_targets/bitalino.rs`): `data` into a host past the start-up and
/// into one at its start, whole and in chunks, and the frame round trip ([`fuzzing`]).
pub fn fuzz(data: &[u8]) {
    fuzzing::stream_bytes(data);
    fuzzing::start_bytes(data);
    fuzzing::round_trip(data);
}

/// Decodes a whole capture of one acquisition (the bytes after the start command) with these
/// settings: what the raw-capture replay needs.
pub fn decode_capture(settings: &Settings, bytes: &[u8]) -> (Vec<Decoded>, DecodeStats) {
    let mut decoder = Decoder::new(settings.conversions());
    let mut out = Vec::new();
    decoder.feed(bytes, &mut out);
    decoder.finish(&mut out);
    (out, decoder.stats())
}
