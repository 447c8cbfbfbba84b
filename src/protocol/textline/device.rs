//! The device side: the reference sketch (`reference-sketch/attune_gsr.ino`) as a pure model,
//! for the pty simulator and the in-memory tests.
//!
//! - It always streams (`streaming_rate() == Some(rate_hz)`) and ignores every byte the host
//!   sends, like the sketch (which never reads Serial).
//! - The first [`encode`](DeviceModel::encode) after creation or
//!   [`power_cycle`](DeviceModel::power_cycle) returns **two lines in one output**: the boot banner
//!   `# attune_gsr v1 <rate> Hz` and then the first sample line, as the sketch prints its banner
//!   in `setup()` right before the first sample. A simulator that flips a bit of one output may
//!   therefore hit the banner.
//! - A sample line: the optional prefix and a space, then the columns joined by `,`
//!   (`max(value_column, time_column) + 1` of them, unused ones `0`), then `*HH` unless
//!   `checksum` is `off`, then `\r\n` (`Serial.println`).
//! - The value: µS → ADC reading through the inverse of `grove-gsr` ([`grove_gsr_adc`]), rounded
//!   to an integer and **clamped to `0..=ceil(cal) − 1`** (a real ADC cannot read past the
//!   no-contact level, so the model never prints an out-of-range sample). `ohm` and `us` sketches
//!   convert that integer on the board and print R with 2 decimals or G with 4 (Arduino's
//!   `print(double, digits)` style).
//! - The time column is `millis()`: [`BOOT_MS`] (or [`TextlineDevice::with_start_ms`]) plus
//!   `round(n·1000/rate)` for the n-th sample since boot, printed mod 2³².

use super::{Settings, ValueKind, checksum, grove_gsr_adc, grove_gsr_ohm};
use crate::protocol::{DeviceModel, Physical};
use std::fmt::Write as _;

/// `millis()` at the first sample after boot (the sketch's `setup()` time; illustrative).
pub const BOOT_MS: u64 = 120;

/// The reference sketch (module doc).
#[derive(Debug, Clone)]
pub struct TextlineDevice {
    s: Settings,
    banner_due: bool,
    n: u64,
    start_ms: u64,
    line: String,
}

impl TextlineDevice {
    /// A device just powered on.
    pub fn new(s: &Settings) -> Self {
        Self {
            s: s.clone(),
            banner_due: true,
            n: 0,
            start_ms: BOOT_MS,
            line: String::new(),
        }
    }

    /// The same, with `millis()` at the first sample set to `ms` (to exercise the 2³² wrap).
    /// Applies until the next power cycle.
    pub fn with_start_ms(mut self, ms: u64) -> Self {
        self.start_ms = ms;
        self
    }

    /// The integer ADC reading the sketch would print for `us` µS (module doc).
    pub fn adc_for(&self, us: f64) -> f64 {
        let max = (self.s.cal.ceil() - 1.0).max(0.0);
        let x = grove_gsr_adc(us, self.s.cal, self.s.full_scale).round();
        // `+ 0.0` turns a rounded -0.0 into 0.0, which prints as `0`.
        if x.is_nan() {
            max
        } else {
            x.clamp(0.0, max) + 0.0
        }
    }

    /// Writes the checksum (unless off) and the line end, then moves the line to `out`.
    fn finish_line(&mut self, out: &mut Vec<u8>) {
        if self.s.checksum != super::ChecksumMode::Off {
            let sum = checksum(self.line.as_bytes());
            let _ = write!(self.line, "*{sum:02X}");
        }
        self.line.push_str("\r\n");
        out.extend_from_slice(self.line.as_bytes());
        self.line.clear();
    }
}

impl DeviceModel for TextlineDevice {
    fn on_host_bytes(&mut self, _bytes: &[u8], _reply: &mut Vec<u8>) {}

    fn streaming_rate(&self) -> Option<f64> {
        Some(self.s.rate_hz)
    }

    fn encode(&mut self, sample: &Physical, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.banner_due) {
            let _ = write!(self.line, "# attune_gsr v1 {} Hz", self.s.rate_hz);
            self.finish_line(out);
        }
        let x = self.adc_for(sample.eda_us);
        let ms = self.start_ms + (self.n as f64 * 1000.0 / self.s.rate_hz).round() as u64;
        self.n += 1;
        if let Some(p) = &self.s.prefix {
            let _ = write!(self.line, "{p} ");
        }
        let cols = self
            .s
            .time_column
            .map_or(self.s.value_column, |t| t.max(self.s.value_column));
        for i in 0..=cols {
            if i > 0 {
                self.line.push(',');
            }
            if i == self.s.value_column {
                let (cal, fs) = (self.s.cal, self.s.full_scale);
                let _ = match (self.s.value, grove_gsr_ohm(x, cal, fs)) {
                    (ValueKind::Ohm, Ok(r)) => write!(self.line, "{r:.2}"),
                    (ValueKind::Us, Ok(r)) => write!(self.line, "{:.4}", 1e6 / r),
                    _ => write!(self.line, "{x}"),
                };
            } else if Some(i) == self.s.time_column {
                let _ = write!(self.line, "{}", ms % (1 << 32));
            } else {
                self.line.push('0');
            }
        }
        self.finish_line(out);
    }

    fn power_cycle(&mut self) {
        self.banner_due = true;
        self.n = 0;
        self.start_ms = BOOT_MS;
    }
}
