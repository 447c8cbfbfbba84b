//! Fitting the components: k = 1 in closed form, linfa's Gaussian mixture for k ≥ 2 (seeded,
//! restarted here), k-means with a pooled covariance as the fallback, and the checks a fit must
//! pass (every component carries enough points; finite, positive-definite covariances).

use super::density::{cholesky, mixture_ll};
use super::*;

#[allow(clippy::needless_range_loop)] // Index form mirrors the matrix formulas.
pub(super) fn fit_single(z: &[Vec<f64>], reg: f64) -> Result<Vec<Component>, ClusterError> {
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

pub(super) fn to_array(z: &[Vec<f64>]) -> Result<Array2<f64>, String> {
    let d = z.first().map_or(0, Vec::len);
    Array2::from_shape_vec((z.len(), d), z.iter().flatten().copied().collect())
        .map_err(|e| e.to_string())
}

pub(super) fn seed_for(seed: u64, k: usize, run: u64) -> u64 {
    // SplitMix64-style mixing of (seed, k, run) so restarts and k get unrelated streams.
    let mut h = seed
        ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ run.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// Best of `cfg.n_runs` one-run linfa GMM fits (by log-likelihood computed here).
pub(super) fn fit_gmm(z: &[Vec<f64>], k: usize, cfg: &FitConfig) -> Result<Vec<Component>, String> {
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
pub(super) fn fit_kmeans(
    z: &[Vec<f64>],
    k: usize,
    cfg: &FitConfig,
) -> Result<Vec<Component>, String> {
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
pub(super) fn check_sizes(comps: &[Component], n: usize) -> Result<(), String> {
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

pub(super) fn check_components(comps: &[Component]) -> Result<(), String> {
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

pub(super) fn set_arousal_and_sort(comps: &mut [Component], directions: &[f64]) {
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
