//! The spectral features of one participant: HRV LF/HF ([`crate::dsp::hrv_spectral`]) and
//! EDASymp ([`crate::dsp::eda_symp`]), recomputed every `spectral_hop_s` (5 s) and carried in
//! every frame in between.
//!
//! | feature | unit | window | updated | a step change shows |
//! |---|---|---|---|---|
//! | `lf_ms2`, `hf_ms2`, `lf_hf`, `lf_nu`, `hf_nu`, `hf_peak_hz` | ms², ms², –, n.u., n.u., Hz | the beats of the last 130 s (128 s used) | every 5 s | half after ≈ 65 s, fully after ≈ 130 s |
//! | `eda_symp_us2`, `eda_sympn` | µS², – | the last 128 s of the 2 Hz series | every 5 s | half after ≈ 64 s, fully after ≈ 128 s |
//!
//! The HRV window ends at the newest beat the artefact step has decided (two beats behind the
//! data), the EDASymp window at the newest point of the 2 Hz series (at most 2 s old); beats and
//! samples are held for 140 s. A gap, a rate change or a stream that stops being good (stale, out
//! of range, flat, or called lost, reconnecting or low-quality by its source) replaces the
//! stream's spectral value at once by its reason; EDA that is not good restarts the 2 Hz series,
//! so no reported window ever contains it.
//!
//! The windows are physiology's, not the CPU's: LF needs at least 2 min (Task Force 1996), and
//! the paper's 128-point Blackman segments at 2 Hz are 64 s each. Each participant's updates
//! fall on its own phase of the 5 s cycle (from its id), so thousands of participants do not all
//! compute at one tick.

use crate::dsp::eda_symp::{EdaSymp, EdaSympIssue};
use crate::dsp::hrv_spectral::{HrvSpectrum, HrvSpectrumIssue};
use crate::model::StreamKind;

/// The spectral part of a frame. `None`: the stream never had data (nothing to say); `Err`: it
/// has, and this is why there is no value now.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SpectralFrame {
    /// HRV spectrum of the preferred good heart stream.
    pub hrv: Option<Result<HrvSpectrum, HrvSpectrumIssue>>,
    /// The heart stream the spectrum came from (`rr`, `ecg` or `ppg`).
    pub hrv_source: Option<StreamKind>,
    /// EDASymp of the EDA stream.
    pub eda: Option<Result<EdaSymp, EdaSympIssue>>,
    /// Tick time at which these were computed, s.
    pub computed_t: Option<f64>,
}

/// The phase (s, in [0, hop)) of a participant's spectral updates, from its id (FNV-1a), so it
/// is the same in every run.
pub fn phase_of(id: &str, hop_s: f64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Whole quarter seconds: the engine ticks at 4 Hz.
    let slots = (hop_s * 4.0).round().max(1.0) as u64;
    (h % slots) as f64 / 4.0
}

/// When the next update is due.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Schedule {
    pub(super) hop_s: f64,
    pub(super) phase_s: f64,
    pub(super) next_t: Option<f64>,
}

impl Schedule {
    /// Whether to compute at tick `t` (and, if so, books the next time).
    pub(super) fn due(&mut self, t: f64) -> bool {
        let hop = self.hop_s.max(0.25);
        match self.next_t {
            Some(n) if t + 1e-9 < n => false,
            _ => {
                // The next multiple of the hop after t, shifted by the phase.
                let k = ((t - self.phase_s) / hop).floor() + 1.0;
                self.next_t = Some(self.phase_s + k * hop);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_quarter_seconds_within_the_hop_and_stable() {
        let p = phase_of("p01", 5.0);
        assert_eq!(p, phase_of("p01", 5.0));
        assert!((0.0..5.0).contains(&p));
        assert_eq!((p * 4.0).fract(), 0.0);
        let spread: std::collections::BTreeSet<u64> = (0..200)
            .map(|i| (phase_of(&format!("p{i:03}"), 5.0) * 4.0) as u64)
            .collect();
        assert!(spread.len() >= 15, "{spread:?}");
    }

    #[test]
    fn the_schedule_fires_once_per_hop_on_its_phase() {
        let mut s = Schedule {
            hop_s: 5.0,
            phase_s: 1.25,
            next_t: None,
        };
        let fired: Vec<f64> = (0..120)
            .map(|i| f64::from(i) * 0.25)
            .filter(|&t| s.due(t))
            .collect();
        assert_eq!(fired, vec![0.0, 1.25, 6.25, 11.25, 16.25, 21.25, 26.25]);
    }
}
