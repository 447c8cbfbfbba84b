//! EDA artefacts: motion (electrode pressure or shear) and electrode contact loss.
//!
//! - **Motion**: an abrupt spike, up (pressure, 70 %) or down, reached within 10–40 ms and so
//!   steeper than the ±10 µS/s that Kleckner et al. 2018 (*IEEE TBME* 65:1460) treat as
//!   physiologically invalid, recovering fast (τ 0.3–1 s); 30 % leave a step of 20–50 % of the
//!   spike that decays over 3–8 s. Size: 5–40 % of the tonic level and at least 0.5 µS
//!   (assumption: no measured distribution found).
//! - **Contact loss**: the conductance falls to ≈ 0 (below 0.05 µS, Kleckner's lower validity
//!   bound) for 2–20 s (log-uniform; assumption), then the contact returns at 50–80 % of the
//!   level and settles back over τ 1–4 s (assumption).
//!
//! Both arrive as Poisson processes on the drive grid at the person's seated-lab rate, ×10 at
//! full walking and ×2 (motion only) while speaking (gestures): assumptions, see
//! `/work/notes/eda.md`. Events are drawn on the fixed grid, so they do not depend on the
//! sample rate.

use super::EdaArtefact;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// How much more often artefacts happen at full light walking than seated (assumption).
pub const WALKING_FACTOR: f64 = 10.0;
/// How much more often motion artefacts happen while speaking (assumption: gestures).
pub const SPEAKING_FACTOR: f64 = 2.0;

/// One drawn artefact and how it changes the signal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// A spike of `amp_us` (signed) at `t` with recovery `tau_s`, leaving a step of
    /// `step_us` decaying with `step_tau_s`.
    Motion {
        /// Start, s.
        t: f64,
        /// Signed spike size, µS.
        amp_us: f64,
        /// Rise time to the spike, s.
        rise_s: f64,
        /// Recovery time constant, s.
        tau_s: f64,
        /// Signed lingering step, µS.
        step_us: f64,
        /// Its decay time constant, s.
        step_tau_s: f64,
    },
    /// No contact from `t` for `dur_s`; returns at `back` of the level, settling with `tau_s`.
    ContactLoss {
        /// Start, s.
        t: f64,
        /// Duration without contact, s.
        dur_s: f64,
        /// Share of the level on reconnection.
        back: f64,
        /// Settling time constant, s.
        tau_s: f64,
    },
}

impl Event {
    /// The span it marks as an artefact.
    pub fn span(&self) -> EdaArtefact {
        match *self {
            Self::Motion {
                t,
                rise_s,
                tau_s,
                step_us,
                step_tau_s,
                ..
            } => {
                let tail = if step_us != 0.0 {
                    4.0 * step_tau_s
                } else {
                    5.0 * tau_s
                };
                EdaArtefact {
                    start_s: t,
                    end_s: t + rise_s + tail.max(5.0 * tau_s),
                    kind: "motion",
                }
            }
            Self::ContactLoss {
                t, dur_s, tau_s, ..
            } => EdaArtefact {
                start_s: t,
                end_s: t + dur_s + 4.0 * tau_s,
                kind: "contact_loss",
            },
        }
    }
}

/// Draws a motion artefact at `t` on a tonic level of `level_us`.
pub fn draw_motion(rng: &mut ChaCha8Rng, t: f64, level_us: f64) -> Event {
    let rel = (rng.random_range(0.05_f64.ln()..0.40_f64.ln())).exp();
    let sign = if rng.random::<f64>() < 0.7 { 1.0 } else { -1.0 };
    let amp = sign * (rel * level_us).max(0.5);
    let step = if rng.random::<f64>() < 0.3 {
        amp * rng.random_range(0.2..0.5)
    } else {
        0.0
    };
    Event::Motion {
        t,
        amp_us: amp,
        rise_s: rng.random_range(0.01..0.04),
        tau_s: rng.random_range(0.3..1.0),
        step_us: step,
        step_tau_s: rng.random_range(3.0..8.0),
    }
}

/// Draws a contact loss at `t`.
pub fn draw_contact_loss(rng: &mut ChaCha8Rng, t: f64) -> Event {
    Event::ContactLoss {
        t,
        dur_s: (rng.random_range(2.0_f64.ln()..20.0_f64.ln())).exp(),
        back: rng.random_range(0.5..0.8),
        tau_s: rng.random_range(1.0..4.0),
    }
}

/// Applies `ev` to `x` (true conductance, samples from t = 0 at `fs`). Contact loss writes a
/// near-zero floor (0–0.02 µS; the sensor's own noise is added later and the result is kept
/// ≥ 0 and, with the noise, below 0.05 µS).
pub fn apply(ev: &Event, x: &mut [f64], fs: f64, rng: &mut ChaCha8Rng) {
    let span = ev.span();
    let i0 = (span.start_s * fs).ceil().max(0.0) as usize;
    let i1 = ((span.end_s * fs).ceil().max(0.0) as usize).min(x.len());
    match *ev {
        Event::Motion {
            t,
            amp_us,
            rise_s,
            tau_s,
            step_us,
            step_tau_s,
        } => {
            for (i, v) in x.iter_mut().enumerate().take(i1).skip(i0) {
                let u = i as f64 / fs - t;
                let add = if u < rise_s {
                    amp_us * u / rise_s
                } else {
                    let r = u - rise_s;
                    (amp_us - step_us) * (-r / tau_s).exp() + step_us * (-r / step_tau_s).exp()
                };
                *v = (*v + add).max(0.0);
            }
        }
        Event::ContactLoss {
            t,
            dur_s,
            back,
            tau_s,
        } => {
            for (i, v) in x.iter_mut().enumerate().take(i1).skip(i0) {
                let u = i as f64 / fs - t;
                if u < dur_s {
                    *v = rng.random_range(0.0..0.02);
                } else {
                    let r = u - dur_s;
                    *v *= 1.0 - (1.0 - back) * (-r / tau_s).exp();
                }
            }
        }
    }
}
