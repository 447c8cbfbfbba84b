//! Recording format v1: a versioned, self-describing NDJSON file. Pure: readers and writers work
//! over `io::BufRead` / `io::Write`; the caller opens files.
//!
//! Line 1 is the header (format name and version, participant, streams with kind, unit, rate and
//! device, consent manifest, provenance and licence, labelled segments). Every further line is one
//! record in host-arrival order: `chunk` (samples with device and host times), `gap` (an explicit
//! stretch without data), `marker` (an event such as a stress onset or an exercise start) or
//! `state` (a source state such as `reconnecting`); the last line is `end`, which may say
//! `recovered` (the file was repaired after a crash). A live session's header carries a
//! `session` object ([`SessionInfo`]).
//! The full specification, with a ten-line Python reader, is `docs/recording-format.md`.
//!
//! Units are the stream kind's (`model`): ecg mV, ppg a.u., eda µS, hr bpm, rr ms. Times are
//! seconds since the start of the recording.

pub mod csv;
#[doc(hidden)]
pub mod fuzzing;
mod reader;
mod writer;

pub use reader::{MAX_TIME_S, Reader, Record};
pub use writer::{SessionHeader, Writer, end_line};

use crate::consent::ConsentManifest;
use crate::model::{ParticipantId, StreamKind};
use serde::{Deserialize, Serialize};

/// The `format` value every recording header carries.
pub const FORMAT_NAME: &str = "attune-recording";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The longest line a reader accepts, bytes. A chunk of 10 s of 1 kHz ECG is about 100 kB.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// The most streams a header may declare (a session has a few per participant; the limit
/// keeps a hostile header from costing more than a moment to check).
pub const MAX_STREAMS: usize = 256;

/// The device a stream came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// Device model or name (`Polar H10`, `attune-simulator`).
    pub name: String,
    /// Wire protocol it was decoded from (`ble_hrm`, `bitalino`, `synthetic`, `csv`).
    pub protocol: String,
    /// Firmware version, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// How the device's raw values became the stream's unit (`bitalino-eda-rev-2020 A3 10-bit`),
    /// for streams decoded from a device protocol; the conversions are documented in
    /// `firmware-protocols/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<String>,
}

/// One stream as declared in the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSpec {
    /// Id that records use to refer to this stream; unique within the file.
    pub id: String,
    /// Kind name (`ecg`, `ppg`, `eda`, `hr`, `rr`). Kept as text so that an unknown kind gets a
    /// clear error; see [`StreamSpec::kind`].
    pub kind: String,
    /// Unit; must be the kind's unit.
    pub unit: String,
    /// Nominal rate, Hz. Required for uniformly sampled kinds, absent for `rr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_hz: Option<f64>,
    /// The device.
    pub device: Device,
}

impl StreamSpec {
    /// The parsed kind (valid once the header has been validated).
    pub fn kind(&self) -> Option<StreamKind> {
        self.kind.parse().ok()
    }
}

/// Where the data came from and under which licence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Free text: how the data was made (`attune simulate ...`, `converted from ...`).
    pub source: String,
    /// SPDX licence id or licence name of the data.
    pub licence: String,
    /// Attribution required by the licence, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// Generator parameters for synthetic data (scenario, seed, the simulated person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<serde_json::Value>,
}

/// A labelled stretch of the recording (`rest`, `stress`), seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Label.
    pub label: String,
    /// Start, s.
    pub start_s: f64,
    /// End, s (> start).
    pub end_s: f64,
}

/// The header line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Format version; this build reads [`FORMAT_VERSION`].
    pub version: u32,
    /// The pseudonymous participant.
    pub participant: ParticipantId,
    /// Streams in the file.
    pub streams: Vec<StreamSpec>,
    /// Consent given when the recording was made.
    pub consent: ConsentManifest,
    /// Origin and licence.
    pub provenance: Provenance,
    /// Labelled segments, in time order.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

impl Header {
    /// Checks what serde cannot: format and version, unique ids, known kinds, units, rates,
    /// segment order. Returns a one-line reason on failure.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT_NAME {
            return Err(format!(
                "not an attune recording (format is {:?}, expected {FORMAT_NAME:?})",
                self.format
            ));
        }
        if self.version != FORMAT_VERSION {
            return Err(format!(
                "unsupported recording format version {} (this build reads version {FORMAT_VERSION})",
                self.version
            ));
        }
        if self.streams.is_empty() {
            return Err("the header declares no streams".into());
        }
        if self.streams.len() > MAX_STREAMS {
            return Err(format!(
                "the header declares {} streams; at most {MAX_STREAMS} are supported",
                self.streams.len()
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.streams.len());
        for s in &self.streams {
            if !seen.insert(s.id.as_str()) {
                return Err(format!("stream id {:?} is declared twice", s.id));
            }
            let kind: StreamKind = s
                .kind
                .parse()
                .map_err(|e| format!("stream {:?}: {e}", s.id))?;
            if !kind.accepts_unit(&s.unit) {
                return Err(format!(
                    "stream {:?}: unit {:?} does not match kind {kind}, whose unit is {:?}",
                    s.id,
                    s.unit,
                    kind.unit()
                ));
            }
            match (kind.is_event_timed(), s.rate_hz) {
                (true, Some(_)) => {
                    return Err(format!(
                        "stream {:?}: kind {kind} is event-timed and takes no rate_hz",
                        s.id
                    ));
                }
                (false, None) => {
                    return Err(format!("stream {:?}: kind {kind} needs rate_hz", s.id));
                }
                (false, Some(r)) if !(r.is_finite() && r > 0.0 && r <= 100_000.0) => {
                    return Err(format!(
                        "stream {:?}: rate_hz {r} is not a plausible rate (0 < rate <= 100000)",
                        s.id
                    ));
                }
                _ => {}
            }
        }
        let mut prev_end = f64::NEG_INFINITY;
        for seg in &self.segments {
            if !(seg.start_s.is_finite() && seg.end_s.is_finite() && seg.end_s > seg.start_s) {
                return Err(format!("segment {:?} has end <= start", seg.label));
            }
            if seg.start_s < prev_end {
                return Err(format!(
                    "segment {:?} overlaps the one before it",
                    seg.label
                ));
            }
            prev_end = seg.end_s;
        }
        Ok(())
    }

    /// The spec of stream `id`.
    pub fn stream(&self, id: &str) -> Option<&StreamSpec> {
        self.streams.iter().find(|s| s.id == id)
    }

    /// Start of the first segment labelled `label`, s.
    pub fn segment_start(&self, label: &str) -> Option<f64> {
        self.segments
            .iter()
            .find(|s| s.label == label)
            .map(|s| s.start_s)
    }
}

/// An event marker (`stress_onset`, `exercise_start`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// Host arrival time, s.
    pub host_t: f64,
    /// Stream time of the event, s.
    pub t: f64,
    /// Label.
    pub label: String,
    /// Free-form details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// The header's optional `session` object: the file is one live session recorded by
/// `attune run` (`store::recorder`). Readers that do not know it ignore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's name (its file name without `.attune.ndjson`), e.g. `20261201T122000Z`.
    pub name: String,
    /// Wall-clock start of the session, Unix time in ms (UTC).
    pub started_unix_ms: i64,
    /// Recorded live (not converted or simulated).
    #[serde(default)]
    pub live: bool,
}

/// A `state` record: a source state of one stream (`reconnecting`, `lost`, `low_quality`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct StateRecord {
    /// Which stream (its kind; the file's stream id is the caller's mapping).
    pub kind: StreamKind,
    /// Host arrival time, s.
    pub host_t: f64,
    /// The state's wire name (`StreamState::name`).
    pub state: String,
    /// Why, for people (the source's detail), if known.
    pub detail: Option<String>,
}

/// What the `end` record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndInfo {
    /// Records before it.
    pub records: u64,
    /// The file was repaired after its writer stopped without finishing it (a crash): it was
    /// cut to its last whole, valid record and this `end` was added.
    pub recovered: bool,
    /// Why it was closed early or repaired, if said (`"crash"`, `"write_failed"`).
    pub reason: Option<String>,
}

/// Why a recording could not be read. Line numbers are 1-based.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The file is empty.
    #[error("the file is empty (expected an attune-recording header on line 1)")]
    Empty,
    /// A line is not valid JSON of the expected shape.
    #[error("line {line}: {message}")]
    Malformed {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The last line ends without a newline and does not parse: the file was cut short.
    #[error("line {line}: the file is truncated (the last record is incomplete)")]
    Truncated {
        /// 1-based line number.
        line: u64,
    },
    /// The file ends without its `end` record: it was cut short at a line boundary (or was
    /// not finished by its writer).
    #[error(
        "line {line}: the file ends without its end record (truncated, or not finished by its writer)"
    )]
    MissingEnd {
        /// 1-based line number where the end record was expected.
        line: u64,
    },
    /// A line exceeds [`MAX_LINE_BYTES`].
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: u64,
    },
}

#[cfg(test)]
mod tests;
