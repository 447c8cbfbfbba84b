//! The daemon: wires a source, the pure pipeline and the socket server together, and owns
//! startup and graceful shutdown (edge).
//!
//! - `control`: the consent in force and the control socket.
//! - `drive`: the replay loop, record by record and tick by tick, and publishing.
//!
//! Shutdown (STYLE.md §12): the source ends (end of recording) or `stop` is cancelled
//! (SIGINT/SIGTERM); the pipeline emits its last messages and drops the bus sender; subscribed
//! clients drain what is queued for them and are closed, with a [`DRAIN`] timeout so a stalled
//! client cannot delay exit; the socket file is removed; the data-directory lock is released.

use crate::model::ParticipantId;
use crate::pipeline::PipelineConfig;
use crate::publish::server::{Server, ServerConfig, ServerError};
use crate::publish::{StateBoard, bus};
use crate::sources::replay::{self, FileError};
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

use control::{Consent, now_ms, serve_control};
use drive::{Publisher, run_replay};

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
    /// Silences longer than `drive::MAX_SILENCE_S` (120 s) that were skipped as gaps.
    pub jumps: u64,
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
    /// The data directory could not be opened: locked, its ledger missing or tampered with, or
    /// recovery failed.
    #[error(transparent)]
    Store(#[from] DataDirError),
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

/// Runs `attune replay`: validates the file, locks the data directory, binds the socket, waits
/// for subscribers, replays, and shuts down. `bound` is told the socket path once it accepts
/// connections.
pub async fn replay(
    plan: ReplayPlan,
    stop: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<PathBuf>>,
) -> Result<ReplaySummary, DaemonError> {
    // Opened once: everything after reads this handle (or these bytes), never the path again.
    let path = plan.file.clone();
    // A FIFO nobody writes to, or a silent stdin, blocks the open or the read in the kernel:
    // a signal must still stop the daemon (the blocked thread is left behind; the runtime
    // does not wait for it at exit).
    let opening = tokio::task::spawn_blocking(move || replay::open(&path));
    let opened = tokio::select! {
        r = opening => r
            .map_err(|e| DaemonError::Internal(format!("the recording reader failed: {e}")))??,
        _ = stop.cancelled() => {
            info!(file = %plan.file.display(), "Stopped while the recording was being read.");
            return Ok(ReplaySummary { interrupted: true, ..ReplaySummary::default() });
        }
    };
    let (header, n_records) = (opened.header.clone(), opened.records);
    let participant = plan
        .participant
        .clone()
        .unwrap_or_else(|| header.participant.clone());
    info!(file = %plan.file.display(), records = n_records, participant = %participant,
          streams = header.streams.len(), "Recording validated.");
    // Lock the data directory (waiting for a command that holds it briefly), finish what a
    // crash interrupted (directory operations, owed erasures), open and check the ledger.
    let store = DataDir::open_waiting(
        &plan.data_dir,
        Role::Daemon,
        now_ms(),
        crate::store::datadir::LOCK_WAIT,
    )?;
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
    let control_requests = TaskTracker::new();
    let egress = crate::publish::egress::Egresses::default();
    let control_task = tokio::spawn(serve_control(
        control,
        plan.server.allowed_uids.clone(),
        consent.clone(),
        consent_tx.clone(),
        egress.clone(),
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
            egress,
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
            opened,
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
    result.map(|()| summary)
}
