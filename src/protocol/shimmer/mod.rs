//! Shimmer3 GSR+ running LogAndStream, over Bluetooth Classic SPP (`/dev/rfcommN`). Pure: bytes
//! and a time in seconds in, bytes, frames and gaps out.
//!
//! Spec, sources and golden vectors: `firmware-protocols/shimmer3-logandstream/SPEC.md` and
//! `vectors.json`; the first real device is checked with `HARDWARE_CHECK.md` there. Provenance
//! tags as in `shared/DEVICES.md`: `VENDOR` = ShimmerResearch `log-and-stream-common`
//! (`Comms/shimmer_bt_uart.{c,h}`, `CRC/`, `Sensing/`, `Boards/shimmer_boards.h`), `shimmer3`
//! (v0.11.0 `LogAndStream/main.c` at commit 53ad0f8, v0.15.000 at 372a4de, `hal_CRC.c`),
//! `shimmer-web-sdk` (`src/devices/shimmer3/protocol.ts`), the Java API's
//! `API_00025_Shimmer3rBtCrcGateTest`; `3P` = seemoo-lab/pyshimmer (tests, `dev/channels.py`).
//! **Nothing here has been checked against a device: there are no `HW` vectors.**
//!
//! # Units
//!
//! Timestamps: 32768 Hz device ticks in a u24 that wraps every 512 s; `Frame::device_t` is the
//! unwrapped tick count / 32768, in s, counted from the device clock's value (mod 2²⁴) at the
//! first packet (so the first `device_t` lies in 0..512 s). Rate: the device samples every
//! `ticks = round(32768 / rate_hz)` ticks (32..=32768, i.e. 1..=1024 Hz); [`Settings::rate_hz`]
//! reports 32768 / ticks. GSR: µS, conversion `shimmer-gsr-sdk` ([`gsr`]); the raw value kept
//! is the u16 with its range bits. ADC13 (PPG): mV = ADC · 3000 / 4095, conversion
//! `shimmer-adc-mv`, reported as the PPG stream's arbitrary units.
//!
//! # Start-up
//!
//! Each command waits for its ACK (`FF`, plus the CRC once the CRC is on) and reply, at most
//! [`host::TIMEOUT_S`] = 2 s; a NACK (`FE`) fails at once, naming the command:
//!
//! 1. `20` stop streaming: everything before the first `FF` is dropped (packets of a session
//!    that was left streaming). Set commands are refused while sensing on current firmware.
//! 2. `2E` → `FF 2F <fw_type u16> <major u16> <minor> <rel>`, searched for (the last packets of
//!    that session may trail the stop's ACK). `fw_type` must be 3 (LogAndStream) and the version
//!    at least v0.5.4 (3-byte timestamps, web SDK); with a CRC, at least v0.13.7.
//! 3. `3F` → `FF 25 <hw>`: 3 is a Shimmer3. A Shimmer3R (10, `HW_ID_SHIMMER3R`) sends 7 config
//!    bytes in its inquiry and other channel formats: not supported, the session fails naming it.
//! 4. `8B <1|2>` set the CRC (only if [`Settings::crc`] is on). Its own ACK carries the CRC.
//! 5. `05 <ticks u16 LE>`, `08 04 <01 if ppg> 00` (GSR = byte 0 bit 2, ADC13 = byte 1 bit 0),
//!    `21 <0..3, 4 = auto>`.
//! 6. `01` → `FF 02 <ticks u16> <config 4 B> <nCh> <buffer> <ids>`: the ticks, the GSR range
//!    in config byte 3 bits 1..3, and the channel set must be what was asked for; any other
//!    set, or an id of unknown size, fails naming them. The packet layout comes from it.
//! 7. `07` start streaming: [`Phase::Streaming`](crate::protocol::Phase) after its ACK.
//!
//! A status the device sends on its own (`[FF] 8A 71 <bits>`, on dock / undock / button) is
//! skipped wherever a reply is awaited. `stop()` writes `20`.
//!
//! # Streaming
//!
//! Dispatch on the first byte: `00` packet (fixed length from the inquiry), `FF 8A …` / `8A …`
//! in-stream response of known length (status `71` + 1 byte, battery `94` + 3 bytes; a note), a
//! lone `FF` ACK (ignored), anything else garbage: skipped one byte at a time and counted in
//! `Stats::bytes_skipped`. A packet is accepted only on complete data:
//!
//! - **Structure** (always): header `00`; every 12-bit ADC field < 4096; GSR bits 12..13 zero and,
//!   unless auto-range, range bits equal to the configured range; the CRC if on.
//! - **Timestamps**: with `d` = ticks since the last delivered packet (mod 2²⁴), `d` is "one period"
//!   if it is within ± min(16, ticks/4) ticks of `ticks`; `k` periods (k ≥ 2) means k − 1
//!   packets lost → `Gap { frames: k − 1, reason: SequenceJump }` (or the reason of the bytes
//!   skipped since). A packet exactly one period after the last is delivered at once. Without
//!   the CRC, any other packet (the first one, a jump, an odd step) is delivered only when the
//!   packet after it is exactly one period later: two consecutive consistent packets (this delays
//!   delivery by one packet after a loss). With the CRC, a packet that passes it is delivered at
//!   once if its step is a whole number of periods.
//! - **Alignment**: after a delivered packet the next item is expected at once. A complete
//!   candidate there that fails a check costs exactly its own bytes (`Stats::crc_errors` counts
//!   CRC failures) and the decoder stays aligned; elsewhere it slides one byte.
//! - A step that is not a whole number of periods, goes backwards, or follows more than 256 s of
//!   silence (the counter may have wrapped unseen) gives an `ambiguous` gap; the number of
//!   unseen wraps is the one that best fits the host clock (`now`).
//!
//! # Corruption (one flipped bit per packet)
//!
//! **CRC on** (`crc = "2"`, or `"1"`; recommended on firmware ≥ v0.13.7): every single-bit flip is
//! caught ([`crc`]: CRC-16, polynomial 0x1021, seed 0xB0CA, odd lengths padded with a zero byte,
//! over the whole packet, header included; checked exhaustively for both modes and both layouts
//! in the tests).
//! A flip in the header byte makes it garbage; any other flip fails the CRC. Either way the packet
//! is not delivered and the next good one reports it as a gap of exactly one frame.
//!
//! **CRC off** (the default: the firmware's state after every connect, what pyshimmer uses, and
//! the only mode v0.11.0 can be trusted in; Shimmer's Java API, by contrast, turns a 1-byte CRC
//! on from v0.13.7): no check covers the sample values. Caught: the header
//! byte, the unused high bits (4 of ADC13, 2 of GSR), the GSR range bits when the range is fixed,
//! and every timestamp bit worth more than the tolerance; not caught: the 12 ADC bits of each
//! channel, the GSR range bits in auto-range, and timestamp bits within the tolerance (the frame
//! keeps its index; its `device_t` is off by at most 16 ticks, 0.5 ms). Exhaustively, over every
//! bit of a packet in a clean stream (`tests_corrupt.rs`): 33 of 64 bits caught with PPG in
//! auto-range (52 %), 35/64 with a fixed range (55 %); GSR alone 29/48 (60 %), fixed 31/48
//! (65 %). With 1 % of 20 000 packets flipped (seeded, default settings): 105 of 200 caught
//! (52.5 %), no good packet lost. A caught flip becomes a one-frame gap; a good packet between
//! two caught ones can be lost with them (its jump cannot be confirmed).
//!
//! # Device model
//!
//! [`ShimmerDevice`]: a Shimmer3 GSR+ on LogAndStream v0.11.0 (v0.15.0 when the settings ask for
//! a CRC). It ACKs `20 07 05 08 21 8B`, answers `2E 3F 03 01 23 72 95`, ignores other bytes (as
//! v0.11.0 does), streams at the commanded rate with the commanded channels (VBATT, ADC13, GSR
//! in firmware order), timestamps from [`device::MODEL_CLOCK_START`] (2²⁴ − 65536, so the counter
//! wraps early in every run), and encodes eda_us as the raw GSR word (the inverse of the
//! conversion; in auto-range the range whose band contains the resistance, without the
//! firmware's hysteresis or its 80 ms hold), ppg as 1000 + 1000·ppg ADC counts. After
//! `power_cycle` it is idle with the CRC off; rate, sensors and range persist (InfoMem).

pub mod crc;
pub mod device;
pub mod gsr;
pub mod host;
pub mod packet;
pub mod replies;
pub mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corrupt;
#[cfg(test)]
mod tests_host;

pub use device::ShimmerDevice;
pub use host::ShimmerHost;

use crate::model::StreamKind;
use crate::protocol::{DeviceModel, Host, HostOut, Phase};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Settings of a Shimmer3 GSR+ source. Keys (all optional):
///
/// | key | values | default |
/// |---|---|---|
/// | `rate_hz` | 1 to 1024; the device samples at 32768 / round(32768 / rate_hz) Hz | 128 |
/// | `gsr_range` | `0` (8–63 kΩ), `1` (63–220 kΩ), `2` (220–680 kΩ), `3` (0.68–4.7 MΩ), `"auto"` | `"auto"` |
/// | `ppg` | also acquire the internal ADC13 (PPG on the GSR+) | `true` |
/// | `crc` | `"off"`, `"1"` or `"2"` CRC bytes per packet and reply (LogAndStream ≥ v0.13.7) | `"off"` |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Sampling rate, Hz.
    pub rate_hz: f64,
    /// GSR amplifier range.
    pub gsr_range: GsrRange,
    /// Acquire ADC13 as PPG.
    pub ppg: bool,
    /// CRC appended by the firmware.
    pub crc: CrcMode,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_hz: 128.0,
            gsr_range: GsrRange::Auto,
            ppg: true,
            crc: CrcMode::Off,
        }
    }
}

/// Slowest and fastest rates accepted, Hz.
pub const RATE_RANGE_HZ: (f64, f64) = (1.0, 1024.0);

impl Settings {
    /// Sets the rate to the nearest one the device can do (32768 / n Hz).
    pub fn set_rate(&mut self, hz: f64) -> Result<(), String> {
        let (lo, hi) = RATE_RANGE_HZ;
        if !(lo..=hi).contains(&hz) {
            return Err(format!(
                "shimmer cannot sample at {hz} Hz: 1 to 1024 Hz (32768/n Hz)"
            ));
        }
        self.rate_hz = hz;
        self.rate_hz = self.actual_rate();
        Ok(())
    }

    /// The rate the device samples at, 32768 / ticks Hz.
    pub fn rate_hz(&self) -> f64 {
        self.actual_rate()
    }

    fn actual_rate(&self) -> f64 {
        packet::TICK_HZ / f64::from(self.ticks())
    }

    /// Device ticks between samples.
    pub fn ticks(&self) -> u16 {
        let t = (packet::TICK_HZ / self.rate_hz).round();
        if t.is_finite() {
            t.clamp(32.0, 32768.0) as u16
        } else {
            256
        }
    }

    /// Checks the settings.
    pub fn check(&self) -> Result<(), String> {
        let (lo, hi) = RATE_RANGE_HZ;
        if !(lo..=hi).contains(&self.rate_hz) {
            return Err(format!(
                "rate_hz: {} is not between 1 and 1024 Hz",
                self.rate_hz
            ));
        }
        Ok(())
    }

    /// EDA, and PPG if `ppg`.
    pub fn kinds(&self) -> Vec<StreamKind> {
        let mut k = vec![StreamKind::Eda];
        if self.ppg {
            k.push(StreamKind::Ppg);
        }
        k
    }

    /// A host session.
    pub fn host(&self) -> ShimmerHost {
        ShimmerHost::new(self)
    }

    /// A simulated device ([`ShimmerDevice::for_settings`]).
    pub fn device(&self) -> ShimmerDevice {
        ShimmerDevice::for_settings(self)
    }
}

/// The GSR amplifier range (the feedback resistor), or auto-range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GsrRange {
    /// 40.2 kΩ: 8–63 kΩ skin resistance.
    R0,
    /// 287 kΩ: 63–220 kΩ.
    R1,
    /// 1 MΩ: 220–680 kΩ.
    R2,
    /// 3.3 MΩ: 680 kΩ–4.7 MΩ.
    R3,
    /// The firmware switches ranges and puts the one used in each sample's top two bits.
    #[default]
    Auto,
}

impl GsrRange {
    /// The `21` command's argument (0..3, 4 = auto).
    pub fn code(self) -> u8 {
        match self {
            Self::R0 => 0,
            Self::R1 => 1,
            Self::R2 => 2,
            Self::R3 => 3,
            Self::Auto => 4,
        }
    }

    /// From the command argument; anything above 3 is auto (as the firmware does).
    pub fn from_code(c: u8) -> Self {
        match c {
            0 => Self::R0,
            1 => Self::R1,
            2 => Self::R2,
            3 => Self::R3,
            _ => Self::Auto,
        }
    }

    /// The fixed range, or `None` in auto-range.
    pub fn fixed(self) -> Option<u8> {
        (self != Self::Auto).then(|| self.code())
    }

    /// `0`..`3` or `auto`.
    pub fn name(self) -> String {
        self.fixed()
            .map_or_else(|| "auto".into(), |r| r.to_string())
    }
}

impl Serialize for GsrRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.fixed() {
            Some(r) => s.serialize_u8(r),
            None => s.serialize_str("auto"),
        }
    }
}

/// An integer or a string, for the two enums below.
#[derive(Deserialize)]
#[serde(untagged)]
enum IntOrStr {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for GsrRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match IntOrStr::deserialize(d)? {
            IntOrStr::Int(r @ 0..=3) => Ok(Self::from_code(r as u8)),
            IntOrStr::Str(s) if s == "auto" => Ok(Self::Auto),
            _ => Err(D::Error::custom("gsr_range must be 0, 1, 2, 3 or \"auto\"")),
        }
    }
}

/// CRC bytes the firmware appends to every packet and reply (command `8B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CrcMode {
    /// None (the firmware's state after every connect).
    #[default]
    Off,
    /// The CRC's low byte.
    One,
    /// Low byte, then high byte.
    Two,
}

impl CrcMode {
    /// The `8B` argument, which is also the number of bytes.
    pub fn code(self) -> u8 {
        match self {
            Self::Off => 0,
            Self::One => 1,
            Self::Two => 2,
        }
    }

    /// CRC bytes per packet / reply.
    pub fn len(self) -> usize {
        usize::from(self.code())
    }

    /// Whether no CRC is appended.
    pub fn is_empty(self) -> bool {
        self == Self::Off
    }

    /// `off`, `1`, `2`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::One => "1",
            Self::Two => "2",
        }
    }
}

impl Serialize for CrcMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for CrcMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match IntOrStr::deserialize(d)? {
            IntOrStr::Int(0) => Ok(Self::Off),
            IntOrStr::Int(1) => Ok(Self::One),
            IntOrStr::Int(2) => Ok(Self::Two),
            IntOrStr::Str(s) if s == "off" || s == "0" => Ok(Self::Off),
            IntOrStr::Str(s) if s == "1" => Ok(Self::One),
            IntOrStr::Str(s) if s == "2" => Ok(Self::Two),
            _ => Err(D::Error::custom("crc must be \"off\", \"1\" or \"2\"")),
        }
    }
}

/// A LogAndStream firmware version (`2F` reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FwVersion {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u8,
    /// Release (internal) number.
    pub rel: u8,
}

impl fmt::Display for FwVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.rel)
    }
}

/// A host and a simulated device that have gone through the start-up exchange in memory; `None`
/// if it did not end in [`Phase::Streaming`].
pub fn connected(
    settings: &Settings,
    mut device: ShimmerDevice,
) -> Option<(ShimmerHost, ShimmerDevice)> {
    let mut host = settings.host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    for _ in 0..32 {
        let mut reply = Vec::new();
        device.on_host_bytes(&out.write, &mut reply);
        out.clear();
        host.on_bytes(0.0, &reply, &mut out);
        if *host.phase() != Phase::Starting {
            break;
        }
    }
    (*host.phase() == Phase::Streaming).then_some((host, device))
}

/// Fuzz entry: feeds `data` (after 4 control bytes that choose the settings and the chunk
/// sizes) to a host past the start-up and to one that has just started, each whole and in
/// chunks, and asserts that both give the same output. Never panics otherwise.
pub fn fuzz(data: &[u8]) {
    let (ctrl, body) = data.split_at(data.len().min(4));
    let c = |i: usize| ctrl.get(i).copied().unwrap_or(0);
    let settings = Settings {
        gsr_range: GsrRange::from_code(c(0) % 5),
        ppg: c(0) & 0x08 == 0,
        crc: [CrcMode::Off, CrcMode::One, CrcMode::Two]
            .get(usize::from(c(1) % 3))
            .copied()
            .unwrap_or_default(),
        ..Settings::default()
    };
    let sizes = [usize::from(c(2) % 17) + 1, usize::from(c(3) % 5) + 1];
    let fresh = || {
        let mut h = settings.host();
        h.start(0.0, &mut HostOut::default());
        h
    };
    let mut hosts = vec![fresh()];
    if let Some((h, _)) = connected(&settings, settings.device()) {
        hosts.push(h);
    }
    for host in hosts {
        let run = |chunked: bool| {
            let mut h = host.clone();
            let mut all = HostOut::default();
            let mut out = HostOut::default();
            let (mut at, mut i) = (0, 0);
            while at < body.len() {
                let n = if chunked {
                    sizes.get(i % 2).copied().unwrap_or(1)
                } else {
                    body.len()
                };
                let end = (at + n).min(body.len());
                h.on_bytes(1.0, body.get(at..end).unwrap_or(&[]), &mut out);
                all.write.append(&mut out.write);
                all.decoded.append(&mut out.decoded);
                all.notes.append(&mut out.notes);
                (at, i) = (end, i + 1);
            }
            (all, h.stats(), h.phase().clone(), h.channels().to_vec())
        };
        assert_eq!(run(false), run(true), "split changed the output");
    }
}
