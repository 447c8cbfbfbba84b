//! The session loop (edge): inputs, the tick timer and consent changes into the engine; its
//! events to every publisher, in order.
//!
//! Priorities (a `biased` select, highest first): stop; a consent change (it takes effect before
//! the next input: "from the next chunk"); a grant expiring; the tick timer (live); an input.
//! The engine never waits for a publisher: publishers only enqueue.

use super::control::{Consent, StatusBoard, now_ms, publish_snapshot};
use super::stalls::Stalls;
use super::{DaemonError, Summary, Timeline};
use crate::consent::ConsentSnapshot;
use crate::engine::Engine;
use crate::engine::event::{Event, EventBody};
use crate::engine::input::Input;
use crate::publish::{Flow, Publisher};
use crate::sources::SessionClock;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// How often `attune status` data is refreshed, real time.
const STATUS_EVERY: Duration = Duration::from_millis(500);

/// What the loop runs on.
pub(super) struct Loop {
    pub(super) engine: Engine,
    pub(super) inputs: mpsc::Receiver<Input>,
    pub(super) timeline: Timeline,
    pub(super) clock: SessionClock,
    pub(super) consent: Consent,
    pub(super) consent_tx: Arc<watch::Sender<Arc<ConsentSnapshot>>>,
    pub(super) consent_rx: watch::Receiver<Arc<ConsentSnapshot>>,
    pub(super) status: StatusBoard,
    /// Cancelled once every source has ended.
    pub(super) sources_done: CancellationToken,
    /// The participants of the session: their ticks start with the session.
    pub(super) participants: Vec<crate::model::ParticipantId>,
}

/// Hands `events` to every attached publisher, and logs warnings and unintended drops.
fn publish(
    events: &mut Vec<Arc<Event>>,
    publishers: &mut [&mut dyn Publisher],
    attached: &mut [bool],
) {
    for ev in events.drain(..) {
        match &ev.body {
            EventBody::Warning(w) => warn!("{w}"),
            EventBody::Dropped {
                participant,
                kind,
                reason,
                count,
            } => {
                if reason.intended() {
                    debug!(%participant, stream = %kind, reason = reason.name(), count, "Chunks dropped.");
                } else {
                    warn!(%participant, stream = %kind, reason = reason.name(), count, "Chunks dropped.");
                }
            }
            EventBody::Marker(p, m) => {
                debug!(participant = %p, label = %m.label, t = m.t, "Marker.");
            }
            EventBody::State(s) if s.change.state != crate::model::StreamState::Streaming => {
                info!(participant = %s.change.participant, stream = %s.change.kind,
                      state = s.change.state.name(), t = s.change.since, "Stream state changed.");
            }
            _ => {}
        }
        for (p, on) in publishers.iter_mut().zip(attached.iter_mut()) {
            if *on && p.publish(&ev) == Flow::Stop {
                warn!(publisher = p.name(), "Publisher detached.");
                *on = false;
            }
        }
    }
}

/// `p` joins: a participant new to the engine first gets their stored profile
/// ([`super::profiles::load`]); a repeated join (a replayed file's opening) changes nothing.
fn join(l: &mut Loop, p: crate::model::ParticipantId, events: &mut Vec<Arc<Event>>) {
    if l.engine.pipeline().baseline(&p).is_none() {
        super::profiles::load(&l.consent, &mut l.engine, &p);
    }
    l.engine.step(Input::Join(p), events);
}

/// Runs the session until the sources end (replay) or `stop` fires.
pub(super) async fn drive(
    mut l: Loop,
    publishers: &mut [&mut dyn Publisher],
    stop: &CancellationToken,
    summary: &mut Summary,
) -> Result<(), DaemonError> {
    let mut attached = vec![true; publishers.len()];
    let mut events = Vec::new();
    let mut next_expiry = l.consent.next_expiry(now_ms());
    let live = matches!(l.timeline, Timeline::Live { .. });
    for p in std::mem::take(&mut l.participants) {
        join(&mut l, p, &mut events);
    }
    if live {
        l.engine.step(Input::Advance(0.0), &mut events);
    }
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inputs_open = true;
    let mut stalls = Stalls::default();
    loop {
        // A requested calibration (`attune calibrate --live`) that completed is stored now.
        for p in l.engine.pipeline_mut().take_requested_calibrations() {
            let outcome = super::profiles::save(&l.consent, &mut l.engine, &p);
            info!(participant = %p, outcome = outcome.as_deref().unwrap_or("nothing to store"),
                  "Requested calibration done.");
        }
        let tick = if live {
            l.engine
                .next_tick_time()
                .map(|t| (t, l.clock.instant_of(t)))
        } else {
            None
        };
        let expiry_at = next_expiry.map(|ms| {
            Instant::now() + Duration::from_millis(u64::try_from(ms - now_ms()).unwrap_or(0))
        });
        tokio::select! {
            biased;
            _ = stop.cancelled() => { summary.interrupted = true; break; }
            changed = l.consent_rx.changed() => {
                if changed.is_ok() {
                    let snap = l.consent_rx.borrow_and_update().clone();
                    l.engine.step(Input::Consent(snap.clone()), &mut events);
                    for (p, on) in publishers.iter_mut().zip(attached.iter_mut()) {
                        if *on && p.consent(&snap) == Flow::Stop {
                            *on = false;
                        }
                    }
                    next_expiry = l.consent.next_expiry(now_ms());
                }
            }
            _ = tokio::time::sleep_until(expiry_at.unwrap_or_else(Instant::now)), if expiry_at.is_some() => {
                publish_snapshot(&l.consent_tx, l.consent.snapshot(now_ms()));
                next_expiry = l.consent.next_expiry(now_ms());
            }
            _ = tokio::time::sleep_until(tick.map_or_else(Instant::now, |(_, at)| at)), if tick.is_some() => {
                let now_t = l.clock.now();
                if let Some((due_t, at)) = tick {
                    stalls.tick(due_t, now_t, Instant::now().saturating_duration_since(at));
                }
                l.engine.step(Input::Advance(now_t), &mut events);
            }
            input = l.inputs.recv(), if inputs_open => match input {
                Some(i) => {
                    if live {
                        summary.records += 1;
                    }
                    match i {
                        Input::Join(p) => join(&mut l, p, &mut events),
                        Input::Leave(p) => {
                            super::profiles::save(&l.consent, &mut l.engine, &p);
                            l.engine.step(Input::Leave(p), &mut events);
                        }
                        i => l.engine.step(i, &mut events),
                    }
                }
                None => inputs_open = false,
            },
            _ = l.sources_done.cancelled(), if !live => {
                // Every source has sent all it will; take what is still queued, then end.
                while let Ok(i) = l.inputs.try_recv() {
                    l.engine.step(i, &mut events);
                    publish(&mut events, publishers, &mut attached);
                }
                break;
            }
            _ = status_tick.tick() => {
                // The status of thousands of streams is not free: refresh it at most 2 % of
                // the time (every 0.5 s, or 50 times as long as it takes to render).
                let began = std::time::Instant::now();
                l.status.update(&l.engine, publishers, l.clock.speed(), live, &stalls);
                let every = STATUS_EVERY.max(began.elapsed() * 50);
                if every != status_tick.period() {
                    status_tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
        }
        publish(&mut events, publishers, &mut attached);
    }
    l.engine.finish(&mut events);
    publish(&mut events, publishers, &mut attached);
    let ids: Vec<crate::model::ParticipantId> =
        l.engine.pipeline().participants().cloned().collect();
    for p in &ids {
        super::profiles::save(&l.consent, &mut l.engine, p);
    }
    l.status
        .update(&l.engine, publishers, l.clock.speed(), live, &stalls);
    summary.end_t = l.engine.now().unwrap_or(0.0);
    for (_, c) in l.engine.pipeline().gate().all_counts() {
        summary.chunks_passed += c.passed;
        summary.chunks_dropped += c.dropped_no_consent;
    }
    Ok(())
}
