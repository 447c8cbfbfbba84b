//! Streaming beat artefact handling for RR intervals (Lipponen & Tarvainen 2019).
//!
//! Pure: one interval at a time in (ms, with the device time of the beat that ends it, s),
//! decided intervals out. The same input fits RR from a BLE strap (SIGNALS.md §2.5) and RR
//! between detected ECG/PPG beats.
//!
//! # Method
//!
//! Lipponen & Tarvainen, "A robust algorithm for heart rate variability time series artefact
//! correction using novel beat classification", *J Med Eng Technol* 43:173–181 (2019), as
//! NeuroKit2 0.2.13 implements it in `signal_fixpeaks(method="Kubios")` (SIGNALS.md §2.3):
//! c1 = 0.13, c2 = 0.17, α = 5.2, thresholds over 91 beats, median over 11 beats. For each
//! interval RRⱼ (ms):
//!
//! - dRRⱼ = RRⱼ − RRⱼ₋₁, normalised by Th1 = α·(Q3 − Q1)/2 of |dRR| (quartiles with linear
//!   interpolation, as pandas' rolling quantile);
//! - medRRⱼ = median of 11 intervals, mRRⱼ = RRⱼ − medRRⱼ with negatives doubled, normalised by
//!   Th2 = α·(Q3 − Q1)/2 of |mRR|;
//! - **ectopic** (the displaced beat j, e.g. a PVC: a short interval, then the compensatory
//!   pause): the difference that follows it, b = dRRⱼ₊₁, is the middle of a negative–positive–
//!   negative or positive–negative–positive pattern: b > 1 and max(dRRⱼ, dRRⱼ₊₂) < −c1·b − c2,
//!   or b < −1 and min(dRRⱼ, dRRⱼ₊₂) > −c1·b + c2 (subspace S12), and |b| ≥ |dRRⱼ₊₂| (a beat
//!   displaced by δ gives the differences δ, −2δ, δ; without this the normal beat before a PVC
//!   matches whenever its own difference is positive enough). NeuroKit tests this on
//!   dRRⱼ₊₁'s own index, so it flags the sinus beat after the pause (and catches the premature
//!   one as "short"); attributing the pattern to the beat between the two jumps is the paper's
//!   reading and lets one correction fix both intervals;
//! - otherwise, if |dRRⱼ| > 1: with S22 = min(dRRⱼ₊₁, dRRⱼ₊₂) (dRRⱼ ≥ 0) or max (dRRⱼ < 0),
//!   long = dRRⱼ > 1 ∧ S22 < −1, short = dRRⱼ < −1 ∧ S22 > 1, or |mRRⱼ| > 3; then **extra** if
//!   short ∧ |RRⱼ + RRⱼ₊₁ − medRR| < Th2, **missed** if long ∧ |RRⱼ/2 − medRR| < Th2, else
//!   **long/short**. Beats with |dRRⱼ| ≤ 1 are normal (NeuroKit's flow).
//!
//! # Streaming, and the decision delay
//!
//! The paper centres its windows; here every window is **trailing**: the 91-value threshold
//! windows end at the newest decided beat, and the 11-interval median ends at the newest interval
//! received (so it includes the two look-ahead intervals: RRⱼ₋₈ … RRⱼ₊₂). S12 and S22 need
//! dRRⱼ₊₂, i.e. RRⱼ₊₂: **an interval is decided when the second interval after it arrives, a
//! delay of 2 beats** (≈ 1.7 s at 70 bpm, 1.2 s at 100 bpm). At a gap, an implausible interval
//! or [`RrFixer::flush`] the pending intervals are decided with the look-ahead they have.
//!
//! Decisions use the already corrected past (dRRⱼ is taken against the corrected RRⱼ₋₁), which is
//! a causal form of NeuroKit's `iterative=True`. The threshold windows are fed only with normal
//! beats (decision-directed): with 10 % PVCs about 30 % of all |dRR| are artefact jumps, enough
//! to move Q3 into them and to lift Th1 above the jumps themselves (measured in the tests), which
//! the paper's centred window on raw data cannot avoid in one pass.
//!
//! # Correction, and why RMSSD excludes rather than interpolates
//!
//! - extra: the two intervals are merged (the spurious beat deleted);
//! - missed: the interval is split in two halves (a beat inserted at the midpoint);
//! - ectopic: the beat is moved to the midpoint of its neighbours, so both intervals become
//!   (RRⱼ + RRⱼ₊₁)/2 (NeuroKit's `_correct_misaligned`; time is conserved);
//! - long/short: the interval is replaced by medRR.
//!
//! Corrected intervals count for mean HR (the corrected series keeps the beat count and the
//! time), but **no successive difference touching a corrected interval is used**: RMSSD comes
//! only from pairs of adjacent original intervals. Kubios interpolates and differences the
//! interpolated values; an interpolated value sits between its neighbours, so the two differences
//! around it are each about half the true local difference and RMSSD is biased low, by more as
//! the artefact rate rises (at 10 % PVCs three of every ten differences would be touched).
//! Excluding them leaves an unbiased sample of the remaining differences, the same rule the
//! minimal streaming rule already follows ("never difference across a gap", SIGNALS.md §2.3).
//! Deletion/exclusion is the common recommendation for time-domain indices, interpolation for
//! spectra: Lippman, Stein & Lerman, *Am J Physiol* 267:H411 (1994); Salo, Huikuri & Seppänen,
//! *Ann Noninvasive Electrocardiol* 6:5 (2001); Peltola, *Front Physiol* 3:148 (2012)
//! **(recalled)**.
//!
//! # Warm-up, relearn, floors
//!
//! Until the threshold window holds `warmup` values (the first ~30 beats, and after a relearn)
//! the quartiles mean little, so intervals are decided at once by SIGNALS.md §2.3's minimal rule
//! (within ±`tolerance` of the median of the last 11 intervals, with no delay). When 12 or more of
//! the last 16 decisions were artefacts, the threshold windows are cleared and learnt again,
//! so a bad start (or a change of person) cannot lock the stream out; the median is taken over
//! all received intervals, so it cannot lock out either. Th1 and Th2 are floored at
//! 1.5 × the window's median (degenerate quartiles: quantised or strictly alternating series have
//! Q3 = Q1) and at 2 % of medRR (a constant series), so nothing divides by zero.
//!
//! Cost: O(log 91 + 91) per beat (binary search and one `memmove` in two sorted windows of 91
//! values, and one of 11); memory is fixed. Intervals outside [min, max] ms or not finite are
//! rejected at once (and count as a break in the chain); no input panics.

use std::collections::VecDeque;

/// Settings of the artefact step (defaults: the paper's and NeuroKit's values).
#[derive(Debug, Clone, PartialEq)]
pub struct FixConfig {
    /// S12 slope.
    pub c1: f64,
    /// S12 offset.
    pub c2: f64,
    /// Threshold scale on the quartile deviation.
    pub alpha: f64,
    /// Threshold window, beats.
    pub window: usize,
    /// Median length, intervals.
    pub median_len: usize,
    /// Threshold-window values needed before the classifier is trusted.
    pub warmup: usize,
    /// Decisions looked at for relearning.
    pub relearn_len: u32,
    /// Artefacts among the last `relearn_len` decisions that trigger a relearn.
    pub relearn_artefacts: u32,
}

impl Default for FixConfig {
    fn default() -> Self {
        Self {
            c1: 0.13,
            c2: 0.17,
            alpha: 5.2,
            window: 91,
            median_len: 11,
            warmup: 30,
            relearn_len: 16,
            relearn_artefacts: 12,
        }
    }
}

/// What the artefact step made of one received interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeatClass {
    /// Used as received.
    Normal,
    /// A displaced beat (premature or late): moved to its neighbours' midpoint. The following
    /// interval, changed by the move, is reported with this class too.
    Ectopic,
    /// Twice the expected interval: split in two.
    Missed,
    /// A spurious beat: merged with the next interval (which is reported with this class too).
    Extra,
    /// Too long or too short for any pattern: replaced by the local median.
    LongShort,
    /// Outside the warm-up rule's band (±tolerance of the median): left out.
    Screened,
    /// Outside the plausible range or not finite: left out.
    Implausible,
}

impl BeatClass {
    /// Whether the interval was corrected or excluded.
    pub fn is_artefact(self) -> bool {
        self != Self::Normal
    }
}

/// One interval of the corrected series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FixedBeat {
    /// Device time of the beat that ends the interval, s.
    pub t: f64,
    /// The interval, ms.
    pub rr_ms: f64,
    /// The previous interval of the corrected series is adjacent and both are original, so the
    /// successive difference is valid.
    pub follows: bool,
    /// Whether the value was changed by a correction (never differenced).
    pub corrected: bool,
}

/// A decision on one received interval, and the corrected intervals it gives (0, 1 or 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decided {
    /// Device time of the received beat, s (the last finite time for a non-finite one).
    pub t: f64,
    /// The class.
    pub class: BeatClass,
    /// Corrected intervals, in time order.
    pub beats: [Option<FixedBeat>; 2],
}

/// A fixed-capacity window of the newest values, also kept sorted (binary insertion).
#[derive(Debug, Clone)]
struct SortedWindow {
    cap: usize,
    fifo: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl SortedWindow {
    fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            fifo: VecDeque::with_capacity(cap),
            sorted: Vec::with_capacity(cap),
        }
    }

    fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.fifo.len() >= self.cap
            && let Some(old) = self.fifo.pop_front()
        {
            let i = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
        self.fifo.push_back(x);
        let i = self.sorted.partition_point(|v| v.total_cmp(&x).is_lt());
        self.sorted.insert(i, x);
    }

    fn len(&self) -> usize {
        self.sorted.len()
    }

    fn clear(&mut self) {
        self.fifo.clear();
        self.sorted.clear();
    }

    /// Quantile with linear interpolation (numpy/pandas default); None when empty.
    fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.sorted.len();
        let last = n.checked_sub(1)?;
        let pos = q.clamp(0.0, 1.0) * last as f64;
        let lo = pos.floor() as usize;
        let hi = (lo + 1).min(last);
        let (a, b) = (*self.sorted.get(lo)?, *self.sorted.get(hi)?);
        Some(a + (b - a) * (pos - lo as f64))
    }

    /// α·(Q3 − Q1)/2, floored at 1.5 × the median and at `floor`.
    fn threshold(&self, alpha: f64, floor: f64) -> f64 {
        let (q1, q2, q3) = (
            self.quantile(0.25).unwrap_or(0.0),
            self.quantile(0.5).unwrap_or(0.0),
            self.quantile(0.75).unwrap_or(0.0),
        );
        (alpha * (q3 - q1) / 2.0).max(1.5 * q2).max(floor)
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    t: f64,
    rr: f64,
    /// Set when an earlier correction already changed this interval.
    altered: Option<BeatClass>,
    /// Time of a too-short interval merged into this one.
    carried: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Prev {
    rr: f64,
    original: bool,
}

/// The streaming artefact step of one RR stream.
#[derive(Debug, Clone)]
pub struct RrFixer {
    cfg: FixConfig,
    min_ms: f64,
    max_ms: f64,
    tolerance: f64,
    med: SortedWindow,
    th1: SortedWindow,
    th2: SortedWindow,
    pending: VecDeque<Pending>,
    prev: Option<Prev>,
    /// The last `relearn_len` decisions, newest in bit 0: 1 = artefact.
    history: u32,
    history_len: u32,
    last_t: Option<f64>,
    relearns: u64,
    /// A too-short interval waiting to be merged into the next one: (t s, ms).
    carry: Option<(f64, f64)>,
}

/// Intervals held back for look-ahead: j is decided when j + 2 arrives.
pub const DELAY_BEATS: usize = 2;

impl RrFixer {
    /// A fixer accepting intervals in [`min_ms`, `max_ms`]. `tolerance` is the warm-up rule's
    /// band (relative to the median); `f64::INFINITY` (or NaN) turns the artefact step off:
    /// every plausible interval is used at once, as received.
    pub fn new(min_ms: f64, max_ms: f64, tolerance: f64, cfg: FixConfig) -> Self {
        let relearn_len = cfg.relearn_len.clamp(1, 32);
        let cfg = FixConfig { relearn_len, ..cfg };
        Self {
            med: SortedWindow::new(cfg.median_len),
            th1: SortedWindow::new(cfg.window),
            th2: SortedWindow::new(cfg.window),
            cfg,
            min_ms,
            max_ms,
            tolerance,
            pending: VecDeque::with_capacity(DELAY_BEATS + 1),
            prev: None,
            history: 0,
            history_len: 0,
            last_t: None,
            relearns: 0,
            carry: None,
        }
    }

    /// Whether the artefact step is on (a finite tolerance).
    pub fn enabled(&self) -> bool {
        self.tolerance.is_finite()
    }

    /// How often the thresholds were learnt again.
    pub fn relearns(&self) -> u64 {
        self.relearns
    }

    /// Feeds one interval (`rr_ms`) ending at device time `t` (s); appends every interval decided
    /// by it to `out`. Returns the provisional verdict: false if the interval is implausible or
    /// off the warm-up rule's band (the final class arrives in `out`, up to
    /// [`DELAY_BEATS`] intervals later).
    pub fn push(&mut self, t: f64, rr_ms: f64, out: &mut Vec<Decided>) -> bool {
        let plausible = t.is_finite()
            && rr_ms.is_finite()
            && rr_ms >= self.min_ms
            && rr_ms <= self.max_ms
            && rr_ms > 0.0;
        if !plausible {
            // A finite, too-short interval is most often a spurious beat (a T wave or a motion
            // spike counted as a beat): it is carried into the next interval, which is then the
            // merged one, instead of breaking the chain. Anything else breaks it.
            let short = t.is_finite() && rr_ms.is_finite() && rr_ms > 0.0 && rr_ms < self.min_ms;
            if short && self.carry.is_none() && self.enabled() {
                // Reported (as implausible) when the merge happens, to keep time order.
                self.carry = Some((t, rr_ms));
                self.last_t = Some(t);
                return false;
            }
            self.flush(out);
            self.prev = None;
            self.drop_carry(out);
            if let Some(t) = t.is_finite().then_some(t).or(self.last_t) {
                self.last_t = Some(t);
                out.push(Decided {
                    t,
                    class: BeatClass::Implausible,
                    beats: [None, None],
                });
            }
            return false;
        }
        self.last_t = Some(t);
        let (rr_ms, carried) = match self.carry {
            Some((ct, c)) if rr_ms + c <= self.max_ms => {
                self.carry = None;
                (rr_ms + c, Some(ct))
            }
            Some(_) => {
                self.flush(out);
                self.prev = None;
                self.drop_carry(out);
                (rr_ms, None)
            }
            None => (rr_ms, None),
        };
        let merged = carried.is_some();
        if !self.enabled() {
            self.emit(t, rr_ms, BeatClass::Normal, false, out);
            return true;
        }
        let in_band = self.in_band(rr_ms) && !merged;
        self.med.push(rr_ms);
        if merged {
            // The merged interval is a correction: released as such, never classified.
            if self.warming_up() {
                push_implausible(carried, out);
                self.emit(t, rr_ms, BeatClass::Extra, true, out);
            } else {
                self.pending.push_back(Pending {
                    t,
                    rr: rr_ms,
                    altered: Some(BeatClass::Extra),
                    carried,
                });
                while self.pending.len() > DELAY_BEATS {
                    self.decide_oldest(out);
                }
            }
        } else if self.warming_up() {
            // Pending is empty here: entering warm-up flushes it.
            let class = if in_band {
                BeatClass::Normal
            } else {
                BeatClass::Screened
            };
            self.settle(t, rr_ms, class, out);
        } else {
            self.pending.push_back(Pending {
                t,
                rr: rr_ms,
                altered: None,
                carried: None,
            });
            while self.pending.len() > DELAY_BEATS {
                self.decide_oldest(out);
            }
        }
        in_band
    }

    /// Decides every pending interval with the look-ahead available (at a gap or the end).
    pub fn flush(&mut self, out: &mut Vec<Decided>) {
        while !self.pending.is_empty() {
            self.decide_oldest(out);
        }
    }

    /// A gap: pending intervals are decided, the chain and the median restart. The thresholds
    /// (the person's beat-to-beat variability) are kept.
    pub fn gap(&mut self, out: &mut Vec<Decided>) {
        self.flush(out);
        self.prev = None;
        self.drop_carry(out);
        self.med.clear();
    }

    /// Reports a carried too-short interval that will not be merged.
    fn drop_carry(&mut self, out: &mut Vec<Decided>) {
        push_implausible(self.carry.take().map(|(t, _)| t), out);
    }

    fn warming_up(&self) -> bool {
        self.th1.len() < self.cfg.warmup
    }

    fn in_band(&self, rr: f64) -> bool {
        match self.med.quantile(0.5) {
            Some(m) if self.med.len() >= 3 => (rr - m).abs() <= self.tolerance * m,
            _ => true,
        }
    }

    /// A decision made without look-ahead (warm-up rule).
    fn settle(&mut self, t: f64, rr: f64, class: BeatClass, out: &mut Vec<Decided>) {
        if class == BeatClass::Normal {
            self.learn(rr);
            self.emit(t, rr, class, false, out);
        } else {
            self.prev = None;
            out.push(Decided {
                t,
                class,
                beats: [None, None],
            });
        }
    }

    /// Feeds the threshold windows with a normal interval (before `prev` moves on to it).
    fn learn(&mut self, rr: f64) {
        if let Some(p) = self.prev.filter(|p| p.original) {
            self.th1.push((rr - p.rr).abs());
        }
        if let Some(m) = self.med.quantile(0.5) {
            let d = rr - m;
            self.th2.push(if d < 0.0 { -2.0 * d } else { d });
        }
    }

    fn emit(&mut self, t: f64, rr: f64, class: BeatClass, corrected: bool, out: &mut Vec<Decided>) {
        let follows = !corrected && self.prev.is_some_and(|p| p.original);
        self.prev = Some(Prev {
            rr,
            original: !corrected,
        });
        out.push(Decided {
            t,
            class,
            beats: [
                Some(FixedBeat {
                    t,
                    rr_ms: rr,
                    follows,
                    corrected,
                }),
                None,
            ],
        });
    }

    fn remember(&mut self, artefact: bool) {
        let len = self.cfg.relearn_len;
        let mask = if len >= 32 { u32::MAX } else { (1 << len) - 1 };
        self.history = ((self.history << 1) | u32::from(artefact)) & mask;
        self.history_len = (self.history_len + 1).min(len);
        if self.history_len >= len && self.history.count_ones() >= self.cfg.relearn_artefacts {
            self.relearns += 1;
            self.th1.clear();
            self.th2.clear();
            self.history = 0;
            self.history_len = 0;
        }
    }

    fn decide_oldest(&mut self, out: &mut Vec<Decided>) {
        let Some(cur) = self.pending.pop_front() else {
            return;
        };
        push_implausible(cur.carried, out);
        if self.warming_up() {
            // A relearn emptied the thresholds: the rest goes by the warm-up rule.
            let class = if self.in_band(cur.rr) && cur.altered.is_none() {
                BeatClass::Normal
            } else {
                cur.altered.unwrap_or(BeatClass::Screened)
            };
            if cur.altered.is_some() {
                self.emit(cur.t, cur.rr, class, true, out);
            } else {
                self.settle(cur.t, cur.rr, class, out);
            }
            return;
        }
        if let Some(class) = cur.altered {
            self.emit(cur.t, cur.rr, class, true, out);
            self.remember(true);
            return;
        }
        let next = self.pending.front().copied();
        let next2 = self.pending.get(1).copied();
        let med = self.med.quantile(0.5).unwrap_or(cur.rr);
        let floor = 0.02 * med;
        let th1 = self.th1.threshold(self.cfg.alpha, floor);
        let th2 = self.th2.threshold(self.cfg.alpha, floor);
        let b0 = self.prev.map(|p| (cur.rr - p.rr) / th1);
        let b1 = next.map(|n| (n.rr - cur.rr) / th1);
        let b2 = match (next, next2) {
            (Some(n), Some(n2)) => Some((n2.rr - n.rr) / th1),
            _ => None,
        };
        let (c1, c2) = (self.cfg.c1, self.cfg.c2);
        let both = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        // Ectopic: the difference after this interval is the middle of an NPN / PNP pattern.
        // The middle of a displaced beat's pattern (δ, −2δ, δ) is its largest jump: when the jump
        // after is larger, the pattern belongs to the next beat (the normal beat before a PVC
        // would otherwise match PNP whenever its own difference happens to be positive).
        let middle = b1.is_some_and(|b| b2.is_none_or(|b2| b.abs() >= b2.abs()));
        let ectopic = middle
            && b1.is_some_and(|b| {
                if b > 1.0 {
                    both(b0, b2, f64::max).is_some_and(|s12| s12 < -c1 * b - c2)
                } else if b < -1.0 {
                    both(b0, b2, f64::min).is_some_and(|s12| s12 > -c1 * b + c2)
                } else {
                    false
                }
            });
        let class = if ectopic && let Some(n) = next {
            Verdict::Ectopic((cur.rr + n.rr) / 2.0)
        } else if let Some(b) = b0.filter(|b| b.abs() > 1.0) {
            let s22 = if b >= 0.0 {
                both(b1, b2, f64::min)
            } else {
                both(b1, b2, f64::max)
            }
            .unwrap_or(0.0);
            let m = cur.rr - med;
            let m = if m < 0.0 { 2.0 * m } else { m } / th2;
            let long = b > 1.0 && s22 < -1.0;
            let short = b < -1.0 && s22 > 1.0;
            if !(long || short || m.abs() > 3.0) {
                Verdict::Normal
            } else if short && next.is_some_and(|n| (cur.rr + n.rr - med).abs() < th2) {
                Verdict::Extra
            } else if long && (cur.rr / 2.0 - med).abs() < th2 {
                Verdict::Missed
            } else {
                Verdict::LongShort(med)
            }
        } else {
            Verdict::Normal
        };
        match class {
            Verdict::Normal => {
                self.learn(cur.rr);
                self.emit(cur.t, cur.rr, BeatClass::Normal, false, out);
                self.remember(false);
            }
            Verdict::Ectopic(v) => {
                if let Some(n) = self.pending.front_mut() {
                    n.rr = v;
                    n.altered = Some(BeatClass::Ectopic);
                }
                let t = next.map_or(cur.t, |n| n.t - v / 1000.0);
                self.emit(t, v, BeatClass::Ectopic, true, out);
                self.remember(true);
            }
            Verdict::Extra => {
                if let Some(n) = self.pending.front_mut() {
                    n.rr += cur.rr;
                    n.altered = Some(BeatClass::Extra);
                }
                out.push(Decided {
                    t: cur.t,
                    class: BeatClass::Extra,
                    beats: [None, None],
                });
                self.remember(true);
            }
            Verdict::Missed => {
                let half = cur.rr / 2.0;
                let a = FixedBeat {
                    t: cur.t - half / 1000.0,
                    rr_ms: half,
                    follows: false,
                    corrected: true,
                };
                let b = FixedBeat { t: cur.t, ..a };
                self.prev = Some(Prev {
                    rr: half,
                    original: false,
                });
                out.push(Decided {
                    t: cur.t,
                    class: BeatClass::Missed,
                    beats: [Some(a), Some(b)],
                });
                self.remember(true);
            }
            Verdict::LongShort(m) => {
                self.emit(cur.t, m, BeatClass::LongShort, true, out);
                self.remember(true);
            }
        }
        if self.warming_up() {
            // Relearn: what is still pending goes by the warm-up rule now.
            self.flush(out);
        }
    }
}

fn push_implausible(t: Option<f64>, out: &mut Vec<Decided>) {
    if let Some(t) = t {
        out.push(Decided {
            t,
            class: BeatClass::Implausible,
            beats: [None, None],
        });
    }
}

/// The outcome of the classifier, with the value a correction needs.
enum Verdict {
    Normal,
    /// Both intervals become this value.
    Ectopic(f64),
    Extra,
    Missed,
    /// Replaced by this value (the median).
    LongShort(f64),
}

#[cfg(test)]
mod tests;
