//! The cohort's skin: skin conductance in µS as a finger/palmar sensor reports it, calibrated
//! to published electrodermal norms (the parameters, their sources and the assumptions are in
//! `/work/notes/eda.md` → `docs/evaluation.md`).
//!
//! **Electrode site (assumption)**: finger or palm, Ag/AgCl gel electrodes, constant voltage,
//! as in the laboratory literature the norms come from (Dawson, Schell & Filion 2007, *Handbook
//! of Psychophysiology* ch. 7: SCL 2–20 µS, NS-SCRs 1–3/min, recalled). A wrist sensor reads a
//! lower SCL and fewer NS-SCRs (van der Mee et al. 2021, *Int J Psychophysiol* 168:52; within-
//! person r(SCL) = 0.31 only), so these people are not wrist-sensor people.
//!
//! A person ([`EdaPerson`]) is:
//! - a **responder class**: 10 % non-responders (Braithwaite et al. 2013, a figure that depends
//!   on the stimulus and the scoring threshold: ≈ 8 % to 75 % in the studies of §3 of the
//!   calibration notes), with a low SCL (O'Gorman 1990) and essentially no SCRs; 17 %
//!   hypo-responders (assumption) with small SCRs and a small tonic response; the rest normal.
//!   The class is independent of the shared reactivity factor (O'Gorman 1990: no low arousal in
//!   other systems).
//! - **lability** `z_lab` (a stable trait, Schell, Dawson & Filion 1988, *Psychophysiology*
//!   25:619): it sets the NS-SCR rate and loads on SCL and SCR amplitude (labiles have a higher
//!   SCL and larger responses), shortens rise and recovery slightly and slows habituation.
//! - **reactivity** `r = 0.6·z_general + 0.8·z_own` (loading 0.6 on the shared factor: an
//!   assumption; the HR–EDA reactivity correlation across people is then 0.6 × the heart's own
//!   loading): it scales the tonic rise and the NS-SCR rate and amplitude gains under load and
//!   the evoked responses.
//!
//! The signal ([`simulate`]) is tonic + phasic + artefacts + noise:
//! - **tonic**: SCL·settling(t)·exp(drift(t)) + a lagged response to arousal (and a smaller one
//!   to exercise). Settling: the level rises by 5–30 % over τ 40–200 s as the gel wets the skin
//!   (assumption; dry electrodes take 10–15 min, Empatica). Drift: an Ornstein–Uhlenbeck
//!   process in log units (τ 5–15 min) plus a linear trend (temperature, hydration;
//!   assumption). Arousal raises the level with a further lag (τ 20–60 s on top of the
//!   arousal's own); exercise raises it by 20–50 % of the same person's full-stress rise
//!   (tonic EDA does rise with walking, r = 0.67, arXiv 2605.15756; kept smaller than a
//!   psychological stressor's by construction: the scenario is a confound test).
//! - **NS-SCRs**: a Poisson process whose rate rises with arousal, speaking (on its own) and
//!   exercise; log-normal amplitudes whose median rises with arousal; each response its own
//!   Bateman shape ([`scr`]).
//! - **evoked SCRs**: after each startle probe (latency 1–3 s) and at each stressor onset (a
//!   rise of arousal by ≥ 0.15 within 10 s), amplitudes habituating exponentially with the time
//!   since the first stimulus of the kind (Lim et al. 1999, *Psychophysiology* 36:543: τ 1–2
//!   min) to a floor; 2 in 11 responders habituate rapidly (Healey & Picard, MIT TR-468).
//! - **artefacts** ([`artefact`]): motion spikes and contact losses, each listed in
//!   [`EdaOutput::artefacts`].
//! - **sensor**: white noise (SD 2 nS; assumption) and rounding to 0.1 nS (the resolution of the
//!   old simulator, finer than most wearable ADCs; assumption), clamped at 0.
//!
//! All random events are drawn on the fixed [`DRIVE_HZ`] grid before any per-sample noise, so
//! the person's SCRs and artefacts do not depend on the sample rate. Deterministic for a given
//! rng.

pub mod artefact;
pub mod scr;
#[cfg(test)]
mod tests;

use super::{DRIVE_HZ, Drives};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use scr::Scr;
use serde_json::json;

/// Share of non-responders (Braithwaite et al. 2013).
pub const NON_RESPONDER_SHARE: f64 = 0.10;
/// Share of hypo-responders (assumption).
pub const HYPO_RESPONDER_SHARE: f64 = 0.17;
/// Loading of EDA reactivity on the shared factor `z_general` (assumption).
pub const GENERAL_LOADING: f64 = 0.6;
/// Share of responders who habituate to startle probes rapidly (2 of 11, MIT TR-468).
pub const RAPID_HABITUATOR_SHARE: f64 = 2.0 / 11.0;
/// A rise of arousal within [`ONSET_WINDOW_S`] that counts as a stressor onset, load units.
pub const ONSET_RISE: f64 = 0.15;
/// The window of that rise, s.
pub const ONSET_WINDOW_S: f64 = 10.0;
/// The least time between two stressor-onset SCRs, s.
pub const ONSET_REFRACTORY_S: f64 = 120.0;
/// Sensor noise SD, µS (assumption).
pub const NOISE_US: f64 = 0.002;
/// Reporting resolution, µS (0.1 nS).
pub const RESOLUTION_US: f64 = 1e-4;

/// How a person's skin responds at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responder {
    /// Normal responder.
    Normal,
    /// Much reduced amplitudes and tonic response (assumption: 17 %).
    Hypo,
    /// Essentially no SCRs, a flat and low skin (10 %).
    Non,
}

impl Responder {
    /// Name for the header.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Hypo => "hypo",
            Self::Non => "non",
        }
    }

    /// Multipliers (SCL, NS-SCR rate, NS-SCR amplitude, evoked amplitude, tonic response) of
    /// the class (assumptions: non-responders keep a trace of NS-SCRs below the 0.01–0.05 µS
    /// scoring criteria, "not complete unresponsiveness", O'Gorman 1990).
    fn factors(self) -> (f64, f64, f64, f64, f64) {
        match self {
            Self::Normal => (1.0, 1.0, 1.0, 1.0, 1.0),
            Self::Hypo => (0.8, 0.6, 0.3, 0.3, 0.4),
            Self::Non => (0.5, 0.03, 0.15, 0.03, 0.15),
        }
    }
}

/// One person's skin.
#[derive(Debug, Clone, PartialEq)]
pub struct EdaPerson {
    /// Responder class.
    pub class: Responder,
    /// Electrodermal lability, standard normal.
    pub lability_z: f64,
    /// EDA reactivity, standard normal (loads [`GENERAL_LOADING`] on `z_general`).
    pub reactivity_z: f64,
    /// Tonic level at rest once the electrodes have settled, µS.
    pub scl_us: f64,
    /// Tonic rise at full load (arousal 1), µS.
    pub scl_rise_us: f64,
    /// Lag of the tonic behind arousal, s.
    pub tonic_tau_s: f64,
    /// Tonic rise at full light walking, µS (smaller than `scl_rise_us`).
    pub exercise_rise_us: f64,
    /// Share of the level missing at t = 0 (electrode settling).
    pub settle_share: f64,
    /// Settling time constant, s.
    pub settle_tau_s: f64,
    /// SD of the slow drift, log units.
    pub drift_sd: f64,
    /// Its time constant, s.
    pub drift_tau_s: f64,
    /// Linear trend, log units per hour.
    pub trend_per_h: f64,
    /// NS-SCR rate at rest, per min.
    pub ns_rate_per_min: f64,
    /// Median NS-SCR amplitude at rest, µS.
    pub ns_amp_us: f64,
    /// NS-SCR rate at full load = rest rate × (1 + this).
    pub rate_gain: f64,
    /// Median NS-SCR amplitude at full load = rest median × (1 + this).
    pub amp_gain: f64,
    /// Extra NS-SCRs while speaking, per min.
    pub speaking_rate_per_min: f64,
    /// Median rise time of this person's SCRs, s.
    pub rise_s: f64,
    /// Median half-recovery time, s.
    pub half_recovery_s: f64,
    /// Amplitude of the SCR to the first startle probe, µS.
    pub startle_amp_us: f64,
    /// Amplitude of the SCR to a full stressor onset, µS.
    pub onset_amp_us: f64,
    /// Habituation time constant of evoked SCRs, s.
    pub habituation_tau_s: f64,
    /// Share of the first response that remains after habituation.
    pub habituation_floor: f64,
    /// Habituates rapidly to startle probes.
    pub rapid_habituator: bool,
    /// Motion artefacts per min, seated.
    pub motion_per_min: f64,
    /// Contact losses per min, seated.
    pub contact_loss_per_min: f64,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample::<f64, _>(StandardNormal)
}

impl EdaPerson {
    /// Draws a skin; `z_general` is the psyche's shared reactivity factor.
    pub fn draw(rng: &mut ChaCha8Rng, z_general: f64) -> Self {
        let u: f64 = rng.random();
        let class = if u < NON_RESPONDER_SHARE {
            Responder::Non
        } else if u < NON_RESPONDER_SHARE + HYPO_RESPONDER_SHARE {
            Responder::Hypo
        } else {
            Responder::Normal
        };
        let (f_scl, f_rate, f_amp, f_evoked, f_tonic) = class.factors();
        let z_lab = normal(rng).clamp(-3.0, 3.0);
        let z_own = normal(rng).clamp(-3.0, 3.0);
        let l = GENERAL_LOADING;
        let r = (l * z_general + (1.0 - l * l).sqrt() * z_own).clamp(-3.0, 3.0);
        // Tonic level: log-normal, median 5 µS, SD 0.5 in log units (5–95 %: 2.2–11 µS),
        // loading 0.4 on lability (labiles have a higher SCL).
        let e_scl = normal(rng);
        let scl = (5.0_f64.ln() + 0.5 * (0.4 * z_lab + 0.92 * e_scl)).exp() * f_scl;
        let scl_rise = 1.5 * (0.5 * r).exp() * f_tonic;
        let e_amp = normal(rng);
        let ns_amp = (0.1_f64.ln() + 0.4 * (0.4 * z_lab + 0.92 * e_amp)).exp() * f_amp;
        let e_rise = normal(rng);
        let rise = (1.6_f64.ln() - 0.1 * z_lab + 0.15 * e_rise).exp();
        let half = (4.5_f64.ln() - 0.1 * z_lab + 0.74 * 0.15 * e_rise).exp();
        let rapid = class != Responder::Non && rng.random::<f64>() < RAPID_HABITUATOR_SHARE;
        let e_startle = normal(rng);
        let startle = 0.5 * (0.4 * r + 0.4 * e_startle).exp() * f_evoked;
        let e_onset = normal(rng);
        let onset = 0.4 * (0.4 * r + 0.4 * e_onset).exp() * f_evoked;
        let hab_tau = (rng.random_range(60.0..120.0) * (0.35 * z_lab).exp()).clamp(40.0, 240.0);
        Self {
            class,
            lability_z: z_lab,
            reactivity_z: r,
            scl_us: scl.clamp(0.3, 40.0),
            scl_rise_us: scl_rise,
            tonic_tau_s: rng.random_range(20.0..60.0),
            exercise_rise_us: scl_rise * rng.random_range(0.2..0.5),
            settle_share: rng.random_range(0.05..0.30),
            settle_tau_s: rng.random_range(40.0..200.0),
            drift_sd: rng.random_range(0.03..0.10),
            drift_tau_s: rng.random_range(300.0..900.0),
            trend_per_h: 0.08 * normal(rng),
            ns_rate_per_min: (1.8_f64.ln() + 0.5 * z_lab).exp() * f_rate,
            ns_amp_us: ns_amp,
            rate_gain: 2.0 * (0.4 * r).exp(),
            amp_gain: 1.0 * (0.4 * r).exp(),
            speaking_rate_per_min: rng.random_range(0.5..2.0) * f_rate,
            rise_s: rise,
            half_recovery_s: half,
            startle_amp_us: startle,
            onset_amp_us: onset,
            habituation_tau_s: if rapid {
                rng.random_range(15.0..30.0)
            } else {
                hab_tau
            },
            habituation_floor: if rapid {
                0.0
            } else {
                rng.random_range(0.15..0.35)
            },
            rapid_habituator: rapid,
            motion_per_min: (0.03_f64.ln() + 0.8 * normal(rng)).exp(),
            contact_loss_per_min: (0.01_f64.ln() + 0.8 * normal(rng)).exp(),
        }
    }

    /// The person's parameters for the recording header.
    pub fn summary(&self) -> serde_json::Value {
        json!({
            "site": "finger",
            "class": self.class.name(),
            "lability_z": r3(self.lability_z),
            "reactivity_z": r3(self.reactivity_z),
            "scl_us": r3(self.scl_us),
            "scl_rise_us": r3(self.scl_rise_us),
            "exercise_rise_us": r3(self.exercise_rise_us),
            "ns_scr_per_min": r3(self.ns_rate_per_min),
            "ns_scr_amp_us": r3(self.ns_amp_us),
            "startle_amp_us": r3(self.startle_amp_us),
            "habituation_tau_s": r3(self.habituation_tau_s),
            "rapid_habituator": self.rapid_habituator,
            "motion_per_min": r3(self.motion_per_min),
            "contact_loss_per_min": r3(self.contact_loss_per_min),
        })
    }

    /// Draws one SCR's shape (rise, half-recovery) around the person's medians, coupled
    /// (R² = 0.55 in log units) and clamped to the physiological ranges.
    fn draw_shape(&self, rng: &mut ChaCha8Rng) -> (f64, f64) {
        let zr = normal(rng);
        let ze = normal(rng);
        let sr = 0.4;
        let rise = (self.rise_s.ln() + sr * zr).exp().clamp(0.5, 5.0);
        let half =
            (self.half_recovery_s.ln() + 0.55_f64.sqrt() * sr * zr + 0.45_f64.sqrt() * sr * ze)
                .exp()
                .clamp(2.0, 10.0);
        (rise, half)
    }

    /// Amplitude of an evoked SCR `since_first_s` after the first stimulus of its kind.
    fn habituated(&self, amp: f64, since_first_s: f64) -> f64 {
        let f = self.habituation_floor;
        amp * (f + (1.0 - f) * (-since_first_s / self.habituation_tau_s).exp())
    }
}

/// An artefact in the EDA signal (the truth, for evaluations).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdaArtefact {
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
    /// `motion` or `contact_loss`.
    pub kind: &'static str,
}

/// What caused an SCR (the truth, for evaluations and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrCause {
    /// Non-specific (spontaneous).
    Spontaneous,
    /// A startle probe.
    Startle,
    /// A stressor onset.
    Onset,
}

/// A simulated skin over a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdaOutput {
    /// Samples from t = 0 at the requested rate, µS (as the sensor reports them).
    pub samples: Vec<f64>,
    /// Artefacts.
    pub artefacts: Vec<EdaArtefact>,
    /// Every SCR added, with its cause (the truth).
    pub scrs: Vec<(ScrCause, Scr)>,
    /// The tonic level without SCRs, artefacts or noise, on the [`DRIVE_HZ`] grid, µS.
    pub tonic_us: Vec<f64>,
}

impl EdaOutput {
    /// Counts of each artefact kind, for the header.
    pub fn artefact_counts(&self) -> serde_json::Value {
        let n = |k: &str| self.artefacts.iter().filter(|a| a.kind == k).count();
        json!({ "motion": n("motion"), "contact_loss": n("contact_loss") })
    }
}

/// Simulates `p`'s skin through `drives` for `dur` s at `fs` Hz.
pub fn simulate(
    rng: &mut ChaCha8Rng,
    p: &EdaPerson,
    drives: &Drives,
    dur: f64,
    fs: f64,
) -> EdaOutput {
    let n = (dur * fs).floor().max(0.0) as usize;
    let dt = 1.0 / DRIVE_HZ;
    let ng = (dur * DRIVE_HZ).ceil().max(0.0) as usize + 2;
    // 1. Tonic on the grid.
    let mut tonic = Vec::with_capacity(ng);
    let kd = (-dt / p.drift_tau_s).exp();
    let drift_step = p.drift_sd * (1.0 - kd * kd).sqrt();
    let kt = 1.0 - (-dt / p.tonic_tau_s).exp();
    let mut drift = p.drift_sd * normal(rng);
    let mut rise = 0.0;
    for k in 0..ng {
        let t = k as f64 * dt;
        let target = p.scl_rise_us * drives.arousal_at(t).max(-0.3)
            + p.exercise_rise_us * drives.exercise_at(t);
        if k == 0 {
            rise = target;
        } else {
            rise += (target - rise) * kt;
        }
        drift = kd * drift + drift_step * normal(rng);
        let settle = 1.0 - p.settle_share * (-t / p.settle_tau_s).exp();
        let level = p.scl_us * settle * (drift + p.trend_per_h * t / 3600.0).exp() + rise;
        tonic.push(level.max(0.05 * p.scl_us));
    }
    // 2. Spontaneous SCRs (Poisson on the grid).
    let mut scrs: Vec<(ScrCause, Scr)> = Vec::new();
    for k in 0..ng {
        let t = k as f64 * dt;
        if t >= dur {
            break;
        }
        let a = drives.arousal_at(t);
        let e = drives.exercise_at(t);
        let mut rate = p.ns_rate_per_min * (1.0 + p.rate_gain * a.max(-0.4)) * (1.0 + 0.5 * e);
        if drives.speaking_at(t) {
            rate += p.speaking_rate_per_min;
        }
        let prob = (rate / 60.0 * dt).clamp(0.0, 0.5);
        let u: f64 = rng.random();
        if u < prob {
            let onset = t + dt * rng.random::<f64>();
            let median = p.ns_amp_us * (1.0 + p.amp_gain * a.max(0.0));
            let amp = (median.ln() + 0.6 * normal(rng)).exp();
            let (r, h) = p.draw_shape(rng);
            scrs.push((ScrCause::Spontaneous, Scr::new(onset, amp, r, h)));
        }
    }
    // 3. Evoked SCRs: startle probes and stressor onsets.
    let first_startle = drives.startles.first().copied().unwrap_or(0.0);
    for &s in &drives.startles {
        let latency = rng.random_range(1.0..3.0);
        let amp = p.habituated(p.startle_amp_us, s - first_startle) * (0.3 * normal(rng)).exp();
        let (r, h) = p.draw_shape(rng);
        if s + latency < dur {
            scrs.push((ScrCause::Startle, Scr::new(s + latency, amp, r, h)));
        }
    }
    let back = (ONSET_WINDOW_S * DRIVE_HZ).round() as usize;
    let mut last_onset = f64::NEG_INFINITY;
    let mut first_onset: Option<f64> = None;
    for k in back..ng {
        let t = k as f64 * dt;
        if t >= dur {
            break;
        }
        let rise_a = drives.arousal_at(t) - drives.arousal_at(t - ONSET_WINDOW_S);
        if rise_a >= ONSET_RISE && t - last_onset >= ONSET_REFRACTORY_S {
            last_onset = t;
            let first = *first_onset.get_or_insert(t);
            let size = (rise_a / 0.3).min(1.0);
            let latency = rng.random_range(1.0..3.0);
            let amp = p.habituated(p.onset_amp_us * size, t - first) * (0.3 * normal(rng)).exp();
            let (r, h) = p.draw_shape(rng);
            if t + latency < dur {
                scrs.push((ScrCause::Onset, Scr::new(t + latency, amp, r, h)));
            }
        }
    }
    // 4. Artefact events (on the grid).
    let mut events = Vec::new();
    let mut busy_until = 0.0;
    for (k, &level) in tonic.iter().enumerate() {
        let t = k as f64 * dt;
        if t >= dur {
            break;
        }
        let e = drives.exercise_at(t);
        let walk = 1.0 + (artefact::WALKING_FACTOR - 1.0) * e;
        let talk = if drives.speaking_at(t) {
            artefact::SPEAKING_FACTOR
        } else {
            1.0
        };
        let pm = (p.motion_per_min * walk * talk / 60.0 * dt).min(0.5);
        let pc = (p.contact_loss_per_min * walk / 60.0 * dt).min(0.5);
        let u: f64 = rng.random();
        if t < busy_until {
            continue;
        }
        let ev = if u < pc {
            Some(artefact::draw_contact_loss(rng, t))
        } else if u < pc + pm {
            Some(artefact::draw_motion(rng, t, level))
        } else {
            None
        };
        if let Some(ev) = ev {
            busy_until = ev.span().end_s;
            events.push(ev);
        }
    }
    // 5. Samples: tonic (interpolated) + SCRs over their spans + artefacts + noise.
    let mut x: Vec<f64> = (0..n)
        .map(|i| {
            let g = i as f64 / fs * DRIVE_HZ;
            let k = g.floor() as usize;
            match (tonic.get(k), tonic.get(k + 1)) {
                (Some(&a), Some(&b)) => a + (b - a) * (g - k as f64),
                (Some(&a), None) => a,
                _ => tonic.last().copied().unwrap_or(0.0),
            }
        })
        .collect();
    for (_, s) in &scrs {
        s.add_to(&mut x, fs);
    }
    for ev in &events {
        artefact::apply(ev, &mut x, fs, rng);
    }
    for v in &mut x {
        let noisy = (*v + NOISE_US * normal(rng)).max(0.0);
        *v = (noisy / RESOLUTION_US).round() * RESOLUTION_US;
    }
    EdaOutput {
        samples: x,
        artefacts: events.iter().map(|e| e.span()).collect(),
        scrs,
        tonic_us: tonic,
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
