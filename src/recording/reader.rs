//! Streaming reader for recording format v1: header first, then one validated record at a time.

use super::{EndInfo, Header, MAX_LINE_BYTES, Marker, RecordingError, SessionInfo, StateRecord};
use crate::model::{Chunk, ChunkMeta, Gap, ParticipantId, StreamKind, Timing};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::io::BufRead;

/// One record after the header.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Samples.
    Chunk(Chunk),
    /// A stretch without data: written in the file, or implied by a sequence jump.
    Gap(Gap),
    /// An event marker.
    Marker(Marker),
    /// A source state of one stream (`reconnecting`, `lost`, ...).
    State(StateRecord),
}

impl Record {
    /// Host arrival time of the record, s.
    pub fn host_t(&self) -> f64 {
        match self {
            Self::Chunk(c) => c.host_t,
            Self::Gap(g) => g.host_t,
            Self::Marker(m) => m.host_t,
            Self::State(s) => s.host_t,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum RawRecord {
    Chunk(ChunkLine),
    Gap {
        stream: String,
        start: f64,
        end: f64,
        host_t: f64,
        reason: String,
    },
    Marker(MarkerFields),
    State {
        stream: String,
        host_t: f64,
        state: String,
        #[serde(default)]
        detail: Option<String>,
    },
    End {
        records: u64,
        #[serde(default)]
        recovered: bool,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// A chunk line. Read on its own (with its `type`), it skips the buffering an internally tagged
/// enum needs (an allocation per sample): the fast path for the lines that hold nearly all of a
/// recording. Inside [`RawRecord`] the tag has been taken off already.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkLine {
    #[serde(rename = "type", default)]
    _type: Option<ChunkTag>,
    stream: String,
    seq: u64,
    host_t: f64,
    #[serde(default)]
    t0: Option<f64>,
    #[serde(default)]
    times: Option<Vec<f64>>,
    samples: Vec<f64>,
    #[serde(default)]
    raw: Option<Vec<f64>>,
    #[serde(default)]
    suspect: Option<Vec<u32>>,
    #[serde(default)]
    time_uncertainty_s: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ChunkTag {
    Chunk,
}

/// Checks a chunk line's `suspect` and `time_uncertainty_s` (recording-format.md).
fn chunk_meta(
    suspect: Option<Vec<u32>>,
    time_uncertainty_s: Option<f64>,
    len: usize,
) -> Result<Option<Box<ChunkMeta>>, String> {
    let suspect = suspect.unwrap_or_default();
    if suspect.windows(2).any(|w| w[1] <= w[0])
        || suspect.last().is_some_and(|&i| i as usize >= len)
    {
        return Err(format!(
            "suspect must be strictly increasing sample indices below {len}"
        ));
    }
    if time_uncertainty_s.is_some_and(|u| !u.is_finite() || u < 0.0) {
        return Err("time_uncertainty_s must be a finite number >= 0".to_owned());
    }
    Ok(
        (!suspect.is_empty() || time_uncertainty_s.is_some()).then(|| {
            Box::new(ChunkMeta {
                suspect,
                time_uncertainty_s,
            })
        }),
    )
}

/// Parses one record line: chunks by [`ChunkLine`], anything else (and a chunk line that fails
/// there, so that its error message is the general one) by [`RawRecord`].
fn parse_record(buf: &[u8]) -> serde_json::Result<RawRecord> {
    if buf.starts_with(br#"{"type":"chunk","#)
        && let Ok(c) = serde_json::from_slice::<ChunkLine>(buf)
    {
        return Ok(RawRecord::Chunk(c));
    }
    serde_json::from_slice(buf)
}

/// Line 1 as read: the header plus the optional `session` object (a live session's file).
#[derive(Deserialize)]
struct HeaderLine {
    #[serde(flatten)]
    header: Header,
    #[serde(default)]
    session: Option<SessionInfo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerFields {
    host_t: f64,
    t: f64,
    label: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

struct StreamCursor {
    kind: StreamKind,
    rate_hz: Option<f64>,
    next_seq: Option<u64>,
    last_time: f64,
    /// An explicit gap record was read since the last chunk: a sequence jump after it is that
    /// gap, not a second one.
    gap_declared: bool,
}

/// Latest time a recording may use, s (≈ 116 days); earliest is a day before its start.
pub const MAX_TIME_S: f64 = 1e7;

fn check_time(what: &str, t: f64) -> Result<(), String> {
    if t.is_finite() && (-86_400.0..=MAX_TIME_S).contains(&t) {
        Ok(())
    } else {
        Err(format!(
            "{what} {t} is not a plausible time in seconds since the recording's start (-86400 to {MAX_TIME_S})"
        ))
    }
}

/// Reads a recording record by record, validating as it goes.
///
/// Checks: host times never decrease; per stream, device times strictly increase and sequence
/// numbers increase. A sequence jump without a `gap` record yields an implied [`Gap`] with reason
/// `sequence_jump` before the chunk: nothing is invented, and nothing is lost silently.
pub struct Reader<R> {
    input: R,
    header: Header,
    session: Option<SessionInfo>,
    end: Option<EndInfo>,
    line: u64,
    buf: Vec<u8>,
    streams: HashMap<String, StreamCursor>,
    last_host_t: f64,
    pending: VecDeque<Record>,
    /// Records read from the file (implied gaps not counted).
    records: u64,
    /// The `end` record was read.
    ended: bool,
}

impl<R: BufRead> Reader<R> {
    /// Reads and validates the header.
    pub fn open(mut input: R) -> Result<Self, RecordingError> {
        let mut buf = Vec::new();
        let complete = read_line(&mut input, &mut buf, 1)?;
        if buf.iter().all(u8::is_ascii_whitespace) {
            return Err(RecordingError::Empty);
        }
        let HeaderLine { header, session } = serde_json::from_slice(&buf).map_err(|e| {
            if !complete && e.is_eof() {
                RecordingError::Truncated { line: 1 }
            } else {
                RecordingError::Malformed {
                    line: 1,
                    message: format!("bad header: {e}"),
                }
            }
        })?;
        header
            .validate()
            .map_err(|message| RecordingError::Malformed { line: 1, message })?;
        let streams = header
            .streams
            .iter()
            .filter_map(|s| {
                Some((
                    s.id.clone(),
                    StreamCursor {
                        kind: s.kind()?,
                        rate_hz: s.rate_hz,
                        next_seq: None,
                        last_time: f64::NEG_INFINITY,
                        gap_declared: false,
                    },
                ))
            })
            .collect();
        Ok(Self {
            input,
            header,
            session,
            end: None,
            line: 1,
            buf,
            streams,
            last_host_t: f64::NEG_INFINITY,
            pending: VecDeque::new(),
            records: 0,
            ended: false,
        })
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's `session` object, if the file is a recorded live session.
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref()
    }

    /// The `end` record, once it has been read (after [`next_record`](Self::next_record)
    /// returned `None`).
    pub fn end(&self) -> Option<&EndInfo> {
        self.end.as_ref()
    }

    /// Records read from the file so far (implied gaps not counted; the `end` record not
    /// counted).
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// The input, as far as the reader has consumed it.
    pub fn input_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// The input, handing back what the reader has not consumed.
    pub fn into_inner(self) -> R {
        self.input
    }

    /// The line number of the last record read (1 = header).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordingError> {
        if let Some(r) = self.pending.pop_front() {
            return Ok(Some(r));
        }
        loop {
            self.line += 1;
            let line = self.line;
            let complete = read_line(&mut self.input, &mut self.buf, line)?;
            if self.buf.is_empty() && !complete {
                if !self.ended {
                    return Err(RecordingError::MissingEnd { line });
                }
                return Ok(None);
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if self.ended {
                return Err(RecordingError::Malformed {
                    line,
                    message: "data after the end record".into(),
                });
            }
            let raw: RawRecord = parse_record(&self.buf).map_err(|e| {
                if !complete && e.is_eof() {
                    RecordingError::Truncated { line }
                } else {
                    RecordingError::Malformed {
                        line,
                        message: e.to_string(),
                    }
                }
            })?;
            if let RawRecord::End {
                records,
                recovered,
                reason,
            } = raw
            {
                if records != self.records {
                    return Err(RecordingError::Malformed {
                        line,
                        message: format!(
                            "the end record counts {records} records, but the file has {}",
                            self.records
                        ),
                    });
                }
                self.ended = true;
                self.end = Some(EndInfo {
                    records,
                    recovered,
                    reason,
                });
                continue;
            }
            self.records += 1;
            self.accept(raw)
                .map_err(|message| RecordingError::Malformed { line, message })?;
            return Ok(self.pending.pop_front());
        }
    }

    fn participant(&self) -> ParticipantId {
        self.header.participant.clone()
    }

    fn check_host_t(&mut self, host_t: f64) -> Result<(), String> {
        check_time("host_t", host_t)?;
        if host_t < self.last_host_t {
            return Err(format!(
                "host_t {host_t} goes backwards (previous record: {})",
                self.last_host_t
            ));
        }
        self.last_host_t = host_t;
        Ok(())
    }

    fn accept(&mut self, raw: RawRecord) -> Result<(), String> {
        match raw {
            RawRecord::Chunk(ChunkLine {
                stream,
                seq,
                host_t,
                t0,
                times,
                samples,
                raw,
                suspect,
                time_uncertainty_s,
                ..
            }) => {
                self.check_host_t(host_t)?;
                let meta = chunk_meta(suspect, time_uncertainty_s, samples.len())
                    .map_err(|e| format!("chunk {seq} of stream {stream:?}: {e}"))?;
                if let Some(r) = &raw
                    && (r.len() != samples.len() || r.iter().any(|x| !x.is_finite()))
                {
                    return Err(format!(
                        "chunk {seq} of stream {stream:?}: raw must hold one finite value per sample ({} samples, {} raw)",
                        samples.len(),
                        r.len()
                    ));
                }
                let participant = self.participant();
                let cur = self
                    .streams
                    .get_mut(&stream)
                    .ok_or_else(|| format!("chunk for undeclared stream {stream:?}"))?;
                if samples.is_empty() {
                    return Err(format!("chunk {seq} of stream {stream:?} has no samples"));
                }
                let timing = match (cur.rate_hz, t0, times) {
                    (Some(rate_hz), Some(t0), None) if t0.is_finite() => {
                        Timing::Uniform { t0, rate_hz }
                    }
                    (None, None, Some(ts)) => {
                        if ts.len() != samples.len() {
                            return Err(format!(
                                "chunk {seq} of stream {stream:?} has {} times for {} samples",
                                ts.len(),
                                samples.len()
                            ));
                        }
                        if ts.windows(2).any(|w| w[1] <= w[0]) || ts.iter().any(|t| !t.is_finite())
                        {
                            return Err(format!(
                                "chunk {seq} of stream {stream:?}: times must strictly increase"
                            ));
                        }
                        Timing::Events(ts)
                    }
                    (Some(_), _, _) => {
                        return Err(format!(
                            "chunk {seq} of stream {stream:?} needs a finite t0 and no times (the stream has a rate)"
                        ));
                    }
                    (None, _, _) => {
                        return Err(format!(
                            "chunk {seq} of stream {stream:?} needs times and no t0 (the stream is event-timed)"
                        ));
                    }
                };
                let chunk = Chunk {
                    raw,
                    meta,
                    participant,
                    kind: cur.kind,
                    seq,
                    host_t,
                    timing,
                    samples,
                };
                let first_t = chunk.time_of(0);
                check_time("sample time", first_t)?;
                check_time("sample time", chunk.last_time())?;
                if first_t <= cur.last_time {
                    return Err(format!(
                        "chunk {seq} of stream {stream:?} starts at {first_t} s, not after the previous sample at {} s",
                        cur.last_time
                    ));
                }
                match cur.next_seq {
                    Some(next) if seq < next => {
                        return Err(format!(
                            "chunk {seq} of stream {stream:?}: sequence number goes backwards (expected {next})"
                        ));
                    }
                    Some(next) if seq > next && !cur.gap_declared => {
                        self.pending.push_back(Record::Gap(Gap {
                            participant: chunk.participant.clone(),
                            kind: cur.kind,
                            start: cur.last_time,
                            end: first_t,
                            host_t,
                            reason: "sequence_jump".into(),
                        }));
                    }
                    _ => {}
                }
                cur.next_seq = Some(seq.checked_add(1).ok_or_else(|| {
                    format!("chunk of stream {stream:?}: sequence number {seq} is at its maximum")
                })?);
                cur.last_time = chunk.last_time();
                cur.gap_declared = false;
                self.pending.push_back(Record::Chunk(chunk));
            }
            RawRecord::Gap {
                stream,
                start,
                end,
                host_t,
                reason,
            } => {
                self.check_host_t(host_t)?;
                let participant = self.participant();
                let cur = self
                    .streams
                    .get_mut(&stream)
                    .ok_or_else(|| format!("gap for undeclared stream {stream:?}"))?;
                check_time("gap start", start)?;
                check_time("gap end", end)?;
                if end < start {
                    return Err(format!("gap of stream {stream:?} has end before start"));
                }
                cur.gap_declared = true;
                self.pending.push_back(Record::Gap(Gap {
                    participant,
                    kind: cur.kind,
                    start,
                    end,
                    host_t,
                    reason,
                }));
            }
            RawRecord::End { .. } => {}
            RawRecord::State {
                stream,
                host_t,
                state,
                detail,
            } => {
                self.check_host_t(host_t)?;
                let cur = self
                    .streams
                    .get(&stream)
                    .ok_or_else(|| format!("state for undeclared stream {stream:?}"))?;
                if state.is_empty() {
                    return Err(format!("state of stream {stream:?} is empty"));
                }
                self.pending.push_back(Record::State(StateRecord {
                    kind: cur.kind,
                    host_t,
                    state,
                    detail,
                }));
            }
            RawRecord::Marker(m) => {
                self.check_host_t(m.host_t)?;
                check_time("marker time", m.t)?;
                self.pending.push_back(Record::Marker(Marker {
                    host_t: m.host_t,
                    t: m.t,
                    label: m.label,
                    data: m.data,
                }));
            }
        }
        Ok(())
    }
}

/// Reads one line into `buf` (without the newline). Returns whether it ended with a newline.
fn read_line<R: BufRead>(
    input: &mut R,
    buf: &mut Vec<u8>,
    line: u64,
) -> Result<bool, RecordingError> {
    buf.clear();
    loop {
        let avail = input.fill_buf()?;
        if avail.is_empty() {
            return Ok(false);
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > MAX_LINE_BYTES + 1 {
            return Err(RecordingError::LineTooLong { line });
        }
        buf.extend_from_slice(&avail[..take]);
        input.consume(take);
        if done {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(true);
        }
    }
}
