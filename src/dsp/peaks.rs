//! Peak primitives with scipy's exact semantics, shared by the ECG, PPG and EDA detectors.
//!
//! - [`local_maxima`]: scipy `signal._peak_finding_utils._local_maxima_1d`: `x[i-1] < x[i] > x[i+1]`;
//!   on a flat top `x[i-1] < x[i] = … = x[j] > x[j+1]` the peak is at `⌊(i+j)/2⌋`; the end
//!   samples are never peaks.
//! - [`prominences`]: scipy `peak_prominences(x, peaks, wlen=None)`: walk left from the peak while
//!   samples are not higher, keeping the minimum; likewise to the right; prominence = peak −
//!   max(left minimum, right minimum).
//! - [`boxcar`]: NeuroKit2's `signal_smooth(kernel="boxcar")`, i.e. scipy
//!   `ndimage.uniform_filter1d(x, w, mode="nearest")`: centred mean of `x[i−⌊w/2⌋ … i−⌊w/2⌋+w−1]`
//!   with edge replication, computed as scipy does (a running sum divided by `w`), so that the
//!   ECG detector's threshold comparisons come out the same.
//! - [`gradient`]: numpy `gradient` with unit spacing (central differences, one-sided at the ends).
//!
//! Pure; indices are sample indices.

/// Indices of the local maxima of `x` (scipy semantics, plateau midpoints).
pub fn local_maxima(x: &[f64]) -> Vec<usize> {
    let mut out = Vec::new();
    let n = x.len();
    if n < 3 {
        return out;
    }
    let i_max = n - 1;
    let mut i = 1;
    while i < i_max {
        if x[i - 1] < x[i] {
            let mut ahead = i + 1;
            while ahead < i_max && x[ahead] == x[i] {
                ahead += 1;
            }
            if x[ahead] < x[i] {
                out.push((i + ahead - 1) / 2);
                i = ahead;
            }
        }
        i += 1;
    }
    out
}

/// Prominence of each peak in `peaks` (indices into `x`).
pub fn prominences(x: &[f64], peaks: &[usize]) -> Vec<f64> {
    peaks
        .iter()
        .map(|&p| {
            let top = x[p];
            let mut left_min = top;
            let mut i = p;
            loop {
                if x[i] > top {
                    break;
                }
                left_min = left_min.min(x[i]);
                if i == 0 {
                    break;
                }
                i -= 1;
            }
            let mut right_min = top;
            for &v in &x[p..] {
                if v > top {
                    break;
                }
                right_min = right_min.min(v);
            }
            top - left_min.max(right_min)
        })
        .collect()
}

/// Index of the most prominent local maximum of `seg` (the first on ties), as NeuroKit2's ECG
/// and PPG detectors pick their peak within a candidate wave: `argmax(find_peaks(seg,
/// prominence=(None, None))[1]["prominences"])`.
pub fn most_prominent(seg: &[f64]) -> Option<usize> {
    let maxima = local_maxima(seg);
    let proms = prominences(seg, &maxima);
    let mut best: Option<(usize, f64)> = None;
    for (&m, &p) in maxima.iter().zip(&proms) {
        if best.is_none_or(|(_, bp)| p > bp) {
            best = Some((m, p));
        }
    }
    best.map(|(m, _)| m)
}

/// Centred moving mean with edge replication (scipy `uniform_filter1d`, mode "nearest").
pub fn boxcar(x: &[f64], w: usize) -> Vec<f64> {
    let n = x.len();
    if n == 0 || w == 0 {
        return x.to_vec();
    }
    let left = (w / 2) as isize;
    let at = |j: isize| x[j.clamp(0, n as isize - 1) as usize];
    let mut sum = 0.0;
    for k in 0..w as isize {
        sum += at(k - left);
    }
    let inv = w as f64;
    let mut out = Vec::with_capacity(n);
    out.push(sum / inv);
    for i in 1..n as isize {
        sum += at(i - left + w as isize - 1) - at(i - left - 1);
        out.push(sum / inv);
    }
    out
}

/// numpy `gradient(x)` with unit spacing; empty for fewer than 2 samples.
pub fn gradient(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    if n < 2 {
        return Vec::new();
    }
    let mut g = Vec::with_capacity(n);
    g.push(x[1] - x[0]);
    for i in 1..n - 1 {
        g.push((x[i + 1] - x[i - 1]) / 2.0);
    }
    g.push(x[n - 1] - x[n - 2]);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxima_follow_scipy_on_plateaus_and_edges() {
        // scipy 1.17.1: find_peaks([0, 1, 1, 1, 0, 2, 2, 0, 3, 5]) -> [2, 5]
        let x = [0.0, 1.0, 1.0, 1.0, 0.0, 2.0, 2.0, 0.0, 3.0, 5.0];
        assert_eq!(local_maxima(&x), vec![2, 5]);
        // A plateau that runs into the end is no peak.
        assert!(local_maxima(&[0.0, 1.0, 1.0]).is_empty());
        assert!(local_maxima(&[1.0, 0.0]).is_empty());
    }

    #[test]
    fn prominences_follow_scipy() {
        // scipy 1.17.1: peak_prominences([0, 3, 1, 2, 0.5, 4, 0], [1, 3, 5]) -> [2.5, 1, 4]
        let x = [0.0, 3.0, 1.0, 2.0, 0.5, 4.0, 0.0];
        assert_eq!(prominences(&x, &[1, 3, 5]), vec![2.5, 1.0, 4.0]);
    }

    #[test]
    fn boxcar_matches_the_direct_definition() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        for w in [1, 4, 7, 10] {
            let b = boxcar(&x, w);
            for (i, v) in b.iter().enumerate() {
                let lo = i as isize - (w / 2) as isize;
                let direct: f64 = (lo..lo + w as isize)
                    .map(|j| x[j.clamp(0, 49) as usize])
                    .sum::<f64>()
                    / w as f64;
                assert!((v - direct).abs() < 1e-12, "w {w} i {i}");
            }
        }
    }

    #[test]
    fn gradient_like_numpy() {
        assert_eq!(gradient(&[1.0, 2.0, 4.0, 7.0]), vec![1.0, 1.5, 2.5, 3.0]);
    }
}
