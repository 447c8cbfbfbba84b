//! Online scoring: a feature frame against the participant's calm reference, in one explained
//! number.
//!
//! Pure. Each feature is compared with the calm reference in its own **scoring scale**:
//!
//! | feature | scale | z | direction | nominal weight |
//! |---|---|---|---|---|
//! | `hr_bpm` | bpm | `(x − c) / s` | +1 | 1.0 (10 s window, reliable) |
//! | `rmssd_ms` | ln ms | `(ln x − c) / s` | −1 | 0.5 (60 s window: slow, and moved by breathing and speech) |
//! | `scl_us` | ln µS | `(ln x − c) / s` | +1 | 1.0 (10 s window; follows arousal with a lag of tens of seconds) |
//! | `scr_per_min` | count in the 60 s window | Anscombe: `2(√(n + 3/8) − √(λ + 3/8)) / φ` | +1 | 0.5 (60 s window; a small count) |
//!
//! Logarithms for RMSSD and SCL because their spread between and within people is
//! multiplicative. The SCR rate is a small count, so it is scored as a count, not as a
//! z-score of a median and MAD: `n` SCRs in the window against the `λ` expected from the
//! reference rate, through Anscombe's variance-stabilising transform for Poisson counts
//! (Anscombe 1948, *Biometrika* 35:246; unit variance for a Poisson count), divided by an
//! overdispersion `φ` (1.3) because non-specific SCRs come in bursts. A burst of 5 SCRs
//! against 2 expected is z ≈ 1.4, not the 4–5 a MAD of window rates gave.
//!
//! The composite is Stouffer's weighted combination `Z = Σ wᵢ dᵢ zᵢ / √(Σ wᵢ²)` (Stouffer et al.
//! 1949; Liptak 1958), with each zᵢ capped at ±6 so that one wild value cannot decide alone.
//! For independent features with unit-variance z it has unit variance, so thresholds on `Z` mean
//! the same whichever features a participant has. A feature of a degraded stream (stale, low
//! quality) counts with half its weight. A feature the reference marks as unsupported (an EDA
//! non-responder's SCR rate) or whose stream lacks `adapt` consent drops out with its reason.
//!
//! **Confidence** (0..1) = coverage × quality × agreement × trust:
//! - coverage: the nominal weight of the features used over that of the features expected
//!   (their stream is present, consented and supported);
//! - quality: effective over nominal weight of the features used (degraded streams lower it);
//! - agreement: `0.5 + 0.5 · |Σ wᵢdᵢzᵢ| / Σ wᵢ|zᵢ|` (1 when all features point the same way,
//!   0.5 when they cancel), 1 when every z is within ±0.5;
//! - trust in the reference: population 0.4, session 0.8, personal 1.0; ×0.6 when the
//!   calibration may not have been calm; × the freshness `0.5 + 0.5·exp(−age/90 days)` of a
//!   stored profile (a resting baseline drifts over months: fitness, medication, season; a
//!   profile not refined for a quarter weighs about 0.68, never below half). attune's rule,
//!   not a published one: a calm calibration in this session that agrees with the profile
//!   renews it (age 0).

use crate::features::{FEATURE_NAMES, FeatureFrame};
use crate::model::StreamKind;
use serde::{Deserialize, Serialize};

/// How a feature is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoringScale {
    /// As it is.
    Linear,
    /// Natural logarithm.
    Log,
    /// A count of events in the feature's window.
    Count,
}

impl ScoringScale {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Log => "log",
            Self::Count => "count",
        }
    }
}

/// The scoring scale of each feature, [`FEATURE_NAMES`] order.
pub const SCALES: [ScoringScale; 4] = [
    ScoringScale::Linear,
    ScoringScale::Log,
    ScoringScale::Log,
    ScoringScale::Count,
];

/// How each feature's z enters the composite: sympathetic arousal raises HR, SCL and the SCR
/// rate, and vagal withdrawal lowers RMSSD (SIGNALS.md §5; Boucsein 2012).
pub const DIRECTIONS: [f64; 4] = [1.0, -1.0, 1.0, 1.0];

/// A value in its scoring scale (`None` for a log of a non-positive value or a non-finite one).
pub fn to_scale(i: usize, v: f64) -> Option<f64> {
    let x = match SCALES[i] {
        ScoringScale::Log if v > 0.0 => v.ln(),
        ScoringScale::Log => return None,
        ScoringScale::Linear | ScoringScale::Count => v,
    };
    x.is_finite().then_some(x)
}

/// A value back from its scoring scale.
pub fn from_scale(i: usize, x: f64) -> f64 {
    match SCALES[i] {
        ScoringScale::Log => x.exp(),
        ScoringScale::Linear | ScoringScale::Count => x,
    }
}

/// The calm reference of one feature, in its scoring scale. For a count: `center` is the rate
/// per minute and `scale` the overdispersion φ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RefStat {
    /// Centre.
    pub center: f64,
    /// Scale (SD in the scoring scale; φ for a count).
    pub scale: f64,
}

/// Where a reference comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// Published norms of resting adults ([`super::prior`]): no baseline of this person yet.
    Population,
    /// This session's calibration.
    Session,
    /// The participant's stored profile (kept under `profile` consent), refined over sessions.
    Personal,
}

impl BaselineKind {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Population => "population",
            Self::Session => "session",
            Self::Personal => "personal",
        }
    }

    fn trust(self) -> f64 {
        match self {
            Self::Population => 0.4,
            Self::Session => 0.8,
            Self::Personal => 1.0,
        }
    }
}

/// The calm reference a frame is scored against.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Where it comes from.
    pub kind: BaselineKind,
    /// Per feature, [`FEATURE_NAMES`] order; `None` where it has no statistics.
    pub stats: [Option<RefStat>; 4],
    /// Features this participant's signals cannot support, with the reason (e.g.
    /// `eda_non_responder`).
    pub unsupported: [Option<&'static str>; 4],
    /// Stream time the calibration it comes from started, s (session), or 0.
    pub from_s: f64,
    /// Stream time it ended, s.
    pub to_s: f64,
    /// Calibration windows it was built from.
    pub windows: usize,
    /// Feature frames of those windows.
    pub frames: usize,
    /// Why the calibration may not have been calm, if it may not.
    pub suspect: Option<&'static str>,
    /// Clusters found in the calibration, if it was clustered.
    pub clusters: Option<ClusterSummary>,
    /// The calibration's cluster model over the features it names, if it was clustered
    /// (kept in the profile; places the current windows in a cluster).
    pub model: Option<std::sync::Arc<FeatureModel>>,
    /// How old the reference is, days (a stored profile's time since its last session; 0 for
    /// a session's calibration and the prior). Lowers the trust in it (module doc).
    pub age_days: f64,
}

/// A cluster model and the features its dimensions are, in each feature's scoring scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureModel {
    /// Feature names ([`FEATURE_NAMES`]), one per dimension of `model`.
    pub features: Vec<String>,
    /// The model.
    pub model: super::cluster::ClusterModel,
}

impl FeatureModel {
    /// The [`FEATURE_NAMES`] index of each dimension; `None` if a name is unknown.
    pub fn indices(&self) -> Option<Vec<usize>> {
        self.features
            .iter()
            .map(|f| FEATURE_NAMES.iter().position(|n| n == f))
            .collect()
    }

    /// Where `x` (per feature, scoring scale, [`FEATURE_NAMES`] order) sits: the most probable
    /// component (0 = calm) and the calm component's posterior. `None` when a dimension's
    /// value is missing or the model does not fit the features.
    pub fn position(&self, x: &[Option<f64>; 4]) -> Option<(usize, f64)> {
        let idx = self.indices()?;
        if idx.len() != self.model.dim() || idx.is_empty() {
            return None;
        }
        let v: Vec<f64> = idx
            .iter()
            .map(|&i| x.get(i).copied().flatten())
            .collect::<Option<_>>()?;
        let post = self.model.posteriors(&v);
        let best = post
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k)?;
        Some((best, post.first().copied().unwrap_or(0.0)))
    }
}

/// What the clustering of a calibration found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    /// Components chosen.
    pub k: usize,
    /// Weight of the calm component.
    pub calm_weight: f64,
    /// `gmm`, `kmeans` or `single`.
    pub method: String,
    /// The component the last 20 s of features sit in (0 = calm, ascending arousal), when
    /// known: the most probable one under the model (log-space posteriors).
    pub current: Option<usize>,
    /// The calm component's posterior for the last 20 s of features, when known.
    pub calm_posterior: Option<f64>,
}

impl Reference {
    /// Per feature, the centre in the feature's unit (bpm, ms, µS, per minute) as a JSON
    /// object keyed by feature name (`null` where it has none).
    pub fn centres_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            let v = self.stats[i].map(|s| from_scale(i, s.center));
            m.insert((*name).to_owned(), serde_json::json!(v));
        }
        serde_json::Value::Object(m)
    }

    /// The population prior.
    pub fn population() -> Self {
        let stats = std::array::from_fn(|i| {
            let p = super::prior::POPULATION[i];
            Some(match SCALES[i] {
                ScoringScale::Count => RefStat {
                    center: p.center,
                    // Between people the rate varies several-fold: a wide dispersion.
                    scale: 2.5,
                },
                _ => RefStat {
                    center: p.center,
                    scale: p.between_sd,
                },
            })
        });
        Self {
            kind: BaselineKind::Population,
            stats,
            unsupported: [None; 4],
            from_s: 0.0,
            to_s: 0.0,
            windows: 0,
            frames: 0,
            suspect: None,
            clusters: None,
            model: None,
            age_days: 0.0,
        }
    }
}

/// The freshness factor of a reference `age_days` old (module doc): 1 when new, ½ at the
/// limit; a non-finite or negative age counts as new.
pub fn freshness(age_days: f64) -> f64 {
    if age_days.is_finite() && age_days > 0.0 {
        0.5 + 0.5 * (-age_days / 90.0).exp()
    } else {
        1.0
    }
}

/// Scoring settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreConfig {
    /// Nominal weight per feature, [`FEATURE_NAMES`] order.
    pub weights: [f64; 4],
    /// Weight factor for a feature of a degraded stream.
    pub degraded_factor: f64,
    /// |z| cap.
    pub z_cap: f64,
    /// The SCR-rate window, minutes (the features' `scr_window_s` / 60).
    pub scr_window_min: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            weights: [1.0, 0.5, 1.0, 0.5],
            degraded_factor: 0.5,
            z_cap: 6.0,
            scr_window_min: 1.0,
        }
    }
}

/// One feature's part in a score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Term {
    /// Index into [`FEATURE_NAMES`].
    pub index: usize,
    /// Current value, in the feature's unit.
    pub value: Option<f64>,
    /// z against the reference (not multiplied by the direction), capped.
    pub z: Option<f64>,
    /// The weight it entered with (0 when it did not).
    pub weight: f64,
    /// The reference statistics.
    pub stat: Option<RefStat>,
    /// Whether its stream is degraded.
    pub degraded: bool,
    /// The stream the value came from.
    pub source: StreamKind,
    /// Why it did not enter, if it did not.
    pub dropped: Option<&'static str>,
}

impl Term {
    /// Feature name.
    pub fn name(&self) -> &'static str {
        FEATURE_NAMES[self.index]
    }
}

/// A scored frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// One term per feature the participant's streams could give (present or consented).
    pub terms: Vec<Term>,
    /// Stouffer composite, if any feature entered.
    pub composite: Option<f64>,
    /// Confidence 0..1 (module doc).
    pub confidence: f64,
    /// Agreement between the features, 0.5..1.
    pub agreement: f64,
}

/// What the caller knows about each feature's stream, [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Availability {
    /// A stream that can give the feature is present and processed.
    pub expected: [bool; 4],
    /// Its stream has `adapt` consent.
    pub usable: [bool; 4],
    /// Its stream is degraded (stale, low quality).
    pub degraded: [bool; 4],
}

/// z of feature `i`'s value `v` (in its unit) against `s`, capped.
pub fn z_of(i: usize, v: f64, s: RefStat, cfg: &ScoreConfig) -> Option<f64> {
    let z = match SCALES[i] {
        ScoringScale::Count => {
            let n = (v * cfg.scr_window_min).max(0.0);
            let lambda = (s.center * cfg.scr_window_min).max(0.0);
            2.0 * ((n + 0.375).sqrt() - (lambda + 0.375).sqrt()) / s.scale.max(1e-9)
        }
        _ => (to_scale(i, v)? - s.center) / s.scale.max(1e-12),
    };
    z.is_finite().then(|| z.clamp(-cfg.z_cap, cfg.z_cap))
}

/// Scores `f` against `r`.
#[allow(clippy::needless_range_loop)] // five per-feature arrays indexed together
pub fn score(f: &FeatureFrame, r: &Reference, a: &Availability, cfg: &ScoreConfig) -> Score {
    let mut terms = Vec::with_capacity(4);
    let (mut num, mut w2, mut wabs) = (0.0, 0.0, 0.0);
    let (mut nominal_used, mut nominal_expected, mut effective) = (0.0, 0.0, 0.0);
    let mut big = false;
    for i in 0..4 {
        if !a.usable[i] && !a.expected[i] {
            continue;
        }
        let stat = r.stats[i];
        let value = f.values[i];
        let dropped = if !a.usable[i] {
            Some("no_adapt_consent")
        } else if let Some(why) = r.unsupported[i] {
            Some(why)
        } else if stat.is_none() {
            Some("no_reference")
        } else if value.is_none() {
            Some("no_value")
        } else {
            None
        };
        if a.expected[i] && a.usable[i] && r.unsupported[i].is_none() && stat.is_some() {
            nominal_expected += cfg.weights[i];
        }
        let z = match (value, stat) {
            (Some(v), Some(s)) => z_of(i, v, s, cfg),
            _ => None,
        };
        let mut weight = 0.0;
        if dropped.is_none()
            && let Some(z) = z
        {
            weight = cfg.weights[i]
                * if a.degraded[i] {
                    cfg.degraded_factor
                } else {
                    1.0
                };
            num += weight * DIRECTIONS[i] * z;
            w2 += weight * weight;
            wabs += weight * z.abs();
            nominal_used += cfg.weights[i];
            effective += weight;
            big |= z.abs() > 0.5;
        }
        terms.push(Term {
            index: i,
            value,
            z,
            weight,
            stat,
            degraded: a.degraded[i],
            source: f.sources[i],
            dropped: dropped.or(if z.is_none() { Some("no_value") } else { None }),
        });
    }
    if w2 <= 0.0 {
        return Score {
            terms,
            composite: None,
            confidence: 0.0,
            agreement: 1.0,
        };
    }
    let composite = num / w2.sqrt();
    let agreement = if big && wabs > 0.0 {
        0.5 + 0.5 * (num.abs() / wabs).min(1.0)
    } else {
        1.0
    };
    let coverage = if nominal_expected > 0.0 {
        (nominal_used / nominal_expected).min(1.0)
    } else {
        1.0
    };
    let quality = effective / nominal_used;
    let trust =
        r.kind.trust() * if r.suspect.is_some() { 0.6 } else { 1.0 } * freshness(r.age_days);
    Score {
        terms,
        composite: Some(composite),
        confidence: (coverage * quality * agreement * trust).clamp(0.0, 1.0),
        agreement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Reference {
        let mut r = Reference::population();
        r.kind = BaselineKind::Session;
        r.stats = [
            Some(RefStat {
                center: 60.0,
                scale: 3.0,
            }),
            Some(RefStat {
                center: 40f64.ln(),
                scale: 0.2,
            }),
            Some(RefStat {
                center: 5f64.ln(),
                scale: 0.05,
            }),
            Some(RefStat {
                center: 2.0,
                scale: 1.3,
            }),
        ];
        r
    }

    fn all() -> Availability {
        Availability {
            expected: [true; 4],
            usable: [true; 4],
            degraded: [false; 4],
        }
    }

    fn frame(v: [Option<f64>; 4]) -> FeatureFrame {
        FeatureFrame {
            values: v,
            ..FeatureFrame::empty(0.0)
        }
    }

    #[test]
    fn stouffer_of_agreeing_features() {
        let cfg = ScoreConfig::default();
        // HR +2 sd, RMSSD at reference, SCL +2 sd (ln), SCR exactly expected.
        let f = frame([
            Some(66.0),
            Some(40.0),
            Some((5f64.ln() + 0.1).exp()),
            Some(2.0),
        ]);
        let s = score(&f, &reference(), &all(), &cfg);
        let want = (2.0 + 2.0) / (1.0f64 + 0.25 + 1.0 + 0.25).sqrt();
        assert!((s.composite.unwrap() - want).abs() < 1e-9, "{s:?}");
        // Two features at 0 and two at +2: agreement 1 (nothing cancels).
        assert!((s.agreement - 1.0).abs() < 1e-12);
        assert!((s.confidence - 0.8).abs() < 1e-9);
    }

    #[test]
    fn a_burst_of_scrs_is_a_modest_count_z() {
        let cfg = ScoreConfig::default();
        let s = RefStat {
            center: 2.0,
            scale: 1.3,
        };
        let z = z_of(3, 5.0, s, &cfg).unwrap();
        let want = 2.0 * ((5.375f64).sqrt() - (2.375f64).sqrt()) / 1.3;
        assert!((z - want).abs() < 1e-12);
        assert!(z > 1.0 && z < 1.5, "{z}");
        // No SCR at all against 2 expected: mildly negative, not −∞.
        let z0 = z_of(3, 0.0, s, &cfg).unwrap();
        assert!(z0 < -1.0 && z0 > -2.0, "{z0}");
    }

    #[test]
    fn unsupported_and_unconsented_features_drop_out_with_a_reason() {
        let cfg = ScoreConfig::default();
        let mut r = reference();
        r.unsupported[3] = Some("eda_non_responder");
        let mut a = all();
        a.usable[1] = false;
        let f = frame([Some(63.0), Some(20.0), Some(5.0), Some(9.0)]);
        let s = score(&f, &r, &a, &cfg);
        let why: Vec<_> = s.terms.iter().map(|t| t.dropped).collect();
        assert_eq!(
            why,
            vec![
                None,
                Some("no_adapt_consent"),
                None,
                Some("eda_non_responder")
            ]
        );
        // Only HR (+1) and SCL (0) enter.
        assert!((s.composite.unwrap() - 1.0 / 2f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn degraded_streams_and_a_population_reference_lower_confidence() {
        let cfg = ScoreConfig::default();
        let f = frame([Some(60.0), Some(40.0), Some(5.0), Some(2.0)]);
        let mut a = all();
        a.degraded = [false, false, true, true];
        let s = score(&f, &reference(), &a, &cfg);
        // quality = (1 + 0.5 + 0.5 + 0.25) / 3
        assert!((s.confidence - 0.8 * 2.25 / 3.0).abs() < 1e-9, "{s:?}");
        let p = score(&f, &Reference::population(), &all(), &cfg);
        assert!(p.confidence <= 0.4 + 1e-12);
        // Nothing usable: no composite, confidence 0.
        let none = score(&FeatureFrame::empty(0.0), &reference(), &all(), &cfg);
        assert_eq!((none.composite, none.confidence), (None, 0.0));
    }

    #[test]
    fn z_is_capped_and_logs_refuse_non_positive_values() {
        let cfg = ScoreConfig::default();
        let s = reference().stats[0].unwrap();
        assert_eq!(z_of(0, 1e9, s, &cfg), Some(6.0));
        let l = reference().stats[1].unwrap();
        assert_eq!(z_of(1, 0.0, l, &cfg), None);
        assert_eq!(z_of(1, f64::NAN, l, &cfg), None);
    }
}
