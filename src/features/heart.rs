//! Heartbeats from a waveform stream (ECG or PPG): the causal detector of
//! [`crate::dsp::beats`] turns samples into beat times, and the intervals between consecutive
//! beats feed the same RR window (and artefact handling) as intervals from a strap.
//!
//! A beat's time is placed on the stream's device timeline through the chunk it was confirmed
//! in: `t = t0 + (at − n0) / rate`, where `n0` is the detector's sample count at the chunk's first
//! sample and `at` the (delay-corrected, fractional) peak index; so the clock mapping of each
//! chunk applies to its beats. A gap re-primes the detector and breaks the interval chain: no
//! interval ever spans a gap.

use crate::dsp::beats::{BeatConfig, BeatDetector, BeatError, DetectedBeat, SignalIssue, Waveform};
use crate::dsp::rr::{RrConfig, RrWindow};

/// Beat detection and intervals of one waveform stream.
#[derive(Debug)]
pub(super) struct WaveHeart {
    pub(super) rate_hz: f64,
    /// The detector, or why there is none at this rate.
    det: Result<BeatDetector, BeatError>,
    pub(super) rr: RrWindow,
    last_beat: Option<f64>,
    /// Device time of the newest sample.
    pub(super) last_t: f64,
    scratch: Vec<DetectedBeat>,
    /// Beats detected since the start.
    pub(super) beats: u64,
}

impl WaveHeart {
    /// A detector for `kind` at `rate_hz` (at a rate it cannot handle, a stream that only
    /// reports [`SignalIssue::UnsupportedRate`]).
    pub(super) fn new(kind: Waveform, rate_hz: f64, beats: &BeatConfig, rr: RrConfig) -> Self {
        Self {
            rate_hz,
            det: BeatDetector::new(kind, rate_hz, beats),
            rr: RrWindow::new(rr),
            last_beat: None,
            last_t: f64::NEG_INFINITY,
            scratch: Vec::new(),
            beats: 0,
        }
    }

    /// Why there is no detector, if there is none.
    pub(super) fn error(&self) -> Option<&BeatError> {
        self.det.as_ref().err()
    }

    /// Feeds the samples of one uniformly timed chunk whose first sample is at device time `t0`.
    pub(super) fn push(&mut self, t0: f64, samples: &[f64]) {
        if samples.is_empty() {
            return;
        }
        self.last_t = t0 + (samples.len() - 1) as f64 / self.rate_hz;
        let Ok(det) = &mut self.det else {
            return;
        };
        let n0 = det.samples() as f64;
        self.scratch.clear();
        det.push(samples, &mut self.scratch);
        for b in &self.scratch {
            let t = t0 + (b.at - n0) / self.rate_hz;
            if let Some(prev) = self.last_beat
                && t > prev
            {
                self.rr.push(t, (t - prev) * 1000.0);
            }
            self.last_beat = Some(t);
            self.beats += 1;
        }
    }

    /// A gap: the detector starts over and no interval spans the gap.
    pub(super) fn gap(&mut self) {
        if let Ok(d) = &mut self.det {
            d.reset();
        }
        self.rr.gap();
        self.last_beat = None;
    }

    /// What the detector finds wrong with the signal now.
    pub(super) fn issue(&self) -> Option<SignalIssue> {
        match &self.det {
            Ok(d) => d.issue(),
            Err(_) => Some(SignalIssue::UnsupportedRate),
        }
    }
}
