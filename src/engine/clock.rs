//! Per-stream device-to-session clock mapping. Pure: no I/O, no clock reads, no tokio.
//!
//! Wearables stamp samples on their own clock (an offset from the host, drifting tens of ppm) and
//! deliver them late and in batches. [`StreamClock`] learns, from arrivals alone, where a device
//! time lands on the session clock (host monotonic seconds since the session started), so the
//! engine's 4 Hz ticks see a stream's data as continuous instead of stale. All times are `f64`
//! seconds; skew is in parts per million (ppm).
//!
//! # Method
//!
//! Every delivered sample has a delay `y = host_t − device_t` at `x = device_t`. Every delay is the clock offset plus a transport latency ≥ 0, so the
//! *lower envelope* of the points is the offset plus the smallest latency. The envelope is a line
//! `y = a + b·x` (constant skew over the window), fitted as Moon, Skelly & Towsley do
//! ("Estimation and removal of clock skew from network delay measurements", IEEE INFOCOM 1999):
//! the line below every point that minimises the sum of vertical distances to them, which is the
//! edge of the points' lower convex hull that spans their mean `x`. The Lab Streaming Layer's time
//! correction (liblsl, the time_postprocessor and its clock offsets) rests on the same idea: the
//! least-delayed measurements carry the clock relation, the rest only add delay.
//!
//! - Only the *last* sample of a delivery is a point: it left the device most recently, so it has
//!   the smallest delay. Points are binned by device time ([`ClockConfig::bin_s`], 1 s) and each
//!   bin keeps its lowest point, over a sliding window ([`ClockConfig::window_s`], 300 s): at most
//!   a few hundred points. The fit is redone when a delivery opens a new bin or lies below the
//!   current envelope, O(bins) each time; other deliveries cost O(log bins).
//! - With fewer than 2 bins, or a window spanning less than [`ClockConfig::min_span_s`], the
//!   envelope is flat through the lowest point (skew 0).
//! - Departure from Moon et al.: the hull slope is smoothed exponentially over refits
//!   ([`ClockConfig::skew_tau_s`], 60 s of device time) and bounded to
//!   ±[`ClockConfig::max_skew_ppm`]; the envelope is then the supporting line of that slope (the
//!   same LP with the slope fixed), so it stays below every point. Why: with one delivery a
//!   second and 40 ms of jitter, the hull edge over a 120 s window wandered by ±30 ppm (its two
//!   vertices can be a few seconds apart); 300 s and the smoothing keep it within ±9 ppm
//!   (`skew_of_100_ppm_over_an_hour`). A downward latency step moves the envelope to the new
//!   level at once instead of tilting it.
//!
//! Without a common clock a *steady* latency cannot be told from an offset: a strap whose data
//! always arrive 6 s late is mapped as if its clock were 6 s behind, and the engine sees it as
//! current. What can be told apart is the *variable* part.
//!
//! # Latency allowance
//!
//! Samples must not be mapped earlier than they could have been seen. A delivery's first sample
//! waited longest; its excess over the envelope, `host_t − (first_device_t + env(first_device_t))`,
//! is the batching and buffering delay. Each bin keeps its delivery with the largest excess, and
//! the allowance `L` is the [`ClockConfig::latency_quantile`] (0.95, nearest rank) of those over
//! the window, so one stall does not inflate it for long. The mapping is
//!
//! ```text
//! session_t = device_t + env(device_t) + L
//! ```
//!
//! EDA in 10 s blocks gets `L ≈ 10 s`: every sample is mapped at or after its arrival and the
//! stream's data stay continuous at every tick, 10 s behind. `L` is [`ClockReport::latency_s`].
//!
//! # Resets and bad input
//!
//! A delivery whose delay departs from the envelope by more than [`ClockConfig::reset_jump_s`]
//! downwards (the device time jumped forward), or upwards while its device time went backwards
//! (a device reset or a backward clock step), restarts the estimate from that delivery, and
//! `observe` returns [`Observed::Reset`] so the engine can mark a gap. An upward departure with
//! device time still moving forward is a stall: the point is kept (it cannot lower the envelope)
//! and the quantile discounts it as long as it covers under 5% of the window's bins (15 s of a
//! 300 s window); a longer FIFO stall raises `L` until its bins leave the window. A backward step smaller than `reset_jump_s` is not a reset: the
//! allowance absorbs it within the window and the clamp below keeps order meanwhile. Non-finite
//! inputs, and deliveries with `first_device_t > last_device_t`, are ignored (no state change).
//!
//! # Monotonic output (clamp)
//!
//! Mapped times of a stream strictly increase across [`StreamClock::map_timing`] calls, even
//! when the estimate moves. When it moves backward (a lower envelope, a smaller `L`), samples
//! that would map at or before the previous mapped time are *clamped* to just after it
//! ([`ClockConfig::min_step_s`], 1 µs), never reordered; a uniform chunk moves whole. A backward
//! move of `δ` thus displaces about `δ` worth of data (rounded up to whole chunks), each sample
//! by at most `δ + min_step_s` as long as device times do not overlap; the mapping is exact again
//! as soon as the estimate passes the clamp. The floor survives resets (both [`Observed::Reset`]
//! and [`StreamClock::reset`]): session time never runs backwards within a stream. A uniform chunk keeps its nominal rate (the feature chain is built
//! per rate), so within a chunk the mapping ignores skew: an error of at most the chunk's
//! duration times the skew (10 s × 100 ppm = 1 ms), not carried into the next chunk.
//!
//! Raw device times and arrival times are never replaced (RELIABILITY.md, "Monotonic
//! timestamps"): the mapped [`Timing`] is derived data, next to the chunk.

use crate::engine::event::ClockReport;
use crate::model::Timing;
use std::collections::VecDeque;

/// Bins kept whatever the configuration says, so memory stays bounded.
const MAX_BINS: usize = 4096;

/// Estimator settings (see the module docs for what each does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockConfig {
    /// Sliding window of arrivals, by device time, s.
    pub window_s: f64,
    /// Width of a bin that keeps one lowest point, s.
    pub bin_s: f64,
    /// Shortest window span for fitting a skew, s; below it the envelope is flat.
    pub min_span_s: f64,
    /// Quantile of the per-bin excess delays taken as the latency allowance, in `[0, 1]`.
    pub latency_quantile: f64,
    /// Departure from the envelope that means a device reset or clock step, s.
    pub reset_jump_s: f64,
    /// Largest skew the fit may report, ppm (crystals are within ±100).
    pub max_skew_ppm: f64,
    /// Spacing of clamped mapped times, s.
    pub min_step_s: f64,
    /// Time constant of the smoothing of the fitted slope, s of device time.
    pub skew_tau_s: f64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            window_s: 300.0,
            bin_s: 1.0,
            min_span_s: 10.0,
            latency_quantile: 0.95,
            reset_jump_s: 30.0,
            max_skew_ppm: 500.0,
            min_step_s: 1e-6,
            skew_tau_s: 60.0,
        }
    }
}

impl ClockConfig {
    /// Replaces values outside their ranges (non-finite, non-positive) by the defaults.
    fn sanitized(self) -> Self {
        let d = Self::default();
        let pos = |v: f64, dv: f64| if v.is_finite() && v > 0.0 { v } else { dv };
        let q = self.latency_quantile;
        Self {
            window_s: pos(self.window_s, d.window_s),
            bin_s: pos(self.bin_s, d.bin_s),
            min_span_s: if self.min_span_s.is_finite() {
                self.min_span_s.max(0.0)
            } else {
                d.min_span_s
            },
            latency_quantile: if q.is_finite() {
                q.clamp(0.0, 1.0)
            } else {
                d.latency_quantile
            },
            reset_jump_s: pos(self.reset_jump_s, d.reset_jump_s),
            max_skew_ppm: pos(self.max_skew_ppm, d.max_skew_ppm),
            min_step_s: pos(self.min_step_s, d.min_step_s),
            skew_tau_s: pos(self.skew_tau_s, d.skew_tau_s),
        }
    }
}

/// What [`StreamClock::observe`] did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Non-finite times or `first > last`: nothing changed.
    Ignored,
    /// Added to the estimate.
    Used,
    /// The device clock jumped: the estimate restarted from this delivery (the engine should
    /// treat the stream as having a gap here).
    Reset,
}

/// The lowest point of one device-time bin, and its most delayed first sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bin {
    /// `floor(device_t / bin_s)`.
    key: i64,
    /// Device time of the lowest last-sample point, s.
    x: f64,
    /// Its delay `host_t − device_t`, s.
    y: f64,
    /// First-sample device time of the delivery with the largest excess, s.
    first_x: f64,
    /// Its delay, s.
    first_y: f64,
}

/// The envelope `y = y0 + slope·(x − x0)`, anchored at a hull vertex for precision.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Line {
    x0: f64,
    y0: f64,
    slope: f64,
}

impl Line {
    fn at(&self, x: f64) -> f64 {
        self.y0 + self.slope * (x - self.x0)
    }
}

/// The clock mapping of one stream: design ([`ClockConfig`]) plus state.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamClock {
    cfg: ClockConfig,
    /// Sorted by key.
    bins: VecDeque<Bin>,
    /// `None` until the first observation (and after a reset).
    line: Option<Line>,
    latency_s: f64,
    /// The smoothed hull slope and the device time it was last updated at.
    skew: Option<(f64, f64)>,
    newest_x: f64,
    observations: u64,
    /// The last mapped session time; survives resets.
    floor: Option<f64>,
    /// Reused buffers for the hull and the quantile.
    hull: Vec<(f64, f64)>,
    excess: Vec<f64>,
}

impl StreamClock {
    /// A mapper with no estimate yet. Out-of-range settings fall back to the defaults.
    pub fn new(cfg: ClockConfig) -> Self {
        Self {
            cfg: cfg.sanitized(),
            bins: VecDeque::new(),
            line: None,
            latency_s: 0.0,
            skew: None,
            newest_x: f64::NEG_INFINITY,
            observations: 0,
            floor: None,
            hull: Vec::new(),
            excess: Vec::new(),
        }
    }

    /// One delivery: samples with device times `first_device_t..=last_device_t` arrived at
    /// session time `host_t`. Call it before [`Self::map_timing`] for the same chunk.
    pub fn observe(&mut self, first_device_t: f64, last_device_t: f64, host_t: f64) -> Observed {
        let (fx, x) = (first_device_t, last_device_t);
        if !(fx.is_finite() && x.is_finite() && host_t.is_finite()) || fx > x {
            return Observed::Ignored;
        }
        let (y, first_y) = (host_t - x, host_t - fx);
        if !(y.is_finite() && first_y.is_finite()) {
            return Observed::Ignored;
        }
        let mut outcome = Observed::Used;
        if let Some(line) = self.line {
            let dev = y - line.at(x);
            if dev < -self.cfg.reset_jump_s || (dev > self.cfg.reset_jump_s && x < self.newest_x) {
                self.forget();
                outcome = Observed::Reset;
            }
        }
        if x < self.newest_x - self.cfg.window_s {
            // Older than the window: nothing to keep.
            self.observations += 1;
            return outcome;
        }
        let below = self.line.is_none_or(|l| y < l.at(x));
        let key = (x / self.cfg.bin_s).floor() as i64;
        let opened = match self.bins.binary_search_by_key(&key, |b| b.key) {
            Ok(i) => {
                let line = self.line;
                if let Some(b) = self.bins.get_mut(i) {
                    if y < b.y {
                        (b.x, b.y) = (x, y);
                    }
                    let excess = |fx: f64, fy: f64| line.map_or(fy, |l| fy - l.at(fx));
                    if excess(fx, first_y) > excess(b.first_x, b.first_y) {
                        (b.first_x, b.first_y) = (fx, first_y);
                    }
                }
                false
            }
            Err(i) => {
                let bin = Bin {
                    key,
                    x,
                    y,
                    first_x: fx,
                    first_y,
                };
                self.bins.insert(i, bin);
                i + 1 == self.bins.len()
            }
        };
        self.newest_x = self.newest_x.max(x);
        self.observations += 1;
        if opened || below {
            self.refit();
        }
        outcome
    }

    /// Session time of a device time under the current estimate (`None` before the first
    /// observation, or for a non-finite time). Not clamped: see [`Self::map_timing`].
    pub fn to_session(&self, device_t: f64) -> Option<f64> {
        let line = self.line?;
        let t = device_t + line.at(device_t) + self.latency_s;
        t.is_finite().then_some(t)
    }

    /// Maps a chunk's timing to session times, clamped so that the stream's mapped times
    /// strictly increase across calls (module docs, "Monotonic output"). `n_samples` is the
    /// chunk's sample count for [`Timing::Uniform`] (the rate is kept); [`Timing::Events`] maps
    /// each of its times. `None`, with no state change, before the first observation or for a
    /// timing with non-finite times or a rate that is not > 0.
    pub fn map_timing(&mut self, timing: &Timing, n_samples: usize) -> Option<Timing> {
        match timing {
            Timing::Uniform { t0, rate_hz } => {
                let rate_hz = *rate_hz;
                if !(rate_hz.is_finite() && rate_hz > 0.0) {
                    return None;
                }
                let s0 = self.clamp(self.to_session(*t0)?, self.floor);
                if let Some(n) = n_samples.checked_sub(1) {
                    let last = s0 + n as f64 / rate_hz;
                    if !last.is_finite() {
                        return None;
                    }
                    self.floor = Some(last);
                }
                Some(Timing::Uniform { t0: s0, rate_hz })
            }
            Timing::Events(ts) => {
                let mut floor = self.floor;
                let mut out = Vec::with_capacity(ts.len());
                for &t in ts {
                    let s = self.clamp(self.to_session(t)?, floor);
                    floor = Some(s);
                    out.push(s);
                }
                self.floor = floor;
                Some(Timing::Events(out))
            }
        }
    }

    /// The current estimate, for `state` events (`None` before the first observation).
    pub fn report(&self) -> Option<ClockReport> {
        let line = self.line?;
        let b = line.slope;
        Some(ClockReport {
            offset_s: line.at(self.newest_x),
            // host = device·(1 + b) + c, so the device runs 1/(1 + b) times as fast as the host.
            skew_ppm: -b / (1.0 + b) * 1e6,
            latency_s: self.latency_s,
            observations: self.observations,
        })
    }

    /// Forgets the estimate (after a gap the engine knows of). Mapped times keep increasing
    /// from where they were.
    pub fn reset(&mut self) {
        self.forget();
    }

    fn forget(&mut self) {
        self.bins.clear();
        self.line = None;
        self.latency_s = 0.0;
        self.skew = None;
        self.newest_x = f64::NEG_INFINITY;
        self.observations = 0;
    }

    /// `t`, or just after `floor` if `t` is not after it.
    fn clamp(&self, t: f64, floor: Option<f64>) -> f64 {
        match floor {
            Some(f) if t <= f => (f + self.cfg.min_step_s).max(f.next_up()),
            _ => t,
        }
    }

    /// Drops bins outside the window, refits the envelope and recomputes the allowance.
    fn refit(&mut self) {
        let start = self.newest_x - self.cfg.window_s;
        while self.bins.len() > 1
            && (self.bins.len() > MAX_BINS || self.bins.front().is_some_and(|b| b.x < start))
        {
            self.bins.pop_front();
        }
        let (Some(front), Some(back)) = (self.bins.front().copied(), self.bins.back().copied())
        else {
            return;
        };
        let line = if self.bins.len() < 2 || back.x - front.x < self.cfg.min_span_s {
            let lowest = self
                .bins
                .iter()
                .fold(front, |m, b| if b.y < m.y { *b } else { m });
            Line {
                x0: lowest.x,
                y0: lowest.y,
                slope: 0.0,
            }
        } else {
            self.fit_hull(front)
        };
        self.line = Some(line);
        self.excess.clear();
        self.excess.extend(
            self.bins
                .iter()
                .map(|b| (b.first_y - line.at(b.first_x)).max(0.0)),
        );
        let n = self.excess.len();
        let rank = ((self.cfg.latency_quantile * n as f64).ceil() as usize).clamp(1, n.max(1)) - 1;
        let (_, l, _) = self.excess.select_nth_unstable_by(rank, f64::total_cmp);
        self.latency_s = *l;
    }

    /// Moon et al.'s fit: the lower-hull edge spanning the mean `x`, its slope bounded.
    fn fit_hull(&mut self, origin: Bin) -> Line {
        let rel = |b: &Bin| (b.x - origin.x, b.y - origin.y);
        self.hull.clear();
        let mut sum_x = 0.0;
        for p in self.bins.iter().map(rel) {
            sum_x += p.0;
            while let [.., o, a] = self.hull[..] {
                if (a.0 - o.0) * (p.1 - o.1) - (a.1 - o.1) * (p.0 - o.0) > 0.0 {
                    break;
                }
                self.hull.pop();
            }
            self.hull.push(p);
        }
        let mean_x = sum_x / self.bins.len() as f64;
        let edge = self
            .hull
            .windows(2)
            .find(|w| matches!(w, [_, b] if b.0 >= mean_x))
            .or_else(|| self.hull.windows(2).last());
        let Some(&[a, b]) = edge else {
            return Line {
                x0: origin.x,
                y0: origin.y,
                slope: 0.0,
            };
        };
        let max_b = self.cfg.max_skew_ppm * 1e-6;
        let lp = (b.1 - a.1) / (b.0 - a.0);
        let lp = if lp.is_nan() {
            0.0
        } else {
            lp.clamp(-max_b, max_b)
        };
        // Smooth the hull slope over refits, then take the supporting line of that slope.
        let slope = match self.skew {
            Some((prev, at)) => {
                let k = 1.0 - (-(self.newest_x - at).max(0.0) / self.cfg.skew_tau_s).exp();
                prev + k * (lp - prev)
            }
            None => lp,
        };
        self.skew = Some((slope, self.newest_x));
        let v = self.hull.iter().copied().fold(a, |m, p| {
            if p.1 - slope * p.0 < m.1 - slope * m.0 {
                p
            } else {
                m
            }
        });
        Line {
            x0: v.0 + origin.x,
            y0: v.1 + origin.y,
            slope,
        }
    }
}

#[cfg(test)]
#[path = "clock_tests.rs"]
mod tests;
