//! The host side: bytes → lines → [`Decoded`] frames and gaps (`SPEC.md` §4–§6).
//!
//! - **Lines.** Bytes accumulate in a fixed [`MAX_LINE`] buffer until a `\n`; every decision is
//!   taken on a complete line (or on the byte that makes a line too long), with the `now` of the
//!   call that delivered that byte, so any split of the stream gives the same output. Nothing is
//!   allocated per byte.
//! - **Junk at start** (`DEVICES.md` §6, attune's reading). The first line after open is
//!   dropped unread (it may be partial; a `#` comment there still names the device). Then the
//!   host stays [`Phase::Starting`] until `settle_lines` consecutive valid lines arrive, or, for
//!   a line completed at `now ≥ open + settle_s`, until two consecutive valid lines arrive
//!   (`min(settle_lines, 2)`). A single valid line never settles: random bytes sometimes form one
//!   (`SPEC.md` §5), two in a row practically never. The lines of the settling run are delivered
//!   (the host holds at most `settle_lines` of them); a bad line before that discards the run.
//!   Blank lines, comments and lines of another prefix are neutral: they neither break nor
//!   extend a run, and never cost a sample.
//! - **Wrong device.** If the host has not settled [`Settings::fail_deadline_s`] after open
//!   (checked on every line and every tick), it goes [`Phase::Failed`] with one line ("no text
//!   lines parsed in 10 s …") and ignores the rest of the stream: noise never becomes samples.
//! - **Timing with a time column.** `device_t` is the board's own clock: unwrapped `millis()`/1000,
//!   starting at the first delivered line's ms. A step of more than 1.5 nominal periods is
//!   `round(dt·rate) − 1` lost lines: one gap, reason `crc` or `bad_line` if such lines came in
//!   between, else `sequence_jump`; bad lines that cost no period cost no sample. A decrease is a
//!   `millis()` wrap if the forward distance mod 2³² is at most [`WRAP_WINDOW_MS`], otherwise a
//!   board reset: a note and a `resync` gap with `ambiguous: true` of `k − 1` frames, with
//!   `k = max(1, round(host seconds since the previous line · rate))`; `device_t` then goes on
//!   from the previous line's plus `k` periods, so it never goes back (an estimate, flagged by the
//!   ambiguous gap).
//! - **Timing without a time column.** `device_t` is `None` and `Frame::index` counts lines: a
//!   bad line after settling is one lost sample (`Gap { frames: 1, reason: bad_line | crc }`). A
//!   corrupted terminator that merges or splits lines makes that count off by one: only a time
//!   column (or a checksum, which rejects the merged line) keeps the accounting exact.

use super::line::{Class, classify};
use super::{ChecksumMode, MAX_LINE, Settings};
use crate::model::StreamKind;
use crate::protocol::{
    ChannelInfo, Decoded, Frame, Host, HostOut, LossReason, Phase, Stats, Value,
};

/// A `millis()` decrease whose forward distance mod 2³² is at most this many ms is a wrap; a
/// larger one is a board reset.
pub const WRAP_WINDOW_MS: u32 = 60_000;

/// At most this many comment lines become notes (the rest are only counted).
pub const MAX_COMMENT_NOTES: u32 = 16;

/// A valid line of the settling run, held until the run is complete.
#[derive(Debug, Clone, Copy)]
struct Held {
    value: f64,
    time_ms: Option<u32>,
    now: f64,
    bytes: usize,
}

/// The previous delivered line (time-column timing).
#[derive(Debug, Clone, Copy)]
struct Last {
    ms: u32,
    now: f64,
    device_t: f64,
}

/// A text-line host session (module doc). Create one per opened port.
#[derive(Debug, Clone)]
pub struct TextlineHost {
    s: Settings,
    phase: Phase,
    channels: Vec<ChannelInfo>,
    stats: Stats,
    device: Option<String>,
    buf: [u8; MAX_LINE],
    len: usize,
    overflow: bool,
    first_line: bool,
    t_open: Option<f64>,
    seen_checksum: bool,
    held: Vec<Held>,
    valid_starting: u64,
    ignored: u64,
    comment_notes: u32,
    index: u64,
    last: Option<Last>,
    unwrapped_ms: u64,
    base_ms: u64,
    base_t: f64,
    lost_reason: Option<LossReason>,
}

impl TextlineHost {
    /// A session on a freshly opened port: the junk-at-start rule applies.
    pub fn new(s: &Settings) -> Self {
        Self {
            s: s.clone(),
            phase: Phase::Starting,
            channels: Vec::new(),
            stats: Stats::default(),
            device: None,
            buf: [0; MAX_LINE],
            len: 0,
            overflow: false,
            first_line: true,
            t_open: None,
            seen_checksum: false,
            held: Vec::with_capacity(s.settle_lines.clamp(1, super::MAX_SETTLE_LINES) as usize),
            valid_starting: 0,
            ignored: 0,
            comment_notes: 0,
            index: 0,
            last: None,
            unwrapped_ms: 0,
            base_ms: 0,
            base_t: 0.0,
            lost_reason: None,
        }
    }

    /// A session already past the start-up junk: streaming from the first byte, which must
    /// start a line (replays of captures cut at a line start, golden vectors, fuzzing).
    pub fn settled(s: &Settings) -> Self {
        let mut h = Self::new(s);
        h.first_line = false;
        h.settle();
        h
    }

    /// Blank lines, comments and lines of another prefix seen so far (normal traffic, not
    /// errors; not in [`Stats`]).
    pub fn ignored_lines(&self) -> u64 {
        self.ignored
    }

    fn open_at(&mut self, now: f64) {
        if self.t_open.is_none() {
            self.t_open = Some(now);
        }
    }

    fn settle(&mut self) {
        self.phase = Phase::Streaming;
        self.channels = vec![ChannelInfo {
            input: format!("col{}", self.s.value_column),
            kind: StreamKind::Eda,
            rate_hz: self.s.rate_hz,
            conversion: self.s.value.conversion().to_owned(),
            bits: self.s.adc_bits(),
        }];
    }

    /// Appends bytes of the current line (no `\n` among them).
    fn push(&mut self, part: &[u8], now: f64, out: &mut HostOut) {
        if self.overflow {
            self.stats.bytes_skipped += part.len() as u64;
            return;
        }
        match self.buf.get_mut(self.len..self.len + part.len()) {
            Some(dst) => {
                dst.copy_from_slice(part);
                self.len += part.len();
            }
            None => {
                self.stats.bytes_skipped += (self.len + part.len()) as u64;
                self.len = 0;
                self.overflow = true;
                if !self.first_line {
                    self.bad(LossReason::BadLine, out);
                }
                self.check_deadline(now);
            }
        }
    }

    /// The `\n` of the current line arrived; then the deadline is checked.
    fn end_line(&mut self, now: f64, out: &mut HostOut) {
        self.line(now, out);
        self.check_deadline(now);
    }

    fn line(&mut self, now: f64, out: &mut HostOut) {
        let len = std::mem::take(&mut self.len);
        if std::mem::take(&mut self.overflow) {
            self.stats.bytes_skipped += 1;
            self.first_line = false;
            return;
        }
        let buf = self.buf;
        let line = buf.get(..len).unwrap_or_default();
        let c = classify(line, &self.s, self.seen_checksum);
        if std::mem::take(&mut self.first_line) {
            self.stats.bytes_skipped += len as u64 + 1;
            if let Class::Comment(text) = c.class {
                self.comment(text, out);
            }
            return;
        }
        if c.verified && !self.seen_checksum {
            self.seen_checksum = true;
            if self.s.checksum == ChecksumMode::Auto {
                out.notes
                    .push("checksums seen: lines without *HH are now rejected".into());
            }
        }
        match c.class {
            Class::Sample { value, time_ms } => {
                let held = Held {
                    value,
                    time_ms,
                    now,
                    bytes: len + 1,
                };
                self.sample(held, out);
            }
            Class::Bad(reason) => {
                self.stats.bytes_skipped += len as u64 + 1;
                self.bad(reason, out);
            }
            Class::Comment(text) => {
                self.ignored += 1;
                self.comment(text, out);
            }
            Class::Blank | Class::Foreign => self.ignored += 1,
        }
    }

    fn comment(&mut self, text: &[u8], out: &mut HostOut) {
        let text = String::from_utf8_lossy(text);
        if self.device.is_none() && !text.is_empty() {
            out.notes.push(format!("device: {text}"));
            self.device = Some(text.into_owned());
        } else if self.comment_notes < MAX_COMMENT_NOTES {
            self.comment_notes += 1;
            out.notes.push(format!("device comment: {text}"));
        }
    }

    fn bad(&mut self, reason: LossReason, out: &mut HostOut) {
        match reason {
            LossReason::Crc => self.stats.crc_errors += 1,
            _ => self.stats.bad_lines += 1,
        }
        match self.phase {
            Phase::Starting => {
                let run: usize = self.held.iter().map(|h| h.bytes).sum();
                self.stats.bytes_skipped += run as u64;
                self.held.clear();
            }
            Phase::Streaming if self.s.time_column.is_some() => {
                if self.lost_reason != Some(LossReason::Crc) {
                    self.lost_reason = Some(reason);
                }
            }
            Phase::Streaming => {
                self.gap(1, false, reason, out);
                self.index = self.index.saturating_add(1);
            }
            Phase::Failed(_) => {}
        }
    }

    fn sample(&mut self, line: Held, out: &mut HostOut) {
        if self.phase == Phase::Streaming {
            self.deliver(line, out);
            return;
        }
        self.valid_starting += 1;
        self.held.push(line);
        let late = self.t_open.is_some_and(|t| line.now - t >= self.s.settle_s);
        let need = if late {
            self.s.settle_lines.min(2)
        } else {
            self.s.settle_lines
        };
        if self.held.len() >= need as usize {
            self.settle();
            out.notes.push(format!(
                "text lines: streaming after {} consecutive valid lines ({} bytes of start-up junk skipped)",
                self.held.len(),
                self.stats.bytes_skipped
            ));
            let mut held = std::mem::take(&mut self.held);
            for h in held.drain(..) {
                self.deliver(h, out);
            }
            self.held = held;
        }
    }

    fn gap(&mut self, frames: u64, ambiguous: bool, reason: LossReason, out: &mut HostOut) {
        self.stats.frames_lost = self.stats.frames_lost.saturating_add(frames);
        out.decoded.push(Decoded::Gap {
            frames,
            ambiguous,
            reason,
        });
    }

    fn deliver(&mut self, line: Held, out: &mut HostOut) {
        let device_t = line.time_ms.map(|ms| self.device_time(ms, line.now, out));
        self.lost_reason = None;
        let value = Value {
            raw: line.value,
            value: self.s.convert(line.value),
        };
        out.decoded.push(Decoded::Frame(Frame {
            index: self.index,
            device_t,
            values: vec![value],
        }));
        self.index = self.index.saturating_add(1);
        self.stats.frames += 1;
    }

    /// The device time of a line stamped `ms`, emitting the gap before it if any.
    fn device_time(&mut self, ms: u32, now: f64, out: &mut HostOut) -> f64 {
        let rate = self.s.rate_hz;
        let Some(last) = self.last else {
            let device_t = f64::from(ms) / 1000.0;
            (self.unwrapped_ms, self.base_ms, self.base_t) = (ms.into(), ms.into(), device_t);
            self.last = Some(Last { ms, now, device_t });
            return device_t;
        };
        let forward = ms.wrapping_sub(last.ms);
        let device_t = if ms >= last.ms || forward <= WRAP_WINDOW_MS {
            self.unwrapped_ms += u64::from(forward);
            let periods = f64::from(forward) / 1000.0 * rate;
            if periods > 1.5 {
                let lost = (periods.round() as u64).saturating_sub(1);
                let reason = self.lost_reason.unwrap_or(LossReason::SequenceJump);
                self.gap(lost, false, reason, out);
                self.index = self.index.saturating_add(lost);
            }
            self.base_t + (self.unwrapped_ms - self.base_ms) as f64 / 1000.0
        } else {
            out.notes.push(format!(
                "device time went back from {} ms to {ms} ms: board reset?",
                last.ms
            ));
            let k = ((now - last.now) * rate).round().max(1.0) as u64;
            self.gap(k - 1, true, LossReason::Resync, out);
            self.index = self.index.saturating_add(k - 1);
            (self.unwrapped_ms, self.base_ms) = (ms.into(), ms.into());
            self.base_t = last.device_t + k as f64 / rate;
            self.base_t
        };
        self.last = Some(Last { ms, now, device_t });
        device_t
    }

    fn check_deadline(&mut self, now: f64) {
        let d = self.s.fail_deadline_s();
        match self.t_open {
            Some(t0) if self.phase == Phase::Starting && now - t0 >= d => {}
            _ => return,
        }
        let (bad, crc) = (self.stats.bad_lines, self.stats.crc_errors);
        let msg = if self.valid_starting == 0 {
            format!(
                "no text lines parsed in {d} s ({bad} bad lines, {crc} checksum failures, {} bytes): is it a text-line device at the right baud?",
                self.stats.bytes
            )
        } else {
            format!(
                "no {} consecutive valid text lines in {d} s ({} valid, {bad} bad, {crc} checksum failures): is it a text-line device at the right baud, and do value_column, time_column, prefix and checksum match its lines?",
                self.s.settle_lines, self.valid_starting
            )
        };
        let run: usize = self.held.iter().map(|h| h.bytes).sum();
        self.stats.bytes_skipped += run as u64;
        self.held.clear();
        self.phase = Phase::Failed(msg);
    }
}

impl Host for TextlineHost {
    /// Records the open time; writes nothing (the device just talks).
    fn start(&mut self, now: f64, _out: &mut HostOut) {
        self.t_open = Some(now);
    }

    fn on_bytes(&mut self, now: f64, bytes: &[u8], out: &mut HostOut) {
        self.open_at(now);
        self.stats.bytes += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            if matches!(self.phase, Phase::Failed(_)) {
                self.stats.bytes_skipped += rest.len() as u64;
                return;
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (part, tail) = rest.split_at(i);
                    self.push(part, now, out);
                    self.end_line(now, out);
                    rest = tail.get(1..).unwrap_or_default();
                }
                None => {
                    self.push(rest, now, out);
                    rest = &[];
                }
            }
        }
    }

    fn on_tick(&mut self, now: f64, _out: &mut HostOut) {
        self.open_at(now);
        self.check_deadline(now);
    }

    /// Writes nothing: the device cannot be told to stop.
    fn stop(&mut self, _out: &mut HostOut) {}

    fn phase(&self) -> &Phase {
        &self.phase
    }

    fn channels(&self) -> &[ChannelInfo] {
        &self.channels
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }
}
