//! The cohort's skin: EDA in µS (PLACEHOLDER model, to be replaced by the calibrated one).

use super::Drives;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// One person's skin.
#[derive(Debug, Clone, PartialEq)]
pub struct EdaPerson {
    /// Tonic level at rest, µS.
    pub scl_us: f64,
    /// Tonic rise at full load, µS.
    pub scl_rise_us: f64,
}

impl EdaPerson {
    /// Draws a skin; `z_general` is the psyche's shared reactivity factor.
    pub fn draw(rng: &mut ChaCha8Rng, z_general: f64) -> Self {
        Self {
            scl_us: rng.random_range(2.0..10.0),
            scl_rise_us: (1.0 + 0.5 * z_general).max(0.0),
        }
    }

    /// The person's parameters for the recording header.
    pub fn summary(&self) -> serde_json::Value {
        json!({ "scl_us": self.scl_us, "scl_rise_us": self.scl_rise_us })
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

/// A simulated skin over a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EdaOutput {
    /// Samples from t = 0 at the requested rate, µS (as the sensor reports them).
    pub samples: Vec<f64>,
    /// Artefacts.
    pub artefacts: Vec<EdaArtefact>,
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
    let n = (dur * fs).floor() as usize;
    let samples = (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            let v =
                p.scl_us + p.scl_rise_us * drives.arousal_at(t) + rng.random_range(-0.003..0.003);
            (v * 10_000.0).round() / 10_000.0
        })
        .collect();
    EdaOutput {
        samples,
        artefacts: Vec::new(),
    }
}
