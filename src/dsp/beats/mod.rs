//! Causal heartbeat detection from ECG and PPG waveforms, for the daemon.
//!
//! A [`BeatDetector`] takes the samples of one uniformly sampled stream as they arrive and
//! reports each beat once, a bounded time after it happened ([`BeatDetector::max_delay_s`]).
//! Beats are sample indices counted from the detector's start (or its last [`reset`]), with the
//! delay of the causal filters already taken off, so that they line up with NeuroKit2's offline
//! peaks on the same samples.
//!
//! - [`ecg`]: the streaming variant of NeuroKit2's `ecg_peaks(method="neurokit")`.
//! - [`ppg`]: the streaming variant of Elgendi et al. 2013 (`ppg_peaks(method="elgendi")`).
//!
//! [`reset`]: BeatDetector::reset

pub mod ecg;
pub mod ppg;
mod quality;
mod stages;
#[cfg(test)]
mod tests;

/// Which waveform a detector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waveform {
    /// Electrocardiogram, any unit (mV usually); R peaks.
    Ecg,
    /// Photoplethysmogram / blood-volume pulse, any unit; systolic peaks.
    Ppg,
}

/// Detector settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatConfig {
    /// Mains frequency for the ECG powerline mean, Hz (50 or 60).
    pub powerline_hz: f64,
}

impl Default for BeatConfig {
    fn default() -> Self {
        Self { powerline_hz: 50.0 }
    }
}

/// One detected beat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectedBeat {
    /// Sample index of the peak (R peak, or systolic peak), counted from the start or last
    /// reset; fractional where the filter delay taken off is not a whole number of samples.
    pub at: f64,
    /// Index of the input sample whose arrival confirmed the beat (≥ `at`).
    pub confirmed: u64,
}

/// Why a waveform gives no trustworthy beats right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalIssue {
    /// The signal does not move (lead off, sensor unplugged).
    Flat,
    /// The signal sits at its extremes (clipped amplifier or ADC).
    Saturated,
    /// Beats are found but the waveform is upside down (ECG leads reversed).
    Inverted,
    /// Mains hum dominates the signal.
    Mains,
    /// No beat for longer than any plausible heart rate allows.
    NoBeats,
    /// A sample that is not a finite number.
    NonFinite,
    /// The stream's rate is outside what the detector supports ([`BeatError::Rate`]).
    UnsupportedRate,
}

impl SignalIssue {
    /// Short stable name (used in state messages' `detail`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Saturated => "saturated",
            Self::Inverted => "inverted",
            Self::Mains => "mains_hum",
            Self::NoBeats => "no_beats",
            Self::NonFinite => "non_finite",
            Self::UnsupportedRate => "unsupported_rate",
        }
    }
}

/// Why a detector cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BeatError {
    /// The rate is outside what the filters and windows support.
    #[error("{kind:?} at {rate_hz} Hz: beat detection supports {min_hz}–{max_hz} Hz")]
    Rate {
        /// The waveform.
        kind: Waveform,
        /// The rate given, Hz.
        rate_hz: f64,
        /// Lowest supported rate, Hz.
        min_hz: f64,
        /// Highest supported rate, Hz.
        max_hz: f64,
    },
}

/// A streaming beat detector for one stream.
#[derive(Debug)]
pub enum BeatDetector {
    /// ECG.
    Ecg(ecg::EcgDetector),
    /// PPG.
    Ppg(ppg::PpgDetector),
}

impl BeatDetector {
    /// A detector for `kind` sampled at `fs` Hz.
    pub fn new(kind: Waveform, fs: f64, cfg: &BeatConfig) -> Result<Self, BeatError> {
        Ok(match kind {
            Waveform::Ecg => Self::Ecg(ecg::EcgDetector::new(fs, cfg)?),
            Waveform::Ppg => Self::Ppg(ppg::PpgDetector::new(fs, cfg)?),
        })
    }

    /// Feeds samples; appends the beats they confirm to `out`, in time order.
    pub fn push(&mut self, x: &[f64], out: &mut Vec<DetectedBeat>) {
        match self {
            Self::Ecg(d) => d.push(x, out),
            Self::Ppg(d) => d.push(x, out),
        }
    }

    /// Starts over after a gap: filters re-prime, sample indices restart at 0.
    pub fn reset(&mut self) {
        match self {
            Self::Ecg(d) => d.reset(),
            Self::Ppg(d) => d.reset(),
        }
    }

    /// Samples pushed since the start or last reset (the index the next sample gets).
    pub fn samples(&self) -> u64 {
        match self {
            Self::Ecg(d) => d.samples(),
            Self::Ppg(d) => d.samples(),
        }
    }

    /// What is wrong with the signal now, if anything.
    pub fn issue(&self) -> Option<SignalIssue> {
        match self {
            Self::Ecg(d) => d.issue(),
            Self::Ppg(d) => d.issue(),
        }
    }

    /// The longest time from a peak to the sample that confirms it, s.
    pub fn max_delay_s(&self) -> f64 {
        match self {
            Self::Ecg(d) => d.max_delay_s(),
            Self::Ppg(d) => d.max_delay_s(),
        }
    }
}
