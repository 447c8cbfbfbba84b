//! The recorder (edge): with `record` consent, each live session of each participant is written
//! as one recording v1 file (`docs/recording-format.md`), crash-safe.
//!
//! # Layout
//!
//! `<data_dir>/sessions/<participant id>/<session name>.attune.ndjson`: directories 0700, files
//! 0600, created with `O_CREAT | O_EXCL | O_NOFOLLOW` after `store::trust` checked the path (no
//! symbolic links, ours, no group or other write). The session name is the UTC start,
//! `20261201T122000Z`, with `-2`, `-3`, ... on collision (it passes
//! `store::participant::check_name`). The sled participant store is untouched: a sled directory
//! must be deleted whole, and a session file is appended to for hours. `sessions/.forget-<id>`
//! is an erasure in progress (`store::participant`, "Erasure").
//!
//! # What a file holds
//!
//! A participant's file opens at their first `Samples`, `Gap` or `Marker` event whose consent
//! needs are met, not at the first stream declaration, so that every stream its sources declared
//! before the first data is in the header. Header: participant, the declared streams that have
//! `process` and `record` (id = kind name), the consent manifest in force for them, provenance
//! `attune run (live)` / `(participant data; not licensed)`, and the `session` object. Records:
//! `Samples` → `chunk` (device times, `host_t` and `seq` exactly as received), `Gap` → `gap`,
//! `Marker` → `marker`, stream `State` events → `state` (the state's name and the source's
//! detail; its `host_t` is the change's time, raised to the previous record's if it lags, so
//! that records stay in host order). **Rotation:** data of a stream that is not in the open
//! file's header (declared, or granted `record`, after the file opened) closes the file and
//! opens a new one declaring every recordable stream: the format allows only header-declared
//! streams. A stream that sends data without a declaration is declared from its first chunk
//! (rate from its timing, device `unknown`).
//!
//! # Never blocking, never losing silently
//!
//! [`Recorder::publish`] only puts the event on a bounded queue ([`QUEUE_EVENTS`]) to the
//! writer thread. When the queue is full the event is counted `lagged`, and for samples and gaps
//! the lost stretch is remembered per stream: before the stream's next record (or at the next
//! timer tick) the writer writes an explicit `gap` with reason `lagged` from the last sample
//! written to the last one lost.
//!
//! # Flush and fsync policy
//!
//! Records are buffered (64 KiB) and handed to the kernel with `write(2)` at least every
//! `flush_every` (100 ms by default) by a timer in the writer thread that runs even when no
//! event arrives. A kill -9 keeps the page cache, so at most about `flush_every` plus one
//! queue's worth of received data (≈ 150 ms) is lost. Open files are fsynced at most every
//! [`FSYNC_EVERY`] (5 s) and always at close; power loss is out of scope, as in RELIABILITY.md.
//! After a crash, [`repair`] (run on every open of the data directory) cuts a file without
//! `end` to its last whole, valid line and closes it with `"recovered": true`.
//!
//! # Consent
//!
//! Every event is checked again when written (`consent::all_met` against the snapshot in
//! force); what the snapshot no longer allows is dropped and counted `withdrawn_at_egress`.
//! [`Recorder::consent`] closes (end, flush, fsync, close) the file of every participant who
//! lost `record` or `process` for a stream in it before returning, and
//! [`RecorderHandle::close_participant`] closes one participant's file synchronously (the
//! daemon calls it before an erasure). A participant whose file was closed this way gets a new
//! file at their next recordable event.
//!
//! # Failures
//!
//! A write error (disk full) stops that participant's file: best effort a `write_failed` gap
//! per stream and an `end` with that reason, otherwise it is left for repair. `on_failure` is
//! called with the participant, the path and the one-line error; the participant's later events
//! are counted `write_failed` for the rest of the run; other participants' files go on.
//! `store::failpoint::io_error("recorder.write", participant)` simulates a full disk in tests.
//!
//! Files: `file` (one session file), `writer` (the thread and its state), `repair`, `list`.

mod file;
mod list;
mod repair;
#[cfg(test)]
mod tests;
mod writer;

pub use list::{SessionEntry, list_sessions};

pub use file::{FSYNC_EVERY, SESSION_SUFFIX, session_stamp};
pub use repair::{RepairOutcome, repair, repair_file};

use crate::consent::ConsentSnapshot;
use crate::engine::event::{DropReason, Event, EventBody};
use crate::model::ParticipantId;
use crate::publish::{Flow, Publisher};
use crate::store::trust::UntrustedPath;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use writer::{Msg, Shared};

/// The directory under the data directory that holds the session files.
pub const SESSIONS_DIR: &str = "sessions";
/// Events the queue to the writer thread holds.
pub const QUEUE_EVENTS: usize = 4096;
/// The default interval of `write(2)` to the kernel.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// `<data_dir>/sessions`.
pub fn sessions_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(SESSIONS_DIR)
}

/// `<data_dir>/sessions/<id>`.
pub fn session_dir(data_dir: &Path, participant: &ParticipantId) -> PathBuf {
    sessions_dir(data_dir).join(participant.as_str())
}

/// Whether `participant` has any session file (finished or not).
pub fn has_sessions(data_dir: &Path, participant: &ParticipantId) -> bool {
    std::fs::read_dir(session_dir(data_dir, participant)).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(SESSION_SUFFIX)))
    })
}

/// Why the recorder could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A file operation failed.
    #[error("session of {participant}: cannot {op} {path}: {source}")]
    Io {
        /// Whose session.
        participant: ParticipantId,
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A directory on the way is a symbolic link or not ours alone.
    #[error(transparent)]
    Untrusted(#[from] UntrustedPath),
    /// The writer thread could not be started.
    #[error("cannot start the recorder's writer thread: {0}")]
    Thread(std::io::Error),
    /// The writer thread is gone (it panicked, or the recorder was closed).
    #[error("the recorder's writer thread has stopped")]
    Stopped,
    /// Closing did not finish in time.
    #[error("the recorder did not finish its files within {0:?}")]
    Timeout(Duration),
}

impl RecorderError {
    pub(crate) fn io(
        participant: &ParticipantId,
        op: &'static str,
        path: &Path,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            participant: participant.clone(),
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// A participant's session file stopped because it could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderFailure {
    /// Whose file.
    pub participant: ParticipantId,
    /// The file.
    pub path: PathBuf,
    /// The error, one line.
    pub error: String,
}

/// The recorder publisher (module doc).
pub struct Recorder {
    tx: Option<SyncSender<Msg>>,
    shared: Arc<Shared>,
    done: Option<mpsc::Receiver<()>>,
}

/// A cloneable handle for the daemon: close a participant's file before an erasure, read the
/// status.
#[derive(Clone)]
pub struct RecorderHandle {
    shared: Arc<Shared>,
}

impl Recorder {
    /// Starts the writer thread for `data_dir`; `flush_every` bounds how long a record stays in
    /// the userspace buffer; `on_failure` is called (on the writer thread) when a participant's
    /// file stops because of an I/O error.
    pub fn new(
        data_dir: &Path,
        flush_every: Duration,
        on_failure: impl Fn(RecorderFailure) + Send + Sync + 'static,
    ) -> Result<Self, RecorderError> {
        Self::with_queue(data_dir, flush_every, QUEUE_EVENTS, on_failure)
    }

    /// [`new`](Self::new) with a queue of `capacity` events (tests use a small one).
    pub fn with_queue(
        data_dir: &Path,
        flush_every: Duration,
        capacity: usize,
        on_failure: impl Fn(RecorderFailure) + Send + Sync + 'static,
    ) -> Result<Self, RecorderError> {
        let shared = Arc::new(Shared::new(
            data_dir.to_owned(),
            flush_every,
            Box::new(on_failure),
        ));
        let (tx, rx) = mpsc::sync_channel(capacity.max(1));
        let (done_tx, done_rx) = mpsc::channel();
        let s = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("attune-recorder".into())
            .spawn(move || {
                writer::run(&s, &rx);
                let _ = done_tx.send(());
            })
            .map_err(RecorderError::Thread)?;
        Ok(Self {
            tx: Some(tx),
            shared,
            done: Some(done_rx),
        })
    }

    /// A handle that outlives borrows of the recorder.
    pub fn handle(&self) -> RecorderHandle {
        RecorderHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Writes what is queued, finishes every file (`end`, flush, fsync) and stops the writer
    /// thread, waiting at most `timeout`. If the thread does not finish in time, the files
    /// are finished from this thread and the queued rest is dropped.
    pub fn close(&mut self, timeout: Duration) -> Result<(), RecorderError> {
        let Some(tx) = self.tx.take() else {
            return Ok(());
        };
        let sent = tx.send(Msg::Stop).is_ok();
        drop(tx);
        let finished = sent
            && self
                .done
                .take()
                .is_some_and(|d| d.recv_timeout(timeout).is_ok());
        if finished {
            return Ok(());
        }
        self.shared.close_all_now();
        if sent {
            Err(RecorderError::Timeout(timeout))
        } else {
            Err(RecorderError::Stopped)
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = self.close(Duration::from_secs(5));
    }
}

impl Publisher for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn publish(&mut self, event: &Arc<Event>) -> Flow {
        if let EventBody::Stream(info) = &event.body {
            // Declarations are kept here, not queued: they are never lost to a full queue.
            self.shared.declare(info);
            return Flow::Continue;
        }
        if !matches!(
            event.body,
            EventBody::Samples(_) | EventBody::Gap(_) | EventBody::Marker(..) | EventBody::State(_)
        ) {
            return Flow::Continue;
        }
        let Some(tx) = &self.tx else {
            return Flow::Stop;
        };
        if self.shared.enqueue(tx, event) {
            Flow::Continue
        } else {
            Flow::Stop
        }
    }

    fn consent(&mut self, snapshot: &Arc<ConsentSnapshot>) -> Flow {
        self.shared.consent(snapshot);
        Flow::Continue
    }

    fn status(&self) -> serde_json::Value {
        self.shared.status()
    }
}

impl RecorderHandle {
    /// Closes `participant`'s open session file (`end`, flush, fsync, close) and returns its
    /// path, or `None` if none was open. Returns once the file is closed.
    pub fn close_participant(
        &self,
        participant: &ParticipantId,
    ) -> Result<Option<PathBuf>, RecorderError> {
        self.shared.close_participant(participant)
    }

    /// Applies a new consent snapshot at once (as [`Publisher::consent`]), from any thread: the
    /// daemon calls it when a revocation's intent is durable, before the erasure runs, so that no
    /// event queued under the old consent can reopen a file the erasure is about to remove.
    pub fn consent(&self, snapshot: &Arc<ConsentSnapshot>) {
        self.shared.consent(snapshot);
    }

    /// The recorder's status (as [`Publisher::status`]).
    pub fn status(&self) -> serde_json::Value {
        self.shared.status()
    }

    /// Events dropped for `reason` so far.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.shared.dropped(reason)
    }
}

/// Locks a mutex, taking over the data of a thread that panicked while holding it (the state
/// is a map of files; each file stays consistent line by line).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
