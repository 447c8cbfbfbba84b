//! Per-participant windowed arousal features, updated on a fixed tick (4 Hz).
//!
//! Pure: chunks and gaps in, [`FeatureFrame`]s out. Windows end at the tick time `t` and use only
//! samples with device time ≤ `t`:
//!
//! | feature | unit | from | window | needs |
//! |---|---|---|---|---|
//! | `hr_bpm` | bpm | RR (else strap HR) | 10 s | 10 s of data, ≥ 5 beats |
//! | `rmssd_ms` | ms | RR | 60 s | 60 s of data, ≥ 20 successive differences |
//! | `scl_us` | µS | EDA, cleaned | 10 s | 10 s of data |
//! | `scr_per_min` | 1/min | EDA, SCR detector | 60 s | 60 s of data |
//!
//! HR and SCL use 10 s so that the adaptation can follow a change within seconds; RMSSD and SCR
//! rate need 60 s (SIGNALS.md §5: RMSSD ≥ 60 s; SCRs occur 1–3 per minute at rest). A stream with
//! no sample in the last `stale_after_s` gives no features; an EDA window with any sample outside
//! the plausible range [0.05, 100] µS marks the stream low-quality and gives no EDA features,
//! and so does an RR stream with half or more of its last 10 s of intervals rejected, and an EDA
//! window that does not move by 0.1 nS (lost contact or a saturated input).
//! ECG and PPG are not turned into beats in the daemon yet: their chunks pass through unused.

use crate::dsp::eda::{EdaChain, EdaConfig, Scr};
use crate::dsp::filter::FilterError;
use crate::dsp::rr::{RrConfig, RrWindow};
use crate::model::{Chunk, StreamKind, Timing};
use std::collections::VecDeque;

/// Window lengths and thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureConfig {
    /// HR window, s.
    pub hr_window_s: f64,
    /// RMSSD window, s.
    pub rmssd_window_s: f64,
    /// SCL window, s.
    pub scl_window_s: f64,
    /// SCR-rate window, s.
    pub scr_window_s: f64,
    /// A stream with no sample this long before the tick is stale, s.
    pub stale_after_s: f64,
    /// Plausible EDA range, µS.
    pub eda_range_us: (f64, f64),
    /// An EDA window whose range (max − min of the cleaned signal) stays below this is flat, µS.
    pub flat_us: f64,
    /// RR acceptance.
    pub rr: RrConfig,
    /// EDA chain.
    pub eda: EdaConfig,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            hr_window_s: 10.0,
            rmssd_window_s: 60.0,
            scl_window_s: 10.0,
            scr_window_s: 60.0,
            stale_after_s: 5.0,
            eda_range_us: (0.05, 100.0),
            flat_us: 1e-4,
            rr: RrConfig::default(),
            eda: EdaConfig::default(),
        }
    }
}

/// The feature names, in the order used everywhere (messages, baseline, policy).
pub const FEATURE_NAMES: [&str; 4] = ["hr_bpm", "rmssd_ms", "scl_us", "scr_per_min"];

/// The source kind of each feature in [`FEATURE_NAMES`] order (HR may also come from `hr`).
pub const FEATURE_SOURCES: [StreamKind; 4] = [
    StreamKind::Rr,
    StreamKind::Rr,
    StreamKind::Eda,
    StreamKind::Eda,
];

/// Features of one participant at one tick; `None` where the window lacks data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureFrame {
    /// Tick time, s.
    pub t: f64,
    /// Values in [`FEATURE_NAMES`] order.
    pub values: [Option<f64>; 4],
    /// The stream each value came from (`hr_bpm` from `rr`, or from `hr` when RR gives none).
    pub sources: [StreamKind; 4],
}

impl FeatureFrame {
    /// A frame at `t` with no values.
    pub fn empty(t: f64) -> Self {
        Self {
            t,
            values: [None; 4],
            sources: FEATURE_SOURCES,
        }
    }

    /// Whether any feature has a value.
    pub fn any(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }
}

/// Quality of one stream as seen by the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// Fresh and plausible.
    Good,
    /// No sample recently.
    Stale,
    /// Samples outside the plausible range (or, for RR, mostly rejected intervals).
    OutOfRange,
    /// A signal that does not move at all: lost electrode contact or a saturated input.
    Flat,
}

#[derive(Debug)]
struct EdaState {
    rate_hz: f64,
    chain: EdaChain,
    clean: VecDeque<(f64, f64)>,
    scrs: VecDeque<Scr>,
    since: Option<f64>,
    last_t: f64,
}

#[derive(Debug)]
struct HrState {
    samples: VecDeque<(f64, f64)>,
    since: Option<f64>,
}

/// Why a chunk could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// The EDA filters cannot be designed for this rate.
    #[error("EDA stream at {rate_hz} Hz: {source}")]
    EdaRate {
        /// The stream's rate, Hz.
        rate_hz: f64,
        /// The design error.
        source: FilterError,
    },
}

/// The feature state of one participant.
#[derive(Debug)]
pub struct ParticipantFeatures {
    cfg: FeatureConfig,
    rr: Option<RrWindow>,
    eda: Option<EdaState>,
    hr: Option<HrState>,
    scr_scratch: Vec<Scr>,
}

impl ParticipantFeatures {
    /// Empty state.
    pub fn new(cfg: FeatureConfig) -> Self {
        Self {
            cfg,
            rr: None,
            eda: None,
            hr: None,
            scr_scratch: Vec::new(),
        }
    }

    /// Feeds a chunk that passed the consent gate.
    pub fn on_chunk(&mut self, c: &Chunk) -> Result<(), FeatureError> {
        match (c.kind, &c.timing) {
            (StreamKind::Rr, _) => {
                let w = self
                    .rr
                    .get_or_insert_with(|| RrWindow::new(self.cfg.rr.clone()));
                for (i, &rr) in c.samples.iter().enumerate() {
                    w.push(c.time_of(i), rr);
                }
            }
            (StreamKind::Eda, Timing::Uniform { rate_hz, .. }) => {
                let rate_hz = *rate_hz;
                if self.eda.as_ref().is_none_or(|e| e.rate_hz != rate_hz) {
                    let chain = EdaChain::new(rate_hz, self.cfg.eda.clone())
                        .map_err(|source| FeatureError::EdaRate { rate_hz, source })?;
                    self.eda = Some(EdaState {
                        rate_hz,
                        chain,
                        clean: VecDeque::new(),
                        scrs: VecDeque::new(),
                        since: None,
                        last_t: f64::NEG_INFINITY,
                    });
                }
                if let Some(e) = self.eda.as_mut() {
                    e.since.get_or_insert(c.time_of(0));
                    for (i, &x) in c.samples.iter().enumerate() {
                        let t = c.time_of(i);
                        if let Some(v) = e.chain.push(t, x, &mut self.scr_scratch) {
                            e.clean.push_back((t, v));
                        }
                        e.last_t = t;
                    }
                    e.scrs.extend(self.scr_scratch.drain(..));
                }
            }
            (StreamKind::Hr, _) => {
                let h = self.hr.get_or_insert_with(|| HrState {
                    samples: VecDeque::new(),
                    since: None,
                });
                h.since.get_or_insert(c.time_of(0));
                for (i, &x) in c.samples.iter().enumerate() {
                    h.samples.push_back((c.time_of(i), x));
                }
            }
            // ECG/PPG beat detection is not in the daemon yet; event-timed EDA is not a thing.
            _ => {}
        }
        Ok(())
    }

    /// Drops everything held for stream `kind` (consent to process it was withdrawn): its
    /// buffered samples never feed another feature.
    pub fn forget_stream(&mut self, kind: StreamKind) {
        match kind {
            StreamKind::Rr => self.rr = None,
            StreamKind::Eda => self.eda = None,
            StreamKind::Hr => self.hr = None,
            StreamKind::Ecg | StreamKind::Ppg => {}
        }
    }

    /// A gap in stream `kind`: filters re-prime, windows restart their coverage.
    pub fn on_gap(&mut self, kind: StreamKind) {
        match kind {
            StreamKind::Rr => {
                if let Some(w) = &mut self.rr {
                    w.gap();
                }
            }
            StreamKind::Eda => {
                if let Some(e) = &mut self.eda {
                    e.chain.reset();
                    e.since = None;
                }
            }
            StreamKind::Hr => {
                if let Some(h) = &mut self.hr {
                    h.since = None;
                }
            }
            StreamKind::Ecg | StreamKind::Ppg => {}
        }
    }

    /// Quality of stream `kind` at tick `t`, or None if the stream never had data.
    pub fn quality(&self, kind: StreamKind, t: f64) -> Option<Quality> {
        let stale = |last: f64| t - last > self.cfg.stale_after_s;
        match kind {
            StreamKind::Rr => {
                let w = self.rr.as_ref()?;
                let last = w.last_seen()?;
                Some(if stale(last) {
                    Quality::Stale
                } else if w.rejected_share().is_some_and(|s| s >= 0.5) {
                    // Most intervals implausible: wrong units, a loose strap, or ectopy.
                    Quality::OutOfRange
                } else {
                    Quality::Good
                })
            }
            StreamKind::Eda => {
                let e = self.eda.as_ref()?;
                if stale(e.last_t) {
                    return Some(Quality::Stale);
                }
                let (lo, hi) = self.cfg.eda_range_us;
                let t0 = t - self.cfg.scl_window_s;
                let recent = || e.clean.iter().rev().take_while(|(ts, _)| *ts > t0);
                let bad = recent().any(|(_, v)| *v < lo || *v > hi);
                let (min, max) = recent()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (_, v)| {
                        (a.min(*v), b.max(*v))
                    });
                let covered = e.since.is_some_and(|s| t - s >= self.cfg.scl_window_s);
                Some(if bad {
                    Quality::OutOfRange
                } else if covered && max - min < self.cfg.flat_us {
                    Quality::Flat
                } else {
                    Quality::Good
                })
            }
            StreamKind::Hr => {
                let last = self.hr.as_ref()?.samples.back()?.0;
                Some(if stale(last) {
                    Quality::Stale
                } else {
                    Quality::Good
                })
            }
            StreamKind::Ecg | StreamKind::Ppg => None,
        }
    }

    /// Computes the frame at tick `t` and forgets data no window needs any more.
    pub fn frame(&mut self, t: f64) -> FeatureFrame {
        let cfg = &self.cfg;
        let mut values = [None; 4];
        let mut sources = FEATURE_SOURCES;
        if self.quality(StreamKind::Rr, t) == Some(Quality::Good)
            && let Some(w) = &self.rr
        {
            values[0] = w.hr_bpm(t, cfg.hr_window_s, 5);
            values[1] = w.rmssd_ms(t, cfg.rmssd_window_s, 20);
        }
        if values[0].is_none()
            && self.quality(StreamKind::Hr, t) == Some(Quality::Good)
            && let Some(h) = &self.hr
        {
            values[0] = window_mean(&h.samples, h.since, t, cfg.hr_window_s);
            sources[0] = StreamKind::Hr;
        }
        if self.quality(StreamKind::Eda, t) == Some(Quality::Good)
            && let Some(e) = &self.eda
        {
            values[2] = window_mean(&e.clean, e.since, t, cfg.scl_window_s);
            let covered = e.since.is_some_and(|s| t - s >= cfg.scr_window_s);
            if covered {
                let lo = t - cfg.scr_window_s;
                let n = e
                    .scrs
                    .iter()
                    .filter(|s| s.confirmed_t > lo && s.confirmed_t <= t)
                    .count();
                values[3] = Some(n as f64 * 60.0 / cfg.scr_window_s);
            }
        }
        self.prune(t);
        FeatureFrame { t, values, sources }
    }

    fn prune(&mut self, t: f64) {
        let keep = self
            .cfg
            .hr_window_s
            .max(self.cfg.rmssd_window_s)
            .max(self.cfg.scl_window_s)
            .max(self.cfg.scr_window_s);
        let lo = t - keep;
        if let Some(w) = &mut self.rr {
            w.prune(lo);
        }
        if let Some(e) = &mut self.eda {
            while e.clean.front().is_some_and(|(ts, _)| *ts <= lo) {
                e.clean.pop_front();
            }
            while e.scrs.front().is_some_and(|s| s.confirmed_t <= lo) {
                e.scrs.pop_front();
            }
        }
        if let Some(h) = &mut self.hr {
            while h.samples.front().is_some_and(|(ts, _)| *ts <= lo) {
                h.samples.pop_front();
            }
        }
    }
}

/// Mean of the values in (t − window, t] if data cover the window since `since`.
fn window_mean(v: &VecDeque<(f64, f64)>, since: Option<f64>, t: f64, window: f64) -> Option<f64> {
    if since.is_none_or(|s| t - s < window) {
        return None;
    }
    let lo = t - window;
    let (mut sum, mut n) = (0.0, 0usize);
    for (_, x) in v
        .iter()
        .rev()
        .take_while(|(ts, _)| *ts > lo)
        .filter(|(ts, _)| *ts <= t)
    {
        sum += x;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ParticipantId;

    fn eda_chunk(seq: u64, t0: f64, values: Vec<f64>) -> Chunk {
        Chunk {
            participant: ParticipantId::new("p").unwrap(),
            kind: StreamKind::Eda,
            seq,
            host_t: t0,
            timing: Timing::Uniform { t0, rate_hz: 32.0 },
            samples: values,
        }
    }

    #[test]
    fn scl_is_the_window_mean_and_needs_coverage() {
        let mut f = ParticipantFeatures::new(FeatureConfig::default());
        // 4 µS with a 0.5 Hz, ±10 nS ripple (a real signal is never exactly flat).
        for s in 0..20u64 {
            let v: Vec<f64> = (0..32)
                .map(|i| 4.0 + 0.01 * (std::f64::consts::PI * (s as f64 + i as f64 / 32.0)).sin())
                .collect();
            f.on_chunk(&eda_chunk(s, s as f64, v)).unwrap();
        }
        assert_eq!(f.frame(5.0).values[2], None, "window not yet covered");
        let v = f.frame(19.9).values[2].unwrap();
        assert!((v - 4.0).abs() < 1e-4, "{v}");
        assert_eq!(f.frame(19.9).values[3], None, "SCR rate needs 60 s");
        // 30 s later nothing new arrived: stale, no features.
        assert_eq!(f.frame(50.0).values[2], None);
        assert_eq!(f.quality(StreamKind::Eda, 50.0), Some(Quality::Stale));
    }

    #[test]
    fn a_flat_eda_line_is_flagged_not_used() {
        let mut f = ParticipantFeatures::new(FeatureConfig::default());
        for s in 0..20u64 {
            f.on_chunk(&eda_chunk(s, s as f64, vec![4.0; 32])).unwrap();
        }
        assert_eq!(f.quality(StreamKind::Eda, 19.9), Some(Quality::Flat));
        assert_eq!(f.frame(19.9).values[2], None);
    }

    #[test]
    fn implausible_eda_is_flagged_not_used() {
        let mut f = ParticipantFeatures::new(FeatureConfig::default());
        for s in 0..20u64 {
            // raw ADC-like units in a stream declared µS
            f.on_chunk(&eda_chunk(s, s as f64, vec![512.0; 32]))
                .unwrap();
        }
        assert_eq!(f.quality(StreamKind::Eda, 19.9), Some(Quality::OutOfRange));
        assert_eq!(f.frame(19.9).values[2], None);
    }
}

#[cfg(test)]
mod rr_quality_tests {
    use super::*;
    use crate::model::ParticipantId;

    #[test]
    fn an_rr_stream_of_implausible_intervals_is_low_quality_not_streaming() {
        // RR sent in seconds instead of ms: every interval is rejected.
        let mut f = ParticipantFeatures::new(FeatureConfig::default());
        let mut t = 0.0;
        for seq in 0..30u64 {
            t += 0.85;
            f.on_chunk(&Chunk {
                participant: ParticipantId::new("p").unwrap(),
                kind: StreamKind::Rr,
                seq,
                host_t: t,
                timing: Timing::Events(vec![t]),
                samples: vec![0.85],
            })
            .unwrap();
        }
        assert_eq!(f.quality(StreamKind::Rr, t), Some(Quality::OutOfRange));
        assert_eq!(f.frame(t).values[0], None);
        assert_eq!(f.quality(StreamKind::Rr, t + 6.0), Some(Quality::Stale));
    }
}
