//! RR intervals: artefact handling and windowed heart rate and RMSSD.
//!
//! Every interval goes through [`rr_fix`](super::rr_fix): Lipponen & Tarvainen's (2019) beat
//! classification (the method of NeuroKit2's `signal_fixpeaks(method="Kubios")`, SIGNALS.md
//! §2.3) run on trailing windows with a look-ahead of [`DELAY_BEATS`] intervals. So **a beat is
//! usable 2 beats after it arrives**: the windows below hold the decided, corrected series, and
//! the newest ~2 beats (≈ 1–2 s) are still pending. Intervals outside [300, 2000] ms or not
//! finite are rejected at once. Corrected intervals (extra beats merged, missed beats split,
//! ectopic beats moved to their neighbours' midpoint, long/short replaced by the median) count
//! for mean HR; RMSSD uses only successive differences of two adjacent original intervals and
//! never differences across a corrected beat, a rejected one or a gap (why: `rr_fix` docs).
//!
//! Until the classifier has 30 threshold values (at the start, and after a relearn when 12 of
//! 16 decisions were artefacts) the minimal rule of SIGNALS.md §2.3 decides at once: within
//! ±`tolerance` of the median of the last 11 intervals. `tolerance = f64::INFINITY` turns the
//! artefact step off (every plausible interval is used at once), which reproduces NeuroKit's
//! `hrv_time` on an uncorrected series.
//!
//! Definitions follow NeuroKit2 0.2.13 `hrv_time` (SIGNALS.md §3.1): mean HR = 60000 / mean(RR)
//! in bpm; RMSSD = sqrt(mean(d²)) in ms over successive differences d. Task Force 1996
//! (*Eur Heart J* 17:354) recommends 5 min for HRV; RMSSD is the index that holds up best in
//! ultra-short windows, and attune's gate is ≥ 60 s with ≥ 20 differences (SIGNALS.md §5).
//!
//! # Suspect intervals
//!
//! A source may doubt an interval it delivers (`model::ChunkMeta::suspect`: for a BLE strap the
//! first interval after an empty notification, an outage or lost beats, which straps report too
//! long). [`RrWindow::push_suspect`] feeds such an interval: it is kept in the series (its beat
//! time is real), goes through the artefact step like any other, and counts for mean HR if the
//! step accepts it, but **RMSSD takes no successive difference across it**: the beat it gives
//! and the beat after that both have `follows = false`. The artefact step itself is unchanged
//! (it sees the same values either way, so unflagged input gives exactly what it gave before);
//! the window keeps a FIFO of the suspect intervals' times and applies the flag when decisions
//! come out, matching a decision by the exact time of the received interval:
//!
//! - kept, or replaced by the median (long/short): that beat and the next lose `follows`;
//! - merged into the next (extra) or rejected: no beat of its own; the next beat loses `follows`
//!   (it is corrected or starts a new chain anyway);
//! - split (missed): both halves (already corrected) and the beat after them lose `follows`;
//! - moved (ectopic: the decision carries the moved time, so no exact match): the flag is
//!   applied to the first beat decided after the interval's time, conservatively; both beats
//!   around a moved one are corrected and never differenced anyway.
//!
//! A flag with a non-finite time is ignored (such an interval is rejected and breaks the chain).

pub use super::rr_fix::{BeatClass, DELAY_BEATS};
use super::rr_fix::{Decided, FixConfig, RrFixer};
use std::collections::VecDeque;

/// Acceptance settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RrConfig {
    /// Shortest plausible interval, ms.
    pub min_ms: f64,
    /// Longest plausible interval, ms.
    pub max_ms: f64,
    /// Allowed relative deviation from the median of the last `median_len` intervals, for the
    /// warm-up rule and for [`RrWindow::push`]'s provisional verdict; `f64::INFINITY` turns the
    /// artefact step off.
    pub tolerance: f64,
    /// Running median length, intervals (the paper's 11).
    pub median_len: usize,
}

impl Default for RrConfig {
    fn default() -> Self {
        Self {
            min_ms: 300.0,
            max_ms: 2000.0,
            tolerance: 0.2,
            median_len: 11,
        }
    }
}

/// One interval of the corrected series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// Device time of the beat that ends the interval, s.
    pub t: f64,
    /// The interval, ms.
    pub rr_ms: f64,
    /// Whether the previous interval is adjacent and both are original (not corrected), so the
    /// successive difference is valid.
    pub follows: bool,
    /// Whether the artefact step changed or inserted this interval.
    pub corrected: bool,
}

/// Most beats and decisions held, whatever the caller prunes (≈ 2.7 h at 200 bpm).
const MAX_HELD: usize = 1 << 15;

/// Window for [`RrWindow::rejected_share`], s.
const REJECTED_WINDOW_S: f64 = 10.0;

/// The corrected beats of one stream over a bounded horizon.
#[derive(Debug, Clone)]
pub struct RrWindow {
    fix: RrFixer,
    scratch: Vec<Decided>,
    beats: VecDeque<Beat>,
    /// Start of the current run of continuous data (s), None before any data.
    since: Option<f64>,
    /// Every decided interval: (time, corrected or excluded).
    decisions: VecDeque<(f64, bool)>,
    last_seen: Option<f64>,
    /// Times of suspect intervals not yet decided, oldest first.
    suspect: VecDeque<f64>,
    /// The next beat taken must not be differenced with the one before (a suspect interval).
    break_next: bool,
    /// Intervals [`RrWindow::push`] returned false for (implausible or off the provisional band).
    pub rejected: u64,
    /// Intervals the artefact step corrected or excluded, implausible ones included.
    pub corrected: u64,
}

impl RrWindow {
    /// An empty window with the artefact step's default settings (the paper's).
    pub fn new(cfg: RrConfig) -> Self {
        Self::with_fix(cfg, FixConfig::default())
    }

    /// An empty window with explicit artefact-step settings (`cfg.median_len` wins over
    /// `fix.median_len`).
    pub fn with_fix(cfg: RrConfig, fix: FixConfig) -> Self {
        let fix = FixConfig {
            median_len: cfg.median_len.max(1),
            ..fix
        };
        Self {
            fix: RrFixer::new(cfg.min_ms, cfg.max_ms, cfg.tolerance, fix),
            scratch: Vec::new(),
            beats: VecDeque::new(),
            since: None,
            decisions: VecDeque::new(),
            last_seen: None,
            suspect: VecDeque::new(),
            break_next: false,
            rejected: 0,
            corrected: 0,
        }
    }

    /// How often the artefact step learnt its thresholds again (diagnostics).
    pub fn relearns(&self) -> u64 {
        self.fix.relearns()
    }

    /// Device time of the newest interval, accepted or not.
    pub fn last_seen(&self) -> Option<f64> {
        self.last_seen
    }

    /// Share of the decided intervals in the 10 s before the newest decided one that were
    /// rejected, corrected or excluded, if at least 4 were decided there. (The low-quality rule:
    /// half or more means wrong units, a loose strap, or more ectopy than HRV can stand.)
    pub fn rejected_share(&self) -> Option<f64> {
        let newest = self.decisions.back()?.0;
        let lo = newest - REJECTED_WINDOW_S;
        let (mut n, mut bad) = (0usize, 0usize);
        for (_, b) in self.decisions.iter().rev().take_while(|(t, _)| *t > lo) {
            n += 1;
            bad += usize::from(*b);
        }
        (n >= 4).then(|| bad as f64 / n as f64)
    }

    /// Fraction of the intervals decided in (t − window_s, t] that were corrected or excluded
    /// (implausible ones included), if any were decided there. Part of the heart stream's
    /// quality.
    pub fn corrected_share(&self, t: f64, window_s: f64) -> Option<f64> {
        let lo = t - window_s;
        let (mut n, mut bad) = (0usize, 0usize);
        for (_, b) in self
            .decisions
            .iter()
            .rev()
            .skip_while(|(s, _)| *s > t)
            .take_while(|(s, _)| *s > lo)
        {
            n += 1;
            bad += usize::from(*b);
        }
        (n > 0).then(|| bad as f64 / n as f64)
    }

    /// Feeds one interval ending at device time `t`. Returns the provisional verdict: false if
    /// it is implausible or off the ±`tolerance` band around the median; the final decision
    /// comes [`DELAY_BEATS`] intervals later and is what the windows use.
    pub fn push(&mut self, t: f64, rr_ms: f64) -> bool {
        if self.since.is_none() && t.is_finite() {
            let start = t - rr_ms / 1000.0;
            self.since = Some(if start.is_finite() && start <= t {
                start
            } else {
                t
            });
        }
        if t.is_finite() {
            self.last_seen = Some(t);
        }
        let mut out = std::mem::take(&mut self.scratch);
        let ok = self.fix.push(t, rr_ms, &mut out);
        self.take(&mut out);
        self.scratch = out;
        if !ok {
            self.rejected += 1;
        }
        ok
    }

    /// Feeds one interval the source doubts (see the module docs, "Suspect intervals"): like
    /// [`RrWindow::push`], but no successive difference is taken across it.
    pub fn push_suspect(&mut self, t: f64, rr_ms: f64) -> bool {
        if t.is_finite() {
            self.suspect.push_back(t);
            while self.suspect.len() > MAX_HELD {
                self.suspect.pop_front();
            }
        }
        self.push(t, rr_ms)
    }

    /// Decides the pending intervals with the look-ahead available (the end of a record).
    pub fn flush(&mut self) {
        let mut out = std::mem::take(&mut self.scratch);
        self.fix.flush(&mut out);
        self.take(&mut out);
        self.scratch = out;
    }

    fn take(&mut self, out: &mut Vec<Decided>) {
        for d in out.drain(..) {
            let bad = d.class.is_artefact();
            self.corrected += u64::from(bad);
            self.decisions.push_back((d.t, bad));
            // Is this the decision on a suspect interval (exact time), or has one gone by
            // without its own (a moved beat)?
            let mut hit = false;
            while let Some(&s) = self.suspect.front() {
                if s > d.t {
                    break;
                }
                self.suspect.pop_front();
                if s == d.t {
                    hit = true;
                } else {
                    self.break_next = true;
                }
            }
            for b in d.beats.into_iter().flatten() {
                let follows = b.follows && !hit && !self.break_next;
                self.break_next = false;
                self.beats.push_back(Beat {
                    t: b.t,
                    rr_ms: b.rr_ms,
                    follows,
                    corrected: b.corrected,
                });
            }
            if hit {
                self.break_next = true;
            }
        }
        while self.decisions.len() > MAX_HELD {
            self.decisions.pop_front();
        }
        while self.beats.len() > MAX_HELD {
            self.beats.pop_front();
        }
    }

    /// A gap: pending intervals are decided, continuity and coverage restart; beats already held
    /// stay for their windows.
    pub fn gap(&mut self) {
        let mut out = std::mem::take(&mut self.scratch);
        self.fix.gap(&mut out);
        self.take(&mut out);
        self.scratch = out;
        self.since = None;
        // Everything pending was decided; the next beat starts a new chain anyway.
        self.suspect.clear();
        self.break_next = false;
    }

    /// Drops beats and decisions at or before `t` (call with the oldest time any window still
    /// needs).
    pub fn prune(&mut self, t: f64) {
        while self.beats.front().is_some_and(|b| b.t <= t) {
            self.beats.pop_front();
        }
        while self.decisions.front().is_some_and(|(s, _)| *s <= t) {
            self.decisions.pop_front();
        }
    }

    /// The corrected series held, oldest first.
    pub fn beats(&self) -> impl Iterator<Item = &Beat> {
        self.beats.iter()
    }

    /// Seconds of continuous data before `now` (0 without data).
    pub fn coverage(&self, now: f64) -> f64 {
        self.since.map_or(0.0, |s| (now - s).max(0.0))
    }

    /// Device time of the newest decided beat.
    pub fn last_beat(&self) -> Option<f64> {
        self.beats.back().map(|b| b.t)
    }

    /// Mean HR in bpm over beats in (now − window, now], if the data cover the window and hold
    /// at least `min_beats` beats.
    pub fn hr_bpm(&self, now: f64, window_s: f64, min_beats: usize) -> Option<f64> {
        if self.coverage(now) < window_s {
            return None;
        }
        let (mut sum, mut n) = (0.0, 0usize);
        for b in self.in_window(now, window_s) {
            sum += b.rr_ms;
            n += 1;
        }
        (n >= min_beats.max(1)).then(|| 60_000.0 / (sum / n as f64))
    }

    /// RMSSD in ms over successive differences within (now − window, now], if the data cover
    /// the window and give at least `min_diffs` differences.
    pub fn rmssd_ms(&self, now: f64, window_s: f64, min_diffs: usize) -> Option<f64> {
        if self.coverage(now) < window_s {
            return None;
        }
        let (mut sum, mut n) = (0.0, 0usize);
        let mut prev: Option<f64> = None;
        for b in self.in_window(now, window_s) {
            if let (true, Some(p)) = (b.follows, prev) {
                let d = b.rr_ms - p;
                sum += d * d;
                n += 1;
            }
            prev = Some(b.rr_ms);
        }
        (n >= min_diffs.max(1)).then(|| (sum / n as f64).sqrt())
    }

    fn in_window(&self, now: f64, window_s: f64) -> impl Iterator<Item = &Beat> {
        let lo = now - window_s;
        // Beats are held in time order: start at the window instead of scanning what longer
        // windows (the 130 s spectrum) keep.
        let start = self.beats.partition_point(|b| b.t <= lo);
        self.beats
            .range(start..)
            .filter(move |b| b.t > lo && b.t <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(w: &mut RrWindow, rrs: &[f64], t0: f64) -> f64 {
        let mut t = t0;
        for &rr in rrs {
            t += rr / 1000.0;
            w.push(t, rr);
        }
        t
    }

    #[test]
    fn hr_and_rmssd_match_hand_computation() {
        // Alternating 800/900 ms: every |d| = 100 ms -> RMSSD 100; mean 850 -> 70.588 bpm.
        let rrs: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { 800.0 } else { 900.0 })
            .collect();
        let mut w = RrWindow::new(RrConfig::default());
        let t = feed(&mut w, &rrs, 0.0);
        let rmssd = w.rmssd_ms(t, 60.0, 20).unwrap();
        assert!((rmssd - 100.0).abs() < 1e-9);
        let hr = w.hr_bpm(t, 10.0, 5).unwrap();
        // 10 s window ending on a beat holds a whole number of alternating pairs or one extra.
        assert!((hr - 60_000.0 / 850.0).abs() < 1.0, "{hr}");
    }

    #[test]
    fn rmssd_matches_hand_computation_on_an_irregular_series() {
        let rrs = [1000.0, 1010.0, 990.0, 1000.0, 1020.0, 1000.0];
        let d2: f64 = [10.0f64, -20.0, 10.0, 20.0, -20.0]
            .iter()
            .map(|d| d * d)
            .sum();
        let expected = (d2 / 5.0).sqrt();
        let mut w = RrWindow::new(RrConfig::default());
        let t = feed(&mut w, &rrs, 0.0);
        assert!((w.rmssd_ms(t, 6.0, 5).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn an_ectopic_beat_is_rejected_and_breaks_the_difference_chain() {
        let mut w = RrWindow::new(RrConfig::default());
        let t = feed(&mut w, &[1000.0; 10], 0.0);
        assert!(!w.push(t + 0.5, 500.0), "premature beat accepted");
        assert!(w.push(t + 1.5, 1000.0));
        assert_eq!(w.rejected, 1);
        // 9 valid differences before the ectopic beat, none across it: RMSSD stays 0.
        assert_eq!(w.rmssd_ms(t + 1.5, 11.5, 9), Some(0.0));
    }

    /// Feeds `rrs` from t = 0 (each beat at the running sum), flagging `flag`, then flushes.
    fn run(rrs: &[f64], flag: Option<usize>) -> (RrWindow, f64) {
        let mut w = RrWindow::new(RrConfig::default());
        let mut t = 0.0;
        for (i, &rr) in rrs.iter().enumerate() {
            t += rr / 1000.0;
            if flag == Some(i) {
                w.push_suspect(t, rr);
            } else {
                w.push(t, rr);
            }
        }
        w.flush();
        (w, t)
    }

    /// RMSSD over rrs[i] − rrs[i − 1] for every i ≥ 1 not in `skip`.
    fn rmssd_by_hand(rrs: &[f64], skip: &[usize]) -> f64 {
        let d2: Vec<f64> = (1..rrs.len())
            .filter(|i| !skip.contains(i))
            .map(|i| (rrs[i] - rrs[i - 1]).powi(2))
            .collect();
        (d2.iter().sum::<f64>() / d2.len() as f64).sqrt()
    }

    /// A variable series: a 40 ms respiratory swing over 5 beats plus deterministic ±10 ms.
    fn variable(n: usize, mid: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / 5.0;
                mid + 40.0 * phase.sin() + 10.0 * ((i * 7919 % 13) as f64 / 6.0 - 1.0)
            })
            .collect()
    }

    #[test]
    fn a_flagged_long_interval_in_warm_up_drops_its_two_differences() {
        let mut rrs = variable(25, 1000.0);
        rrs[12] = 1150.0; // too long, but inside the warm-up band (±20 % of the median)
        let (plain, t) = run(&rrs, None);
        let (flagged, _) = run(&rrs, Some(12));
        assert_eq!(
            plain.corrected, 0,
            "the premise: the step accepts every interval"
        );
        assert_eq!(flagged.corrected, 0);
        let all = plain.rmssd_ms(t, t, 5).unwrap();
        assert!((all - rmssd_by_hand(&rrs, &[])).abs() < 1e-9);
        let got = flagged.rmssd_ms(t, t, 5).unwrap();
        let want = rmssd_by_hand(&rrs, &[12, 13]);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!((got - all).abs() > 1.0, "the flag made a difference");
        // Still counted for HR: the mean over every interval, the flagged one included.
        let mean = rrs.iter().sum::<f64>() / rrs.len() as f64;
        let hr = flagged.hr_bpm(t, t, 5).unwrap();
        assert!((hr - 60_000.0 / mean).abs() < 1e-9, "{hr}");
        assert_eq!(flagged.beats().count(), rrs.len());
    }

    #[test]
    fn a_flagged_interval_after_warm_up_drops_its_two_differences() {
        let mut rrs = variable(120, 900.0);
        rrs[80] += 25.0;
        let (plain, t) = run(&rrs, None);
        let (flagged, _) = run(&rrs, Some(80));
        assert!(plain.fix.relearns() == 0 && plain.corrected == 0, "premise");
        assert_eq!(flagged.corrected, 0);
        let got = flagged.rmssd_ms(t, t, 20).unwrap();
        let want = rmssd_by_hand(&rrs, &[80, 81]);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        let all = plain.rmssd_ms(t, t, 20).unwrap();
        assert!((all - rmssd_by_hand(&rrs, &[])).abs() < 1e-9);
        let mean = rrs.iter().sum::<f64>() / rrs.len() as f64;
        assert!((flagged.hr_bpm(t, t, 5).unwrap() - 60_000.0 / mean).abs() < 1e-9);
        assert!(flagged.suspect.is_empty(), "the flag was consumed");
    }

    #[test]
    fn a_flag_changes_only_the_follows_of_its_beat_and_the_next() {
        let mut rrs = variable(120, 900.0);
        rrs[50] = 1000.0;
        // A premature beat and its compensatory pause (ectopic), flagged at the premature one.
        rrs[90] = 650.0;
        rrs[91] = 1150.0;
        for flag in [50, 90, 91] {
            let (plain, _) = run(&rrs, None);
            let (flagged, _) = run(&rrs, Some(flag));
            let a: Vec<Beat> = plain.beats().copied().collect();
            let b: Vec<Beat> = flagged.beats().copied().collect();
            assert_eq!(a.len(), b.len());
            assert!(
                a[90].corrected && a[91].corrected,
                "premise: the pair is corrected"
            );
            let mut changed = Vec::new();
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert_eq!((x.t, x.rr_ms, x.corrected), (y.t, y.rr_ms, y.corrected));
                assert!(!y.follows || x.follows, "a flag never adds a difference");
                if x.follows != y.follows {
                    changed.push(i);
                }
            }
            // Beats are one per interval here (no merge or split): the flagged one and the next.
            assert!(
                changed.iter().all(|&i| i == flag || i == flag + 1),
                "{flag}: {changed:?}"
            );
            assert!(!b[flag].follows && !b[flag + 1].follows, "{flag}");
            assert!(flagged.suspect.is_empty());
        }
    }

    #[test]
    fn unflagged_input_is_unchanged_by_the_suspect_path() {
        let rrs = variable(60, 850.0);
        let (a, _) = run(&rrs, None);
        let (b, _) = run(&rrs, Some(usize::MAX));
        assert!(a.beats().eq(b.beats()));
        let follows = a.beats().filter(|b| b.follows).count();
        assert_eq!(
            follows,
            rrs.len() - 1,
            "every difference of a clean series is used"
        );
    }

    #[test]
    fn windows_need_coverage() {
        let mut w = RrWindow::new(RrConfig::default());
        let t = feed(&mut w, &[1000.0; 30], 0.0);
        assert!(w.rmssd_ms(t, 60.0, 20).is_none());
        assert!(w.hr_bpm(t, 10.0, 5).is_some());
        w.gap();
        assert_eq!(w.coverage(t + 1.0), 0.0);
    }
}
