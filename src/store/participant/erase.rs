//! Erasure by whole directories: [`forget`] and [`erase_parts`] (module doc of
//! `store::participant`, "Erasure").

use super::*;
use crate::store::{failpoint, recorder};
use std::fs::{DirBuilder, File};
use std::os::unix::fs::DirBuilderExt;

/// fsyncs a directory, so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Counts the files under `path` and their bytes, without following symlinks.
pub(super) fn tally(path: &Path) -> io::Result<(u64, u64)> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok((1, meta.len()));
    }
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(path)? {
        let (f, b) = tally(&entry?.path())?;
        files += f;
        bytes += b;
    }
    Ok((files, bytes))
}

/// The temporary directory next to the participant's, with `prefix`.
pub(super) fn staging_dir(data_dir: &Path, prefix: &str, participant: &ParticipantId) -> PathBuf {
    participants_dir(data_dir).join(format!("{prefix}{}", participant.as_str()))
}

/// Removes `dir` whole if it exists, adding what it held to `counts`.
pub(super) fn remove_counted(
    participant: &ParticipantId,
    dir: &Path,
    counts: &mut (u64, u64),
) -> Result<bool, StoreError> {
    let io = |op| io_error(participant, op, dir);
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("inspect")(e)),
        Ok(_) => {}
    }
    let (files, bytes) = tally(dir).map_err(io("inspect"))?;
    fs::remove_dir_all(dir).map_err(io("remove"))?;
    counts.0 += files;
    counts.1 += bytes;
    Ok(true)
}

/// The erasure staging directory of `participant`'s session files: `sessions/.forget-<id>`.
pub(super) fn sessions_staging(data_dir: &Path, participant: &ParticipantId) -> PathBuf {
    recorder::sessions_dir(data_dir).join(format!("{FORGET_PREFIX}{}", participant.as_str()))
}

/// Whether `participant` has session files (or an unfinished erasure of them).
pub(super) fn has_sessions(data_dir: &Path, participant: &ParticipantId) -> bool {
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    exists(&recorder::session_dir(data_dir, participant))
        || exists(&sessions_staging(data_dir, participant))
}

/// Deletes `sessions/<id>/` whole, crash-safely and idempotently: renames it to
/// `sessions/.forget-<id>`, fsyncs `sessions/`, removes that whole and fsyncs again (module
/// doc, "Erasure"). The recorder must have closed the participant's file first
/// (`RecorderHandle::close_participant`; the daemon does). Returns whether anything was there.
pub(super) fn remove_sessions(
    data_dir: &Path,
    participant: &ParticipantId,
    counts: &mut (u64, u64),
) -> Result<bool, StoreError> {
    let root = recorder::sessions_dir(data_dir);
    let dir = recorder::session_dir(data_dir, participant);
    let staging = sessions_staging(data_dir, participant);
    if !trust::check_dir(&root)? {
        return Ok(false);
    }
    trust::check_dir(&dir)?;
    trust::check_dir(&staging)?;
    let io = |op, path: &Path| io_error(participant, op, path);
    let mut any = false;
    if fs::symlink_metadata(&dir).is_ok() {
        remove_counted(participant, &staging, counts)?;
        fs::rename(&dir, &staging).map_err(io("rename", &dir))?;
        sync_dir(&root).map_err(io("fsync", &root))?;
        failpoint::hit("sessions.moved");
        any = true;
    }
    any |= remove_counted(participant, &staging, counts)?;
    failpoint::hit("sessions.removed");
    if any {
        sync_dir(&root).map_err(io("fsync", &root))?;
    }
    Ok(any)
}

/// Erases everything stored about `participant`: deletes `<data_dir>/participants/<id>/` whole
/// (and any unfinished temporary directory of that participant) and fsyncs `participants/`.
/// `at_unix_ms` is the time to put on the receipt (no clock is read here).
///
/// Refuses with [`StoreError::InUse`] while this process has the store open,
/// [`StoreError::Locked`] while another process has, and [`StoreError::UnknownParticipant`] if
/// there is nothing to erase.
pub fn forget(
    data_dir: &Path,
    participant: &ParticipantId,
    at_unix_ms: u64,
) -> Result<ForgetReceipt, StoreError> {
    let _busy = BusyGuard::acquire(data_dir, participant)?;
    let parent = participants_dir(data_dir);
    let dir = participant_dir(data_dir, participant);
    let forgetting = staging_dir(data_dir, FORGET_PREFIX, participant);
    let others = [
        staging_dir(data_dir, REWRITE_PREFIX, participant),
        staging_dir(data_dir, IMPORT_PREFIX, participant),
    ];
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    if !exists(&dir)
        && !exists(&forgetting)
        && !others.iter().any(|p| exists(p))
        && !has_sessions(data_dir, participant)
    {
        return Err(StoreError::UnknownParticipant {
            participant: participant.clone(),
            path: dir,
        });
    }
    let io = |op, path: &Path| io_error(participant, op, path);
    let mut counts = (0, 0);
    // A stale copy must go first, so that recovery can never bring it back.
    for d in &others {
        remove_counted(participant, d, &mut counts)?;
    }
    if exists(&dir) {
        let _lock = wait_unlocked(participant, &dir, RELEASE_WAIT)?;
        remove_counted(participant, &forgetting, &mut counts)?;
        fs::rename(&dir, &forgetting).map_err(io("rename", &dir))?;
        sync_dir(&parent).map_err(io("fsync", &parent))?;
        failpoint::hit("forget.moved");
    }
    remove_counted(participant, &forgetting, &mut counts)?;
    failpoint::hit("forget.removed");
    if exists(&parent) {
        sync_dir(&parent).map_err(io("fsync", &parent))?;
    }
    remove_sessions(data_dir, participant, &mut counts)?;
    Ok(ForgetReceipt {
        participant: participant.clone(),
        at_unix_ms,
        parts: Part::ALL.to_vec(),
        files_removed: counts.0,
        bytes_removed: counts.1,
    })
}

/// Erases some parts of a participant's data (a revoked `record` or `profile` consent) by
/// copying the rest into a fresh database and deleting the old one whole (module doc,
/// "Erasure"). The same refusals as [`forget`]. Erasing no part is a no-op with an empty receipt.
pub fn erase_parts(
    data_dir: &Path,
    participant: &ParticipantId,
    parts: &[Part],
    at_unix_ms: u64,
) -> Result<ForgetReceipt, StoreError> {
    let busy = BusyGuard::acquire(data_dir, participant)?;
    recover_one(data_dir, participant)?;
    let parent = participants_dir(data_dir);
    let dir = participant_dir(data_dir, participant);
    let rewrite = staging_dir(data_dir, REWRITE_PREFIX, participant);
    let forgetting = staging_dir(data_dir, FORGET_PREFIX, participant);
    let mut parts: Vec<Part> = parts.to_vec();
    parts.sort();
    parts.dedup();
    let mut receipt = ForgetReceipt {
        participant: participant.clone(),
        at_unix_ms,
        parts: parts.clone(),
        files_removed: 0,
        bytes_removed: 0,
    };
    let mut counts = (0, 0);
    // Session files are recordings too; they live outside the database (store::recorder).
    let sessions =
        parts.contains(&Part::Recordings) && remove_sessions(data_dir, participant, &mut counts)?;
    if !dir.join("db").is_file() {
        if sessions {
            receipt.files_removed = counts.0;
            receipt.bytes_removed = counts.1;
            return Ok(receipt);
        }
        return Err(StoreError::UnknownParticipant {
            participant: participant.clone(),
            path: dir,
        });
    }
    if parts.is_empty() {
        return Ok(receipt);
    }
    let io = |op, path: &Path| io_error(participant, op, path);
    remove_counted(participant, &rewrite, &mut counts)?;
    remove_counted(participant, &forgetting, &mut counts)?;
    DirBuilder::new()
        .mode(0o700)
        .create(&rewrite)
        .map_err(io("create", &rewrite))?;
    if let Err(e) = copy_kept(data_dir, participant, &dir, &rewrite, &parts) {
        let _ = fs::remove_dir_all(&rewrite);
        return Err(e);
    }
    sync_dir(&parent).map_err(io("fsync", &parent))?;
    failpoint::hit("erase_parts.copied");
    {
        let _lock = wait_unlocked(participant, &dir, RELEASE_WAIT)?;
        fs::rename(&dir, &forgetting).map_err(io("rename", &dir))?;
    }
    failpoint::hit("erase_parts.moved");
    fs::rename(&rewrite, &dir).map_err(io("rename", &rewrite))?;
    sync_dir(&parent).map_err(io("fsync", &parent))?;
    failpoint::hit("erase_parts.swapped");
    remove_counted(participant, &forgetting, &mut counts)?;
    failpoint::hit("erase_parts.removed");
    sync_dir(&parent).map_err(io("fsync", &parent))?;
    drop(busy);
    receipt.files_removed = counts.0;
    receipt.bytes_removed = counts.1;
    Ok(receipt)
}

/// Copies every part not in `erased` from the database at `from` into a new one at `to`.
fn copy_kept(
    data_dir: &Path,
    participant: &ParticipantId,
    from: &Path,
    to: &Path,
    erased: &[Part],
) -> Result<(), StoreError> {
    let old = ParticipantStore::open_dir(data_dir, participant, from.to_owned(), None)?;
    let new = ParticipantStore::open_dir(data_dir, participant, to.to_owned(), None)?;
    for part in Part::ALL.into_iter().filter(|p| !erased.contains(p)) {
        old.copy_tree_to(part, &new)?;
    }
    new.close()?;
    old.close()
}
