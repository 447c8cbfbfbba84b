//! Causal EDA chain and SCR detector for streaming (SIGNALS.md §4.4).
//!
//! In: skin conductance samples in µS at the stream's rate. Steps:
//! 1. Block-mean decimation to at most [`EdaConfig::max_rate_hz`] (32 Hz by default); SIGNALS.md
//!    §4.1 measured that block-mean decimation changes NeuroKit2's results by < 2 %.
//! 2. Clean: causal Butterworth low-pass 3 Hz, order 4, primed; skipped at ≤ 6 Hz as NeuroKit2's
//!    `eda_clean` does (e.g. Empatica E4 at 4 Hz).
//! 3. Phasic: causal Butterworth high-pass 0.05 Hz, order 2, primed (NeuroKit2's `highpass`
//!    tonic/phasic split, made causal).
//! 4. SCR detection on the phasic signal with a zig-zag detector: a peak is confirmed once the
//!    signal has fallen `hysteresis` µS below the running maximum, a trough once it has risen
//!    `hysteresis` µS above the running minimum. An SCR is accepted when its amplitude
//!    (peak − preceding trough) is at least `amp_min_us` (0.01 µS, the computer-scoring minimum of
//!    Boucsein et al. 2012, *Psychophysiology* 49:1017) and its rise time lies in
//!    [`rise_min_s`, `rise_max_s`] (physiological rise 0.5–5 s, SIGNALS.md §5), and, by
//!    default, when it is at least 10 % of the largest SCR accepted recently (causal relative
//!    rule after NeuroKit2's `nabian2018`; it keeps noise wiggles just above 0.01 µS from
//!    counting). NeuroKit2 applies it offline to the largest SCR of the whole record; a live
//!    chain that kept the largest *so far* would be blinded for the rest of a session by one
//!    large response (a startle of 2 µS sets the bar at 0.2 µS, above most later SCRs), so the
//!    largest amplitude decays with a time constant of `relative_decay_s` (60 s): a 2 µS
//!    startle's bar is back to 0.05 µS after 83 s and to 0.01 µS after about 3 min, while
//!    responses that recur every minute or two keep the bar where they are.
//!    The onset is the trough, moved forward along any slow rise: while the slope over the last
//!    0.5 s stays below `onset_slope_us_per_s` (0.02 µS/s) the onset follows the signal. This
//!    keeps the high-pass undershoot after a large SCR (a slow climb back towards zero) from
//!    being counted as the rise of the next SCR.
//!
//! Out: cleaned samples (µS) with their device time, and SCR events. Every filter is primed at
//! the first sample and after each [`EdaChain::reset`] (call it at a gap), so a gap never shows
//! up as a step response or a fake SCR.

use super::filter::{Cascade, FilterError, Pass};

/// Settings of the streaming EDA chain.
#[derive(Debug, Clone, PartialEq)]
pub struct EdaConfig {
    /// Decimate (block mean) to at most this rate, Hz.
    pub max_rate_hz: f64,
    /// Minimum SCR amplitude, µS.
    pub amp_min_us: f64,
    /// Zig-zag hysteresis, µS (must not exceed `amp_min_us`).
    pub hysteresis_us: f64,
    /// Shortest accepted rise time, s.
    pub rise_min_s: f64,
    /// Longest accepted rise time, s.
    pub rise_max_s: f64,
    /// Below this slope (over 0.5 s) a rise has not started yet, µS/s.
    pub onset_slope_us_per_s: f64,
    /// Also require amplitude ≥ this fraction of the largest SCR accepted so far (the causal
    /// relative rule of NeuroKit2's `nabian2018` method, SIGNALS.md §4.4); None turns it off.
    pub relative_min: Option<f64>,
    /// Time constant with which that largest amplitude decays, s (module doc; infinite: the
    /// largest so far, which one large response ratchets up for good).
    pub relative_decay_s: f64,
}

impl Default for EdaConfig {
    fn default() -> Self {
        Self {
            max_rate_hz: 32.0,
            amp_min_us: 0.01,
            hysteresis_us: 0.005,
            rise_min_s: 0.5,
            rise_max_s: 5.0,
            onset_slope_us_per_s: 0.02,
            relative_min: Some(0.1),
            relative_decay_s: 60.0,
        }
    }
}

/// One detected skin conductance response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scr {
    /// Device time of the preceding trough (onset), s.
    pub onset_t: f64,
    /// Device time of the peak, s.
    pub peak_t: f64,
    /// Device time at which the peak was confirmed (when it was emitted), s.
    pub confirmed_t: f64,
    /// Peak minus onset of the phasic signal, µS.
    pub amplitude_us: f64,
}

#[derive(Debug, Clone, Copy)]
enum Zig {
    /// Looking for a peak after a trough at (t, v); running max at (max_t, max).
    Rising {
        trough_t: f64,
        trough: f64,
        max_t: f64,
        max: f64,
    },
    /// Looking for a trough; running min at (min_t, min).
    Falling { min_t: f64, min: f64 },
}

/// The causal chain: decimation, cleaning, phasic split and SCR detection.
#[derive(Debug, Clone)]
pub struct EdaChain {
    cfg: EdaConfig,
    factor: usize,
    acc_sum: f64,
    acc_n: usize,
    clean: Option<Cascade>,
    phasic: Cascade,
    zig: Option<Zig>,
    /// Largest amplitude accepted since the last reset, µS.
    max_amp: f64,
    /// When `max_amp` was last set, s.
    max_amp_t: f64,
    /// The last `slope_span + 1` phasic values.
    hist: std::collections::VecDeque<f64>,
    slope_span: usize,
    slope_dt: f64,
}

impl EdaChain {
    /// A chain for input at `fs` Hz.
    pub fn new(fs: f64, cfg: EdaConfig) -> Result<Self, FilterError> {
        let factor = if fs > cfg.max_rate_hz {
            (fs / cfg.max_rate_hz).ceil() as usize
        } else {
            1
        };
        let rate = fs / factor as f64;
        let clean = if rate > 6.0 {
            Some(Cascade::butterworth(Pass::Low, 4, rate, 3.0)?)
        } else {
            None
        };
        let phasic = Cascade::butterworth(Pass::High, 2, rate, 0.05)?;
        let slope_span = ((0.5 * rate).round() as usize).max(1);
        Ok(Self {
            cfg,
            factor,
            acc_sum: 0.0,
            acc_n: 0,
            clean,
            phasic,
            zig: None,
            max_amp: 0.0,
            max_amp_t: 0.0,
            hist: std::collections::VecDeque::with_capacity(slope_span + 1),
            slope_span,
            slope_dt: slope_span as f64 / rate,
        })
    }

    /// The largest accepted amplitude, decayed to `t` (module doc).
    fn reference_amp(&self, t: f64) -> f64 {
        let tau = self.cfg.relative_decay_s;
        let age = (t - self.max_amp_t).max(0.0);
        if tau.is_finite() && tau > 0.0 {
            self.max_amp * (-age / tau).exp()
        } else {
            self.max_amp
        }
    }

    /// Rate after decimation, Hz, for an input at `fs`.
    pub fn decimated_rate(&self, fs: f64) -> f64 {
        fs / self.factor as f64
    }

    /// Forgets all state (call at a gap); the next sample re-primes every filter.
    pub fn reset(&mut self) {
        self.acc_sum = 0.0;
        self.acc_n = 0;
        if let Some(c) = &mut self.clean {
            c.reset();
        }
        self.phasic.reset();
        self.zig = None;
        self.max_amp = 0.0;
        self.hist.clear();
    }

    /// Feeds one input sample at device time `t` (s). Returns the cleaned sample when a
    /// decimation block completes (stamped with the block's last input time) and pushes any
    /// confirmed SCR into `scrs`.
    pub fn push(&mut self, t: f64, x: f64, scrs: &mut Vec<Scr>) -> Option<f64> {
        self.acc_sum += x;
        self.acc_n += 1;
        if self.acc_n < self.factor {
            return None;
        }
        let v = self.acc_sum / self.acc_n as f64;
        self.acc_sum = 0.0;
        self.acc_n = 0;
        let clean = match &mut self.clean {
            Some(c) => c.step(v),
            None => v,
        };
        let p = self.phasic.step(clean);
        if let Some(scr) = self.detect(t, p) {
            scrs.push(scr);
        }
        Some(clean)
    }

    fn detect(&mut self, t: f64, p: f64) -> Option<Scr> {
        let h = self.cfg.hysteresis_us;
        self.hist.push_back(p);
        if self.hist.len() > self.slope_span + 1 {
            self.hist.pop_front();
        }
        let slow = match self.hist.front() {
            Some(first) if self.hist.len() == self.slope_span + 1 => {
                (p - first) / self.slope_dt < self.cfg.onset_slope_us_per_s
            }
            _ => false,
        };
        let Some(zig) = self.zig.as_mut() else {
            self.zig = Some(Zig::Falling { min_t: t, min: p });
            return None;
        };
        match zig {
            Zig::Falling { min_t, min } => {
                // `<=`: on a flat stretch the onset is the last sample at the minimum.
                if p <= *min {
                    (*min_t, *min) = (t, p);
                } else if p > *min + h {
                    *zig = Zig::Rising {
                        trough_t: *min_t,
                        trough: *min,
                        max_t: t,
                        max: p,
                    };
                }
                None
            }
            Zig::Rising {
                trough_t,
                trough,
                max_t,
                max,
            } => {
                if p > *max {
                    (*max_t, *max) = (t, p);
                    if slow {
                        (*trough_t, *trough) = (t, p);
                    }
                    return None;
                }
                if p >= *max - h {
                    return None;
                }
                let scr = Scr {
                    onset_t: *trough_t,
                    peak_t: *max_t,
                    confirmed_t: t,
                    amplitude_us: *max - *trough,
                };
                *zig = Zig::Falling { min_t: t, min: p };
                let rise = scr.peak_t - scr.onset_t;
                let reference = self.reference_amp(t);
                let relative_ok = self
                    .cfg
                    .relative_min
                    .is_none_or(|r| scr.amplitude_us >= r * reference);
                let ok = scr.amplitude_us >= self.cfg.amp_min_us
                    && relative_ok
                    && rise >= self.cfg.rise_min_s
                    && rise <= self.cfg.rise_max_s;
                if ok {
                    self.max_amp = reference.max(scr.amplitude_us);
                    self.max_amp_t = t;
                }
                ok.then_some(scr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Bateman-shaped SCR: exp(-t/τd) − exp(-t/τr), scaled to peak `amp` µS.
    fn bateman(t: f64, amp: f64) -> f64 {
        let (tr, td): (f64, f64) = (0.75, 4.0);
        if t <= 0.0 {
            return 0.0;
        }
        let tp = (td / tr).ln() * tr * td / (td - tr);
        let peak = (-tp / td).exp() - (-tp / tr).exp();
        amp * ((-t / td).exp() - (-t / tr).exp()) / peak
    }

    fn run(fs: f64, onsets: &[f64], amp: f64, dur: f64) -> Vec<Scr> {
        let mut chain = EdaChain::new(fs, EdaConfig::default()).unwrap();
        let mut scrs = Vec::new();
        let n = (dur * fs) as usize;
        for i in 0..n {
            let t = i as f64 / fs;
            let x = 5.0 + onsets.iter().map(|&o| bateman(t - o, amp)).sum::<f64>();
            chain.push(t, x, &mut scrs);
        }
        scrs
    }

    #[test]
    fn finds_each_separated_scr_once_at_several_rates() {
        let onsets = [10.0, 25.0, 40.0, 55.0, 70.0];
        for fs in [4.0, 32.0, 100.0, 1000.0] {
            let scrs = run(fs, &onsets, 0.2, 90.0);
            assert_eq!(scrs.len(), onsets.len(), "fs {fs}: {scrs:?}");
            for (s, o) in scrs.iter().zip(onsets) {
                // The raw peak is 1.85 s after onset; the 0.05 Hz high-pass moves the phasic peak
                // earlier, the 3 Hz low-pass later.
                assert!(s.peak_t >= o + 0.75 && s.peak_t < o + 3.0, "fs {fs}: {s:?}");
                assert!(
                    s.amplitude_us > 0.1 && s.amplitude_us < 0.3,
                    "fs {fs}: {s:?}"
                );
            }
        }
    }

    #[test]
    fn responses_below_the_amplitude_minimum_are_ignored() {
        assert!(run(32.0, &[10.0, 30.0], 0.004, 60.0).is_empty());
    }

    #[test]
    fn a_flat_level_and_a_gap_reset_produce_no_scr() {
        let mut chain = EdaChain::new(32.0, EdaConfig::default()).unwrap();
        let mut scrs = Vec::new();
        for i in 0..3200 {
            chain.push(i as f64 / 32.0, 3.0, &mut scrs);
        }
        chain.reset();
        // The level jumps by 2 µS across the gap: a primed chain sees no step.
        for i in 3300..6400 {
            chain.push(i as f64 / 32.0, 5.0, &mut scrs);
        }
        assert!(scrs.is_empty(), "{scrs:?}");
    }

    /// SCRs of 0.15 µS every 15 s for 7.5 min, with a 2 µS startle at 150 s, through a chain
    /// with `cfg`: (SCRs confirmed in 150–450 s, without the startle itself).
    fn after_a_startle(cfg: EdaConfig) -> usize {
        let fs = 32.0;
        let mut chain = EdaChain::new(fs, cfg).unwrap();
        let mut scrs = Vec::new();
        let small: Vec<f64> = (1..30).map(|k| f64::from(k) * 15.0).collect();
        for i in 0..(460.0 * fs) as usize {
            let t = i as f64 / fs;
            let x = 5.0
                + small.iter().map(|&o| bateman(t - o, 0.15)).sum::<f64>()
                + bateman(t - 157.0, 2.0);
            chain.push(t, x, &mut scrs);
        }
        scrs.iter()
            .filter(|s| s.confirmed_t >= 150.0 && s.confirmed_t < 450.0 && s.amplitude_us < 1.0)
            .count()
    }

    #[test]
    fn one_large_response_does_not_blind_the_detector_for_long() {
        // 20 small SCRs start in 150–450 s. The largest-so-far rule of old counts none of those
        // after the startle; the decaying one loses only those in the first tens of seconds.
        let decaying = after_a_startle(EdaConfig::default());
        let ratchet = after_a_startle(EdaConfig {
            relative_decay_s: f64::INFINITY,
            ..EdaConfig::default()
        });
        assert!(decaying >= 16, "decaying: {decaying}");
        assert!(ratchet <= 2, "ratchet: {ratchet}");
    }
}
