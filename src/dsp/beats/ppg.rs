//! Placeholder: the streaming PPG detector.

use super::{BeatConfig, BeatError, DetectedBeat, SignalIssue};

/// Streaming PPG beat detector.
#[derive(Debug)]
pub struct PpgDetector {
    fs: f64,
    n: u64,
}

impl PpgDetector {
    /// A detector at `fs` Hz.
    pub fn new(fs: f64, _cfg: &BeatConfig) -> Result<Self, BeatError> {
        Ok(Self { fs, n: 0 })
    }
    /// Feeds samples.
    pub fn push(&mut self, x: &[f64], _out: &mut Vec<DetectedBeat>) {
        self.n += x.len() as u64;
    }
    /// Starts over.
    pub fn reset(&mut self) {
        self.n = 0;
    }
    /// Samples since start.
    pub fn samples(&self) -> u64 {
        self.n
    }
    /// Current issue.
    pub fn issue(&self) -> Option<SignalIssue> {
        None
    }
    /// Max delay, s.
    pub fn max_delay_s(&self) -> f64 {
        0.3 + 0.0 * self.fs
    }
}
