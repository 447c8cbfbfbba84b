//! Beat times for a BLE strap's RR intervals. PLACEHOLDER: API fixed, body being written.

/// Settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimelineConfig {
    /// Departure of an arrival from the cumulative sum beyond which beats were lost, s.
    pub lost_tolerance_s: f64,
    /// Notifications over which the arrival residual spread is the uncertainty.
    pub uncertainty_window: usize,
}

impl Default for TimelineConfig {
    fn default() -> Self {
        Self {
            lost_tolerance_s: 2.0,
            uncertainty_window: 60,
        }
    }
}

/// Beats rebuilt from one notification.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Beats {
    /// Beat times (the beat ending each interval), strictly increasing across calls, s.
    pub times: Vec<f64>,
    /// Intervals, ms.
    pub rr_ms: Vec<f64>,
    /// Intervals as sent, 1/1024 s.
    pub raw: Vec<f64>,
    /// Indices of suspect intervals (first after an empty notification, an outage or lost beats).
    pub suspect: Vec<u32>,
    /// Spread of the arrival residuals over the window, s.
    pub uncertainty_s: f64,
}

/// Beats the timeline found lost within a connection.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatGap {
    /// Time of the last beat before, s.
    pub start: f64,
    /// Time of the first beat after, s.
    pub end: f64,
}

/// One strap's beat timeline.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    _cfg: TimelineConfig,
}

impl Timeline {
    /// A timeline with no beats yet.
    pub fn new(cfg: TimelineConfig) -> Self {
        Self { _cfg: cfg }
    }

    /// One notification's RR values (1/1024 s, oldest first) that arrived at session time
    /// `host_t`. Empty `rr_raw` (the RR bit set but no beat) returns None.
    pub fn on_rr(&mut self, host_t: f64, rr_raw: &[u16]) -> Option<(Option<BeatGap>, Beats)> {
        let _ = (host_t, rr_raw);
        None
    }

    /// An outage (disconnect, watchdog): the next notification re-anchors and its first interval
    /// is suspect. The caller emits the outage's gap.
    pub fn outage(&mut self) {}

    /// Time of the newest beat.
    pub fn last_beat(&self) -> Option<f64> {
        None
    }

    /// Notifications whose values were refused (a zero interval), since the start.
    pub fn refused(&self) -> u64 {
        0
    }
}
