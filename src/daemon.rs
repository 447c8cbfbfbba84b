//! The daemon: wires a source, the pure pipeline and the socket server together, and owns
//! startup and graceful shutdown (edge).
//!
//! Shutdown (STYLE.md §12): the source ends (end of recording) or `stop` is cancelled
//! (SIGINT/SIGTERM); the pipeline emits its last messages and drops the bus sender; subscribed
//! clients drain what is queued for them and are closed, with a [`DRAIN`] timeout so a stalled
//! client cannot delay exit; the socket file is removed; the data-directory lock is released.

use crate::consent::{ConsentSnapshot, Purpose};
use crate::model::{ParticipantId, StreamState};
use crate::pipeline::{Output, Pipeline, PipelineConfig};
use crate::publish::messages::{self, Topic};
use crate::publish::server::{Server, ServerConfig, ServerError};
use crate::publish::{Bus, BusMessage, StateBoard, bus};
use crate::recording::Record;
use crate::sources::replay::{self, FileError};
use crate::store::ledger::{LedgerError, LedgerStore};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// How long subscribers get to drain their queues at shutdown.
pub const DRAIN: Duration = Duration::from_secs(2);

/// Replay pacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// `x` times real time (1.0 = real time).
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Self::Max);
        }
        match s.parse::<f64>() {
            Ok(x) if (0.01..=1e6).contains(&x) => Ok(Self::Factor(x)),
            _ => Err(format!(
                "speed must be a multiple of real time between 0.01 and 1000000, or \"max\", not {s:?}"
            )),
        }
    }
}

/// What `replay` runs.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The recording.
    pub file: PathBuf,
    /// Pacing.
    pub speed: Speed,
    /// Publish under this participant id instead of the recording's.
    pub participant: Option<ParticipantId>,
    /// Socket server settings.
    pub server: ServerConfig,
    /// Data directory (locked while the daemon runs).
    pub data_dir: PathBuf,
    /// Hold the replay until this many clients have subscribed.
    pub wait_subscribers: usize,
    /// Per-subscriber queue bound, messages.
    pub queue: usize,
    /// Pipeline settings.
    pub pipeline: PipelineConfig,
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplaySummary {
    /// Records read.
    pub records: u64,
    /// Chunks that passed the gate.
    pub chunks_passed: u64,
    /// Chunks dropped for lack of consent.
    pub chunks_dropped: u64,
    /// Messages published, per topic name.
    pub published: BTreeMap<&'static str, u64>,
    /// Last stream time, s.
    pub end_t: f64,
    /// True if stopped by a signal before the end of the recording.
    pub interrupted: bool,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The recording is unreadable or malformed.
    #[error(transparent)]
    Recording(#[from] FileError),
    /// The socket could not be set up.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The data directory could not be created or locked.
    #[error("data directory {path}: {message}")]
    DataDir {
        /// Directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The consent ledger could not be opened.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A bug or a failed task; one line.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Holds the data-directory lock for the daemon's lifetime (sled is single-process; so is attune).
struct DataDirLock {
    _file: File,
}

fn lock_data_dir(dir: &Path) -> Result<DataDirLock, DaemonError> {
    let err = |message: String| DaemonError::DataDir {
        path: dir.to_owned(),
        message,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    let path = dir.join("attune.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| err(format!("cannot open lock file: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(DataDirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(err("in use by another attune daemon".into()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(err(format!("cannot lock: {e}"))),
    }
}

/// Publishes pipeline outputs onto the bus and counts them.
struct Publisher {
    bus: Bus,
    board: StateBoard,
    published: BTreeMap<&'static str, u64>,
}

impl Publisher {
    fn publish(&mut self, pipeline: &Pipeline, outs: &mut Vec<Output>) {
        for o in outs.drain(..) {
            let mut needs = Vec::new();
            let (participant, topic, line) = match &o {
                Output::Features(p, f) => {
                    for (v, k) in f.values.iter().zip(f.sources) {
                        if v.is_some() {
                            needs.push((k, Purpose::Process));
                            needs.push((k, Purpose::ShareFeatures));
                        }
                    }
                    (p.clone(), Topic::Features, messages::features(p, f))
                }
                Output::Decision(p, d) => {
                    for t in d.terms.iter().filter(|t| t.z.is_some()) {
                        needs.push((t.source, Purpose::Process));
                        needs.push((t.source, Purpose::Adapt));
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
                        needs.push((t.source, Purpose::ShareFeatures));
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

/// Runs `attune replay`: validates the file, locks the data directory, binds the socket, waits
/// for subscribers, replays, and shuts down. `bound` is told the socket path once it accepts
/// connections.
pub async fn replay(
    plan: ReplayPlan,
    stop: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<PathBuf>>,
) -> Result<ReplaySummary, DaemonError> {
    let (header, n_records) = replay::validate(&plan.file)?;
    let participant = plan
        .participant
        .clone()
        .unwrap_or_else(|| header.participant.clone());
    info!(file = %plan.file.display(), records = n_records, participant = %participant,
          streams = header.streams.len(), "Recording validated.");
    let _lock = lock_data_dir(&plan.data_dir)?;
    // Finish or undo any erasure, rewrite or import a crash interrupted.
    let recovered =
        crate::store::participant::recover(&plan.data_dir).map_err(|e| DaemonError::DataDir {
            path: plan.data_dir.clone(),
            message: e.to_string(),
        })?;
    if !recovered.is_empty() {
        info!(participants = ?recovered, "Recovered interrupted store operations.");
    }
    let store = LedgerStore::open(&plan.data_dir)?;
    let consent = Consent {
        data_dir: plan.data_dir.clone(),
        participant: participant.clone(),
        recorded: header.participant.clone(),
        manifest: header.consent.clone(),
        store: Arc::new(std::sync::Mutex::new(store)),
    };
    let (consent_tx, consent_rx) = watch::channel(Arc::new(consent.snapshot(now_ms())));
    let server = Server::bind(plan.server.clone())?;
    let socket_path = server.path().to_owned();
    let control_path = crate::publish::server::control_socket_path(&socket_path);
    let control = crate::publish::server::bind_private(&control_path)?;
    info!(socket = %socket_path.display(), control = %control_path.display(), "Listening.");
    let consent_tx = Arc::new(consent_tx);
    let control_requests = TaskTracker::new();
    let control_task = tokio::spawn(serve_control(
        control,
        plan.server.allowed_uids.clone(),
        consent.clone(),
        consent_tx.clone(),
        control_requests.clone(),
    ));

    let bus = bus(plan.queue);
    let board = StateBoard::default();
    let (subs_tx, mut subs_rx) = watch::channel(0usize);
    let closing = CancellationToken::new();
    let clients = TaskTracker::new();
    let accept_stop = CancellationToken::new();
    let server_task = tokio::spawn(server.run(
        crate::publish::server::Feeds {
            bus: bus.downgrade(),
            board: board.clone(),
            consent: consent_rx.clone(),
            subscribers: subs_tx,
        },
        accept_stop.clone(),
        closing.clone(),
        clients.clone(),
    ));
    if let Some(tx) = bound {
        let _ = tx.send(socket_path.clone());
    }

    let mut summary = ReplaySummary::default();
    let waited = async {
        if plan.wait_subscribers > 0 {
            info!(n = plan.wait_subscribers, "Waiting for subscribers.");
        }
        subs_rx
            .wait_for(|n| *n >= plan.wait_subscribers)
            .await
            .is_ok()
    };
    let go = tokio::select! {
        ok = waited => ok,
        _ = stop.cancelled() => false,
    };

    let mut publisher = Publisher {
        bus,
        board,
        published: BTreeMap::new(),
    };
    let mut result = Ok(());
    if go {
        result = run_replay(
            &plan,
            &consent,
            &consent_tx,
            consent_rx,
            &stop,
            &mut publisher,
            &mut summary,
        )
        .await;
    } else {
        summary.interrupted = true;
    }
    summary.published = std::mem::take(&mut publisher.published);

    // Shutdown: no new clients; close the bus; let subscribers drain; close the rest.
    accept_stop.cancel();
    drop(publisher);
    closing.cancel();
    clients.close();
    if tokio::time::timeout(DRAIN, clients.wait()).await.is_err() {
        warn!("Some subscribers did not drain within {DRAIN:?}; closing them.");
    }
    server_task.abort();
    // No new consent commands; those under way finish (their ledger writes are acknowledged).
    control_task.abort();
    control_requests.close();
    let _ = tokio::time::timeout(DRAIN, control_requests.wait()).await;
    let _ = std::fs::remove_file(&control_path);
    if let Err(e) = std::fs::remove_file(&socket_path) {
        warn!(socket = %socket_path.display(), error = %e, "Could not remove the socket file.");
    }
    result.map(|()| summary)
}

/// The consent in force for a replay: the recording's manifest, minus what the ledger withdrew.
#[derive(Clone)]
struct Consent {
    /// The daemon's data directory.
    data_dir: PathBuf,
    participant: ParticipantId,
    /// The participant the recording names (differs from `participant` with `--participant`).
    recorded: ParticipantId,
    manifest: crate::consent::ConsentManifest,
    store: Arc<std::sync::Mutex<LedgerStore>>,
}

impl Consent {
    fn snapshot(&self, now_ms: i64) -> ConsentSnapshot {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.state().replay_snapshot(
            &self.participant,
            std::slice::from_ref(&self.recorded),
            &self.manifest,
            now_ms,
        )
    }

    fn next_expiry(&self, now_ms: i64) -> Option<i64> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.state().next_expiry_after(now_ms)
    }
}

/// Wall-clock now, unix ms (consent times and expiries are wall-clock by nature).
fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The control socket: one consent request per connection, answered once it is durable and
/// the new snapshot is published (the pipeline applies it before its next record, and
/// subscriber egress re-checks it at once).
async fn serve_control(
    listener: tokio::net::UnixListener,
    allowed_uids: Vec<u32>,
    consent: Consent,
    consent_tx: Arc<watch::Sender<Arc<ConsentSnapshot>>>,
    requests: TaskTracker,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if !stream
            .peer_cred()
            .is_ok_and(|c| allowed_uids.contains(&c.uid()))
        {
            warn!("Control client uid not allowed; connection closed.");
            continue;
        }
        let consent = consent.clone();
        let consent_tx = consent_tx.clone();
        requests.spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(r.take(64 * 1024));
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let parsed = serde_json::from_str::<crate::consent::control::ControlLine>(&line);
            let same_dir = |d: &Path| {
                std::fs::canonicalize(d).ok() == std::fs::canonicalize(&consent.data_dir).ok()
            };
            let resp = match parsed {
                Err(e) => crate::consent::control::Response::Error {
                    message: format!("bad consent request: {e}"),
                },
                Ok(cl) if !same_dir(&cl.data_dir) => crate::consent::control::Response::Error {
                    message: format!(
                        "the daemon on this socket uses data directory {}, not {}; pass --data-dir {} or the other daemon's --socket",
                        consent.data_dir.display(),
                        cl.data_dir.display(),
                        consent.data_dir.display()
                    ),
                },
                Ok(crate::consent::control::ControlLine { request: req, .. }) => {
                    let c = consent.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        let now = now_ms();
                        let mut store = c.store.lock().unwrap_or_else(|e| e.into_inner());
                        store.execute(req, now, &[c.participant.clone(), c.recorded.clone()])
                    })
                    .await;
                    match done {
                        Ok(resp) => {
                            consent_tx.send_replace(Arc::new(consent.snapshot(now_ms())));
                            resp
                        }
                        Err(e) => crate::consent::control::Response::Error {
                            message: format!("the consent command failed: {e}"),
                        },
                    }
                }
            };
            let text = serde_json::to_string(&resp).unwrap_or_default();
            let _ = w.write_all(format!("{text}\n").as_bytes()).await;
        });
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
        consent_tx.send_replace(Arc::new(consent.snapshot(now_ms())));
        *next_expiry = consent.next_expiry(now_ms());
    }
    if consent_rx.has_changed().unwrap_or(false) {
        let snap = (**consent_rx.borrow_and_update()).clone();
        pipeline.set_consent(snap);
        *next_expiry = consent.next_expiry(now_ms());
    }
}

async fn run_replay(
    plan: &ReplayPlan,
    consent: &Consent,
    consent_tx: &watch::Sender<Arc<ConsentSnapshot>>,
    mut consent_rx: watch::Receiver<Arc<ConsentSnapshot>>,
    stop: &CancellationToken,
    publisher: &mut Publisher,
    summary: &mut ReplaySummary,
) -> Result<(), DaemonError> {
    let (tx, mut rx) = mpsc::channel::<Record>(1024);
    let reader = replay::spawn_reader(plan.file.clone(), plan.participant.clone(), tx);
    let first = (**consent_rx.borrow_and_update()).clone();
    let mut pipeline = Pipeline::new(plan.pipeline.clone(), first);
    let mut next_expiry = consent.next_expiry(now_ms());
    let mut outs = Vec::new();
    let start = Instant::now();
    let mut last_t = 0.0;
    loop {
        let rec = tokio::select! {
            biased;
            _ = stop.cancelled() => { summary.interrupted = true; break; }
            r = rx.recv() => match r { Some(r) => r, None => break },
        };
        let host_t = rec.host_t();
        // Every tick up to this record's arrival, in bounded batches: in real time each tick
        // waits for its moment (decisions keep coming while a stream is silent); at max speed
        // a long silence is caught up without holding everything in memory or ignoring `stop`.
        while let Some(tick_t) = pipeline.next_tick_time().filter(|t| *t <= host_t) {
            // ... and from the next tick, so a silence in the data does not delay them.
            refresh_consent(
                consent,
                consent_tx,
                &mut consent_rx,
                &mut pipeline,
                &mut next_expiry,
            );
            if let Speed::Factor(x) = plan.speed {
                let due = start + Duration::from_secs_f64((tick_t / x).max(0.0));
                tokio::select! {
                    _ = stop.cancelled() => { summary.interrupted = true; break; }
                    _ = tokio::time::sleep_until(due) => {}
                }
                pipeline.advance(tick_t, &mut outs);
            } else {
                pipeline.advance_bounded(host_t, &mut outs, 1024);
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
        if let Speed::Factor(x) = plan.speed {
            let due = start + Duration::from_secs_f64((host_t / x).max(0.0));
            tokio::select! {
                _ = stop.cancelled() => { summary.interrupted = true; break; }
                _ = tokio::time::sleep_until(due) => {}
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
