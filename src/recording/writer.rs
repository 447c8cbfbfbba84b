//! Writer for recording format v1. Every record is one line, written in host-arrival order.

use super::{Header, Marker, SessionInfo, StateRecord};
use crate::model::{Chunk, Gap, Timing};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct ChunkLine<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    stream: &'a str,
    seq: u64,
    host_t: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    t0: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    times: Option<&'a [f64]>,
    samples: &'a [f64],
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<&'a [f64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suspect: Option<&'a [u32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_uncertainty_s: Option<f64>,
}

#[derive(Serialize)]
struct GapLine<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    stream: &'a str,
    start: f64,
    end: f64,
    host_t: f64,
    reason: &'a str,
}

#[derive(Serialize)]
struct MarkerLine<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(flatten)]
    marker: &'a Marker,
}

#[derive(Serialize)]
struct StateLine<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    stream: &'a str,
    host_t: f64,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct EndLine<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    records: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    recovered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The header line of a live session's file: the header and its `session` object.
#[derive(Serialize)]
pub struct SessionHeader<'a> {
    /// The header.
    #[serde(flatten)]
    pub header: &'a Header,
    /// The session.
    pub session: &'a SessionInfo,
}

/// The `end` line (`{"type":"end","records":N}`, with `"recovered":true` and a `reason` for
/// a repaired file), with its newline.
pub fn end_line(records: u64, recovered: bool, reason: Option<&str>) -> Vec<u8> {
    let mut v = serde_json::to_vec(&EndLine {
        ty: "end",
        records,
        recovered,
        reason,
    })
    .unwrap_or_else(|_| format!("{{\"type\":\"end\",\"records\":{records}}}").into_bytes());
    v.push(b'\n');
    v
}

/// Writes a recording: the header at creation, then records.
///
/// The caller maps each chunk's stream to a header stream id (usually the kind's name).
pub struct Writer<W: Write> {
    out: W,
    records: u64,
}

impl<W: Write> Writer<W> {
    /// Validates `header` and writes it as line 1.
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        header
            .validate()
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Self { out, records: 0 })
    }

    /// Validates `header` and writes it with its `session` object as line 1 (a live
    /// session's file).
    pub fn new_session(mut out: W, header: &Header, session: &SessionInfo) -> io::Result<Self> {
        header
            .validate()
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidInput, m))?;
        serde_json::to_writer(&mut out, &SessionHeader { header, session })?;
        out.write_all(b"\n")?;
        Ok(Self { out, records: 0 })
    }

    /// Records written so far (header not included).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The inner writer (to flush or sync it).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Writes a source state of stream `stream_id`.
    pub fn state(&mut self, stream_id: &str, s: &StateRecord) -> io::Result<()> {
        self.line(&StateLine {
            ty: "state",
            stream: stream_id,
            host_t: s.host_t,
            state: &s.state,
            detail: s.detail.as_deref(),
        })
    }

    /// Writes a chunk of stream `stream_id`.
    pub fn chunk(&mut self, stream_id: &str, c: &Chunk) -> io::Result<()> {
        let (t0, times) = match &c.timing {
            Timing::Uniform { t0, .. } => (Some(*t0), None),
            Timing::Events(ts) => (None, Some(ts.as_slice())),
        };
        self.line(&ChunkLine {
            ty: "chunk",
            stream: stream_id,
            seq: c.seq,
            host_t: c.host_t,
            t0,
            times,
            samples: &c.samples,
            raw: c.raw.as_deref(),
            suspect: c
                .meta
                .as_deref()
                .map(|m| m.suspect.as_slice())
                .filter(|s| !s.is_empty()),
            time_uncertainty_s: c.meta.as_deref().and_then(|m| m.time_uncertainty_s),
        })
    }

    /// Writes a gap of stream `stream_id`.
    pub fn gap(&mut self, stream_id: &str, g: &Gap) -> io::Result<()> {
        self.line(&GapLine {
            ty: "gap",
            stream: stream_id,
            start: g.start,
            end: g.end,
            host_t: g.host_t,
            reason: &g.reason,
        })
    }

    /// Writes an event marker.
    pub fn marker(&mut self, m: &Marker) -> io::Result<()> {
        self.line(&MarkerLine {
            ty: "marker",
            marker: m,
        })
    }

    /// Writes the `end` record (the number of records before it), flushes and returns the
    /// inner writer. A file without its `end` record is truncated.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&end_line(self.records, false, None))?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn line<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        self.records += 1;
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }
}
