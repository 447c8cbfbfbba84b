//! Welch power spectral density on realfft, scipy `signal.welch` semantics (SIGNALS.md §3.2–3.3).
//!
//! Periodic Hann window of `nperseg` samples, segments stepped by `nperseg − noverlap` (full
//! segments only), each zero-padded to `nfft`, no per-segment detrending, one-sided density
//! `|X|² / (fs · Σw²)` doubled except at DC and (for even `nfft`) Nyquist, averaged with the mean.
//! Frequencies are `k · (1 / (nfft · (1/fs)))`, the exact expression of numpy's `rfftfreq`.
//! Units: input in its unit u, `fs` in Hz; output in u²/Hz.

use realfft::RealFftPlanner;

/// A one-sided PSD.
#[derive(Debug, Clone, PartialEq)]
pub struct Psd {
    /// Bin frequencies, Hz.
    pub freq: Vec<f64>,
    /// Power density per bin, u²/Hz.
    pub power: Vec<f64>,
}

/// Welch PSD of `x`; None if `nperseg` is 0 or longer than `x`, or `nfft < nperseg`.
pub fn welch(x: &[f64], fs: f64, nperseg: usize, noverlap: usize, nfft: usize) -> Option<Psd> {
    let n = x.len();
    if nperseg == 0 || nperseg > n || nfft < nperseg || noverlap >= nperseg {
        return None;
    }
    let step = nperseg - noverlap;
    let segments = (n - noverlap) / step;
    let pi = std::f64::consts::PI;
    let window: Vec<f64> = (0..nperseg)
        .map(|j| 0.5 - 0.5 * (2.0 * pi * j as f64 / nperseg as f64).cos())
        .collect();
    let wss: f64 = window.iter().map(|w| w * w).sum();
    let scale = 1.0 / (fs * wss);
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(nfft);
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let bins = nfft / 2 + 1;
    let mut acc = vec![0.0; bins];
    for s in 0..segments {
        let seg = &x[s * step..s * step + nperseg];
        input.iter_mut().for_each(|v| *v = 0.0);
        for ((dst, &v), &w) in input.iter_mut().zip(seg).zip(&window) {
            *dst = v * w;
        }
        // Lengths come from the plan, so this cannot fail.
        if fft
            .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
            .is_err()
        {
            return None;
        }
        for (a, c) in acc.iter_mut().zip(&spectrum) {
            *a += c.norm_sqr();
        }
    }
    let nyquist_bin = nfft.is_multiple_of(2).then_some(bins - 1);
    let power = acc
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let one_sided = if k == 0 || Some(k) == nyquist_bin {
                1.0
            } else {
                2.0
            };
            a * scale * one_sided / segments as f64
        })
        .collect();
    let val = 1.0 / (nfft as f64 * (1.0 / fs));
    let freq = (0..bins).map(|k| k as f64 * val).collect();
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
