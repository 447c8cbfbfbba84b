//! Welch power spectral density on realfft, scipy `signal.welch` semantics (SIGNALS.md §3.2–3.3).
//!
//! A periodic window of `nperseg` samples (Hann by default; Blackman for EDASymp, scipy's
//! `get_window("blackman", n)`: 0.42 − 0.5·cos(2πj/n) + 0.08·cos(4πj/n)), segments stepped by `nperseg − noverlap` (full
//! segments only), each zero-padded to `nfft`, no per-segment detrending, one-sided density
//! `|X|² / (fs · Σw²)` doubled except at DC and (for even `nfft`) Nyquist, averaged with the mean.
//! Frequencies are `k · (1 / (nfft · (1/fs)))`, the exact expression of numpy's `rfftfreq`.
//! Units: input in its unit u, `fs` in Hz; output in u²/Hz.

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::{Arc, Mutex, OnceLock};

/// The taper of each segment (periodic, as scipy's `get_window` gives for spectra).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taper {
    /// Hann: 0.5 − 0.5·cos(2πj/n).
    Hann,
    /// Blackman: 0.42 − 0.5·cos(2πj/n) + 0.08·cos(4πj/n).
    Blackman,
}

impl Taper {
    /// The `n` periodic window values.
    pub fn values(self, n: usize) -> Vec<f64> {
        let pi = std::f64::consts::PI;
        (0..n)
            .map(|j| {
                let a = 2.0 * pi * j as f64 / n as f64;
                match self {
                    Self::Hann => 0.5 - 0.5 * a.cos(),
                    Self::Blackman => 0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos(),
                }
            })
            .collect()
    }
}

/// One planner for the process: a plan (its twiddle factors) is made once per length and shared
/// by every participant's estimator.
fn planner() -> &'static Mutex<RealFftPlanner<f64>> {
    static PLANNER: OnceLock<Mutex<RealFftPlanner<f64>>> = OnceLock::new();
    PLANNER.get_or_init(|| Mutex::new(RealFftPlanner::new()))
}

/// A Welch estimator with its FFT plan, window and buffers made once, for repeated spectra of
/// the same segmentation (the live features compute one every few seconds per participant).
pub struct WelchPlan {
    nperseg: usize,
    noverlap: usize,
    nfft: usize,
    window: Vec<f64>,
    wss: f64,
    fft: Arc<dyn RealToComplex<f64>>,
    input: Vec<f64>,
    spectrum: Vec<realfft::num_complex::Complex<f64>>,
    scratch: Vec<realfft::num_complex::Complex<f64>>,
}

impl std::fmt::Debug for WelchPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WelchPlan")
            .field("nperseg", &self.nperseg)
            .field("noverlap", &self.noverlap)
            .field("nfft", &self.nfft)
            .finish_non_exhaustive()
    }
}

impl WelchPlan {
    /// A plan; None if `nperseg` is 0, `noverlap >= nperseg` or `nfft < nperseg`.
    pub fn new(nperseg: usize, noverlap: usize, nfft: usize, taper: Taper) -> Option<Self> {
        if nperseg == 0 || nfft < nperseg || noverlap >= nperseg {
            return None;
        }
        let window = taper.values(nperseg);
        let wss = window.iter().map(|w| w * w).sum();
        let fft = planner()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .plan_fft_forward(nfft);
        Some(Self {
            nperseg,
            noverlap,
            nfft,
            window,
            wss,
            input: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
        })
    }

    /// Segments of `n` samples this plan averages (full segments only).
    pub fn segments(&self, n: usize) -> usize {
        if n < self.nperseg {
            0
        } else {
            (n - self.noverlap) / (self.nperseg - self.noverlap)
        }
    }

    /// The one-sided density of `x` at `fs` into `power` (resized to `nfft/2 + 1`, u²/Hz);
    /// false if `x` is shorter than one segment. Bin `k` is at `k · fs / nfft` Hz.
    pub fn psd_into(&mut self, x: &[f64], fs: f64, power: &mut Vec<f64>) -> bool {
        let segments = self.segments(x.len());
        if segments == 0 {
            return false;
        }
        let step = self.nperseg - self.noverlap;
        let bins = self.nfft / 2 + 1;
        power.clear();
        power.resize(bins, 0.0);
        for s in 0..segments {
            let seg = &x[s * step..s * step + self.nperseg];
            self.input.iter_mut().for_each(|v| *v = 0.0);
            for ((dst, &v), &w) in self.input.iter_mut().zip(seg).zip(&self.window) {
                *dst = v * w;
            }
            // Lengths come from the plan, so this cannot fail.
            if self
                .fft
                .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
                .is_err()
            {
                return false;
            }
            for (a, c) in power.iter_mut().zip(&self.spectrum) {
                *a += c.norm_sqr();
            }
        }
        let scale = 1.0 / (fs * self.wss) / segments as f64;
        let nyquist_bin = self.nfft.is_multiple_of(2).then_some(bins - 1);
        for (k, a) in power.iter_mut().enumerate() {
            let one_sided = if k == 0 || Some(k) == nyquist_bin {
                1.0
            } else {
                2.0
            };
            *a *= scale * one_sided;
        }
        true
    }
}

/// A one-sided PSD.
#[derive(Debug, Clone, PartialEq)]
pub struct Psd {
    /// Bin frequencies, Hz.
    pub freq: Vec<f64>,
    /// Power density per bin, u²/Hz.
    pub power: Vec<f64>,
}

/// Welch PSD of `x` with a Hann taper; None if `nperseg` is 0 or longer than `x`, or
/// `nfft < nperseg`.
pub fn welch(x: &[f64], fs: f64, nperseg: usize, noverlap: usize, nfft: usize) -> Option<Psd> {
    if nperseg > x.len() {
        return None;
    }
    let mut plan = WelchPlan::new(nperseg, noverlap, nfft, Taper::Hann)?;
    let mut power = Vec::new();
    if !plan.psd_into(x, fs, &mut power) {
        return None;
    }
    let val = 1.0 / (nfft as f64 * (1.0 / fs));
    let freq = (0..power.len()).map(|k| k as f64 * val).collect();
    Some(Psd { freq, power })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_has_its_power_at_its_frequency_and_parseval_holds() {
        // 4 Hz sampling, 0.25 Hz sine of amplitude 10 ms: power = A²/2 = 50 ms².
        let fs = 4.0;
        let x: Vec<f64> = (0..1200)
            .map(|i| 10.0 * (2.0 * std::f64::consts::PI * 0.25 * i as f64 / fs).sin())
            .collect();
        let p = welch(&x, fs, 256, 128, 256).unwrap();
        let df = p.freq[1] - p.freq[0];
        let total: f64 = p.power.iter().sum::<f64>() * df;
        assert!((total - 50.0).abs() < 1.0, "{total}");
        let peak = p
            .power
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert!((p.freq[peak] - 0.25).abs() < 1e-12);
    }

    #[test]
    fn refuses_impossible_segmentations() {
        assert!(welch(&[1.0; 10], 4.0, 20, 10, 20).is_none());
        assert!(welch(&[1.0; 10], 4.0, 0, 0, 8).is_none());
    }
}
