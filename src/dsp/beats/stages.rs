//! Allocation-free building blocks shared by the streaming ECG and PPG detectors.
//!
//! - [`TrailingMean`]: the mean of the last `w` values, by a running sum over a ring. The sum is
//!   recomputed from the ring each time the ring wraps (O(w) every w samples, so O(1) per
//!   sample), which bounds floating-point drift and lets a huge value leave no residue once it
//!   has left the window.
//! - [`History`]: the last `n` values of a signal, stored twice over ("doubled ring") so that any
//!   stretch of the recent past is one contiguous slice without copying.
//! - [`most_prominent`]: scipy `find_peaks` + `peak_prominences` over a slice, the choice
//!   NeuroKit2's detectors make within a candidate wave (the same semantics as
//!   [`crate::dsp::peaks::most_prominent`], without its allocations), optionally on the negated
//!   slice.
//! - [`Resonator`]: one primed DF2T band-pass biquad (RBJ cookbook, 0 dB peak), used to measure
//!   mains hum.
//!
//! All state is allocated when a detector is built; nothing here allocates per sample.

/// Mean of the last `w` values pushed (of fewer at the start: the mean of what there is).
#[derive(Debug, Clone)]
pub(super) struct TrailingMean {
    buf: Box<[f64]>,
    pos: usize,
    len: usize,
    sum: f64,
    /// 1 / window length.
    inv: f64,
}

impl TrailingMean {
    /// A mean over `w` values (at least 1).
    pub(super) fn new(w: usize) -> Self {
        Self {
            buf: vec![0.0; w.max(1)].into_boxed_slice(),
            pos: 0,
            len: 0,
            sum: 0.0,
            inv: 1.0 / w.max(1) as f64,
        }
    }

    /// Fills the whole window with `x`, as if `x` had always been the input (priming).
    pub(super) fn prime(&mut self, x: f64) {
        self.buf.fill(x);
        self.len = self.buf.len();
        self.pos = 0;
        self.sum = x * self.len as f64;
    }

    /// Empties the window.
    pub(super) fn reset(&mut self) {
        self.len = 0;
        self.pos = 0;
        self.sum = 0.0;
    }

    /// Whether nothing was pushed since the last reset.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pushes `x` and returns the mean of the window.
    #[inline]
    pub(super) fn push(&mut self, x: f64) -> f64 {
        let w = self.buf.len();
        let Some(slot) = self.buf.get_mut(self.pos) else {
            return x;
        };
        if self.len == w {
            self.sum -= *slot;
        } else {
            self.len += 1;
        }
        *slot = x;
        self.sum += x;
        self.pos += 1;
        if self.pos == w {
            self.pos = 0;
            self.sum = self.buf[..self.len].iter().sum();
        }
        // A full window (every sample but the first `w`) multiplies by the stored reciprocal:
        // one multiplication instead of a division per sample and per mean.
        if self.len == w {
            self.sum * self.inv
        } else {
            self.sum / self.len as f64
        }
    }
}

/// The last `n` values of a signal, each stored at `pos` and `pos + n`.
#[derive(Debug, Clone)]
pub(super) struct History {
    buf: Box<[f64]>,
    n: usize,
    pos: usize,
    /// Absolute index of the most recent value; `None` while empty.
    newest: Option<u64>,
    /// Absolute index of the oldest value held.
    oldest: u64,
}

impl History {
    /// Room for `n` values (at least 1).
    pub(super) fn new(n: usize) -> Self {
        let n = n.max(1);
        Self {
            buf: vec![0.0; 2 * n].into_boxed_slice(),
            n,
            pos: 0,
            newest: None,
            oldest: 0,
        }
    }

    /// Forgets everything.
    pub(super) fn reset(&mut self) {
        self.pos = 0;
        self.newest = None;
        self.oldest = 0;
    }

    /// Appends the value of absolute index `at` (indices must be consecutive after a reset).
    #[inline]
    pub(super) fn push(&mut self, at: u64, x: f64) {
        // Both copies; `pos < n` always, so `pos + n < 2n`.
        if let Some(slot) = self.buf.get_mut(self.pos) {
            *slot = x;
        }
        if let Some(slot) = self.buf.get_mut(self.pos + self.n) {
            *slot = x;
        }
        self.pos += 1;
        if self.pos == self.n {
            self.pos = 0;
        }
        if self.newest.is_none() {
            self.oldest = at;
        }
        self.newest = Some(at);
        if at - self.oldest >= self.n as u64 {
            self.oldest = at + 1 - self.n as u64;
        }
    }

    /// Values of absolute indices `from .. to` (exclusive), if all are still held.
    pub(super) fn range(&self, from: u64, to: u64) -> Option<&[f64]> {
        let newest = self.newest?;
        if from < self.oldest || to > newest + 1 || from >= to {
            return None;
        }
        // buf[pos .. pos + n] holds the last n values, oldest first; index `newest` sits at
        // pos + n - 1.
        let end = self.pos + self.n;
        let lo = end - (newest + 1 - from) as usize;
        let hi = end - (newest + 1 - to) as usize;
        self.buf.get(lo..hi)
    }
}

/// Index of the most prominent local maximum of `sign · seg` (the first on ties), with scipy's
/// semantics: `x[i-1] < x[i] > x[i+1]`, plateau midpoints `⌊(i+j)/2⌋`, ends never peaks;
/// prominence = peak − max(left minimum, right minimum), each side walked until a strictly
/// higher sample or the slice end. `sign` is 1 or −1 (negation keeps comparisons exact).
pub(super) fn most_prominent(seg: &[f64], sign: f64) -> Option<usize> {
    let n = seg.len();
    if n < 3 {
        return None;
    }
    let v = |i: usize| sign * seg[i];
    let mut best: Option<(usize, f64)> = None;
    let mut i = 1;
    while i < n - 1 {
        if v(i - 1) < v(i) {
            let mut ahead = i + 1;
            while ahead < n - 1 && v(ahead) == v(i) {
                ahead += 1;
            }
            if v(ahead) < v(i) {
                let peak = (i + ahead - 1) / 2;
                let top = v(peak);
                let mut left_min = top;
                for k in (0..=peak).rev() {
                    let x = v(k);
                    if x > top {
                        break;
                    }
                    left_min = left_min.min(x);
                }
                let mut right_min = top;
                for k in peak..n {
                    let x = v(k);
                    if x > top {
                        break;
                    }
                    right_min = right_min.min(x);
                }
                let prom = top - left_min.max(right_min);
                if best.is_none_or(|(_, bp)| prom > bp) {
                    best = Some((peak, prom));
                }
                i = ahead;
            }
        }
        i += 1;
    }
    best.map(|(p, _)| p)
}

/// A DF2T biquad band-pass (RBJ "constant 0 dB peak gain") at `f0` Hz with quality `q`.
#[derive(Debug, Clone)]
pub(super) struct Resonator {
    b0: f64,
    a1: f64,
    a2: f64,
    s1: f64,
    s2: f64,
}

impl Resonator {
    /// `None` if `f0` is not well below Nyquist (above 0.45·fs the band cannot be told apart).
    pub(super) fn new(fs: f64, f0: f64, q: f64) -> Option<Self> {
        if !(f0 > 0.0 && f0 < 0.45 * fs && q > 0.0) {
            return None;
        }
        let w0 = 2.0 * std::f64::consts::PI * f0 / fs;
        let alpha = w0.sin() / (2.0 * q);
        let a0 = 1.0 + alpha;
        Some(Self {
            b0: alpha / a0,
            a1: -2.0 * w0.cos() / a0,
            a2: (1.0 - alpha) / a0,
            s1: 0.0,
            s2: 0.0,
        })
    }

    /// Primes for a constant input `x0` (zero DC gain: output 0, no step transient).
    pub(super) fn prime(&mut self, x0: f64) {
        // b1 = 0, b2 = −b0; y = 0 for a constant input.
        self.s1 = -self.b0 * x0;
        self.s2 = -self.b0 * x0;
    }

    /// Filters one sample.
    #[inline]
    pub(super) fn step(&mut self, x: f64) -> f64 {
        let y = self.b0 * x + self.s1;
        self.s1 = -self.a1 * y + self.s2;
        self.s2 = -self.b0 * x - self.a2 * y;
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::peaks;

    #[test]
    fn trailing_mean_is_the_mean_of_the_last_values() {
        let mut m = TrailingMean::new(4);
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        for (i, &x) in xs.iter().enumerate() {
            let got = m.push(x);
            let lo = i.saturating_sub(3);
            let want = xs[lo..=i].iter().sum::<f64>() / (i + 1 - lo) as f64;
            assert!((got - want).abs() < 1e-12);
        }
        // A huge value leaves no residue once it has left the window.
        m.push(1e200);
        for _ in 0..8 {
            m.push(1.0);
        }
        assert_eq!(m.push(1.0), 1.0);
    }

    #[test]
    fn history_gives_contiguous_ranges() {
        let mut h = History::new(5);
        for i in 0..12u64 {
            h.push(i, i as f64);
        }
        assert_eq!(h.range(7, 12).unwrap(), &[7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(h.range(9, 11).unwrap(), &[9.0, 10.0]);
        assert!(h.range(6, 9).is_none());
        assert!(h.range(10, 13).is_none());
    }

    #[test]
    fn most_prominent_agrees_with_the_scipy_port() {
        let mut s: u64 = 7;
        for len in [3usize, 5, 17, 60] {
            for _ in 0..200 {
                let seg: Vec<f64> = (0..len)
                    .map(|_| {
                        s = s
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((s >> 60) as f64).round()
                    })
                    .collect();
                assert_eq!(most_prominent(&seg, 1.0), peaks::most_prominent(&seg));
                let neg: Vec<f64> = seg.iter().map(|v| -v).collect();
                assert_eq!(most_prominent(&seg, -1.0), peaks::most_prominent(&neg));
            }
        }
    }

    #[test]
    fn resonator_passes_its_band_and_rejects_dc() {
        let fs = 1000.0;
        let mut r = Resonator::new(fs, 50.0, 4.0).unwrap();
        r.prime(3.0);
        assert!(r.step(3.0).abs() < 1e-12);
        let mut peak: f64 = 0.0;
        for i in 0..5000 {
            let y = r.step((2.0 * std::f64::consts::PI * 50.0 * i as f64 / fs).sin());
            if i > 2500 {
                peak = peak.max(y.abs());
            }
        }
        assert!((peak - 1.0).abs() < 0.01, "{peak}");
        assert!(Resonator::new(100.0, 50.0, 4.0).is_none());
    }
}

/// What [`Hold`] makes of one input sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Admit {
    /// A finite, plausible sample.
    Good(f64),
    /// A bad sample (NaN, ±inf, |x| > `MAX_ABS`) bridged by the last good one.
    Held(f64),
    /// Too many bad samples in a row: the filters must restart at the next good one.
    Lost,
}

/// Bad samples shared by both detectors: a run of up to `hold_max` of them is bridged by
/// holding the last good sample (so no NaN reaches a filter state); a longer run restarts the
/// detector. Remembers the newest bad sample for `SignalIssue::NonFinite`.
#[derive(Debug, Clone)]
pub(super) struct Hold {
    held: f64,
    bad_run: u64,
    hold_max: u64,
    /// Index of the newest bad sample.
    pub(super) last_bad: Option<u64>,
}

impl Hold {
    /// Bridges runs of up to `hold_max` bad samples.
    pub(super) fn new(hold_max: u64) -> Self {
        Self {
            held: 0.0,
            bad_run: 0,
            hold_max,
            last_bad: None,
        }
    }

    /// Sample `raw` at index `i`.
    #[inline]
    pub(super) fn admit(&mut self, i: u64, raw: f64, max_abs: f64) -> Admit {
        if raw.is_finite() && raw.abs() <= max_abs {
            self.bad_run = 0;
            self.held = raw;
            Admit::Good(raw)
        } else {
            self.last_bad = Some(i);
            self.bad_run += 1;
            if self.bad_run > self.hold_max {
                Admit::Lost
            } else {
                Admit::Held(self.held)
            }
        }
    }

    /// Whether the last sample admitted was good.
    pub(super) fn fresh(&self) -> bool {
        self.bad_run == 0
    }

    /// Forgets the bad samples seen.
    pub(super) fn reset(&mut self) {
        self.bad_run = 0;
        self.last_bad = None;
    }
}
