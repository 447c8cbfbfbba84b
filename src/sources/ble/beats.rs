//! Beat times for a BLE strap's RR intervals. Pure: no I/O, no clock reads, no tokio.
//!
//! In: one Heart Rate Measurement notification at a time (DEVICES.md §1.1): about once a second,
//! 0..n RR intervals as `u16` counts of **1/1024 s**, oldest first, with **no timestamps**, and
//! the session time `host_t` (s) at which the host received it. Out: [`Beats`]: the time (s) of
//! the beat that ends each interval, the interval in ms (`raw · 1000 / 1024`, exact in `f64`)
//! and as sent, which intervals are suspect, and how far the arrivals disagree with the
//! timeline. All times are `f64` seconds as computed (no rounding).
//!
//! # The timeline
//!
//! The strap's own beat timeline is the cumulative sum of its intervals. At the first
//! notification, the newest beat is anchored at `host_t` and the earlier beats of the batch are
//! walked back by the cumulative sum (DEVICES.md §1.1: "anchor the newest at host receive time,
//! walk back by cumulative sum"). Every later notification continues the sum from the newest
//! beat: `times = last + cumsum(batch)`. The timeline **does not re-anchor for small
//! residuals**: its drift against the host clock (strap skew, tens of ppm) and the transport
//! latency are the engine's clock estimator's job (`engine::clock`), which sees these times as
//! device times and maps them to session time by the lower envelope of the arrival delays.
//! Re-anchoring at every arrival would instead copy the arrival jitter into the beat times and
//! so into every interval the engine derives from them.
//!
//! # Residuals, lost beats, uncertainty
//!
//! For each notification the residual is `r = host_t − (time of the newest beat)`: the
//! transport latency plus the timeline's offset from the host clock. Only its *variation* can
//! be known; the absolute latency cannot (the Polar SDK maintainers note that RR values can be
//! 3–4 s old when they arrive, polarofficial/polar-ble-sdk#227; a steady 3 s latency looks
//! exactly like a timeline 3 s behind). Even without any loss or jitter the residual varies by
//! up to one interval: the newest beat of a notification ended anywhere from 0 to one interval
//! before the strap sent it.
//!
//! - **Lost beats.** Within one anchoring, the residuals of the last
//!   [`TimelineConfig::uncertainty_window`] notifications are kept. If `r` exceeds the lowest of
//!   them by more than [`TimelineConfig::lost_tolerance_s`], and `r > 0` (the host is ahead of
//!   the sum), beats were lost (a dropped notification): the batch is re-anchored with its
//!   newest beat at `host_t`, [`Timeline::on_rr`] returns a [`BeatGap`] from the previous last
//!   beat to the first new beat, and the batch's first interval is suspect (its start was in the
//!   lost stretch). The residual window restarts with the new anchoring. Limitation: a
//!   notification *delayed* by more than the tolerance cannot be told from lost beats when it
//!   arrives; it also re-anchors (the timeline then runs ahead by the delay, which later
//!   residuals show as negative and the engine's estimator absorbs). With the default 2 s, one
//!   dropped notification at a normal heart rate (1–2 beats, < 2 s) is **not** detected: its
//!   time folds into the timeline's offset (the intervals stay right; only the beat times
//!   shift). No tolerance can find every single lost notification at rest: it must exceed the
//!   residual's variation without loss (one interval plus the latency jitter, ≈ 1.1 s at
//!   60 bpm), and a lost notification may carry a single interval of that size. The tests
//!   show exact detection for runs of 3 lost notifications at rest (tolerance 1.5 s) and for
//!   single lost notifications at 120–150 bpm (tolerance 0.7 s).
//! - **Sum ahead of the host** (`r` negative beyond the tolerance: the strap's intervals add up
//!   to more than the host saw pass, e.g. intervals reported too long, or a delayed anchor):
//!   nothing moves. Times never go backwards, so the cumulative sum is kept and the engine's
//!   estimator absorbs the offset and skew.
//! - **Uncertainty.** [`Beats::uncertainty_s`] is the spread (max − min) of the residuals over
//!   the last `uncertainty_window` notifications of the current anchoring, this one included (0
//!   for the first after an anchoring). It says how far an arrival disagrees with the cumulative
//!   sum: the jitter of the latency plus the drift within the window. It is not the absolute
//!   error of the times, which cannot be known. A `uncertainty_window` of 0 is taken as 1.
//!
//! # Outages
//!
//! After [`Timeline::outage`] (disconnect, watchdog) the next notification re-anchors: its
//! newest beat goes at `max(host_t, last_before + sum(batch))`, so the first new beat is still
//! strictly later than the last beat before the outage (no interval is dropped to make room; the
//! batch is shifted later instead). Its first interval is suspect. No [`BeatGap`] is returned
//! for an outage: the source emits the outage's single gap.
//!
//! # Suspect intervals, refused values, bad input
//!
//! Indices in [`Beats::suspect`] (strictly increasing, into the returned vectors) mark intervals
//! whose value or start is in doubt; the engine keeps the beat (its time is real) but takes no
//! successive difference across it.
//!
//! - **After an empty notification** (RR bit set, no RR): `on_rr` returns `None`, and the first
//!   interval of the next non-empty batch is suspect. Straps report the first interval after an
//!   empty notification too long (the premise of `model::ChunkMeta::suspect`; DEVICES.md §1.1
//!   only says that an empty list is not an error, and we have no upstream report or capture
//!   confirming it yet).
//! - **Zero intervals** (`raw == 0`) are refused: a zero interval cannot end a beat. The value
//!   is skipped (no beat is invented, none is returned for it), the notification counts in
//!   [`Timeline::refused`] (each value in [`Timeline::refused_values`]), and the next accepted
//!   interval is suspect (the zero may stand for a beat the strap missed). A batch of zeros only
//!   returns `None`, like an empty one.
//! - The first interval after an outage or lost beats is suspect (above). The first interval of
//!   the very first notification is not: nothing precedes it to difference with.
//! - A non-finite `host_t`, or one beyond ±[`MAX_HOST_T`] s (not a session time), returns
//!   `None` and changes nothing.
//!
//! Guarantees (tested, with a property test): returned times strictly increase within and
//! across calls, and a call returns at most as many beats as it was given intervals.

use std::collections::VecDeque;

/// Largest `|host_t|` accepted, s (≈ 32 years; beyond it the 1/1024 s steps lose precision).
pub const MAX_HOST_T: f64 = 1e9;

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
    cfg: TimelineConfig,
    /// Newest beat, s.
    last: Option<f64>,
    /// Whether the current connection has anchored (false at the start and after an outage).
    anchored: bool,
    /// Residuals of the current anchoring, newest last, s.
    residuals: VecDeque<f64>,
    /// The next accepted interval is suspect.
    suspect_next: bool,
    refused: u64,
    refused_values: u64,
    lost: u64,
}

impl Timeline {
    /// A timeline with no beats yet.
    pub fn new(cfg: TimelineConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// One notification's RR values (1/1024 s, oldest first) that arrived at session time
    /// `host_t`. Empty `rr_raw` (the RR bit set but no beat) returns None.
    pub fn on_rr(&mut self, host_t: f64, rr_raw: &[u16]) -> Option<(Option<BeatGap>, Beats)> {
        if !host_t.is_finite() || host_t.abs() > MAX_HOST_T {
            return None;
        }
        let mut raw = Vec::with_capacity(rr_raw.len());
        let mut suspect = Vec::new();
        let mut flag = self.suspect_next;
        let mut zeros = 0u64;
        for &v in rr_raw {
            if v == 0 {
                zeros += 1;
                flag = true;
                continue;
            }
            if flag && let Ok(i) = u32::try_from(raw.len()) {
                suspect.push(i);
            }
            flag = false;
            raw.push(f64::from(v));
        }
        self.refused_values += zeros;
        self.refused += u64::from(zeros > 0);
        if raw.is_empty() {
            self.suspect_next = true;
            return None;
        }
        self.suspect_next = flag;

        let total: f64 = raw.iter().sum::<f64>() / 1024.0;
        // Where the batch starts (the beat before its first interval), and whether it anchors.
        let (start, anchors, gap) = match (self.last, self.anchored) {
            (None, _) => (host_t - total, true, false),
            (Some(l), false) => ((host_t - total).max(l), true, false),
            (Some(l), true) => {
                let r = host_t - (l + total);
                let lowest = self.residuals.iter().copied().fold(f64::INFINITY, f64::min);
                if r > 0.0 && r - lowest > self.cfg.lost_tolerance_s {
                    ((host_t - total).max(l), true, true)
                } else {
                    (l, false, false)
                }
            }
        };
        let mut times = Vec::with_capacity(raw.len());
        let mut prev = self.last.unwrap_or(f64::NEG_INFINITY);
        let mut t = start;
        for &v in &raw {
            t += v / 1024.0;
            // Float guard: within ±MAX_HOST_T a 1/1024 s step always advances.
            if t <= prev {
                t = prev.next_up();
            }
            times.push(t);
            prev = t;
        }
        let first = times.first().copied().unwrap_or(t);
        let gap = match (gap, self.last) {
            (true, Some(l)) => Some(BeatGap {
                start: l,
                end: first,
            }),
            _ => None,
        };
        if gap.is_some() {
            self.lost += 1;
        }
        if (gap.is_some() || (anchors && self.last.is_some())) && suspect.first() != Some(&0) {
            suspect.insert(0, 0);
        }
        if anchors {
            self.residuals.clear();
        }
        self.anchored = true;
        self.last = Some(prev);
        self.residuals.push_back(host_t - prev);
        while self.residuals.len() > self.cfg.uncertainty_window.max(1) {
            self.residuals.pop_front();
        }
        let (lo, hi) = self
            .residuals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
        let rr_ms = raw.iter().map(|v| v * 1000.0 / 1024.0).collect();
        Some((
            gap,
            Beats {
                times,
                rr_ms,
                raw,
                suspect,
                uncertainty_s: hi - lo,
            },
        ))
    }

    /// An outage (disconnect, watchdog): the next notification re-anchors and its first interval
    /// is suspect. The caller emits the outage's gap.
    pub fn outage(&mut self) {
        self.anchored = false;
        self.residuals.clear();
        self.suspect_next = true;
    }

    /// Time of the newest beat.
    pub fn last_beat(&self) -> Option<f64> {
        self.last
    }

    /// Notifications whose values were refused (a zero interval), since the start.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Values refused (zero intervals), since the start.
    pub fn refused_values(&self) -> u64 {
        self.refused_values
    }

    /// Losses found within a connection (the [`BeatGap`]s returned), since the start.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests;
