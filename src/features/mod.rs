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
//!
//! Heart features come from beat intervals: RR from a strap, or beats detected in an ECG or PPG
//! waveform by the causal detectors of [`crate::dsp::beats`] (`heart.rs`). When several heart
//! streams are good, `rr` is used first, then `ecg`, then `ppg`; the strap's own `hr` is the
//! last resort for `hr_bpm`. A waveform whose detector reports a [`SignalIssue`] (flat,
//! saturated, inverted, mains hum, no beats) is low-quality with that reason, and gives no
//! feature.

mod heart;
mod spectral;

pub use spectral::{SpectralFrame, phase_of};

use crate::dsp::beats::{BeatConfig, BeatError, SignalIssue, Waveform};
use crate::dsp::eda::{EdaChain, EdaConfig, Scr};
use crate::dsp::eda_symp::{EdaSympIssue, EdaSympathetic};
use crate::dsp::filter::FilterError;
use crate::dsp::hrv_spectral::{HrvSpectral, HrvSpectrumIssue};
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
    /// Beats taken for the HRV spectrum, s (`spectral.rs`).
    pub hrv_spectral_window_s: f64,
    /// The spectral features are recomputed this often, s.
    pub spectral_hop_s: f64,
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
    /// Beat detection in ECG and PPG.
    pub beats: BeatConfig,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            hr_window_s: 10.0,
            rmssd_window_s: 60.0,
            scl_window_s: 10.0,
            scr_window_s: 60.0,
            hrv_spectral_window_s: 130.0,
            spectral_hop_s: 5.0,
            stale_after_s: 5.0,
            eda_range_us: (0.05, 100.0),
            flat_us: 1e-4,
            rr: RrConfig::default(),
            eda: EdaConfig::default(),
            beats: BeatConfig::default(),
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

/// The beat-interval streams, in the order they are preferred for the heart features.
pub const HEART_STREAMS: [StreamKind; 3] = [StreamKind::Rr, StreamKind::Ecg, StreamKind::Ppg];

/// Features of one participant at one tick; `None` where the window lacks data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureFrame {
    /// Tick time, s.
    pub t: f64,
    /// Values in [`FEATURE_NAMES`] order.
    pub values: [Option<f64>; 4],
    /// The stream each value came from (`hr_bpm` from `rr`, `ecg` or `ppg`, or from `hr` when
    /// no beat stream gives one).
    pub sources: [StreamKind; 4],
    /// Share of the beats in the RMSSD window of the stream that gave `rmssd_ms` which the
    /// artefact step corrected or excluded (part of that heart stream's quality).
    pub beats_corrected: Option<f64>,
    /// HRV LF/HF and EDASymp (updated every few seconds, carried in between).
    pub spectral: SpectralFrame,
}

impl FeatureFrame {
    /// A frame at `t` with no values.
    pub fn empty(t: f64) -> Self {
        Self {
            t,
            values: [None; 4],
            sources: FEATURE_SOURCES,
            beats_corrected: None,
            spectral: SpectralFrame::default(),
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
    /// A waveform in which no trustworthy beat can be found, and why.
    Signal(SignalIssue),
}

impl Quality {
    /// Why the stream is not good, in a word (`None` for good or stale).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Self::Good | Self::Stale => None,
            Self::OutOfRange => Some("out_of_range"),
            Self::Flat => Some("flat"),
            Self::Signal(i) => Some(i.as_str()),
        }
    }
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
    /// No beat detector for this waveform rate.
    #[error("{source}")]
    BeatRate {
        /// The detector's error.
        source: BeatError,
    },
}

/// The feature state of one participant.
#[derive(Debug)]
pub struct ParticipantFeatures {
    cfg: FeatureConfig,
    rr: Option<RrWindow>,
    eda: Option<EdaState>,
    hr: Option<HrState>,
    ecg: Option<heart::WaveHeart>,
    ppg: Option<heart::WaveHeart>,
    scr_scratch: Vec<Scr>,
    eda_symp: Option<EdaSympathetic>,
    hrv_spec: HrvSpectral,
    schedule: spectral::Schedule,
    spectral: SpectralFrame,
}

impl ParticipantFeatures {
    /// Empty state.
    pub fn new(cfg: FeatureConfig) -> Self {
        Self {
            rr: None,
            eda: None,
            hr: None,
            ecg: None,
            ppg: None,
            scr_scratch: Vec::new(),
            eda_symp: None,
            hrv_spec: HrvSpectral::new(),
            schedule: spectral::Schedule {
                hop_s: cfg.spectral_hop_s,
                phase_s: 0.0,
                next_t: None,
            },
            spectral: SpectralFrame::default(),
            cfg,
        }
    }

    /// Sets this participant's phase in the spectral update cycle ([`phase_of`] its id).
    pub fn set_spectral_phase(&mut self, phase_s: f64) {
        self.schedule.phase_s = phase_s;
        self.schedule.next_t = None;
    }

    /// Feeds a chunk that passed the consent gate.
    pub fn on_chunk(&mut self, c: &Chunk) -> Result<(), FeatureError> {
        match (c.kind, &c.timing) {
            (StreamKind::Rr, _) => {
                let w = self
                    .rr
                    .get_or_insert_with(|| RrWindow::new(self.cfg.rr.clone()));
                let meta = c.meta.as_deref();
                for (i, &rr) in c.samples.iter().enumerate() {
                    if meta.is_some_and(|m| m.is_suspect(i)) {
                        w.push_suspect(c.time_of(i), rr);
                    } else {
                        w.push(c.time_of(i), rr);
                    }
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
                    // The rate was accepted by the EDA chain, so the designs exist; a rate
                    // under 2 Hz gives a state that only says `unsupported_rate`.
                    self.eda_symp = EdaSympathetic::new(rate_hz).ok();
                    if self.spectral.eda.is_some() {
                        self.spectral.eda = Some(Err(EdaSympIssue::ShortWindow));
                    }
                }
                if let Some(e) = self.eda.as_mut() {
                    e.since.get_or_insert(c.time_of(0));
                    for (i, &x) in c.samples.iter().enumerate() {
                        let t = c.time_of(i);
                        if let Some(s) = self.eda_symp.as_mut() {
                            s.push(t, x);
                        }
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
            (StreamKind::Ecg | StreamKind::Ppg, Timing::Uniform { t0, rate_hz }) => {
                let (t0, rate_hz) = (*t0, *rate_hz);
                let (slot, wave) = match c.kind {
                    StreamKind::Ecg => (&mut self.ecg, Waveform::Ecg),
                    _ => (&mut self.ppg, Waveform::Ppg),
                };
                let mut new = None;
                if slot.as_ref().is_none_or(|h| h.rate_hz != rate_hz) {
                    if self.spectral.hrv_source == Some(c.kind) {
                        self.spectral.hrv = Some(Err(HrvSpectrumIssue::ShortWindow));
                    }
                    let h =
                        heart::WaveHeart::new(wave, rate_hz, &self.cfg.beats, self.cfg.rr.clone());
                    new = h.error().cloned();
                    *slot = Some(h);
                }
                if let Some(h) = slot.as_mut() {
                    h.push(t0, &c.samples);
                }
                // Said once per rate; the stream stays low-quality (`unsupported_rate`).
                if let Some(source) = new {
                    return Err(FeatureError::BeatRate { source });
                }
            }
            // Event-timed waveforms and EDA are not a thing.
            _ => {}
        }
        Ok(())
    }

    /// Drops everything held for stream `kind` (consent to process it was withdrawn): its
    /// buffered samples never feed another feature.
    pub fn forget_stream(&mut self, kind: StreamKind) {
        match kind {
            StreamKind::Rr => self.rr = None,
            StreamKind::Eda => {
                self.eda = None;
                self.eda_symp = None;
                self.spectral.eda = None;
            }
            StreamKind::Hr => self.hr = None,
            StreamKind::Ecg => self.ecg = None,
            StreamKind::Ppg => self.ppg = None,
        }
        if self.spectral.hrv_source == Some(kind) {
            self.spectral.hrv = None;
            self.spectral.hrv_source = None;
            // Its intervals may still sit in the spectrum's scratch buffers.
            self.hrv_spec.clear();
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
                if let Some(s) = &mut self.eda_symp {
                    s.gap();
                    self.spectral.eda = Some(Err(EdaSympIssue::ShortWindow));
                }
            }
            StreamKind::Hr => {
                if let Some(h) = &mut self.hr {
                    h.since = None;
                }
            }
            StreamKind::Ecg => self.ecg.as_mut().map_or((), heart::WaveHeart::gap),
            StreamKind::Ppg => self.ppg.as_mut().map_or((), heart::WaveHeart::gap),
        }
        // A value computed before the gap is not carried past it.
        if self.spectral.hrv_source == Some(kind) {
            self.spectral.hrv = Some(Err(HrvSpectrumIssue::ShortWindow));
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
                // One pass over the window (this runs on every tick of every participant).
                let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
                for &(_, v) in e.clean.iter().rev().take_while(|(ts, _)| *ts > t0) {
                    min = min.min(v);
                    max = max.max(v);
                }
                let bad = min < lo || max > hi;
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
            StreamKind::Ecg | StreamKind::Ppg => {
                let h = match kind {
                    StreamKind::Ecg => self.ecg.as_ref()?,
                    _ => self.ppg.as_ref()?,
                };
                Some(if stale(h.last_t) {
                    Quality::Stale
                } else if let Some(issue) = h.issue() {
                    Quality::Signal(issue)
                } else if h.rr.rejected_share().is_some_and(|s| s >= 0.5) {
                    Quality::OutOfRange
                } else {
                    Quality::Good
                })
            }
        }
    }

    /// The RR window of heart stream `kind` (`rr`, `ecg` or `ppg`).
    fn intervals(&self, kind: StreamKind) -> Option<&RrWindow> {
        intervals_of(&self.rr, &self.ecg, &self.ppg, kind)
    }

    /// Computes the frame at tick `t` and forgets data no window needs any more.
    pub fn frame(&mut self, t: f64) -> FeatureFrame {
        let cfg = &self.cfg;
        let mut values = [None; 4];
        let mut sources = FEATURE_SOURCES;
        let mut beats_corrected = None;
        // Each stream's quality once per frame (the EDA one scans its 10 s window).
        let heart_quality = HEART_STREAMS.map(|k| self.quality(k, t));
        let eda_quality = self.quality(StreamKind::Eda, t);
        for (kind, q) in HEART_STREAMS.into_iter().zip(heart_quality) {
            if q != Some(Quality::Good) {
                continue;
            }
            let Some(w) = self.intervals(kind) else {
                continue;
            };
            if values[0].is_none()
                && let Some(v) = w.hr_bpm(t, cfg.hr_window_s, 5)
            {
                values[0] = Some(v);
                sources[0] = kind;
            }
            if values[1].is_none()
                && let Some(v) = w.rmssd_ms(t, cfg.rmssd_window_s, 20)
            {
                values[1] = Some(v);
                sources[1] = kind;
                beats_corrected = w.corrected_share(t, cfg.rmssd_window_s);
            }
        }
        if values[0].is_none()
            && self.quality(StreamKind::Hr, t) == Some(Quality::Good)
            && let Some(h) = &self.hr
        {
            values[0] = window_mean(&h.samples, h.since, t, cfg.hr_window_s);
            sources[0] = StreamKind::Hr;
        }
        if eda_quality == Some(Quality::Good)
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
        self.update_spectral(t, heart_quality, eda_quality);
        self.prune(t);
        FeatureFrame {
            t,
            values,
            sources,
            beats_corrected,
            spectral: self.spectral,
        }
    }

    /// Recomputes the spectral features when due, or at once when a stream they came from is
    /// no longer good (a value never outlives its stream's quality).
    fn update_spectral(
        &mut self,
        t: f64,
        heart_quality: [Option<Quality>; 3],
        eda_quality: Option<Quality>,
    ) {
        let heart_good = heart_quality.map(|q| q == Some(Quality::Good));
        let good = |k: StreamKind| {
            HEART_STREAMS
                .iter()
                .position(|h| *h == k)
                .is_some_and(|i| heart_good[i])
        };
        // EDA that is out of range, flat or stale must never be inside a window that is
        // reported: the 2 Hz series restarts while the stream is not good.
        if !matches!(eda_quality, Some(Quality::Good) | None)
            && let Some(s) = self.eda_symp.as_mut()
        {
            s.gap();
        }
        let heart_lost = self.spectral.hrv_source.is_some_and(|k| !good(k))
            && matches!(self.spectral.hrv, Some(Ok(_)));
        let eda_lost =
            eda_quality != Some(Quality::Good) && matches!(self.spectral.eda, Some(Ok(_)));
        // A stream that appeared since the last update is reported at once (as short).
        let appeared = (self.spectral.hrv.is_none()
            && (self.rr.is_some() || self.ecg.is_some() || self.ppg.is_some()))
            || (self.spectral.eda.is_none() && self.eda_symp.is_some());
        if !(self.schedule.due(t) || heart_lost || eda_lost || appeared) {
            return;
        }
        let w = self.cfg.hrv_spectral_window_s;
        let mut hrv = None;
        let mut source = None;
        for (i, kind) in HEART_STREAMS.into_iter().enumerate() {
            // Field by field (not `self.intervals`): `hrv_spec` is borrowed mutably below.
            let Some(win) = intervals_of(&self.rr, &self.ecg, &self.ppg, kind) else {
                continue;
            };
            if !heart_good[i] {
                if hrv.is_none() {
                    hrv = Some(Err(HrvSpectrumIssue::NoSignal));
                    source = Some(kind);
                }
                continue;
            }
            // The window ends at the newest decided beat (the artefact step decides two beats
            // behind the data), so that it holds the full span and not 2–3 s less.
            let end = win.last_beat().filter(|b| *b <= t).unwrap_or(t);
            let r = if win.coverage(end) < w {
                Err(HrvSpectrumIssue::ShortWindow)
            } else {
                let lo = end - w;
                let beats = win
                    .beats()
                    .filter(|b| b.t > lo && b.t <= end)
                    .map(|b| (b.t, b.rr_ms, b.corrected));
                self.hrv_spec.compute(beats)
            };
            hrv = Some(r);
            source = Some(kind);
            break;
        }
        let eda = self.eda_symp.as_mut().map(|s| match eda_quality {
            Some(Quality::Good) => s.live(t),
            Some(Quality::Flat) => Err(EdaSympIssue::Flat),
            _ => Err(EdaSympIssue::NoSignal),
        });
        self.spectral = SpectralFrame {
            hrv,
            hrv_source: source,
            eda,
            computed_t: Some(t),
        };
    }

    fn prune(&mut self, t: f64) {
        let keep = self
            .cfg
            .hr_window_s
            .max(self.cfg.rmssd_window_s)
            .max(self.cfg.scl_window_s)
            .max(self.cfg.scr_window_s)
            // The spectrum's window ends at the newest decided beat, a few seconds back.
            .max(self.cfg.hrv_spectral_window_s + 10.0);
        let lo = t - keep;
        if let Some(w) = &mut self.rr {
            w.prune(lo);
        }
        for h in [&mut self.ecg, &mut self.ppg].into_iter().flatten() {
            h.rr.prune(lo);
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

/// The RR window of heart stream `kind` (`rr`, `ecg` or `ppg`).
fn intervals_of<'a>(
    rr: &'a Option<RrWindow>,
    ecg: &'a Option<heart::WaveHeart>,
    ppg: &'a Option<heart::WaveHeart>,
    kind: StreamKind,
) -> Option<&'a RrWindow> {
    match kind {
        StreamKind::Rr => rr.as_ref(),
        StreamKind::Ecg => ecg.as_ref().map(|h| &h.rr),
        StreamKind::Ppg => ppg.as_ref().map(|h| &h.rr),
        _ => None,
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
mod tests;
