//! What a simulated serial device measures (pure): ECG, skin conductance and PPG of one person,
//! as [`Physical`] values at any time, from a recording or from attune's simulator.
//!
//! - From the simulator ([`Feed::simulated`]): `simulate_with` with ECG and PPG at the device's
//!   rate (the same people, stress response and waveforms as `attune simulate`).
//! - From a recording ([`Feed::from_records`]): its `ecg`, `eda` and `ppg` streams. A recording
//!   with beats (`rr`) but no ECG or PPG gets them synthesised from its beats
//!   (`waveform::ecg_from_beats`, `ppg_from_beats`, with seed-drawn waveform parameters), so a
//!   strap + wristband recording can drive a BITalino or a Shimmer simulator.
//!
//! Values between samples are linearly interpolated; outside a stream's data (before its start,
//! in its gaps, after its end) the last value holds. A feed shorter than the simulated device
//! runs loops: time wraps at the feed's length (the signals jump there; it is a simulator).

use super::waveform::{EcgParams, PpgParams, ecg_from_beats, ppg_from_beats};
use crate::model::{StreamKind, Timing};
use crate::protocol::Physical;
use crate::recording::Record;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One stream as an evenly sampled track.
#[derive(Debug, Clone, PartialEq)]
struct Track {
    t0: f64,
    rate_hz: f64,
    x: Vec<f64>,
}

impl Track {
    fn at(&self, t: f64) -> Option<f64> {
        let last = self.x.last()?;
        let pos = (t - self.t0) * self.rate_hz;
        if pos <= 0.0 {
            return self.x.first().copied();
        }
        let i = pos.floor() as usize;
        match (self.x.get(i), self.x.get(i + 1)) {
            (Some(a), Some(b)) => Some(a + (b - a) * (pos - i as f64)),
            _ => Some(*last),
        }
    }

    fn end(&self) -> f64 {
        self.t0 + self.x.len() as f64 / self.rate_hz
    }
}

/// Flattens the uniform chunks of `kind` into one track at their rate (gaps hold the value
/// before them: a chunk placed by its `t0` after a gap is appended where it belongs).
fn track(records: &[Record], kind: StreamKind) -> Option<Track> {
    let mut t: Option<Track> = None;
    for r in records {
        let Record::Chunk(c) = r else { continue };
        if c.kind != kind {
            continue;
        }
        let Timing::Uniform { t0, rate_hz } = c.timing else {
            continue;
        };
        let tr = t.get_or_insert_with(|| Track {
            t0,
            rate_hz,
            x: Vec::new(),
        });
        // Fill a gap by holding the last value, so that index = time · rate stays true.
        let want = ((t0 - tr.t0) * tr.rate_hz).round().max(0.0) as usize;
        if let Some(&last) = tr.x.last() {
            while tr.x.len() < want {
                tr.x.push(last);
            }
        }
        tr.x.extend_from_slice(&c.samples);
    }
    t.filter(|t| !t.x.is_empty())
}

/// Beat times (s) of the `rr` stream.
fn beats(records: &[Record]) -> Vec<f64> {
    let mut out = Vec::new();
    for r in records {
        if let Record::Chunk(c) = r
            && c.kind == StreamKind::Rr
            && let Timing::Events(ts) = &c.timing
        {
            out.extend_from_slice(ts);
        }
    }
    out
}

/// A person's signals for a simulated device (module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Feed {
    ecg: Option<Track>,
    eda: Option<Track>,
    ppg: Option<Track>,
    start: f64,
    length: f64,
}

/// Resting values for a quantity a feed does not have: a flat ECG at 0 mV, 5 µS, PPG 0.5.
const DEFAULT: Physical = Physical {
    ecg_mv: 0.0,
    eda_us: 5.0,
    ppg: 0.5,
};

impl Feed {
    /// The feed of a recording's records; waveforms at `rate_hz` are synthesised from its beats
    /// where it has none (seeded by `seed`). `None` if it has none of ECG, EDA, PPG or beats.
    pub fn from_records(records: &[Record], rate_hz: f64, seed: u64) -> Option<Self> {
        let mut ecg = track(records, StreamKind::Ecg);
        let eda = track(records, StreamKind::Eda);
        let mut ppg = track(records, StreamKind::Ppg);
        let beats = beats(records);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        if let (Some(first), Some(last)) = (beats.first(), beats.last())
            && rate_hz.is_finite()
            && rate_hz > 0.0
        {
            let start = (first - 1.0).max(0.0);
            let shifted: Vec<f64> = beats.iter().map(|b| b - start).collect();
            let dur = last - start + 1.0;
            if ecg.is_none() {
                let p = EcgParams::draw(&mut rng);
                let x = ecg_from_beats(&shifted, rate_hz, dur, &p, seed);
                ecg = Some(Track {
                    t0: start,
                    rate_hz,
                    x,
                });
            }
            if ppg.is_none() {
                let p = PpgParams::draw(&mut rng);
                let (x, _) = ppg_from_beats(&shifted, rate_hz, dur, &p, seed);
                ppg = Some(Track {
                    t0: start,
                    rate_hz,
                    x,
                });
            }
        }
        let tracks = [&ecg, &eda, &ppg];
        let start = tracks
            .iter()
            .filter_map(|t| t.as_ref().map(|t| t.t0))
            .fold(f64::INFINITY, f64::min);
        let end = tracks
            .iter()
            .filter_map(|t| t.as_ref().map(Track::end))
            .fold(f64::NEG_INFINITY, f64::max);
        if !(start.is_finite() && end.is_finite() && end > start) {
            return None;
        }
        Some(Self {
            ecg,
            eda,
            ppg,
            start,
            length: end - start,
        })
    }

    /// A simulated person (seed), `minutes` long, waveforms at `rate_hz`.
    pub fn simulated(seed: u64, minutes: f64, rate_hz: f64, scenario: super::Scenario) -> Self {
        let cfg = super::SimConfig {
            scenario,
            duration_s: (minutes * 60.0).max(60.0),
            seed,
            participant: crate::model::ParticipantId::new("sim-device")
                .expect("a valid constant participant id"),
            eda_rate_hz: rate_hz.clamp(1.0, 1000.0),
        };
        let wave = super::WaveConfig {
            ecg_rate_hz: Some(
                rate_hz.clamp(*super::ECG_RATE_HZ.start(), *super::ECG_RATE_HZ.end()),
            ),
            ppg_rate_hz: Some(
                rate_hz.clamp(*super::PPG_RATE_HZ.start(), *super::PPG_RATE_HZ.end()),
            ),
            mains_hz: None,
        };
        let sim = super::simulate_with(&cfg, &wave);
        Self::from_records(&sim.records, rate_hz, seed).unwrap_or(Self {
            ecg: None,
            eda: None,
            ppg: None,
            start: 0.0,
            length: 1.0,
        })
    }

    /// The feed's length before it loops, s.
    pub fn length_s(&self) -> f64 {
        self.length
    }

    /// The signals `t` seconds after the device started streaming.
    pub fn at(&self, t: f64) -> Physical {
        let t = self.start + t.rem_euclid(self.length.max(1e-9));
        Physical {
            ecg_mv: self
                .ecg
                .as_ref()
                .and_then(|x| x.at(t))
                .unwrap_or(DEFAULT.ecg_mv),
            eda_us: self
                .eda
                .as_ref()
                .and_then(|x| x.at(t))
                .unwrap_or(DEFAULT.eda_us),
            ppg: self
                .ppg
                .as_ref()
                .and_then(|x| x.at(t))
                .unwrap_or(DEFAULT.ppg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_feed_has_beats_in_its_ecg_and_physiological_eda() {
        let f = Feed::simulated(3, 2.0, 250.0, super::super::Scenario::Rest);
        assert!(f.length_s() >= 119.0);
        let xs: Vec<Physical> = (0..2500).map(|i| f.at(i as f64 / 250.0)).collect();
        let max = xs.iter().map(|p| p.ecg_mv).fold(f64::MIN, f64::max);
        let min = xs.iter().map(|p| p.ecg_mv).fold(f64::MAX, f64::min);
        assert!(max - min > 0.5, "an ECG with R waves: {min}..{max}");
        assert!(xs.iter().all(|p| (0.5..40.0).contains(&p.eda_us)));
        // Loops, never ends.
        assert_eq!(f.at(1.0), f.at(1.0 + f.length_s()));
    }
}
