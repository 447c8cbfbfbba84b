//! Why a participant's store could not be used ([`StoreError`]).

use crate::model::ParticipantId;
use crate::recording::RecordingError;
use std::io;
use std::path::{Path, PathBuf};

/// Why a participant's store could not be used. Every variant names the participant or the
/// path it concerns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("participant {participant}: cannot {op} {path}: {source}")]
    Io {
        /// Whose data.
        participant: ParticipantId,
        /// What was being done (`create`, `remove`, `read`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file-system operation on the data directory itself failed.
    #[error("data directory: cannot {op} {path}: {source}")]
    DataDir {
        /// What was being done.
        op: &'static str,
        /// The directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A directory of the data directory's tree is a symbolic link, or not ours alone
    /// (`store::trust`).
    #[error(transparent)]
    Untrusted(#[from] crate::store::trust::UntrustedPath),
    /// sled failed.
    #[error("participant {participant}: database {path}: {source}")]
    Sled {
        /// Whose database.
        participant: ParticipantId,
        /// Its directory.
        path: PathBuf,
        /// The error.
        source: sled::Error,
    },
    /// The participant has no store.
    #[error("participant {participant} has no data in this data directory (no {path})")]
    UnknownParticipant {
        /// Who.
        participant: ParticipantId,
        /// The directory that does not exist.
        path: PathBuf,
    },
    /// The participant already has a store (import refuses to merge or overwrite).
    #[error(
        "participant {participant} already has data at {path}; forget it first or import elsewhere"
    )]
    AlreadyExists {
        /// Who.
        participant: ParticipantId,
        /// The existing directory.
        path: PathBuf,
    },
    /// This process holds the participant's store open, or is erasing or importing it.
    #[error(
        "participant {participant}: the store {path} is open or busy in this process; close it first"
    )]
    InUse {
        /// Who.
        participant: ParticipantId,
        /// The directory.
        path: PathBuf,
    },
    /// Another process holds the participant's database.
    #[error(
        "participant {participant}: the store {path} is in use by another process (a running daemon?)"
    )]
    Locked {
        /// Who.
        participant: ParticipantId,
        /// The directory.
        path: PathBuf,
    },
    /// The id cannot name a directory (`.`/`..`, or a leading `.`, which temporary directories use).
    #[error("participant id {participant:?} cannot be stored: ids starting with '.' are reserved")]
    ReservedId {
        /// The id.
        participant: ParticipantId,
    },
    /// A stored entry does not decode.
    #[error("participant {participant}: {tree} entry {key} in {path} is unreadable: {message}")]
    Corrupt {
        /// Whose database.
        participant: ParticipantId,
        /// Its directory.
        path: PathBuf,
        /// The tree.
        tree: &'static str,
        /// The key, printable.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A recording or profile name is not allowed.
    #[error("participant {participant}: {what} name {name:?} is invalid: {reason}")]
    BadName {
        /// Whose data.
        participant: ParticipantId,
        /// `recording` or `profile entry`.
        what: &'static str,
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The bytes given as a recording are not a valid recording format v1 file.
    #[error(
        "participant {participant}: recording {name:?} is not a valid attune recording: {source}"
    )]
    BadRecording {
        /// Whose store.
        participant: ParticipantId,
        /// The recording name.
        name: String,
        /// The reader's error.
        source: RecordingError,
    },
    /// A recording's header names another participant.
    #[error(
        "participant {participant}: recording {name:?} belongs to participant {found}, not to this store"
    )]
    WrongParticipant {
        /// Whose store.
        participant: ParticipantId,
        /// The recording name.
        name: String,
        /// The participant in the recording's header.
        found: ParticipantId,
    },
    /// A feature frame cannot be stored.
    #[error("participant {participant}: feature frame at t = {t_s} s cannot be stored: {reason}")]
    BadFeatures {
        /// Whose store.
        participant: ParticipantId,
        /// The frame time, s.
        t_s: f64,
        /// Why.
        reason: &'static str,
    },
    /// A path given as an export directory already exists.
    #[error("export directory {path} already exists; give a new directory")]
    OutDirExists {
        /// The path.
        path: PathBuf,
    },
    /// An export directory inside the data directory would escape erasure.
    #[error(
        "export directory {path} is inside the data directory {data_dir}; write exports elsewhere"
    )]
    ExportInsideDataDir {
        /// The export directory.
        path: PathBuf,
        /// The data directory.
        data_dir: PathBuf,
    },
    /// The directory is not an attune export.
    #[error("{path} is not an attune export: {message}")]
    NotAnExport {
        /// The export directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The export has a format version this build cannot read.
    #[error(
        "{path}: attune export format version {found} is not supported (this build reads version {supported})"
    )]
    UnsupportedExportVersion {
        /// The export directory.
        path: PathBuf,
        /// The version in its manifest.
        found: u64,
        /// The version this build reads.
        supported: u32,
    },
    /// A file of an export does not match the checksum its manifest gives.
    #[error(
        "export {path}: {file} does not match its sha256 in manifest.json (the export was changed after it was written): expected {expected}, found {found}"
    )]
    ChecksumMismatch {
        /// The export directory.
        path: PathBuf,
        /// The file, relative to the export directory.
        file: String,
        /// The manifest's sha256, hex.
        expected: String,
        /// The file's sha256, hex.
        found: String,
    },
    /// An export file has the right checksum but the wrong content.
    #[error("export {path}: {file}: {message}")]
    BadExport {
        /// The export directory.
        path: PathBuf,
        /// The file (with `:line` where one applies).
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// A `map_err` adapter: the [`StoreError::Io`] of `participant` failing to `op` `path`.
pub(crate) fn io_error(
    participant: &ParticipantId,
    op: &'static str,
    path: &Path,
) -> impl FnOnce(io::Error) -> StoreError + use<> {
    let (participant, path) = (participant.clone(), path.to_owned());
    move |source| StoreError::Io {
        participant,
        op,
        path,
        source,
    }
}

pub(super) fn sled_error(
    participant: &ParticipantId,
    path: &Path,
    source: sled::Error,
) -> StoreError {
    match &source {
        sled::Error::Io(e) if e.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                participant: participant.clone(),
                path: path.to_owned(),
            }
        }
        _ => StoreError::Sled {
            participant: participant.clone(),
            path: path.to_owned(),
            source,
        },
    }
}
