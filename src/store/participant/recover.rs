//! Recovery of directory operations a crash interrupted ([`recover`]).

use super::*;
use erase::{remove_counted, staging_dir};
use std::collections::BTreeSet;

/// Finishes or undoes what a crash interrupted, for every participant (module doc, "Erasure"):
/// their database directories, and interrupted erasures of their session files
/// (`sessions/.forget-<id>`). Call at startup before opening stores. Returns the participants
/// whose directories it touched.
pub fn recover(data_dir: &Path) -> Result<Vec<ParticipantId>, StoreError> {
    crate::store::trust::check_dir(&participants_dir(data_dir))?;
    let mut touched = recover_sessions(data_dir)?;
    let mut more = recover_stores(data_dir)?;
    touched.append(&mut more);
    touched.sort();
    touched.dedup();
    Ok(touched)
}

/// Removes every `sessions/.forget-<id>` left by an interrupted erasure.
fn recover_sessions(data_dir: &Path) -> Result<Vec<ParticipantId>, StoreError> {
    let root = crate::store::recorder::sessions_dir(data_dir);
    if !crate::store::trust::check_dir(&root)? {
        return Ok(Vec::new());
    }
    let Some(entries) = read_dir_if_any(&root)? else {
        return Ok(Vec::new());
    };
    let mut touched = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_prefix(FORGET_PREFIX)) else {
            continue;
        };
        let Ok(p) = ParticipantId::new(id) else {
            continue;
        };
        let staging = erase::sessions_staging(data_dir, &p);
        crate::store::trust::check_dir(&staging)?;
        let mut counts = (0, 0);
        if remove_counted(&p, &staging, &mut counts)? {
            sync_dir(&root).map_err(|e| io_error(&p, "fsync", &root)(e))?;
            touched.push(p);
        }
    }
    Ok(touched)
}

/// Recovery of the database directories.
fn recover_stores(data_dir: &Path) -> Result<Vec<ParticipantId>, StoreError> {
    let Some(entries) = read_dir_if_any(&participants_dir(data_dir))? else {
        return Ok(Vec::new());
    };
    let mut ids = BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        for prefix in [FORGET_PREFIX, REWRITE_PREFIX, IMPORT_PREFIX] {
            if let Some(id) = name.strip_prefix(prefix)
                && let Ok(p) = ParticipantId::new(id)
                && !id.starts_with('.')
            {
                ids.insert(p);
            }
        }
    }
    let mut touched = Vec::new();
    for p in ids {
        let _busy = BusyGuard::acquire(data_dir, &p)?;
        if recover_one(data_dir, &p)? {
            touched.push(p);
        }
    }
    Ok(touched)
}

/// Recovery for one participant; the caller holds its busy mark. Returns whether it did anything.
pub(crate) fn recover_one(
    data_dir: &Path,
    participant: &ParticipantId,
) -> Result<bool, StoreError> {
    let dir = participant_dir(data_dir, participant);
    let rewrite = staging_dir(data_dir, REWRITE_PREFIX, participant);
    let forgetting = staging_dir(data_dir, FORGET_PREFIX, participant);
    let import = staging_dir(data_dir, IMPORT_PREFIX, participant);
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    if !exists(&rewrite) && !exists(&forgetting) && !exists(&import) {
        return Ok(false);
    }
    let parent = participants_dir(data_dir);
    let io = |op, path: &Path| io_error(participant, op, path);
    if !exists(&dir) && exists(&rewrite) && exists(&forgetting) {
        // erase_parts stopped between its two renames: the copy is complete.
        fs::rename(&rewrite, &dir).map_err(io("rename", &rewrite))?;
        sync_dir(&parent).map_err(io("fsync", &parent))?;
    }
    let mut counts = (0, 0);
    for d in [&forgetting, &rewrite, &import] {
        remove_counted(participant, d, &mut counts)?;
    }
    sync_dir(&parent).map_err(io("fsync", &parent))?;
    Ok(true)
}
