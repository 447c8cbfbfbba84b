//! Personal-baseline clustering of calibration feature vectors.
//!
//! Pure code: no I/O, no clocks. A calibration yields `N` windowed feature vectors over `D ≤ 8`
//! features (complete vectors only). The pipeline is:
//!
//! 1. **Robust standardisation** ([`Scaler`]): per feature, centre = median and
//!    scale = `max(1.4826·MAD, floor[i])` (Hampel 1974; Rousseeuw & Croux 1993: 1.4826·MAD is a
//!    consistent estimator of σ under normality). The caller-given floor keeps near-constant
//!    features from turning noise into huge z-scores.
//! 2. **Mixture fit** in standardised units for `k = 1..=max_k`:
//!    * `k = 1` in closed form: sample mean and maximum-likelihood covariance (divisor `N`) plus
//!      `reg_covariance·I` (always attempted; it is the fallback model);
//!    * `k ≥ 2` by EM for a full-covariance Gaussian mixture (Dempster, Laird & Rubin 1977) with
//!      linfa-clustering 0.8.1, initialised from k-means++ (Arthur & Vassilvitskii 2007), seeded,
//!      restarted `n_runs` times with different seeds (linfa's own `n_runs` does not
//!      re-initialise, so each restart here is a separate one-run fit); the restart with the
//!      highest log-likelihood (computed here) wins. If every restart fails, k-means
//!      (Lloyd 1982) centroids with the pooled within-cluster covariance (plus `reg_covariance·I`)
//!      and cluster proportions as weights are used instead (`method = "kmeans"`).
//!    * a `k ≥ 2` fit (GMM restart or k-means fallback) is rejected if a component has fewer
//!      than [`min_points`]`(D)` effective points (`N·weight`): this excludes EM's degenerate
//!      optimum of one component sitting on a single outlier.
//!    * `k ≥ 2` is tried only if `N ≥ min_points_per_param · params(k, D)` with
//!      `params(k, D) = k·D + k·D(D+1)/2 + (k−1)` (full-covariance mixture), and only if the
//!      standardised data contain at least `k` distinct vectors (k-means with fewer distinct
//!      points silently duplicates centroids).
//! 3. **Model choice** by the Bayesian information criterion (Schwarz 1978),
//!    `BIC = −2·LL + p·ln N`, lowest wins (ties go to the smaller `k`). `LL` is always computed here
//!    from the fitted weights, means and covariances via Cholesky factors and log-sum-exp, never
//!    from linfa (linfa 0.8.1's `predict_proba` overflows to `inf` for far points, and its E-step
//!    has no log-sum-exp). `p` is the number of free parameters of the fitted model: the formula
//!    above for a GMM, `k·D + D(D+1)/2 + (k−1)` for the k-means fallback (one pooled covariance).
//!    A `k` that could not be fitted is left out of [`ClusterModel::criterion`]; the reason is
//!    recorded in [`ClusterModel::notes`].
//! 4. **Ordering**: components are sorted by ascending arousal score
//!    `arousal = mean_i(direction[i]·mean[i])` (standardised units), so `components[0]` is the
//!    calm cluster.
//!
//! Evaluation ([`ClusterModel::log_densities`], [`ClusterModel::posteriors`],
//! [`ClusterModel::mahalanobis`]) works in log space with Cholesky factors and is finite for any
//! finite input: standardised differences are clamped to ±1e150 and squared Mahalanobis
//! distances saturate at `f64::MAX`, so a point 1e6 σ away still gets finite log-densities and
//! posteriors that sum to 1 (one-hot on the component it is least far from).
//!
//! Note on `reg_covariance`: it is the variance floor in *standardised* units. A feature that
//! is constant during calibration gets variance `reg_covariance` in every component, so a
//! deviation of one floor unit in that feature is `1/sqrt(reg_covariance)` Mahalanobis units away.
//!
//! Limitation: a single gross outlier in the calibration makes every `k ≥ 2` fit isolate it
//! (k-means++ seeds a centroid on it), the size rule then rejects those fits and `k = 1` is
//! chosen even if the rest has two clusters. Remove artefact windows before calling [`fit`].
//!
//! Minimum data: `N ≥ max(5, D + 1)` ([`min_points`]); fewer gives [`ClusterError::TooFew`].
//! Determinism: the same input, directions, floors and config give a bit-identical model.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::{GaussianMixtureModel, GmmInitMethod, KMeans};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

/// Largest number of features accepted.
pub const MAX_FEATURES: usize = 8;

/// Consistency constant of the MAD for the normal distribution (1 / Φ⁻¹(3/4)).
pub const MAD_TO_SIGMA: f64 = 1.4826;

/// Absolute lower bound on the number of calibration vectors.
pub const MIN_POINTS_ABS: usize = 5;

/// Standardised differences are clamped to this magnitude before evaluation.
const DIFF_CLAMP: f64 = 1e150;

/// Maximum EM iterations per linfa GMM fit.
const GMM_MAX_ITER: u64 = 500;

/// Errors of the baseline clustering.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClusterError {
    /// Not enough calibration vectors.
    #[error("too few calibration vectors: have {n}, need at least {need}")]
    TooFew {
        /// Vectors given.
        n: usize,
        /// Vectors needed.
        need: usize,
    },
    /// A feature value, direction or floor is NaN or infinite.
    #[error("non-finite value (NaN or infinity) in the calibration vectors, directions or floors")]
    NonFinite,
    /// Vectors of unequal length, or directions/floors not matching the number of features.
    #[error(
        "dimension mismatch: all feature vectors, directions and floors must have the same length"
    )]
    DimensionMismatch,
    /// Zero features or more than [`MAX_FEATURES`].
    #[error("unsupported number of features {d}: need 1 to {max}")]
    BadFeatureCount {
        /// Features given.
        d: usize,
        /// Largest supported.
        max: usize,
    },
    /// A direction other than +1 or −1.
    #[error("arousal direction of feature {index} is {value}; it must be +1 or -1")]
    BadDirection {
        /// Feature index.
        index: usize,
        /// The value given.
        value: f64,
    },
    /// A negative scale floor.
    #[error("scale floor of feature {index} is {value}; it must be >= 0")]
    BadFloor {
        /// Feature index.
        index: usize,
        /// The value given.
        value: f64,
    },
    /// Invalid fit configuration.
    #[error("invalid fit configuration: {0}")]
    InvalidConfig(String),
    /// The data do not support a model (e.g. zero spread and zero floor).
    #[error("degenerate data: {0}")]
    Degenerate(String),
}

/// Robust per-feature standardisation: `z = (x − center) / scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Median per feature (raw units).
    pub center: Vec<f64>,
    /// `max(1.4826·MAD, floor)` per feature (raw units), > 0.
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Fits median and floored 1.4826·MAD per feature.
    ///
    /// Errors: empty input ([`ClusterError::TooFew`]), unequal lengths or `floors.len() != D`
    /// ([`ClusterError::DimensionMismatch`]), non-finite values or floors, negative floors, and a
    /// feature whose scale would be 0 (zero MAD and zero floor: [`ClusterError::Degenerate`]).
    pub fn fit(x: &[Vec<f64>], floors: &[f64]) -> Result<Self, ClusterError> {
        let d = check_matrix(x)?;
        if floors.len() != d {
            return Err(ClusterError::DimensionMismatch);
        }
        check_floors(floors)?;
        let mut center = Vec::with_capacity(d);
        let mut scale = Vec::with_capacity(d);
        let mut col = Vec::with_capacity(x.len());
        for (j, &floor) in floors.iter().enumerate() {
            col.clear();
            col.extend(x.iter().map(|r| r[j]));
            let med = median(&mut col);
            for v in col.iter_mut() {
                *v = (*v - med).abs();
            }
            let mad = median(&mut col);
            let s = (MAD_TO_SIGMA * mad).max(floor);
            if !(s > 0.0 && s.is_finite()) {
                return Err(ClusterError::Degenerate(format!(
                    "feature {j} has robust scale {s} (zero MAD with a zero floor, or overflow)"
                )));
            }
            center.push(med);
            scale.push(s);
        }
        Ok(Self { center, scale })
    }

    /// Standardises a raw vector. Uses the first `min(v.len(), D)` entries.
    pub fn transform(&self, v: &[f64]) -> Vec<f64> {
        v.iter()
            .zip(self.center.iter().zip(&self.scale))
            .map(|(x, (c, s))| (x - c) / s)
            .collect()
    }

    /// Maps a standardised vector back to raw units. Uses the first `min(z.len(), D)` entries.
    pub fn inverse(&self, z: &[f64]) -> Vec<f64> {
        z.iter()
            .zip(self.center.iter().zip(&self.scale))
            .map(|(z, (c, s))| c + z * s)
            .collect()
    }

    fn dim(&self) -> usize {
        self.center.len().min(self.scale.len())
    }
}

/// One mixture component, in standardised units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Mixing weight (the weights of a model sum to 1).
    pub weight: f64,
    /// Mean (standardised units).
    pub mean: Vec<f64>,
    /// Covariance (standardised units), `D × D`, regularised.
    pub cov: Vec<Vec<f64>>,
    /// `mean_i(direction[i]·mean[i])`: higher is more aroused.
    pub arousal: f64,
}

/// A fitted personal baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterModel {
    /// Robust standardisation fitted on the calibration.
    pub scaler: Scaler,
    /// Arousal direction per feature (+1 or −1).
    pub directions: Vec<f64>,
    /// Components by ascending arousal: `components[0]` is the calm cluster.
    pub components: Vec<Component>,
    /// `"single"` (k = 1 closed form), `"gmm"` (linfa EM) or `"kmeans"` (GMM failed; k-means
    /// centroids with the pooled within-cluster covariance).
    pub method: String,
    /// BIC per `k` that was fitted (lower is better; Schwarz 1978). Unfitted `k` are absent.
    pub criterion: Vec<(usize, f64)>,
    /// Number of calibration vectors.
    pub n: usize,
    /// Log-likelihood of the calibration under the chosen model (standardised units).
    pub log_likelihood: f64,
    /// Human-readable notes: skipped `k` and why, fallbacks used, merges.
    pub notes: Vec<String>,
}

/// Fit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Largest number of components tried (≥ 1).
    pub max_k: usize,
    /// Seed for the k-means/EM initialisation.
    pub seed: u64,
    /// Try `k ≥ 2` only if `N ≥ min_points_per_param · params(k, D)` (> 0).
    pub min_points_per_param: f64,
    /// Added to covariance diagonals, standardised units (> 0).
    pub reg_covariance: f64,
    /// Independent EM restarts per `k` (≥ 1).
    pub n_runs: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            max_k: 3,
            seed: 0,
            min_points_per_param: 2.0,
            reg_covariance: 1e-3,
            n_runs: 4,
        }
    }
}

/// Free parameters of a full-covariance Gaussian mixture: `k·D + k·D(D+1)/2 + (k−1)`.
pub fn params(k: usize, d: usize) -> usize {
    k * d + k * d * (d + 1) / 2 + k.saturating_sub(1)
}

/// Free parameters of the k-means fallback (one pooled covariance): `k·D + D(D+1)/2 + (k−1)`.
fn params_pooled(k: usize, d: usize) -> usize {
    k * d + d * (d + 1) / 2 + k.saturating_sub(1)
}

/// Minimum number of calibration vectors for `d` features: `max(5, d + 1)`.
pub fn min_points(d: usize) -> usize {
    MIN_POINTS_ABS.max(d + 1)
}

/// Fits the personal baseline; see the module docs for the method.
pub fn fit(
    x: &[Vec<f64>],
    directions: &[f64],
    floors: &[f64],
    cfg: &FitConfig,
) -> Result<ClusterModel, ClusterError> {
    check_config(cfg)?;
    let d = check_matrix(x)?;
    if directions.len() != d || floors.len() != d {
        return Err(ClusterError::DimensionMismatch);
    }
    for (index, &value) in directions.iter().enumerate() {
        if !value.is_finite() {
            return Err(ClusterError::NonFinite);
        }
        if value != 1.0 && value != -1.0 {
            return Err(ClusterError::BadDirection { index, value });
        }
    }
    let n = x.len();
    let need = min_points(d);
    if n < need {
        return Err(ClusterError::TooFew { n, need });
    }
    let scaler = Scaler::fit(x, floors)?;
    let z: Vec<Vec<f64>> = x.iter().map(|r| scaler.transform(r)).collect();
    if z.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ClusterError::Degenerate(
            "values too large to standardise (overflow)".into(),
        ));
    }
    let ln_n = (n as f64).ln();
    let mut notes = Vec::new();

    // k = 1, closed form.
    let single = fit_single(&z, cfg.reg_covariance)?;
    let ll1 = mixture_ll(&z, &single).ok_or_else(|| {
        ClusterError::Degenerate("single-Gaussian log-likelihood is not finite".into())
    })?;
    let mut criterion = vec![(1, -2.0 * ll1 + params(1, d) as f64 * ln_n)];
    let mut best = (criterion[0].1, single, "single", ll1);

    let distinct = count_distinct(&z);
    for k in 2..=cfg.max_k {
        let p = params(k, d);
        let need_k = cfg.min_points_per_param * p as f64;
        if (n as f64) < need_k {
            notes.push(format!(
                "k={k}: skipped, needs N >= {need_k} ({} x {p} parameters), have {n}",
                cfg.min_points_per_param
            ));
            continue;
        }
        if distinct < k {
            notes.push(format!(
                "k={k}: skipped, only {distinct} distinct standardised vectors"
            ));
            continue;
        }
        let (comps, method, p_fit) = match fit_gmm(&z, k, cfg) {
            Ok(c) => (c, "gmm", p),
            Err(gmm_err) => match fit_kmeans(&z, k, cfg) {
                Ok(c) => {
                    notes.push(format!(
                        "k={k}: GMM failed ({gmm_err}); k-means fallback used"
                    ));
                    (c, "kmeans", params_pooled(k, d))
                }
                Err(km_err) => {
                    notes.push(format!(
                        "k={k}: not fitted: GMM failed ({gmm_err}); k-means failed ({km_err})"
                    ));
                    continue;
                }
            },
        };
        let Some(ll) = mixture_ll(&z, &comps) else {
            notes.push(format!("k={k}: not fitted: log-likelihood not finite"));
            continue;
        };
        let bic = -2.0 * ll + p_fit as f64 * ln_n;
        criterion.push((k, bic));
        if bic < best.0 {
            best = (bic, comps, method, ll);
        }
    }

    let (_, mut components, method, log_likelihood) = best;
    set_arousal_and_sort(&mut components, directions);
    Ok(ClusterModel {
        scaler,
        directions: directions.to_vec(),
        components,
        method: method.to_string(),
        criterion,
        n,
        log_likelihood,
        notes,
    })
}

static EMPTY_COMPONENT: Component = Component {
    weight: 0.0,
    mean: Vec::new(),
    cov: Vec::new(),
    arousal: 0.0,
};

impl ClusterModel {
    /// Number of features.
    pub fn dim(&self) -> usize {
        self.scaler.dim()
    }

    /// `log N(z; mean_k, cov_k)` per component, `z` the standardised `v`, via Cholesky factors.
    ///
    /// Finite for any finite `v` of the right length (see the module docs on saturation). For a
    /// wrong length or a non-finite entry every value is `f64::NEG_INFINITY` ("no density");
    /// use [`ClusterModel::try_log_densities`] to get an error instead.
    pub fn log_densities(&self, v: &[f64]) -> Vec<f64> {
        self.try_log_densities(v)
            .unwrap_or_else(|_| vec![f64::NEG_INFINITY; self.components.len()])
    }

    /// As [`ClusterModel::log_densities`], but refuses invalid input.
    pub fn try_log_densities(&self, v: &[f64]) -> Result<Vec<f64>, ClusterError> {
        let z = self.check_and_transform(v)?;
        Ok(self
            .components
            .iter()
            .map(|c| {
                let (d2, log_det) = quad_form(c, &z);
                log_gauss(d2, log_det, z.len())
            })
            .collect())
    }

    /// Posterior responsibilities (log weights plus log densities, normalised by log-sum-exp).
    ///
    /// Sum to 1, never NaN or infinite. For invalid input (wrong length, non-finite) the mixture
    /// weights (the prior) are returned.
    pub fn posteriors(&self, v: &[f64]) -> Vec<f64> {
        match self.try_log_densities(v) {
            Ok(ld) => {
                let l: Vec<f64> = ld
                    .iter()
                    .zip(&self.components)
                    .map(|(ld, c)| ld + safe_ln_weight(c.weight))
                    .collect();
                softmax(&l)
            }
            Err(_) => {
                let l: Vec<f64> = self
                    .components
                    .iter()
                    .map(|c| safe_ln_weight(c.weight))
                    .collect();
                softmax(&l)
            }
        }
    }

    /// Mahalanobis distance of `v` (raw units) from component `k`, in standardised space.
    ///
    /// `f64::INFINITY` for an out-of-range `k`, a wrong length or non-finite input; otherwise
    /// finite (saturates at `sqrt(f64::MAX)`).
    pub fn mahalanobis(&self, k: usize, v: &[f64]) -> f64 {
        let (Some(c), Ok(z)) = (self.components.get(k), self.check_and_transform(v)) else {
            return f64::INFINITY;
        };
        quad_form(c, &z).0.sqrt()
    }

    /// The calm (lowest-arousal) component. For a model without components (only possible
    /// for a hand-made or deserialised model) an empty zero-weight component.
    pub fn calm(&self) -> &Component {
        self.components.first().unwrap_or(&EMPTY_COMPONENT)
    }

    /// Refines this (older) baseline with a newer session's model.
    ///
    /// Rule (moment matching in raw units): with `w = clamp(weight_new, 0, 1)` (NaN → 0),
    /// * the scaler is the blend `center = (1−w)·c_old + w·c_new`, `scale = (1−w)·s_old + w·s_new`;
    /// * the calm component becomes the two-component moment match of the old and new calm
    ///   components, `μ = (1−w)μ_old + wμ_new`,
    ///   `Σ = (1−w)(Σ_old + δ_old δ_oldᵀ) + w(Σ_new + δ_new δ_newᵀ)`, `δ = μ_· − μ`;
    /// * all other components, the weights, `method`, `criterion` and `n` are the newer
    ///   model's (its non-calm components re-expressed in the blended scaler);
    /// * components are re-sorted by arousal.
    ///
    /// If the models have different dimensions or directions, or either has no component,
    /// the newer model is returned unchanged (with a note).
    pub fn merge(&self, newer: &ClusterModel, weight_new: f64) -> ClusterModel {
        let w = if weight_new.is_nan() {
            0.0
        } else {
            weight_new.clamp(0.0, 1.0)
        };
        let d = newer.dim();
        let compatible = self.dim() == d
            && self.directions == newer.directions
            && !self.components.is_empty()
            && !newer.components.is_empty()
            && self.components.iter().chain(&newer.components).all(|c| {
                c.mean.len() == d && c.cov.len() == d && c.cov.iter().all(|r| r.len() == d)
            });
        let mut out = newer.clone();
        if !compatible {
            out.notes
                .push("merge: models incompatible; newer model kept unchanged".into());
            return out;
        }
        let scaler = Scaler {
            center: blend(&self.scaler.center, &newer.scaler.center, w),
            scale: blend(&self.scaler.scale, &newer.scaler.scale, w),
        };
        let (mo, co) = to_raw(&self.scaler, self.calm());
        let (mn, cn) = to_raw(&newer.scaler, newer.calm());
        let mu = blend(&mo, &mn, w);
        let mut cov = vec![vec![0.0; d]; d];
        for (wt, m, c) in [(1.0 - w, &mo, &co), (w, &mn, &cn)] {
            for i in 0..d {
                for j in 0..d {
                    cov[i][j] += wt * (c[i][j] + (m[i] - mu[i]) * (m[j] - mu[j]));
                }
            }
        }
        let calm_weight = newer.calm().weight;
        let mut comps = Vec::with_capacity(newer.components.len());
        comps.push(from_raw(&scaler, &mu, &cov, calm_weight));
        for c in newer.components.iter().skip(1) {
            let (m, cv) = to_raw(&newer.scaler, c);
            comps.push(from_raw(&scaler, &m, &cv, c.weight));
        }
        set_arousal_and_sort(&mut comps, &newer.directions);
        out.scaler = scaler;
        out.components = comps;
        out.notes.push(format!(
            "merge: calm component blended with previous, w_new = {w}"
        ));
        out
    }

    fn check_and_transform(&self, v: &[f64]) -> Result<Vec<f64>, ClusterError> {
        if v.len() != self.dim() {
            return Err(ClusterError::DimensionMismatch);
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(ClusterError::NonFinite);
        }
        Ok(self
            .scaler
            .transform(v)
            .into_iter()
            .map(|z| {
                if z.is_nan() {
                    0.0
                } else {
                    z.clamp(-DIFF_CLAMP, DIFF_CLAMP)
                }
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Validation helpers.

fn check_config(cfg: &FitConfig) -> Result<(), ClusterError> {
    if cfg.max_k == 0 {
        return Err(ClusterError::InvalidConfig("max_k must be >= 1".into()));
    }
    if !(cfg.min_points_per_param.is_finite() && cfg.min_points_per_param > 0.0) {
        return Err(ClusterError::InvalidConfig(
            "min_points_per_param must be finite and > 0".into(),
        ));
    }
    if !(cfg.reg_covariance.is_finite() && cfg.reg_covariance > 0.0) {
        return Err(ClusterError::InvalidConfig(
            "reg_covariance must be finite and > 0".into(),
        ));
    }
    if cfg.n_runs == 0 {
        return Err(ClusterError::InvalidConfig("n_runs must be >= 1".into()));
    }
    Ok(())
}

/// Checks non-empty, equal lengths, 1..=MAX_FEATURES features, all finite. Returns `D`.
fn check_matrix(x: &[Vec<f64>]) -> Result<usize, ClusterError> {
    let Some(first) = x.first() else {
        return Err(ClusterError::TooFew {
            n: 0,
            need: MIN_POINTS_ABS,
        });
    };
    let d = first.len();
    if x.iter().any(|r| r.len() != d) {
        return Err(ClusterError::DimensionMismatch);
    }
    if d == 0 || d > MAX_FEATURES {
        return Err(ClusterError::BadFeatureCount {
            d,
            max: MAX_FEATURES,
        });
    }
    if x.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ClusterError::NonFinite);
    }
    Ok(d)
}

fn check_floors(floors: &[f64]) -> Result<(), ClusterError> {
    for (index, &value) in floors.iter().enumerate() {
        if !value.is_finite() {
            return Err(ClusterError::NonFinite);
        }
        if value < 0.0 {
            return Err(ClusterError::BadFloor { index, value });
        }
    }
    Ok(())
}

/// Median of finite values (average of the two middle ones for even length); sorts `v`.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v[n / 2],
        _ => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

fn count_distinct(z: &[Vec<f64>]) -> usize {
    let mut rows: Vec<&Vec<f64>> = z.iter().collect();
    rows.sort_by(|a, b| {
        a.iter()
            .zip(b.iter())
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    rows.dedup();
    rows.len()
}

mod density;
mod fitting;
#[cfg(test)]
mod tests;

use density::*;
use fitting::*;

fn blend(a: &[f64], b: &[f64], w: f64) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(x, y)| (1.0 - w) * x + w * y)
        .collect()
}

fn to_raw(s: &Scaler, c: &Component) -> (Vec<f64>, Vec<Vec<f64>>) {
    let m = s.inverse(&c.mean);
    let d = m.len();
    let cov = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| c.cov[i][j] * s.scale[i] * s.scale[j])
                .collect()
        })
        .collect();
    (m, cov)
}

fn from_raw(s: &Scaler, m: &[f64], cov: &[Vec<f64>], weight: f64) -> Component {
    let mean = s.transform(m);
    let d = mean.len();
    let cov = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| cov[i][j] / (s.scale[i] * s.scale[j]))
                .collect()
        })
        .collect();
    Component {
        weight,
        mean,
        cov,
        arousal: 0.0,
    }
}
