//! Writer for recording format v1. Every record is one line, written in host-arrival order.

use super::{Header, Marker};
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
        let end = serde_json::json!({"type": "end", "records": self.records});
        serde_json::to_writer(&mut self.out, &end)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn line<T: Serialize>(&mut self, v: &T) -> io::Result<()> {
        self.records += 1;
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")
    }
}
