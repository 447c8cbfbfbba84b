//! The BITalino stream decoder: bytes in, frames and explicit gaps out, with resync. Pure.
//!
//! The rules (`firmware-protocols/bitalino/SPEC.md` §5 gives the reasons and the odds):
//!
//! * **In sync** (the last frame emitted had seq `p`), the frame F at the aligned position is
//!   emitted when it is CRC-valid with seq `p + 1` and the next aligned frame is CRC-valid with
//!   seq `p + 2` (or, that one being corrupt, the one after with `p + 3`).
//! * **F fails its CRC:** among the next five aligned frames, the first CRC-valid one must have
//!   the seq its position implies and be confirmed by the next CRC-valid one at its position;
//!   then F and any corrupt frames after it are one `crc` gap and sync goes on (so two
//!   corruptions a frame apart cost no good frame). Otherwise alignment is in doubt: hunt from
//!   F's second byte.
//! * **F valid with seq `p + 1` but unconfirmed** (bytes were dropped or inserted right after it,
//!   or F is a misaligned window that passed by chance): F is held and the decoder hunts from
//!   F's second byte, ignoring locks that overlap F (frames never overlap, and such a lock is
//!   the likelier impostor); F is emitted before the lock.
//! * **F valid with another seq:** if the next three frames continue F's seq, whole frames were
//!   lost (the firmware skips frames when its send buffer is full): a `sequence_jump` gap of
//!   `(seq − p − 1) mod 16`, then F. Otherwise F is treated as a CRC failure. (Three, not one:
//!   the bytes say nothing was lost, and misaligned windows in slowly varying data often
//!   carry a counting data nibble where the seq should be.)
//! * **Hunting** slides one byte at a time and locks only on two consecutive CRC-valid frames
//!   with consecutive seqs (four, if the seq disagrees with the bytes skipped by more than one
//!   frame: misaligned windows in slowly varying data often carry counting "seqs"); the first
//!   is emitted once the others confirm it. The frames lost
//!   meanwhile are a gap: `crc` if the lock is still aligned (a whole number of frames, 1..15,
//!   with the seq agreeing), else `resync` with the `k ≡ seq − p − 1 (mod 16)` closest to
//!   bytes skipped / N, ambiguous if more than 15 frames' worth was skipped. At the start of
//!   streaming there is no gap before the first frame.
//!
//! Every decision looks only at bytes that have arrived and waits for more otherwise, so any
//! split of the byte stream gives the same output. Latency: one frame (the confirmation).

use super::Conversion;
use super::frame::{self, RawFrame};
use crate::protocol::{Decoded, Frame, LossReason, Value};

/// Aligned frames after a bad one that recovery looks at before it hunts.
const RECOVER_SPAN: usize = 5;

/// The most lost frames the 4-bit sequence number counts without ambiguity.
const MAX_COUNTED: u64 = 15;

/// Counters of one decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Frames emitted.
    pub frames: u64,
    /// Frames that failed their CRC where the next frame was expected (at most one per loss;
    /// misaligned windows while hunting are not frames and are not counted).
    pub crc_errors: u64,
    /// Sample instants lost (the sum of the gaps).
    pub frames_lost: u64,
    /// Bytes skipped while hunting for frame boundaries, and bytes of frames dropped as
    /// untrustworthy.
    pub bytes_skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for two consecutive frames. `prev`: the seq of the last frame emitted before the
    /// loss (`None` at the start of streaming: no gap). `skipped`: bytes since that frame's end.
    /// `held`: a CRC-valid frame with seq `prev + 1` at that position, not yet confirmed.
    Hunt {
        prev: Option<u8>,
        skipped: u64,
        held: Option<RawFrame>,
    },
    /// Aligned; `prev` is the seq of the last frame emitted.
    Sync { prev: u8 },
}

/// The decoder of one acquisition (one start command).
#[derive(Debug, Clone)]
pub struct Decoder {
    convs: Vec<Conversion>,
    len: usize,
    buf: Vec<u8>,
    pos: usize,
    state: State,
    next_index: u64,
    stats: DecodeStats,
}

/// What the frame at an offset is: `None` if its bytes have not all arrived, `Some(None)` if
/// its CRC fails, `Some(Some(seq))` if it is CRC-valid.
type Check = Option<Option<u8>>;

impl Decoder {
    /// A decoder for frames carrying one channel per conversion, in acquisition order (1..=6).
    pub fn new(convs: Vec<Conversion>) -> Self {
        let len = frame::frame_len(convs.len().min(frame::MAX_CHANNELS));
        Self {
            convs,
            len,
            buf: Vec::new(),
            pos: 0,
            state: State::Hunt {
                prev: None,
                skipped: 0,
                held: None,
            },
            next_index: 0,
            stats: DecodeStats::default(),
        }
    }

    /// The frame length, bytes.
    pub fn frame_len(&self) -> usize {
        self.len
    }

    /// The counters.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// Decodes what `bytes` completes, appending frames and gaps to `out` in stream order.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Decoded>) {
        self.buf.extend_from_slice(bytes);
        while match self.state {
            State::Sync { prev } => self.step_sync(prev, out),
            State::Hunt {
                prev,
                skipped,
                held,
            } => self.step_hunt(prev, skipped, held, out),
        } {}
        self.buf.drain(..self.pos);
        self.pos = 0;
    }

    /// The end of the stream: emits the frames still waiting for a confirmation that will not
    /// come, as long as each is CRC-valid with the expected seq.
    pub fn finish(&mut self, out: &mut Vec<Decoded>) {
        if let State::Hunt {
            prev: Some(prev),
            held: Some(raw),
            ..
        } = self.state
        {
            self.push(&raw, out);
            self.state = State::Sync {
                prev: next(prev, 1),
            };
        }
        while let State::Sync { prev } = self.state {
            if self.check(0) != Some(Some(next(prev, 1))) {
                break;
            }
            self.emit_here(out);
            self.state = State::Sync {
                prev: next(prev, 1),
            };
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
    }

    fn check(&self, at: usize) -> Check {
        let start = self.pos + at;
        let f = self.buf.get(start..start + self.len)?;
        Some(frame::crc_ok(f).then(|| f[self.len - 1] >> 4))
    }

    /// One decision in sync; `false` if it needs more bytes.
    fn step_sync(&mut self, prev: u8, out: &mut Vec<Decoded>) -> bool {
        let Some(first) = self.check(0) else {
            return false;
        };
        let Some(second) = self.check(self.len) else {
            return false;
        };
        match first {
            Some(seq) if seq == next(prev, 1) => {
                let confirmed = second == Some(next(prev, 2)) || {
                    let Some(third) = self.check(2 * self.len) else {
                        return false;
                    };
                    third == Some(next(prev, 3))
                };
                if confirmed {
                    self.emit_here(out);
                    self.state = State::Sync { prev: seq };
                } else {
                    let held = self.raw_here();
                    self.skip_bytes(1);
                    self.state = State::Hunt {
                        prev: Some(prev),
                        skipped: 1,
                        held: Some(held),
                    };
                }
                true
            }
            Some(seq) if second == Some(next(seq, 1)) => {
                // A jump disagrees with the bytes (none were lost): two more frames confirm it.
                let (Some(third), Some(fourth)) =
                    (self.check(2 * self.len), self.check(3 * self.len))
                else {
                    return false;
                };
                if third != Some(next(seq, 2)) || fourth != Some(next(seq, 3)) {
                    return self.recover(prev, false, out);
                }
                let lost = u64::from(seq.wrapping_sub(prev).wrapping_sub(1) & 0x0F);
                self.gap(lost, false, LossReason::SequenceJump, out);
                self.emit_here(out);
                self.state = State::Sync { prev: seq };
                true
            }
            _ => self.recover(prev, first.is_none(), out),
        }
    }

    /// After a bad frame at `pos` (its CRC failed, or it is valid with a seq nothing confirms):
    /// among the next [`RECOVER_SPAN`] aligned frames, the first CRC-valid one must carry the seq
    /// its position implies and be confirmed by the next CRC-valid one, also at its position;
    /// then the frames before it (the bad one and any corrupt ones after it) are one `crc` gap
    /// and sync goes on. Anything else (a CRC-valid frame with another seq, or no confirmation
    /// within the span) means the alignment is in doubt: hunt from the next byte. `false` if it
    /// needs more bytes.
    fn recover(&mut self, prev: u8, crc_failed: bool, out: &mut Vec<Decoded>) -> bool {
        let mut failed = u64::from(crc_failed);
        let mut found: Option<usize> = None;
        for j in 1..=RECOVER_SPAN {
            let Some(c) = self.check(j * self.len) else {
                return false;
            };
            let expected = next(prev, 1 + j);
            match (c, found) {
                (None, None) => failed += 1,
                (None, Some(_)) => {}
                (Some(seq), None) if seq == expected => found = Some(j),
                (Some(seq), Some(first)) if seq == expected => {
                    self.stats.crc_errors += failed;
                    self.gap(first as u64, false, LossReason::Crc, out);
                    self.pos += first * self.len;
                    self.state = State::Sync {
                        prev: next(prev, first),
                    };
                    return true;
                }
                (Some(_), _) => break,
            }
        }
        self.stats.crc_errors += u64::from(crc_failed);
        self.skip_bytes(1);
        self.state = State::Hunt {
            prev: Some(prev),
            skipped: 1,
            held: None,
        };
        true
    }

    /// One hunting step; `false` if it needs more bytes.
    fn step_hunt(
        &mut self,
        prev: Option<u8>,
        skipped: u64,
        held: Option<RawFrame>,
        out: &mut Vec<Decoded>,
    ) -> bool {
        let Some(first) = self.check(0) else {
            return false;
        };
        if let Some(seq) = first {
            let Some(second) = self.check(self.len) else {
                return false;
            };
            // A lock that overlaps the held frame loses to it: one of the two is a window that
            // passed by chance, and that is 16 times likelier for the lock (whose seq byte may
            // be a genuine one after a dropped byte; CRC-4 alone vouches for it) than for the
            // held frame (CRC-4 and the seq vouch for it).
            let overlaps = held.is_some() && skipped < self.len as u64;
            if second == Some(next(seq, 1)) && !overlaps {
                // A lock whose seq disagrees with the bytes skipped needs two more frames.
                let confirmed = self.plausible(prev, seq, skipped, held.is_some()) || {
                    let (Some(c), Some(d)) = (self.check(2 * self.len), self.check(3 * self.len))
                    else {
                        return false;
                    };
                    c == Some(next(seq, 2)) && d == Some(next(seq, 3))
                };
                if confirmed {
                    self.lock(prev, seq, skipped, held, out);
                    return true;
                }
            }
        }
        self.skip_bytes(1);
        self.state = State::Hunt {
            prev,
            skipped: skipped + 1,
            held,
        };
        true
    }

    /// Whether a lock with `seq` after `skipped` bytes agrees with the sequence: the frames it
    /// says were lost are within one of the bytes skipped / N. Misaligned windows in slowly varying data often carry consecutive "seqs"
    /// (a data nibble that counts up), so a disagreeing lock is not taken on two frames.
    fn plausible(&self, prev: Option<u8>, seq: u8, skipped: u64, held: bool) -> bool {
        let Some(mut prev) = prev else {
            return true;
        };
        let len = self.len as u64;
        let mut skipped = skipped;
        if held {
            prev = next(prev, 1);
            skipped -= len;
        }
        let (lost, _) = resync_loss(prev, seq, skipped, self.len);
        (lost as f64 - skipped as f64 / len as f64).abs() <= 1.0
    }

    /// Two consecutive frames at `pos`, the first with `seq`, `skipped` bytes after the end of
    /// the frame with seq `prev`: the held frame or not, the gap, then the first (module doc).
    fn lock(
        &mut self,
        prev: Option<u8>,
        seq: u8,
        skipped: u64,
        held: Option<RawFrame>,
        out: &mut Vec<Decoded>,
    ) {
        let len = self.len as u64;
        self.state = State::Sync { prev: seq };
        let Some(mut prev) = prev else {
            return self.emit_here(out);
        };
        let mut skipped = skipped;
        if let Some(raw) = held {
            // The lock lies past it (step_hunt): it was a frame.
            self.push(&raw, out);
            self.stats.bytes_skipped -= len;
            prev = next(prev, 1);
            skipped -= len;
        }
        let frames = skipped / len;
        let aligned = skipped.is_multiple_of(len) && (1..=MAX_COUNTED).contains(&frames);
        if skipped == 0 {
            // Right after the last frame: whole frames were never sent.
            let lost = u64::from(seq.wrapping_sub(prev).wrapping_sub(1) & 0x0F);
            self.gap(lost, false, LossReason::SequenceJump, out);
            self.emit_here(out);
        } else if aligned && seq == next(prev, frames as usize + 1) {
            // Still aligned, and the seq agrees: the frames in between were corrupt.
            self.gap(frames, false, LossReason::Crc, out);
            self.emit_here(out);
        } else {
            let (lost, ambiguous) = resync_loss(prev, seq, skipped, self.len);
            self.gap(lost, ambiguous, LossReason::Resync, out);
            self.emit_here(out);
        }
    }

    fn skip_bytes(&mut self, n: usize) {
        self.pos += n;
        self.stats.bytes_skipped += n as u64;
    }

    fn gap(&mut self, frames: u64, ambiguous: bool, reason: LossReason, out: &mut Vec<Decoded>) {
        if frames == 0 {
            return;
        }
        self.next_index += frames;
        self.stats.frames_lost += frames;
        out.push(Decoded::Gap {
            frames,
            ambiguous,
            reason,
        });
    }

    fn raw_here(&self) -> RawFrame {
        frame::unpack(&self.buf[self.pos..self.pos + self.len], self.convs.len())
    }

    /// Emits the frame at `pos` (known valid) and moves past it.
    fn emit_here(&mut self, out: &mut Vec<Decoded>) {
        let raw = self.raw_here();
        self.push(&raw, out);
        self.pos += self.len;
    }

    fn push(&mut self, raw: &RawFrame, out: &mut Vec<Decoded>) {
        out.push(Decoded::Frame(Frame {
            index: self.next_index,
            device_t: None,
            values: values(&self.convs, raw),
        }));
        self.next_index += 1;
        self.stats.frames += 1;
    }
}

/// `seq + j` mod 16.
fn next(seq: u8, j: usize) -> u8 {
    ((usize::from(seq) + j) & 0x0F) as u8
}

/// The frames lost while hunting: the `k ≡ seq − prev − 1 (mod 16)` closest to `skipped / len`,
/// and whether more than 15 frames' worth of bytes were skipped (so `k` may be off by 16s).
fn resync_loss(prev: u8, seq: u8, skipped: u64, len: usize) -> (u64, bool) {
    let k0 = u64::from(seq.wrapping_sub(prev).wrapping_sub(1) & 0x0F);
    let estimate = skipped as f64 / len as f64;
    let periods = ((estimate - k0 as f64) / 16.0).round().max(0.0) as u64;
    (k0 + 16 * periods, skipped > MAX_COUNTED * len as u64)
}

/// A frame's values, converted.
fn values(convs: &[Conversion], raw: &RawFrame) -> Vec<Value> {
    convs
        .iter()
        .enumerate()
        .map(|(i, conv)| {
            let adc = f64::from(raw.analog[i]);
            Value {
                raw: adc,
                value: conv.to_unit(adc, frame::bits_at(i)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_loss_picks_the_congruent_count_nearest_the_bytes_skipped() {
        // One byte dropped inside the frame after seq 3 (N = 4): 3 bytes skipped, seq 5 next.
        assert_eq!(resync_loss(3, 5, 3, 4), (1, false));
        // Bytes inserted, nothing lost: seq 4 follows seq 3 after 2 junk bytes.
        assert_eq!(resync_loss(3, 4, 2, 4), (0, false));
        // 40 frames' worth skipped, seq says 8 mod 16: 40 is the nearest of 8, 24, 40, 56.
        assert_eq!(resync_loss(0, 9, 160, 4), (40, true));
        // 14.5 frames' worth, congruent to 0: 16 is nearer than 0.
        assert_eq!(resync_loss(7, 8, 58, 4), (16, false));
    }
}
