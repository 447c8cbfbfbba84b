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

// ---------------------------------------------------------------------------------------------
// Fitting.

#[allow(clippy::needless_range_loop)] // Index form mirrors the matrix formulas.
fn fit_single(z: &[Vec<f64>], reg: f64) -> Result<Vec<Component>, ClusterError> {
    let n = z.len() as f64;
    let d = z.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; d];
    for r in z {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += v;
        }
    }
    for m in mean.iter_mut() {
        *m /= n;
    }
    let mut cov = vec![vec![0.0; d]; d];
    for r in z {
        for i in 0..d {
            for j in 0..=i {
                cov[i][j] += (r[i] - mean[i]) * (r[j] - mean[j]);
            }
        }
    }
    for i in 0..d {
        for j in 0..=i {
            cov[i][j] /= n;
            cov[j][i] = cov[i][j];
        }
        cov[i][i] += reg;
    }
    if cholesky(&cov).is_none() {
        return Err(ClusterError::Degenerate(
            "sample covariance is not positive definite even after regularisation".into(),
        ));
    }
    Ok(vec![Component {
        weight: 1.0,
        mean,
        cov,
        arousal: 0.0,
    }])
}

fn to_array(z: &[Vec<f64>]) -> Result<Array2<f64>, String> {
    let d = z.first().map_or(0, Vec::len);
    Array2::from_shape_vec((z.len(), d), z.iter().flatten().copied().collect())
        .map_err(|e| e.to_string())
}

fn seed_for(seed: u64, k: usize, run: u64) -> u64 {
    // SplitMix64-style mixing of (seed, k, run) so restarts and k get unrelated streams.
    let mut h = seed
        ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ run.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// Best of `cfg.n_runs` one-run linfa GMM fits (by log-likelihood computed here).
fn fit_gmm(z: &[Vec<f64>], k: usize, cfg: &FitConfig) -> Result<Vec<Component>, String> {
    let arr = to_array(z)?;
    let dataset = DatasetBase::from(arr);
    let mut best: Option<(f64, Vec<Component>)> = None;
    let mut last_err = String::from("no run");
    for run in 0..cfg.n_runs {
        let rng = Xoshiro256Plus::seed_from_u64(seed_for(cfg.seed, k, run));
        let fitted = GaussianMixtureModel::params_with_rng(k, rng)
            .n_runs(1)
            .reg_covariance(cfg.reg_covariance)
            .max_n_iterations(GMM_MAX_ITER)
            .init_method(GmmInitMethod::KMeans)
            .fit(&dataset);
        let gmm = match fitted {
            Ok(g) => g,
            Err(e) => {
                last_err = e.to_string();
                continue;
            }
        };
        let (w, m, c) = (gmm.weights(), gmm.means(), gmm.covariances());
        let d = m.ncols();
        if w.len() != k || m.nrows() != k || c.shape() != [k, d, d] {
            last_err = "unexpected GMM output shape".into();
            continue;
        }
        let comps: Vec<Component> = (0..k)
            .map(|j| Component {
                weight: w[j],
                mean: m.row(j).to_vec(),
                cov: (0..d)
                    .map(|a| {
                        (0..d)
                            .map(|b| 0.5 * (c[[j, a, b]] + c[[j, b, a]]))
                            .collect()
                    })
                    .collect(),
                arousal: 0.0,
            })
            .collect();
        if let Err(e) = check_components(&comps) {
            last_err = e;
            continue;
        }
        if let Err(e) = check_sizes(&comps, z.len()) {
            last_err = e;
            continue;
        }
        let Some(ll) = mixture_ll(z, &comps) else {
            last_err = "non-finite log-likelihood".into();
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| ll > *b) {
            best = Some((ll, comps));
        }
    }
    best.map(|(_, c)| c).ok_or(last_err)
}

/// k-means centroids, cluster proportions and pooled within-cluster covariance + reg·I.
fn fit_kmeans(z: &[Vec<f64>], k: usize, cfg: &FitConfig) -> Result<Vec<Component>, String> {
    let arr = to_array(z)?;
    let dataset = DatasetBase::from(arr);
    let rng = Xoshiro256Plus::seed_from_u64(seed_for(cfg.seed, k, u64::MAX));
    let km = KMeans::params_with_rng(k, rng)
        .n_runs(usize::try_from(cfg.n_runs).unwrap_or(usize::MAX).max(1))
        .fit(&dataset)
        .map_err(|e| e.to_string())?;
    let cent = km.centroids();
    if cent.nrows() != k || cent.iter().any(|v| !v.is_finite()) {
        return Err("k-means returned invalid centroids".into());
    }
    let d = cent.ncols();
    // Assign each point to its nearest centroid (ties: lowest index), then recompute means.
    let labels: Vec<usize> = z
        .iter()
        .map(|r| {
            (0..k)
                .map(|j| {
                    let dist: f64 = r
                        .iter()
                        .zip(cent.row(j))
                        .map(|(a, b)| (a - b).powi(2))
                        .sum();
                    (j, dist)
                })
                .fold(
                    (0, f64::INFINITY),
                    |acc, x| if x.1 < acc.1 { x } else { acc },
                )
                .0
        })
        .collect();
    let mut counts = vec![0usize; k];
    let mut means = vec![vec![0.0; d]; k];
    for (r, &l) in z.iter().zip(&labels) {
        counts[l] += 1;
        for (m, v) in means[l].iter_mut().zip(r) {
            *m += v;
        }
    }
    let need = min_points(d);
    if let Some(c) = counts.iter().find(|&&c| c < need) {
        return Err(format!(
            "a k-means cluster has {c} points, fewer than the minimum {need}"
        ));
    }
    for (m, &c) in means.iter_mut().zip(&counts) {
        for v in m.iter_mut() {
            *v /= c as f64;
        }
    }
    let n = z.len() as f64;
    let mut cov = vec![vec![0.0; d]; d];
    for (r, &l) in z.iter().zip(&labels) {
        for i in 0..d {
            for j in 0..d {
                cov[i][j] += (r[i] - means[l][i]) * (r[j] - means[l][j]) / n;
            }
        }
    }
    for (i, row) in cov.iter_mut().enumerate() {
        row[i] += cfg.reg_covariance;
    }
    let comps: Vec<Component> = means
        .into_iter()
        .zip(&counts)
        .map(|(mean, &c)| Component {
            weight: c as f64 / n,
            mean,
            cov: cov.clone(),
            arousal: 0.0,
        })
        .collect();
    check_components(&comps)?;
    Ok(comps)
}

/// Every component must carry at least [`min_points`]`(D)` effective points (`N·weight`):
/// EM's classic degenerate optimum puts one component on a single outlier (its covariance is
/// then just `reg_covariance·I` and its likelihood spike wins the BIC).
fn check_sizes(comps: &[Component], n: usize) -> Result<(), String> {
    let need = comps
        .first()
        .map_or(MIN_POINTS_ABS, |c| min_points(c.mean.len()));
    for c in comps {
        let eff = c.weight * n as f64;
        if eff < need as f64 {
            return Err(format!(
                "a component has {eff:.1} effective points, fewer than the minimum {need}"
            ));
        }
    }
    Ok(())
}

fn check_components(comps: &[Component]) -> Result<(), String> {
    for c in comps {
        if !(c.weight.is_finite() && c.weight > 0.0) {
            return Err("component with non-positive or non-finite weight".into());
        }
        if c.mean
            .iter()
            .chain(c.cov.iter().flatten())
            .any(|v| !v.is_finite())
        {
            return Err("component with non-finite mean or covariance".into());
        }
        if cholesky(&c.cov).is_none() {
            return Err("component covariance not positive definite".into());
        }
    }
    Ok(())
}

fn set_arousal_and_sort(comps: &mut [Component], directions: &[f64]) {
    for c in comps.iter_mut() {
        let d = c.mean.len().max(1) as f64;
        c.arousal = c
            .mean
            .iter()
            .zip(directions)
            .map(|(m, s)| m * s)
            .sum::<f64>()
            / d;
    }
    comps.sort_by(|a, b| a.arousal.total_cmp(&b.arousal));
}

// ---------------------------------------------------------------------------------------------
// Linear algebra and densities (D ≤ 8: plain loops).

/// Lower Cholesky factor, or `None` if not (numerically) positive definite.
#[allow(clippy::needless_range_loop)] // Index form mirrors the matrix formulas.
fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let d = a.len();
    let mut l = vec![vec![0.0; d]; d];
    for i in 0..d {
        if a[i].len() != d {
            return None;
        }
        for j in 0..=i {
            let mut s = a[i][j];
            for k in 0..j {
                s -= l[i][k] * l[j][k];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// Cholesky that always succeeds: symmetrises, replaces non-finite entries, adds growing
/// diagonal jitter, and finally falls back to a diagonal factor. For evaluation of models that
/// were not produced by [`fit`] (hand-made or deserialised).
fn cholesky_robust(a: &[Vec<f64>], d: usize) -> Vec<Vec<f64>> {
    let mut s = vec![vec![0.0; d]; d];
    for (i, row) in s.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let aij = a.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0.0);
            let aji = a.get(j).and_then(|r| r.get(i)).copied().unwrap_or(0.0);
            let x = 0.5 * (aij + aji);
            *v = if x.is_finite() { x } else { 0.0 };
        }
    }
    if let Some(l) = cholesky(&s) {
        return l;
    }
    let mean_diag = (0..d).map(|i| s[i][i].abs()).sum::<f64>() / d.max(1) as f64;
    let mut jitter = (mean_diag * 1e-10).max(1e-12);
    for _ in 0..30 {
        let mut t = s.clone();
        for (i, row) in t.iter_mut().enumerate() {
            row[i] += jitter;
        }
        if let Some(l) = cholesky(&t) {
            return l;
        }
        jitter *= 10.0;
    }
    let mut l = vec![vec![0.0; d]; d];
    for (i, row) in l.iter_mut().enumerate() {
        row[i] = s[i][i].abs().max(1e-12).sqrt();
    }
    l
}

/// `(squared Mahalanobis distance, ln det Σ)` of standardised `z` for `c`; the distance
/// saturates at `f64::MAX`.
fn quad_form(c: &Component, z: &[f64]) -> (f64, f64) {
    let d = z.len();
    let l = cholesky_robust(&c.cov, d);
    let mut y = vec![0.0; d];
    let mut d2 = 0.0;
    for i in 0..d {
        let mi = c.mean.get(i).copied().unwrap_or(0.0);
        let mi = if mi.is_finite() { mi } else { 0.0 };
        let mut s = (z[i] - mi).clamp(-DIFF_CLAMP, DIFF_CLAMP);
        for k in 0..i {
            s -= l[i][k] * y[k];
        }
        y[i] = s / l[i][i];
        d2 += y[i] * y[i];
    }
    let log_det = 2.0 * (0..d).map(|i| l[i][i].ln()).sum::<f64>();
    let d2 = if d2.is_finite() { d2 } else { f64::MAX };
    (d2, log_det)
}

fn log_gauss(d2: f64, log_det: f64, d: usize) -> f64 {
    let v = -0.5 * d2 - 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det);
    if v.is_finite() { v } else { -f64::MAX }
}

fn safe_ln_weight(w: f64) -> f64 {
    if w.is_finite() && w > 0.0 {
        w.ln()
    } else {
        f64::MIN_POSITIVE.ln()
    }
}

fn log_sum_exp(l: &[f64]) -> f64 {
    let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Normalised `exp(l)`; uniform if nothing is finite.
fn softmax(l: &[f64]) -> Vec<f64> {
    let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        let n = l.len().max(1) as f64;
        return vec![1.0 / n; l.len()];
    }
    let e: Vec<f64> = l.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Mixture log-likelihood of standardised rows (strict: `None` if any covariance is not
/// positive definite or the result is not finite).
fn mixture_ll(z: &[Vec<f64>], comps: &[Component]) -> Option<f64> {
    let d = z.first().map_or(0, Vec::len);
    let chols: Vec<Vec<Vec<f64>>> = comps
        .iter()
        .map(|c| cholesky(&c.cov))
        .collect::<Option<_>>()?;
    let mut total = 0.0;
    let mut l = vec![0.0; comps.len()];
    for r in z {
        for ((lk, c), ch) in l.iter_mut().zip(comps).zip(&chols) {
            let mut y = vec![0.0; d];
            let mut d2 = 0.0;
            for i in 0..d {
                let mut s = r[i] - c.mean[i];
                for k in 0..i {
                    s -= ch[i][k] * y[k];
                }
                y[i] = s / ch[i][i];
                d2 += y[i] * y[i];
            }
            let log_det = 2.0 * (0..d).map(|i| ch[i][i].ln()).sum::<f64>();
            *lk = c.weight.ln() + log_gauss(d2, log_det, d);
        }
        total += log_sum_exp(&l);
    }
    total.is_finite().then_some(total)
}

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng as _};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    fn blob(rng: &mut ChaCha8Rng, n: usize, mean: &[f64], sd: f64) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                mean.iter()
                    .map(|m| m + sd * rng.sample::<f64, _>(StandardNormal))
                    .collect()
            })
            .collect()
    }

    fn cfg() -> FitConfig {
        FitConfig::default()
    }

    fn assert_prob(p: &[f64]) {
        assert!(p.iter().all(|v| v.is_finite() && *v >= 0.0), "{p:?}");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn scaler_median_mad_exact_and_floors() {
        // Feature 0: 1,2,3,4,100 -> median 3, |dev| 2,1,0,1,97 -> MAD 1 -> scale 1.4826.
        // Feature 1: 10,10,10,10,12 -> median 10, MAD 0 -> floor 0.5.
        // Feature 2: 1,2,3,4,5 (even count check below) -> median 3, MAD 1; floor 2 wins.
        let x = vec![
            vec![1.0, 10.0, 1.0],
            vec![2.0, 10.0, 2.0],
            vec![3.0, 10.0, 3.0],
            vec![4.0, 10.0, 4.0],
            vec![100.0, 12.0, 5.0],
        ];
        let s = Scaler::fit(&x, &[0.1, 0.5, 2.0]).unwrap();
        assert_eq!(s.center, vec![3.0, 10.0, 3.0]);
        assert_eq!(s.scale, vec![1.4826, 0.5, 2.0]);
        let z = s.transform(&[4.4826, 11.0, 7.0]);
        assert!((z[0] - 1.0).abs() < 1e-12 && z[1] == 2.0 && z[2] == 2.0);
        let back = s.inverse(&z);
        assert!((back[0] - 4.4826).abs() < 1e-12 && back[1] == 11.0 && back[2] == 7.0);

        // Even count: 1,2,4,7 -> median 3; |dev| 2,1,1,4 -> MAD 1.5.
        let x = vec![vec![1.0], vec![2.0], vec![4.0], vec![7.0]];
        let s = Scaler::fit(&x, &[0.0]).unwrap();
        assert_eq!(s.center, vec![3.0]);
        assert!((s.scale[0] - 1.5 * 1.4826).abs() < 1e-12);

        // Zero spread and zero floor is refused.
        let x = vec![vec![1.0]; 4];
        assert!(matches!(
            Scaler::fit(&x, &[0.0]),
            Err(ClusterError::Degenerate(_))
        ));
        assert_eq!(
            Scaler::fit(&x, &[-1.0]),
            Err(ClusterError::BadFloor {
                index: 0,
                value: -1.0
            })
        );
        assert_eq!(
            Scaler::fit(&x, &[1.0, 1.0]),
            Err(ClusterError::DimensionMismatch)
        );
    }

    #[test]
    fn one_blob_chooses_single() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let raw_mean = [70.0, 40.0, 5.0, 2.0];
        let x = blob(&mut rng, 60, &raw_mean, 1.0);
        let dirs = [1.0, -1.0, 1.0, 1.0];
        let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        assert_eq!(m.components.len(), 1, "criterion {:?}", m.criterion);
        assert_eq!(m.method, "single");
        // k = 2 tried (60 >= 2 x 29), k = 3 skipped (needs 88).
        let ks: Vec<usize> = m.criterion.iter().map(|c| c.0).collect();
        assert_eq!(ks, vec![1, 2], "{:?} {:?}", m.criterion, m.notes);
        assert!(m.criterion[0].1 < m.criterion[1].1);
        assert!(m.notes.iter().any(|n| n.starts_with("k=3: skipped")));
        // Calm mean (back in raw units) equals the sample mean.
        let raw = m.scaler.inverse(&m.calm().mean);
        for j in 0..4 {
            let sm = x.iter().map(|r| r[j]).sum::<f64>() / 60.0;
            assert!((raw[j] - sm).abs() < 1e-9, "{j}: {} vs {sm}", raw[j]);
        }
        assert_eq!(m.calm().weight, 1.0);
        assert_eq!(m.posteriors(&raw_mean), vec![1.0]);
        // The sample covariance in standardised units + reg on the diagonal.
        let z: Vec<Vec<f64>> = x.iter().map(|r| m.scaler.transform(r)).collect();
        let zm = &m.calm().mean;
        let c01 = z
            .iter()
            .map(|r| (r[0] - zm[0]) * (r[1] - zm[1]))
            .sum::<f64>()
            / 60.0;
        assert!((m.calm().cov[0][1] - c01).abs() < 1e-12);
        let c00 = z.iter().map(|r| (r[0] - zm[0]).powi(2)).sum::<f64>() / 60.0 + 1e-3;
        assert!((m.calm().cov[0][0] - c00).abs() < 1e-12);
        assert!(m.log_likelihood.is_finite());
    }

    fn two_blobs(seed: u64) -> (Vec<Vec<f64>>, [f64; 4]) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dirs = [1.0, -1.0, 1.0, -1.0];
        let calm = [0.0; 4];
        let aroused: Vec<f64> = dirs.iter().map(|d| 4.0 * d).collect();
        let mut x = blob(&mut rng, 40, &aroused, 1.0);
        x.extend(blob(&mut rng, 40, &calm, 1.0));
        (x, dirs)
    }

    #[test]
    fn two_blobs_choose_two_calm_first() {
        let (x, dirs) = two_blobs(11);
        let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        assert_eq!(m.components.len(), 2, "{:?} {:?}", m.criterion, m.notes);
        assert_eq!(m.method, "gmm", "{:?}", m.notes);
        assert!(m.criterion[1].1 < m.criterion[0].1);
        let (c0, c1) = (&m.components[0], &m.components[1]);
        assert!(c0.arousal < c1.arousal);
        assert!((c0.weight - 0.5).abs() < 0.05 && (c1.weight - 0.5).abs() < 0.05);
        // The calm component's raw mean is near 0 (not +-4 on any feature).
        let raw0 = m.scaler.inverse(&c0.mean);
        let raw1 = m.scaler.inverse(&c1.mean);
        for j in 0..4 {
            assert!(raw0[j].abs() < 0.6, "calm raw mean {raw0:?}");
            assert!((raw1[j] - 4.0 * dirs[j]).abs() < 0.6, "aroused {raw1:?}");
        }
        // Points from each blob are assigned to the right cluster.
        let p_calm = m.posteriors(&[0.0; 4]);
        let p_ar = m.posteriors(&[4.0, -4.0, 4.0, -4.0]);
        assert_prob(&p_calm);
        assert!(p_calm[0] > 0.999 && p_ar[1] > 0.999);
        assert!(m.mahalanobis(0, &[0.0; 4]) < m.mahalanobis(1, &[0.0; 4]));
        // weights sum to 1
        assert!((c0.weight + c1.weight - 1.0).abs() < 1e-9);
    }

    #[test]
    fn far_point_is_finite() {
        let (x, dirs) = two_blobs(3);
        let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        assert_eq!(m.components.len(), 2);
        let s = &m.scaler;
        // 1e6 robust sigma away, and absurdly far, in several directions.
        let cases = [
            s.inverse(&[1e6, 1e6, 1e6, 1e6]),
            s.inverse(&[-1e6, 0.0, 3.0, 1e6]),
            vec![1e300, -1e300, 1e300, f64::MAX],
            vec![f64::MIN, 0.0, 0.0, 0.0],
        ];
        for v in &cases {
            let ld = m.log_densities(v);
            assert!(ld.iter().all(|l| l.is_finite()), "{v:?} -> {ld:?}");
            assert_prob(&m.posteriors(v));
            for k in 0..2 {
                let d = m.mahalanobis(k, v);
                assert!(d.is_finite() && d > 1e5, "{d}");
            }
        }
        // Far away the posterior is one-hot on the component with the smaller Mahalanobis
        // distance (the limit of the exact responsibilities), whatever the covariance shapes.
        for v in &cases {
            let p = m.posteriors(v);
            let near = usize::from(m.mahalanobis(1, v) < m.mahalanobis(0, v));
            assert!(p[near] > 0.999, "{v:?} -> {p:?}");
        }
        // Invalid input: no panic, no NaN.
        assert_prob(&m.posteriors(&[f64::NAN, 0.0, 0.0, 0.0]));
        assert_prob(&m.posteriors(&[0.0]));
        assert!(
            m.log_densities(&[0.0])
                .iter()
                .all(|l| *l == f64::NEG_INFINITY)
        );
        assert_eq!(
            m.try_log_densities(&[f64::INFINITY, 0.0, 0.0, 0.0]),
            Err(ClusterError::NonFinite)
        );
        assert_eq!(m.mahalanobis(5, &[0.0; 4]), f64::INFINITY);
    }

    #[test]
    fn log_density_matches_closed_form() {
        // 1-D single Gaussian: check against the textbook formula.
        let x: Vec<Vec<f64>> = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .map(|v| vec![*v])
            .collect();
        let m = fit(&x, &[1.0], &[0.0], &cfg()).unwrap();
        let c = m.calm();
        let var = c.cov[0][0];
        let z = m.scaler.transform(&[5.0])[0];
        let want = -0.5 * ((z - c.mean[0]).powi(2) / var + (2.0 * std::f64::consts::PI * var).ln());
        assert!((m.log_densities(&[5.0])[0] - want).abs() < 1e-12);
        assert!((m.mahalanobis(0, &[5.0]) - (z - c.mean[0]).abs() / var.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs() {
        // All vectors identical: floors give a valid single model.
        // N = 40: k = 2 passes the points-per-parameter rule (38) but not the distinct rule.
        let x = vec![vec![60.0, 50.0, 3.0]; 40];
        let m = fit(&x, &[1.0, -1.0, 1.0], &[1.5, 2.0, 0.05], &cfg()).unwrap();
        assert_eq!(m.components.len(), 1);
        assert_eq!(m.method, "single");
        assert!(
            m.notes.iter().any(|n| n.contains("distinct")),
            "{:?}",
            m.notes
        );
        assert_eq!(m.calm().mean, vec![0.0; 3]);
        assert!(m.log_densities(&[61.0, 50.0, 3.0])[0].is_finite());
        assert_prob(&m.posteriors(&[61.0, 50.0, 3.0]));
        // ... but without floors it is a clean error.
        assert!(matches!(
            fit(&x, &[1.0, -1.0, 1.0], &[0.0; 3], &cfg()),
            Err(ClusterError::Degenerate(_))
        ));

        // One constant feature among varying ones (two blobs in the others).
        let (mut x, dirs) = two_blobs(5);
        for r in x.iter_mut() {
            r[2] = 7.0;
        }
        let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        assert!(!m.components.is_empty());
        for c in &m.components {
            assert!(c.weight.is_finite() && c.mean.iter().all(|v| v.is_finite()));
            assert!(c.cov.iter().flatten().all(|v| v.is_finite()));
        }
        assert!(m.criterion.iter().all(|(_, b)| b.is_finite()));
        assert_prob(&m.posteriors(&[0.0, 0.0, 7.0, 0.0]));
        assert_prob(&m.posteriors(&[0.0, 0.0, 8.0, 0.0]));

        // Two distinct points only, repeated: k = 2 may be attempted; no panic, no NaN.
        let mut x = vec![vec![0.0, 0.0]; 20];
        x.extend(vec![vec![1.0, 1.0]; 20]);
        let m = fit(&x, &[1.0, 1.0], &[0.1, 0.1], &cfg()).unwrap();
        assert!(m.components.iter().all(|c| c.weight.is_finite()));
        assert_prob(&m.posteriors(&[0.5, 0.5]));
    }

    #[test]
    fn too_few_and_k_limits() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let dirs = [1.0, -1.0, 1.0, 1.0];
        let x = blob(&mut rng, 4, &[0.0; 4], 1.0);
        assert_eq!(
            fit(&x, &dirs, &[0.1; 4], &cfg()),
            Err(ClusterError::TooFew { n: 4, need: 5 })
        );
        assert_eq!(
            fit(&[], &dirs, &[0.1; 4], &cfg()),
            Err(ClusterError::TooFew { n: 0, need: 5 })
        );
        // D = 8 needs D + 1 = 9.
        let x8 = blob(&mut rng, 8, &[0.0; 8], 1.0);
        assert_eq!(
            fit(&x8, &[1.0; 8], &[0.1; 8], &cfg()),
            Err(ClusterError::TooFew { n: 8, need: 9 })
        );
        // N = 20, D = 4: only k = 1 is eligible (k = 2 needs 58).
        let x = blob(&mut rng, 20, &[0.0; 4], 1.0);
        let m = fit(&x, &dirs, &[0.1; 4], &cfg()).unwrap();
        assert_eq!(m.criterion.len(), 1);
        assert_eq!(m.notes.len(), 2, "{:?}", m.notes);
        // max_k = 1 never tries more.
        let (x, dirs) = two_blobs(2);
        let c1 = FitConfig { max_k: 1, ..cfg() };
        let m = fit(&x, &dirs, &[0.01; 4], &c1).unwrap();
        assert_eq!((m.components.len(), m.criterion.len()), (1, 1));
        assert!(params(2, 4) == 29 && params(3, 4) == 44 && params(1, 1) == 2);
    }

    #[test]
    fn invalid_inputs() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut x = blob(&mut rng, 10, &[0.0; 3], 1.0);
        let d3 = [1.0, -1.0, 1.0];
        let f3 = [0.1; 3];
        x[3][1] = f64::NAN;
        assert_eq!(fit(&x, &d3, &f3, &cfg()), Err(ClusterError::NonFinite));
        x[3][1] = f64::INFINITY;
        assert_eq!(fit(&x, &d3, &f3, &cfg()), Err(ClusterError::NonFinite));
        x[3][1] = 0.0;
        assert_eq!(
            fit(&x, &[1.0, -1.0], &f3, &cfg()),
            Err(ClusterError::DimensionMismatch)
        );
        assert_eq!(
            fit(&x, &d3, &[0.1; 4], &cfg()),
            Err(ClusterError::DimensionMismatch)
        );
        assert_eq!(
            fit(&x, &[1.0, 0.5, 1.0], &f3, &cfg()),
            Err(ClusterError::BadDirection {
                index: 1,
                value: 0.5
            })
        );
        assert_eq!(
            fit(&x, &d3, &[0.1, f64::NAN, 0.1], &cfg()),
            Err(ClusterError::NonFinite)
        );
        x[5].push(1.0);
        assert_eq!(
            fit(&x, &d3, &f3, &cfg()),
            Err(ClusterError::DimensionMismatch)
        );
        let x9 = vec![vec![0.0; 9]; 20];
        assert_eq!(
            fit(&x9, &[1.0; 9], &[0.1; 9], &cfg()),
            Err(ClusterError::BadFeatureCount { d: 9, max: 8 })
        );
        let x = blob(&mut rng, 10, &[0.0; 3], 1.0);
        for bad in [
            FitConfig { max_k: 0, ..cfg() },
            FitConfig { n_runs: 0, ..cfg() },
            FitConfig {
                reg_covariance: 0.0,
                ..cfg()
            },
            FitConfig {
                min_points_per_param: f64::NAN,
                ..cfg()
            },
        ] {
            assert!(matches!(
                fit(&x, &d3, &f3, &bad),
                Err(ClusterError::InvalidConfig(_))
            ));
        }
        // Messages are one line.
        let e = ClusterError::TooFew { n: 3, need: 5 }.to_string();
        assert!(!e.contains('\n') && e.contains('3') && e.contains('5'));
    }

    #[test]
    fn deterministic_json() {
        let (x, dirs) = two_blobs(21);
        let a = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        let b = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
        let ja = serde_json::to_string(&a).unwrap();
        let jb = serde_json::to_string(&b).unwrap();
        assert_eq!(ja, jb);
        // And it round-trips.
        let back: ClusterModel = serde_json::from_str(&ja).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn kmeans_fallback_is_valid() {
        let (x, _) = two_blobs(4);
        let s = Scaler::fit(&x, &[0.01; 4]).unwrap();
        let z: Vec<Vec<f64>> = x.iter().map(|r| s.transform(r)).collect();
        let comps = fit_kmeans(&z, 2, &cfg()).unwrap();
        assert_eq!(comps.len(), 2);
        assert!((comps[0].weight + comps[1].weight - 1.0).abs() < 1e-12);
        assert!((comps[0].weight - 0.5).abs() < 0.05);
        assert_eq!(comps[0].cov, comps[1].cov);
        let ll = mixture_ll(&z, &comps).unwrap();
        let single = fit_single(&z, 1e-3).unwrap();
        assert!(ll > mixture_ll(&z, &single).unwrap());
    }

    #[test]
    fn merge_blends_calm() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let dirs = [1.0, -1.0];
        let a = fit(
            &blob(&mut rng, 40, &[60.0, 50.0], 2.0),
            &dirs,
            &[0.1; 2],
            &cfg(),
        )
        .unwrap();
        let b = fit(
            &blob(&mut rng, 40, &[64.0, 46.0], 2.0),
            &dirs,
            &[0.1; 2],
            &cfg(),
        )
        .unwrap();
        assert_eq!((a.components.len(), b.components.len()), (1, 1));
        let raw = |m: &ClusterModel| m.scaler.inverse(&m.calm().mean);
        let m = a.merge(&b, 0.5);
        let (ra, rb, rm) = (raw(&a), raw(&b), raw(&m));
        for j in 0..2 {
            assert!((rm[j] - 0.5 * (ra[j] + rb[j])).abs() < 1e-9);
        }
        // w = 0 keeps the old calm component (in raw units), w = 1 the new one.
        let m0 = a.merge(&b, 0.0);
        let m1 = a.merge(&b, 1.0);
        for j in 0..2 {
            assert!((raw(&m0)[j] - ra[j]).abs() < 1e-9);
            assert!((raw(&m1)[j] - rb[j]).abs() < 1e-9);
        }
        // The blended variance includes the spread between the means.
        let var_raw = |m: &ClusterModel| m.calm().cov[0][0] * m.scaler.scale[0].powi(2);
        let want = 0.5 * (var_raw(&a) + (ra[0] - rm[0]).powi(2))
            + 0.5 * (var_raw(&b) + (rb[0] - rm[0]).powi(2));
        assert!((var_raw(&m) - want).abs() < 1e-9);
        assert_prob(&m.posteriors(&[62.0, 48.0]));
        // Incompatible models: newer unchanged but for a note.
        let c = fit(&blob(&mut rng, 40, &[1.0], 1.0), &[1.0], &[0.1], &cfg()).unwrap();
        let mc = a.merge(&c, 0.5);
        assert_eq!(mc.components, c.components);
        assert_eq!(mc.notes.len(), c.notes.len() + 1);
        assert_prob(&a.merge(&b, f64::NAN).posteriors(&[62.0, 48.0]));
    }

    #[test]
    fn bic_choice_stable_across_seeds() {
        // 10 independent data sets and seeds each: one blob -> k = 1, two blobs -> k = 2 (GMM).
        for seed in 100..110u64 {
            let c = FitConfig { seed, ..cfg() };
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let x = blob(&mut rng, 60, &[0.0; 4], 1.0);
            let m = fit(&x, &[1.0, -1.0, 1.0, 1.0], &[0.01; 4], &c).unwrap();
            assert_eq!(m.components.len(), 1, "seed {seed}: {:?}", m.criterion);
            let (x, dirs) = two_blobs(seed);
            let m = fit(&x, &dirs, &[0.01; 4], &c).unwrap();
            assert_eq!(m.components.len(), 2, "seed {seed}: {:?}", m.criterion);
            assert_eq!(m.method, "gmm");
            assert!(m.calm().arousal < m.components[1].arousal);
        }
    }

    #[test]
    fn single_outlier_does_not_get_its_own_component() {
        // EM (linfa) puts a component on one gross outlier; the size rule rejects that fit.
        for far in [1e2, 1e4] {
            let (mut x, dirs) = two_blobs(11);
            x.push(vec![far; 4]);
            let m = fit(&x, &dirs, &[0.01; 4], &cfg()).unwrap();
            for c in &m.components {
                assert!(
                    c.weight * 81.0 >= 5.0,
                    "{far}: {:?} {:?}",
                    m.components,
                    m.notes
                );
            }
            assert_prob(&m.posteriors(&[far; 4]));
            // Known limitation: the two real blobs are then not separated either (k-means++
            // also isolates the outlier), so k = 1 is chosen. Remove artefacts upstream.
            assert!(
                m.notes.iter().any(|n| n.contains("effective points")),
                "{:?}",
                m.notes
            );
        }
    }
}
