//! Heart-rate variability from beat times, as NeuroKit2 0.2.13 `hrv_time` defines it
//! (SIGNALS.md §3.1; Task Force 1996, *Eur Heart J* 17:354–381).
//!
//! In: beat (R-peak) sample indices and the rate in Hz, or RR intervals in ms. Out: intervals
//! `rri = diff(peaks)/fs·1000` (ms) and their indices. NeuroKit2's quirks are kept on purpose:
//! SDNN uses ddof = 1; pNN50/pNN20 divide by the number of intervals (`len(d) + 1`), not the
//! number of differences; MadNN = 1.4826·median|rri − median|; percentiles interpolate linearly
//! (numpy's default); HTI counts 1/128 s bins starting at 0. TINN and SDANN/SDNNI are not
//! computed yet.

/// RR intervals (ms) from beat sample indices at `fs` Hz.
pub fn intervals_ms(peaks: &[usize], fs: f64) -> Vec<f64> {
    peaks
        .windows(2)
        .map(|w| (w[1] as f64 - w[0] as f64) / fs * 1000.0)
        .collect()
}

/// Time-domain indices, ms unless noted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TimeDomain {
    /// Number of intervals.
    pub n_intervals: usize,
    /// Mean interval.
    pub mean_nn: f64,
    /// Standard deviation of the intervals (ddof 1).
    pub sdnn: f64,
    /// Root mean square of successive differences.
    pub rmssd: f64,
    /// Standard deviation of successive differences (ddof 1).
    pub sdsd: f64,
    /// SDNN / MeanNN.
    pub cvnn: f64,
    /// RMSSD / MeanNN.
    pub cvsd: f64,
    /// Median interval.
    pub median_nn: f64,
    /// 1.4826 · median absolute deviation.
    pub mad_nn: f64,
    /// MadNN / MedianNN.
    pub mcvnn: f64,
    /// Interquartile range.
    pub iqr_nn: f64,
    /// SDNN / RMSSD.
    pub sdrmssd: f64,
    /// 20th percentile.
    pub prc20_nn: f64,
    /// 80th percentile.
    pub prc80_nn: f64,
    /// Percentage of |successive differences| > 50 ms, over the number of intervals.
    pub pnn50: f64,
    /// Same with 20 ms.
    pub pnn20: f64,
    /// Shortest interval.
    pub min_nn: f64,
    /// Longest interval.
    pub max_nn: f64,
    /// HRV triangular index (intervals / highest 1/128 s histogram bin).
    pub hti: f64,
    /// Mean heart rate, bpm = 60000 / MeanNN.
    pub hr_mean_bpm: f64,
}

/// Time-domain HRV of intervals `rri` (ms); None with fewer than 3 intervals (SDSD needs two
/// differences).
pub fn time_domain(rri: &[f64]) -> Option<TimeDomain> {
    let n = rri.len();
    if n < 3 || rri.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let d: Vec<f64> = rri.windows(2).map(|w| w[1] - w[0]).collect();
    let mean_nn = mean(rri);
    let sdnn = std_ddof1(rri);
    let rmssd = (d.iter().map(|x| x * x).sum::<f64>() / d.len() as f64).sqrt();
    let sdsd = std_ddof1(&d);
    let mut sorted = rri.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median_nn = percentile_sorted(&sorted, 50.0);
    let mut dev: Vec<f64> = rri.iter().map(|x| (x - median_nn).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad_nn = 1.4826 * percentile_sorted(&dev, 50.0);
    let over = |thr: f64| d.iter().filter(|x| x.abs() > thr).count() as f64;
    let max_nn = sorted[n - 1];
    Some(TimeDomain {
        n_intervals: n,
        mean_nn,
        sdnn,
        rmssd,
        sdsd,
        cvnn: sdnn / mean_nn,
        cvsd: rmssd / mean_nn,
        median_nn,
        mad_nn,
        mcvnn: mad_nn / median_nn,
        iqr_nn: percentile_sorted(&sorted, 75.0) - percentile_sorted(&sorted, 25.0),
        sdrmssd: sdnn / rmssd,
        prc20_nn: percentile_sorted(&sorted, 20.0),
        prc80_nn: percentile_sorted(&sorted, 80.0),
        pnn50: over(50.0) / (d.len() + 1) as f64 * 100.0,
        pnn20: over(20.0) / (d.len() + 1) as f64 * 100.0,
        min_nn: sorted[0],
        max_nn,
        hti: n as f64 / histogram_max(rri, max_nn, 1000.0 / 128.0) as f64,
        hr_mean_bpm: 60_000.0 / mean_nn,
    })
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn std_ddof1(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// numpy `percentile(x, q)` with linear interpolation, on sorted data.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = q / 100.0 * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Highest bin count of numpy `histogram(x, bins=arange(0, max + b, b))`.
fn histogram_max(x: &[f64], max: f64, b: f64) -> usize {
    let n_edges = ((max + b - 0.0) / b).ceil() as usize;
    let edges: Vec<f64> = (0..n_edges).map(|k| k as f64 * b).collect();
    if edges.len() < 2 {
        return x.len();
    }
    let bins = edges.len() - 1;
    let mut counts = vec![0usize; bins];
    let last = edges[bins];
    for &v in x {
        if v < 0.0 || v > last {
            continue;
        }
        let k = if v == last {
            bins - 1
        } else {
            edges.partition_point(|e| *e <= v) - 1
        };
        counts[k] += 1;
    }
    counts.into_iter().max().unwrap_or(0).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_like_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&s, 50.0), 2.5);
        assert!((percentile_sorted(&s, 20.0) - 1.6).abs() < 1e-12);
        assert_eq!(percentile_sorted(&s, 100.0), 4.0);
    }

    #[test]
    fn hand_computed_series() {
        let rri = [800.0, 900.0, 850.0, 700.0];
        let t = time_domain(&rri).unwrap();
        assert_eq!(t.mean_nn, 812.5);
        // d = 100, -50, -150; RMSSD = sqrt((1e4 + 2500 + 22500)/3)
        assert!((t.rmssd - (35000.0f64 / 3.0).sqrt()).abs() < 1e-9);
        // |d| > 50: 100 and 150 -> 2 / (3 + 1) = 50 %
        assert_eq!(t.pnn50, 50.0);
        assert!((t.hr_mean_bpm - 60_000.0 / 812.5).abs() < 1e-12);
        assert!(time_domain(&[800.0, 900.0]).is_none());
    }
}
