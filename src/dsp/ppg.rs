//! PPG cleaning and systolic-peak detection, NeuroKit2 0.2.13's defaults (SIGNALS.md §2.4):
//! the offline reference behind `attune analyze --kind ppg --method neurokit`.
//!
//! - [`clean_elgendi`]: `ppg_clean(method="elgendi")`: NaNs filled forward then backward
//!   (`signal_fillmissing(method="both")`), then the Butterworth band-pass 0.5–8 Hz of order 2
//!   (4 poles, the LP→BP design of SIGNALS.md §1.1, not HP × LP), zero-phase.
//! - [`peaks_elgendi`]: `ppg_findpeaks(method="elgendi")` = `ppg_peaks` with its defaults
//!   (Elgendi et al. 2013, *PLoS ONE* 8:e76585): `s = max(x, 0)²`; `ma_peak` and `ma_beat` =
//!   centred boxcar means of `s` over `rint(0.111·fs)` and `rint(0.667·fs)` samples (scipy
//!   `uniform_filter1d`, edges replicated: NeuroKit2's `signal_smooth(kernel="boxcar")`);
//!   waves = runs where `ma_peak > ma_beat + 0.02·mean(s)` (the mean over the whole record);
//!   waves shorter than `rint(0.111·fs)` samples are dropped; the peak of a wave is its most
//!   prominent local maximum of the *cleaned PPG* (scipy `find_peaks` semantics over
//!   `x[begin .. end)`), kept if it is more than `rint(0.3·fs)` samples after the previous
//!   peak, which starts at sample 0 (so no beat is reported in the first 0.3 s).
//!
//! The detector looks at the whole record (mean of `s`) and ahead in time (centred boxcars): it
//! is the offline reference, not a streaming detector. Differences from NeuroKit2: a record with
//! no wave gives no peaks (NeuroKit2 raises `IndexError`); a record shorter than the beat window,
//! a rate below about 4.5 Hz (`rint(0.111·fs)` = 0 samples) or a non-finite sample are typed errors
//! ([`PpgError`]) where NeuroKit2 raises or silently returns nothing.
//!
//! Units: `fs` in Hz; PPG in any unit (the detector is scale-free); peaks are sample indices.
//!
//! Ported from NeuroKit2 0.2.13 (`ppg/ppg_clean.py`, `ppg/ppg_findpeaks.py`, `ppg/ppg_peaks.py`,
//! `signal/signal_fillmissing.py`, `signal/signal_filter.py`, `signal/signal_smooth.py`),
//! © the NeuroKit2 developers, MIT licence. Reference values:
//! `fixtures/reference/neurokit2-0.2.13.json` (entries of kind `ppg`).

use super::ecg::fill_forward_backward;
use super::eda_nk::numpy_sum;
use super::filter::{FilterError, Sos};
use super::peaks::{boxcar, most_prominent};

/// Elgendi's peak window (moving average of the systolic peak), s.
pub const PEAK_WINDOW_S: f64 = 0.111;
/// Elgendi's beat window (moving average of one beat), s.
pub const BEAT_WINDOW_S: f64 = 0.667;
/// Offset added to the beat average, as a fraction of the mean squared signal.
pub const BEAT_OFFSET: f64 = 0.02;
/// Minimum distance between peaks, s.
pub const MIN_DELAY_S: f64 = 0.3;
/// Band-pass edges of `ppg_clean(method="elgendi")`, Hz.
pub const BAND_HZ: (f64, f64) = (0.5, 8.0);

/// Why a PPG record could not be processed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PpgError {
    /// The record has no finite sample.
    #[error("the PPG record has no finite sample")]
    NoData,
    /// A sample given to the detector is not finite (the cleaner never produces one).
    #[error("PPG sample {index} is not finite")]
    NonFinite {
        /// Index of the first non-finite sample.
        index: usize,
    },
    /// The rate is not a positive finite number, or too low for a 0.111 s window.
    #[error(
        "PPG sampling rate {0} Hz is not usable (the peak detector needs about 4.5 Hz or more)"
    )]
    Rate(f64),
    /// The record is shorter than the 0.667 s beat window.
    #[error("{n} PPG samples are fewer than the beat window of {need} samples")]
    TooShort {
        /// Samples given.
        n: usize,
        /// Samples needed.
        need: usize,
    },
    /// The band-pass could not be designed (fs ≤ 16 Hz) or run (record too short).
    #[error("PPG filter: {0}")]
    Filter(#[from] FilterError),
}

/// `ppg_clean(x, fs, method="elgendi")`.
pub fn clean_elgendi(x: &[f64], fs: f64) -> Result<Vec<f64>, PpgError> {
    if !(fs.is_finite() && fs > 0.0) {
        return Err(PpgError::Rate(fs));
    }
    if let Some(index) = x.iter().position(|v| v.is_infinite()) {
        return Err(PpgError::NonFinite { index });
    }
    let filled = fill_forward_backward(x).ok_or(PpgError::NoData)?;
    let sos = Sos::butterworth_bandpass2(BAND_HZ.0, BAND_HZ.1, fs)?;
    Ok(sos.filtfilt(&filled)?)
}

/// `ppg_findpeaks(clean, fs, method="elgendi")`: systolic peak indices, increasing.
pub fn peaks_elgendi(clean: &[f64], fs: f64) -> Result<Vec<usize>, PpgError> {
    let rint = |seconds: f64| (seconds * fs).round_ties_even();
    if !(fs.is_finite() && fs > 0.0) || rint(PEAK_WINDOW_S) < 1.0 {
        return Err(PpgError::Rate(fs));
    }
    let peak_w = rint(PEAK_WINDOW_S) as usize;
    let beat_w = rint(BEAT_WINDOW_S) as usize;
    let min_delay = rint(MIN_DELAY_S) as usize;
    let n = clean.len();
    // NeuroKit2's signal_smooth refuses windows longer than the signal.
    if beat_w > n {
        return Err(PpgError::TooShort { n, need: beat_w });
    }
    if let Some(index) = clean.iter().position(|v| !v.is_finite()) {
        return Err(PpgError::NonFinite { index });
    }
    let sqrd: Vec<f64> = clean
        .iter()
        .map(|&v| {
            let v = if v < 0.0 { 0.0 } else { v };
            v * v
        })
        .collect();
    let ma_peak = boxcar(&sqrd, peak_w);
    let ma_beat = boxcar(&sqrd, beat_w);
    let offset = BEAT_OFFSET * (numpy_sum(&sqrd) / n as f64);
    let waves: Vec<bool> = ma_peak
        .iter()
        .zip(&ma_beat)
        .map(|(p, b)| *p > b + offset)
        .collect();
    let begs: Vec<usize> = (0..n.saturating_sub(1))
        .filter(|&i| !waves[i] && waves[i + 1])
        .collect();
    let Some(&first_beg) = begs.first() else {
        return Ok(Vec::new());
    };
    let ends: Vec<usize> = (0..n - 1)
        .filter(|&i| waves[i] && !waves[i + 1] && i > first_beg)
        .collect();
    let mut peaks = Vec::new();
    let mut last = 0usize;
    for (&beg, &end) in begs.iter().zip(&ends) {
        // Waves alternate, so end > beg; NeuroKit2 compares the signed length.
        if end <= beg || end - beg < peak_w {
            continue;
        }
        let seg = &clean[beg..end];
        if let Some(m) = most_prominent(seg) {
            let peak = beg + m;
            if peak > last && peak - last > min_delay {
                peaks.push(peak);
                last = peak;
            }
        }
    }
    Ok(peaks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PPG-like pulse train: a skewed bump per beat at `hr` bpm, with baseline wander.
    fn pulses(fs: f64, seconds: f64, hr: f64) -> (Vec<f64>, Vec<f64>) {
        let period = 60.0 / hr;
        let n = (fs * seconds) as usize;
        let x = (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                // Beats at (k + 0.45)·period: the first one after NeuroKit2's initial 0.3 s.
                let phase = (t % period) / period - 0.2;
                let pulse = (-((phase - 0.25) / 0.08).powi(2)).exp()
                    + 0.3 * (-((phase - 0.55) / 0.1).powi(2)).exp();
                pulse + 0.2 * (2.0 * std::f64::consts::PI * 0.1 * t).sin()
            })
            .collect();
        let beats = (0..)
            .map(|k| (k as f64 + 0.45) * period)
            .take_while(|&t| t < seconds)
            .collect();
        (x, beats)
    }

    #[test]
    fn window_sizes_round_half_to_even_like_numpy_rint() {
        // 0.111·256 = 28.416 → 28; 0.667·256 = 170.75 → 171; 0.3·256 = 76.8 → 77.
        let r = |s: f64, fs: f64| (s * fs).round_ties_even() as usize;
        assert_eq!(
            (r(PEAK_WINDOW_S, 256.0), r(BEAT_WINDOW_S, 256.0)),
            (28, 171)
        );
        assert_eq!(r(MIN_DELAY_S, 256.0), 77);
        assert_eq!(r(MIN_DELAY_S, 25.0), 8); // 7.5 → 8 (even)
        assert_eq!(r(PEAK_WINDOW_S, 1000.0), 111);
    }

    #[test]
    fn finds_one_peak_per_synthetic_pulse() {
        for fs in [50.0, 100.0, 256.0, 1000.0] {
            let (x, beats) = pulses(fs, 30.0, 72.0);
            let c = clean_elgendi(&x, fs).unwrap();
            let p = peaks_elgendi(&c, fs).unwrap();
            assert_eq!(p.len(), beats.len(), "fs {fs}: {p:?}");
            for (&pk, &t) in p.iter().zip(&beats) {
                let err = (pk as f64 / fs - t).abs();
                assert!(err < 0.05, "fs {fs}: peak {pk} vs beat at {t} s");
            }
        }
    }

    #[test]
    fn the_first_peak_must_be_more_than_300_ms_in() {
        // A hand-made cleaned signal with narrow pulses at samples 20, 120, 220 (fs = 100 Hz):
        // the one at 20 (0.2 s) is not more than rint(0.3·100) = 30 samples after sample 0.
        let fs = 100.0;
        let mut x = vec![0.0; 300];
        for c in [20usize, 120, 220] {
            for k in 0..8 {
                let v = 1.0 - k as f64 / 8.0;
                x[c + k] = v;
                x[c - k] = v;
            }
        }
        assert_eq!(peaks_elgendi(&x, fs).unwrap(), vec![120, 220]);
    }

    #[test]
    fn nans_are_filled_and_bad_inputs_are_errors() {
        let fs = 100.0;
        let (mut x, beats) = pulses(fs, 20.0, 60.0);
        x[0] = f64::NAN;
        x[700] = f64::NAN;
        let c = clean_elgendi(&x, fs).unwrap();
        assert!(c.iter().all(|v| v.is_finite()));
        assert_eq!(peaks_elgendi(&c, fs).unwrap().len(), beats.len());

        assert_eq!(clean_elgendi(&[], fs).unwrap_err(), PpgError::NoData);
        assert_eq!(
            clean_elgendi(&[f64::NAN; 100], fs).unwrap_err(),
            PpgError::NoData
        );
        assert!(matches!(
            clean_elgendi(&[1.0; 15], fs).unwrap_err(),
            PpgError::Filter(FilterError::TooShort { n: 15, padlen: 15 })
        ));
        assert!(matches!(
            clean_elgendi(&[1.0; 100], 16.0).unwrap_err(),
            PpgError::Filter(FilterError::Band { .. })
        ));
        assert_eq!(
            clean_elgendi(&[1.0; 100], -1.0).unwrap_err(),
            PpgError::Rate(-1.0)
        );
        assert_eq!(
            peaks_elgendi(&[0.0; 66], fs).unwrap_err(),
            PpgError::TooShort { n: 66, need: 67 }
        );
        assert_eq!(peaks_elgendi(&[], 4.0).unwrap_err(), PpgError::Rate(4.0));
        let mut y = vec![0.0; 100];
        y[3] = f64::NAN;
        assert_eq!(
            peaks_elgendi(&y, fs).unwrap_err(),
            PpgError::NonFinite { index: 3 }
        );
    }

    #[test]
    fn flat_and_negative_signals_have_no_peaks() {
        let fs = 100.0;
        assert!(peaks_elgendi(&[0.0; 500], fs).unwrap().is_empty());
        assert!(peaks_elgendi(&[-1.0; 500], fs).unwrap().is_empty());
        let c = clean_elgendi(&[3.0; 500], fs).unwrap();
        assert!(c.iter().all(|v| v.abs() < 1e-9));
        assert!(peaks_elgendi(&c, fs).is_ok());
        // Exactly 67 samples: the shortest record the beat window allows.
        assert!(peaks_elgendi(&[0.5; 67], fs).unwrap().is_empty());
    }
}
