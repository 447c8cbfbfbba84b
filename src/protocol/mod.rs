//! Pure wire protocols of the serial devices attune reads: decoders the serial source and the
//! raw-capture replay use, and the device models the pseudo-terminal simulators use.
//!
//! - [`bitalino`]: BITalino (r)evolution serial (single-byte commands, CRC-4 frames).
//! - [`shimmer`]: Shimmer3 GSR+ LogAndStream (ACK / in-stream replies / fixed-length packets).
//! - [`textline`]: one ASCII sample per line (Arduino / Grove GSR style).
//!
//! Each protocol has two pure halves, both driven by bytes and by a time the caller passes in
//! (seconds on any monotonic clock; nothing here reads a clock or does I/O):
//!
//! - a [`Host`]: what attune does: the start-up exchange (identify the device, configure it,
//!   start acquisition), then incremental decoding of the stream into [`Decoded`] frames and
//!   explicit gaps, then the bytes that stop acquisition. Any split of the byte stream gives the
//!   same output; garbage and partial frames resync; integrity failures (CRC, sequence, checksum)
//!   become [`Decoded::Gap`]s, never guessed values.
//! - a [`DeviceModel`]: what the device does, for the simulators: answers the host's commands
//!   like the firmware and encodes samples (given in physical units) as the firmware would.
//!
//! The specs, with the source of every fact and the golden vectors, are in
//! `firmware-protocols/<protocol>/SPEC.md` and `vectors.json`.

pub mod bitalino;
pub mod hrs;
pub mod shimmer;
pub mod textline;

use crate::model::StreamKind;
use std::fmt;
use std::str::FromStr;

/// Most channels any protocol here acquires at once.
pub const MAX_CHANNELS: usize = 8;

/// The protocols attune speaks over serial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolId {
    /// BITalino (r)evolution.
    Bitalino,
    /// Shimmer3 GSR+ LogAndStream.
    Shimmer,
    /// Text lines.
    Textline,
}

/// Every protocol, in CLI order.
pub const ALL_PROTOCOLS: [ProtocolId; 3] = [
    ProtocolId::Bitalino,
    ProtocolId::Shimmer,
    ProtocolId::Textline,
];

impl ProtocolId {
    /// The CLI / config / recording name (`bitalino`, `shimmer`, `textline`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Bitalino => "bitalino",
            Self::Shimmer => "shimmer",
            Self::Textline => "textline",
        }
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ProtocolId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_PROTOCOLS
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown protocol \"{s}\" (known: bitalino, shimmer, textline)"))
    }
}

/// Why a sample has no value in the channel's unit. The sample is still a sample (its raw value
/// is kept), but it must not reach the features: the source turns it into a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// The electrodes are not on the skin (Shimmer: ADC below the amplifier reference).
    ElectrodesOpen,
    /// The value lies outside the conversion's valid domain (text-line: x ≥ cal).
    OutOfRange,
}

impl Invalid {
    /// The gap / state reason word (`electrodes_open`, `out_of_range`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ElectrodesOpen => "electrodes_open",
            Self::OutOfRange => "out_of_range",
        }
    }
}

/// One sample of one channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    /// The value as the device sent it (ADC counts; Shimmer GSR: the u16 with its range bits;
    /// text lines: the number in the line, rounded to an integer only if it is one). Kept for the
    /// recording.
    pub raw: f64,
    /// In the channel kind's unit (mV, µS, a.u.), or why not.
    pub value: Result<f64, Invalid>,
}

/// What one channel is, once the host knows (after the start-up exchange).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    /// The device's name for the input (`A3`, `GSR`, `ADC13`, `col1`).
    pub input: String,
    /// What attune makes of it.
    pub kind: StreamKind,
    /// Nominal rate, Hz.
    pub rate_hz: f64,
    /// Conversion id (`bitalino-eda-rev-2020`, `shimmer-gsr-sdk`, `grove-gsr`...), recorded with
    /// the data.
    pub conversion: String,
    /// ADC bit depth of the raw value, if it is an ADC value.
    pub bits: Option<u8>,
}

/// One sample instant: a value per channel, in [`Host::channels`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Sample number since acquisition started, counting lost ones (so `index / rate` is the
    /// device time when the protocol has no timestamps).
    pub index: u64,
    /// The device's own timestamp of this sample, s, unwrapped, if the protocol has one.
    pub device_t: Option<f64>,
    /// One value per channel.
    pub values: Vec<Value>,
}

/// Why frames were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// A frame failed its CRC / checksum.
    Crc,
    /// The sequence number or timestamp jumped.
    SequenceJump,
    /// The decoder lost the frame boundaries and skipped bytes to find them again.
    Resync,
    /// A line (text protocols) or reply could not be parsed: one sample lost.
    BadLine,
}

impl LossReason {
    /// The gap reason word (`crc`, `sequence_jump`, `resync`, `bad_line`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc => "crc",
            Self::SequenceJump => "sequence_jump",
            Self::Resync => "resync",
            Self::BadLine => "bad_line",
        }
    }
}

/// A decoder's output, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A sample instant.
    Frame(Frame),
    /// Frames were lost between the previous frame and the next one.
    Gap {
        /// How many sample instants were lost (best estimate; `ambiguous` if the protocol cannot
        /// tell, e.g. a BITalino sequence jump of more than 15).
        frames: u64,
        /// The estimate may be off by a multiple of the sequence period.
        ambiguous: bool,
        /// Why.
        reason: LossReason,
    },
}

/// Counters of a host session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes received.
    pub bytes: u64,
    /// Frames (lines) delivered.
    pub frames: u64,
    /// Frames that failed their CRC / checksum.
    pub crc_errors: u64,
    /// Sample instants lost (sum of the gaps' `frames`).
    pub frames_lost: u64,
    /// Bytes skipped to find frame boundaries again (garbage, noise, partial frames).
    pub bytes_skipped: u64,
    /// Lines or replies that could not be parsed and were skipped.
    pub bad_lines: u64,
}

/// A host session's phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Identifying and configuring the device.
    Starting,
    /// Acquisition runs; frames are decoded.
    Streaming,
    /// The device did not answer as this protocol's device would; the session cannot go on.
    /// One line naming what was expected and what happened (the source adds the port).
    Failed(String),
}

/// What a host session wants done and what it decoded, filled by each call.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HostOut {
    /// Bytes to write to the device now.
    pub write: Vec<u8>,
    /// Frames and gaps decoded, in order.
    pub decoded: Vec<Decoded>,
    /// One-line notes for the log (`device: BITalino_v5.1`, `GSR range auto`).
    pub notes: Vec<String>,
}

impl HostOut {
    /// Empties everything (keeps the allocations).
    pub fn clear(&mut self) {
        self.write.clear();
        self.decoded.clear();
        self.notes.clear();
    }
}

/// The host side of a protocol (module doc). `now` is seconds on the caller's monotonic clock,
/// never decreasing.
pub trait Host: Send {
    /// Begins the start-up exchange on a freshly opened port.
    fn start(&mut self, now: f64, out: &mut HostOut);
    /// Bytes received from the device.
    fn on_bytes(&mut self, now: f64, bytes: &[u8], out: &mut HostOut);
    /// Time passes (called at least every 100 ms): paced commands, start-up timeouts.
    fn on_tick(&mut self, now: f64, out: &mut HostOut);
    /// The bytes that stop acquisition (written before closing the port; may be empty).
    fn stop(&mut self, out: &mut HostOut);
    /// The phase.
    fn phase(&self) -> &Phase;
    /// The channels, once streaming (empty before).
    fn channels(&self) -> &[ChannelInfo];
    /// The counters.
    fn stats(&self) -> Stats;
    /// The device's self-description once known (`BITalino_v5.1`, `Shimmer3 LogAndStream v0.11.0`).
    fn device(&self) -> Option<&str>;
}

/// One sample instant in physical units, for a simulated device to encode. A device encodes the
/// quantities its channels measure and ignores the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Physical {
    /// ECG, mV.
    pub ecg_mv: f64,
    /// Skin conductance, µS.
    pub eda_us: f64,
    /// PPG, arbitrary units as attune's simulator makes them (0..1-ish pulse wave).
    pub ppg: f64,
}

/// The device side of a protocol, for the simulators (module doc).
pub trait DeviceModel: Send {
    /// Bytes the host wrote; the replies (ACKs, version line, inquiry response...) go to `reply`.
    fn on_host_bytes(&mut self, bytes: &[u8], reply: &mut Vec<u8>);
    /// The sampling rate while streaming, Hz; `None` while idle.
    fn streaming_rate(&self) -> Option<f64>;
    /// Encodes the next sample instant (only called while streaming) as the bytes of exactly one
    /// frame / packet / line, appended to `out`.
    fn encode(&mut self, sample: &Physical, out: &mut Vec<u8>);
    /// The device's power was cut and restored: back to its power-on state (idle).
    fn power_cycle(&mut self);
}

/// A protocol with its settings: what `--protocol P [--rate HZ]` or a config file's serial
/// source says. Each protocol's `Settings` documents its keys and defaults.
#[derive(Debug, Clone, PartialEq)]
pub enum Settings {
    /// BITalino (r)evolution.
    Bitalino(bitalino::Settings),
    /// Shimmer3 GSR+.
    Shimmer(shimmer::Settings),
    /// Text lines.
    Textline(textline::Settings),
}

impl Settings {
    /// The protocol's defaults.
    pub fn defaults(p: ProtocolId) -> Self {
        match p {
            ProtocolId::Bitalino => Self::Bitalino(bitalino::Settings::default()),
            ProtocolId::Shimmer => Self::Shimmer(shimmer::Settings::default()),
            ProtocolId::Textline => Self::Textline(textline::Settings::default()),
        }
    }

    /// Which protocol.
    pub fn protocol(&self) -> ProtocolId {
        match self {
            Self::Bitalino(_) => ProtocolId::Bitalino,
            Self::Shimmer(_) => ProtocolId::Shimmer,
            Self::Textline(_) => ProtocolId::Textline,
        }
    }

    /// Sets the sampling rate (`--rate HZ`); one line saying which rates the device supports if
    /// it cannot sample at `hz`.
    pub fn set_rate(&mut self, hz: f64) -> Result<(), String> {
        match self {
            Self::Bitalino(s) => s.set_rate(hz),
            Self::Shimmer(s) => s.set_rate(hz),
            Self::Textline(s) => s.set_rate(hz),
        }
    }

    /// The nominal sampling rate, Hz.
    pub fn rate_hz(&self) -> f64 {
        match self {
            Self::Bitalino(s) => s.rate_hz(),
            Self::Shimmer(s) => s.rate_hz(),
            Self::Textline(s) => s.rate_hz(),
        }
    }

    /// Whether the device's samples carry neither a clock nor a steady pace, so that the host
    /// can only time them on arrival (a text-line device without a time column).
    pub fn receipt_timed(&self) -> bool {
        match self {
            Self::Bitalino(_) | Self::Shimmer(_) => false,
            Self::Textline(s) => s.time_column.is_none(),
        }
    }

    /// Checks the settings: one line naming the key if something is wrong.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::Bitalino(s) => s.check(),
            Self::Shimmer(s) => s.check(),
            Self::Textline(s) => s.check(),
        }
    }

    /// The stream kinds the device will feed with these settings.
    pub fn kinds(&self) -> Vec<StreamKind> {
        match self {
            Self::Bitalino(s) => s.kinds(),
            Self::Shimmer(s) => s.kinds(),
            Self::Textline(s) => s.kinds(),
        }
    }

    /// A host session (after [`Settings::check`]).
    pub fn host(&self) -> Box<dyn Host> {
        match self {
            Self::Bitalino(s) => Box::new(s.host()),
            Self::Shimmer(s) => Box::new(s.host()),
            Self::Textline(s) => Box::new(s.host()),
        }
    }

    /// A simulated device answering hosts with these settings.
    pub fn device(&self) -> Box<dyn DeviceModel> {
        match self {
            Self::Bitalino(s) => Box::new(s.device()),
            Self::Shimmer(s) => Box::new(s.device()),
            Self::Textline(s) => Box::new(s.device()),
        }
    }

    /// The settings as JSON (for raw captures' headers and recordings).
    pub fn to_json(&self) -> serde_json::Value {
        let v = match self {
            Self::Bitalino(s) => serde_json::to_value(s),
            Self::Shimmer(s) => serde_json::to_value(s),
            Self::Textline(s) => serde_json::to_value(s),
        };
        v.unwrap_or(serde_json::Value::Null)
    }

    /// Settings from JSON (a config table or a raw capture's header): unknown keys are errors.
    pub fn from_json(p: ProtocolId, v: serde_json::Value) -> Result<Self, String> {
        let e = |e: serde_json::Error| e.to_string();
        Ok(match p {
            ProtocolId::Bitalino => Self::Bitalino(serde_json::from_value(v).map_err(e)?),
            ProtocolId::Shimmer => Self::Shimmer(serde_json::from_value(v).map_err(e)?),
            ProtocolId::Textline => Self::Textline(serde_json::from_value(v).map_err(e)?),
        })
    }
}
