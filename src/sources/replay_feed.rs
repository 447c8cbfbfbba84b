//! The pure core of replay: what engine inputs a recording becomes. `attune replay` (its async
//! source in [`super::replay_run`]) and `attune evaluate` (which drives an engine in-process,
//! many people at a time) both go through these functions, so an evaluation sees exactly what
//! a `replay --speed max` of the same recording would.
//!
//! No I/O, no clock, no tokio.

use crate::engine::input::{Input, SourceState, SourceStatus, StreamInfo};
use crate::model::ParticipantId;
use crate::recording::{Header, Record};
use std::sync::Arc;

/// The longest silence (no record at all) that driven replay ticks through, stream s. 120 s
/// covers the longest feature window (60 s) twice, so everything a silence does to the features
/// and decisions has happened before the jump.
pub const MAX_SILENCE_S: f64 = 120.0;

/// The inputs that open a replayed file: the participant joins, then each stream the header
/// declares (streams of unknown kinds are left out).
pub fn opening(header: &Header, participant: &ParticipantId, out: &mut Vec<Input>) {
    out.push(Input::Join(participant.clone()));
    for s in &header.streams {
        let Some(kind) = s.kind() else { continue };
        out.push(Input::Stream(Arc::new(StreamInfo {
            participant: participant.clone(),
            kind,
            rate_hz: s.rate_hz,
            device: s.device.clone(),
        })));
    }
}

/// The source status a recorded `state` record replays as: only what a source reported
/// (`connecting`, `reconnecting`, `lost`); the engine derives every other state from the data
/// again, so feeding those back would count them twice.
pub fn source_status(state: &str) -> Option<SourceStatus> {
    match state {
        "connecting" => Some(SourceStatus::Connecting),
        "reconnecting" => Some(SourceStatus::Reconnecting),
        "lost" => Some(SourceStatus::Lost),
        _ => None,
    }
}

/// The engine input a record replays as; `None` for a state the engine derives itself.
pub fn record_input(rec: Record, participant: &ParticipantId) -> Option<Input> {
    Some(match rec {
        Record::Chunk(c) => Input::Chunk(c),
        Record::Gap(g) => Input::Gap(g),
        Record::Marker(m) => Input::Marker(participant.clone(), m),
        Record::State(s) => Input::Source(SourceState {
            participant: participant.clone(),
            kind: s.kind,
            status: source_status(&s.state)?,
            host_t: s.host_t,
            detail: s.detail,
        }),
    })
}

/// Where driven replay ticks to before a record arriving at `t` when the previous one arrived at
/// `last_t`: up to `t`, or through the first [`MAX_SILENCE_S`] of a longer silence (the rest is
/// skipped).
pub fn tick_until(last_t: f64, t: f64) -> f64 {
    if t - last_t > MAX_SILENCE_S {
        last_t + MAX_SILENCE_S
    } else {
        t
    }
}

/// Replay at `max` speed, one record at a time: each record's arrival time advances the
/// engine (ticking through at most [`MAX_SILENCE_S`] of a silence, skipping the rest), then the
/// record goes in.
#[derive(Debug, Clone, Default)]
pub struct MaxSpeed {
    last_t: f64,
    started: bool,
    jumps: u64,
}

impl MaxSpeed {
    /// A replay at session time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pushes the inputs for `rec` (arriving in order; a record that arrives earlier than the
    /// one before counts at the same time). The first call starts session time at 0.
    pub fn push(&mut self, rec: Record, participant: &ParticipantId, out: &mut Vec<Input>) {
        if !self.started {
            self.started = true;
            out.push(Input::Advance(0.0));
        }
        let t = rec.host_t().max(self.last_t);
        let until = tick_until(self.last_t, t);
        if until > self.last_t {
            out.push(Input::Advance(until));
        }
        if until < t {
            out.push(Input::Skip { from: until, to: t });
            self.jumps += 1;
        }
        if let Some(input) = record_input(rec, participant) {
            out.push(input);
        }
        self.last_t = t;
    }

    /// Session time of the last record, s.
    pub fn end_t(&self) -> f64 {
        self.last_t
    }

    /// Silences skipped so far.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }
}

/// Replays one recording into `engine` at `max` speed, as `attune replay --speed max` does for a
/// single file: the opening inputs, every record through [`MaxSpeed`], then the engine's
/// [`finish`](crate::engine::Engine::finish). Each event goes to `sink` as it comes. Returns
/// the session time of the last record.
pub fn replay_max_speed(
    engine: &mut crate::engine::Engine,
    header: &Header,
    participant: &ParticipantId,
    records: impl IntoIterator<Item = Record>,
    mut sink: impl FnMut(Arc<crate::engine::event::Event>),
) -> f64 {
    let mut inputs = Vec::new();
    let mut events = Vec::new();
    opening(header, participant, &mut inputs);
    let mut feed = MaxSpeed::new();
    for rec in records {
        feed.push(rec, participant, &mut inputs);
        for input in inputs.drain(..) {
            engine.step(input, &mut events);
        }
        events.drain(..).for_each(&mut sink);
    }
    for input in inputs.drain(..) {
        engine.step(input, &mut events);
    }
    engine.finish(&mut events);
    events.drain(..).for_each(&mut sink);
    feed.end_t()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Chunk, StreamKind, Timing};

    fn rr(host_t: f64) -> Record {
        Record::Chunk(Chunk {
            raw: None,
            meta: None,
            participant: ParticipantId::new("p").unwrap_or_else(|_| unreachable!()),
            kind: StreamKind::Rr,
            seq: 0,
            host_t,
            timing: Timing::Events(vec![host_t - 0.01]),
            samples: vec![800.0],
        })
    }

    #[test]
    fn a_long_silence_is_ticked_through_for_its_first_120_s_then_skipped() {
        let p = ParticipantId::new("p").unwrap_or_else(|_| unreachable!());
        let mut feed = MaxSpeed::new();
        let mut out = Vec::new();
        feed.push(rr(1.0), &p, &mut out);
        feed.push(rr(500.0), &p, &mut out);
        let shape: Vec<String> = out
            .iter()
            .map(|i| match i {
                Input::Advance(t) => format!("advance {t}"),
                Input::Skip { from, to } => format!("skip {from}-{to}"),
                Input::Chunk(c) => format!("chunk {}", c.host_t),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "advance 0",
                "advance 1",
                "chunk 1",
                "advance 121",
                "skip 121-500",
                "chunk 500"
            ]
        );
        assert_eq!(feed.jumps(), 1);
        assert_eq!(feed.end_t(), 500.0);
    }

    #[test]
    fn a_record_earlier_than_the_last_counts_at_the_last_time() {
        let p = ParticipantId::new("p").unwrap_or_else(|_| unreachable!());
        let mut feed = MaxSpeed::new();
        let mut out = Vec::new();
        feed.push(rr(5.0), &p, &mut out);
        out.clear();
        feed.push(rr(4.0), &p, &mut out);
        assert!(matches!(out.as_slice(), [Input::Chunk(_)]), "{out:?}");
        assert_eq!(feed.end_t(), 5.0);
    }
}
