//! Linear algebra and log-space densities (D ≤ 8: plain loops): Cholesky factors, Mahalanobis
//! quadratic forms, Gaussian log-densities, log-sum-exp and softmax, the mixture log-likelihood.
//! Everything stays finite for any finite input.

use super::*;

/// Lower Cholesky factor, or `None` if not (numerically) positive definite.
#[allow(clippy::needless_range_loop)] // Index form mirrors the matrix formulas.
pub(super) fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
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
pub(super) fn cholesky_robust(a: &[Vec<f64>], d: usize) -> Vec<Vec<f64>> {
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
pub(super) fn quad_form(c: &Component, z: &[f64]) -> (f64, f64) {
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

pub(super) fn log_gauss(d2: f64, log_det: f64, d: usize) -> f64 {
    let v = -0.5 * d2 - 0.5 * (d as f64 * (2.0 * std::f64::consts::PI).ln() + log_det);
    if v.is_finite() { v } else { -f64::MAX }
}

pub(super) fn safe_ln_weight(w: f64) -> f64 {
    if w.is_finite() && w > 0.0 {
        w.ln()
    } else {
        f64::MIN_POSITIVE.ln()
    }
}

pub(super) fn log_sum_exp(l: &[f64]) -> f64 {
    let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + l.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Normalised `exp(l)`; uniform if nothing is finite.
pub(super) fn softmax(l: &[f64]) -> Vec<f64> {
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
pub(super) fn mixture_ll(z: &[Vec<f64>], comps: &[Component]) -> Option<f64> {
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
