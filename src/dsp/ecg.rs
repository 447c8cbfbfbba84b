//! ECG cleaning and R-peak detection, NeuroKit2 0.2.13's defaults (SIGNALS.md §2.1–2.2).
//!
//! - [`clean`]: `ecg_clean(method="neurokit")`: NaNs filled forward then backward; Butterworth
//!   high-pass 0.5 Hz, order 5, zero-phase; then the powerline moving mean of `int(fs/50)` taps
//!   (2 below 100 Hz), zero-phase.
//! - [`peaks_neurokit`]: `ecg_peaks(method="neurokit", correct_artifacts=False)`: the absolute
//!   gradient smoothed by a 0.1 s boxcar, compared with 1.5 × its 0.75 s boxcar; QRS candidates
//!   are the runs above it, those shorter than 0.4 × the mean run length of the whole record are
//!   dropped, the most prominent local maximum of each run is the R peak, and a peak must be more
//!   than `rint(0.3·fs)` samples after the previous one (which starts at sample 0, so no beat is
//!   reported in the first 0.3 s).
//!
//! Units: `fs` in Hz, ECG in mV (any unit works: the detector is scale-free); peaks are sample
//! indices. The detector looks at the whole record (mean run length) and ahead in time (centred
//! boxcars): it is the offline reference, not the streaming detector.

use super::filter::{FilterError, Pass, Sos, moving_average_filtfilt};
use super::peaks::{boxcar, gradient, most_prominent};

/// Why an ECG could not be processed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EcgError {
    /// The signal has no finite sample.
    #[error("the ECG has no finite sample")]
    NoData,
    /// The filters could not run (rate too low, record too short).
    #[error("ECG filter: {0}")]
    Filter(#[from] FilterError),
}

/// Replaces NaNs by the previous finite value, and leading NaNs by the first finite one
/// (pandas `ffill` then `bfill`, as NeuroKit2's `signal_fillmissing(method="both")`).
pub fn fill_forward_backward(x: &[f64]) -> Option<Vec<f64>> {
    let first = x.iter().copied().find(|v| !v.is_nan())?;
    let mut last = first;
    Some(
        x.iter()
            .map(|&v| {
                if !v.is_nan() {
                    last = v;
                }
                last
            })
            .collect(),
    )
}

/// Powerline moving-mean length NeuroKit2 uses: `int(fs / powerline)` taps, 2 below 100 Hz.
pub fn powerline_taps(fs: f64, powerline_hz: f64) -> usize {
    if fs >= 100.0 {
        ((fs / powerline_hz) as usize).max(1)
    } else {
        2
    }
}

/// `ecg_clean(x, fs, method="neurokit")` with mains frequency `powerline_hz` (NeuroKit2: 50).
pub fn clean(x: &[f64], fs: f64, powerline_hz: f64) -> Result<Vec<f64>, EcgError> {
    let filled = fill_forward_backward(x).ok_or(EcgError::NoData)?;
    let hp = Sos::butterworth(Pass::High, 5, fs, 0.5)?.filtfilt(&filled)?;
    Ok(moving_average_filtfilt(
        &hp,
        powerline_taps(fs, powerline_hz),
    )?)
}

/// R-peak indices of a cleaned ECG, NeuroKit2's default detector (no artifact correction).
pub fn peaks_neurokit(clean: &[f64], fs: f64) -> Vec<usize> {
    let n = clean.len();
    let smooth_w = (0.1 * fs).round_ties_even() as usize;
    let avg_w = (0.75 * fs).round_ties_even() as usize;
    // NeuroKit2 refuses smoothing windows longer than the signal; so does this.
    if n < 2 || smooth_w < 1 || avg_w > n {
        return Vec::new();
    }
    let absgrad: Vec<f64> = gradient(clean).into_iter().map(f64::abs).collect();
    let smooth = boxcar(&absgrad, smooth_w);
    let avg = boxcar(&smooth, avg_w);
    let mindelay = (fs * 0.3).round_ties_even() as usize;
    let q: Vec<bool> = smooth.iter().zip(&avg).map(|(s, a)| *s > 1.5 * a).collect();
    let begs: Vec<usize> = (0..n - 1).filter(|&i| !q[i] && q[i + 1]).collect();
    let Some(&first_beg) = begs.first() else {
        return Vec::new();
    };
    let ends: Vec<usize> = (0..n - 1)
        .filter(|&i| q[i] && !q[i + 1] && i > first_beg)
        .collect();
    let pairs = begs.len().min(ends.len());
    if pairs == 0 {
        return Vec::new();
    }
    let mean_len = begs
        .iter()
        .zip(&ends)
        .take(pairs)
        .map(|(b, e)| *e as f64 - *b as f64)
        .sum::<f64>()
        / pairs as f64;
    let min_len = mean_len * 0.4;
    let mut peaks = Vec::new();
    let mut last = 0usize;
    for (&b, &e) in begs.iter().zip(&ends).take(pairs) {
        // NeuroKit2 compares the signed length; an end before its begin gives a negative length.
        if (e as f64 - b as f64) < min_len || e <= b {
            continue;
        }
        let seg = &clean[b..e];
        if let Some(m) = most_prominent(seg) {
            let peak = b + m;
            if peak > last && peak - last > mindelay {
                peaks.push(peak);
                last = peak;
            }
        }
    }
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_nans_forward_then_backward() {
        let x = [f64::NAN, 1.0, f64::NAN, 3.0, f64::NAN];
        assert_eq!(
            fill_forward_backward(&x).unwrap(),
            vec![1.0, 1.0, 1.0, 3.0, 3.0]
        );
        assert!(fill_forward_backward(&[f64::NAN; 3]).is_none());
    }

    #[test]
    fn powerline_taps_like_neurokit() {
        assert_eq!(powerline_taps(1000.0, 50.0), 20);
        assert_eq!(powerline_taps(360.0, 50.0), 7);
        assert_eq!(powerline_taps(2048.0, 50.0), 40);
        assert_eq!(powerline_taps(99.0, 50.0), 2);
    }

    #[test]
    fn finds_spikes_of_a_synthetic_ecg_after_the_first_300_ms() {
        // Narrow triangular "R waves" every 0.8 s at 500 Hz on a small baseline wander.
        let fs = 500.0;
        let n = 10 * 500;
        let beats: Vec<usize> = (0..12)
            .map(|k| 100 + k * 400)
            .filter(|&b| b < n - 10)
            .collect();
        let x: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                let spike: f64 = beats
                    .iter()
                    .map(|&b| (1.0 - (i as f64 - b as f64).abs() / 8.0).max(0.0))
                    .sum();
                spike + 0.05 * (2.0 * std::f64::consts::PI * 0.3 * t).sin()
            })
            .collect();
        let c = clean(&x, fs, 50.0).unwrap();
        let p = peaks_neurokit(&c, fs);
        // The beat at 0.2 s falls inside NeuroKit2's initial 0.3 s and is not reported.
        let expected: Vec<usize> = beats.iter().copied().filter(|&b| b > 150).collect();
        assert_eq!(p.len(), expected.len(), "{p:?}");
        for (a, b) in p.iter().zip(&expected) {
            assert!(a.abs_diff(*b) <= 2, "{p:?} vs {beats:?}");
        }
    }
}
