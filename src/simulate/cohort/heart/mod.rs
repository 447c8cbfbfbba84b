//! The cohort's heart: RR intervals of one person through a session, calibrated to published
//! resting norms and to the within-person variability of real recordings (not to any policy).
//!
//! Heart rate is built on a 4 Hz grid and read at each beat:
//!
//! - **Rest level and slow non-stationarity**: the person's resting HR plus four
//!   Ornstein–Uhlenbeck processes on HR (time constants 20 min, 5 min, 45 s, 10 s) whose sizes
//!   were set so that the within-person SD of 10/60/120 s window means of HR matches the real
//!   recordings in `fixtures/signals/pyhrv_nn_*.csv` (MIT-BIH Normal Sinus Rhythm via pyhrv).
//! - **Respiratory sinus arrhythmia (RSA)** at a breathing rate that wanders (12–18 breaths/min
//!   per person plus an OU wander), with an amplitude modulated on two time scales (seconds and
//!   ~10 min, so 5-min RMSSD drifts within a person over an hour as the long real series does);
//!   Task Force 1996 (*Eur Heart J* 17:354) HF band 0.15–0.4 Hz.
//! - **Mayer waves**: a narrow-band stochastic oscillator near 0.1 Hz (LF band 0.04–0.15 Hz;
//!   McSharry et al. 2003, *IEEE TBME* 50:289, for the bimodal RR spectrum).
//! - The RSA and Mayer sizes are solved per person from a drawn resting RMSSD and LF/HF
//!   (Nunan, Sandercock & Brodie 2010, *PACE* 33:1407: RMSSD 19–75 ms, SDNN 32–93 ms,
//!   LF/HF 1.1–11.6; Shaffer & Ginsberg 2017, *Front Public Health* 5:258), using closed forms
//!   for each component's successive-difference variance and band power.
//! - **Stress** (the psyche's arousal): HR rises by a per-person gain (N(11, 7²) bpm at full
//!   load, clipped at 0, so null and small responders exist; TSST HR effect sizes 0.85–1.38,
//!   Helminen et al. 2021, *Psychosom Med* 83:200, and the 171-study TSST meta-analysis), and
//!   HF-HRV withdraws by an amount that depends on the person's baseline RSA (high-RSA people
//!   lose most, low-RSA people none or gain a little; *Dev Psychobiol* 2014 56:1036, Table 4).
//!   Breathing speeds up slightly.
//! - **Paced breathing** at 0.1 Hz: breathing locks onto the pacer within seconds and the RSA
//!   amplitude grows over about a minute by a per-person resonance gain (Lehrer & Gevirtz 2014,
//!   *Front Psychol* 5:756); RMSSD and LF/HF rise (Shao, Man & Lee 2024, *Mindfulness* 15:1,
//!   RMSSD SMD 0.37; Steffen et al. 2017), HR is unchanged.
//! - **Exercise** (light walking): HR rises by a per-person amount (light activity ≤ 16 bpm
//!   above rest, moderate ≤ 35 bpm), RSA and Mayer waves are suppressed, breathing is faster.
//! - **Speaking**: breathing becomes irregular (fast wander of rate and amplitude) and the RSA
//!   amplitude falls, so HF-HRV moves while talking without any stress.
//! - **Startle**: a brief acceleration after each probe (assumption: a few bpm peaking ~2.5 s
//!   after the probe and gone within ~10 s; habituates across probes).
//!
//! Artefacts ([`artefacts`]) are laid over the sinus beats: ectopic short–long pairs, missed and
//! extra detections, and contact-loss dropouts. `docs/evaluation.md` has every parameter with
//! its source or the reason for the assumption, and the realism numbers.

pub mod artefacts;
pub mod processes;
#[cfg(test)]
mod tests;

use super::{DRIVE_HZ, Drives};
use artefacts::{Rates, Sinus};
use processes::{Ou, Resonator, osc_diff_var, ou_band_share, ou_diff_var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde_json::json;
use std::f64::consts::PI;

/// Time constants of the HR non-stationarity processes, s.
pub const HR_OU_TAU_S: [f64; 4] = [1200.0, 300.0, 45.0, 10.0];
/// Their SDs for a typical person, bpm (scaled per person; calibrated to the real recordings'
/// within-person spread of window-mean HR).
pub const HR_OU_SD_BPM: [f64; 4] = [1.0, 1.2, 1.9, 3.2];
/// Damping time of the Mayer-wave resonator, s (peak width ≈ 0.016 Hz).
pub const MAYER_TAU_S: f64 = 20.0;
/// Correlation of the heart's stress factor with the psyche's `z_general`.
pub const Z_GENERAL_LOADING: f64 = 0.6;

/// One person's heart.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartPerson {
    /// Resting HR, bpm.
    pub hr_rest_bpm: f64,
    /// HR rise at full load, bpm.
    pub hr_rise_bpm: f64,
    /// The person's vagal (HRV) factor, standard normal: sets RMSSD, lowers resting HR and
    /// scales the HRV withdrawal under stress.
    pub z_vagal: f64,
    /// Drawn resting 5-min RMSSD the components are solved for, ms.
    pub rmssd_target_ms: f64,
    /// Drawn resting LF/HF the components are solved for.
    pub lf_hf_target: f64,
    /// Resting breathing rate, Hz.
    pub resp_hz: f64,
    /// Mayer-wave centre frequency, Hz.
    pub mayer_hz: f64,
    /// RSA amplitude at rest, ms.
    pub rsa_amp_ms: f64,
    /// Mayer-wave SD at rest, ms.
    pub mayer_sd_ms: f64,
    /// White beat-to-beat jitter SD, ms.
    pub jitter_ms: f64,
    /// SDs of the HR non-stationarity processes (time constants [`HR_OU_TAU_S`]), bpm.
    pub hr_ou_sd_bpm: [f64; 4],
    /// Withdrawal of HF power at full load, ln units (negative: HF rises a little).
    pub hf_withdrawal_ln: f64,
    /// Growth of the RSA amplitude at resonance (0.1 Hz paced breathing), factor.
    pub resonance_gain: f64,
    /// HR rise during light walking, bpm.
    pub exercise_rise_bpm: f64,
    /// HR acceleration after a (first) startle probe, bpm.
    pub startle_bpm: f64,
    /// Ectopic beats per hour.
    pub ectopic_per_h: f64,
    /// Detection-error and dropout multiplier (strap fit).
    pub strap_factor: f64,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let z: f64 = rng.sample(StandardNormal);
    z.clamp(-3.5, 3.5)
}

impl HeartPerson {
    /// Draws a heart; `z_general` is the psyche's shared reactivity factor (the heart's stress
    /// factor is `0.6·z_general + 0.8·own`, so it correlates 0.6 with it).
    pub fn draw(rng: &mut ChaCha8Rng, z_general: f64) -> Self {
        let z_vagal = normal(rng);
        let z_hr = normal(rng);
        // Resting HR ~ N(68, 9²) clipped 50–95 (synthesis; Nunan 2010 mean RR ≈ 926 ms, recalled),
        // lower in people with high HRV (assumption: r ≈ −0.4).
        let hr_rest_bpm =
            (68.0 + 9.0 * (-0.4 * z_vagal + (1.0 - 0.16_f64).sqrt() * z_hr)).clamp(50.0, 95.0);
        // ln RMSSD ~ N(ln 38, 0.4²): 5th–95th ≈ 20–73 ms (Nunan 2010 range 19–75 ms).
        let rmssd_target_ms = (38.0_f64.ln() + 0.4 * z_vagal).exp().clamp(10.0, 150.0);
        // LF/HF log-normal, median 2, ln-SD 0.7 (Nunan 2010 range of study means 1.1–11.6).
        let lf_hf_target = (2.0_f64.ln() + 0.7 * normal(rng)).exp().clamp(0.4, 15.0);
        let resp_hz = rng.random_range(0.2..0.3);
        let mayer_hz = rng.random_range(0.085..0.115);
        let jitter_ms = rng.random_range(2.0..5.0);
        // Non-stationarity scales with the vagal factor in part (assumption).
        let ou_scale = (0.3 * (0.5 * z_vagal + 0.87 * normal(rng))).exp();
        let mut hr_ou_sd_bpm = HR_OU_SD_BPM.map(|s| s * ou_scale);

        // Solve the RSA amplitude and the Mayer SD for the drawn RMSSD and LF/HF.
        let rr_rest = 60_000.0 / hr_rest_bpm;
        let t = rr_rest / 1000.0;
        let ms_per_bpm = rr_rest * rr_rest / 60_000.0;
        let r2 = rmssd_target_ms * rmssd_target_ms;
        let d_j = 2.0 * jitter_ms * jitter_ms;
        let ou_var = |sd: &[f64; 4]| sd.map(|s| (s * ms_per_bpm).powi(2));
        let d_ou = |sd: &[f64; 4]| {
            ou_var(sd)
                .iter()
                .zip(HR_OU_TAU_S)
                .map(|(v, tau)| ou_diff_var(*v, tau, t))
                .sum::<f64>()
        };
        let budget = 0.5 * r2 - d_j;
        if d_ou(&hr_ou_sd_bpm) > budget {
            let k = (budget.max(0.0) / d_ou(&hr_ou_sd_bpm)).sqrt();
            hr_ou_sd_bpm = hr_ou_sd_bpm.map(|s| s * k);
        }
        let var = ou_var(&hr_ou_sd_bpm);
        let leak = |lo: f64, hi: f64| {
            var.iter()
                .zip(HR_OU_TAU_S)
                .map(|(v, tau)| v * ou_band_share(tau, lo, hi))
                .sum::<f64>()
        };
        let lf_leak = leak(0.04, 0.15);
        let hf_leak = leak(0.15, 0.4) + 0.45 * jitter_ms * jitter_ms;
        let rem = r2 - d_ou(&hr_ou_sd_bpm) - d_j;
        // Per unit variance: successive-difference variance of RSA and Mayer.
        let c_r = osc_diff_var(1.0, resp_hz, f64::INFINITY, t);
        let c_m = osc_diff_var(1.0, mayer_hz, MAYER_TAU_S, t);
        // RSA variance v_r = A²/2; Mayer variance v_m = lf_hf·(v_r + hf_leak) − lf_leak.
        let (alpha, beta) = (lf_hf_target, lf_hf_target * hf_leak - lf_leak);
        let mut v_r = (rem - c_m * beta) / (c_r + c_m * alpha);
        let mut v_m = alpha * v_r + beta;
        if v_m < 0.05 * v_r {
            v_r = rem / (c_r + 0.05 * c_m);
            v_m = 0.05 * v_r;
        }
        let rsa_amp_ms = (2.0 * v_r.max(0.0)).sqrt().max(3.0);
        let mayer_sd_ms = v_m.max(0.0).sqrt().max(2.0);

        // Stress: rise N(11, 7²) bpm at full load, clipped at 0.
        let z_stress = Z_GENERAL_LOADING * z_general
            + (1.0 - Z_GENERAL_LOADING * Z_GENERAL_LOADING).sqrt() * normal(rng);
        let hr_rise_bpm = (11.0 + 7.0 * z_stress).max(0.0);
        let responder = 0.3 + 0.7 * (hr_rise_bpm / 11.0).min(1.5);
        let hf_withdrawal_ln =
            ((0.5 + 0.6 * z_vagal + 0.3 * normal(rng)) * responder).clamp(-0.3, 2.5);
        let resonance_gain = (3.3_f64.ln() + 0.3 * normal(rng)).exp().clamp(1.5, 7.0);
        let exercise_rise_bpm = (16.0 + 4.0 * normal(rng)).clamp(8.0, 28.0);
        let startle_bpm = rng.random_range(2.0..8.0);
        // Ectopy: 31 % none in 24 h; others log-normal so that the cohort median is 2/24 h and
        // the 95th percentile 200/24 h.
        let ectopic_per_h = if rng.random_bool(0.31) {
            0.0
        } else {
            ((2.03 + 2.24 * normal(rng)).exp() / 24.0).min(100.0)
        };
        let strap_factor = (0.5 * normal(rng) - 0.125).exp();
        Self {
            hr_rest_bpm,
            hr_rise_bpm,
            z_vagal,
            rmssd_target_ms,
            lf_hf_target,
            resp_hz,
            mayer_hz,
            rsa_amp_ms,
            mayer_sd_ms,
            jitter_ms,
            hr_ou_sd_bpm,
            hf_withdrawal_ln,
            resonance_gain,
            exercise_rise_bpm,
            startle_bpm,
            ectopic_per_h,
            strap_factor,
        }
    }

    /// The person's parameters for the recording header.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "hr_rest_bpm": r3(self.hr_rest_bpm),
            "hr_rise_bpm": r3(self.hr_rise_bpm),
            "rmssd_target_ms": r3(self.rmssd_target_ms),
            "lf_hf_target": r3(self.lf_hf_target),
            "resp_hz": r3(self.resp_hz),
            "mayer_hz": r3(self.mayer_hz),
            "rsa_amp_ms": r3(self.rsa_amp_ms),
            "mayer_sd_ms": r3(self.mayer_sd_ms),
            "hr_ou_sd_bpm": self.hr_ou_sd_bpm.map(r3),
            "hf_withdrawal_ln": r3(self.hf_withdrawal_ln),
            "resonance_gain": r3(self.resonance_gain),
            "exercise_rise_bpm": r3(self.exercise_rise_bpm),
            "startle_bpm": r3(self.startle_bpm),
            "ectopic_per_h": r3(self.ectopic_per_h),
            "strap_factor": r3(self.strap_factor),
        })
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What a beat's reported interval is, if not a clean sinus interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeatArtefact {
    /// A premature (ectopic) beat: the interval ending at it is short.
    Ectopic,
    /// The compensatory pause after an ectopic beat.
    Compensatory,
    /// A beat the sensor missed: the interval spans two true ones.
    Missed,
    /// A false detection: the interval is part of a true one (both parts are marked).
    Extra,
}

/// One reported beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beat {
    /// Device time of the beat, s.
    pub t: f64,
    /// The interval ending at it as the sensor reports it, ms (quantised to 1/1024 s).
    pub rr_ms: f64,
    /// The truth about it.
    pub artefact: Option<BeatArtefact>,
}

/// A stretch with no beats (strap contact lost).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
}

/// A simulated heart over a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartOutput {
    /// Beats in time order.
    pub beats: Vec<Beat>,
    /// Dropouts.
    pub dropouts: Vec<Dropout>,
}

impl HeartOutput {
    /// Counts of each artefact, for the header.
    pub fn artefact_counts(&self) -> serde_json::Value {
        let n = |k: BeatArtefact| self.beats.iter().filter(|b| b.artefact == Some(k)).count();
        json!({
            "ectopic": n(BeatArtefact::Ectopic),
            "missed": n(BeatArtefact::Missed),
            "extra": n(BeatArtefact::Extra),
            "dropouts": self.dropouts.len(),
        })
    }
}

/// Time constants of the RSA amplitude modulation (fast, slow), s.
const RSA_MOD_TAU_S: [f64; 2] = [20.0, 600.0];
/// Their ln-SDs (the slow one makes 5-min RMSSD drift by ~±20 % over an hour).
const RSA_MOD_SD_LN: [f64; 2] = [0.25, 0.18];

/// The continuous state on the drive grid.
struct Grid {
    hr: Vec<f64>,
    amp: Vec<f64>,
    phase: Vec<f64>,
    mayer: Vec<f64>,
}

fn startle_bpm(p: &HeartPerson, startles: &[f64], t: f64) -> f64 {
    startles
        .iter()
        .enumerate()
        .filter(|(_, s)| t > **s + 0.5 && t < **s + 15.0)
        .map(|(k, s)| {
            let x = (t - s - 0.5) / 2.0;
            p.startle_bpm * 0.8_f64.powi(k as i32) * x * (1.0 - x).exp()
        })
        .sum()
}

fn grid(rng: &mut ChaCha8Rng, p: &HeartPerson, d: &Drives, dur: f64) -> Grid {
    let dt = 1.0 / DRIVE_HZ;
    let n = (dur * DRIVE_HZ).ceil() as usize + 8;
    let mut hr_ou: Vec<Ou> = p
        .hr_ou_sd_bpm
        .iter()
        .zip(HR_OU_TAU_S)
        .map(|(sd, tau)| Ou::new(rng, *sd, tau, dt))
        .collect();
    let mut amp_ou: Vec<Ou> = RSA_MOD_SD_LN
        .iter()
        .zip(RSA_MOD_TAU_S)
        .map(|(sd, tau)| Ou::new(rng, *sd, tau, dt))
        .collect();
    let mut resp_ou = Ou::new(rng, 0.02, 30.0, dt);
    let mut speech_ou = Ou::new(rng, 0.07, 3.0, dt);
    let mut mayer = Resonator::new(rng, p.mayer_sd_ms, p.mayer_hz, MAYER_TAU_S, dt);
    let mut g = Grid {
        hr: Vec::with_capacity(n),
        amp: Vec::with_capacity(n),
        phase: Vec::with_capacity(n),
        mayer: Vec::with_capacity(n),
    };
    let mut phase = rng.random_range(0.0..2.0 * PI);
    let mut paced_w = 0.0;
    let mut paced_hz = 0.1;
    let mut resonance = 1.0;
    let norm = RSA_MOD_SD_LN.iter().map(|s| s * s).sum::<f64>();
    for i in 0..n {
        let t = i as f64 * dt;
        let a = d.arousal_at(t);
        let e = d.exercise_at(t).clamp(0.0, 1.0);
        let speaking = d.speaking_at(t);
        let paced = d.paced_resp_at(t);
        let slow: f64 = hr_ou.iter_mut().map(|o| o.step(rng)).sum();
        let hr = p.hr_rest_bpm
            + slow
            + p.hr_rise_bpm * a
            + p.exercise_rise_bpm * e
            + startle_bpm(p, &d.startles, t);
        // Breathing: the person's rate, faster under stress and exercise, wandering; while
        // speaking it jumps about; a pacer captures it within seconds.
        let mut f_free = p.resp_hz + 0.04 * a.max(0.0) + 0.12 * e + resp_ou.step(rng);
        let sp = speech_ou.step(rng);
        if speaking {
            f_free += sp;
        }
        let w_target = if let Some(f) = paced {
            paced_hz = f;
            1.0
        } else {
            0.0
        };
        paced_w += (w_target - paced_w) * (1.0 - (-dt / 4.0_f64).exp());
        let f = (paced_w * paced_hz + (1.0 - paced_w) * f_free).clamp(0.08, 0.6);
        phase += 2.0 * PI * f * dt;
        let (res_target, res_tau) = if paced.is_some() {
            (p.resonance_gain, 60.0)
        } else {
            (1.0, 30.0)
        };
        resonance += (res_target - resonance) * (1.0 - (-dt / res_tau).exp());
        // RSA amplitude: modulated (E[m²] = 1), withdrawn by stress (baseline-dependent), by
        // exercise and partly by speaking; grown at resonance.
        let fast_gain = if speaking { 2.0 } else { 1.0 };
        let m = (amp_ou[0].step_scaled(rng, fast_gain) + amp_ou[1].step(rng) - norm).exp();
        let speech = if speaking { 0.75 } else { 1.0 };
        let amp = p.rsa_amp_ms
            * m
            * (-p.hf_withdrawal_ln * a.max(0.0) / 2.0).exp()
            * (-1.6 * e).exp()
            * speech
            * resonance;
        let my = mayer.step(rng) * (-e).exp();
        g.hr.push(hr.clamp(35.0, 200.0));
        g.amp.push(amp);
        g.phase.push(phase);
        g.mayer.push(my);
    }
    g
}

fn at(v: &[f64], x: f64) -> f64 {
    let i = x.floor().max(0.0) as usize;
    match (v.get(i), v.get(i + 1)) {
        (Some(&a), Some(&b)) => a + (b - a) * (x - i as f64),
        (Some(&a), None) => a,
        _ => v.last().copied().unwrap_or(0.0),
    }
}

/// The true sinus beats through `drives` for `dur` s (ticks of 1/1024 s).
pub fn sinus_beats(rng: &mut ChaCha8Rng, p: &HeartPerson, drives: &Drives, dur: f64) -> Vec<Sinus> {
    let g = grid(rng, p, drives, dur);
    let rr_rest = 60_000.0 / p.hr_rest_bpm;
    let end = (dur * 1024.0) as u64;
    let mut out = Vec::with_capacity((dur * 3.5) as usize + 4);
    let mut t: u64 = 0;
    loop {
        let x = t as f64 / 1024.0 * DRIVE_HZ;
        let rr_base = 60_000.0 / at(&g.hr, x);
        let scale = rr_base / rr_rest;
        let z: f64 = rng.sample(StandardNormal);
        let rr = rr_base
            + scale * (at(&g.amp, x) * at(&g.phase, x).sin() + at(&g.mayer, x))
            + p.jitter_ms * z;
        let ticks = (rr.clamp(250.0, 2500.0) * 1.024).round() as u64;
        t += ticks;
        if t > end {
            break;
        }
        out.push(Sinus { t, rr: ticks });
    }
    out
}

/// Simulates `p`'s heart through `drives` for `dur` s: sinus beats, then what the strap reports
/// of them (artefacts marked, dropouts returned).
pub fn simulate(rng: &mut ChaCha8Rng, p: &HeartPerson, drives: &Drives, dur: f64) -> HeartOutput {
    let sinus = sinus_beats(rng, p, drives, dur);
    let rates = Rates {
        ectopic_per_h: p.ectopic_per_h,
        strap_factor: p.strap_factor,
    };
    artefacts::report(rng, &sinus, &rates, |t| drives.exercise_at(t))
}
