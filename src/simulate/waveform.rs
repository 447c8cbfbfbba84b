//! Synthetic ECG and PPG waveforms whose beats are at given times: the truth is known exactly.
//!
//! Pure and deterministic: beat times and a seed in, samples out (ChaCha8, no clock, no I/O).
//! Streaming: [`EcgSynth`] and [`PpgSynth`] take beat times as they become known
//! ([`EcgSynth::push_beat`]) and produce the next samples on demand ([`EcgSynth::fill`]), O(1)
//! work per sample (a handful of `exp`s and two normal draws) and no allocation per sample; the
//! only memory is the queue of beats pushed but not yet played out. [`ecg_from_beats`] and
//! [`ppg_from_beats`] wrap them for a whole record.
//!
//! **ECG** (mV): the P-Q-R-S-T morphology of ECGSYN (McSharry, Clifford, Tarassenko & Smith
//! 2003, "A dynamical model for generating synthetic electrocardiogram signals", *IEEE Trans.
//! Biomed. Eng.* 50(3):289–294), the model behind NeuroKit2's `ecg_simulate(method="ecgsyn")`
//! (Makowski et al. 2021, *Behav. Res. Methods* 53:1689–1696). ECGSYN's waves are
//! (θᵢ, aᵢ, bᵢ) = P (−70°, 1.2, 0.25), Q (−15°, −5, 0.1), R (0°, 30, 0.1), S (15°, −7.5, 0.1),
//! T (100°, 0.75, 0.4) on a phase that advances 2π per RR interval; with `hrfact = √(HR/60)`,
//! bᵢ is multiplied by `hrfact` and θᵢ by (√hrfact, hrfact, 1, hrfact, √hrfact), as ECGSYN does
//! (ECGSYN takes HR as the record's mean; here it is the HR of the interval the wave lies in,
//! so QT and the wave widths follow the heart rate, roughly as √RR).
//! Instead of integrating the ODE `ż = −Σ aᵢΔθᵢ exp(−Δθᵢ²/2bᵢ²) − (z − z₀)` we evaluate its
//! solution directly: without the slow `−(z − z₀)` relaxation, `z = Σ (aᵢbᵢ²/ω) exp(−Δθᵢ²/2bᵢ²)`,
//! so each wave is a Gaussian of amplitude ∝ aᵢbᵢ² (R : T : P : S : Q = 1 : 0.4 : 0.25 : −0.25 :
//! −0.17, independent of HR, because bᵢ² and ω both scale with HR) and of width bᵢ/ω in time.
//! Each beat's waves are placed in time around its R peak: P and Q with the phase rate of the
//! interval that ends at the beat, R, S and T with that of the interval that starts there (as
//! the phase advances in ECGSYN), so every wave is a smooth Gaussian in time and nothing jumps at
//! a beat. The beat is then shifted (by well under 1 ms) so that the maximum of its own sum is
//! exactly at the beat time: **the R peak is the beat time**. The morphology uses RR clamped to
//! 0.25–3 s. Added per person (drawn from the seed, [`EcgParams::draw`]): R amplitude 1.0–1.5 mV;
//! P, Q, S, T amplitudes × 0.8–1.2 each; beat-to-beat amplitude jitter 1–3 %; respiratory
//! amplitude modulation 3–8 % (ECG-derived respiration exists); respiratory baseline wander
//! 0.1–0.3 mV; a slow drift (AR(1), τ = 5 s, sd 0.02–0.06 mV); 1/f-ish noise (two AR(1)
//! components, τ = 0.02 and 0.2 s, together sd 2–6 µV); white noise sd 1–3 µV (a resting
//! recording with wet electrodes and a 24-bit front end, no motion or EMG); mains hum
//! (20–50 µV at 50 or 60 Hz) only when asked for ([`EcgParams::mains_hz`], default off).
//!
//! **PPG** (arbitrary units, a.u.; a pulse is about 1 a.u.): per beat a systolic wave, a split
//! Gaussian (rise σ 40–60 ms, fall σ 70–100 ms at 60 bpm), and a diastolic (reflected) wave, a
//! Gaussian 0.25–0.5 × the systolic amplitude, 0.22–0.27 s after it (σ 70–100 ms, at most
//! 0.28 s after it); the fall, the diastolic delay and width scale with √RR. This is the two-wave (forward + reflected)
//! decomposition of the pulse that Charlton et al. 2019 (*Am. J. Physiol. Heart Circ. Physiol.*
//! 317:H1062–H1085) and Elgendi 2012 (*Curr. Cardiol. Rev.* 8:14–25) describe; NeuroKit2's
//! `ppg_simulate` instead interpolates four points per beat (onset, systolic peak, notch,
//! diastolic peak), which does not keep the peak exactly at a chosen time. The systolic peak
//! comes a pulse transit delay after the R peak: 150–250 ms per person plus 2–6 ms beat-to-beat
//! jitter; as for the ECG the pulse is shifted so that the maximum of its own sum is exactly at
//! that time, and **those systolic peak times are the PPG truth** ([`PpgSynth::push_beat`]
//! returns each). Per person: amplitude 0.8–1.2 a.u., 2–5 % beat jitter, respiratory amplitude
//! modulation 5–15 %, respiratory baseline wander 0.1–0.3 a.u., slow drift sd 0.05–0.15 a.u.
//! (τ = 5 s), white noise sd 0.005–0.02 a.u. Not modelled: PTT shortening under stress, motion
//! artefacts, the DC level of a raw sensor.
//!
//! **Respiration** drives the baseline wander as a sinusoid at [`EcgParams::resp_hz`] whose
//! phase advances sample by sample, so [`EcgSynth::set_resp_hz`] changes the rate without a
//! jump (the batch simulator follows the heart model's respiratory rate). The beat amplitude
//! modulation is fixed per beat at `sin(resp_phase + 2π·resp_hz·t_peak)`, the person's base
//! rate (so a beat's shape does not depend on when it was pushed, and streaming in any blocks
//! gives the same samples as a whole record); it does not follow `set_resp_hz`.
//!
//! **Randomness.** A synth draws from two ChaCha8 streams of its seed: one per beat (amplitude
//! and PTT jitter, drawn in [`EcgSynth::push_beat`], so the truth does not depend on the rate
//! and can be computed without generating a sample) and one per sample (noise). ECG and PPG use
//! different streams, so one seed gives independent ECG and PPG noise.
//!
//! **Times** are seconds; sample `n` is at `n / fs`. A sample at `t` depends on the beats whose
//! waves reach `t`; a synth produces it only once a beat later than `t + REACH` is known (0.8 s
//! for the ECG, 0.5 s for the PPG) or [`EcgSynth::end_beats`] was called. Before the first beat
//! there is only baseline.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::collections::VecDeque;
use std::f64::consts::PI;

/// ECGSYN's waves (McSharry et al. 2003, Table 1): (θ in degrees, a, b in radians) of P, Q, R,
/// S, T.
pub const ECGSYN_WAVES: [(f64, f64, f64); 5] = [
    (-70.0, 1.2, 0.25),
    (-15.0, -5.0, 0.1),
    (0.0, 30.0, 0.1),
    (15.0, -7.5, 0.1),
    (100.0, 0.75, 0.4),
];

/// RR range the morphology is scaled for, s (beats closer or further apart still work; their
/// waves are shaped as for the nearest end of this range).
const RR_CLAMP_S: (f64, f64) = (0.25, 3.0);

/// How far before its R time an ECG beat's waves can start, s (the P wave at RR = 3 s, 5 σ).
pub const ECG_REACH_S: f64 = 0.8;
/// How far before its R time a PPG pulse can start, s.
pub const PPG_REACH_S: f64 = 0.5;

/// Systolic → diastolic peak at most, s (under the detectors' 0.3 s refractory period).
const MAX_DIA_DELAY_S: f64 = 0.28;

/// Waves are cut off beyond this many standard deviations (exp(−12.5) ≈ 4·10⁻⁶).
const CUTOFF_SIGMAS: f64 = 5.0;

/// ChaCha8 streams (the batch simulator's heart and EDA use stream 0).
const ECG_BEAT_STREAM: u64 = 101;
const ECG_NOISE_STREAM: u64 = 102;
const PPG_BEAT_STREAM: u64 = 103;
const PPG_NOISE_STREAM: u64 = 104;

/// Per-person ECG parameters. Amplitudes in mV, times in s, rates in Hz.
#[derive(Debug, Clone, PartialEq)]
pub struct EcgParams {
    /// R amplitude above the baseline, mV.
    pub r_mv: f64,
    /// Multipliers of ECGSYN's P, Q, R, S, T amplitudes (R's is 1).
    pub gains: [f64; 5],
    /// Beat-to-beat amplitude jitter, relative sd.
    pub beat_jitter: f64,
    /// Respiratory modulation of the beat amplitude, relative (0.05 = ±5 %).
    pub resp_mod: f64,
    /// Respiratory rate, Hz.
    pub resp_hz: f64,
    /// Respiratory phase at t = 0, rad.
    pub resp_phase: f64,
    /// Respiratory baseline wander amplitude, mV.
    pub wander_mv: f64,
    /// Slow baseline drift (AR(1), τ = 5 s), sd, mV.
    pub drift_mv: f64,
    /// 1/f-ish noise (AR(1) at τ = 0.02 and 0.2 s), sd of the sum, mV.
    pub pink_mv: f64,
    /// White noise sd, mV.
    pub white_mv: f64,
    /// Mains hum amplitude, mV (used only if `mains_hz` is set).
    pub mains_mv: f64,
    /// Mains frequency, Hz; `None` (the default) for no hum.
    pub mains_hz: Option<f64>,
}

impl EcgParams {
    /// Draws a person's ECG (ranges in the module doc); no mains hum.
    pub fn draw<R: Rng>(rng: &mut R) -> Self {
        Self {
            r_mv: rng.random_range(1.0..1.5),
            gains: [
                rng.random_range(0.8..1.2),
                rng.random_range(0.8..1.2),
                1.0,
                rng.random_range(0.8..1.2),
                rng.random_range(0.8..1.2),
            ],
            beat_jitter: rng.random_range(0.01..0.03),
            resp_mod: rng.random_range(0.03..0.08),
            resp_hz: rng.random_range(0.2..0.3),
            resp_phase: rng.random_range(0.0..2.0 * PI),
            wander_mv: rng.random_range(0.1..0.3),
            drift_mv: rng.random_range(0.02..0.06),
            pink_mv: rng.random_range(0.002..0.006),
            white_mv: rng.random_range(0.001..0.003),
            mains_mv: rng.random_range(0.02..0.05),
            mains_hz: None,
        }
    }

    /// The same person without wander, drift, noise, hum or jitter: the bare morphology.
    pub fn noise_free(mut self) -> Self {
        self.beat_jitter = 0.0;
        self.resp_mod = 0.0;
        self.wander_mv = 0.0;
        self.drift_mv = 0.0;
        self.pink_mv = 0.0;
        self.white_mv = 0.0;
        self.mains_hz = None;
        self
    }
}

/// Per-person PPG parameters. Amplitudes in a.u., times in s (widths and delays at 60 bpm).
#[derive(Debug, Clone, PartialEq)]
pub struct PpgParams {
    /// R peak → systolic peak (pulse arrival), s.
    pub ptt_s: f64,
    /// Beat-to-beat PTT jitter, sd, s.
    pub ptt_jitter_s: f64,
    /// Systolic amplitude, a.u.
    pub amp: f64,
    /// Rise σ of the systolic wave, s.
    pub rise_s: f64,
    /// Fall σ of the systolic wave, s.
    pub fall_s: f64,
    /// Diastolic / systolic amplitude.
    pub dia_ratio: f64,
    /// Systolic → diastolic peak, s.
    pub dia_delay_s: f64,
    /// σ of the diastolic wave, s.
    pub dia_width_s: f64,
    /// Beat-to-beat amplitude jitter, relative sd.
    pub beat_jitter: f64,
    /// Respiratory modulation of the pulse amplitude, relative.
    pub resp_mod: f64,
    /// Respiratory rate, Hz.
    pub resp_hz: f64,
    /// Respiratory phase at t = 0, rad.
    pub resp_phase: f64,
    /// Respiratory baseline wander amplitude, a.u.
    pub wander: f64,
    /// Slow drift (AR(1), τ = 5 s), sd, a.u.
    pub drift: f64,
    /// White noise sd, a.u.
    pub white: f64,
}

impl PpgParams {
    /// Draws a person's PPG (ranges in the module doc).
    pub fn draw<R: Rng>(rng: &mut R) -> Self {
        Self {
            ptt_s: rng.random_range(0.15..0.25),
            ptt_jitter_s: rng.random_range(0.002..0.006),
            amp: rng.random_range(0.8..1.2),
            rise_s: rng.random_range(0.04..0.06),
            fall_s: rng.random_range(0.07..0.10),
            dia_ratio: rng.random_range(0.25..0.5),
            dia_delay_s: rng.random_range(0.22..0.27),
            dia_width_s: rng.random_range(0.07..0.10),
            beat_jitter: rng.random_range(0.02..0.05),
            resp_mod: rng.random_range(0.05..0.15),
            resp_hz: rng.random_range(0.2..0.3),
            resp_phase: rng.random_range(0.0..2.0 * PI),
            wander: rng.random_range(0.1..0.3),
            drift: rng.random_range(0.05..0.15),
            white: rng.random_range(0.005..0.02),
        }
    }

    /// The same person without wander, drift, noise or jitter (PTT stays).
    pub fn noise_free(mut self) -> Self {
        self.ptt_jitter_s = 0.0;
        self.beat_jitter = 0.0;
        self.resp_mod = 0.0;
        self.wander = 0.0;
        self.drift = 0.0;
        self.white = 0.0;
        self
    }
}

/// `a · exp(−k·(t − c)²)`, with `k = kl` left of `c` and `kr` right of it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Wave {
    c: f64,
    kl: f64,
    kr: f64,
    a: f64,
}

impl Wave {
    /// A Gaussian of standard deviation `sl` left and `sr` right of `c`, s.
    fn split(c: f64, a: f64, sl: f64, sr: f64) -> Self {
        Self {
            c,
            kl: 0.5 / (sl * sl),
            kr: 0.5 / (sr * sr),
            a,
        }
    }

    fn k(&self, t: f64) -> f64 {
        if t < self.c { self.kl } else { self.kr }
    }

    fn value(&self, t: f64) -> f64 {
        let u = t - self.c;
        let e = self.k(t) * u * u;
        if e > 0.5 * CUTOFF_SIGMAS * CUTOFF_SIGMAS {
            0.0
        } else {
            self.a * (-e).exp()
        }
    }

    /// First and second derivative at `t`.
    fn d1_d2(&self, t: f64) -> (f64, f64) {
        let (u, k) = (t - self.c, self.k(t));
        let f = self.a * (-k * u * u).exp();
        (-2.0 * k * u * f, (4.0 * k * k * u * u - 2.0 * k) * f)
    }

    /// Earliest and latest time the wave is not cut off.
    fn support(&self) -> (f64, f64) {
        let z = CUTOFF_SIGMAS * std::f64::consts::FRAC_1_SQRT_2;
        (self.c - z / self.kl.sqrt(), self.c + z / self.kr.sqrt())
    }
}

const MAX_WAVES: usize = 5;

/// One beat's waves, placed in time.
#[derive(Debug, Clone, Copy)]
struct Beat {
    waves: [Wave; MAX_WAVES],
    n: usize,
    start: f64,
    end: f64,
}

impl Beat {
    /// The waves, shifted so that the maximum of their sum near `peak` is exactly at `peak`.
    fn placed(waves: &[Wave], peak: f64) -> Self {
        let mut w = [Wave::default(); MAX_WAVES];
        let n = waves.len().min(MAX_WAVES);
        w[..n].copy_from_slice(&waves[..n]);
        // Newton on the derivative of the sum, from the main wave's centre.
        let mut t = peak;
        for _ in 0..6 {
            let (d1, d2) = w[..n].iter().fold((0.0, 0.0), |(a, b), x| {
                let (p, q) = x.d1_d2(t);
                (a + p, b + q)
            });
            if d2 >= 0.0 {
                break;
            }
            let step = (-d1 / d2).clamp(-0.005, 0.005);
            t += step;
            if step.abs() < 1e-12 {
                break;
            }
        }
        let shift = t - peak;
        let (mut start, mut end) = (f64::INFINITY, f64::NEG_INFINITY);
        for x in &mut w[..n] {
            x.c -= shift;
            let (s, e) = x.support();
            start = start.min(s);
            end = end.max(e);
        }
        Self {
            waves: w,
            n,
            start,
            end,
        }
    }

    fn value(&self, t: f64) -> f64 {
        if t < self.start || t > self.end {
            return 0.0;
        }
        self.waves[..self.n].iter().map(|w| w.value(t)).sum()
    }
}

/// A beat pushed but not yet placed (its waves need the next beat time).
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// R time, s.
    t: f64,
    /// The previous R time, if any.
    prev: Option<f64>,
    /// The time of the beat's main peak (R, or the systolic peak), s.
    peak: f64,
    /// Amplitude factor drawn for this beat.
    gain: f64,
}

/// Beats in time order, and the samples' noise-free sum of their waves.
#[derive(Debug, Clone, Default)]
struct Train {
    beats: VecDeque<(f64, Beat)>,
    pending: Option<Pending>,
    last_t: Option<f64>,
    ended: bool,
}

impl Train {
    /// The sum of every placed beat's waves at `t`; `t` never decreases between calls.
    fn value(&mut self, t: f64, reach: f64) -> f64 {
        while self.beats.front().is_some_and(|(_, b)| b.end < t) {
            self.beats.pop_front();
        }
        let mut v = 0.0;
        for (anchor, b) in &self.beats {
            if anchor - reach > t {
                break;
            }
            v += b.value(t);
        }
        v
    }

    /// Time before which every sample is final.
    fn horizon(&self, reach: f64) -> f64 {
        if self.ended {
            f64::INFINITY
        } else {
            match (&self.pending, self.last_t) {
                (Some(p), _) => p.t - reach,
                (None, Some(t)) => t - reach,
                (None, None) => f64::NEG_INFINITY,
            }
        }
    }
}

/// Phase accumulator of a sinusoid whose rate may change.
#[derive(Debug, Clone, Copy)]
struct Osc {
    phase: f64,
    step: f64,
}

impl Osc {
    fn new(hz: f64, phase: f64, fs: f64) -> Self {
        Self {
            phase,
            step: 2.0 * PI * hz / fs,
        }
    }

    fn set_hz(&mut self, hz: f64, fs: f64) {
        self.step = 2.0 * PI * hz / fs;
    }

    fn advance(&mut self) {
        self.phase += self.step;
        if self.phase > 2.0 * PI {
            self.phase -= 2.0 * PI;
        }
    }
}

/// AR(1) noise with time constant `tau_s` and stationary sd `sd`.
#[derive(Debug, Clone, Copy)]
struct Ar1 {
    a: f64,
    g: f64,
    x: f64,
}

impl Ar1 {
    fn new(tau_s: f64, sd: f64, fs: f64, x0: f64) -> Self {
        let a = (-1.0 / (tau_s * fs)).exp();
        Self {
            a,
            g: sd * (1.0 - a * a).sqrt(),
            x: x0 * sd,
        }
    }

    fn step(&mut self, w: f64) -> f64 {
        self.x = self.a * self.x + self.g * w;
        self.x
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

fn clamp_rr(rr: f64) -> f64 {
    rr.clamp(RR_CLAMP_S.0, RR_CLAMP_S.1)
}

/// Streaming ECG generator (mV) with R peaks at the pushed beat times.
#[derive(Debug, Clone)]
pub struct EcgSynth {
    p: EcgParams,
    fs: f64,
    n: u64,
    /// ECGSYN amplitudes aᵢbᵢ² normalised to R = 1, times the person's gains and R amplitude.
    amps: [f64; 5],
    train: Train,
    beat_rng: ChaCha8Rng,
    noise_rng: ChaCha8Rng,
    resp: Osc,
    mains: Osc,
    drift: Ar1,
    pink_fast: Ar1,
    pink_slow: Ar1,
}

impl EcgSynth {
    /// A generator at `fs` Hz for the person `p`; `seed` picks the beat jitter and the noise.
    pub fn new(p: &EcgParams, fs: f64, seed: u64) -> Self {
        let r_ab2 = ECGSYN_WAVES[2].1 * ECGSYN_WAVES[2].2 * ECGSYN_WAVES[2].2;
        let mut amps = [0.0; 5];
        for (i, (_, a, b)) in ECGSYN_WAVES.iter().enumerate() {
            amps[i] = a * b * b / r_ab2 * p.gains[i] * p.r_mv;
        }
        let mut noise_rng = rng_for(seed, ECG_NOISE_STREAM);
        let pink_sd = p.pink_mv * std::f64::consts::FRAC_1_SQRT_2;
        let drift = Ar1::new(5.0, p.drift_mv, fs, normal(&mut noise_rng));
        let pink_fast = Ar1::new(0.02, pink_sd, fs, normal(&mut noise_rng));
        let pink_slow = Ar1::new(0.2, pink_sd, fs, normal(&mut noise_rng));
        let mains_phase = noise_rng.random_range(0.0..2.0 * PI);
        Self {
            fs,
            n: 0,
            amps,
            train: Train::default(),
            beat_rng: rng_for(seed, ECG_BEAT_STREAM),
            noise_rng,
            resp: Osc::new(p.resp_hz, p.resp_phase, fs),
            mains: Osc::new(p.mains_hz.unwrap_or(0.0), mains_phase, fs),
            drift,
            pink_fast,
            pink_slow,
            p: p.clone(),
        }
    }

    /// Sampling rate, Hz.
    pub fn rate_hz(&self) -> f64 {
        self.fs
    }

    /// Index of the next sample to be produced (it is at `index / fs` s).
    pub fn next_index(&self) -> u64 {
        self.n
    }

    /// Changes the respiratory rate from the next sample on (the phase stays continuous).
    pub fn set_resp_hz(&mut self, hz: f64) {
        self.resp.set_hz(hz, self.fs);
    }

    /// Adds a beat (its R peak) at `t_s`; beat times must increase, and a time not after the
    /// previous one is ignored (returns `None`). Returns the R peak time, `t_s` itself.
    pub fn push_beat(&mut self, t_s: f64) -> Option<f64> {
        if self.train.ended || !t_s.is_finite() || self.train.last_t.is_some_and(|l| t_s <= l) {
            return None;
        }
        let gain = 1.0 + self.p.beat_jitter * normal(&mut self.beat_rng);
        self.place_pending(Some(t_s));
        self.train.pending = Some(Pending {
            t: t_s,
            prev: self.train.last_t,
            peak: t_s,
            gain,
        });
        self.train.last_t = Some(t_s);
        Some(t_s)
    }

    /// No more beats: every remaining sample can be produced (the last beat is shaped with the
    /// interval before it).
    pub fn end_beats(&mut self) {
        self.place_pending(None);
        self.train.ended = true;
    }

    fn place_pending(&mut self, next: Option<f64>) {
        let Some(b) = self.train.pending.take() else {
            return;
        };
        let rr_pre = b.prev.map(|p| b.t - p);
        let rr_post = next.map(|n| n - b.t);
        let (pre, post) = match (rr_pre, rr_post) {
            (Some(a), Some(c)) => (a, c),
            (Some(a), None) => (a, a),
            (None, Some(c)) => (c, c),
            (None, None) => (1.0, 1.0),
        };
        let resp = self.p.resp_phase + 2.0 * PI * self.p.resp_hz * b.t;
        let gain = b.gain * (1.0 + self.p.resp_mod * resp.sin());
        let mut waves = [Wave::default(); 5];
        for (i, (theta_deg, _, bi)) in ECGSYN_WAVES.iter().enumerate() {
            let rr = clamp_rr(if i < 2 { pre } else { post });
            let hrfact = (1.0 / rr).sqrt(); // √(HR/60), HR = 60/rr
            let tfact = match i {
                0 | 4 => hrfact.sqrt(),
                2 => 1.0,
                _ => hrfact,
            };
            let omega = 2.0 * PI / rr;
            let c = b.t + theta_deg.to_radians() * tfact / omega;
            let sd = bi * hrfact / omega;
            waves[i] = Wave::split(c, self.amps[i] * gain, sd, sd);
        }
        let beat = Beat::placed(&waves, b.peak);
        self.train.beats.push_back((b.t, beat));
    }

    /// Samples that can be produced now (those before the horizon the known beats allow).
    pub fn ready(&self) -> usize {
        let h = self.train.horizon(ECG_REACH_S);
        if h == f64::INFINITY {
            return usize::MAX;
        }
        let last = (h * self.fs).ceil() as i64; // first index at or after the horizon
        last.saturating_sub(self.n as i64).max(0) as usize
    }

    /// Writes the next `min(out.len(), ready())` samples into `out`, mV; returns how many.
    pub fn fill(&mut self, out: &mut [f64]) -> usize {
        let k = out.len().min(self.ready());
        let hum = self.p.mains_hz.is_some();
        for v in &mut out[..k] {
            let t = self.n as f64 / self.fs;
            let beats = self.train.value(t, ECG_REACH_S);
            let w = normal(&mut self.noise_rng);
            let w2 = normal(&mut self.noise_rng);
            let mut x = beats
                + self.p.wander_mv * self.resp.phase.sin()
                + self.drift.step(w)
                + self.pink_slow.step(w2)
                + self.pink_fast.step(w)
                + self.p.white_mv * w2;
            if hum {
                x += self.p.mains_mv * self.mains.phase.sin();
                self.mains.advance();
            }
            self.resp.advance();
            self.n += 1;
            *v = x;
        }
        k
    }
}

/// Streaming PPG generator (a.u.) with a pulse per pushed beat, its systolic peak a pulse
/// transit time after the R peak.
#[derive(Debug, Clone)]
pub struct PpgSynth {
    p: PpgParams,
    fs: f64,
    n: u64,
    train: Train,
    beat_rng: ChaCha8Rng,
    noise_rng: ChaCha8Rng,
    resp: Osc,
    drift: Ar1,
}

impl PpgSynth {
    /// A generator at `fs` Hz for the person `p`; `seed` picks the jitter and the noise.
    pub fn new(p: &PpgParams, fs: f64, seed: u64) -> Self {
        let mut noise_rng = rng_for(seed, PPG_NOISE_STREAM);
        let drift = Ar1::new(5.0, p.drift, fs, normal(&mut noise_rng));
        Self {
            fs,
            n: 0,
            train: Train::default(),
            beat_rng: rng_for(seed, PPG_BEAT_STREAM),
            noise_rng,
            resp: Osc::new(p.resp_hz, p.resp_phase, fs),
            drift,
            p: p.clone(),
        }
    }

    /// Sampling rate, Hz.
    pub fn rate_hz(&self) -> f64 {
        self.fs
    }

    /// Index of the next sample to be produced.
    pub fn next_index(&self) -> u64 {
        self.n
    }

    /// Changes the respiratory rate from the next sample on.
    pub fn set_resp_hz(&mut self, hz: f64) {
        self.resp.set_hz(hz, self.fs);
    }

    /// Adds a heart beat (R peak) at `t_s`; returns the time of its systolic peak, the PPG
    /// truth (`None`, and nothing added, if `t_s` is not after the previous beat).
    pub fn push_beat(&mut self, t_s: f64) -> Option<f64> {
        if self.train.ended || !t_s.is_finite() || self.train.last_t.is_some_and(|l| t_s <= l) {
            return None;
        }
        let jitter = self.p.ptt_jitter_s * normal(&mut self.beat_rng);
        let gain = 1.0 + self.p.beat_jitter * normal(&mut self.beat_rng);
        let peak = t_s + (self.p.ptt_s + jitter).max(0.05);
        self.place_pending(Some(t_s));
        self.train.pending = Some(Pending {
            t: t_s,
            prev: self.train.last_t,
            peak,
            gain,
        });
        self.train.last_t = Some(t_s);
        Some(peak)
    }

    /// No more beats.
    pub fn end_beats(&mut self) {
        self.place_pending(None);
        self.train.ended = true;
    }

    fn place_pending(&mut self, next: Option<f64>) {
        let Some(b) = self.train.pending.take() else {
            return;
        };
        // The pulse is shaped by the interval it sits in (the one starting at its R peak).
        let rr = clamp_rr(match (next, b.prev) {
            (Some(n), _) => n - b.t,
            (None, Some(p)) => b.t - p,
            (None, None) => 1.0,
        });
        let s = rr.sqrt();
        let resp = self.p.resp_phase + 2.0 * PI * self.p.resp_hz * b.peak;
        let amp = self.p.amp * b.gain * (1.0 + self.p.resp_mod * resp.sin());
        let waves = [
            Wave::split(b.peak, amp, self.p.rise_s, self.p.fall_s * s),
            Wave::split(
                b.peak + (self.p.dia_delay_s * s).min(MAX_DIA_DELAY_S),
                amp * self.p.dia_ratio,
                self.p.dia_width_s * s,
                self.p.dia_width_s * s,
            ),
        ];
        let beat = Beat::placed(&waves, b.peak);
        self.train.beats.push_back((b.t, beat));
    }

    /// Samples that can be produced now.
    pub fn ready(&self) -> usize {
        let h = self.train.horizon(PPG_REACH_S);
        if h == f64::INFINITY {
            return usize::MAX;
        }
        let last = (h * self.fs).ceil() as i64;
        last.saturating_sub(self.n as i64).max(0) as usize
    }

    /// Writes the next `min(out.len(), ready())` samples into `out`, a.u.; returns how many.
    pub fn fill(&mut self, out: &mut [f64]) -> usize {
        let k = out.len().min(self.ready());
        for v in &mut out[..k] {
            let t = self.n as f64 / self.fs;
            let pulses = self.train.value(t, PPG_REACH_S);
            let w = normal(&mut self.noise_rng);
            let w2 = normal(&mut self.noise_rng);
            *v = pulses
                + self.p.wander * self.resp.phase.sin()
                + self.drift.step(w)
                + self.p.white * w2;
            self.resp.advance();
            self.n += 1;
        }
        k
    }
}

/// The ECG of a whole record: `duration_s · fs` samples (floored) with R peaks at `beats_s`
/// (increasing, s), for person `p` and noise seed `seed`.
pub fn ecg_from_beats(
    beats_s: &[f64],
    fs: f64,
    duration_s: f64,
    p: &EcgParams,
    seed: u64,
) -> Vec<f64> {
    let mut s = EcgSynth::new(p, fs, seed);
    for &t in beats_s {
        s.push_beat(t);
    }
    s.end_beats();
    let mut out = vec![0.0; (duration_s * fs).floor().max(0.0) as usize];
    s.fill(&mut out);
    out
}

/// The PPG of a whole record and its systolic peak times (s, one per accepted beat), for heart
/// beats (R peaks) at `beats_s`.
pub fn ppg_from_beats(
    beats_s: &[f64],
    fs: f64,
    duration_s: f64,
    p: &PpgParams,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let mut s = PpgSynth::new(p, fs, seed);
    let peaks = beats_s.iter().filter_map(|&t| s.push_beat(t)).collect();
    s.end_beats();
    let mut out = vec![0.0; (duration_s * fs).floor().max(0.0) as usize];
    s.fill(&mut out);
    (out, peaks)
}

#[cfg(test)]
mod tests;
