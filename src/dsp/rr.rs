//! RR intervals: acceptance and windowed heart rate and RMSSD.
//!
//! Acceptance is SIGNALS.md §2.3's minimal streaming rule: an RR interval is accepted when it
//! lies in [300, 2000] ms and within ±20 % of the median of the last (up to) 11 accepted
//! intervals. A rejected interval breaks the chain of successive differences: RMSSD never
//! differences across a rejected beat or a gap. After 5 rejections in a row the running median
//! is relearned, so one bad first beat cannot lock the stream out.
//!
//! Definitions follow NeuroKit2 0.2.13 `hrv_time` (SIGNALS.md §3.1): mean HR = 60000 / mean(RR)
//! in bpm; RMSSD = sqrt(mean(d²)) in ms over successive differences d. Task Force 1996
//! (*Eur Heart J* 17:354) recommends 5 min for HRV; RMSSD is the index that holds up best in
//! ultra-short windows, and attune's gate is ≥ 60 s with ≥ 20 differences (SIGNALS.md §5).

use std::collections::VecDeque;

/// Acceptance settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RrConfig {
    /// Shortest plausible interval, ms.
    pub min_ms: f64,
    /// Longest plausible interval, ms.
    pub max_ms: f64,
    /// Allowed relative deviation from the running median.
    pub tolerance: f64,
    /// Running median length, intervals.
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

/// One accepted beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// Device time of the beat that ends the interval, s.
    pub t: f64,
    /// The interval, ms.
    pub rr_ms: f64,
    /// Whether the previous interval was accepted too with no gap between (so the successive
    /// difference is valid).
    pub follows: bool,
}

/// Accepted beats of one stream over a bounded horizon.
#[derive(Debug, Clone)]
pub struct RrWindow {
    cfg: RrConfig,
    recent: VecDeque<f64>,
    rejected_run: usize,
    chained: bool,
    beats: VecDeque<Beat>,
    /// Start of the current run of continuous data (s), None before any data.
    since: Option<f64>,
    /// Every interval of the last 10 s, accepted or not: (time, accepted).
    seen: VecDeque<(f64, bool)>,
    /// Total rejected intervals.
    pub rejected: u64,
}

impl RrWindow {
    /// An empty window.
    pub fn new(cfg: RrConfig) -> Self {
        Self {
            cfg,
            recent: VecDeque::new(),
            rejected_run: 0,
            chained: false,
            beats: VecDeque::new(),
            since: None,
            seen: VecDeque::new(),
            rejected: 0,
        }
    }

    fn note(&mut self, t: f64, accepted: bool) {
        self.seen.push_back((t, accepted));
        while self.seen.front().is_some_and(|(s, _)| *s <= t - 10.0) {
            self.seen.pop_front();
        }
    }

    /// Device time of the newest interval, accepted or not.
    pub fn last_seen(&self) -> Option<f64> {
        self.seen.back().map(|(t, _)| *t)
    }

    /// Share of the intervals in the 10 s before the newest one that were rejected, if at
    /// least 4 arrived.
    pub fn rejected_share(&self) -> Option<f64> {
        let n = self.seen.len();
        (n >= 4).then(|| self.seen.iter().filter(|(_, a)| !a).count() as f64 / n as f64)
    }

    /// Feeds one interval ending at device time `t`. Returns whether it was accepted.
    pub fn push(&mut self, t: f64, rr_ms: f64) -> bool {
        if self.since.is_none() {
            self.since = Some(t - rr_ms / 1000.0);
        }
        let in_range = rr_ms >= self.cfg.min_ms && rr_ms <= self.cfg.max_ms;
        let near_median = match median(&self.recent) {
            Some(m) if self.recent.len() >= 3 => (rr_ms - m).abs() <= self.cfg.tolerance * m,
            _ => true,
        };
        let accepted = in_range && near_median;
        self.note(t, accepted);
        if !accepted {
            self.rejected += 1;
            self.rejected_run += 1;
            self.chained = false;
            if self.rejected_run >= 5 {
                self.recent.clear();
                self.rejected_run = 0;
            }
            return false;
        }
        self.rejected_run = 0;
        self.recent.push_back(rr_ms);
        if self.recent.len() > self.cfg.median_len {
            self.recent.pop_front();
        }
        self.beats.push_back(Beat {
            t,
            rr_ms,
            follows: self.chained,
        });
        self.chained = true;
        true
    }

    /// A gap: forget continuity and coverage; beats already held stay for their windows.
    pub fn gap(&mut self) {
        self.chained = false;
        self.since = None;
        self.recent.clear();
        self.rejected_run = 0;
    }

    /// Drops beats at or before `t` (call with the oldest time any window still needs).
    pub fn prune(&mut self, t: f64) {
        while self.beats.front().is_some_and(|b| b.t <= t) {
            self.beats.pop_front();
        }
    }

    /// Seconds of continuous data before `now` (0 without data).
    pub fn coverage(&self, now: f64) -> f64 {
        self.since.map_or(0.0, |s| (now - s).max(0.0))
    }

    /// Device time of the newest accepted beat.
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
        (n >= min_beats).then(|| 60_000.0 / (sum / n as f64))
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
        (n >= min_diffs).then(|| (sum / n as f64).sqrt())
    }

    fn in_window(&self, now: f64, window_s: f64) -> impl Iterator<Item = &Beat> {
        let lo = now - window_s;
        self.beats.iter().filter(move |b| b.t > lo && b.t <= now)
    }
}

fn median(v: &VecDeque<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = v.iter().copied().collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
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
