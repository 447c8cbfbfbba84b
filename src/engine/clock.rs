//! Device-to-session clock mapping (a stub with the final API; the estimator is being written).

use crate::engine::event::ClockReport;
use crate::model::Timing;

/// Estimator settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClockConfig {}

/// One stream's mapping.
#[derive(Debug, Clone, Default)]
pub struct StreamClock {
    offset: Option<f64>,
    last: f64,
    n: u64,
}

impl StreamClock {
    /// A fresh mapping.
    pub fn new(_cfg: ClockConfig) -> Self {
        Self { offset: None, last: f64::NEG_INFINITY, n: 0 }
    }
    /// One delivery.
    pub fn observe(&mut self, _first_device_t: f64, last_device_t: f64, host_t: f64) {
        let o = host_t - last_device_t;
        self.offset = Some(self.offset.map_or(o, |x: f64| x.min(o)));
        self.n += 1;
    }
    /// Session time of a device time.
    pub fn to_session(&self, device_t: f64) -> Option<f64> {
        self.offset.map(|o| device_t + o)
    }
    /// Maps a chunk's timing.
    pub fn map_timing(&mut self, timing: &Timing, n: usize) -> Option<Timing> {
        let o = self.offset?;
        let t = match timing {
            Timing::Uniform { t0, rate_hz } => {
                let t0 = (t0 + o).max(self.last + 1e-9);
                self.last = t0 + (n.max(1) - 1) as f64 / rate_hz;
                Timing::Uniform { t0, rate_hz: *rate_hz }
            }
            Timing::Events(ts) => {
                let mut out = Vec::with_capacity(ts.len());
                for t in ts {
                    let m = (t + o).max(self.last + 1e-9);
                    self.last = m;
                    out.push(m);
                }
                Timing::Events(out)
            }
        };
        Some(t)
    }
    /// The current estimate.
    pub fn report(&self) -> Option<ClockReport> {
        self.offset.map(|o| ClockReport { offset_s: o, skew_ppm: 0.0, latency_s: 0.0, observations: self.n })
    }
    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Self::new(ClockConfig::default());
    }
}
