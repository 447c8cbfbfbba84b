//! Provisional per-participant baseline: robust statistics of the first minutes' features.
//!
//! Pure. Following SIGNALS.md §5 (per-user baselines from seated rest, median and 1.4826·MAD per
//! feature, z-scores against them), the baseline collects the feature frames of the first
//! `duration_s` seconds once the features are available, then freezes. A feature enters the
//! baseline only if it had a value in at least `min_coverage` of the frames.
//!
//! The scale of each feature is `max(1.4826·MAD, floor_abs, floor_rel·|median|)`. The floors are
//! attune's own choice, not a literature value: frames 0.25 s apart of 10–60 s windows are
//! strongly correlated, so a steady baseline can have a MAD near zero that would turn noise into
//! large z-scores. Floors: HR 1.5 bpm or 2 %; RMSSD 2 ms or 10 %; SCL 0.05 µS or 5 %;
//! SCR rate 1/min or 20 %. The clustered, cross-session baseline (`calibrate`) replaces this later.

pub mod cluster;

use crate::features::{FEATURE_NAMES, FeatureFrame};

/// Baseline settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineConfig {
    /// Length of the baseline period, s.
    pub duration_s: f64,
    /// If not all features are available yet, start anyway this long after the first one, s.
    pub max_wait_s: f64,
    /// Fraction of frames a feature needs to enter the baseline.
    pub min_coverage: f64,
    /// Absolute scale floors, per feature.
    pub floor_abs: [f64; 4],
    /// Relative scale floors (× |median|), per feature.
    pub floor_rel: [f64; 4],
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            duration_s: 120.0,
            max_wait_s: 60.0,
            min_coverage: 0.5,
            floor_abs: [1.5, 2.0, 0.05, 1.0],
            floor_rel: [0.02, 0.10, 0.05, 0.20],
        }
    }
}

/// Robust statistics of one feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureStats {
    /// Median.
    pub median: f64,
    /// Scale: 1.4826·MAD, floored.
    pub scale: f64,
}

impl FeatureStats {
    /// The z-score of `x`.
    pub fn z(&self, x: f64) -> f64 {
        (x - self.median) / self.scale
    }
}

/// A frozen baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// First frame time, s.
    pub from_s: f64,
    /// Last frame time, s.
    pub to_s: f64,
    /// Frames collected.
    pub frames: usize,
    /// Per feature, in [`FEATURE_NAMES`] order; None if too few values.
    pub stats: [Option<FeatureStats>; 4],
}

/// Collects frames until the baseline is complete.
#[derive(Debug, Clone)]
pub struct BaselineBuilder {
    cfg: BaselineConfig,
    first_any: Option<f64>,
    start: Option<f64>,
    frames: usize,
    last_t: f64,
    values: [Vec<f64>; 4],
}

/// What the builder is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// No features yet.
    WarmingUp,
    /// Collecting, `elapsed_s` of `duration_s`.
    Collecting {
        /// Seconds collected.
        elapsed_s: f64,
    },
    /// Done.
    Ready(Baseline),
}

impl BaselineBuilder {
    /// A fresh builder.
    pub fn new(cfg: BaselineConfig) -> Self {
        Self {
            cfg,
            first_any: None,
            start: None,
            frames: 0,
            last_t: 0.0,
            values: Default::default(),
        }
    }

    /// Feeds one frame. `expected[i]` says whether feature i can exist at all (its stream is
    /// present and consented); collection starts when every expected feature has a value, or
    /// `max_wait_s` after the first one did.
    pub fn push(&mut self, f: &FeatureFrame, expected: [bool; 4]) -> Progress {
        if !f.any() && self.start.is_none() {
            return Progress::WarmingUp;
        }
        let first = *self.first_any.get_or_insert(f.t);
        if self.start.is_none() {
            let all = f
                .values
                .iter()
                .zip(expected)
                .all(|(v, e)| v.is_some() || !e);
            if all || f.t - first >= self.cfg.max_wait_s {
                self.start = Some(f.t);
            } else {
                return Progress::WarmingUp;
            }
        }
        let start = self.start.unwrap_or(f.t);
        self.frames += 1;
        self.last_t = f.t;
        for (acc, v) in self.values.iter_mut().zip(f.values) {
            if let Some(v) = v {
                acc.push(v);
            }
        }
        let elapsed_s = f.t - start;
        if elapsed_s + 1e-9 < self.cfg.duration_s {
            return Progress::Collecting { elapsed_s };
        }
        let mut stats = [None; 4];
        for (i, acc) in self.values.iter_mut().enumerate() {
            if (acc.len() as f64) < self.cfg.min_coverage * self.frames as f64 || acc.is_empty() {
                continue;
            }
            let median = median_in_place(acc);
            let mut dev: Vec<f64> = acc.iter().map(|x| (x - median).abs()).collect();
            let mad = median_in_place(&mut dev);
            let scale = (1.4826 * mad)
                .max(self.cfg.floor_abs[i])
                .max(self.cfg.floor_rel[i] * median.abs());
            stats[i] = Some(FeatureStats { median, scale });
        }
        Progress::Ready(Baseline {
            from_s: start,
            to_s: self.last_t,
            frames: self.frames,
            stats,
        })
    }
}

fn median_in_place(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

const _: () = assert!(FEATURE_NAMES.len() == 4);

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: f64, v: [Option<f64>; 4]) -> FeatureFrame {
        FeatureFrame {
            values: v,
            ..FeatureFrame::empty(t)
        }
    }

    #[test]
    fn median_and_mad_with_floors() {
        let mut b = BaselineBuilder::new(BaselineConfig {
            duration_s: 2.0,
            ..Default::default()
        });
        let exp = [true, true, false, false];
        let hr = [60.0, 62.0, 70.0, 64.0, 66.0, 61.0, 63.0, 65.0, 67.0];
        let mut last = Progress::WarmingUp;
        for (i, h) in hr.iter().enumerate() {
            last = b.push(
                &frame(i as f64 * 0.25, [Some(*h), Some(40.0), None, None]),
                exp,
            );
        }
        let Progress::Ready(base) = last else {
            panic!("not ready: {last:?}")
        };
        let hr = base.stats[0].unwrap();
        assert_eq!(hr.median, 64.0);
        // |x - 64| sorted: 0 1 1 2 2 3 3 4 6 -> MAD 2 -> 2.9652
        assert!((hr.scale - 1.4826 * 2.0).abs() < 1e-12);
        // RMSSD constant: MAD 0, floor max(2 ms, 10 % of 40) = 4 ms.
        assert_eq!(base.stats[1].unwrap().scale, 4.0);
        assert!(base.stats[2].is_none());
    }

    #[test]
    fn waits_for_expected_features() {
        let mut b = BaselineBuilder::new(BaselineConfig::default());
        let exp = [true, true, false, false];
        assert_eq!(
            b.push(&frame(10.0, [Some(60.0), None, None, None]), exp),
            Progress::WarmingUp
        );
        assert!(matches!(
            b.push(&frame(60.0, [Some(60.0), Some(30.0), None, None]), exp),
            Progress::Collecting { .. }
        ));
    }
}
