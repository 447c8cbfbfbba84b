//! NeuroKit2 0.2.13's offline EDA pipeline, ported step for step (SIGNALS.md §4.1–4.3): the
//! reference that `attune analyze --kind eda --method neurokit` reproduces.
//!
//! - [`clean`]: `eda_clean(x, fs, method="neurokit")`: NaNs filled forward (pandas `ffill`;
//!   leading NaNs stay NaN); at **fs ≤ 6 Hz the signal is returned unfiltered**
//!   ([`EdaClean::filtered`] is false, so callers can warn); otherwise Butterworth low-pass 3 Hz,
//!   order 4, zero-phase.
//! - [`phasic_highpass`]: `eda_phasic(method="highpass")` (NeuroKit2's default, alias
//!   `neurokit`): tonic = low-pass 0.05 Hz, order 2, zero-phase; phasic = high-pass 0.05 Hz,
//!   order 2, zero-phase. Two separate filters, so tonic + phasic ≠ clean.
//! - [`peaks_neurokit`]: `eda_peaks(method="neurokit", amplitude_min=0.1)`, with NeuroKit2's
//!   quirks kept (SIGNALS.md §4.3): the threshold is a *relative prominence* (`prominence /
//!   max prominence of the whole record ≥ amplitude_min`), so it depends on the whole record and
//!   ignores units; the onset is the nearest trough (local maximum of −phasic) before the peak,
//!   or none, and a peak without onset is still an SCR (without amplitude or rise time); the
//!   half-recovery point is searched between the peak and the next SCR peak, cut at that
//!   segment's minimum.
//! - [`process`]: `eda_process(x, fs)` with its defaults, summarised as [`EdaSummary`].
//!
//! NeuroKit2's `signal_filter` handles NaNs by linear interpolation (constant beyond the first
//! and last finite sample), filtering, and writing NaN back at those indices; this module does the
//! same, including scipy `interp1d`'s rounding at the finite samples, so a record with leading
//! NaNs gives the same numbers as NeuroKit2, NaN-prefixed.
//!
//! Deliberate differences from NeuroKit2, each reported in [`EdaSummary::warnings`]:
//! - a record whose phasic signal has no local maximum gives zero SCRs (NeuroKit2 raises);
//! - a flat record (largest prominence ≤ 1e-7 × the largest |clean| value, i.e. rounding noise)
//!   gives zero SCRs (NeuroKit2 counts the rounding ripples: 31 "SCRs" on 500 constant samples);
//! - with leading NaNs, the mean tonic level is the mean over the finite samples (pandas'
//!   `Series.mean`; numpy's `mean`, which the reference script uses, gives NaN);
//! - infinite samples, a bad rate or a record too short for the filters are typed errors
//!   ([`EdaError`]) instead of NaN outputs or Python exceptions.
//!
//! Units: `fs` in Hz; EDA in µS (any unit works: every step is linear or scale-free, and the
//! outputs carry the input's unit); SCR positions are sample indices, times in s.
//!
//! Ported from NeuroKit2 0.2.13 (`eda/eda_clean.py`, `eda/eda_phasic.py`, `eda/eda_peaks.py`,
//! `eda/eda_findpeaks.py`, `eda/eda_process.py`, `signal/signal_filter.py`,
//! `signal/signal_findpeaks.py`, `misc/find_closest.py`), © the NeuroKit2 developers, MIT
//! licence. Reference values: SIGNALS.md §6.1 R5/R6 and `fixtures/reference/neurokit2-0.2.13.json`.

use super::filter::{FilterError, Pass, Sos};
use super::peaks::{local_maxima, prominences};
use std::cmp::Ordering;

/// NeuroKit2 skips the 3 Hz cleaning filter at or below this rate, Hz.
pub const UNFILTERED_MAX_RATE_HZ: f64 = 6.0;
/// Cutoff of the tonic/phasic split, Hz (`eda_phasic(cutoff=0.05)`).
pub const PHASIC_CUTOFF_HZ: f64 = 0.05;
/// NeuroKit2's default relative SCR threshold (`eda_peaks(amplitude_min=0.1)`).
pub const AMPLITUDE_MIN: f64 = 0.1;
/// A record whose largest prominence is at most this fraction of its largest |clean| value is
/// flat (filter rounding noise): no SCRs.
pub const FLAT_RELATIVE: f64 = 1e-7;

/// Why an EDA record could not be processed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EdaError {
    /// The record has no finite sample.
    #[error("the EDA record has no finite sample")]
    NoData,
    /// A sample is +∞ or −∞ (NeuroKit2 would return NaN everywhere).
    #[error("EDA sample {index} is infinite")]
    Infinite {
        /// Index of the first infinite sample.
        index: usize,
    },
    /// The sampling rate is not a positive finite number.
    #[error("EDA sampling rate {0} Hz is not a positive finite number")]
    Rate(f64),
    /// A filter could not be designed or run (rate too low for 0.05 Hz, record too short).
    #[error("EDA filter: {0}")]
    Filter(#[from] FilterError),
}

/// The cleaned signal and what was done to it.
#[derive(Debug, Clone, PartialEq)]
pub struct EdaClean {
    /// Cleaned EDA, same length and unit as the input; NaN where the input had leading NaNs.
    pub signal: Vec<f64>,
    /// False when fs ≤ 6 Hz: NeuroKit2 returns the (NaN-filled) input unfiltered.
    pub filtered: bool,
    /// NaN samples in the input (all but the leading ones were forward-filled).
    pub missing: usize,
    /// Leading NaN samples (nothing before them to fill from): NaN in every output.
    pub leading_missing: usize,
}

/// One skin-conductance response, as NeuroKit2's `eda_peaks` reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scr {
    /// Onset (nearest trough before the peak), sample index; None if no trough precedes it.
    pub onset: Option<usize>,
    /// Peak, sample index.
    pub peak: usize,
    /// Phasic value at the peak (`SCR_Height`), input unit.
    pub height: f64,
    /// `phasic[peak] − phasic[onset]` (`SCR_Amplitude`), input unit; None without onset.
    pub amplitude: Option<f64>,
    /// `(peak − onset) / fs` (`SCR_RiseTime`), s; None without onset.
    pub rise_time_s: Option<f64>,
    /// Half-recovery point (`SCR_Recovery`), sample index; None if not reached.
    pub recovery: Option<usize>,
    /// `(recovery − peak) / fs` (`SCR_RecoveryTime`), s; None if not reached.
    pub recovery_time_s: Option<f64>,
}

/// `eda_process` summarised: the numbers `attune analyze --kind eda` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct EdaSummary {
    /// Number of SCRs (NeuroKit2: `sum(SCR_Peaks)`), peaks without onset included.
    pub scr_count: usize,
    /// Mean of the tonic component (`mean(EDA_Tonic)`), input unit (µS for µS input).
    pub scl_mean_us: f64,
    /// Mean amplitude over the SCRs that have one (`nanmean(SCR_Amplitude)`); None if none has.
    pub scr_amp_mean_us: Option<f64>,
    /// SCRs per minute: `scr_count / (N / fs / 60)`.
    pub scr_per_min: f64,
    /// Record length, s (`N / fs`).
    pub duration_s: f64,
    /// Whether the 3 Hz cleaning filter ran (false at fs ≤ 6 Hz).
    pub filtered: bool,
    /// Every SCR, in time order.
    pub scrs: Vec<Scr>,
    /// What a user should know about these numbers (skipped filter, filled NaNs, …).
    pub warnings: Vec<String>,
}

/// `eda_clean(x, fs, method="neurokit")`.
pub fn clean(x: &[f64], fs: f64) -> Result<EdaClean, EdaError> {
    check_rate(fs)?;
    if let Some(index) = x.iter().position(|v| v.is_infinite()) {
        return Err(EdaError::Infinite { index });
    }
    let leading_missing = x.iter().take_while(|v| v.is_nan()).count();
    if leading_missing == x.len() {
        return Err(EdaError::NoData);
    }
    let missing = x.iter().filter(|v| v.is_nan()).count();
    let filled = fill_forward(x);
    if fs <= UNFILTERED_MAX_RATE_HZ {
        return Ok(EdaClean {
            signal: filled,
            filtered: false,
            missing,
            leading_missing,
        });
    }
    let sos = Sos::butterworth(Pass::Low, 4, fs, 3.0)?;
    Ok(EdaClean {
        signal: signal_filter(&sos, &filled)?,
        filtered: true,
        missing,
        leading_missing,
    })
}

/// `eda_phasic(clean, fs, method="highpass")`: `(tonic, phasic)`, each the input's length.
pub fn phasic_highpass(clean: &[f64], fs: f64) -> Result<(Vec<f64>, Vec<f64>), EdaError> {
    check_rate(fs)?;
    let hp = Sos::butterworth(Pass::High, 2, fs, PHASIC_CUTOFF_HZ)?;
    let lp = Sos::butterworth(Pass::Low, 2, fs, PHASIC_CUTOFF_HZ)?;
    let phasic = signal_filter(&hp, clean)?;
    let tonic = signal_filter(&lp, clean)?;
    Ok((tonic, phasic))
}

/// `eda_peaks(phasic, fs, method="neurokit", amplitude_min)`: every SCR, in time order.
///
/// Leading NaNs (as [`clean`] leaves them) are skipped; NaNs elsewhere are not expected and are
/// not handled as scipy would. Never panics.
pub fn peaks_neurokit(phasic: &[f64], fs: f64, amplitude_min: f64) -> Vec<Scr> {
    detect(phasic, fs, amplitude_min).0
}

/// [`peaks_neurokit`], plus the largest prominence of all candidates (0 when there are none).
fn detect(phasic: &[f64], fs: f64, amplitude_min: f64) -> (Vec<Scr>, f64) {
    let start = phasic.iter().take_while(|v| v.is_nan()).count();
    let p = &phasic[start..];
    let cand = local_maxima(p);
    let proms = prominences(p, &cand);
    // np.max propagates NaN; a NaN prominence cannot arise from finite data.
    let max_prom = proms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // NeuroKit2 drops a candidate when `prominence / max < amplitude_min` (NaN: kept).
    let peaks: Vec<usize> = cand
        .iter()
        .zip(&proms)
        .filter(|&(_, &pr)| (pr / max_prom).partial_cmp(&amplitude_min) != Some(Ordering::Less))
        .map(|(&c, _)| c)
        .collect();
    let neg: Vec<f64> = p.iter().map(|v| -v).collect();
    let troughs = local_maxima(&neg);
    let onsets: Vec<Option<usize>> = peaks
        .iter()
        .map(|&pk| {
            let k = troughs.partition_point(|&t| t < pk);
            k.checked_sub(1).map(|k| troughs[k])
        })
        .collect();
    let mut scrs: Vec<Scr> = Vec::with_capacity(peaks.len());
    for (i, (&pk, &on)) in peaks.iter().zip(&onsets).enumerate() {
        let height = p[pk];
        let amplitude = on.map(|o| height - p[o]);
        let (mut recovery, mut recovery_time_s) = (None, None);
        if let (Some(o), Some(amp)) = (on, amplitude) {
            // Segment to the next SCR that has an onset (peaks without one precede all others).
            let end = peaks.get(i + 1).copied().unwrap_or(p.len());
            let target = p[o] + amp * 0.5;
            if let Some(k) = half_recovery(&p[pk..end], target) {
                recovery = Some(start + pk + k);
                recovery_time_s = Some(k as f64 / fs);
            }
        }
        scrs.push(Scr {
            onset: on.map(|o| start + o),
            peak: start + pk,
            height,
            amplitude,
            rise_time_s: on.map(|o| (pk - o) as f64 / fs),
            recovery,
            recovery_time_s,
        });
    }
    (scrs, max_prom.max(0.0))
}

/// `eda_process(x, fs)` with NeuroKit2's defaults, summarised.
pub fn process(x: &[f64], fs: f64) -> Result<EdaSummary, EdaError> {
    let c = clean(x, fs)?;
    let (tonic, phasic) = phasic_highpass(&c.signal, fs)?;
    let mut warnings = Vec::new();
    if !c.filtered {
        warnings.push(format!(
            "sampling rate {fs} Hz is at most {UNFILTERED_MAX_RATE_HZ} Hz: the 3 Hz cleaning \
             filter was skipped, as NeuroKit2 does"
        ));
    }
    if c.missing > c.leading_missing {
        warnings.push(format!(
            "{} missing samples were filled forward",
            c.missing - c.leading_missing
        ));
    }
    let scl_mean_us = if c.leading_missing > 0 {
        warnings.push(format!(
            "the first {} samples are missing and were left out (NeuroKit2 keeps them as NaN; \
             the mean tonic level is over the remaining samples)",
            c.leading_missing
        ));
        numpy_sum(&tonic[c.leading_missing..]) / (tonic.len() - c.leading_missing) as f64
    } else {
        numpy_sum(&tonic) / tonic.len() as f64
    };
    let (mut scrs, max_prom) = detect(&phasic, fs, AMPLITUDE_MIN);
    let scale = c
        .signal
        .iter()
        .filter(|v| !v.is_nan())
        .fold(0.0, |m: f64, v| m.max(v.abs()));
    if max_prom == 0.0 {
        warnings.push(
            "the phasic signal has no local maximum: no SCRs (NeuroKit2 raises an error here)"
                .to_string(),
        );
    } else if max_prom <= FLAT_RELATIVE * scale {
        warnings.push(format!(
            "the signal is flat (largest SCR prominence {max_prom:e} is rounding noise): no SCRs \
             (NeuroKit2 would count {} ripples)",
            scrs.len()
        ));
        scrs.clear();
    }
    let without_onset = scrs.iter().filter(|s| s.onset.is_none()).count();
    if without_onset > 0 {
        warnings.push(format!(
            "{without_onset} SCR(s) at the start have no preceding trough: counted, but without \
             amplitude or rise time (as NeuroKit2)"
        ));
    }
    // np.nanmean: NaNs replaced by 0 in a numpy sum, divided by the count of the others.
    let amps: Vec<f64> = scrs.iter().map(|s| s.amplitude.unwrap_or(0.0)).collect();
    let n_amps = scrs.iter().filter(|s| s.amplitude.is_some()).count();
    let scr_amp_mean_us = (n_amps > 0).then(|| numpy_sum(&amps) / n_amps as f64);
    if !scrs.is_empty() && n_amps == 0 {
        warnings.push("no SCR has an amplitude: the mean SCR amplitude is null".to_string());
    }
    let duration_s = x.len() as f64 / fs;
    Ok(EdaSummary {
        scr_count: scrs.len(),
        scl_mean_us,
        scr_amp_mean_us,
        scr_per_min: scrs.len() as f64 / (duration_s / 60.0),
        duration_s,
        filtered: c.filtered,
        scrs,
        warnings,
    })
}

/// numpy's `add.reduce` on a contiguous float64 array: pairwise summation in blocks of 128 with
/// eight accumulators, so that means come out bit-identical to `np.mean` / `np.nanmean`.
pub fn numpy_sum(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 8 {
        x.iter().fold(0.0, |s, v| s + v)
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&x[..8]);
        let whole = n - n % 8;
        for chunk in x[8..whole].chunks_exact(8) {
            for (acc, v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        x[whole..].iter().fold(res, |s, v| s + v)
    } else {
        let half = n / 2;
        let half = half - half % 8;
        numpy_sum(&x[..half]) + numpy_sum(&x[half..])
    }
}

fn check_rate(fs: f64) -> Result<(), EdaError> {
    if fs.is_finite() && fs > 0.0 {
        Ok(())
    } else {
        Err(EdaError::Rate(fs))
    }
}

/// pandas `Series.ffill()`: leading NaNs stay NaN.
fn fill_forward(x: &[f64]) -> Vec<f64> {
    let mut last = f64::NAN;
    x.iter()
        .map(|&v| {
            if !v.is_nan() {
                last = v;
            }
            last
        })
        .collect()
}

/// NeuroKit2's `signal_filter(method="butterworth")`: NaNs interpolated as
/// `signal_interpolate(method="linear")` does, zero-phase filtering, NaN written back.
fn signal_filter(sos: &Sos, x: &[f64]) -> Result<Vec<f64>, EdaError> {
    if !x.iter().any(|v| v.is_nan()) {
        return Ok(sos.filtfilt(x)?);
    }
    let filled = interpolate_nan(x).ok_or(EdaError::NoData)?;
    let mut y = sos.filtfilt(&filled)?;
    for (out, v) in y.iter_mut().zip(x) {
        if v.is_nan() {
            *out = f64::NAN;
        }
    }
    Ok(y)
}

/// scipy `interp1d(known_idx, known_val, kind="linear", bounds_error=False,
/// fill_value=(first, last))` evaluated at every index, finite samples included (where its
/// `slope·(x − x_lo) + y_lo` may differ from the sample in the last bit, as in NeuroKit2).
fn interpolate_nan(x: &[f64]) -> Option<Vec<f64>> {
    let known: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    let (&first, &last) = (known.first()?, known.last()?);
    if known.len() == 1 {
        return Some(vec![x[first]; x.len()]);
    }
    let mut out = Vec::with_capacity(x.len());
    // `hi` = numpy searchsorted(known, i, side="left"), clipped to 1..len-1.
    let mut hi = 1;
    for i in 0..x.len() {
        if i < first {
            out.push(x[first]);
        } else if i > last {
            out.push(x[last]);
        } else {
            while hi < known.len() - 1 && known[hi] < i {
                hi += 1;
            }
            let (xl, xh) = (known[hi - 1], known[hi]);
            let slope = (x[xh] - x[xl]) / (xh - xl) as f64;
            out.push(slope * (i - xl) as f64 + x[xl]);
        }
    }
    Some(out)
}

/// Offset of the half-recovery point in `seg = phasic[peak .. next peak)`, as NeuroKit2's
/// `_eda_peaks_getfeatures`: cut `seg` at its (first) minimum; among the values ≤ `target` take
/// the one closest to it (first on ties, as pandas `idxmin`); accept it only if the cut segment
/// goes lower still.
fn half_recovery(seg: &[f64], target: f64) -> Option<usize> {
    let argmin = first_argmin(seg)?;
    let seg = &seg[..argmin];
    let mut best: Option<(usize, f64)> = None;
    for (k, &v) in seg.iter().enumerate() {
        if v <= target {
            let d = (v - target).abs();
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((k, d));
            }
        }
    }
    let (k, _) = best?;
    let min = seg.iter().copied().fold(f64::INFINITY, f64::min);
    (min < seg[k]).then_some(k)
}

/// numpy `argmin`: index of the first minimum (the first NaN, if any); None when empty.
fn first_argmin(x: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &v) in x.iter().enumerate() {
        if v.is_nan() {
            return Some(i);
        }
        if best.is_none_or(|(_, b)| v < b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit SCR-like bump (fast rise, slower decay) starting at `t0` s.
    fn bump(t: f64, t0: f64) -> f64 {
        let u = t - t0;
        if u <= 0.0 {
            0.0
        } else {
            (1.0 - (-u / 0.7).exp()) * (-u / 3.0).exp() * 2.0
        }
    }

    fn synthetic(fs: f64, seconds: f64, onsets: &[f64], amps: &[f64]) -> Vec<f64> {
        let n = (fs * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                5.0 + 0.002 * t
                    + onsets
                        .iter()
                        .zip(amps)
                        .map(|(&t0, &a)| a * bump(t, t0))
                        .sum::<f64>()
            })
            .collect()
    }

    #[test]
    fn numpy_sum_matches_plain_sums_where_they_are_exact() {
        let x: Vec<f64> = (0..1000).map(|i| (i % 17) as f64).collect();
        assert_eq!(numpy_sum(&x), x.iter().sum::<f64>());
        assert_eq!(numpy_sum(&[]), 0.0);
        assert_eq!(numpy_sum(&[1.5]), 1.5);
        // Pairwise order: 1e16 + 1 + 1 + ... loses the ones one at a time in a plain loop,
        // numpy's eight accumulators keep some of them.
        let mut y = vec![1.0; 16];
        y[0] = 1e16;
        assert_eq!(numpy_sum(&y), 1e16 + 2.0 + 8.0 + 4.0);
    }

    #[test]
    fn forward_fill_keeps_leading_nans() {
        let x = [f64::NAN, 1.0, f64::NAN, 3.0, f64::NAN];
        let y = fill_forward(&x);
        assert!(y[0].is_nan());
        assert_eq!(&y[1..], &[1.0, 1.0, 3.0, 3.0]);
    }

    #[test]
    fn interpolation_is_linear_inside_and_constant_outside() {
        let x = [f64::NAN, 2.0, f64::NAN, f64::NAN, 8.0, f64::NAN];
        assert_eq!(
            interpolate_nan(&x).unwrap(),
            vec![2.0, 2.0, 4.0, 6.0, 8.0, 8.0]
        );
        assert_eq!(interpolate_nan(&[f64::NAN, 3.0]).unwrap(), vec![3.0, 3.0]);
        assert!(interpolate_nan(&[f64::NAN; 3]).is_none());
    }

    #[test]
    fn low_rates_are_returned_unfiltered() {
        let x: Vec<f64> = (0..40).map(|i| (i as f64 * 0.3).sin() + 5.0).collect();
        let c = clean(&x, 4.0).unwrap();
        assert!(!c.filtered);
        assert_eq!(c.signal, x);
        let c = clean(&x, 6.0).unwrap();
        assert!(!c.filtered);
        let c = clean(&x, 6.5).unwrap();
        assert!(c.filtered);
        assert_ne!(c.signal, x);
        let s = process(&x, 4.0).unwrap();
        assert!(!s.filtered);
        assert!(s.warnings.iter().any(|w| w.contains("skipped")), "{s:?}");
    }

    #[test]
    fn clean_passes_slow_signals_and_removes_fast_ones() {
        let fs = 32.0;
        let x: Vec<f64> = (0..640)
            .map(|i| {
                let t = i as f64 / fs;
                5.0 + 0.5 * (2.0 * std::f64::consts::PI * 0.2 * t).sin()
                    + 0.5 * (2.0 * std::f64::consts::PI * 10.0 * t).sin()
            })
            .collect();
        let c = clean(&x, fs).unwrap().signal;
        for (i, v) in c.iter().enumerate().skip(64).take(512) {
            let t = i as f64 / fs;
            let slow = 5.0 + 0.5 * (2.0 * std::f64::consts::PI * 0.2 * t).sin();
            assert!((v - slow).abs() < 0.01, "{i}: {v} vs {slow}");
        }
    }

    #[test]
    fn tonic_and_phasic_of_a_constant_are_the_constant_and_zero() {
        let x = vec![7.0; 200];
        let (tonic, phasic) = phasic_highpass(&x, 10.0).unwrap();
        assert!(tonic.iter().all(|v| (v - 7.0).abs() < 1e-9));
        assert!(phasic.iter().all(|v| v.abs() < 1e-9));
    }

    #[test]
    fn finds_each_synthetic_scr_with_its_onset_and_amplitude() {
        let fs = 20.0;
        let onsets = [10.0, 25.0, 40.0, 55.0];
        let x = synthetic(fs, 75.0, &onsets, &[1.0, 0.8, 0.9, 0.7]);
        let s = process(&x, fs).unwrap();
        // NeuroKit2 0.2.13 on the same construction: peaks [222, 522, 822, 1122], onsets
        // [198, 498, 798, 1098], amplitudes [1.058, 0.856, 0.959, 0.747].
        let peaks: Vec<usize> = s.scrs.iter().map(|s| s.peak).collect();
        let onset_idx: Vec<Option<usize>> = s.scrs.iter().map(|s| s.onset).collect();
        assert_eq!(peaks, vec![222, 522, 822, 1122]);
        assert_eq!(onset_idx, vec![Some(198), Some(498), Some(798), Some(1098)]);
        for (scr, want) in s.scrs.iter().zip([1.058, 0.856, 0.959, 0.747]) {
            assert!((scr.amplitude.unwrap() - want).abs() < 5e-4, "{scr:?}");
            assert_eq!(scr.rise_time_s, Some(1.2));
            assert!(scr.recovery.unwrap() > scr.peak);
        }
        assert_eq!(s.scr_count, 4);
        assert!((s.scr_per_min - 4.0 / 1.25).abs() < 1e-12);
        assert!((s.scl_mean_us - 5.3).abs() < 0.3, "{}", s.scl_mean_us);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn the_ripple_between_distant_scrs_counts_as_neurokit2_counts_it() {
        // SCRs 40 s apart: the zero-phase 0.05 Hz high-pass leaves a slow hump between them
        // whose prominence is just above 10 % of the largest. NeuroKit2 0.2.13 reports the same
        // seven peaks: [422, 948, 1222, 1753, 2022, 2547, 2822].
        let fs = 20.0;
        let x = synthetic(
            fs,
            180.0,
            &[20.0, 60.0, 100.0, 140.0],
            &[1.0, 0.8, 0.9, 0.7],
        );
        let s = process(&x, fs).unwrap();
        let peaks: Vec<usize> = s.scrs.iter().map(|s| s.peak).collect();
        assert_eq!(peaks, vec![422, 948, 1222, 1753, 2022, 2547, 2822]);
    }

    #[test]
    fn the_threshold_is_relative_to_the_largest_prominence() {
        // Phasic signal given directly: prominences 10, 0.5 and 2 → 0.5 is below 10 %.
        let mut p = vec![0.0; 60];
        p[1] = 0.3; // a small bump before the first SCR, so that it has a trough before it
        for (c, h) in [(10, 10.0), (30, 0.5), (50, 2.0)] {
            for k in 0..5 {
                p[c - k] = h * (5 - k) as f64 / 5.0;
                p[c + k] = h * (5 - k) as f64 / 5.0;
            }
        }
        let scrs = peaks_neurokit(&p, 10.0, 0.1);
        let peaks: Vec<usize> = scrs.iter().map(|s| s.peak).collect();
        assert_eq!(peaks, vec![10, 50]);
        // Onset = nearest trough before the peak: the plateau midpoint between bumps.
        assert_eq!(scrs[0].onset, Some(3));
        assert_eq!(scrs[1].onset, Some(40));
        assert_eq!(scrs[0].amplitude, Some(10.0));
        assert_eq!(scrs[1].rise_time_s, Some(1.0));
        // Half recovery of the first: segment [10, 50) cut at its minimum (index 15 → offset 5);
        // cut segment [10, 8, 6, 4, 2], target 0 + 10/2 = 5: the closest value ≤ 5 is 4 (offset 3),
        // and 2 < 4.
        assert_eq!(scrs[0].recovery, Some(13));
        assert_eq!(scrs[0].recovery_time_s, Some(0.3));
        // With amplitude_min = 0.01 all four count (prominences 0.3, 10, 0.5, 2), the first without
        // onset.
        let all = peaks_neurokit(&p, 10.0, 0.01);
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].onset, None);
    }

    #[test]
    fn a_peak_before_any_trough_counts_without_amplitude() {
        // Rises from the start: the first peak has no trough before it.
        let p = [
            0.0, 1.0, 2.0, 1.0, 0.0, -1.0, 0.0, 3.0, 0.0, -0.5, -1.0, -0.5,
        ];
        let scrs = peaks_neurokit(&p, 1.0, 0.1);
        assert_eq!(scrs.len(), 2);
        assert_eq!(scrs[0].peak, 2);
        assert_eq!(scrs[0].onset, None);
        assert_eq!(scrs[0].amplitude, None);
        assert_eq!(scrs[0].rise_time_s, None);
        assert_eq!(scrs[0].recovery, None);
        assert_eq!(scrs[1].onset, Some(5));
        assert_eq!(scrs[1].amplitude, Some(4.0));
        // Segment [7, 12) cut at its minimum (offset 3): [3, 0, -0.5]; target 1 → 0 at offset 1,
        // and -0.5 < 0.
        assert_eq!(scrs[1].recovery, Some(8));
    }

    #[test]
    fn recovery_needs_a_value_below_the_closest_one() {
        // After the peak the signal only reaches the target at its minimum: no recovery.
        let p = [0.0, -1.0, 0.0, 4.0, 3.0, 1.0, 2.0, 5.0, 0.0];
        let scrs = peaks_neurokit(&p, 1.0, 0.1);
        assert_eq!(scrs[0].peak, 3);
        // Segment [3, 7) = [4, 3, 1, 2], cut at its minimum → [4, 3]; target 1.5: nothing ≤ it.
        assert_eq!(scrs[0].recovery, None);
        assert_eq!(scrs[0].recovery_time_s, None);
    }

    #[test]
    fn empty_constant_nan_and_short_inputs_do_not_panic() {
        assert_eq!(clean(&[], 32.0).unwrap_err(), EdaError::NoData);
        assert_eq!(clean(&[f64::NAN; 50], 32.0).unwrap_err(), EdaError::NoData);
        assert!(matches!(
            clean(&[1.0; 10], 32.0).unwrap_err(),
            EdaError::Filter(FilterError::TooShort { n: 10, padlen: 15 })
        ));
        assert!(matches!(
            process(&[1.0; 9], 4.0).unwrap_err(),
            EdaError::Filter(FilterError::TooShort { n: 9, padlen: 9 })
        ));
        assert_eq!(clean(&[1.0; 50], 0.0).unwrap_err(), EdaError::Rate(0.0));
        assert!(matches!(
            clean(&[1.0; 50], f64::NAN).unwrap_err(),
            EdaError::Rate(r) if r.is_nan()
        ));
        assert!(matches!(
            process(&[1.0; 50], 0.08).unwrap_err(),
            EdaError::Filter(FilterError::Cutoff { .. })
        ));
        let mut inf = vec![1.0; 50];
        inf[7] = f64::INFINITY;
        assert_eq!(
            clean(&inf, 32.0).unwrap_err(),
            EdaError::Infinite { index: 7 }
        );
        assert!(peaks_neurokit(&[], 32.0, 0.1).is_empty());
        assert!(peaks_neurokit(&[f64::NAN; 5], 32.0, 0.1).is_empty());

        // A constant record: no SCRs (NeuroKit2 counts rounding ripples), a warning says why.
        for fs in [4.0, 32.0, 1000.0] {
            let s = process(&vec![5.0; 3000], fs).unwrap();
            assert_eq!(s.scr_count, 0);
            // The 0.05 Hz poles sit close to z = 1 at high rates: rounding stays below 1e-8.
            assert!(
                (s.scl_mean_us - 5.0).abs() < 5e-8,
                "{fs}: {}",
                s.scl_mean_us
            );
            assert_eq!(s.scr_amp_mean_us, None);
            assert!(!s.warnings.is_empty(), "{fs}");
        }
    }

    #[test]
    fn nans_are_filled_forward_and_leading_ones_stay_missing() {
        let fs = 20.0;
        let mut x = synthetic(fs, 75.0, &[10.0, 25.0, 40.0, 55.0], &[1.0, 0.8, 0.9, 0.7]);
        let reference = process(&x, fs).unwrap();
        for v in &mut x[..10] {
            *v = f64::NAN;
        }
        x[600] = f64::NAN;
        let c = clean(&x, fs).unwrap();
        assert_eq!((c.missing, c.leading_missing), (11, 10));
        assert!(c.signal[..10].iter().all(|v| v.is_nan()));
        assert!(c.signal[10..].iter().all(|v| v.is_finite()));
        let (tonic, phasic) = phasic_highpass(&c.signal, fs).unwrap();
        assert!(tonic[..10].iter().chain(&phasic[..10]).all(|v| v.is_nan()));
        let s = process(&x, fs).unwrap();
        assert_eq!(s.scr_count, 4);
        let peaks: Vec<usize> = s.scrs.iter().map(|s| s.peak).collect();
        let want: Vec<usize> = reference.scrs.iter().map(|s| s.peak).collect();
        assert_eq!(peaks, want);
        assert!(s.scl_mean_us.is_finite());
        assert_eq!(s.warnings.len(), 2, "{:?} {:?}", s.warnings, s.scrs);
    }
}
