//! The streaming decoder: dispatch on the first byte, packet acceptance, timestamps and gaps.
//! The rules are in the module doc of [`super`] ("Streaming"); this file implements them.

use super::crc;
use super::packet::{Bad, DATA_PACKET, Layout, Packet, TICK_HZ, TS_MOD};
use crate::protocol::{Decoded, Frame, HostOut, LossReason, Stats};

/// ACK byte.
pub const ACK: u8 = 0xFF;
/// In-stream response header.
pub const INSTREAM: u8 = 0x8A;
/// Status response code (1 byte follows).
pub const STATUS: u8 = 0x71;
/// Battery response code (3 bytes follow).
pub const BATTERY: u8 = 0x94;
/// Largest timestamp error accepted, ticks (capped at a quarter period so the count of periods
/// is never ambiguous).
pub const TS_TOLERANCE_TICKS: u32 = 16;
/// A silence longer than this many seconds may hide whole timestamp wraps (512 s each): the
/// gap after it is `ambiguous`.
pub const WRAP_AMBIGUOUS_S: f64 = 256.0;

/// Most reply bytes the confirmation of a packet looks past (one status or battery reply fits
/// many times): beyond, the packet is not confirmed. Bounds the buffer and the work per byte.
pub const MAX_LOOKAHEAD_REPLIES: usize = 32;

/// The last delivered packet.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Anchor {
    ts: u32,
    ts64: u64,
    index: u64,
    at: f64,
}

/// How a packet's timestamp relates to an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rel {
    /// No earlier packet.
    First,
    /// One period later (± tolerance).
    Next,
    /// k ≥ 2 periods later (± tolerance): k − 1 packets lost.
    Jump(u64),
    /// Not a whole number of periods, not later, or more than half a wrap later.
    Off,
}

/// One item at the head of the buffer.
#[derive(Debug)]
enum Item {
    Incomplete,
    Packet(Packet),
    Bad(Bad),
    Reply { len: usize, note: Option<String> },
    Garbage,
}

/// The streaming half of a host session.
#[derive(Debug, Clone)]
pub struct Stream {
    layout: Layout,
    ticks: u32,
    tol: u32,
    buf: Vec<u8>,
    last: Option<Anchor>,
    locked: bool,
    pending: Option<LossReason>,
}

impl Stream {
    /// A decoder for packets of `layout` every `ticks` device ticks.
    pub fn new(layout: Layout, ticks: u16) -> Self {
        let ticks = u32::from(ticks).max(1);
        Self {
            tol: TS_TOLERANCE_TICKS.min(ticks / 4),
            ticks,
            layout,
            buf: Vec::with_capacity(256),
            last: None,
            locked: false,
            pending: None,
        }
    }

    /// The packet layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Decodes `bytes` (appended to what is buffered).
    pub fn push(&mut self, now: f64, bytes: &[u8], out: &mut HostOut, stats: &mut Stats) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.extend_from_slice(bytes);
        let frame_len = self.layout.frame_len();
        let mut pos = 0;
        while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
            match self.item(rest) {
                Item::Incomplete => break,
                Item::Reply { len, note } => {
                    pos += len;
                    out.notes.extend(note);
                }
                Item::Garbage => pos += self.skip(1, true, stats),
                Item::Bad(bad) if self.locked => {
                    // Aligned: the whole packet is damaged; the next one starts after it.
                    if bad == Bad::Crc {
                        stats.crc_errors += 1;
                        self.mark(LossReason::Crc);
                    } else {
                        self.mark(LossReason::Resync);
                    }
                    pos += self.skip(frame_len, false, stats);
                }
                Item::Bad(_) => pos += self.skip(1, true, stats),
                Item::Packet(p) => {
                    let rel = self.rel_to_last(&p);
                    let crc = self.layout.crc_len() > 0;
                    let at_once = matches!(
                        (rel, crc),
                        (Rel::Next, _) | (Rel::First | Rel::Jump(_), true)
                    );
                    let accept = at_once
                        || match self.confirmed(rest.get(frame_len..).unwrap_or(&[]), &p) {
                            None => break,
                            Some(ok) => ok,
                        };
                    if accept {
                        self.deliver(now, &p, rel, out, stats);
                        pos += frame_len;
                        self.locked = true;
                    } else if self.locked {
                        self.mark(LossReason::Resync);
                        pos += self.skip(frame_len, false, stats);
                    } else {
                        pos += self.skip(1, true, stats);
                    }
                }
            }
        }
        buf.drain(..pos.min(buf.len()));
        self.buf = buf;
    }

    fn mark(&mut self, reason: LossReason) {
        self.pending.get_or_insert(reason);
    }

    fn skip(&mut self, n: usize, unlock: bool, stats: &mut Stats) -> usize {
        stats.bytes_skipped += n as u64;
        if unlock {
            self.locked = false;
            self.mark(LossReason::Resync);
        }
        n
    }

    fn rel(&self, from: u32, to: u32) -> Rel {
        let delta = to.wrapping_sub(from) & (TS_MOD - 1);
        if delta >= TS_MOD / 2 {
            return Rel::Off;
        }
        let k = (delta + self.ticks / 2) / self.ticks;
        match (k, delta.abs_diff(k * self.ticks) <= self.tol) {
            (0, _) | (_, false) => Rel::Off,
            (1, true) => Rel::Next,
            (k, true) => Rel::Jump(u64::from(k)),
        }
    }

    fn rel_to_last(&self, p: &Packet) -> Rel {
        self.last.map_or(Rel::First, |l| self.rel(l.ts, p.ts))
    }

    /// Whether the next packet after `p` (replies skipped, at most [`MAX_LOOKAHEAD_REPLIES`]
    /// bytes of them) is one period after it; `None` until that packet is complete.
    fn confirmed(&self, mut after: &[u8], p: &Packet) -> Option<bool> {
        let mut skipped = 0;
        loop {
            match self.item(after) {
                Item::Incomplete => return None,
                Item::Reply { len, .. } if skipped + len <= MAX_LOOKAHEAD_REPLIES => {
                    skipped += len;
                    after = after.get(len..).unwrap_or(&[]);
                }
                Item::Reply { .. } => return Some(false),
                Item::Packet(q) => return Some(self.rel(p.ts, q.ts) == Rel::Next),
                Item::Bad(_) | Item::Garbage => return Some(false),
            }
        }
    }

    fn deliver(&mut self, now: f64, p: &Packet, rel: Rel, out: &mut HostOut, stats: &mut Stats) {
        let (index, ts64) = match self.last {
            None => (0, u64::from(p.ts)),
            Some(last) => {
                let mut delta = u64::from(p.ts.wrapping_sub(last.ts) & (TS_MOD - 1));
                let ticks = u64::from(self.ticks);
                let wrap_doubt = now - last.at > WRAP_AMBIGUOUS_S || delta >= u64::from(TS_MOD / 2);
                let (k, exact) = match rel {
                    _ if wrap_doubt => {
                        // Unseen wraps: the whole number of them that best fits the host clock.
                        let elapsed = ((now - last.at).max(0.0) * TICK_HZ) as u64;
                        let wraps = (elapsed.saturating_sub(delta) + u64::from(TS_MOD / 2))
                            / u64::from(TS_MOD);
                        delta += wraps * u64::from(TS_MOD);
                        (((delta + ticks / 2) / ticks).max(1), false)
                    }
                    Rel::Next | Rel::First => (1, true),
                    Rel::Jump(k) => (k, true),
                    Rel::Off => (((delta + ticks / 2) / ticks).max(1), false),
                };
                if k > 1 || !exact {
                    let reason = self.pending.unwrap_or(LossReason::SequenceJump);
                    let frames = k - 1;
                    stats.frames_lost += frames;
                    out.decoded.push(Decoded::Gap {
                        frames,
                        ambiguous: !exact,
                        reason,
                    });
                }
                (last.index + k, last.ts64 + delta)
            }
        };
        out.decoded.push(Decoded::Frame(Frame {
            index,
            device_t: Some(ts64 as f64 / TICK_HZ),
            values: self.layout.values(p),
        }));
        stats.frames += 1;
        self.pending = None;
        self.last = Some(Anchor {
            ts: p.ts,
            ts64,
            index,
            at: now,
        });
    }

    fn item(&self, buf: &[u8]) -> Item {
        let crc_len = self.layout.crc_len();
        match buf.first() {
            None => Item::Incomplete,
            Some(&DATA_PACKET) => match buf.len() < self.layout.frame_len() {
                true => Item::Incomplete,
                false => self.layout.check(buf).map_or_else(Item::Bad, Item::Packet),
            },
            Some(&ACK) => match instream(buf, 1, crc_len) {
                Some(Item::Garbage) => match buf.get(..1 + crc_len) {
                    None => Item::Incomplete,
                    Some(ack) if crc::crc_ok(ack, crc_len) => Item::Reply {
                        len: ack.len(),
                        note: None,
                    },
                    Some(_) => Item::Garbage,
                },
                Some(item) => item,
                None => Item::Incomplete,
            },
            Some(&INSTREAM) => instream(buf, 0, crc_len).unwrap_or(Item::Incomplete),
            Some(_) => Item::Garbage,
        }
    }
}

/// An in-stream response `8A <code> <body>` (+ CRC over everything from `buf[0]`) starting at
/// `buf[at]`; `Some(Garbage)` if there is none, `None` until complete.
fn instream(buf: &[u8], at: usize, crc_len: usize) -> Option<Item> {
    if *buf.get(at)? != INSTREAM {
        return Some(Item::Garbage);
    }
    let body = match *buf.get(at + 1)? {
        STATUS => 1,
        BATTERY => 3,
        _ => return Some(Item::Garbage),
    };
    let len = at + 2 + body + crc_len;
    let frame = buf.get(..len)?;
    if !crc::crc_ok(frame, crc_len) {
        return Some(Item::Garbage);
    }
    let payload = frame.get(at + 1..at + 2 + body).unwrap_or(&[]);
    Some(Item::Reply {
        len,
        note: Some(describe(payload)),
    })
}

/// A log line for an in-stream response (`71 <bits>` or `94 <3 bytes>`).
pub fn describe(payload: &[u8]) -> String {
    match payload {
        [STATUS, bits] => {
            const NAMES: [&str; 8] = [
                "docked",
                "sensing",
                "RTC set",
                "logging",
                "streaming",
                "SD present",
                "SD error",
                "red LED",
            ];
            let on: Vec<&str> = NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| bits >> i & 1 == 1)
                .map(|(_, n)| *n)
                .collect();
            format!(
                "status 0x{bits:02X} ({})",
                if on.is_empty() {
                    "none".into()
                } else {
                    on.join(", ")
                }
            )
        }
        [BATTERY, lo, hi, charger] => {
            format!(
                "battery ADC {} (charger bits 0x{charger:02X})",
                u16::from_le_bytes([*lo, *hi])
            )
        }
        other => format!("in-stream response {other:02X?}"),
    }
}
