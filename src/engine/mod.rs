//! The pure engine (DESIGN.md, "The engine boundary"): sources push [`Input`]s, the engine turns
//! them into [`Event`]s for publishers. No tokio, no clock reads, no I/O: session time arrives in
//! the inputs, so replaying what a live session received gives the same events.
//!
//! - [`input`]: chunks, gaps, source states, markers, consent snapshots, time.
//! - [`event`]: features, adaptation, state, samples, gaps, markers, drops; each with its needs.
//! - [`clock`]: per-stream device-to-session time mapping (offset, skew, delivery latency).
//!
//! # Time
//!
//! The engine keeps one session time, `now`: the latest time an input carried. It never goes
//! back: an input stamped before `now` (it waited in the channel while a tick was processed) is
//! taken as arriving at `now`, and that is the time its samples are recorded with, so a replay of
//! the recording sees the same order. Ticks (4 Hz, [`crate::pipeline::TICKS_PER_S`]) are emitted
//! only by time moving forward: an [`Input::Advance`] from the daemon's tick timer (live) or from
//! the replay source, or any input carrying a later time, emits every tick at or before it
//! *before* the input is applied. Ticks therefore never wait for data: a silent stream still gets
//! them (stale states, `hold` with its reason).
//!
//! Each stream's device times are mapped onto the session clock by a [`clock::StreamClock`]
//! before its samples reach the features: a device clock offset, a steady transport latency and
//! delivery in batches are absorbed (and reported in `state` messages) instead of making the
//! stream look stale. The samples handed to publishers ([`EventBody::Samples`], for the
//! recorder) keep their device times and the arrival time untouched.
//!
//! # Consent
//!
//! The pipeline's gate drops chunks without `process` consent first. Every event is emitted only
//! if [`crate::consent::needs()`] is met by the consent in force; egress checks the same needs
//! again when it writes.

pub mod clock;
pub mod event;
pub mod input;

use crate::consent::{ConsentSnapshot, Purpose, all_met};
use crate::features::FEATURE_SOURCES;
use crate::model::{Chunk, ParticipantId, StreamKind, StreamState};
use crate::pipeline::{Output, Pipeline, PipelineConfig, StateChange};
use clock::{ClockConfig, StreamClock};
use event::{Adaptation, ClockReport, DropReason, Event, EventBody, State};
use input::{Input, SourceStatus, StreamInfo};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Engine settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineConfig {
    /// Features, baseline, policy.
    pub pipeline: PipelineConfig,
    /// Clock mapping.
    pub clock: ClockConfig,
}

/// How often a stream that keeps dropping is reported again, session s.
const DROP_REPORT_EVERY_S: f64 = 10.0;
/// A clock estimate is published again (in a `state` message) when its offset moved this much, s.
const CLOCK_REPORT_OFFSET_S: f64 = 0.05;
/// ... or its latency moved this much, s (and by a fifth of itself).
const CLOCK_REPORT_LATENCY_S: f64 = 0.1;
/// A device time this far before the stream's last one is a device reset, not a late chunk, s.
const DEVICE_RESET_S: f64 = 30.0;

#[derive(Debug)]
struct Stream {
    info: Option<Arc<StreamInfo>>,
    clock: StreamClock,
    /// Last device time accepted.
    last_device_t: f64,
    /// Clock estimate last published.
    reported: Option<ClockReport>,
    /// `since` of the state last published (a clock re-announcement keeps it).
    since: f64,
    /// Added to the source's chunk numbers, and the number the next chunk should carry: a
    /// source restarted by a reloaded configuration counts from 0 again, and the stream (and
    /// its recording) continues the numbering instead.
    seq_shift: u64,
    next_seq: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct DropCount {
    count: u64,
    reported_at: Option<f64>,
}

/// The engine.
pub struct Engine {
    cfg: EngineConfig,
    pipeline: Pipeline,
    streams: BTreeMap<(ParticipantId, StreamKind), Stream>,
    drops: BTreeMap<(ParticipantId, StreamKind, DropReason), DropCount>,
    now: Option<f64>,
    outs: Vec<Output>,
}

/// What `attune status` shows of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStatus {
    /// Whose stream.
    pub participant: ParticipantId,
    /// Which stream.
    pub kind: StreamKind,
    /// Its published state, if any yet.
    pub state: Option<StreamState>,
    /// Its clock mapping, once estimated.
    pub clock: Option<ClockReport>,
    /// Its device, if declared.
    pub device: Option<String>,
}

impl Engine {
    /// An engine reading consent from `snapshot`.
    pub fn new(cfg: EngineConfig, snapshot: ConsentSnapshot) -> Self {
        Self {
            pipeline: Pipeline::new(cfg.pipeline.clone(), snapshot),
            cfg,
            streams: BTreeMap::new(),
            drops: BTreeMap::new(),
            now: None,
            outs: Vec::new(),
        }
    }

    /// The latest session time seen, s.
    pub fn now(&self) -> Option<f64> {
        self.now
    }

    /// Session time of the next tick, once time has started.
    pub fn next_tick_time(&self) -> Option<f64> {
        self.pipeline.next_tick_time()
    }

    /// The consent in force.
    pub fn consent(&self) -> &ConsentSnapshot {
        self.pipeline.gate().snapshot()
    }

    /// The pipeline (gate counters, baselines).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The pipeline, to take finished calibrations and note stored profiles.
    pub fn pipeline_mut(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    /// Gives `p` a stored profile's reference and feedback shift
    /// ([`Pipeline::set_personal`]); the edge loads it (under `profile` consent) and calls
    /// this when `p` joins, before their data.
    pub fn set_personal(
        &mut self,
        p: &ParticipantId,
        reference: crate::baseline::score::Reference,
        feedback_shift_z: f64,
    ) {
        self.pipeline.set_personal(p, reference, feedback_shift_z);
    }

    /// Drop counts by participant, stream and reason.
    pub fn drops(&self) -> impl Iterator<Item = (&ParticipantId, StreamKind, DropReason, u64)> {
        self.drops.iter().map(|((p, k, r), c)| (p, *k, *r, c.count))
    }

    /// Every known stream with its state and clock.
    pub fn stream_status(&self) -> Vec<StreamStatus> {
        let mut out: BTreeMap<(ParticipantId, StreamKind), StreamStatus> = BTreeMap::new();
        for ((p, k), s) in &self.streams {
            out.insert(
                (p.clone(), *k),
                StreamStatus {
                    participant: p.clone(),
                    kind: *k,
                    state: None,
                    clock: s.clock.report(),
                    device: s.info.as_ref().map(|i| i.device.name.clone()),
                },
            );
        }
        let ids: Vec<ParticipantId> = self.pipeline.participants().cloned().collect();
        for p in ids {
            for (k, st) in self.pipeline.stream_states(&p) {
                out.entry((p.clone(), k))
                    .or_insert_with(|| StreamStatus {
                        participant: p.clone(),
                        kind: k,
                        state: None,
                        clock: None,
                        device: None,
                    })
                    .state = Some(st);
            }
        }
        out.into_values().collect()
    }

    /// Applies one input, appending what it produced to `out`.
    pub fn step(&mut self, input: Input, out: &mut Vec<Arc<Event>>) {
        if let Some(t) = input.host_t() {
            if !t.is_finite() {
                return;
            }
            self.advance(t, out);
        }
        let now = self.now.unwrap_or(0.0);
        match input {
            Input::Advance(_) => {}
            Input::Join(p) => self.pipeline.join(&p),
            Input::Leave(p) => {
                self.pipeline.leave(&p);
                self.streams.retain(|(q, _), _| *q != p);
                self.drops.retain(|(q, _, _), _| *q != p);
            }
            Input::Stream(info) => {
                let key = (info.participant.clone(), info.kind);
                self.stream(key).info = Some(info.clone());
                self.emit(EventBody::Stream(info), out);
            }
            Input::Chunk(mut c) => {
                c.host_t = now;
                self.chunk(c, out);
            }
            Input::Gap(mut g) => {
                g.host_t = now;
                let key = (g.participant.clone(), g.kind);
                let s = self.stream(key);
                let start = s.clock.to_session(g.start).unwrap_or(now).min(now);
                let mapped = crate::model::Gap {
                    start,
                    end: s.clock.to_session(g.end).unwrap_or(now),
                    ..g.clone()
                };
                self.pipeline.on_gap(&mapped, &mut self.outs);
                self.emit(EventBody::Gap(g), out);
            }
            Input::Source(s) => {
                let state = match s.status {
                    SourceStatus::Connecting => StreamState::Connecting,
                    SourceStatus::Streaming => {
                        self.flush(out);
                        return;
                    }
                    SourceStatus::Reconnecting => StreamState::Reconnecting,
                    SourceStatus::Lost => StreamState::Lost,
                    SourceStatus::LowQuality => StreamState::LowQuality,
                    SourceStatus::Ended => StreamState::Ended,
                };
                self.pipeline
                    .source_state(&s.participant, s.kind, state, now, &mut self.outs);
                self.flush_with_detail(out, s.detail.as_deref());
            }
            Input::Marker(p, mut m) => {
                m.host_t = now;
                // Exercise targets, feedback, overrides and rest marks steer the policy; the
                // marker itself is published and recorded whether or not it is understood.
                if let Err(e) = self.pipeline.on_marker(&p, &m.label, m.data.as_ref(), now) {
                    self.outs.push(crate::pipeline::Output::Warning(format!(
                        "marker {}: {e}",
                        m.label
                    )));
                    self.flush(out);
                }
                self.emit(EventBody::Marker(p, m), out);
            }
            Input::Consent(snap) => self.pipeline.set_consent((*snap).clone()),
            Input::Skip { from, to } => {
                self.pipeline.jump(from, to, &mut self.outs);
                self.flush(out);
            }
        }
    }

    /// Emits every tick at or before `t` (and moves `now` to it).
    fn advance(&mut self, t: f64, out: &mut Vec<Arc<Event>>) {
        let t = self.now.map_or(t, |n| n.max(t));
        self.now = Some(t);
        self.pipeline.advance(t, &mut self.outs);
        self.flush(out);
    }

    /// The source has no more data: every stream reports `ended`.
    pub fn finish(&mut self, out: &mut Vec<Arc<Event>>) {
        let at = self.now.unwrap_or(0.0);
        self.pipeline.finish(at, &mut self.outs);
        self.flush(out);
    }

    fn stream(&mut self, key: (ParticipantId, StreamKind)) -> &mut Stream {
        let cfg = &self.cfg.clock;
        self.streams.entry(key).or_insert_with(|| Stream {
            info: None,
            clock: StreamClock::new(*cfg),
            last_device_t: f64::NEG_INFINITY,
            reported: None,
            since: 0.0,
            seq_shift: 0,
            next_seq: None,
        })
    }

    fn chunk(&mut self, mut c: Chunk, out: &mut Vec<Arc<Event>>) {
        let now = c.host_t;
        let (first, last) = (c.time_of(0), c.last_time());
        if c.samples.is_empty() || !first.is_finite() || !last.is_finite() {
            self.dropped(&c.participant, c.kind, DropReason::Malformed, out);
            return;
        }
        if !self
            .consent()
            .allows(&c.participant, c.kind, Purpose::Process)
        {
            // The gate drops it and counts it; nothing of it is kept, not even its times.
            self.pipeline.on_chunk(&c, &mut self.outs);
            self.dropped(&c.participant, c.kind, DropReason::NoConsent, out);
            self.flush(out);
            return;
        }
        let key = (c.participant.clone(), c.kind);
        let s = self.stream(key);
        if let Some(next) = s.next_seq
            && c.seq.saturating_add(s.seq_shift) < next
        {
            s.seq_shift = next - c.seq;
        }
        c.seq = c.seq.saturating_add(s.seq_shift);
        if first <= s.last_device_t {
            if s.last_device_t - first < DEVICE_RESET_S {
                self.dropped(&c.participant, c.kind, DropReason::Late, out);
                return;
            }
            // The device clock went back: a reset. A gap, and a fresh mapping.
            let gap = crate::model::Gap {
                participant: c.participant.clone(),
                kind: c.kind,
                start: s.clock.to_session(s.last_device_t).unwrap_or(now),
                end: now,
                host_t: now,
                reason: "device_reset".into(),
            };
            s.clock.reset();
            self.pipeline.on_gap(&gap, &mut self.outs);
        }
        let s = self.stream((c.participant.clone(), c.kind));
        if s.clock.observe(first, last, now) == clock::Observed::Reset {
            // The device clock stepped (forward, or back within the late window): a gap.
            let gap = crate::model::Gap {
                participant: c.participant.clone(),
                kind: c.kind,
                start: now,
                end: now,
                host_t: now,
                reason: "clock_step".into(),
            };
            self.pipeline.on_gap(&gap, &mut self.outs);
        }
        let s = self.stream((c.participant.clone(), c.kind));
        s.last_device_t = last;
        s.next_seq = Some(c.seq.saturating_add(1));
        let Some(timing) = s.clock.map_timing(&c.timing, c.samples.len()) else {
            self.dropped(&c.participant, c.kind, DropReason::Malformed, out);
            return;
        };
        let report = s.clock.report();
        let republish = match (s.reported, report) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => {
                (a.offset_s - b.offset_s).abs() > CLOCK_REPORT_OFFSET_S
                    || (a.latency_s - b.latency_s).abs()
                        > CLOCK_REPORT_LATENCY_S.max(0.2 * a.latency_s)
            }
            _ => false,
        };
        // The pipeline sees session times; the event keeps the device's (no copy of the samples).
        let mut c = c;
        let device_timing = std::mem::replace(&mut c.timing, timing);
        let before = self.outs.len();
        self.pipeline.on_chunk(&c, &mut self.outs);
        c.timing = device_timing;
        let state_published = self.outs[before..]
            .iter()
            .any(|o| matches!(o, Output::State(sc) if sc.kind == c.kind && sc.participant == c.participant));
        if self.outs[before..]
            .iter()
            .any(|o| matches!(o, Output::Warning(_)))
        {
            self.dropped(&c.participant, c.kind, DropReason::Malformed, out);
        }
        if republish && !state_published {
            // The estimate moved: say so in a `state` message (same state, new clock).
            let since = self
                .streams
                .get(&(c.participant.clone(), c.kind))
                .map_or(now, |s| s.since);
            if let Some(state) = self
                .pipeline
                .stream_states(&c.participant)
                .find(|(k, _)| *k == c.kind)
                .map(|(_, s)| s)
            {
                self.outs.push(Output::State(StateChange {
                    participant: c.participant.clone(),
                    kind: c.kind,
                    state,
                    since,
                    reason: None,
                }));
            }
        }
        self.flush(out);
        self.emit(EventBody::Samples(c), out);
    }

    fn dropped(
        &mut self,
        p: &ParticipantId,
        kind: StreamKind,
        reason: DropReason,
        out: &mut Vec<Arc<Event>>,
    ) {
        let now = self.now.unwrap_or(0.0);
        let d = self.drops.entry((p.clone(), kind, reason)).or_default();
        d.count += 1;
        if d.reported_at.is_none_or(|t| now - t >= DROP_REPORT_EVERY_S) {
            d.reported_at = Some(now);
            let count = d.count;
            self.emit(
                EventBody::Dropped {
                    participant: p.clone(),
                    kind,
                    reason,
                    count,
                },
                out,
            );
        }
    }

    fn flush(&mut self, out: &mut Vec<Arc<Event>>) {
        self.flush_with_detail(out, None);
    }

    /// Turns the pipeline's outputs into events.
    fn flush_with_detail(&mut self, out: &mut Vec<Arc<Event>>, detail: Option<&str>) {
        let outs = std::mem::take(&mut self.outs);
        for o in outs {
            let body = match o {
                Output::Features(p, f) => EventBody::Features(p, f),
                Output::Decision(p, d) => {
                    let snap = self.pipeline.gate().snapshot();
                    let shared: [bool; 4] = std::array::from_fn(|i| {
                        let k = d
                            .terms
                            .iter()
                            .find(|t| t.index == i)
                            .map_or(FEATURE_SOURCES[i], |t| t.source);
                        snap.allows(&p, k, Purpose::Process)
                            && snap.allows(&p, k, Purpose::ShareFeatures)
                    });
                    let quality = self
                        .pipeline
                        .stream_states(&p)
                        .map(|(k, s)| (k.name(), s.name()))
                        .collect();
                    EventBody::Adaptation(Box::new(Adaptation {
                        summary: d.summary(),
                        participant: p,
                        decision: d,
                        quality,
                        shared,
                    }))
                }
                Output::State(change) => {
                    let reason = change.reason;
                    let clock = self
                        .streams
                        .get_mut(&(change.participant.clone(), change.kind));
                    let clock = clock.and_then(|s| {
                        s.since = change.since;
                        let r = s.clock.report();
                        if r.is_some() {
                            s.reported = r;
                        }
                        r
                    });
                    EventBody::State(State {
                        at: self.now.unwrap_or(0.0),
                        change,
                        clock,
                        detail: detail.or(reason).map(str::to_owned),
                    })
                }
                Output::Warning(w) => EventBody::Warning(w),
            };
            self.emit(body, out);
        }
    }

    /// Emits `body` if the consent in force meets its needs.
    fn emit(&mut self, body: EventBody, out: &mut Vec<Arc<Event>>) {
        let ev = Event::new(body);
        // A marker carries no sensor data: it is emitted for the daemon's log whatever the
        // consent, and its needs (`record`) are checked where it would be stored.
        // Samples go on when the recorder may keep them (their own needs, `record`) or a
        // transport may share them (`share_raw`): each of those checks its own again.
        let snap = self.pipeline.gate().snapshot();
        let ok = match ev.participant() {
            _ if matches!(ev.body, EventBody::Marker(..)) => true,
            Some(p) => {
                all_met(ev.needs(), snap, p)
                    || matches!(&ev.body, EventBody::Samples(c)
                        if all_met(&crate::consent::raw_share(c.kind), snap, p))
            }
            None => true,
        };
        if ok {
            out.push(ev);
        }
    }
}

#[cfg(test)]
mod tests;
