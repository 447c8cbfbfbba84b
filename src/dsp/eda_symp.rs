//! EDASymp and EDASympn, the sympathetic share of skin conductance in the frequency domain
//! (Posada-Quintero, Florian, Orjuela-Cañón, Aljama-Corrales, Charleston-Villalobos & Chon 2016,
//! *Ann Biomed Eng* 44:3124–3135), on sliding windows.
//!
//! The paper's method, step by step, and what attune does at each:
//! 1. low-pass: 8th-order Chebyshev type I at 0.8 Hz (attune: the same design, 1 dB ripple as
//!    NeuroKit2 chooses; causal, run continuously on the stream and primed with its first sample);
//! 2. downsample to 2 Hz (the paper from 400 Hz by decimation; attune from any rate of at least
//!    2 Hz by linear interpolation of the filtered samples at the times k/2 s of the stream's
//!    device clock, which is exact sample picking when the rate is a multiple of 2 Hz);
//! 3. high-pass: 8th-order Butterworth at 0.01 Hz (attune: zero-phase, `sosfiltfilt` with scipy's
//!    padding, applied to each window on its own, so a window never depends on data before it);
//! 4. Welch periodogram, Blackman window of 128 points (64 s), 50 % overlap (attune: nfft 128, no
//!    per-segment detrending, one-sided density in µS²/Hz);
//! 5. EDASymp = power in 0.045–0.25 Hz, Σ P(f_k)·Δf over the bins with 0.045 ≤ f_k ≤ 0.25
//!    (Δf = 1/64 Hz), in µS²; EDASympn = EDASymp / total power (all bins, 0–1 Hz).
//!
//! Departures from the paper, deliberate: the paper analysed whole task stages; attune uses a
//! sliding window of [`WINDOW_S`] (256 points at 2 Hz, three Blackman segments) ending at the
//! newest point of the 2 Hz series; its low-pass runs causally on the live stream; and it starts from wearables at 4–1000 Hz
//! rather than 400 Hz. NeuroKit2's `eda_sympathetic(method="posada")` differs again (it resamples
//! to 400 Hz, does not prime its low-pass, decimates with extra filters, zero-pads to nfft 256,
//! integrates by trapezoids over [0.045, 0.25), and its "normalised" index is the band power of the
//! max-normalised PSD, not a share of total power); docs/agreement.md compares both.
//!
//! Refusals ([`EdaSympIssue`]), never a number from too little data: a stream under 2 Hz; fewer
//! than 256 points of the 2 Hz series in the window (a short stream, or a gap: a gap restarts the
//! series); a window with no power (a flat signal: total power under 1e-10 µS²).

use super::filter::{Cascade, FilterError, Pass, Sos};
use super::spectrum::{Taper, WelchPlan};
use std::collections::VecDeque;

/// The 2 Hz series rate, Hz.
pub const RATE_HZ: f64 = 2.0;
/// The live window, s (256 points at 2 Hz).
pub const WINDOW_S: f64 = 128.0;
/// Welch segment, points.
pub const SEGMENT: usize = 128;
/// The sympathetic band, Hz, both ends included.
pub const BAND: (f64, f64) = (0.045, 0.25);
/// Lowest usable stream rate, Hz.
pub const MIN_RATE_HZ: f64 = 2.0;
/// Longest time between two samples that the 2 Hz series interpolates across, s; a longer hole
/// restarts the series like a gap.
pub const MAX_HOLE_S: f64 = 2.0;
/// Total power under this is a flat signal, µS².
pub const FLAT_US2: f64 = 1e-10;

/// The indices of one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdaSymp {
    /// Power in 0.045–0.25 Hz, µS².
    pub symp_us2: f64,
    /// EDASymp / total power.
    pub sympn: f64,
    /// Total power, µS².
    pub total_us2: f64,
    /// End of the window (exclusive), s: the 2 Hz points used lie in [end − length, end).
    pub end_s: f64,
}

/// Why a window gives no EDASymp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdaSympIssue {
    /// Less than a full window of the 2 Hz series (or no EDA stream).
    ShortWindow,
    /// A stream under [`MIN_RATE_HZ`].
    UnsupportedRate,
    /// No power: a flat signal.
    Flat,
    /// No good stream now (stale, lost or low quality).
    NoSignal,
}

impl EdaSympIssue {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShortWindow => "short_window",
            Self::NoSignal => "no_signal",
            Self::UnsupportedRate => "unsupported_rate",
            Self::Flat => "flat",
        }
    }
}

/// The streaming state: low-pass, 2 Hz series, and the window spectrum's plan and buffers.
#[derive(Debug)]
pub struct EdaSympathetic {
    rate_hz: f64,
    lowpass: Option<Cascade>,
    highpass: Sos,
    /// The previous filtered sample (device time, value).
    prev: Option<(f64, f64)>,
    /// Index k of the next 2 Hz point (time k/2).
    next_k: i64,
    /// The 2 Hz series (k, value), oldest first, at most one window and a bit.
    series: VecDeque<(i64, f64)>,
    /// Most points held.
    keep: usize,
    plan: WelchPlan,
    buf: Vec<f64>,
    power: Vec<f64>,
}

impl EdaSympathetic {
    /// The state for a stream at `rate_hz` (below [`MIN_RATE_HZ`] it only reports
    /// [`EdaSympIssue::UnsupportedRate`]).
    pub fn new(rate_hz: f64) -> Result<Self, FilterError> {
        let lowpass = if rate_hz.is_finite() && rate_hz >= MIN_RATE_HZ {
            Some(Sos::chebyshev1_lowpass(8, 1.0, rate_hz, 0.8)?.cascade())
        } else {
            None
        };
        Ok(Self {
            rate_hz,
            lowpass,
            highpass: Sos::butterworth(Pass::High, 8, RATE_HZ, 0.01)?,
            prev: None,
            next_k: 0,
            series: VecDeque::new(),
            keep: (WINDOW_S * RATE_HZ) as usize + 8,
            plan: WelchPlan::new(SEGMENT, SEGMENT / 2, SEGMENT, Taper::Blackman)
                .ok_or(FilterError::Order(SEGMENT))?,
            buf: Vec::new(),
            power: Vec::new(),
        })
    }

    /// The stream's rate, Hz.
    pub fn rate_hz(&self) -> f64 {
        self.rate_hz
    }

    /// Feeds one sample (µS) at device time `t` (s). Non-finite samples are skipped (the low-pass
    /// must not carry a NaN); a sample not after the previous one is skipped; a hole of more than
    /// [`MAX_HOLE_S`] restarts the series.
    pub fn push(&mut self, t: f64, x: f64) {
        if self.lowpass.is_none() {
            return;
        }
        // Device times beyond ±1e12 s (31,000 years) are not times; the grid index must not
        // overflow.
        if !(x.is_finite() && t.is_finite() && t.abs() < 1e12) {
            return;
        }
        if self.prev.is_some_and(|(pt, _)| t <= pt) {
            return;
        }
        // A hole longer than [`MAX_HOLE_S`] between samples is a gap: interpolating across it
        // would invent data (and a clock jump would make the grid loop run for ever).
        if self.prev.is_some_and(|(pt, _)| t - pt > MAX_HOLE_S) {
            self.gap();
            return self.push(t, x);
        }
        let Some(lp) = self.lowpass.as_mut() else {
            return;
        };
        let y = lp.step(x);
        match self.prev {
            None => {
                self.next_k = (t * RATE_HZ).ceil() as i64;
                if self.next_k as f64 / RATE_HZ == t {
                    self.push_point(y);
                }
            }
            Some((pt, py)) => {
                while (self.next_k as f64 / RATE_HZ) <= t {
                    let g = self.next_k as f64 / RATE_HZ;
                    let v = py + (y - py) * (g - pt) / (t - pt);
                    self.push_point(v);
                }
            }
        }
        self.prev = Some((t, y));
    }

    fn push_point(&mut self, v: f64) {
        self.series.push_back((self.next_k, v));
        self.next_k += 1;
        while self.series.len() > self.keep {
            self.series.pop_front();
        }
    }

    /// A gap: the low-pass starts over and the 2 Hz series restarts (no window spans a gap).
    pub fn gap(&mut self) {
        if let Some(lp) = self.lowpass.as_mut() {
            lp.reset();
        }
        self.prev = None;
        self.series.clear();
    }

    /// EDASymp of the live window: the [`WINDOW_S`] of the 2 Hz series up to its newest point at
    /// or before `t` (a point exists once a later sample has arrived, so this does not depend on
    /// how the samples were chunked), if that point is at most [`MAX_HOLE_S`] old.
    pub fn live(&mut self, t: f64) -> Result<EdaSymp, EdaSympIssue> {
        if self.lowpass.is_none() {
            return Err(EdaSympIssue::UnsupportedRate);
        }
        let newest = self
            .series
            .iter()
            .rev()
            .map(|(k, _)| *k as f64 / RATE_HZ)
            .find(|g| *g <= t);
        let Some(g) = newest.filter(|g| t - g <= MAX_HOLE_S) else {
            return Err(EdaSympIssue::ShortWindow);
        };
        let end = g + 1.0 / RATE_HZ;
        self.window(end - WINDOW_S, end)
    }

    /// EDASymp of the 2 Hz points with time in [lo, hi): at least a full [`WINDOW_S`] of them
    /// (`analyze --windows` passes its own, possibly longer, windows).
    pub fn window(&mut self, lo: f64, hi: f64) -> Result<EdaSymp, EdaSympIssue> {
        if self.lowpass.is_none() {
            return Err(EdaSympIssue::UnsupportedRate);
        }
        // The grid points k/2 in [lo, hi).
        let need = ((hi * RATE_HZ).ceil() - (lo * RATE_HZ).ceil()).max(0.0) as usize;
        self.buf.clear();
        self.buf.extend(
            self.series
                .iter()
                .filter(|(k, _)| {
                    let g = *k as f64 / RATE_HZ;
                    g >= lo && g < hi
                })
                .map(|(_, v)| *v),
        );
        if need < (WINDOW_S * RATE_HZ) as usize || self.buf.len() < need {
            return Err(EdaSympIssue::ShortWindow);
        }
        let filtered = self
            .highpass
            .filtfilt(&self.buf)
            .map_err(|_| EdaSympIssue::ShortWindow)?;
        if !self.plan.psd_into(&filtered, RATE_HZ, &mut self.power) {
            return Err(EdaSympIssue::ShortWindow);
        }
        let df = RATE_HZ / SEGMENT as f64;
        let total: f64 = self.power.iter().map(|p| p * df).sum();
        if !(total.is_finite() && total >= FLAT_US2) {
            return Err(EdaSympIssue::Flat);
        }
        let symp: f64 = self
            .power
            .iter()
            .enumerate()
            .filter(|(k, _)| {
                let f = *k as f64 * df;
                f >= BAND.0 && f <= BAND.1
            })
            .map(|(_, p)| p * df)
            .sum();
        Ok(EdaSymp {
            symp_us2: symp,
            sympn: symp / total,
            total_us2: total,
            end_s: hi,
        })
    }

    /// Keeps `seconds` of the 2 Hz series instead of one live window (`analyze --windows`
    /// with windows longer than [`WINDOW_S`]).
    pub fn set_horizon(&mut self, seconds: f64) {
        let want = (seconds.max(WINDOW_S) * RATE_HZ).ceil();
        self.keep = if want.is_finite() {
            want as usize + 8
        } else {
            usize::MAX
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(e: &mut EdaSympathetic, fs: f64, secs: f64, f: impl Fn(f64) -> f64) {
        let n = (secs * fs) as usize;
        for i in 0..n {
            let t = i as f64 / fs;
            e.push(t, f(t));
        }
    }

    #[test]
    fn a_sine_in_the_band_is_sympathetic_power_and_one_above_it_is_not() {
        let tau = 2.0 * std::f64::consts::PI;
        // 0.1 Hz sine of 0.2 µS on a 5 µS level: power A²/2 = 0.02 µS², nearly all in band.
        let mut e = EdaSympathetic::new(32.0).unwrap();
        feed(&mut e, 32.0, 200.0, |t| 5.0 + 0.2 * (tau * 0.1 * t).sin());
        let s = e.live(200.0).unwrap();
        assert!((s.symp_us2 / 0.02 - 1.0).abs() < 0.1, "{s:?}");
        assert!(s.sympn > 0.95, "{s:?}");
        // 0.5 Hz: outside the band.
        let mut e = EdaSympathetic::new(32.0).unwrap();
        feed(&mut e, 32.0, 200.0, |t| 5.0 + 0.2 * (tau * 0.5 * t).sin());
        let s = e.live(200.0).unwrap();
        assert!(s.sympn < 0.02, "{s:?}");
    }

    #[test]
    fn the_rate_does_not_change_the_answer() {
        let tau = 2.0 * std::f64::consts::PI;
        let x = |t: f64| 3.0 + 0.1 * (tau * 0.07 * t).sin() + 0.05 * (tau * 0.4 * t).sin();
        let mut got = Vec::new();
        for fs in [4.0, 10.0, 32.0, 100.0, 1000.0] {
            let mut e = EdaSympathetic::new(fs).unwrap();
            feed(&mut e, fs, 180.0, x);
            got.push(e.live(179.0).unwrap());
        }
        // Within 3 %: the bilinear transform places the Chebyshev ripples at slightly
        // different frequencies at 4 Hz than at 1000 Hz (0.4 Hz: 0.94 vs 0.93).
        for g in &got {
            assert!((g.symp_us2 / got[2].symp_us2 - 1.0).abs() < 0.03, "{got:?}");
            assert!((g.sympn - got[2].sympn).abs() < 0.03, "{got:?}");
        }
        for g in &got[1..] {
            assert!(
                (g.symp_us2 / got[4].symp_us2 - 1.0).abs() < 0.005,
                "{got:?}"
            );
        }
    }

    #[test]
    fn refuses_short_windows_gaps_flat_signals_and_slow_streams() {
        let mut e = EdaSympathetic::new(4.0).unwrap();
        feed(&mut e, 4.0, 100.0, |t| 2.0 + 0.1 * t.sin());
        assert_eq!(e.live(100.0), Err(EdaSympIssue::ShortWindow));
        feed(&mut e, 4.0, 140.0, |t| 2.0 + 0.1 * t.sin());
        e.gap();
        assert_eq!(e.live(140.0), Err(EdaSympIssue::ShortWindow));
        let mut flat = EdaSympathetic::new(4.0).unwrap();
        feed(&mut flat, 4.0, 140.0, |_| 2.0);
        assert_eq!(flat.live(139.0), Err(EdaSympIssue::Flat));
        let mut slow = EdaSympathetic::new(1.0).unwrap();
        feed(&mut slow, 1.0, 200.0, |t| 2.0 + t.sin());
        assert_eq!(slow.live(199.0), Err(EdaSympIssue::UnsupportedRate));
        // A clock jump is a gap, not billions of interpolated points.
        let mut e = EdaSympathetic::new(4.0).unwrap();
        feed(&mut e, 4.0, 140.0, |t| 2.0 + 0.1 * t.sin());
        e.push(1e11, 2.0);
        assert_eq!(e.live(1e11), Err(EdaSympIssue::ShortWindow));
        assert!(e.series.len() <= 1);
        e.push(1e300, 2.0);
        e.push(f64::INFINITY, 2.0);
        assert!(e.series.len() <= 1);
        // A NaN sample is skipped, not carried.
        let mut e = EdaSympathetic::new(4.0).unwrap();
        feed(&mut e, 4.0, 140.0, |t| {
            if (t - 50.0).abs() < 0.1 {
                f64::NAN
            } else {
                2.0 + 0.1 * t.sin()
            }
        });
        assert!(e.live(139.0).unwrap().symp_us2.is_finite());
    }
}
