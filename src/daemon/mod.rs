//! The daemon: sources → one bounded input channel → the pure engine → publishers, with the
//! consent ledger and the control socket beside it; owns startup and graceful shutdown (edge).
//!
//! - `control`: the consent in force for the session and the control socket (consent commands,
//!   `status`, `mark`).
//! - `drive`: the loop that feeds the engine (inputs, the tick timer, consent changes) and hands
//!   its events to every publisher.
//! - `sources`: starting the configured sources and watching them.
//!
//! One session runs per daemon. `attune run` drives it from live sources on the session clock
//! (real time, or faster for simulated ones); `attune replay` from recordings that drive session
//! time themselves, so a replay is deterministic at any speed.
//!
//! Shutdown (STYLE.md §12): the sources end (end of the recordings) or `stop` is cancelled
//! (SIGINT/SIGTERM); the engine emits its last messages; publishers flush (the recorder closes
//! its files); subscribed clients drain what is queued for them and are closed, with a [`DRAIN`]
//! timeout so a stalled client cannot delay exit; the socket files are removed; the
//! data-directory lock is released.

use crate::engine::EngineConfig;
use crate::model::ParticipantId;
use crate::publish::server::{Server, ServerConfig, ServerError};
use crate::publish::{StateBoard, bus};
use crate::simulate::live::LiveSpec;
use crate::sources::replay::{FileError, Opened};
use crate::store::datadir::{DataDir, DataDirError, Role};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

mod control;
mod drive;
mod profiles;
mod sources;
mod stalls;
mod status;

use control::{Consent, Scope, now_ms, serve_control};

/// How long subscribers get to drain their queues at shutdown: with the rest of the shutdown
/// (finishing recordings, removing sockets) it stays within the 2 s a SIGTERM may take.
pub const DRAIN: Duration = Duration::from_millis(1500);

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

/// One source of a session.
#[derive(Debug)]
pub enum SourcePlan {
    /// A simulated participant producing data live.
    Simulate(LiveSpec),
    /// Many synthetic participants from a signal bank (`attune bench`).
    Synthetic(crate::sources::synthetic::SyntheticSpec),
    /// A device on a serial port (consent from the ledger).
    Serial(crate::sources::serial::SerialSpec),
    /// A BLE heart-rate strap (consent from the ledger).
    Ble(crate::sources::ble::BleSpec),
    /// Recordings (validated), published under `rename` if given (one file only).
    Replay {
        /// The files.
        files: Vec<Opened>,
        /// Publish under this participant instead of each file's.
        rename: Option<ParticipantId>,
    },
}

/// How session time runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timeline {
    /// Live: the session clock (`speed` times real time) drives the ticks.
    Live {
        /// Session clock speed (1 with real devices).
        speed: f64,
    },
    /// Replay: the recordings drive session time at this speed.
    Replay(Speed),
}

/// What a daemon session runs.
#[derive(Debug)]
pub struct Plan {
    /// The sources.
    pub sources: Vec<SourcePlan>,
    /// How time runs.
    pub timeline: Timeline,
    /// Socket server settings.
    pub server: ServerConfig,
    /// Data directory (locked while the daemon runs).
    pub data_dir: PathBuf,
    /// Hold the session until this many clients have subscribed.
    pub wait_subscribers: usize,
    /// Per-subscriber queue bound, messages.
    pub queue: usize,
    /// Sources → engine channel bound.
    pub input_queue: usize,
    /// Engine settings.
    pub engine: EngineConfig,
    /// Record sessions of participants who consented to `record` (live sessions only).
    pub recorder: Option<RecorderPlan>,
    /// Changes to apply while the session runs (a reloaded configuration).
    pub reconfigure: Option<tokio::sync::mpsc::Receiver<Reconfigure>>,
    /// Transports beyond the Unix socket (WebSocket, OSC, MQTT, LSL), started after the socket.
    pub transports: Vec<crate::publish::transport::Spec>,
}

/// Participants to remove and sources to add while a session runs (SIGHUP). A participant
/// whose sources changed is removed and added again: its sources restart, its engine state
/// (features, baseline) carries on.
#[derive(Debug)]
pub struct Reconfigure {
    /// Participants whose sources stop and who leave the session's consent scope.
    pub remove: Vec<ParticipantId>,
    /// Sources to start (their participants join the session).
    pub add: Vec<SourcePlan>,
    /// Told the outcome: one line on failure (then nothing was added).
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// Applies reconfigurations until the session ends.
async fn reconfigure(
    mut rx: tokio::sync::mpsc::Receiver<Reconfigure>,
    started: Arc<tokio::sync::Mutex<sources::Started>>,
    consent: Consent,
    consent_tx: Arc<watch::Sender<Arc<crate::consent::ConsentSnapshot>>>,
    markers_for: Arc<std::sync::RwLock<Vec<ParticipantId>>>,
    inputs: tokio::sync::mpsc::Sender<crate::engine::input::Input>,
) {
    while let Some(r) = rx.recv().await {
        let mut started = started.lock().await;
        let readded: Vec<ParticipantId> = r.add.iter().flat_map(sources::participants_of).collect();
        for p in &r.remove {
            started.remove(p).await;
            // One whose sources only changed stays, with its features and baseline.
            if !readded.contains(p) {
                let _ = inputs
                    .send(crate::engine::input::Input::Leave(p.clone()))
                    .await;
                info!(participant = %p, "Participant removed from the session.");
            }
        }
        let kept: Vec<Scope> = consent
            .scopes_now()
            .into_iter()
            .filter(|s| !r.remove.contains(s.participant()))
            .collect();
        let result = scopes(&r.add, &kept);
        let outcome = match result {
            Ok(new) => {
                let joined: Vec<ParticipantId> = new
                    .iter()
                    .map(|s| s.participant().clone())
                    .filter(|p| !kept.iter().any(|k| k.participant() == p))
                    .collect();
                *consent.scopes.write().unwrap_or_else(|e| e.into_inner()) = new;
                *markers_for.write().unwrap_or_else(|e| e.into_inner()) = consent.participants();
                control::publish_snapshot(&consent_tx, consent.snapshot(now_ms()));
                for p in joined {
                    info!(participant = %p, "Participant joined the session.");
                    let _ = inputs.send(crate::engine::input::Input::Join(p)).await;
                }
                started.add(r.add);
                Ok(())
            }
            Err(e) => {
                *consent.scopes.write().unwrap_or_else(|e| e.into_inner()) = kept;
                *markers_for.write().unwrap_or_else(|e| e.into_inner()) = consent.participants();
                control::publish_snapshot(&consent_tx, consent.snapshot(now_ms()));
                Err(e.to_string())
            }
        };
        let _ = r.done.send(outcome);
    }
}

/// Recorder settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecorderPlan {
    /// Data reaches the kernel at least this often.
    pub flush_every: Duration,
}

/// What a session did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Records read (replay) or inputs received (live).
    pub records: u64,
    /// Samples sent by the synthetic source (`attune bench`; 0 for other sources).
    pub samples: u64,
    /// Chunks that passed the gate.
    pub chunks_passed: u64,
    /// Chunks dropped for lack of consent.
    pub chunks_dropped: u64,
    /// Messages published, per topic name.
    pub published: BTreeMap<&'static str, u64>,
    /// Last session time, s.
    pub end_t: f64,
    /// Silences longer than 120 s that a replay skipped as gaps.
    pub jumps: u64,
    /// True if stopped by a signal before the sources ended.
    pub interrupted: bool,
}

impl Summary {
    /// What was published, for the summary line: `"12 adaptation, 3 state"` or `"nothing"`.
    pub fn published_text(&self) -> String {
        let published: Vec<String> = self
            .published
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        if published.is_empty() {
            "nothing".to_owned()
        } else {
            published.join(", ")
        }
    }
}

/// The summary of a replay (kept for callers of the replay API).
pub type ReplaySummary = Summary;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A recording is unreadable or malformed.
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
    /// The data directory could not be opened: locked, its ledger missing or tampered with, or
    /// recovery failed.
    #[error(transparent)]
    Store(#[from] DataDirError),
    /// The plan is inconsistent (two sources for one stream, a rename of several files).
    #[error("{0}")]
    Plan(String),
    /// A bug or a failed task; one line.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A socket file this daemon bound: removed when the daemon stops, however it stops.
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            warn!(socket = %self.0.display(), error = %e, "Could not remove the socket file.");
        }
    }
}

/// The consent scopes of a plan, one per participant (a participant fed by several sources has
/// one scope; replayed files are limited by their manifests).
fn scopes(sources: &[SourcePlan], existing: &[Scope]) -> Result<Vec<Scope>, DaemonError> {
    let mut scopes: Vec<Scope> = existing.to_vec();
    let mut scopes_seen: std::collections::BTreeSet<ParticipantId> = Default::default();
    // Looked up, not scanned: a bench session has thousands of participants.
    let mut taken: std::collections::BTreeSet<ParticipantId> =
        scopes.iter().map(|s| s.participant().clone()).collect();
    let mut add = |s: Scope| -> Result<(), DaemonError> {
        if !taken.insert(s.participant().clone()) {
            return Err(DaemonError::Plan(format!(
                "participant {} is fed by a recording and by another source; a replayed recording's consent is its own, so give it a participant of its own",
                s.participant()
            )));
        }
        scopes.push(s);
        Ok(())
    };
    for src in sources {
        match src {
            // A simulated participant comes with the simulator's synthetic consent, which the
            // ledger can withdraw (`simulate::synthetic_consent`); one scope per participant
            // whatever the number of simulated devices.
            SourcePlan::Simulate(spec) => {
                let p = &spec.participant;
                if !scopes_seen.contains(p) {
                    add(Scope::Replay {
                        participant: p.clone(),
                        recorded: p.clone(),
                        manifest: crate::simulate::synthetic_consent(),
                    })?;
                    scopes_seen.insert(p.clone());
                }
            }
            SourcePlan::Ble(spec) => {
                let p = &spec.participant;
                if !scopes_seen.contains(p) {
                    add(Scope::Live(p.clone()))?;
                    scopes_seen.insert(p.clone());
                }
            }
            SourcePlan::Serial(spec) => {
                let p = &spec.participant;
                if !scopes_seen.contains(p) {
                    add(Scope::Live(p.clone()))?;
                    scopes_seen.insert(p.clone());
                }
            }
            SourcePlan::Synthetic(spec) => {
                for p in &spec.participants {
                    add(Scope::Replay {
                        participant: p.clone(),
                        recorded: p.clone(),
                        manifest: crate::simulate::synthetic_consent(),
                    })?;
                }
            }
            SourcePlan::Replay { files, rename } => {
                if rename.is_some() && files.len() > 1 {
                    return Err(DaemonError::Plan(
                        "--participant renames a single recording; replay several without it"
                            .into(),
                    ));
                }
                for f in files {
                    add(Scope::Replay {
                        participant: crate::sources::replay_run::participant_of(f, rename.as_ref()),
                        recorded: f.header.participant.clone(),
                        manifest: f.header.consent.clone(),
                    })?;
                }
            }
        }
    }
    Ok(scopes)
}

/// Runs one daemon session: locks the data directory, binds the sockets, waits for
/// subscribers, runs the sources through the engine to the publishers, and shuts down. `bound`
/// is told the socket path once it accepts connections.
pub async fn run(
    plan: Plan,
    stop: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<PathBuf>>,
) -> Result<Summary, DaemonError> {
    let scopes = scopes(&plan.sources, &[])?;
    for s in &scopes {
        info!(participant = %s.participant(), "Participant in this session.");
    }
    // Lock the data directory (waiting for a command that holds it briefly), finish what a
    // crash interrupted (directory operations, owed erasures), open and check the ledger.
    let store = DataDir::open_waiting(
        &plan.data_dir,
        Role::Daemon,
        now_ms(),
        crate::store::datadir::LOCK_WAIT,
    )?;
    // The recorder (live sessions): session files under the data directory, repaired by the
    // open above if a crash left one unfinished.
    let mut recorder = match plan.recorder {
        Some(r) => Some(
            crate::store::recorder::Recorder::new(&plan.data_dir, r.flush_every, |f| {
                tracing::error!(participant = %f.participant, file = %f.path.display(), error = %f.error,
                    "Recording stopped for this participant (an explicit gap ends the file); the session and the other recordings go on.");
            })
            .map_err(|e| DaemonError::Internal(format!("the recorder could not start: {e}")))?,
        ),
        None => None,
    };
    let consent = Consent {
        data_dir: plan.data_dir.clone(),
        scopes: Arc::new(std::sync::RwLock::new(scopes)),
        store: Arc::new(std::sync::Mutex::new(store)),
        recorder: recorder.as_ref().map(|r| r.handle()),
    };
    let (consent_tx, consent_rx) = watch::channel(Arc::new(consent.snapshot(now_ms())));
    let server = Server::bind(plan.server.clone())?;
    let socket_path = server.path().to_owned();
    // From here on, every way out (a failed start included) removes the socket files we made.
    let _socket_file = SocketFile(socket_path.clone());
    let control_path = crate::publish::server::control_socket_path(&socket_path);
    let control = crate::publish::server::bind_private(&control_path)?;
    let _control_file = SocketFile(control_path.clone());
    if let Err(e) = consent
        .store
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_serving(&socket_path, &control_path)
    {
        warn!(error = %e, "Could not record the sockets in the lock file.");
    }
    info!(socket = %socket_path.display(), control = %control_path.display(), "Listening.");
    let consent_tx = Arc::new(consent_tx);
    let (input_tx, input_rx) = tokio::sync::mpsc::channel(plan.input_queue.max(1));
    let status = control::StatusBoard::default();
    status.starting(
        &consent.participants(),
        match plan.timeline {
            Timeline::Live { speed } => speed,
            Timeline::Replay(_) => 1.0,
        },
        matches!(plan.timeline, Timeline::Live { .. }),
    );
    let control_requests = TaskTracker::new();
    let egress = crate::publish::egress::Egresses::default();
    let clock = crate::sources::SessionClock::start(match plan.timeline {
        Timeline::Live { speed } => speed,
        Timeline::Replay(_) => 1.0,
    });
    let control_task = tokio::spawn(serve_control(
        control,
        plan.server.allowed_uids.clone(),
        control::Shared {
            consent: consent.clone(),
            consent_tx: consent_tx.clone(),
            egress: egress.clone(),
            inputs: input_tx.clone(),
            clock,
            status: status.clone(),
        },
        control_requests.clone(),
    ));

    let markers_for = Arc::new(std::sync::RwLock::new(consent.participants()));
    let egress_drops = Arc::new(crate::publish::EgressDrops::default());
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
            egress: egress.clone(),
            markers: Some(crate::publish::server::Markers {
                inputs: input_tx.clone(),
                clock,
                participants: markers_for.clone(),
            }),
            drops: egress_drops.clone(),
        },
        accept_stop.clone(),
        closing.clone(),
        clients.clone(),
    ));
    let egress_for_transports = egress;
    if let Some(tx) = bound {
        let _ = tx.send(socket_path.clone());
    }

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

    // Transports beyond the Unix socket: each starts now or the daemon does not (one line).
    let transport_tasks = TaskTracker::new();
    let transport_ctx = crate::publish::transport::Context {
        daemon_id: daemon_id(),
        consent: consent_rx.clone(),
        egress: egress_for_transports,
        closing: closing.clone(),
        tasks: transport_tasks.clone(),
        data_dir: plan.data_dir.clone(),
        bus: bus.downgrade(),
        board: board.clone(),
        markers: Some(crate::publish::server::Markers {
            inputs: input_tx.clone(),
            clock,
            participants: markers_for.clone(),
        }),
        drops: egress_drops.clone(),
    };
    let mut transports = Vec::new();
    for spec in plan.transports {
        match crate::publish::transport::start(spec, &transport_ctx).await {
            Ok(t) => {
                info!(transport = t.name(), "Transport started.");
                transports.push(t);
            }
            Err(e) => {
                closing.cancel();
                return Err(DaemonError::Plan(e));
            }
        }
    }
    drop(transport_ctx);
    let mut unix = crate::publish::unix::UnixPublisher::new(bus, board, egress_drops);
    let mut summary = Summary::default();
    let mut result = Ok(());
    if go {
        // The session clock starts when the data starts flowing.
        let clock = crate::sources::SessionClock::start(clock.speed());
        let sources_stop = stop.child_token();
        let started = sources::start(
            plan.sources,
            plan.timeline,
            clock,
            input_tx.clone(),
            &sources_stop,
            consent_tx.subscribe(),
        );
        let sources_done = started.done.clone();
        let started = Arc::new(tokio::sync::Mutex::new(started));
        let reconfig_task = plan.reconfigure.map(|rx| {
            tokio::spawn(reconfigure(
                rx,
                started.clone(),
                consent.clone(),
                consent_tx.clone(),
                markers_for.clone(),
                input_tx.clone(),
            ))
        });
        drop(input_tx);
        let first = (**consent_rx.borrow()).clone();
        let mut publishers: Vec<&mut dyn crate::publish::Publisher> = vec![&mut unix];
        if let Some(r) = recorder.as_mut() {
            crate::publish::Publisher::consent(r, &Arc::new(first.clone()));
            publishers.push(r);
        }
        for t in transports.iter_mut() {
            t.consent(&Arc::new(first.clone()));
            publishers.push(t.as_mut());
        }
        result = drive::drive(
            drive::Loop {
                engine: crate::engine::Engine::new(plan.engine.clone(), first),
                inputs: input_rx,
                timeline: plan.timeline,
                clock,
                consent: consent.clone(),
                consent_tx: consent_tx.clone(),
                consent_rx,
                status: status.clone(),
                sources_done,
                participants: consent.participants(),
            },
            &mut publishers,
            &stop,
            &mut summary,
        )
        .await;
        drop(publishers);
        sources_stop.cancel();
        if let Some(t) = reconfig_task {
            t.abort();
            let _ = t.await;
        }
        let source_result = match Arc::try_unwrap(started) {
            Ok(s) => s.into_inner().finish(&mut summary).await,
            Err(_) => Err(DaemonError::Internal("the sources are still in use".into())),
        };
        if result.is_ok() {
            result = source_result;
        }
    } else {
        drop(input_tx);
        summary.interrupted = true;
    }
    summary.published = unix.published().clone();
    // Every recording finished (end record, flush, fsync) before the sockets go.
    if let Some(mut r) = recorder.take()
        && let Err(e) = tokio::task::block_in_place(|| r.close(DRAIN))
    {
        warn!(error = %e, "The recorder did not finish cleanly; the next start repairs its files.");
    }

    // Shutdown: no new clients; close the bus; let subscribers drain; close the rest.
    accept_stop.cancel();
    drop(unix);
    drop(transports);
    closing.cancel();
    clients.close();
    transport_tasks.close();
    let drained = async {
        clients.wait().await;
        transport_tasks.wait().await;
    };
    if tokio::time::timeout(DRAIN, drained).await.is_err() {
        warn!("Some subscribers or transports did not drain within {DRAIN:?}; closing them.");
    }
    server_task.abort();
    // No new consent commands; those under way finish (their ledger writes are acknowledged).
    control_task.abort();
    control_requests.close();
    let _ = tokio::time::timeout(DRAIN, control_requests.wait()).await;
    result.map(|()| summary)
}

/// This daemon's id for transports that name it (MQTT topics, LSL source ids): the host name,
/// reduced to `[A-Za-z0-9_-]` (`attune` if it has none of those).
pub fn daemon_id() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let id: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if id.is_empty() { "attune".into() } else { id }
}

/// Opens and validates recordings (each opened once; see `sources::replay`). A FIFO nobody
/// writes to, or a silent stdin, blocks the open or the read in the kernel: `stop` still ends
/// the wait (`Ok(None)`; the blocked thread is left behind and the runtime does not wait for it
/// at exit).
pub async fn open_recordings(
    paths: &[PathBuf],
    stop: &CancellationToken,
) -> Result<Option<Vec<Opened>>, DaemonError> {
    let mut out = Vec::new();
    for path in paths {
        let p = path.clone();
        let opening = tokio::task::spawn_blocking(move || crate::sources::replay::open(&p));
        let opened = tokio::select! {
            r = opening => r
                .map_err(|e| DaemonError::Internal(format!("the recording reader failed: {e}")))??,
            _ = stop.cancelled() => {
                info!(file = %path.display(), "Stopped while the recording was being read.");
                return Ok(None);
            }
        };
        info!(file = %path.display(), records = opened.records, participant = %opened.header.participant,
              streams = opened.header.streams.len(), "Recording validated.");
        out.push(opened);
    }
    Ok(Some(out))
}
