//! Interpolating splines used to resample RR intervals for HRV spectra (SIGNALS.md §3.2–3.3).
//!
//! - [`QuadraticSpline`]: scipy `interp1d(kind="quadratic")`, i.e. `make_interp_spline(x, y,
//!   k=2)`: a degree-2 B-spline with knots `[x0, x0, x0, (x_i + x_{i+1})/2 for i = 1…n−3,
//!   x_{n−1} ×3]` that passes through every point, found by solving the banded collocation
//!   system. B-spline collocation matrices are totally positive, so elimination without
//!   pivoting is stable (de Boor 1976). Points outside `[x0, x_{n−1}]` take the end values, as
//!   NeuroKit2's `signal_interpolate` asks of `interp1d`.
//! - [`CubicSpline`]: scipy `CubicSpline(x, y)` with its default not-a-knot ends (n ≥ 4).
//!
//! Pure; `x` strictly increasing.

/// Degree-2 interpolating B-spline.
#[derive(Debug, Clone)]
pub struct QuadraticSpline {
    t: Vec<f64>,
    c: Vec<f64>,
    y_first: f64,
    y_last: f64,
}

const K: usize = 2;

/// de Boor's BSPLVB: the k+1 non-zero degree-k basis values at `x` in knot interval `l`.
fn basis(t: &[f64], l: usize, x: f64) -> [f64; K + 1] {
    let mut b = [0.0; K + 1];
    let mut left = [0.0; K + 1];
    let mut right = [0.0; K + 1];
    b[0] = 1.0;
    for j in 1..=K {
        left[j] = x - t[l + 1 - j];
        right[j] = t[l + j] - x;
        let mut saved = 0.0;
        for r in 0..j {
            let temp = b[r] / (right[r + 1] + left[j - r]);
            b[r] = saved + right[r + 1] * temp;
            saved = left[j - r] * temp;
        }
        b[j] = saved;
    }
    b
}

/// At least `min` points, as many `y` as `x`, all finite, `x` strictly increasing.
fn usable(x: &[f64], y: &[f64], min: usize) -> bool {
    x.len() >= min
        && y.len() == x.len()
        && x.iter().chain(y).all(|v| v.is_finite())
        && x.windows(2).all(|w| w[1] > w[0])
}

impl QuadraticSpline {
    /// Fits the spline; None with fewer than 3 points, non-finite or non-increasing `x`.
    pub fn new(x: &[f64], y: &[f64]) -> Option<Self> {
        let n = x.len();
        if !usable(x, y, 3) {
            return None;
        }
        let mut t = Vec::with_capacity(n + 3);
        t.extend([x[0]; K + 1]);
        t.extend((1..n - 2).map(|i| (x[i] + x[i + 1]) / 2.0));
        t.extend([x[n - 1]; K + 1]);
        // Banded collocation rows: row j has entries at columns l_j − 2 ..= l_j.
        let rows: Vec<(usize, [f64; K + 1])> = x
            .iter()
            .map(|&xj| {
                let l = interval(&t, n, xj);
                (l - K, basis(&t, l, xj))
            })
            .collect();
        let kl = rows
            .iter()
            .enumerate()
            .map(|(j, (c0, _))| j.saturating_sub(*c0))
            .max()
            .unwrap_or(0);
        let ku = rows
            .iter()
            .enumerate()
            .map(|(j, (c0, _))| (c0 + K).saturating_sub(j))
            .max()
            .unwrap_or(0);
        let c = solve_banded(n, kl, ku, &rows, y)?;
        Some(Self {
            t,
            c,
            y_first: y[0],
            y_last: y[n - 1],
        })
    }

    /// The value at `x`.
    pub fn eval(&self, x: f64) -> f64 {
        let n = self.c.len();
        let (lo, hi) = (self.t[0], self.t[n + K]);
        if x < lo {
            return self.y_first;
        }
        if x > hi {
            return self.y_last;
        }
        let l = interval(&self.t, n, x);
        let b = basis(&self.t, l, x);
        (0..=K).map(|r| self.c[l - K + r] * b[r]).sum()
    }
}

/// The knot interval `l` (K ≤ l ≤ n−1) with `t[l] ≤ x < t[l+1]`; the last one for `x = t[n]`.
fn interval(t: &[f64], n: usize, x: f64) -> usize {
    t.partition_point(|v| *v <= x)
        .saturating_sub(1)
        .clamp(K, n - 1)
}

/// Solves a banded system without pivoting. `rows[j] = (first column, K+1 values)`.
fn solve_banded(
    n: usize,
    kl: usize,
    ku: usize,
    rows: &[(usize, [f64; K + 1])],
    rhs: &[f64],
) -> Option<Vec<f64>> {
    let width = kl + ku + 1;
    // a[j][c - (j - kl)] for c in j-kl ..= j+ku
    let mut a = vec![vec![0.0; width]; n];
    for (j, (c0, vals)) in rows.iter().enumerate() {
        for (r, v) in vals.iter().enumerate() {
            let c = c0 + r;
            let off = (c + kl).checked_sub(j)?;
            *a[j].get_mut(off)? = *v;
        }
    }
    let mut b = rhs.to_vec();
    let at = |j: usize, c: usize| c + kl - j;
    for p in 0..n {
        let piv = a[p][at(p, p)];
        if piv == 0.0 || !piv.is_finite() {
            return None;
        }
        for j in p + 1..(p + kl + 1).min(n) {
            let f = a[j][at(j, p)] / piv;
            if f == 0.0 {
                continue;
            }
            for c in p..(p + ku + 1).min(n) {
                let v = a[p][at(p, c)];
                a[j][at(j, c)] -= f * v;
            }
            b[j] -= f * b[p];
        }
    }
    let mut xs = vec![0.0; n];
    for p in (0..n).rev() {
        let mut s = b[p];
        for c in p + 1..(p + ku + 1).min(n) {
            s -= a[p][at(p, c)] * xs[c];
        }
        xs[p] = s / a[p][at(p, p)];
    }
    Some(xs)
}

/// Cubic spline with not-a-knot ends (scipy `CubicSpline` default), as slopes at the knots.
#[derive(Debug, Clone)]
pub struct CubicSpline {
    x: Vec<f64>,
    y: Vec<f64>,
    s: Vec<f64>,
}

impl CubicSpline {
    /// Fits the spline; None with fewer than 4 points or bad input.
    pub fn new(x: &[f64], y: &[f64]) -> Option<Self> {
        let n = x.len();
        if !usable(x, y, 4) {
            return None;
        }
        let dx: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
        let slope: Vec<f64> = (0..n - 1).map(|i| (y[i + 1] - y[i]) / dx[i]).collect();
        // Tridiagonal system for the slopes s (scipy's construction).
        let mut sub = vec![0.0; n]; // row i, column i-1
        let mut diag = vec![0.0; n];
        let mut sup = vec![0.0; n]; // row i, column i+1
        let mut rhs = vec![0.0; n];
        for i in 1..n - 1 {
            diag[i] = 2.0 * (dx[i - 1] + dx[i]);
            sup[i] = dx[i - 1];
            sub[i] = dx[i];
            rhs[i] = 3.0 * (dx[i] * slope[i - 1] + dx[i - 1] * slope[i]);
        }
        let d0 = x[2] - x[0];
        diag[0] = dx[1];
        sup[0] = d0;
        rhs[0] = ((dx[0] + 2.0 * d0) * dx[1] * slope[0] + dx[0] * dx[0] * slope[1]) / d0;
        let dn = x[n - 1] - x[n - 3];
        diag[n - 1] = dx[n - 3];
        sub[n - 1] = dn;
        rhs[n - 1] = (dx[n - 2] * dx[n - 2] * slope[n - 3]
            + (2.0 * dn + dx[n - 2]) * dx[n - 3] * slope[n - 2])
            / dn;
        let s = thomas(&sub, &diag, &sup, &rhs)?;
        Some(Self {
            x: x.to_vec(),
            y: y.to_vec(),
            s,
        })
    }

    /// The value at `x` (extrapolates the end polynomials outside the knots).
    pub fn eval(&self, xv: f64) -> f64 {
        let n = self.x.len();
        let i = self
            .x
            .partition_point(|v| *v <= xv)
            .saturating_sub(1)
            .min(n - 2);
        let h = self.x[i + 1] - self.x[i];
        let m = (self.y[i + 1] - self.y[i]) / h;
        let (s0, s1) = (self.s[i], self.s[i + 1]);
        let u = xv - self.x[i];
        let c2 = (3.0 * m - 2.0 * s0 - s1) / h;
        let c3 = (s0 + s1 - 2.0 * m) / (h * h);
        self.y[i] + u * (s0 + u * (c2 + u * c3))
    }
}

/// Tridiagonal solve (Thomas algorithm).
fn thomas(sub: &[f64], diag: &[f64], sup: &[f64], rhs: &[f64]) -> Option<Vec<f64>> {
    let n = diag.len();
    let mut c = vec![0.0; n];
    let mut d = vec![0.0; n];
    let mut den = diag[0];
    if den == 0.0 {
        return None;
    }
    c[0] = sup[0] / den;
    d[0] = rhs[0] / den;
    for i in 1..n {
        den = diag[i] - sub[i] * c[i - 1];
        if den == 0.0 || !den.is_finite() {
            return None;
        }
        c[i] = sup[i] / den;
        d[i] = (rhs[i] - sub[i] * d[i - 1]) / den;
    }
    let mut out = vec![0.0; n];
    out[n - 1] = d[n - 1];
    for i in (0..n - 1).rev() {
        out[i] = d[i] - c[i] * out[i + 1];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_splines_interpolate_and_reproduce_polynomials() {
        let x: Vec<f64> = (0..12)
            .map(|i| i as f64 * 0.8 + (i * i) as f64 * 0.01)
            .collect();
        let quad: Vec<f64> = x.iter().map(|v| 3.0 + 2.0 * v - 0.5 * v * v).collect();
        let cubic: Vec<f64> = x.iter().map(|v| 1.0 - v + 0.3 * v * v * v).collect();
        let q = QuadraticSpline::new(&x, &quad).unwrap();
        let c = CubicSpline::new(&x, &cubic).unwrap();
        for (i, xv) in x.iter().enumerate() {
            assert!((q.eval(*xv) - quad[i]).abs() < 1e-10);
            assert!((c.eval(*xv) - cubic[i]).abs() < 1e-10);
        }
        // Exact on polynomials of their degree, between the knots too.
        for k in 0..100 {
            let v = x[0] + (x[11] - x[0]) * k as f64 / 99.0;
            assert!(
                (q.eval(v) - (3.0 + 2.0 * v - 0.5 * v * v)).abs() < 1e-9,
                "{v}"
            );
            assert!(
                (c.eval(v) - (1.0 - v + 0.3 * v * v * v)).abs() < 1e-9,
                "{v}"
            );
        }
        assert_eq!(q.eval(-5.0), quad[0]);
        assert_eq!(q.eval(100.0), quad[11]);
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(QuadraticSpline::new(&[0.0, 1.0], &[1.0, 2.0]).is_none());
        assert!(QuadraticSpline::new(&[0.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
        assert!(CubicSpline::new(&[0.0, 1.0, 2.0], &[1.0, 2.0, 3.0]).is_none());
    }
}
