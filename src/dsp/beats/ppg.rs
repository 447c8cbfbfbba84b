//! Streaming PPG systolic-peak detector: a causal variant of Elgendi et al. 2013 as NeuroKit2
//! 0.2.13 implements it (`ppg_peaks(ppg_clean(x), method="elgendi")`, SIGNALS.md §2.4; offline
//! port in [`crate::dsp::ppg`]). Pure: samples in, beats out; no allocation per sample.
//!
//! 1. Butterworth band-pass 0.5–8 Hz, order 2 (4 poles, the LP→BP design of SIGNALS.md §1.1),
//!    **causal**, primed at the first sample.
//! 2. `s = max(y, 0)²`.
//! 3. `ma_peak` = centred boxcar of `s` over `rint(0.111·fs)` samples (≈ 55 ms look-ahead, as
//!    NeuroKit2); `ma_beat` = **trailing** mean of `s` over `rint(0.667·fs)` samples, ending at
//!    the newest sample (NeuroKit2 centres it: 0.33 s look-ahead).
//! 4. Threshold `ma_beat + 0.02 · mean(s)`, the mean over the last 30 s (in 1 s blocks; over what
//!    there is at the start) instead of the whole record.
//! 5. Waves = runs of `ma_peak` above the threshold, paired as NeuroKit2 pairs them; waves shorter
//!    than `rint(0.111·fs)` samples are dropped; a wave is cut at [`MAX_WAVE_S`].
//! 6. The peak is the most prominent local maximum of the filtered PPG from the wave's begin to
//!    the newest sample (the wave plus the `ma_peak` look-ahead: at low rates a wave can end one
//!    sample after the peak, leaving it no right neighbour inside the wave; scipy semantics), kept if it is more than `rint(0.3·fs)` samples after the previous beat (the
//!    first "previous beat" is the start: no beat in the first 0.3 s, as NeuroKit2).
//!
//! **Timing correction.** The causal band-pass delays the systolic peak (NeuroKit2's zero-phase
//! filter does not). The peak of a pulse is where its harmonics line up, so it moves with the
//! filter's phase delay averaged over the harmonics that shape it ([`peak_shift_s`]: the
//! gain-weighted mean phase delay of the harmonics `k·f ≤ 8 Hz` of the current heart rate `f`,
//! computed from the biquad coefficients; `f` is the median of the last 5 intervals, 1.2 Hz
//! until there are any). The phase delay at the fundamental alone has the wrong sign (below the
//! band's 2 Hz centre the band-pass *leads*: −61 ms at 70 bpm), and the group delay over the
//! harmonics (≈ 75 ms) overshoots: the measured shift is +10 ms (simulated PPG) to +35 ms (a
//! real BVP). No constant is fitted to a fixture.
//!
//! **Delay bound** ([`PpgDetector::max_delay_s`]): a beat is confirmed when its wave ends, at most
//! [`MAX_WAVE_S`] (0.2 s: a systolic wave rises and peaks within it) + the `ma_peak` look-ahead
//! after the wave began, and the reported peak is the filtered peak moved back by the correction
//! (≤ [`MAX_CORRECTION_S`]): the bound is their sum, 0.290–0.295 s, under 0.3 s at every rate.
//! Measured delays (typically 0.12–0.17 s) are in docs/agreement.md.
//!
//! Quality: as the ECG detector (`quality.rs`); hum is judged against the pulse band's
//! energy (ratio 1). There is no polarity check (a PPG has no "reversed leads").
//!
//! Rates: 25–2048 Hz ([`MIN_RATE_HZ`], [`MAX_RATE_HZ`]): below 25 Hz the 0.111 s window is 2
//! samples and the 8 Hz band edge nears Nyquist. Units: `fs` in Hz; the PPG in any unit; beats in
//! samples (fractional: the correction is not a whole number of samples).
//!
//! References: Elgendi M, Norton I, Brearley M, Abbott D, Schuurmans D (2013), "Systolic peak
//! detection in acceleration photoplethysmograms measured from emergency responders in tropical
//! conditions", *PLoS ONE* 8(10):e76585; NeuroKit2 0.2.13 `ppg/ppg_clean.py`,
//! `ppg/ppg_findpeaks.py`, © the NeuroKit2 developers, MIT licence.

use super::ecg::{HOLD_S, MAX_ABS};
use super::quality::Quality;
use super::stages::{Admit, History, Hold, TrailingMean, most_prominent};
use super::{BeatConfig, BeatError, DetectedBeat, SignalIssue, Waveform};
use crate::dsp::filter::{Cascade, Sos};
use crate::dsp::ppg::{BAND_HZ, BEAT_OFFSET, BEAT_WINDOW_S, MIN_DELAY_S, PEAK_WINDOW_S};
use realfft::num_complex::Complex64;

/// Lowest supported rate, Hz.
pub const MIN_RATE_HZ: f64 = 25.0;
/// Highest supported rate, Hz.
pub const MAX_RATE_HZ: f64 = 2048.0;
/// Longest wave before it is cut, s.
pub const MAX_WAVE_S: f64 = 0.2;
/// Largest timing correction, s.
pub const MAX_CORRECTION_S: f64 = 0.04;
/// Offset mean window, s (in 1 s blocks).
const OFFSET_BLOCKS: usize = 30;
/// Intervals in the heart-rate median.
const IBIS: usize = 5;
/// Heart rate assumed before any interval is known, Hz.
const DEFAULT_HR_HZ: f64 = 1.2;

/// The band-pass design's sections `(b0, b1, b2, a1, a2)`, recomputed here exactly as
/// [`Sos::butterworth_bandpass2`] designs them (its sections are private), for the delay.
fn bandpass_sections(lo: f64, hi: f64, fs: f64) -> [[f64; 5]; 2] {
    let pi = std::f64::consts::PI;
    let w1 = 2.0 * fs * (pi * lo / fs).tan();
    let w2 = 2.0 * fs * (pi * hi / fs).tan();
    let w0 = (w1 * w2).sqrt();
    let bw = w2 - w1;
    let p = Complex64::from_polar(1.0, 3.0 * pi / 4.0);
    let half = p * (bw / 2.0);
    let root = (half * half - w0 * w0).sqrt();
    let mut out = [[0.0; 5]; 2];
    for (sec, s) in out.iter_mut().zip([half + root, half - root]) {
        let z = (2.0 * fs + s) / (2.0 * fs - s);
        *sec = [1.0, 0.0, -1.0, -2.0 * z.re, z.norm_sqr()];
    }
    out
}

/// Phase of one biquad at ω (rad/sample). Each section of the band-pass has a zero at DC and
/// one at Nyquist, so its phase stays within (−π/2, π/2) inside the band: summing the sections'
/// principal phases gives the unwrapped phase of the cascade there.
fn biquad_response(c: &[f64; 5], w: f64) -> Complex64 {
    let e = |k: f64| Complex64::from_polar(1.0, -k * w);
    (c[0] + c[1] * e(1.0) + c[2] * e(2.0)) / (1.0 + c[3] * e(1.0) + c[4] * e(2.0))
}

/// How far, s, the causal 0.5–8 Hz band-pass at rate `fs` moves the peak of a pulse train at
/// `f_hr` Hz, relative to NeuroKit2's zero-phase filter.
///
/// Model: a pulse `Σ A_k cos(kωt)` peaks at t = 0; through a filter of phase `−θ_k` at `kω` its
/// peak moves, to first order, to `t = Σ w_k τ_k / Σ w_k` with `τ_k = θ_k/(kω)` the phase delay
/// at the k-th harmonic and curvature weights `w_k = k² A_k |H(kω)|` (set the derivative of the
/// filtered sum to zero and linearise). A pulse's harmonic amplitudes fall roughly as `1/k²`
/// (a pulse with a sharp systolic upstroke more slowly), which makes the weights `|H(kω)|`:
/// the mean phase delay of the harmonics inside the pass band (`k·f_hr ≤ 8 Hz`, and below
/// 0.45·fs), weighted by the filter's gain. The fundamental alone would say the opposite: below
/// the band's 2 Hz centre the band-pass *leads* (−61 ms at 1.16 Hz), yet the peak is measured to
/// come 10–35 ms late. Clamped to `[0, MAX_CORRECTION_S]`.
pub fn peak_shift_s(fs: f64, f_hr: f64) -> f64 {
    if !(f_hr.is_finite() && f_hr > 0.0) {
        return 0.0;
    }
    let secs = bandpass_sections(BAND_HZ.0, BAND_HZ.1, fs);
    let (mut num, mut den) = (0.0, 0.0);
    let mut k = 1.0;
    while k * f_hr <= BAND_HZ.1 && k * f_hr < 0.45 * fs && k <= 16.0 {
        let w = 2.0 * std::f64::consts::PI * k * f_hr / fs;
        let (mut phase, mut gain) = (0.0, 1.0);
        for c in &secs {
            let h = biquad_response(c, w);
            phase += h.arg();
            gain *= h.norm();
        }
        num += gain * (-phase / w);
        den += gain;
        k += 1.0;
    }
    if den <= 0.0 {
        return 0.0;
    }
    (num / den / fs).clamp(0.0, MAX_CORRECTION_S)
}

/// Streaming PPG beat detector (one stream).
#[derive(Debug, Clone)]
pub struct PpgDetector {
    fs: f64,
    look_ahead: u64,
    min_len: u64,
    min_delay: u64,
    max_wave: u64,
    bp_design: Sos,
    bp: Cascade,
    ma_peak: TrailingMean,
    ma_beat: TrailingMean,
    filtered: History,
    quality: Quality,
    block_len: u64,
    block_sum: f64,
    block_n: u64,
    blocks: [f64; OFFSET_BLOCKS],
    blocks_n: usize,
    blocks_head: usize,
    /// Sum of `blocks[..blocks_n]`, recomputed at each block.
    blocks_total: f64,
    n: u64,
    active: bool,
    start: u64,
    q_prev: Option<bool>,
    run: Option<(u64, bool)>,
    /// Last accepted beat (filtered-peak index, before the correction), and the same corrected.
    last_raw: Option<u64>,
    last_peak: f64,
    last_beat: u64,
    ibis: [f64; IBIS],
    ibis_n: usize,
    ibis_head: usize,
    correction: f64,
    hold: Hold,
}

impl PpgDetector {
    /// A detector at `fs` Hz (25–2048 Hz).
    pub fn new(fs: f64, _cfg: &BeatConfig) -> Result<Self, BeatError> {
        let err = BeatError::Rate {
            kind: Waveform::Ppg,
            rate_hz: fs,
            min_hz: MIN_RATE_HZ,
            max_hz: MAX_RATE_HZ,
        };
        if !(MIN_RATE_HZ..=MAX_RATE_HZ).contains(&fs) {
            return Err(err);
        }
        let rint = |s: f64| (s * fs).round_ties_even() as usize;
        let peak_w = rint(PEAK_WINDOW_S).max(1);
        let look_ahead = (peak_w - 1 - peak_w / 2) as u64;
        let max_wave = rint(MAX_WAVE_S) as u64;
        let bp_design =
            Sos::butterworth_bandpass2(BAND_HZ.0, BAND_HZ.1, fs).map_err(|_| err.clone())?;
        Ok(Self {
            fs,
            look_ahead,
            min_len: peak_w as u64,
            min_delay: rint(MIN_DELAY_S) as u64,
            max_wave,
            bp: bp_design.cascade(),
            bp_design,
            ma_peak: TrailingMean::new(peak_w),
            ma_beat: TrailingMean::new(rint(BEAT_WINDOW_S).max(1)),
            filtered: History::new(max_wave as usize + look_ahead as usize + 8),
            quality: Quality::new(fs, 1.0),
            block_len: (fs.round() as u64).max(1),
            block_sum: 0.0,
            block_n: 0,
            blocks: [0.0; OFFSET_BLOCKS],
            blocks_n: 0,
            blocks_head: 0,
            blocks_total: 0.0,
            n: 0,
            active: false,
            start: 0,
            q_prev: None,
            run: None,
            last_raw: None,
            last_peak: 0.0,
            last_beat: 0,
            ibis: [0.0; IBIS],
            ibis_n: 0,
            ibis_head: 0,
            correction: peak_shift_s(fs, DEFAULT_HR_HZ) * fs,
            hold: Hold::new(rint(HOLD_S) as u64),
        })
    }

    /// Feeds samples; appends the beats they confirm to `out`, in time order.
    pub fn push(&mut self, x: &[f64], out: &mut Vec<DetectedBeat>) {
        for &v in x {
            self.step(v, out);
        }
    }

    /// Starts over: filters re-prime, sample indices restart at 0.
    pub fn reset(&mut self) {
        self.bp = self.bp_design.cascade();
        self.active = false;
        self.n = 0;
        self.start = 0;
        self.last_raw = None;
        self.last_peak = 0.0;
        self.last_beat = 0;
        self.ibis_n = 0;
        self.ibis_head = 0;
        self.correction = peak_shift_s(self.fs, DEFAULT_HR_HZ) * self.fs;
        self.blocks_n = 0;
        self.blocks_head = 0;
        self.blocks_total = 0.0;
        self.block_sum = 0.0;
        self.block_n = 0;
        self.hold.reset();
        self.quality.reset();
    }

    /// Samples pushed since the start or last reset.
    pub fn samples(&self) -> u64 {
        self.n
    }

    /// What is wrong with the signal now, if anything (the most specific issue first).
    pub fn issue(&self) -> Option<SignalIssue> {
        self.quality
            .issue(self.fs, self.n, self.hold.last_bad, self.last_beat)
    }

    /// The longest time from a systolic peak to the sample that confirms it, s.
    pub fn max_delay_s(&self) -> f64 {
        (self.max_wave + self.look_ahead) as f64 / self.fs + MAX_CORRECTION_S
    }

    fn activate(&mut self, i: u64) {
        self.bp.reset();
        self.ma_peak.reset();
        self.ma_beat.reset();
        self.filtered.reset();
        self.quality.reprime();
        self.q_prev = None;
        self.run = None;
        self.start = i;
        self.last_raw = None;
        self.last_peak = self.last_peak.max(i as f64);
        self.active = true;
    }

    /// Mean of `s` over the last 30 s (what there is, at the start).
    fn offset_mean(&self) -> f64 {
        let n = self.blocks_n as u64 * self.block_len + self.block_n;
        if n == 0 {
            0.0
        } else {
            (self.blocks_total + self.block_sum) / n as f64
        }
    }

    #[inline]
    fn step(&mut self, raw: f64, out: &mut Vec<DetectedBeat>) {
        let i = self.n;
        self.n += 1;
        let x = match self.hold.admit(i, raw, MAX_ABS) {
            Admit::Good(x) => {
                if !self.active {
                    self.activate(i);
                }
                x
            }
            Admit::Held(x) if self.active => x,
            Admit::Held(_) => return,
            Admit::Lost => {
                self.active = false;
                return;
            }
        };
        let y = self.bp.step(x);
        if !y.is_finite() {
            self.active = false;
            return;
        }
        let s = if y > 0.0 { y * y } else { 0.0 };
        if self.hold.fresh() {
            self.quality.push(x, x, s);
        }
        self.filtered.push(i, y);
        self.block_sum += s;
        self.block_n += 1;
        if self.block_n == self.block_len {
            self.blocks[self.blocks_head] = self.block_sum;
            self.blocks_head = (self.blocks_head + 1) % OFFSET_BLOCKS;
            self.blocks_n = (self.blocks_n + 1).min(OFFSET_BLOCKS);
            self.blocks_total = self.blocks[..self.blocks_n].iter().sum();
            self.block_sum = 0.0;
            self.block_n = 0;
        }
        let mp = self.ma_peak.push(s);
        let mb = self.ma_beat.push(s);
        let Some(j) = i.checked_sub(self.look_ahead) else {
            return;
        };
        if j < self.start {
            return;
        }
        let q = mp > mb + BEAT_OFFSET * self.offset_mean();
        let prev = self.q_prev.replace(q);
        match (prev, q, self.run) {
            (Some(false), true, _) => self.run = Some((j - 1, false)),
            (Some(true), false, Some((b, cut))) => {
                self.run = None;
                if !cut {
                    self.candidate(b, j - 1, i, out);
                }
            }
            (Some(true), true, Some((b, false))) if j - b >= self.max_wave => {
                self.run = Some((b, true));
                self.candidate(b, j, i, out);
            }
            _ => {}
        }
    }

    fn candidate(&mut self, b: u64, e: u64, i: u64, out: &mut Vec<DetectedBeat>) {
        if e - b < self.min_len {
            return;
        }
        // The search runs to the newest sample (`i`, the `ma_peak` look-ahead past the wave's
        // end): at low rates a wave can end a sample after the systolic peak, leaving it no
        // right neighbour inside `[b, e)`.
        let Some(seg) = self.filtered.range(b, i + 1) else {
            return;
        };
        let Some(k) = most_prominent(seg, 1.0) else {
            return;
        };
        let p = b + k as u64;

        let at = p as f64 - self.correction;
        if at - self.last_peak <= self.min_delay as f64 {
            return;
        }
        if let Some(prev) = self.last_raw {
            self.interval(p.saturating_sub(prev) as f64 / self.fs);
        }
        self.last_raw = Some(p);
        self.last_peak = at;
        self.last_beat = p;
        out.push(DetectedBeat { at, confirmed: i });
    }

    /// Updates the heart rate (median of the last intervals) and the correction.
    fn interval(&mut self, ibi_s: f64) {
        if !(0.25..=2.5).contains(&ibi_s) {
            return;
        }
        self.ibis[self.ibis_head] = ibi_s;
        self.ibis_head = (self.ibis_head + 1) % IBIS;
        self.ibis_n = (self.ibis_n + 1).min(IBIS);
        let mut sorted = [0.0; IBIS];
        let v = &mut sorted[..self.ibis_n];
        v.copy_from_slice(&self.ibis[..self.ibis_n]);
        v.sort_by(f64::total_cmp);
        let median = v[v.len() / 2];
        self.correction = peak_shift_s(self.fs, 1.0 / median) * self.fs;
    }
}
