//! The cohort's heart: RR intervals (PLACEHOLDER model, to be replaced by the calibrated one).

use super::Drives;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// One person's heart.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartPerson {
    /// Resting HR, bpm.
    pub hr_rest_bpm: f64,
    /// HR rise at full load, bpm.
    pub hr_rise_bpm: f64,
}

impl HeartPerson {
    /// Draws a heart; `z_general` is the psyche's shared reactivity factor.
    pub fn draw(rng: &mut ChaCha8Rng, z_general: f64) -> Self {
        Self {
            hr_rest_bpm: rng.random_range(55.0..85.0),
            hr_rise_bpm: (11.0 + 7.0 * z_general).max(0.0),
        }
    }

    /// The person's parameters for the recording header.
    pub fn summary(&self) -> serde_json::Value {
        json!({ "hr_rest_bpm": self.hr_rest_bpm, "hr_rise_bpm": self.hr_rise_bpm })
    }
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
    /// A false detection: the interval is part of a true one.
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

/// Simulates `p`'s heart through `drives` for `dur` s.
pub fn simulate(rng: &mut ChaCha8Rng, p: &HeartPerson, drives: &Drives, dur: f64) -> HeartOutput {
    let mut out = HeartOutput::default();
    let mut t = 0.0;
    loop {
        let hr =
            p.hr_rest_bpm + p.hr_rise_bpm * drives.arousal_at(t) + 20.0 * drives.exercise_at(t);
        let rr = 60_000.0 / hr + rng.random_range(-20.0..20.0);
        let rr = (rr.clamp(300.0, 2000.0) * 1.024).round() / 1.024;
        t += rr / 1000.0;
        if t > dur {
            break;
        }
        out.beats.push(Beat {
            t,
            rr_ms: rr,
            artefact: None,
        });
    }
    out
}
