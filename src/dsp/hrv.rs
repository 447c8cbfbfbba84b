//! Heart-rate variability from beat times, as NeuroKit2 0.2.13 `hrv_time` defines it
//! (SIGNALS.md §3.1; Task Force 1996, *Eur Heart J* 17:354–381), and their spectra by two
//! named methods (§3.2–3.4) that disagree and must never be compared with each other:
//!
//! - [`PsdMethod::NeuroKit`]: `hrv_frequency(normalize=False)`: 100 Hz quadratic-spline
//!   resampling, mean removal, Welch with `nperseg ≈ N/2`, `nfft = 2·nperseg`, bins below
//!   `fmin = 4/T` dropped, trapezoid band powers; a band with zero power is NaN (None here).
//! - [`PsdMethod::TaskForce`]: 4 Hz not-a-knot cubic spline, linear detrend, Welch Hann 256 /
//!   overlap 128, rectangle-rule band powers; LF n.u. = 100·LF/(LF+HF).
//!
//! Bands (Hz, half-open): ULF [0, 0.0033), VLF [0.0033, 0.04), LF [0.04, 0.15),
//! HF [0.15, 0.4), VHF [0.4, 0.5). Powers in ms².
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

/// Which spectral method produced a [`FreqDomain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsdMethod {
    /// NeuroKit2 0.2.13 `hrv_frequency` defaults with `normalize=False`.
    NeuroKit,
    /// Task Force 1996 style: 4 Hz cubic spline, detrend, Welch 256 samples.
    TaskForce,
}

impl PsdMethod {
    /// Name used in outputs.
    pub fn name(self) -> &'static str {
        match self {
            Self::NeuroKit => "neurokit",
            Self::TaskForce => "taskforce",
        }
    }
}

/// Frequency-domain indices (ms²); None where the band has no power in the spectrum (too short
/// a record) or the ratio cannot be formed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreqDomain {
    /// The method.
    pub method: PsdMethod,
    /// Ultra-low frequency power.
    pub ulf: Option<f64>,
    /// Very-low frequency power.
    pub vlf: Option<f64>,
    /// Low frequency power.
    pub lf: Option<f64>,
    /// High frequency power.
    pub hf: Option<f64>,
    /// Very-high frequency power (NeuroKit only).
    pub vhf: Option<f64>,
    /// Total power: NeuroKit sums all five bands; TaskForce sums VLF, LF and HF.
    pub tp: Option<f64>,
    /// LF / HF.
    pub lf_hf: Option<f64>,
    /// NeuroKit: LF / TP. TaskForce: LF / (LF + HF) (n.u./100).
    pub lfn: Option<f64>,
    /// NeuroKit: HF / TP. TaskForce: HF / (LF + HF).
    pub hfn: Option<f64>,
    /// ln(HF).
    pub ln_hf: Option<f64>,
    /// Lowest frequency in the spectrum, Hz (NeuroKit drops bins below 4/T).
    pub fmin_hz: f64,
}

const BANDS: [(f64, f64); 5] = [
    (0.0, 0.0033),
    (0.0033, 0.04),
    (0.04, 0.15),
    (0.15, 0.4),
    (0.4, 0.5),
];

/// Beat times (s) NeuroKit2 gives intervals: `cumsum(rri / 1000)`.
pub fn interval_times(rri: &[f64]) -> Vec<f64> {
    let mut acc = 0.0;
    rri.iter()
        .map(|r| {
            acc += r / 1000.0;
            acc
        })
        .collect()
}

/// `hrv_frequency(peaks, normalize=False)` of NeuroKit2 0.2.13 on intervals `rri` (ms).
/// None with fewer than 3 intervals or a spectrum that cannot be formed.
pub fn frequency_neurokit(rri: &[f64]) -> Option<FreqDomain> {
    let rate = 100.0;
    let t = interval_times(rri);
    let spline = super::spline::QuadraticSpline::new(&t, rri)?;
    let (t0, t_last) = (*t.first()?, *t.last()?);
    let step = 1.0 / rate;
    let stop = t_last + step;
    let count = ((stop - t0) / step).ceil() as usize;
    let delta = (t0 + step) - t0;
    let mut y: Vec<f64> = (0..count)
        .map(|k| spline.eval(t0 + k as f64 * delta))
        .collect();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    y.iter_mut().for_each(|v| *v -= mean);
    let n = y.len();
    let fmin = (2.0 * rate) / (n as f64 / 2.0);
    let mut nperseg = ((2.0 / fmin) * rate) as usize;
    if nperseg as f64 > n as f64 / 2.0 {
        nperseg = (n as f64 / 2.0) as usize;
    }
    let psd = super::spectrum::welch(&y, rate, nperseg, nperseg / 2, 2 * nperseg)?;
    let keep: Vec<(f64, f64)> = psd
        .freq
        .iter()
        .zip(&psd.power)
        .filter(|(f, _)| **f >= fmin && **f <= 0.5)
        .map(|(f, p)| (*f, *p))
        .collect();
    let band = |(lo, hi): (f64, f64)| {
        let pts: Vec<&(f64, f64)> = keep.iter().filter(|(f, _)| *f >= lo && *f < hi).collect();
        let power: f64 = pts
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
            .sum();
        (power != 0.0).then_some(power)
    };
    let [ulf, vlf, lf, hf, vhf] = BANDS.map(band);
    let tp: f64 = [ulf, vlf, lf, hf, vhf].iter().flatten().sum();
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    Some(FreqDomain {
        method: PsdMethod::NeuroKit,
        ulf,
        vlf,
        lf,
        hf,
        vhf,
        tp: Some(tp),
        lf_hf: ratio(lf, hf),
        lfn: ratio(lf, Some(tp)),
        hfn: ratio(hf, Some(tp)),
        ln_hf: hf.map(f64::ln),
        fmin_hz: fmin,
    })
}

/// Task Force style spectrum of intervals `rri` (ms): 4 Hz not-a-knot cubic spline on
/// `[0, t_last)`, linear detrend, Welch (periodic Hann 256, overlap 128, nfft 256; one segment
/// of all samples when fewer than 256), band power = Σ P·Δf over bins in [lo, hi).
pub fn frequency_taskforce(rri: &[f64]) -> Option<FreqDomain> {
    let rate = 4.0;
    let t = interval_times(rri);
    let t0 = *t.first()?;
    let x: Vec<f64> = t.iter().map(|v| v - t0).collect();
    let spline = super::spline::CubicSpline::new(&x, rri)?;
    let t_last = *x.last()?;
    let n = (t_last * rate).ceil() as usize;
    if n < 8 {
        return None;
    }
    let mut y: Vec<f64> = (0..n).map(|k| spline.eval(k as f64 / rate)).collect();
    super::hrv_spectral::detrend(&mut y);
    let nperseg = n.min(256);
    let psd = super::spectrum::welch(&y, rate, nperseg, nperseg / 2, nperseg)?;
    let df = rate / nperseg as f64;
    let band = |(lo, hi): (f64, f64)| {
        let p: f64 = psd
            .freq
            .iter()
            .zip(&psd.power)
            .filter(|(f, _)| **f >= lo && **f < hi)
            .map(|(_, p)| p * df)
            .sum();
        (p != 0.0).then_some(p)
    };
    let (vlf, lf, hf) = (band(BANDS[1]), band(BANDS[2]), band(BANDS[3]));
    let tp = [vlf, lf, hf].iter().flatten().sum::<f64>();
    let ratio = |a: Option<f64>, b: Option<f64>| Some(a? / b?);
    let lf_plus_hf = Some(lf? + hf?);
    Some(FreqDomain {
        method: PsdMethod::TaskForce,
        ulf: None,
        vlf,
        lf,
        hf,
        vhf: None,
        tp: Some(tp),
        lf_hf: ratio(lf, hf),
        lfn: ratio(lf, lf_plus_hf),
        hfn: ratio(hf, lf_plus_hf),
        ln_hf: hf.map(f64::ln),
        fmin_hz: psd.freq.get(1).copied().unwrap_or(0.0),
    })
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
