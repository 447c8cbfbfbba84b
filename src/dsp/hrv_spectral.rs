//! Heart-rate variability spectrum of one sliding window of beats, for the live features
//! (Task Force 1996, *Eur Heart J* 17:354–381: LF 0.04–0.15 Hz, HF 0.15–0.4 Hz, normalised units
//! LF/(LF + HF); SIGNALS.md §3.3 and §5).
//!
//! In: the corrected beats of the window, `(t, rr_ms, corrected)` oldest first (the RR window of
//! [`crate::dsp::rr`]: plausibility bounds and the Lipponen & Tarvainen 2019 artefact step have
//! run). Out: LF, HF (ms²), LF/HF, LF n.u. and HF n.u. (0–100), and the frequency of the highest
//! HF bin (Hz; with spontaneous breathing it follows the breathing rate).
//!
//! Method, the Task Force style of [`crate::dsp::hrv::frequency_taskforce`] made to slide:
//! 1. the intervals, placed at their beats' times, are interpolated by a not-a-knot cubic spline
//!    on a 4 Hz grid that **ends at the newest beat** and reaches back as far as the oldest beat
//!    of the window (no sample before the first or after the last beat: nothing is
//!    extrapolated);
//! 2. the least-squares line is removed;
//! 3. Welch: periodic Hann of 256 samples (64 s), overlap 128, nfft 256, one-sided density; the
//!    segments are laid from the newest sample back, so the newest data always count and the
//!    oldest remainder (under 32 s) is dropped. At least two segments (96 s) are needed;
//! 4. band power = Σ P(f_k)·Δf over the bins in [lo, hi), Δf = 1/64 Hz.
//!
//! Refusals ([`HrvSpectrumIssue`]), each a `null` with its reason, never a number from too little
//! data: a window under 96 s of beats; more than 5 % of its beats corrected by the artefact step
//! (Kubios and Lipponen & Tarvainen treat more as unreliable for spectra); a hole of more than
//! 3 s between consecutive beats (excluded beats or a dropout the spline would have to invent);
//! a mean heart rate under 48 bpm, where the beat series cannot carry 0.4 Hz (half the beat
//! rate): the HF band is not observable; and a spectrum without LF or HF power.

use super::spectrum::{Taper, WelchPlan};
use super::spline::CubicSpline;

/// Grid rate, Hz.
pub const GRID_HZ: f64 = 4.0;
/// Welch segment, samples (64 s at 4 Hz).
pub const SEGMENT: usize = 256;
/// Welch overlap, samples.
pub const OVERLAP: usize = 128;
/// Least span of beats, s: two Welch segments.
pub const MIN_SPAN_S: f64 = (SEGMENT + SEGMENT - OVERLAP) as f64 / GRID_HZ;
/// Most corrected beats in a window, share.
pub const MAX_CORRECTED: f64 = 0.05;
/// Longest time between consecutive beats, s.
pub const MAX_HOLE_S: f64 = 3.0;
/// Lowest mean heart rate, bpm (half the beat rate must reach the top of HF, 0.4 Hz).
pub const MIN_HR_BPM: f64 = 48.0;
/// LF band, Hz, half-open.
pub const LF_BAND: (f64, f64) = (0.04, 0.15);
/// HF band, Hz, half-open.
pub const HF_BAND: (f64, f64) = (0.15, 0.4);

/// The spectral indices of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HrvSpectrum {
    /// LF power, ms².
    pub lf_ms2: f64,
    /// HF power, ms².
    pub hf_ms2: f64,
    /// LF / HF.
    pub lf_hf: f64,
    /// 100 · LF / (LF + HF).
    pub lf_nu: f64,
    /// 100 · HF / (LF + HF).
    pub hf_nu: f64,
    /// Frequency of the highest bin in the HF band, Hz.
    pub hf_peak_hz: f64,
    /// Seconds of grid the spectrum used.
    pub used_s: f64,
}

/// Why a window gives no spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HrvSpectrumIssue {
    /// Under [`MIN_SPAN_S`] of beats (or no heart stream).
    ShortWindow,
    /// More than [`MAX_CORRECTED`] of the beats were corrected.
    CorrectedBeats,
    /// A hole of more than [`MAX_HOLE_S`] between beats.
    Gap,
    /// Mean heart rate under [`MIN_HR_BPM`].
    SlowHeart,
    /// No power in LF or HF (a constant series).
    NoPower,
    /// No good stream now (stale, lost or low quality).
    NoSignal,
}

impl HrvSpectrumIssue {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShortWindow => "short_window",
            Self::NoSignal => "no_signal",
            Self::CorrectedBeats => "corrected_beats",
            Self::Gap => "gap",
            Self::SlowHeart => "slow_heart",
            Self::NoPower => "no_power",
        }
    }
}

/// The plan and buffers of the window spectrum, made once per stream.
#[derive(Debug)]
pub struct HrvSpectral {
    plan: WelchPlan,
    t: Vec<f64>,
    rr: Vec<f64>,
    grid: Vec<f64>,
    power: Vec<f64>,
}

impl Default for HrvSpectral {
    fn default() -> Self {
        Self::new()
    }
}

impl HrvSpectral {
    /// A new estimator.
    pub fn new() -> Self {
        Self {
            plan: WelchPlan::new(SEGMENT, OVERLAP, SEGMENT, Taper::Hann)
                .expect("256/128/256 is a valid segmentation"),
            t: Vec::new(),
            rr: Vec::new(),
            grid: Vec::new(),
            power: Vec::new(),
        }
    }

    /// Forgets the last window's data held in the scratch buffers.
    pub fn clear(&mut self) {
        self.t.clear();
        self.rr.clear();
        self.grid.clear();
        self.power.clear();
    }

    /// The spectrum of the beats `(t, rr_ms, corrected)`, oldest first (module doc).
    pub fn compute(
        &mut self,
        beats: impl IntoIterator<Item = (f64, f64, bool)>,
    ) -> Result<HrvSpectrum, HrvSpectrumIssue> {
        self.t.clear();
        self.rr.clear();
        let mut corrected = 0usize;
        for (t, rr, c) in beats {
            if !(t.is_finite() && rr.is_finite() && rr > 0.0) {
                return Err(HrvSpectrumIssue::Gap);
            }
            if self.t.last().is_some_and(|&p| t <= p) {
                // Not strictly increasing: nothing a spline can pass through.
                return Err(HrvSpectrumIssue::Gap);
            }
            corrected += usize::from(c);
            self.t.push(t);
            self.rr.push(rr);
        }
        let n = self.t.len();
        let (Some(&first), Some(&last)) = (self.t.first(), self.t.last()) else {
            return Err(HrvSpectrumIssue::ShortWindow);
        };
        if last - first < MIN_SPAN_S || n < 4 {
            return Err(HrvSpectrumIssue::ShortWindow);
        }
        if self.t.windows(2).any(|w| w[1] - w[0] > MAX_HOLE_S) {
            return Err(HrvSpectrumIssue::Gap);
        }
        if corrected as f64 > MAX_CORRECTED * n as f64 {
            return Err(HrvSpectrumIssue::CorrectedBeats);
        }
        let mean_rr = self.rr.iter().sum::<f64>() / n as f64;
        if 60_000.0 / mean_rr < MIN_HR_BPM {
            return Err(HrvSpectrumIssue::SlowHeart);
        }
        // Times relative to the oldest beat keep the spline's arithmetic well conditioned.
        let rel: Vec<f64> = self.t.iter().map(|t| t - first).collect();
        let spline = CubicSpline::new(&rel, &self.rr).ok_or(HrvSpectrumIssue::Gap)?;
        let span = last - first;
        let samples = (span * GRID_HZ).floor() as usize + 1;
        let segments = self.plan.segments(samples);
        if segments < 2 {
            return Err(HrvSpectrumIssue::ShortWindow);
        }
        let used = SEGMENT + (segments - 1) * (SEGMENT - OVERLAP);
        // The newest `used` grid points, ending at the newest beat.
        self.grid.clear();
        self.grid
            .extend((0..used).map(|k| spline.eval(span - (used - 1 - k) as f64 / GRID_HZ)));
        detrend(&mut self.grid);
        if !self.plan.psd_into(&self.grid, GRID_HZ, &mut self.power) {
            return Err(HrvSpectrumIssue::ShortWindow);
        }
        let df = GRID_HZ / SEGMENT as f64;
        let band = |(lo, hi): (f64, f64)| -> f64 {
            self.power
                .iter()
                .enumerate()
                .filter(|(k, _)| {
                    let f = *k as f64 * df;
                    f >= lo && f < hi
                })
                .map(|(_, p)| p * df)
                .sum()
        };
        let (lf, hf) = (band(LF_BAND), band(HF_BAND));
        if !(lf > 0.0 && hf > 0.0 && lf.is_finite() && hf.is_finite()) {
            return Err(HrvSpectrumIssue::NoPower);
        }
        let peak = self
            .power
            .iter()
            .enumerate()
            .filter(|(k, _)| {
                let f = *k as f64 * df;
                f >= HF_BAND.0 && f < HF_BAND.1
            })
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(f64::NAN, |(k, _)| k as f64 * df);
        Ok(HrvSpectrum {
            lf_ms2: lf,
            hf_ms2: hf,
            lf_hf: lf / hf,
            lf_nu: 100.0 * lf / (lf + hf),
            hf_nu: 100.0 * hf / (lf + hf),
            hf_peak_hz: peak,
            used_s: used as f64 / GRID_HZ,
        })
    }
}

/// Removes the least-squares line of `y` (sample index as abscissa).
pub fn detrend(y: &mut [f64]) {
    let n = y.len();
    if n < 2 {
        return;
    }
    let nf = n as f64;
    let mx = (nf - 1.0) / 2.0;
    let my = y.iter().sum::<f64>() / nf;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in y.iter().enumerate() {
        let dx = i as f64 - mx;
        sxy += dx * (v - my);
        sxx += dx * dx;
    }
    let slope = sxy / sxx;
    for (i, v) in y.iter_mut().enumerate() {
        *v -= my + slope * (i as f64 - mx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beats whose intervals carry `a_lf` ms at 0.1 Hz and `a_hf` ms at `f_hf`, for `secs` s.
    fn beats(mean_rr: f64, a_lf: f64, a_hf: f64, f_hf: f64, secs: f64) -> Vec<(f64, f64, bool)> {
        let tau = 2.0 * std::f64::consts::PI;
        let mut t = 0.0;
        let mut out = Vec::new();
        while t < secs {
            let rr = mean_rr + a_lf * (tau * 0.1 * t).sin() + a_hf * (tau * f_hf * t).sin();
            t += rr / 1000.0;
            out.push((t, rr, false));
        }
        out
    }

    #[test]
    fn sines_land_in_their_bands_with_their_power() {
        // A sine of amplitude A has power A²/2: LF 20² / 2 = 200 ms², HF 30² / 2 = 450 ms².
        let b = beats(900.0, 20.0, 30.0, 0.25, 130.0);
        let s = HrvSpectral::new().compute(b).unwrap();
        assert!((s.lf_ms2 / 200.0 - 1.0).abs() < 0.15, "{s:?}");
        assert!((s.hf_ms2 / 450.0 - 1.0).abs() < 0.15, "{s:?}");
        assert!((s.hf_peak_hz - 0.25).abs() <= 1.0 / 64.0, "{s:?}");
        assert!((s.lf_nu + s.hf_nu - 100.0).abs() < 1e-9);
        assert_eq!(s.used_s, 128.0);
    }

    #[test]
    fn the_hf_peak_follows_the_breathing_rate() {
        for f in [0.18, 0.22, 0.3, 0.35] {
            let s = HrvSpectral::new()
                .compute(beats(800.0, 5.0, 25.0, f, 130.0))
                .unwrap();
            assert!((s.hf_peak_hz - f).abs() <= 1.0 / 64.0, "{f}: {s:?}");
        }
    }

    #[test]
    fn refuses_short_windows_holes_corrections_and_slow_hearts() {
        let mut h = HrvSpectral::new();
        let short = beats(900.0, 20.0, 30.0, 0.25, 90.0);
        assert_eq!(h.compute(short), Err(HrvSpectrumIssue::ShortWindow));
        assert_eq!(h.compute(Vec::new()), Err(HrvSpectrumIssue::ShortWindow));
        let mut holed = beats(900.0, 20.0, 30.0, 0.25, 130.0);
        holed.drain(50..55);
        assert_eq!(h.compute(holed), Err(HrvSpectrumIssue::Gap));
        let mut fixed = beats(900.0, 20.0, 30.0, 0.25, 130.0);
        let n = fixed.len();
        for b in fixed.iter_mut().take(n / 20 + 1) {
            b.2 = true;
        }
        assert_eq!(h.compute(fixed), Err(HrvSpectrumIssue::CorrectedBeats));
        let slow = beats(1400.0, 20.0, 30.0, 0.2, 130.0);
        assert_eq!(h.compute(slow), Err(HrvSpectrumIssue::SlowHeart));
        let flat = beats(900.0, 0.0, 0.0, 0.25, 130.0);
        assert_eq!(h.compute(flat), Err(HrvSpectrumIssue::NoPower));
        let mut nan = beats(900.0, 20.0, 30.0, 0.25, 130.0);
        nan[3].1 = f64::NAN;
        assert_eq!(h.compute(nan), Err(HrvSpectrumIssue::Gap));
    }

    #[test]
    fn agrees_with_the_offline_task_force_path_within_ten_percent() {
        // 100 s of beats: both average two Hann segments of 256, but the offline grid starts
        // at the first beat and the live one ends at the last, so the segments cover stretches
        // shifted by up to 36 s: estimates of the same spectrum, not the same numbers.
        let b = beats(850.0, 25.0, 20.0, 0.28, 100.0);
        let rri: Vec<f64> = b.iter().map(|x| x.1).collect();
        let live = HrvSpectral::new().compute(b).unwrap();
        let off = super::super::hrv::frequency_taskforce(&rri).unwrap();
        let (lf, hf) = (off.lf.unwrap(), off.hf.unwrap());
        assert!((live.lf_ms2 / lf - 1.0).abs() < 0.1, "{live:?} {lf}");
        assert!((live.hf_ms2 / hf - 1.0).abs() < 0.1, "{live:?} {hf}");
    }
}
