//! Session calibration: the first minutes' feature frames → a calm reference that knows whether
//! it was calm.
//!
//! Pure. Collection starts once every expected feature has a value (or `max_wait_s` after the
//! first did) and lasts `duration_s` (180 s by default; SIGNALS.md §5 asks for ≥ 5 min of rest
//! where a protocol has it — a stored profile carries the longer history). Frames are averaged
//! into windows of `window_s` (10 s), in each feature's scoring scale
//! ([`super::score::SCALES`]), so that the 4 Hz frames of overlapping feature windows do not
//! pose as independent points.
//!
//! The windows are clustered ([`super::cluster`], linfa k-means and a Gaussian mixture, k by
//! BIC) when there are enough of them; the calm cluster (lowest arousal) gives the centre of
//! every clustered feature. Each feature's scale is the calm cluster's SD (or 1.4826·MAD of the
//! windows), but never below the within-person resting spread of the population prior
//! ([`super::prior`]): a few minutes cannot show how far a person drifts over half an hour. The
//! SCL's centre is the median of the last 6 windows (60 s): gel electrodes settle over the first
//! minutes (the level rises 5–30 % with a time constant of 40–200 s), so the level the person is
//! at is the most recent one. The SCR rate's centre is the calibration's mean rate (at least 0.1/min), its scale the
//! overdispersion φ = 1.3 ([`super::score`]).
//!
//! **EDA non-responders** (about 10 % of people, Braithwaite et al. 2013): fewer than
//! `non_responder_per_min` (0.5) SCRs per minute over a calibration of at least 120 s of EDA
//! drops both EDA features with the reason `eda_non_responder` (SIGNALS.md §4.4 step 6 puts the
//! flag at about 1/min over 5 min; half that over a shorter calibration keeps hypo-responders).
//!
//! **Too short, gaps, noise.** A period that ends with fewer than [`MIN_WINDOWS`] (6) windows
//! with features (a strap lost for most of it) starts over; meanwhile decisions stay on the
//! population prior, which never escalates. A feature in under half the windows gets no
//! reference and drops out of scoring (`no_reference`). A noisy calibration gives wide scales:
//! less sensitive, never wilder.
//!
//! **Was it calm?** The calibration's centre is compared with the population prior: the
//! Stouffer composite of `dᵢ (centreᵢ − priorᵢ) / between-person SDᵢ` (the SCR rate as
//! `ln(rate / 2) / 0.6`). At `suspect_z` (1.5) or above, the person sat well above resting
//! strangers in agreeing features, and the reference is marked `suspect:
//! "aroused_vs_population"`. A stored profile is the stronger comparison
//! ([`compare`]); the caller marks `aroused_vs_profile`.

use super::cluster::{self, FitConfig};
use super::prior::POPULATION;
use super::score::{
    BaselineKind, ClusterSummary, DIRECTIONS, RefStat, Reference, SCALES, ScoringScale, to_scale,
};
use crate::features::{FEATURE_NAMES, FeatureFrame};

/// Calibration settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationConfig {
    /// Length of the calibration, s.
    pub duration_s: f64,
    /// If not every expected feature has a value, start anyway this long after the first, s.
    pub max_wait_s: f64,
    /// Window for the calibration vectors, s.
    pub window_s: f64,
    /// Share of windows a feature needs to enter the reference.
    pub min_coverage: f64,
    /// Fewer SCRs per minute than this marks an EDA non-responder.
    pub non_responder_per_min: f64,
    /// Over at least this much EDA, s.
    pub non_responder_min_s: f64,
    /// Composite z against the prior at which the calibration is suspect.
    pub suspect_z: f64,
    /// Overdispersion of the SCR count.
    pub count_dispersion: f64,
    /// Smallest scale per feature (scoring scale): the prior's within-person resting spread.
    pub floors: [f64; 4],
    /// Per feature: take the centre from only the last this many windows (a level that drifts
    /// during calibration, such as SCL while gel electrodes settle); `None`: all windows.
    pub recent_windows: [Option<usize>; 4],
    /// Clustering seed.
    pub seed: u64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            duration_s: 180.0,
            max_wait_s: 60.0,
            window_s: 10.0,
            min_coverage: 0.5,
            non_responder_per_min: 0.5,
            non_responder_min_s: 120.0,
            suspect_z: 1.5,
            count_dispersion: 1.3,
            floors: [
                POPULATION[0].within_sd,
                POPULATION[1].within_sd,
                POPULATION[2].within_sd,
                POPULATION[3].within_sd,
            ],
            recent_windows: [None, None, Some(6), None],
            seed: 0x5EED,
        }
    }
}

/// One calibration window: per feature the mean of its frames in the scoring scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Time of the window's last frame, s.
    pub t: f64,
    /// Means, [`crate::features::FEATURE_NAMES`] order.
    pub values: [Option<f64>; 4],
}

/// What the calibration is doing.
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
    Ready(Box<Reference>),
}

/// Why a calibration gave no reference.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// Too few windows with any feature.
    #[error("calibration too short: {got} windows of {window_s} s with features, need {need}")]
    TooShort {
        /// Windows collected.
        got: usize,
        /// Windows needed.
        need: usize,
        /// Window length, s.
        window_s: f64,
    },
}

/// Collects one session's calibration.
#[derive(Debug, Clone)]
pub struct Calibration {
    cfg: CalibrationConfig,
    first_any: Option<f64>,
    start: Option<f64>,
    win_start: f64,
    sums: [(f64, usize); 4],
    frames: usize,
    windows: Vec<Window>,
    last_t: f64,
    total_frames: usize,
}

impl Calibration {
    /// A fresh calibration.
    pub fn new(cfg: CalibrationConfig) -> Self {
        Self {
            cfg,
            first_any: None,
            start: None,
            win_start: 0.0,
            sums: [(0.0, 0); 4],
            frames: 0,
            windows: Vec::new(),
            last_t: 0.0,
            total_frames: 0,
        }
    }

    /// Settings.
    pub fn config(&self) -> &CalibrationConfig {
        &self.cfg
    }

    /// Whether collection has started.
    pub fn started(&self) -> bool {
        self.start.is_some()
    }

    /// Starts over (a consent change, a researcher's request).
    pub fn restart(&mut self) {
        *self = Self::new(self.cfg.clone());
    }

    /// Feeds one frame; `expected[i]`: feature i can exist (its stream is present and
    /// consented).
    pub fn push(&mut self, f: &FeatureFrame, expected: [bool; 4]) -> Progress {
        if self.start.is_none() {
            if !f.any() {
                return Progress::WarmingUp;
            }
            let first = *self.first_any.get_or_insert(f.t);
            let all = f
                .values
                .iter()
                .zip(expected)
                .all(|(v, e)| v.is_some() || !e);
            if !(all || f.t - first >= self.cfg.max_wait_s) {
                return Progress::WarmingUp;
            }
            self.start = Some(f.t);
            self.win_start = f.t;
        }
        let start = self.start.unwrap_or(f.t);
        self.last_t = f.t;
        for (i, v) in f.values.iter().enumerate() {
            if let Some(x) = v.and_then(|v| to_scale(i, v)) {
                self.sums[i].0 += x;
                self.sums[i].1 += 1;
            }
        }
        self.frames += 1;
        self.total_frames += 1;
        if f.t - self.win_start + 1e-9 >= self.cfg.window_s {
            self.close_window(f.t);
        }
        let elapsed_s = f.t - start;
        if elapsed_s + 1e-9 < self.cfg.duration_s {
            return Progress::Collecting { elapsed_s };
        }
        if self.frames > 0 {
            self.close_window(f.t);
        }
        match build(&self.windows, &self.cfg) {
            Ok(mut r) => {
                r.from_s = start;
                r.to_s = self.last_t;
                r.frames = self.total_frames;
                Progress::Ready(Box::new(r))
            }
            // Not one usable window in the whole period: start over.
            Err(_) => {
                self.restart();
                Progress::WarmingUp
            }
        }
    }

    fn close_window(&mut self, t: f64) {
        let need = (self.frames / 2).max(1);
        let values = std::array::from_fn(|i| {
            let (s, n) = self.sums[i];
            (n >= need).then(|| s / n as f64)
        });
        if values.iter().any(Option::is_some) {
            self.windows.push(Window { t, values });
        }
        self.sums = [(0.0, 0); 4];
        self.frames = 0;
        self.win_start = t;
    }
}

/// The fewest windows a reference is built from.
pub const MIN_WINDOWS: usize = 6;

/// Builds a reference (kind `session`) from calibration windows.
pub fn build(windows: &[Window], cfg: &CalibrationConfig) -> Result<Reference, CalibrationError> {
    if windows.len() < MIN_WINDOWS {
        return Err(CalibrationError::TooShort {
            got: windows.len(),
            need: MIN_WINDOWS,
            window_s: cfg.window_s,
        });
    }
    let mut r = Reference::population();
    r.kind = BaselineKind::Session;
    r.windows = windows.len();
    r.from_s = windows.first().map_or(0.0, |w| w.t - cfg.window_s);
    r.to_s = windows.last().map_or(0.0, |w| w.t);
    let covered: [bool; 4] = std::array::from_fn(|i| {
        let n = windows.iter().filter(|w| w.values[i].is_some()).count();
        n >= MIN_WINDOWS.min(windows.len()) && n as f64 >= cfg.min_coverage * windows.len() as f64
    });
    for i in 0..4 {
        r.stats[i] = None;
        if !covered[i] {
            continue;
        }
        let xs: Vec<f64> = windows.iter().filter_map(|w| w.values[i]).collect();
        r.stats[i] = Some(match SCALES[i] {
            ScoringScale::Count => RefStat {
                center: (xs.iter().sum::<f64>() / xs.len() as f64).max(0.1),
                scale: cfg.count_dispersion,
            },
            _ => {
                let (median, mad) = median_mad(&xs);
                // A drifting level (SCL while the electrodes settle) is taken from its most
                // recent windows: the level it is at, not the one it passed through.
                let center = match cfg.recent_windows[i] {
                    Some(k) if xs.len() > k => median_mad(&xs[xs.len() - k..]).0,
                    _ => median,
                };
                RefStat {
                    center,
                    scale: (1.4826 * mad).max(cfg.floors[i]),
                }
            }
        });
    }
    // Cluster the continuous features that every window has.
    let dims: Vec<usize> = (0..3).filter(|&i| covered[i]).collect();
    let vectors: Vec<Vec<f64>> = windows
        .iter()
        .filter_map(|w| {
            dims.iter()
                .map(|&i| w.values[i])
                .collect::<Option<Vec<_>>>()
        })
        .collect();
    if !dims.is_empty() && vectors.len() >= MIN_WINDOWS {
        let directions: Vec<f64> = dims.iter().map(|&i| DIRECTIONS[i]).collect();
        let floors: Vec<f64> = dims.iter().map(|&i| cfg.floors[i]).collect();
        let fit = FitConfig {
            seed: cfg.seed,
            ..FitConfig::default()
        };
        if let Ok(model) = cluster::fit(&vectors, &directions, &floors, &fit) {
            let calm = model.calm();
            for (j, &i) in dims.iter().enumerate() {
                let center = match (cfg.recent_windows[i], r.stats[i]) {
                    (Some(_), Some(s)) => s.center,
                    _ => model.scaler.center[j] + calm.mean[j] * model.scaler.scale[j],
                };
                let sd = calm.cov[j][j].max(0.0).sqrt() * model.scaler.scale[j];
                r.stats[i] = Some(RefStat {
                    center,
                    scale: sd.max(cfg.floors[i]),
                });
            }
            r.clusters = Some(ClusterSummary {
                k: model.components.len(),
                calm_weight: calm.weight,
                method: model.method.clone(),
                current: None,
                calm_posterior: None,
            });
            r.model = Some(std::sync::Arc::new(super::score::FeatureModel {
                features: dims.iter().map(|&i| FEATURE_NAMES[i].to_owned()).collect(),
                model,
            }));
        }
    }
    // EDA non-responder.
    let eda_s = windows.iter().filter(|w| w.values[3].is_some()).count() as f64 * cfg.window_s;
    if let Some(s) = r.stats[3]
        && eda_s >= cfg.non_responder_min_s
        && s.center < cfg.non_responder_per_min
    {
        r.unsupported[2] = Some("eda_non_responder");
        r.unsupported[3] = Some("eda_non_responder");
    }
    if versus_population(&r) >= cfg.suspect_z {
        r.suspect = Some("aroused_vs_population");
    }
    Ok(r)
}

/// Stouffer composite of `r`'s supported centres against the population prior (module doc).
pub fn versus_population(r: &Reference) -> f64 {
    let w = super::score::ScoreConfig::default().weights;
    let (mut num, mut w2) = (0.0, 0.0);
    for i in 0..4 {
        let (Some(s), None) = (r.stats[i], r.unsupported[i]) else {
            continue;
        };
        let p = POPULATION[i];
        let z = match SCALES[i] {
            ScoringScale::Count => (s.center.max(0.1) / p.center).ln() / 0.6,
            _ => (s.center - p.center) / p.between_sd,
        };
        num += w[i] * DIRECTIONS[i] * z.clamp(-6.0, 6.0);
        w2 += w[i] * w[i];
    }
    if w2 > 0.0 { num / w2.sqrt() } else { 0.0 }
}

/// How much more aroused `newer` is than `older` (Stouffer composite of the centre shifts in
/// units of `older`'s scales, over the features both have); 0 without common features.
pub fn compare(newer: &Reference, older: &Reference) -> f64 {
    let w = super::score::ScoreConfig::default().weights;
    let (mut num, mut w2) = (0.0, 0.0);
    for i in 0..4 {
        let (Some(n), Some(o)) = (newer.stats[i], older.stats[i]) else {
            continue;
        };
        if newer.unsupported[i].is_some() || older.unsupported[i].is_some() {
            continue;
        }
        let z = match SCALES[i] {
            ScoringScale::Count => (n.center.max(0.1) / o.center.max(0.1)).ln() / 0.6,
            _ => (n.center - o.center) / o.scale.max(1e-12),
        };
        num += w[i] * DIRECTIONS[i] * z.clamp(-6.0, 6.0);
        w2 += w[i] * w[i];
    }
    if w2 > 0.0 { num / w2.sqrt() } else { 0.0 }
}

fn median_mad(xs: &[f64]) -> (f64, f64) {
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            0.0
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let mut v = xs.to_vec();
    let m = med(&mut v);
    let mut d: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    (m, med(&mut d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(t: f64, v: [Option<f64>; 4]) -> FeatureFrame {
        FeatureFrame {
            values: v,
            ..FeatureFrame::empty(t)
        }
    }

    fn calibrate(f: impl Fn(f64) -> [Option<f64>; 4]) -> Reference {
        let mut c = Calibration::new(CalibrationConfig::default());
        let mut t = 0.0;
        loop {
            if let Progress::Ready(r) = c.push(&frame(t, f(t)), [true; 4]) {
                return *r;
            }
            t += 0.25;
            assert!(t < 1000.0, "never ready");
        }
    }

    #[test]
    fn a_clustered_calibration_carries_its_model_and_places_frames_in_it() {
        let r = calibrate(|t| {
            let w = (t * 0.7).sin();
            [
                Some(62.0 + w),
                Some(45.0 - w),
                Some(6.0 + 0.05 * w),
                Some(2.0),
            ]
        });
        let m = r.model.as_ref().expect("a model");
        assert_eq!(m.features, ["hr_bpm", "rmssd_ms", "scl_us"]);
        assert_eq!(
            r.clusters.as_ref().map(|c| c.k),
            Some(m.model.components.len())
        );
        // At the calm centre the calm cluster is the most probable; a missing feature gives no
        // position.
        let calm = [Some(62.0), Some(45f64.ln()), Some(6f64.ln()), Some(2.0)];
        let (k, p) = m.position(&calm).expect("a position");
        assert_eq!(k, 0);
        assert!(p > 0.5, "{p}");
        assert_eq!(m.position(&[Some(62.0), None, Some(6f64.ln()), None]), None);
    }

    #[test]
    fn a_calm_calibration_gives_a_session_reference_with_floored_scales() {
        let r = calibrate(|t| {
            let w = (t * 0.3).sin();
            [Some(62.0 + w), Some(45.0), Some(4.0), Some(2.0)]
        });
        assert_eq!(r.kind, BaselineKind::Session);
        assert_eq!(r.suspect, None);
        assert_eq!(r.unsupported, [None; 4]);
        let hr = r.stats[0].unwrap();
        assert!((hr.center - 62.0).abs() < 0.5, "{hr:?}");
        // Within-person floor: 3 bpm, although the calibration varied by 1.
        assert!((hr.scale - 3.0).abs() < 1e-9);
        assert!((r.stats[1].unwrap().center - 45f64.ln()).abs() < 1e-6);
        assert_eq!(r.stats[3].unwrap().center, 2.0);
        assert!(r.windows >= 17 && r.windows <= 19, "{}", r.windows);
        assert!(r.clusters.is_some());
    }

    #[test]
    fn an_aroused_calibration_is_suspect_and_a_non_responder_loses_eda() {
        // HR 95, RMSSD 15 ms, SCL 14 µS, 7 SCR/min: far above resting strangers.
        let r = calibrate(|_| [Some(95.0), Some(15.0), Some(14.0), Some(7.0)]);
        assert!(versus_population(&r) > 1.5);
        assert_eq!(r.suspect, Some("aroused_vs_population"));
        let n = calibrate(|_| [Some(66.0), Some(40.0), Some(3.0), Some(0.0)]);
        assert_eq!(n.unsupported[2], Some("eda_non_responder"));
        assert_eq!(n.unsupported[3], Some("eda_non_responder"));
        assert_eq!(n.suspect, None);
    }

    #[test]
    fn compare_measures_the_shift_in_the_older_scales() {
        let old = calibrate(|_| [Some(60.0), None, None, None]);
        let new = calibrate(|_| [Some(69.0), None, None, None]);
        // 9 bpm over the 3 bpm floor.
        assert!((compare(&new, &old) - 3.0).abs() < 1e-6);
        assert!((compare(&old, &new) + 3.0).abs() < 1e-6);
    }

    #[test]
    fn too_few_windows_is_an_error() {
        let w = Window {
            t: 10.0,
            values: [Some(60.0), None, None, None],
        };
        let e = build(&[w; 3], &CalibrationConfig::default()).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
    }
}
