//! Signal-quality checks shared by the streaming ECG and PPG detectors.
//!
//! Statistics are gathered in blocks of 0.25 s and judged over the last [`WINDOW_BLOCKS`]
//! blocks (2 s), so the per-sample cost is a few comparisons and two multiply-adds:
//!
//! - **flat** (lead off, sensor unplugged): the window's range (max − min of the raw samples)
//!   is zero up to rounding (≤ 1e-12 of the level), or below 1 % of a slowly decaying reference
//!   range (the largest 2 s range seen, halved every 10 s).
//! - **saturated** (clipped amplifier or ADC): at least 10 % of the window's samples sit exactly
//!   at the window's maximum or minimum. A clean ECG or PPG touches its extremes for a few
//!   samples per window (< 1 %); a clipped one sits on the rail for whole stretches. The count
//!   at the window's extremes is exact: a sample equal to the window maximum is a block maximum.
//! - **mains**: the energy out of a band-pass biquad (Q = 4) at 50 Hz, and one at 60 Hz, exceeds
//!   `ratio` × a reference energy the detector supplies (ECG: the high-passed ECG itself, ratio
//!   0.5, i.e. the hum carries more than half of the power; PPG: the pulse band, ratio 1). Bands
//!   at or above 0.45·fs are not checked (at 100 Hz neither 50 nor 60 Hz can be told from the
//!   signal).
//!
//! The detectors add the other issues (non-finite samples, no beats, inverted ECG).

/// Block length, s.
pub(super) const BLOCK_S: f64 = 0.25;
/// Blocks per judged window (2 s).
pub(super) const WINDOW_BLOCKS: usize = 8;
/// Fraction of the window at its extremes that counts as saturation.
const SATURATED_FRACTION: f64 = 0.10;
/// Range relative to the reference range below which the signal counts as flat.
const FLAT_FRACTION: f64 = 0.01;
/// Half-life of the reference range, s.
const REF_HALF_LIFE_S: f64 = 10.0;
/// Quality of the mains band-passes.
const MAINS_Q: f64 = 4.0;

use super::SignalIssue;
use super::ecg::{NO_BEATS_S, NON_FINITE_S};
use super::stages::Resonator;

#[derive(Debug, Clone, Copy)]
struct Block {
    min: f64,
    max: f64,
    at_min: u32,
    at_max: u32,
    n: u32,
    hum50: f64,
    hum60: f64,
    reference: f64,
}

impl Block {
    const EMPTY: Self = Self {
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
        at_min: 0,
        at_max: 0,
        n: 0,
        hum50: 0.0,
        hum60: 0.0,
        reference: 0.0,
    };
}

/// The quality monitor of one stream.
#[derive(Debug, Clone)]
pub(super) struct Quality {
    block_len: u32,
    cur: Block,
    blocks: [Block; WINDOW_BLOCKS],
    head: usize,
    filled: usize,
    ref_range: f64,
    decay: f64,
    hum50: Option<Resonator>,
    hum60: Option<Resonator>,
    primed: bool,
    ratio: f64,
    /// The last judged window was flat.
    pub(super) flat: bool,
    /// The last judged window was saturated.
    pub(super) saturated: bool,
    /// The last judged window was dominated by mains hum.
    pub(super) mains: bool,
}

impl Quality {
    /// A monitor at `fs` Hz; hum counts when it exceeds `ratio` × the reference energy.
    pub(super) fn new(fs: f64, ratio: f64) -> Self {
        let block_len = ((BLOCK_S * fs).round() as u32).max(1);
        let blocks_per_half_life = REF_HALF_LIFE_S / BLOCK_S;
        Self {
            block_len,
            cur: Block::EMPTY,
            blocks: [Block::EMPTY; WINDOW_BLOCKS],
            head: 0,
            filled: 0,
            ref_range: 0.0,
            decay: 0.5f64.powf(1.0 / blocks_per_half_life),
            hum50: Resonator::new(fs, 50.0, MAINS_Q),
            hum60: Resonator::new(fs, 60.0, MAINS_Q),
            primed: false,
            ratio,
            flat: false,
            saturated: false,
            mains: false,
        }
    }

    /// Forgets everything (the flags clear).
    pub(super) fn reset(&mut self) {
        self.cur = Block::EMPTY;
        self.head = 0;
        self.filled = 0;
        self.ref_range = 0.0;
        self.primed = false;
        self.flat = false;
        self.saturated = false;
        self.mains = false;
    }

    /// Restarts the hum filters at the next sample (after a gap in the signal they watch).
    pub(super) fn reprime(&mut self) {
        self.primed = false;
    }

    /// One finite raw sample `raw`; `hum_in` is what the mains band-passes read; `reference` is
    /// this sample's reference energy.
    #[inline]
    pub(super) fn push(&mut self, raw: f64, hum_in: f64, reference: f64) {
        let b = &mut self.cur;
        if raw > b.max {
            b.max = raw;
            b.at_max = 1;
        } else if raw == b.max {
            b.at_max += 1;
        }
        if raw < b.min {
            b.min = raw;
            b.at_min = 1;
        } else if raw == b.min {
            b.at_min += 1;
        }
        b.n += 1;
        b.reference += reference;
        if !self.primed {
            for r in [&mut self.hum50, &mut self.hum60].into_iter().flatten() {
                r.prime(hum_in);
            }
            self.primed = true;
        }
        if let Some(r) = &mut self.hum50 {
            let y = r.step(hum_in);
            b.hum50 += y * y;
        }
        if let Some(r) = &mut self.hum60 {
            let y = r.step(hum_in);
            b.hum60 += y * y;
        }
        if b.n >= self.block_len {
            self.close_block();
        }
    }

    /// The issue shared by both detectors, most specific first: a non-finite sample in the last
    /// [`NON_FINITE_S`], flat, saturated, mains hum, no beat for [`NO_BEATS_S`]. `n` is the
    /// detector's sample count, `last_bad` the index of the newest non-finite sample,
    /// `last_beat` that of the newest beat.
    pub(super) fn issue(
        &self,
        fs: f64,
        n: u64,
        last_bad: Option<u64>,
        last_beat: u64,
    ) -> Option<SignalIssue> {
        let secs = |s: f64| (s * fs) as u64;
        if last_bad.is_some_and(|b| n - b <= secs(NON_FINITE_S)) {
            Some(SignalIssue::NonFinite)
        } else if self.flat {
            Some(SignalIssue::Flat)
        } else if self.saturated {
            Some(SignalIssue::Saturated)
        } else if self.mains {
            Some(SignalIssue::Mains)
        } else if n.saturating_sub(last_beat) > secs(NO_BEATS_S) {
            Some(SignalIssue::NoBeats)
        } else {
            None
        }
    }

    fn close_block(&mut self) {
        if let Some(slot) = self.blocks.get_mut(self.head) {
            *slot = self.cur;
        }
        self.cur = Block::EMPTY;
        self.head = (self.head + 1) % WINDOW_BLOCKS;
        self.filled = (self.filled + 1).min(WINDOW_BLOCKS);
        if self.filled < WINDOW_BLOCKS {
            return;
        }
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut n, mut h50, mut h60, mut reference) = (0u32, 0.0, 0.0, 0.0);
        for b in &self.blocks {
            lo = lo.min(b.min);
            hi = hi.max(b.max);
            n += b.n;
            h50 += b.hum50;
            h60 += b.hum60;
            reference += b.reference;
        }
        let at_extremes: u32 = self
            .blocks
            .iter()
            .map(|b| {
                (if b.max == hi { b.at_max } else { 0 }) + (if b.min == lo { b.at_min } else { 0 })
            })
            .sum();
        let range = hi - lo;
        let level = hi.abs().max(lo.abs());
        self.flat = range <= 1e-12 * level || range < FLAT_FRACTION * self.ref_range;
        self.ref_range = (self.ref_range * self.decay).max(range);
        self.saturated = !self.flat && f64::from(at_extremes) >= SATURATED_FRACTION * f64::from(n);
        self.mains = h50.max(h60) > self.ratio * reference && reference.is_finite();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fs: f64, secs: f64, f: impl Fn(f64) -> f64) -> Quality {
        let mut q = Quality::new(fs, 0.5);
        for i in 0..(fs * secs) as usize {
            let x = f(i as f64 / fs);
            q.push(x, x, x * x);
        }
        q
    }

    #[test]
    fn a_constant_is_flat_and_not_saturated() {
        let q = run(250.0, 3.0, |_| 512.0);
        assert!(q.flat && !q.saturated);
        let q = run(250.0, 3.0, |_| 0.0);
        assert!(q.flat);
    }

    #[test]
    fn a_clipped_sine_is_saturated_and_a_clean_one_is_not() {
        let sine = |t: f64| (2.0 * std::f64::consts::PI * 1.3 * t).sin();
        let q = run(250.0, 4.0, |t| (2.0 * sine(t)).clamp(-1.0, 1.0));
        assert!(q.saturated && !q.flat);
        let q = run(250.0, 4.0, sine);
        assert!(!q.saturated && !q.flat);
    }

    #[test]
    fn hum_dominance_is_seen_at_50_and_60_hz_only_below_nyquist() {
        for f in [50.0, 60.0] {
            let q = run(500.0, 3.0, |t| (2.0 * std::f64::consts::PI * f * t).sin());
            assert!(q.mains, "{f} Hz");
        }
        let q = run(500.0, 3.0, |t| (2.0 * std::f64::consts::PI * 8.0 * t).sin());
        assert!(!q.mains);
        let q = run(100.0, 3.0, |t| {
            (2.0 * std::f64::consts::PI * 50.0 * t).sin()
        });
        assert!(!q.mains);
    }
}
