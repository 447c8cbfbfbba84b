//! The owner of a data directory (edge): [`DataDir`] holds the data-directory lock, the consent
//! ledger, and carries out every request that changes stored data from start to end. The daemon
//! holds one for as long as it runs (its control socket hands requests to it); a command run
//! without a daemon opens one for the length of the command. Nothing else appends to the ledger
//! or erases a participant's store.
//!
//! # Erasure, crash-safe
//!
//! Revoking `record` or `profile` and `forget` each take three steps (`consent::ledger`,
//! "Erasures owed"): the intent event is appended and flushed, then the data is erased by
//! deleting directories whole (`store::participant`, "Erasure"), then the completion receipt
//! (`data_erased` or `erased`) is appended. [`DataDir::open`] first finishes any directory
//! operation a crash interrupted (`participant::recover`, which also removes an interrupted
//! erasure of session files), repairs every session file a crash left without its `end` record
//! (`store::recorder::repair`; no recorder writes while the lock is held), then every erasure
//! the ledger says is owed (erasures of recordings delete `sessions/<id>/` too), before anything else can be appended; every request that appends does the same first.
//! So whatever step a kill -9 hits, the next command or daemon start converges to "revoked (or
//! forgotten), data gone, receipt present", and a later grant can never be followed by an
//! erasure that destroys data stored under it: while an erasure is owed and cannot be finished,
//! every change is refused with the reason. Crash points: `store::failpoint`.
//!
//! # Trust
//!
//! [`DataDir::open`] refuses, in one line naming the path, its owner and its mode, a data
//! directory, `participants/` or `ledger/` that another user owns, that a group or other user
//! can write, or (inside the data directory) that is a symbolic link (`store::trust`). A data
//! directory that does not exist is created mode 0700. A `--data-dir` that is itself the
//! user's own symbolic link is followed once, and its target is checked.
//!
//! # Waiting for the lock
//!
//! [`DataDir::open`] does not wait: it reports [`DataDirError::Busy`] with what the lock file
//! says holds it. [`DataDir::open_waiting`] polls for a bounded time; the CLI uses its own loop,
//! which also retries a daemon's control socket meanwhile.

mod execute;
mod lock;

pub(crate) use execute::check_request;
pub use lock::{Holder, LOCK_FILE, Role, read_holder};

use crate::consent::control::Erasure;
use crate::consent::ledger::{Action, ConsentState, Event, NewEvent, Owed, pending_erasures};
use crate::consent::{AllStreams, Purpose, StreamSelector};
use crate::model::ParticipantId;
use crate::store::failpoint;
use crate::store::ledger::{LedgerError, LedgerStore};
use crate::store::participant::{self, Part, StoreError};
use crate::store::recorder::{self, RecorderError};
use crate::store::trust::{self, UntrustedPath};
use lock::{DirLock, LockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a process waits for a data directory that another process holds.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// Another process holds the data-directory lock.
    #[error("data directory {path} is in use by {}", holder.as_ref().map_or_else(|| "another attune process".to_owned(), ToString::to_string))]
    Busy {
        /// The data directory.
        path: PathBuf,
        /// What its lock file says, if readable.
        holder: Option<Holder>,
    },
    /// The ledger's own sled lock is held by a process that does not hold the data-directory
    /// lock (an older attune, or another program).
    #[error(
        "the consent ledger {path} is locked by another process that does not hold {lock}; stop that process"
    )]
    LedgerLocked {
        /// The ledger directory.
        path: PathBuf,
        /// The data-directory lock file.
        lock: PathBuf,
    },
    /// The directory or its lock file could not be created or locked.
    #[error("data directory {path}: cannot {op}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The data directory or a directory in it is a symbolic link, or not ours alone
    /// (`store::trust`).
    #[error(transparent)]
    Untrusted(#[from] UntrustedPath),
    /// The ledger is missing, truncated, tampered with or unreadable.
    #[error(transparent)]
    Ledger(LedgerError),
    /// Finishing an interrupted directory operation failed.
    #[error("cannot recover the data directory: {0}")]
    Recover(#[from] StoreError),
    /// Repairing a session file a crash left unfinished failed (`store::recorder`).
    #[error("cannot repair the recorded sessions: {0}")]
    Sessions(#[from] RecorderError),
}

/// An opened data directory: its lock, its ledger, and every owed erasure finished (or the
/// reason why not).
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    lock: DirLock,
    ledger: LedgerStore,
    /// Why the owed erasures could not be finished at the last attempt.
    stuck: Option<String>,
}

/// What one finished erasure did.
#[derive(Debug, Clone, PartialEq)]
struct Settled {
    erasure: Erasure,
    receipts: Vec<Event>,
}

impl DataDir {
    /// Takes the lock (without waiting), finishes interrupted directory operations, opens and
    /// checks the ledger and finishes every owed erasure, at `now_ms` (unix ms, for receipts).
    pub fn open(path: &Path, role: Role, now_ms: i64) -> Result<Self, DataDirError> {
        let io = |op| {
            let path = path.to_owned();
            move |source| DataDirError::Io { path, op, source }
        };
        trust::create_data_dir(path)?;
        trust::check_dir(&participant::participants_dir(path))?;
        let lock = match DirLock::try_take(path, Holder::this_process(role)) {
            Ok(l) => l,
            Err(LockError::Busy(holder)) => {
                return Err(DataDirError::Busy {
                    path: path.to_owned(),
                    holder,
                });
            }
            Err(LockError::Io(e)) => return Err(io("lock")(e)),
        };
        participant::recover(path)?;
        recorder::repair(path)?;
        let ledger = match LedgerStore::open(path) {
            Ok(l) => l,
            Err(LedgerError::Locked(p)) => {
                return Err(DataDirError::LedgerLocked {
                    path: p,
                    lock: path.join(LOCK_FILE),
                });
            }
            Err(e) => return Err(DataDirError::Ledger(e)),
        };
        let mut dd = Self {
            path: path.to_owned(),
            lock,
            ledger,
            stuck: None,
        };
        if let Err(e) = dd.settle(now_ms) {
            tracing::warn!(error = %e, "An owed erasure could not be finished; changes are refused until it is.");
        }
        Ok(dd)
    }

    /// [`open`](Self::open), retrying while another command holds the lock (or the ledger's),
    /// for up to `wait`. A daemon holds it for as long as it runs: that is reported at once.
    pub fn open_waiting(
        path: &Path,
        role: Role,
        now_ms: i64,
        wait: Duration,
    ) -> Result<Self, DataDirError> {
        let start = Instant::now();
        loop {
            match Self::open(path, role, now_ms) {
                Err(DataDirError::Busy { ref holder, .. })
                    if start.elapsed() < wait
                        && holder.as_ref().is_none_or(|h| h.role != Role::Daemon) =>
                {
                    std::thread::sleep(poll_interval());
                }
                Err(DataDirError::LedgerLocked { .. }) if start.elapsed() < wait => {
                    std::thread::sleep(poll_interval());
                }
                other => return other,
            }
        }
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The consent ledger.
    pub fn ledger(&self) -> &LedgerStore {
        &self.ledger
    }

    /// The fold of the ledger.
    pub fn state(&self) -> &ConsentState {
        self.ledger.state()
    }

    /// Records a daemon's subscriber and control sockets in the lock file, so that a command
    /// that cannot reach it can say where it is.
    pub fn set_serving(&mut self, socket: &Path, control: &Path) -> Result<(), DataDirError> {
        self.lock
            .set_serving(socket, control)
            .map_err(|source| DataDirError::Io {
                path: self.path.join(LOCK_FILE),
                op: "write",
                source,
            })
    }

    /// Finishes every erasure the ledger says is owed (module doc). Stops at the first that
    /// fails and remembers why, so that changes are refused until it succeeds.
    fn settle(&mut self, now_ms: i64) -> Result<Vec<Settled>, String> {
        let mut done = Vec::new();
        for owed in pending_erasures(self.ledger.events()) {
            match self.finish(&owed, now_ms) {
                Ok(s) => done.push(s),
                Err(e) => {
                    let why = format!(
                        "the erasure of {}'s data asked for at ledger event {} is not finished: {e}",
                        owed.participant, owed.since
                    );
                    self.stuck = Some(why.clone());
                    return Err(why);
                }
            }
        }
        self.stuck = None;
        Ok(done)
    }

    /// Erases what `owed` covers and appends its receipt(s).
    fn finish(&mut self, owed: &Owed, now_ms: i64) -> Result<Settled, String> {
        let p = &owed.participant;
        let at = u64::try_from(now_ms).unwrap_or(0);
        let (parts, receipt) = if owed.forget {
            (Part::ALL.to_vec(), participant::forget(&self.path, p, at))
        } else {
            let parts: Vec<Part> = owed.purposes.iter().flat_map(|pu| parts_of(*pu)).collect();
            let r = participant::erase_parts(&self.path, p, &parts, at);
            (parts, r)
        };
        let (files, bytes) = match receipt {
            Ok(r) => (r.files_removed, r.bytes_removed),
            Err(StoreError::UnknownParticipant { .. }) => (0, 0),
            Err(e) => return Err(e.to_string()),
        };
        failpoint::hit("complete.before");
        let template = event(Action::Erased, p.clone(), now_ms, owed.by.clone());
        let events = if owed.forget {
            vec![template]
        } else {
            owed.purposes
                .iter()
                .map(|pu| NewEvent {
                    action: Action::DataErased,
                    purpose: *pu,
                    ..template.clone()
                })
                .collect()
        };
        let receipts = self.ledger.append_all(events).map_err(|e| e.to_string())?;
        Ok(Settled {
            erasure: Erasure {
                participant: p.clone(),
                parts: parts.iter().map(|x| x.tree().to_owned()).collect(),
                files_removed: files,
                bytes_removed: bytes,
            },
            receipts,
        })
    }

    /// Why changes are refused at the moment, if they are.
    pub fn stuck(&self) -> Option<&str> {
        self.stuck.as_deref()
    }
}

/// The stored parts a revoked purpose covers. Recordings hold all of a participant's streams,
/// so revoking `record` for any stream erases them all.
fn parts_of(purpose: Purpose) -> Vec<Part> {
    match purpose {
        Purpose::Record => vec![Part::Recordings, Part::Features],
        Purpose::Profile => vec![Part::Profile],
        _ => Vec::new(),
    }
}

/// An event of `participant` at `at_ms` for every stream and purpose `process`, with no expiry
/// and no consent-text version: the template that requests and receipts refine.
fn event(action: Action, participant: ParticipantId, at_ms: i64, by: String) -> NewEvent {
    NewEvent {
        action,
        participant,
        stream: StreamSelector::All(AllStreams::All),
        purpose: Purpose::Process,
        at_ms,
        by,
        expires_ms: None,
        text_version: None,
    }
}

/// 20–40 ms, varied per process, so that waiting commands do not poll in lockstep.
pub fn poll_interval() -> Duration {
    let jitter = u64::from(std::process::id() % 7) * 3
        + u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_micros() % 8),
        );
    Duration::from_millis(20 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::control::{Request, Response};
    use crate::model::ParticipantId;
    use crate::model::StreamKind;
    use crate::store::participant::ParticipantStore;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    fn all() -> Vec<StreamSelector> {
        vec![StreamSelector::All(AllStreams::All)]
    }

    fn grant(p: &str, purposes: &[Purpose]) -> Request {
        Request::Grant {
            participant: pid(p),
            streams: all(),
            purposes: purposes.to_vec(),
            expires_ms: None,
            text_version: None,
            by: "test".into(),
        }
    }

    fn revoke(p: &str, purposes: &[Purpose]) -> Request {
        Request::Revoke {
            participant: pid(p),
            streams: all(),
            purposes: purposes.to_vec(),
            by: "test".into(),
        }
    }

    fn actions(dd: &DataDir) -> Vec<Action> {
        dd.ledger().events().iter().map(|e| e.action).collect()
    }

    #[test]
    fn an_owed_erasure_that_cannot_finish_blocks_every_change_until_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut dd = DataDir::open(dir.path(), Role::Command, 1).unwrap();
        let r = dd.execute(grant("p01", &[Purpose::Process, Purpose::Record]), 1, &[]);
        assert!(matches!(r, Response::Appended { .. }), "{r:?}");
        let p = pid("p01");
        let store = ParticipantStore::open(dir.path(), &p).unwrap();
        store.put_profile("x", &serde_json::json!(1)).unwrap();
        // The store is open in this process: the erasure cannot run.
        let r = dd.execute(revoke("p01", &[Purpose::Record]), 2, &[]);
        let Response::Error { message } = r else {
            panic!("{r:?}")
        };
        assert!(message.contains("consent revoked"), "{message}");
        assert!(dd.stuck().is_some());
        // A new grant now would let the owed erasure destroy data recorded under it: refused.
        let r = dd.execute(grant("p01", &[Purpose::Record]), 3, &[]);
        let Response::Error { message } = r else {
            panic!("{r:?}")
        };
        assert!(message.contains("not finished"), "{message}");
        assert!(!dd.state().allows(&p, StreamKind::Eda, Purpose::Record, 3));
        // Reading still works.
        let r = dd.execute(
            Request::History {
                participant: p.clone(),
            },
            3,
            &[],
        );
        assert!(matches!(r, Response::History { .. }), "{r:?}");
        store.close().unwrap();
        let r = dd.execute(grant("p01", &[Purpose::Record]), 4, &[]);
        assert!(matches!(r, Response::Appended { .. }), "{r:?}");
        assert_eq!(
            actions(&dd),
            [
                Action::Grant,
                Action::Grant,
                Action::Revoke,
                Action::DataErased,
                Action::Grant
            ],
            "the receipt comes before the new grant"
        );
        assert!(dd.stuck().is_none());
    }

    #[test]
    fn a_second_open_is_busy_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DataDir::open(dir.path(), Role::Command, 1).unwrap();
        let err = DataDir::open(dir.path(), Role::Command, 1).unwrap_err();
        let DataDirError::Busy {
            holder: Some(h), ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(h.pid, std::process::id());
        assert_eq!(h.role, Role::Command);
        assert!(
            err.to_string().contains("in use by another attune command"),
            "{err}"
        );
    }

    #[test]
    fn a_daemon_waits_for_a_command_but_not_for_another_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let held = DataDir::open(dir.path(), Role::Command, 1).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let start = Instant::now();
        let daemon =
            DataDir::open_waiting(dir.path(), Role::Daemon, 1, Duration::from_secs(10)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(250));
        release.join().unwrap();
        let start = Instant::now();
        let err = DataDir::open_waiting(dir.path(), Role::Daemon, 1, Duration::from_secs(10))
            .unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "waited for a daemon"
        );
        assert!(err.to_string().contains("another attune daemon"), "{err}");
        drop(daemon);
    }

    #[test]
    fn the_new_consent_is_handed_over_before_the_erasure_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut dd = DataDir::open(dir.path(), Role::Command, 1).unwrap();
        dd.execute(grant("p01", &[Purpose::Process]), 1, &[]);
        let p = pid("p01");
        ParticipantStore::open(dir.path(), &p)
            .unwrap()
            .close()
            .unwrap();
        let mut seen = Vec::new();
        let r = dd.execute_observed(
            Request::Forget {
                participant: p.clone(),
                by: "test".into(),
            },
            2,
            &[],
            &mut |state| {
                seen.push((
                    state.allows(&p, StreamKind::Eda, Purpose::Process, 2),
                    participant::has_data(dir.path(), &p),
                ));
            },
        );
        assert!(matches!(r, Response::Forgotten { .. }), "{r:?}");
        assert_eq!(seen, [(false, true)], "revoked, data not yet erased");
        assert!(!participant::has_data(dir.path(), &p));
    }

    #[test]
    fn bad_actors_are_refused_before_anything_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let mut dd = DataDir::open(dir.path(), Role::Command, 1).unwrap();
        for by in ["", "a\nb", &"x".repeat(201)] {
            let r = dd.execute(
                Request::Forget {
                    participant: pid("p01"),
                    by: by.into(),
                },
                1,
                &[pid("p01")],
            );
            assert!(matches!(r, Response::Error { .. }), "{r:?}");
        }
        assert!(dd.ledger().events().is_empty());
    }

    #[test]
    fn a_planted_lock_file_link_is_refused_and_a_new_data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("new");
        drop(DataDir::open(&data, Role::Command, 1).unwrap());
        for sub in ["", "ledger"] {
            let mode = std::fs::metadata(data.join(sub))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{sub}");
        }
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::remove_file(data.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&victim, data.join(LOCK_FILE)).unwrap();
        let err = DataDir::open(&data, Role::Command, 1).unwrap_err();
        assert!(matches!(err, DataDirError::Io { op: "lock", .. }), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
