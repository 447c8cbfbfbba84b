//! The replay loop (records and ticks into the pipeline) and publishing its outputs (edge).

use super::control::{Consent, now_ms};
use super::{DaemonError, ReplayPlan, ReplaySummary, Speed};
use crate::consent::{ConsentSnapshot, Purpose};
use crate::model::StreamState;
use crate::pipeline::{Output, Pipeline};
use crate::publish::messages::{self, Topic};
use crate::publish::{Bus, BusMessage, Need, StateBoard};
use crate::recording::Record;
use crate::sources::replay;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Publishes pipeline outputs onto the bus and counts them.
pub(super) struct Publisher {
    pub(super) bus: Bus,
    pub(super) board: StateBoard,
    pub(super) published: BTreeMap<&'static str, u64>,
}

impl Publisher {
    fn publish(&mut self, pipeline: &Pipeline, outs: &mut Vec<Output>) {
        for o in outs.drain(..) {
            let mut needs = Vec::new();
            let (participant, topic, line) = match &o {
                Output::Features(p, f) => {
                    for (v, k) in f.values.iter().zip(f.sources) {
                        if v.is_some() {
                            needs.push(Need::Stream(k, Purpose::Process));
                            needs.push(Need::Stream(k, Purpose::ShareFeatures));
                        }
                    }
                    (p.clone(), Topic::Features, messages::features(p, f))
                }
                Output::Decision(p, d) => {
                    // Every adaptation line is a decision about this participant: it needs
                    // `adapt` (and `process`) for some stream whatever it carries, so a
                    // warm-up or no-data line stops with the rest once `adapt` is withdrawn.
                    needs.push(Need::Any(Purpose::Process));
                    needs.push(Need::Any(Purpose::Adapt));
                    for t in &d.terms {
                        if t.z.is_some() || t.value.is_some() {
                            needs.push(Need::Stream(t.source, Purpose::Process));
                        }
                        if t.z.is_some() {
                            needs.push(Need::Stream(t.source, Purpose::Adapt));
                        }
                    }
                    let quality: BTreeMap<&'static str, &'static str> = pipeline
                        .stream_states(p)
                        .map(|(k, s)| (k.name(), s.name()))
                        .collect();
                    let snap = pipeline.gate().snapshot();
                    let shared = |k| {
                        snap.allows(p, k, Purpose::Process)
                            && snap.allows(p, k, Purpose::ShareFeatures)
                    };
                    for t in d
                        .terms
                        .iter()
                        .filter(|t| t.value.is_some() && shared(t.source))
                    {
                        needs.push(Need::Stream(t.source, Purpose::ShareFeatures));
                    }
                    let line = messages::adaptation(
                        p,
                        d,
                        pipeline.policy_config(),
                        pipeline.baseline(p),
                        &quality,
                        shared,
                    );
                    (p.clone(), Topic::Adaptation, line)
                }
                Output::State(s) => {
                    if s.state != StreamState::Streaming {
                        info!(participant = %s.participant, stream = %s.kind, state = s.state.name(), t = s.since, "Stream state changed.");
                    }
                    let line = messages::state(s);
                    self.board
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert((s.participant.clone(), s.kind.name()), line.clone());
                    (s.participant.clone(), Topic::State, line)
                }
                Output::Warning(w) => {
                    warn!("{w}");
                    continue;
                }
            };
            let name = match topic {
                Topic::Adaptation => "adaptation",
                Topic::State => "state",
                Topic::Features => "features",
            };
            *self.published.entry(name).or_default() += 1;
            // No receiver is not an error: nobody is subscribed.
            let _ = self.bus.send(Arc::new(BusMessage {
                participant,
                topic,
                line,
                needs,
            }));
        }
    }
}

/// Applies a changed consent (a command, or a grant that expired) to the pipeline.
fn refresh_consent(
    consent: &Consent,
    consent_tx: &watch::Sender<Arc<ConsentSnapshot>>,
    consent_rx: &mut watch::Receiver<Arc<ConsentSnapshot>>,
    pipeline: &mut Pipeline,
    next_expiry: &mut Option<i64>,
) {
    if next_expiry.is_some_and(|x| now_ms() >= x) {
        super::control::publish_snapshot(consent_tx, consent.snapshot(now_ms()));
        *next_expiry = consent.next_expiry(now_ms());
    }
    if consent_rx.has_changed().unwrap_or(false) {
        let snap = (**consent_rx.borrow_and_update()).clone();
        pipeline.set_consent(snap);
        *next_expiry = consent.next_expiry(now_ms());
    }
}

/// The longest silence (no record at all) that replay ticks through, stream s. Beyond it the
/// rest of the silence is a gap: every stream is marked `stale` and reset as at a gap record,
/// one warning names the jump, ticks resume at the next record, and real-time pacing skips the
/// silence too. 120 s covers the longest feature window (60 s) twice, so everything a
/// silence does to the features and decisions has happened before the jump.
pub const MAX_SILENCE_S: f64 = 120.0;

// The replay loop's inputs are separate on purpose (the recording is moved in, the rest is
// borrowed from the daemon's startup); the engine boundary will bundle them.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_replay(
    opened: replay::Opened,
    plan: &ReplayPlan,
    consent: &Consent,
    consent_tx: &watch::Sender<Arc<ConsentSnapshot>>,
    mut consent_rx: watch::Receiver<Arc<ConsentSnapshot>>,
    stop: &CancellationToken,
    publisher: &mut Publisher,
    summary: &mut ReplaySummary,
) -> Result<(), DaemonError> {
    let (tx, mut rx) = mpsc::channel::<Record>(1024);
    let reader = replay::spawn_reader(opened, plan.participant.clone(), tx);
    let first = (**consent_rx.borrow_and_update()).clone();
    let mut pipeline = Pipeline::new(plan.pipeline.clone(), first);
    let mut next_expiry = consent.next_expiry(now_ms());
    let mut outs = Vec::new();
    let start = Instant::now();
    // Stream time cut out of the pacing by jumps (below), s.
    let mut skipped_s = 0.0;
    let due = |t: f64, skipped: f64, x: f64| {
        start + Duration::from_secs_f64(((t - skipped) / x).max(0.0))
    };
    let mut last_t = 0.0;
    loop {
        let rec = tokio::select! {
            biased;
            _ = stop.cancelled() => { summary.interrupted = true; break; }
            r = rx.recv() => match r { Some(r) => r, None => break },
        };
        let host_t = rec.host_t();
        // A silence longer than MAX_SILENCE_S is a jump: tick through its first
        // MAX_SILENCE_S as usual (streams go stale, windows empty, decisions fall back to
        // hold), then treat the rest as a gap instead of millions of empty ticks.
        let jump = host_t - last_t > MAX_SILENCE_S;
        let tick_until = if jump { last_t + MAX_SILENCE_S } else { host_t };
        // Every tick up to this record's arrival, in bounded batches: in real time each tick
        // waits for its moment (decisions keep coming while a stream is silent); at max speed
        // a long silence is caught up without holding everything in memory or ignoring `stop`.
        while let Some(tick_t) = pipeline.next_tick_time().filter(|t| *t <= tick_until) {
            // ... and from the next tick, so a silence in the data does not delay them.
            refresh_consent(
                consent,
                consent_tx,
                &mut consent_rx,
                &mut pipeline,
                &mut next_expiry,
            );
            if let Speed::Factor(x) = plan.speed {
                tokio::select! {
                    _ = stop.cancelled() => { summary.interrupted = true; break; }
                    _ = tokio::time::sleep_until(due(tick_t, skipped_s, x)) => {}
                }
                pipeline.advance(tick_t, &mut outs);
            } else {
                pipeline.advance_bounded(tick_until, &mut outs, 1024);
                tokio::task::yield_now().await;
                if stop.is_cancelled() {
                    summary.interrupted = true;
                    break;
                }
            }
            publisher.publish(&pipeline, &mut outs);
        }
        if summary.interrupted {
            break;
        }
        if jump {
            pipeline.jump(tick_until, host_t, &mut outs);
            publisher.publish(&pipeline, &mut outs);
            summary.jumps += 1;
            skipped_s += host_t - tick_until;
        }
        if let Speed::Factor(x) = plan.speed {
            tokio::select! {
                _ = stop.cancelled() => { summary.interrupted = true; break; }
                _ = tokio::time::sleep_until(due(host_t, skipped_s, x)) => {}
            }
        }
        summary.records += 1;
        // Consent changes take effect from the next record: a revocation, or a grant expiring.
        refresh_consent(
            consent,
            consent_tx,
            &mut consent_rx,
            &mut pipeline,
            &mut next_expiry,
        );
        pipeline.advance(host_t, &mut outs);
        match &rec {
            Record::Chunk(c) => pipeline.on_chunk(c, &mut outs),
            Record::Gap(g) => pipeline.on_gap(g, &mut outs),
            Record::Marker(m) => debug!(label = %m.label, t = m.t, "Marker."),
            Record::State(_) => {}
        }
        publisher.publish(&pipeline, &mut outs);
        last_t = host_t;
        if summary.records.is_multiple_of(256) {
            // At max speed, let subscriber tasks run between bursts.
            tokio::task::yield_now().await;
        }
    }
    drop(rx);
    pipeline.finish(last_t, &mut outs);
    publisher.publish(&pipeline, &mut outs);
    summary.end_t = last_t;
    for (_, c) in pipeline.gate().all_counts() {
        summary.chunks_passed += c.passed;
        summary.chunks_dropped += c.dropped_no_consent;
    }
    match reader.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(DaemonError::Internal(format!(
            "the recording reader failed: {e}"
        ))),
    }
}
