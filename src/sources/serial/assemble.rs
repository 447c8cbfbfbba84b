//! Decoded frames → engine inputs (pure): the part of the serial source that both the live port
//! and a raw capture's replay run, so that a capture replays to exactly what the live session
//! saw.
//!
//! # Device time
//!
//! Serial devices either carry no timestamps (BITalino: a sample counter, [`Frame::index`]) or a
//! clock of their own that restarts with the device (Shimmer's 32768 Hz counter, a text line's
//! `millis()`). Each connection's device time is that counter or clock *anchored* at the host
//! arrival time of the connection's first delivery (its last frame is taken to have been sampled
//! when it arrived), so device time keeps increasing across reconnects and power cycles and
//! stays close to session time; the engine's clock estimator then learns the residual offset,
//! latency and skew from arrivals as for any other device. Nothing is re-timed within a
//! connection: sample *i* of a uniform chunk is at `t0 + i / rate`, and lost frames (counted in
//! [`Frame::index`]) keep their time slots empty.
//!
//!
//! A device with neither (a text-line sketch without a time column, paced by nothing but its
//! own loop) is timed on receipt ([`Assembler::receipt_timed`]): each delivery's last frame at
//! its arrival, the ones before it a nominal period apart, never before the previous frame (and
//! never pushed further than just after it). A
//! sketch's real rate differs from any nominal one (the Seeed sketch prints about 18 lines/s by
//! arithmetic), and counting lines at a nominal rate would drift away from the host by that
//! difference; arrival times drift by nothing, at the cost of the read jitter.
//!
//! # Gaps
//!
//! Exactly one [`Gap`] per stretch without data, per stream:
//! - frames the decoder lost (CRC, sequence jump, resync): reason as the decoder says, from the
//!   last sample before to the first after;
//! - samples without a value (electrodes open, out of range): reason `electrodes_open` /
//!   `out_of_range`, from the last valid sample to the next;
//! - a lost connection: reason `disconnect`, from the last sample before to the first sample
//!   after the reconnect (sent with that first sample; the source's `reconnecting` state says
//!   what is going on meanwhile).
//!
//! Chunks are cut every [`CHUNK_S`] of samples, at every gap, and when the connection ends (or
//! [`Assembler::flush`] is called): a sample waits at most for [`CHUNK_S`] of samples after it.

use crate::engine::input::Input;
use crate::model::{Chunk, Gap, ParticipantId, StreamKind, Timing};
use crate::protocol::{ChannelInfo, Decoded, Frame};

/// The least step between two receipt-timed frames, s (they arrive faster than the nominal
/// rate, or together in one read).
const RECEIPT_STEP_S: f64 = 1e-4;

/// Longest span of samples in one chunk, s.
pub const CHUNK_S: f64 = 0.1;

/// One stream's assembly state.
#[derive(Debug)]
struct StreamOut {
    kind: StreamKind,
    rate_hz: f64,
    /// Next chunk sequence number.
    seq: u64,
    /// Samples not yet sent, their first device time and raw values.
    pending: Vec<f64>,
    pending_raw: Vec<f64>,
    pending_t0: f64,
    /// Device time of the last sample with a value (sent or pending), if any.
    last_t: Option<f64>,
    /// A gap opened (reason) that ends at the next valid sample.
    open_gap: Option<&'static str>,
}

impl StreamOut {
    fn flush(&mut self, participant: &ParticipantId, now: f64, out: &mut Vec<Input>) {
        if self.pending.is_empty() {
            return;
        }
        let samples = std::mem::take(&mut self.pending);
        let raw = std::mem::take(&mut self.pending_raw);
        out.push(Input::Chunk(Chunk {
            participant: participant.clone(),
            kind: self.kind,
            seq: self.seq,
            host_t: now,
            timing: Timing::Uniform {
                t0: self.pending_t0,
                rate_hz: self.rate_hz,
            },
            samples,
            raw: Some(raw),
            meta: None,
        }));
        self.seq += 1;
    }
}

/// The assembler of one serial device's streams (module doc).
#[derive(Debug)]
pub struct Assembler {
    participant: ParticipantId,
    streams: Vec<StreamOut>,
    /// Channel `i` of the current connection feeds `streams[map[i]]`.
    map: Vec<Option<usize>>,
    /// Rate of the current connection's frames, Hz.
    rate_hz: f64,
    /// Device time = anchor + the frame's own time; `None` until the connection's first frame.
    anchor: Option<f64>,
    /// The device has no clock or steady pace to go by (a text-line sketch without a time
    /// column): each delivery's last frame is timed at its arrival, the frames before it one
    /// nominal period apart.
    receipt_timed: bool,
}

impl Assembler {
    /// An assembler for `participant`'s device.
    pub fn new(participant: ParticipantId) -> Self {
        Self {
            participant,
            streams: Vec::new(),
            map: Vec::new(),
            rate_hz: 1.0,
            anchor: None,
            receipt_timed: false,
        }
    }

    /// Times frames by their arrival instead of their count (module doc, "Device time").
    pub fn receipt_timed(mut self, on: bool) -> Self {
        self.receipt_timed = on;
        self
    }

    /// A connection reached streaming with these channels. Channels of a kind already seen feed
    /// that stream again.
    pub fn connected(&mut self, channels: &[ChannelInfo]) {
        self.map = channels
            .iter()
            .map(|c| {
                if !(c.rate_hz.is_finite() && c.rate_hz > 0.0) {
                    return None;
                }
                let i = match self.streams.iter().position(|s| s.kind == c.kind) {
                    Some(i) => i,
                    None => {
                        self.streams.push(StreamOut {
                            kind: c.kind,
                            rate_hz: c.rate_hz,
                            seq: 0,
                            pending: Vec::new(),
                            pending_raw: Vec::new(),
                            pending_t0: 0.0,
                            last_t: None,
                            open_gap: None,
                        });
                        self.streams.len() - 1
                    }
                };
                if let Some(s) = self.streams.get_mut(i) {
                    s.rate_hz = c.rate_hz;
                }
                Some(i)
            })
            .collect();
        self.rate_hz = channels
            .first()
            .map(|c| c.rate_hz)
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(1.0);
        self.anchor = None;
    }

    /// The stream kinds seen so far.
    pub fn kinds(&self) -> impl Iterator<Item = StreamKind> + '_ {
        self.streams.iter().map(|s| s.kind)
    }

    /// A frame's own time (device clock or sample counter), s.
    fn own_t(&self, f: &Frame) -> f64 {
        f.device_t.unwrap_or(f.index as f64 / self.rate_hz)
    }

    /// One delivery's decoder output, received at session time `now`.
    pub fn decoded(&mut self, now: f64, decoded: &[Decoded], out: &mut Vec<Input>) {
        if self.receipt_timed {
            self.decoded_on_receipt(now, decoded, out);
            return;
        }
        if self.anchor.is_none() {
            // Anchor the connection: its first delivery's last frame arrived now.
            let Some(last) = decoded.iter().rev().find_map(|d| match d {
                Decoded::Frame(f) => Some(self.own_t(f)),
                Decoded::Gap { .. } => None,
            }) else {
                return;
            };
            let mut anchor = now - last;
            // Never before what was already delivered (a reconnect sooner than the anchor
            // error): the first frame of this delivery lands one period after the last sample.
            let first = decoded.iter().find_map(|d| match d {
                Decoded::Frame(f) => Some(self.own_t(f)),
                Decoded::Gap { .. } => None,
            });
            let latest = self
                .streams
                .iter()
                .filter_map(|s| s.last_t.map(|t| t + 1.0 / s.rate_hz))
                .fold(f64::NEG_INFINITY, f64::max);
            if let Some(first) = first
                && anchor + first < latest
            {
                anchor = latest - first;
            }
            self.anchor = Some(anchor);
        }
        let anchor = self.anchor.unwrap_or(0.0);
        for d in decoded {
            match d {
                Decoded::Frame(f) => {
                    let t = anchor + self.own_t(f);
                    self.frame(t, f, now, out);
                }
                Decoded::Gap { reason, .. } => self.lost(reason.as_str(), now, out),
            }
        }
    }

    fn decoded_on_receipt(&mut self, now: f64, decoded: &[Decoded], out: &mut Vec<Input>) {
        let n = decoded
            .iter()
            .filter(|d| matches!(d, Decoded::Frame(_)))
            .count();
        let period = 1.0 / self.rate_hz;
        let mut k = 0usize;
        for d in decoded {
            match d {
                Decoded::Frame(f) => {
                    let latest = self
                        .streams
                        .iter()
                        .filter_map(|s| s.last_t)
                        .fold(f64::NEG_INFINITY, f64::max);
                    // Never before the previous frame, but no further ahead than that: a sketch
                    // faster than the nominal rate must not push its lines into the future.
                    let t = (now - (n - 1 - k) as f64 * period).max(latest + RECEIPT_STEP_S);
                    k += 1;
                    self.frame(t, f, now, out);
                }
                Decoded::Gap { reason, .. } => self.lost(reason.as_str(), now, out),
            }
        }
    }

    /// Frames were lost: what is pending goes out, and each stream's next sample closes a gap.
    fn lost(&mut self, reason: &'static str, now: f64, out: &mut Vec<Input>) {
        for s in &mut self.streams {
            s.flush(&self.participant, now, out);
            if s.open_gap.is_none() && s.last_t.is_some() {
                s.open_gap = Some(reason);
            }
        }
    }

    fn frame(&mut self, t: f64, f: &Frame, now: f64, out: &mut Vec<Input>) {
        for (ch, v) in f.values.iter().enumerate() {
            let Some(Some(i)) = self.map.get(ch).copied() else {
                continue;
            };
            let Some(s) = self.streams.get_mut(i) else {
                continue;
            };
            if s.last_t.is_some_and(|last| t <= last) {
                // Device time did not advance (a decoder repeating a timestamp): not a sample
                // attune can place; never re-timed.
                continue;
            }
            match v.value {
                Ok(x) if x.is_finite() => {
                    let reason = s.open_gap.take();
                    if let (Some(reason), Some(start)) = (reason, s.last_t) {
                        s.flush(&self.participant, now, out);
                        out.push(Input::Gap(Gap {
                            participant: self.participant.clone(),
                            kind: s.kind,
                            start,
                            end: t,
                            host_t: now,
                            reason: reason.to_owned(),
                        }));
                    }
                    let contiguous = s.pending.is_empty()
                        || (t - (s.pending_t0 + s.pending.len() as f64 / s.rate_hz)).abs()
                            < 0.5 / s.rate_hz;
                    if !contiguous {
                        s.flush(&self.participant, now, out);
                    }
                    if s.pending.is_empty() {
                        s.pending_t0 = t;
                    }
                    s.pending.push(x);
                    s.pending_raw.push(v.raw);
                    s.last_t = Some(t);
                    if s.pending.len() as f64 / s.rate_hz >= CHUNK_S - 1e-9 {
                        s.flush(&self.participant, now, out);
                    }
                }
                Ok(_) | Err(_) => {
                    s.flush(&self.participant, now, out);
                    if s.open_gap.is_none() && s.last_t.is_some() {
                        s.open_gap = Some(match v.value {
                            Err(e) => e.as_str(),
                            Ok(_) => "out_of_range",
                        });
                    }
                }
            }
        }
    }

    /// The connection ended at session time `now`: everything pending is sent, and each stream's
    /// next sample closes a `disconnect` gap.
    pub fn disconnected(&mut self, now: f64, out: &mut Vec<Input>) {
        self.flush(now, out);
        for s in &mut self.streams {
            if s.last_t.is_some() {
                // A disconnect says more than whatever gap was open.
                s.open_gap = Some("disconnect");
            }
        }
        self.anchor = None;
    }

    /// Sends everything pending.
    pub fn flush(&mut self, now: f64, out: &mut Vec<Input>) {
        for s in &mut self.streams {
            s.flush(&self.participant, now, out);
        }
    }
}

#[cfg(test)]
mod tests;
