//! Starting a session's sources and collecting how they ended (edge).
//!
//! Every source runs as its own task and pushes into the one input channel. A source that fails
//! is reported in one line naming it, its streams turn `lost`, and the other sources keep
//! running (a replay's error is also the session's result: `attune replay` exits non-zero).

use super::{DaemonError, SourcePlan, Speed, Summary, Timeline};
use crate::engine::input::{Input, SourceState, SourceStatus};
use crate::model::ParticipantId;
use crate::sources::SessionClock;
use crate::sources::replay_run::{self, Pace, ReplayStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

/// What a source task returns.
enum Ended {
    Replay(Result<ReplayStats, crate::sources::replay::FileError>),
    Simulate(String, Result<(), String>),
    Synthetic(crate::sources::synthetic::SynthStats),
    Serial(crate::sources::serial::SerialStats),
    Ble(crate::sources::ble::BleStats),
}

/// The running sources.
pub(super) struct Started {
    tasks: Vec<JoinHandle<Ended>>,
    tracker: TaskTracker,
    /// Cancelled once every source task has ended.
    pub(super) done: CancellationToken,
    /// Stops the sources of one participant.
    per_participant: std::collections::BTreeMap<ParticipantId, CancellationToken>,
    timeline: Timeline,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
    consent: tokio::sync::watch::Receiver<std::sync::Arc<crate::consent::ConsentSnapshot>>,
}

/// The participants a source feeds.
pub(super) fn participants_of(src: &SourcePlan) -> Vec<ParticipantId> {
    match src {
        SourcePlan::Simulate(spec) => vec![spec.participant.clone()],
        SourcePlan::Serial(spec) => vec![spec.participant.clone()],
        SourcePlan::Ble(spec) => vec![spec.participant.clone()],
        SourcePlan::Synthetic(spec) => spec.participants.clone(),
        SourcePlan::Replay { files, rename } => files
            .iter()
            .map(|f| replay_run::participant_of(f, rename.as_ref()))
            .collect(),
    }
}

/// Starts every source.
pub(super) fn start(
    sources: Vec<SourcePlan>,
    timeline: Timeline,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: &CancellationToken,
    consent: tokio::sync::watch::Receiver<std::sync::Arc<crate::consent::ConsentSnapshot>>,
) -> Started {
    let tracker = TaskTracker::new();
    let done = CancellationToken::new();
    let mut started = Started {
        tasks: Vec::new(),
        tracker: tracker.clone(),
        done: done.clone(),
        per_participant: std::collections::BTreeMap::new(),
        timeline,
        clock,
        tx,
        stop: stop.clone(),
        consent,
    };
    started.add(sources);
    tracker.close();
    let (t, d) = (tracker, done);
    tokio::spawn(async move {
        t.wait().await;
        d.cancel();
    });
    started
}

impl Started {
    /// Starts more sources (a reloaded configuration's).
    pub(super) fn add(&mut self, sources: Vec<SourcePlan>) {
        let (timeline, clock, tracker) = (self.timeline, self.clock, self.tracker.clone());
        for src in sources {
            let ids = participants_of(&src);
            let stop = match ids.as_slice() {
                [one] => self
                    .per_participant
                    .entry(one.clone())
                    .or_insert_with(|| self.stop.child_token())
                    .child_token(),
                _ => self.stop.child_token(),
            };
            let tx = self.tx.clone();
            let consent = self.consent.clone();
            self.tasks
                .push(spawn(src, timeline, clock, tx, stop, &tracker, consent));
        }
    }

    /// Stops the sources of `p` (a participant a reloaded configuration removed); its streams
    /// end.
    pub(super) async fn remove(&mut self, p: &ParticipantId) {
        if let Some(t) = self.per_participant.remove(p) {
            t.cancel();
        }
        for kind in crate::model::ALL_KINDS {
            let _ = self
                .tx
                .send(Input::Source(SourceState {
                    participant: p.clone(),
                    kind,
                    status: SourceStatus::Ended,
                    host_t: self.clock.now(),
                    detail: Some("removed from the configuration".into()),
                }))
                .await;
        }
    }
}

fn spawn(
    src: SourcePlan,
    timeline: Timeline,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
    tracker: &TaskTracker,
    consent: tokio::sync::watch::Receiver<std::sync::Arc<crate::consent::ConsentSnapshot>>,
) -> JoinHandle<Ended> {
    {
        match src {
            SourcePlan::Replay { files, rename } => {
                let pace = match timeline {
                    Timeline::Replay(Speed::Max) => Pace::Driven(None),
                    Timeline::Replay(Speed::Factor(x)) => Pace::Driven(Some(x)),
                    Timeline::Live { .. } => Pace::Wall,
                };
                tracker.spawn(async move {
                    Ended::Replay(replay_run::run(files, rename, pace, clock, tx, stop).await)
                })
            }
            SourcePlan::Synthetic(spec) => {
                use crate::sources::synthetic;
                let pace = match timeline {
                    Timeline::Live { .. } => synthetic::Pace::Wall,
                    Timeline::Replay(_) => synthetic::Pace::Unpaced,
                };
                tracker.spawn(async move {
                    Ended::Synthetic(synthetic::run(spec, pace, clock, tx, stop).await)
                })
            }
            SourcePlan::Serial(spec) => tracker.spawn(async move {
                Ended::Serial(
                    crate::sources::serial::run(spec, clock, tx, stop, Some(consent)).await,
                )
            }),
            SourcePlan::Ble(spec) => tracker.spawn(async move {
                Ended::Ble(crate::sources::ble::run(spec, clock, tx, stop).await)
            }),
            SourcePlan::Simulate(spec) => {
                let name = format!("{}/simulate", spec.participant);
                let p = spec.participant.clone();
                let kinds: Vec<crate::model::StreamKind> = [
                    spec.rr.map(|_| crate::model::StreamKind::Rr),
                    spec.eda.map(|_| crate::model::StreamKind::Eda),
                ]
                .into_iter()
                .flatten()
                .collect();
                tracker.spawn(async move {
                    let r = crate::sources::simulate::run(spec, clock, tx.clone(), stop)
                        .await
                        .map_err(|e| e.to_string());
                    if let Err(e) = &r {
                        lost(&tx, &p, &kinds, clock.now(), e).await;
                    }
                    Ended::Simulate(name, r)
                })
            }
        }
    }
}

/// Tells the engine that a source's streams are lost.
async fn lost(
    tx: &mpsc::Sender<Input>,
    p: &ParticipantId,
    kinds: &[crate::model::StreamKind],
    at: f64,
    why: &str,
) {
    for &kind in kinds {
        let _ = tx
            .send(Input::Source(SourceState {
                participant: p.clone(),
                kind,
                status: SourceStatus::Lost,
                host_t: at,
                detail: Some(why.to_owned()),
            }))
            .await;
    }
}

impl Started {
    /// Waits for every source (they were told to stop) and folds their results into `summary`.
    pub(super) async fn finish(self, summary: &mut Summary) -> Result<(), DaemonError> {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.tracker.wait()).await;
        let mut result = Ok(());
        for task in self.tasks {
            if !task.is_finished() {
                task.abort();
                continue;
            }
            match task.await {
                Ok(Ended::Replay(Ok(stats))) => {
                    summary.records += stats.records;
                    summary.jumps += stats.jumps;
                    summary.interrupted |= stats.interrupted;
                }
                Ok(Ended::Replay(Err(e))) => {
                    if result.is_ok() {
                        result = Err(DaemonError::Recording(e));
                    }
                }
                Ok(Ended::Simulate(_, Ok(()))) => {}
                Ok(Ended::Serial(stats)) => {
                    summary.samples += stats.frames;
                }
                Ok(Ended::Ble(stats)) => {
                    summary.samples += stats.counters.beats + stats.counters.notifications;
                }
                Ok(Ended::Synthetic(stats)) => {
                    summary.records += stats.chunks;
                    summary.samples += stats.samples;
                    summary.interrupted |= stats.interrupted;
                }
                Ok(Ended::Simulate(name, Err(e))) => {
                    error!(source = %name, error = %e, "Source failed.");
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    if result.is_ok() {
                        result = Err(DaemonError::Internal(format!("a source task failed: {e}")));
                    }
                }
            }
        }
        result
    }
}
