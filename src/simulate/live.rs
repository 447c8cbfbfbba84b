//! Live simulated participants: what a simulated device delivers, as it would arrive.
//!
//! This file holds the specification of a live simulated source ([`LiveSpec`]); the generator
//! is being written.

use super::Scenario;
use crate::model::ParticipantId;

/// How one simulated stream's device clock and delivery behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamTiming {
    /// Device clock minus session time at the session start, s (−10: the device clock is 10 s
    /// behind the host's).
    pub offset_s: f64,
    /// Device clock rate error, parts per million (+: the device clock runs fast).
    pub drift_ppm: f64,
    /// Steady transport latency added to every arrival, s.
    pub latency_s: f64,
    /// Extra arrival delay, uniform in 0..`jitter_s`, drawn per delivery, s.
    pub jitter_s: f64,
    /// Delivery period, s: EDA arrives in blocks of this length; RR values are batched into
    /// one notification per period (a BLE strap notifies about once a second with the beats
    /// since the last one).
    pub block_s: f64,
}

/// A live simulated source for one participant.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSpec {
    /// Whose data.
    pub participant: ParticipantId,
    /// Picks the person and every random draw.
    pub seed: u64,
    /// What happens.
    pub scenario: Scenario,
    /// With [`Scenario::RestThenStress`]: session time of the stress onset, s.
    pub stress_onset_s: f64,
    /// RR stream timing; `None`: no RR stream.
    pub rr: Option<StreamTiming>,
    /// EDA stream timing; `None`: no EDA stream.
    pub eda: Option<StreamTiming>,
    /// EDA sampling rate, Hz.
    pub eda_rate_hz: f64,
}

impl LiveSpec {
    /// The seed used when none is given: a stable hash of the participant id (FNV-1a 64), so
    /// `--simulate p01` is the same person on every run and machine.
    pub fn default_seed(participant: &ParticipantId) -> u64 {
        participant
            .as_str()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
    }
}
