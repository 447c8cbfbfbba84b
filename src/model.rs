//! Core data model: participants, stream kinds and their units, chunks, gaps and stream states.
//!
//! Pure: no I/O, no clock. Times are `f64` seconds of *stream time*: seconds since the start of
//! the session (for a recording, since its first record), on the device's clock for sample times
//! (`t0`, `times`) and on the host's monotonic clock for arrival times (`host_t`).
//!
//! Units are part of the kind (DESIGN.md, "Core model"): `ecg` mV, `ppg` a.u., `eda` µS,
//! `hr` bpm, `rr` ms (one value per beat, event-timed). attune never invents samples: a lost
//! stretch of data is an explicit [`Gap`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A pseudonymous participant id such as `p01`: 1–64 ASCII letters, digits, `-`, `_` or `.`,
/// not starting with `.` (ids name directories: `.` and `..` must never be one).
/// Shared text: cloning one (every event and map key does) is a reference count, not an allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParticipantId(std::sync::Arc<str>);

/// Why a participant id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "participant id {0:?} is invalid: use 1-64 ASCII letters, digits, '-', '_' or '.', not starting with '.'"
)]
pub struct BadParticipantId(pub String);

impl ParticipantId {
    /// Validates and wraps an id.
    pub fn new(id: &str) -> Result<Self, BadParticipantId> {
        let ok = !id.is_empty()
            && !id.starts_with('.')
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(id.into()))
        } else {
            Err(BadParticipantId(id.to_owned()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ParticipantId {
    type Error = BadParticipantId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<ParticipantId> for String {
    fn from(p: ParticipantId) -> String {
        p.0.as_ref().to_owned()
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ParticipantId {
    type Err = BadParticipantId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The kind of a sensor stream. The unit is fixed by the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// Electrocardiogram, mV, uniformly sampled.
    Ecg,
    /// Photoplethysmogram, arbitrary units, uniformly sampled.
    Ppg,
    /// Electrodermal activity (skin conductance), µS, uniformly sampled.
    Eda,
    /// Heart rate as reported by a strap, bpm.
    Hr,
    /// RR (inter-beat) intervals, ms, one value per beat, event-timed.
    Rr,
}

/// Every stream kind, in a fixed order.
pub const ALL_KINDS: [StreamKind; 5] = [
    StreamKind::Ecg,
    StreamKind::Ppg,
    StreamKind::Eda,
    StreamKind::Hr,
    StreamKind::Rr,
];

impl StreamKind {
    /// The canonical name (`"eda"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ecg => "ecg",
            Self::Ppg => "ppg",
            Self::Eda => "eda",
            Self::Hr => "hr",
            Self::Rr => "rr",
        }
    }

    /// The canonical unit string of this kind, as written in recordings.
    pub fn unit(self) -> &'static str {
        match self {
            Self::Ecg => "mV",
            Self::Ppg => "a.u.",
            Self::Eda => "uS",
            Self::Hr => "bpm",
            Self::Rr => "ms",
        }
    }

    /// Whether `unit` names this kind's unit. `µS`/`μS` are accepted for `uS`.
    pub fn accepts_unit(self, unit: &str) -> bool {
        match self {
            Self::Eda => matches!(unit, "uS" | "µS" | "μS"),
            Self::Ppg => matches!(unit, "a.u." | "au"),
            _ => unit == self.unit(),
        }
    }

    /// Event-timed kinds carry one timestamp per sample instead of a nominal rate.
    pub fn is_event_timed(self) -> bool {
        matches!(self, Self::Rr)
    }
}

impl fmt::Display for StreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown stream kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stream kind {0:?} (expected one of ecg, ppg, eda, hr, rr)")]
pub struct UnknownKind(pub String);

impl FromStr for StreamKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_KINDS
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// How the samples of a chunk are timed.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    /// Sample `i` is at `t0 + i / rate_hz` seconds.
    Uniform {
        /// Device time of the first sample, s.
        t0: f64,
        /// Nominal sampling rate, Hz (> 0).
        rate_hz: f64,
    },
    /// One device time per sample, s, strictly increasing.
    Events(Vec<f64>),
}

/// Consecutive samples of one stream of one participant.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Whose stream.
    pub participant: ParticipantId,
    /// Which stream.
    pub kind: StreamKind,
    /// Sequence number within the stream; consecutive chunks differ by one.
    pub seq: u64,
    /// Host arrival time of the chunk, s.
    pub host_t: f64,
    /// Sample timing.
    pub timing: Timing,
    /// Values in the kind's unit.
    pub samples: Vec<f64>,
    /// The values as the device sent them (ADC counts), one per sample, when the source decodes a
    /// device protocol (serial devices); recorded as the chunk's `raw`.
    pub raw: Option<Vec<f64>>,
    /// Marks on the samples (suspect beats, timing uncertainty), when the source has any;
    /// recorded in the chunk's line.
    pub meta: Option<Box<ChunkMeta>>,
}

/// What a source knows about the samples of a chunk beyond their values and times.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkMeta {
    /// Indices (strictly increasing, each below the chunk's length) of samples the source
    /// doubts: for RR, the first interval after an empty notification or a gap, which straps
    /// report too long. Recorded as `suspect`; the engine keeps the beat but takes no successive
    /// difference across it.
    pub suspect: Vec<u32>,
    /// How far the chunk's device times may be off the host clock, s (for RR rebuilt from a
    /// strap: the spread of the arrival residuals of the cumulative sum). Recorded as
    /// `time_uncertainty_s`.
    pub time_uncertainty_s: Option<f64>,
}

impl ChunkMeta {
    /// Whether sample `i` is suspect.
    pub fn is_suspect(&self, i: usize) -> bool {
        u32::try_from(i).is_ok_and(|i| self.suspect.binary_search(&i).is_ok())
    }
}

impl Chunk {
    /// Device time of sample `i`.
    pub fn time_of(&self, i: usize) -> f64 {
        match &self.timing {
            Timing::Uniform { t0, rate_hz } => t0 + i as f64 / rate_hz,
            Timing::Events(ts) => ts.get(i).copied().unwrap_or(f64::NAN),
        }
    }

    /// Device time of the last sample (NaN for an empty chunk).
    pub fn last_time(&self) -> f64 {
        match self.samples.len() {
            0 => f64::NAN,
            n => self.time_of(n - 1),
        }
    }
}

/// An explicit stretch without data (disconnect, lost frames, removed electrode).
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// Whose stream.
    pub participant: ParticipantId,
    /// Which stream.
    pub kind: StreamKind,
    /// Device time where data stopped, s.
    pub start: f64,
    /// Device time where data resumed (or is expected to), s.
    pub end: f64,
    /// Host arrival time of the gap notice, s.
    pub host_t: f64,
    /// Short machine-readable reason (`disconnect`, `sequence_jump`, `crc`, ...).
    pub reason: String,
}

/// The published state of a stream (protocol v1 `state` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// The source is opening the device or connection; no data yet.
    Connecting,
    /// Data is arriving and passes the quality checks.
    Streaming,
    /// No data for a while (a gap is open).
    Stale,
    /// The source is trying to reconnect.
    Reconnecting,
    /// The source gave up.
    Lost,
    /// Data arrives but fails a quality check (e.g. electrode contact).
    LowQuality,
    /// The participant has not consented to processing this stream.
    NoConsent,
    /// The source has no more data (end of a replayed recording).
    Ended,
}

impl StreamState {
    /// The wire name (`"no_consent"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Streaming => "streaming",
            Self::Stale => "stale",
            Self::Reconnecting => "reconnecting",
            Self::Lost => "lost",
            Self::LowQuality => "low_quality",
            Self::NoConsent => "no_consent",
            Self::Ended => "ended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids_are_validated() {
        assert!(ParticipantId::new("p01").is_ok());
        assert!(ParticipantId::new("").is_err());
        assert!(ParticipantId::new("a b").is_err());
        assert!(ParticipantId::new("..").is_err());
        assert!(ParticipantId::new(".hidden").is_err());
        assert!(ParticipantId::new(&"x".repeat(65)).is_err());
    }

    #[test]
    fn kinds_round_trip_and_units_are_checked() {
        for k in ALL_KINDS {
            assert_eq!(k.name().parse::<StreamKind>(), Ok(k));
            assert!(k.accepts_unit(k.unit()));
        }
        assert!(StreamKind::Eda.accepts_unit("µS"));
        assert!(!StreamKind::Eda.accepts_unit("mV"));
        assert!("temp".parse::<StreamKind>().is_err());
    }

    #[test]
    fn uniform_chunk_times() {
        let c = Chunk {
            raw: None,
            meta: None,
            participant: ParticipantId::new("p").unwrap(),
            kind: StreamKind::Eda,
            seq: 0,
            host_t: 1.0,
            timing: Timing::Uniform {
                t0: 2.0,
                rate_hz: 4.0,
            },
            samples: vec![1.0, 2.0, 3.0],
        };
        assert_eq!(c.time_of(2), 2.5);
        assert_eq!(c.last_time(), 2.5);
    }
}
