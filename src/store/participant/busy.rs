//! Who may touch a participant's directory: the process-wide busy table (this process) and
//! sled's lock on `<dir>/db` (other processes).

use super::{StoreError, participant_dir};
use crate::model::ParticipantId;
use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Participant directories that this process has open or is erasing or importing.
static BUSY: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Marks a participant's directory busy in this process until dropped.
#[derive(Debug)]
pub(crate) struct BusyGuard {
    key: PathBuf,
}

impl BusyGuard {
    /// Marks `participant` busy, or refuses with [`StoreError::InUse`]; first checks the
    /// directories on the way to its store (`check_tree`), refusing with
    /// [`StoreError::Untrusted`].
    pub(crate) fn acquire(
        data_dir: &Path,
        participant: &ParticipantId,
    ) -> Result<Self, StoreError> {
        check_id(participant)?;
        super::check_tree(data_dir, participant)?;
        let key = participant_dir(&resolve(data_dir), participant);
        let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
        if !busy.insert(key.clone()) {
            return Err(StoreError::InUse {
                participant: participant.clone(),
                path: participant_dir(data_dir, participant),
            });
        }
        Ok(Self { key })
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        BUSY.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// `path` with its longest existing prefix resolved (symlinks, `..`), so that one directory
/// gets one key whether or not it exists yet and however the caller spells it.
pub(super) fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut rest = Vec::new();
    let mut base = absolute.as_path();
    loop {
        if let Ok(real) = fs::canonicalize(base) {
            return rest.iter().rev().fold(real, |acc, c| acc.join(c));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                base = parent;
            }
            _ => return absolute,
        }
    }
}

/// Refuses ids that would not name a participant directory of their own.
pub(super) fn check_id(participant: &ParticipantId) -> Result<(), StoreError> {
    if participant.as_str().starts_with('.') {
        Err(StoreError::ReservedId {
            participant: participant.clone(),
        })
    } else {
        Ok(())
    }
}

/// How long closing waits for sled's threads to release a database, and how long opening and
/// erasing wait for a lock that may be on its way to release before reporting
/// [`StoreError::Locked`].
pub const RELEASE_WAIT: Duration = Duration::from_secs(1);
pub(super) const LOCK_POLL: Duration = Duration::from_millis(1);

/// [`lock_db`], retried until `wait` has passed.
pub(super) fn wait_unlocked(
    participant: &ParticipantId,
    dir: &Path,
    wait: Duration,
) -> Result<Option<File>, StoreError> {
    let start = Instant::now();
    loop {
        match lock_db(participant, dir) {
            Err(StoreError::Locked { .. }) if start.elapsed() < wait => {
                std::thread::sleep(LOCK_POLL)
            }
            other => return other,
        }
    }
}

/// Fails with [`StoreError::Locked`] if another process holds sled's lock on `<dir>/db`;
/// otherwise returns the locked file, which keeps other processes out until dropped.
pub(super) fn lock_db(participant: &ParticipantId, dir: &Path) -> Result<Option<File>, StoreError> {
    let db = dir.join("db");
    let file = match File::open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                participant: participant.clone(),
                op: "open",
                path: db,
                source,
            });
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            participant: participant.clone(),
            path: dir.to_owned(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(StoreError::Io {
            participant: participant.clone(),
            op: "lock",
            path: db,
            source,
        }),
    }
}
