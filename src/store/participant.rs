//! Per-participant storage (edge): one sled database per participant, so that erasure can delete
//! it whole.
//!
//! # Layout
//!
//! `<data_dir>/participants/<participant id>/` (created with mode 0700) is one sled 0.34 database
//! with four trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `recordings` | recording name (UTF-8), a `0x00` byte, part index (u32 big-endian, from 0) | up to [`RECORDING_PART_BYTES`] of the recording's bytes (recording format v1, `docs/recording-format.md`); the parts concatenated in key order are the recording byte for byte |
//! | `features` | tick time, ms since the session start (u64 big-endian, so keys sort by time) | a [`FeatureRow`] as JSON |
//! | `profile` | entry name (UTF-8) | any JSON value, compact |
//! | `feedback` | sequence number (u64 big-endian, from 0) | any JSON value, compact (e.g. a protocol v1 `feedback` message) |
//!
//! Recordings are stored whole (validated with the recording reader, and refused if their header
//! names another participant) but split into parts, so that no sled value grows with the length
//! of a session: sled 0.34 writes a page larger than a quarter segment (128 KiB) as a separate
//! blob file and rewrites pages whole. Recording and profile names are 1–128 bytes of ASCII
//! letters, digits, `.`, `-` or `_`, not starting with `.`; a recording's name becomes a file
//! name in exports. Feature times are whole milliseconds (a 4 Hz tick is exact); values are
//! finite or absent, since JSON has no NaN.
//!
//! # Erasure
//!
//! sled does not physically remove deleted keys: their bytes stay in its files until it happens
//! to reuse the space (RELIABILITY.md, "Erasure"). So this module offers no per-key removal at
//! all, and erases by deleting directories whole:
//!
//! - [`forget`] renames the participant's directory to `participants/.forget-<id>`, fsyncs
//!   `participants/`, removes that directory whole and fsyncs `participants/` again. The rename
//!   makes the participant vanish atomically; a crash before the removal ends leaves only a
//!   `.forget-` directory, which [`recover`] (and the next `forget` or `open` of that participant)
//!   removes. The [`ForgetReceipt`] holds ids, a time and counts, no health data.
//! - [`erase_parts`] (a revoked `record` or `profile` consent) copies the trees that stay into a
//!   fresh database in `participants/.rewrite-<id>`, closes it, swaps the two directories by
//!   rename and deletes the old one whole, with the same fsyncs. After a crash, [`recover`]
//!   finishes a swap that had begun and deletes an unfinished copy; the caller repeats the
//!   erasure when its ledger says it is still owed.
//! - An import builds the store in `participants/.import-<id>` and renames it into place;
//!   [`recover`] deletes an unfinished one. `forget` deletes all of these temporary directories
//!   of the participant too, whatever state they are in.
//!
//! Directory names starting with `.` are this module's: participant ids starting with `.`
//! (including `.` and `..`, which [`ParticipantId`] accepts) are refused with
//! [`StoreError::ReservedId`] before any path is built from them.
//!
//! **What callers must ensure.** Erasure needs every handle on the database closed (sled closes
//! when the last handle drops). Within this process that is enforced: a [`ParticipantStore`] is
//! the only handle there is, it registers itself in a process-wide table while open, and
//! `forget`, `erase_parts` and `import` refuse with [`StoreError::InUse`] while it is open (and
//! opening refuses while they run). Another process holding the database (a running daemon) is
//! detected through sled's lock on its `db` file and refused with [`StoreError::Locked`]; the
//! CLI should then send the command to the daemon through its control socket, and the daemon
//! closes the participant's store (ends its session) before erasing. [`ParticipantStore::close`]
//! returns only once sled's lock on `db` is free (measured: sled's I/O threads can hold the file
//! about 1 ms after the last handle drops), and opening and erasing retry a held lock for up to
//! [`RELEASE_WAIT`] before reporting `Locked`. Exports are written where
//! the caller says, never inside the data directory (refused), so `forget` has nothing else to
//! find.
//!
//! The limit to state to users: this removes what the filesystem shows. Blocks freed by an unlink
//! can survive on the device (SSD wear levelling, journals) until overwritten; full-disk
//! encryption covers that, attune cannot.
//!
//! sled keeps at most [`CACHE_CAPACITY_BYTES`] of cache per open database and runs one flusher
//! thread per database (every 500 ms), so open a participant's store only while it is in use.

use crate::features::{FEATURE_SOURCES, FeatureFrame};
use crate::model::{ParticipantId, StreamKind};
use crate::recording::{Reader, RecordingError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The directory under the data directory that holds one database per participant.
pub const PARTICIPANTS_DIR: &str = "participants";
/// sled's page cache per open participant database, bytes (sled's default is 1 GiB).
pub const CACHE_CAPACITY_BYTES: u64 = 8 * 1024 * 1024;
/// The largest part a recording is split into, bytes.
pub const RECORDING_PART_BYTES: usize = 64 * 1024;
/// The longest recording or profile name, bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Tree names, in the order exports list them.
pub const TREES: [&str; 4] = ["recordings", "features", "profile", "feedback"];

/// Prefixes of the temporary directories next to a participant's directory.
const FORGET_PREFIX: &str = ".forget-";
const REWRITE_PREFIX: &str = ".rewrite-";
pub(crate) const IMPORT_PREFIX: &str = ".import-";

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

/// Which parts of a participant's data an erasure covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Recordings (consent purpose `record`).
    Recordings,
    /// Feature frames (consent purpose `record`).
    Features,
    /// Baseline profile entries (consent purpose `profile`).
    Profile,
    /// Feedback ratings.
    Feedback,
}

impl Part {
    /// Every part, in tree order.
    pub const ALL: [Part; 4] = [
        Part::Recordings,
        Part::Features,
        Part::Profile,
        Part::Feedback,
    ];

    /// The tree that holds this part.
    pub fn tree(self) -> &'static str {
        match self {
            Part::Recordings => TREES[0],
            Part::Features => TREES[1],
            Part::Profile => TREES[2],
            Part::Feedback => TREES[3],
        }
    }
}

/// Proof that a participant's data was erased: ids, a time and counts, no health data.
/// The caller writes it to the daemon-level ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgetReceipt {
    /// Whose data.
    pub participant: ParticipantId,
    /// When, Unix time in ms, as given by the caller.
    pub at_unix_ms: u64,
    /// What was erased ([`Part::ALL`] for `forget`).
    pub parts: Vec<Part>,
    /// Files deleted (the whole database directory, and any unfinished temporary one).
    pub files_removed: u64,
    /// Their total size, bytes.
    pub bytes_removed: u64,
}

/// One feature frame as stored: tick time in whole ms and the four features of
/// [`crate::features::FEATURE_NAMES`]. `None` where the window lacked data. The sources of
/// `rmssd_ms`, `scl_us` and `scr_per_min` are fixed ([`FEATURE_SOURCES`]); HR's is stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRow {
    /// Tick time, ms since the session start (the key).
    pub t_ms: u64,
    /// Heart rate, bpm.
    pub hr_bpm: Option<f64>,
    /// RMSSD, ms.
    pub rmssd_ms: Option<f64>,
    /// Skin conductance level, µS.
    pub scl_us: Option<f64>,
    /// SCR rate, 1/min.
    pub scr_per_min: Option<f64>,
    /// The stream `hr_bpm` came from: `rr` or `hr`.
    pub hr_source: StreamKind,
}

/// The largest tick time a key holds exactly as an f64 of seconds, ms (2^53).
pub const MAX_T_MS: u64 = 1 << 53;

impl FeatureRow {
    /// The stored row of `frame`: time rounded to whole ms; NaN and infinities become `None`.
    /// Refuses a time that is negative, not finite or past [`MAX_T_MS`], and sources other
    /// than [`FEATURE_SOURCES`] (except HR's).
    pub fn from_frame(frame: &FeatureFrame) -> Result<Self, &'static str> {
        let t_ms = frame.t * 1000.0;
        if !(t_ms.is_finite() && t_ms >= 0.0 && t_ms.round() <= MAX_T_MS as f64) {
            return Err("the time must be finite and in [0, 2^53) ms");
        }
        if frame.sources[1..] != FEATURE_SOURCES[1..] {
            return Err("only hr_bpm may come from a stream other than the standard one");
        }
        let v = |i: usize| frame.values[i].filter(|x| x.is_finite());
        Ok(Self {
            t_ms: t_ms.round() as u64,
            hr_bpm: v(0),
            rmssd_ms: v(1),
            scl_us: v(2),
            scr_per_min: v(3),
            hr_source: frame.sources[0],
        })
    }

    /// The frame again (time in s).
    pub fn to_frame(&self) -> FeatureFrame {
        let mut sources = FEATURE_SOURCES;
        sources[0] = self.hr_source;
        FeatureFrame {
            t: self.t_ms as f64 / 1000.0,
            values: self.values(),
            sources,
        }
    }

    /// The same row with NaN and infinite values as `None`.
    pub fn normalized(&self) -> Self {
        let f = |v: Option<f64>| v.filter(|x| x.is_finite());
        Self {
            hr_bpm: f(self.hr_bpm),
            rmssd_ms: f(self.rmssd_ms),
            scl_us: f(self.scl_us),
            scr_per_min: f(self.scr_per_min),
            ..*self
        }
    }

    /// The values in [`crate::features::FEATURE_NAMES`] order.
    pub fn values(&self) -> [Option<f64>; 4] {
        [self.hr_bpm, self.rmssd_ms, self.scl_us, self.scr_per_min]
    }
}

/// Checks a recording or profile name (see the module doc).
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err("use 1-128 bytes");
    }
    if name.starts_with('.') {
        return Err("a name may not start with '.'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("use ASCII letters, digits, '-', '_' or '.'");
    }
    Ok(())
}

/// `<data_dir>/participants`.
pub fn participants_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(PARTICIPANTS_DIR)
}

/// `<data_dir>/participants/<id>`.
pub fn participant_dir(data_dir: &Path, participant: &ParticipantId) -> PathBuf {
    participants_dir(data_dir).join(participant.as_str())
}

/// The participants that have a store, sorted. An absent data directory has none.
pub fn list_participants(data_dir: &Path) -> Result<Vec<ParticipantId>, StoreError> {
    let dir = participants_dir(data_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::DataDir {
                op: "list",
                path: dir,
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::DataDir {
            op: "list",
            path: dir.clone(),
            source,
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || !entry.path().is_dir() {
            continue;
        }
        if let Ok(p) = ParticipantId::new(name) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Participant directories that this process has open or is erasing or importing.
static BUSY: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Marks a participant's directory busy in this process until dropped.
#[derive(Debug)]
pub(crate) struct BusyGuard {
    key: PathBuf,
}

impl BusyGuard {
    /// Marks `participant` busy, or refuses with [`StoreError::InUse`].
    pub(crate) fn acquire(
        data_dir: &Path,
        participant: &ParticipantId,
    ) -> Result<Self, StoreError> {
        check_id(participant)?;
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
fn resolve(path: &Path) -> PathBuf {
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
fn check_id(participant: &ParticipantId) -> Result<(), StoreError> {
    if participant.as_str().starts_with('.') {
        Err(StoreError::ReservedId {
            participant: participant.clone(),
        })
    } else {
        Ok(())
    }
}

/// One participant's open database. The only handle there is: dropping it (or [`close`]) closes
/// sled's database. See the module doc for the layout.
///
/// [`close`]: ParticipantStore::close
pub struct ParticipantStore {
    participant: ParticipantId,
    data_dir: PathBuf,
    path: PathBuf,
    db: sled::Db,
    recordings: sled::Tree,
    features: sled::Tree,
    profile: sled::Tree,
    feedback: sled::Tree,
    /// Declared last: released after the database handles above have dropped.
    _busy: Option<BusyGuard>,
}

impl std::fmt::Debug for ParticipantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantStore")
            .field("participant", &self.participant)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ParticipantStore {
    /// Opens the participant's store, creating it (directories mode 0700) if absent.
    pub fn open(data_dir: &Path, participant: &ParticipantId) -> Result<Self, StoreError> {
        let busy = BusyGuard::acquire(data_dir, participant)?;
        recover_one(data_dir, participant)?;
        let path = participant_dir(data_dir, participant);
        if !path.is_dir() {
            let io = |source| StoreError::Io {
                participant: participant.clone(),
                op: "create",
                path: path.clone(),
                source,
            };
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(io)?;
            sync_dir(&participants_dir(data_dir)).map_err(io)?;
        }
        Self::open_dir(data_dir, participant, path, Some(busy))
    }

    /// Opens the participant's existing store; [`StoreError::UnknownParticipant`] if there is none.
    pub fn open_existing(data_dir: &Path, participant: &ParticipantId) -> Result<Self, StoreError> {
        let busy = BusyGuard::acquire(data_dir, participant)?;
        recover_one(data_dir, participant)?;
        let path = participant_dir(data_dir, participant);
        if !path.join("db").is_file() {
            return Err(StoreError::UnknownParticipant {
                participant: participant.clone(),
                path,
            });
        }
        Self::open_dir(data_dir, participant, path, Some(busy))
    }

    /// Opens a database at `path` (which exists). The caller holds the busy mark when `busy` is None.
    pub(crate) fn open_dir(
        data_dir: &Path,
        participant: &ParticipantId,
        path: PathBuf,
        busy: Option<BusyGuard>,
    ) -> Result<Self, StoreError> {
        let sled_err = |source: sled::Error| sled_error(participant, &path, source);
        let start = Instant::now();
        let db = loop {
            let opened = sled::Config::new()
                .path(&path)
                .cache_capacity(CACHE_CAPACITY_BYTES)
                .open();
            match opened.map_err(sled_err) {
                Ok(db) => break db,
                Err(StoreError::Locked { .. }) if start.elapsed() < RELEASE_WAIT => {
                    std::thread::sleep(LOCK_POLL);
                }
                Err(e) => return Err(e),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let (recordings, features, profile, feedback) = (
            tree(TREES[0])?,
            tree(TREES[1])?,
            tree(TREES[2])?,
            tree(TREES[3])?,
        );
        Ok(Self {
            participant: participant.clone(),
            data_dir: data_dir.to_owned(),
            path,
            db,
            recordings,
            features,
            profile,
            feedback,
            _busy: busy,
        })
    }

    /// Whose store this is.
    pub fn participant(&self) -> &ParticipantId {
        &self.participant
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data directory the store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Writes everything to disk (sled's flush ends in `fsync`).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(drop).map_err(|e| self.sled_err(e))
    }

    /// Flushes and closes the database. Once this returns, no handle on it is left: sled's
    /// background threads can hold its files for a moment after the last handle drops, so this
    /// waits (up to [`RELEASE_WAIT`]) until sled's lock on the database is free.
    pub fn close(self) -> Result<(), StoreError> {
        self.flush()?;
        let Self {
            participant,
            path,
            db,
            recordings,
            features,
            profile,
            feedback,
            _busy,
            ..
        } = self;
        drop((recordings, features, profile, feedback, db));
        wait_unlocked(&participant, &path, RELEASE_WAIT).map(drop)
    }

    // ---- recordings ----

    /// Stores a whole recording under `name`, replacing one of that name. The bytes must be a
    /// valid recording format v1 file of this participant.
    pub fn put_recording(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.check_name("recording", name)?;
        let bad = |source| StoreError::BadRecording {
            participant: self.participant.clone(),
            name: name.to_owned(),
            source,
        };
        let mut reader = Reader::open(bytes).map_err(bad)?;
        while reader.next_record().map_err(bad)?.is_some() {}
        if reader.header().participant != self.participant {
            return Err(StoreError::WrongParticipant {
                participant: self.participant.clone(),
                name: name.to_owned(),
                found: reader.header().participant.clone(),
            });
        }
        let mut batch = sled::Batch::default();
        for old in self.recordings.scan_prefix(part_prefix(name)).keys() {
            batch.remove(old.map_err(|e| self.sled_err(e))?);
        }
        for (i, part) in bytes.chunks(RECORDING_PART_BYTES).enumerate() {
            let i = u32::try_from(i).map_err(|_| StoreError::BadRecording {
                participant: self.participant.clone(),
                name: name.to_owned(),
                source: RecordingError::Io(io::Error::other("recording too large")),
            })?;
            batch.insert(part_key(name, i), part);
        }
        self.recordings
            .apply_batch(batch)
            .map_err(|e| self.sled_err(e))
    }

    /// The bytes of recording `name`, or `None`.
    pub fn recording(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check_name("recording", name)?;
        let mut out = Vec::new();
        let mut expected = 0u32;
        for item in self.recordings.scan_prefix(part_prefix(name)) {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let index = k
                .get(name.len() + 1..)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes);
            if index != Some(expected) {
                return Err(self.corrupt(
                    "recordings",
                    format!("{name:?} part {expected}"),
                    "a part is missing or has a malformed key".into(),
                ));
            }
            expected += 1;
            out.extend_from_slice(&v);
        }
        Ok((expected > 0).then_some(out))
    }

    /// The names of the stored recordings, sorted by their bytes.
    pub fn recording_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names: Vec<String> = Vec::new();
        for k in self.recordings.iter().keys() {
            let k = k.map_err(|e| self.sled_err(e))?;
            let name = k
                .iter()
                .position(|&b| b == 0)
                .and_then(|i| std::str::from_utf8(&k[..i]).ok())
                .ok_or_else(|| {
                    self.corrupt(
                        "recordings",
                        String::from_utf8_lossy(&k).into_owned(),
                        "malformed key".into(),
                    )
                })?;
            if names.last().map(String::as_str) != Some(name) {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    // ---- features ----

    /// Stores a feature frame under its tick time in ms (replacing one at that ms); returns the key.
    pub fn put_features(&self, frame: &FeatureFrame) -> Result<u64, StoreError> {
        let row = FeatureRow::from_frame(frame).map_err(|reason| StoreError::BadFeatures {
            participant: self.participant.clone(),
            t_s: frame.t,
            reason,
        })?;
        self.put_feature_row(&row)?;
        Ok(row.t_ms)
    }

    /// Stores a row as it is (non-finite values become `None`).
    pub fn put_feature_row(&self, row: &FeatureRow) -> Result<(), StoreError> {
        if row.t_ms > MAX_T_MS {
            return Err(StoreError::BadFeatures {
                participant: self.participant.clone(),
                t_s: row.t_ms as f64 / 1000.0,
                reason: "the time must be below 2^53 ms",
            });
        }
        let row = row.normalized();
        let json = serde_json::to_vec(&row)
            .map_err(|e| self.corrupt("features", row.t_ms.to_string(), e.to_string()))?;
        self.features
            .insert(row.t_ms.to_be_bytes(), json)
            .map(drop)
            .map_err(|e| self.sled_err(e))
    }

    /// The row at tick time `t_ms`, or `None`.
    pub fn feature_row(&self, t_ms: u64) -> Result<Option<FeatureRow>, StoreError> {
        let v = self
            .features
            .get(t_ms.to_be_bytes())
            .map_err(|e| self.sled_err(e))?;
        v.map(|v| self.decode_row(&t_ms.to_be_bytes(), &v))
            .transpose()
    }

    /// Every row, by time.
    pub fn feature_rows(&self) -> Result<Vec<FeatureRow>, StoreError> {
        self.features
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                self.decode_row(&k, &v)
            })
            .collect()
    }

    fn decode_row(&self, k: &[u8], v: &[u8]) -> Result<FeatureRow, StoreError> {
        let key = <[u8; 8]>::try_from(k).ok().map(u64::from_be_bytes);
        let row: FeatureRow = serde_json::from_slice(v)
            .map_err(|e| self.corrupt("features", format!("{key:?}"), e.to_string()))?;
        if key != Some(row.t_ms) {
            return Err(self.corrupt(
                "features",
                format!("{key:?}"),
                format!("key does not match t_ms {}", row.t_ms),
            ));
        }
        Ok(row)
    }

    // ---- profile ----

    /// Stores profile entry `name` (replacing one of that name).
    pub fn put_profile(&self, name: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.check_name("profile entry", name)?;
        let json = serde_json::to_vec(value)
            .map_err(|e| self.corrupt("profile", name.to_owned(), e.to_string()))?;
        self.profile
            .insert(name.as_bytes(), json)
            .map(drop)
            .map_err(|e| self.sled_err(e))
    }

    /// Profile entry `name`, or `None`.
    pub fn profile(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.check_name("profile entry", name)?;
        let v = self
            .profile
            .get(name.as_bytes())
            .map_err(|e| self.sled_err(e))?;
        v.map(|v| {
            serde_json::from_slice(&v)
                .map_err(|e| self.corrupt("profile", name.to_owned(), e.to_string()))
        })
        .transpose()
    }

    /// Every profile entry, sorted by name.
    pub fn profile_entries(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.profile
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                let key = String::from_utf8_lossy(&k).into_owned();
                let value = serde_json::from_slice(&v)
                    .map_err(|e| self.corrupt("profile", key.clone(), e.to_string()))?;
                Ok((key, value))
            })
            .collect()
    }

    // ---- feedback ----

    /// Appends a feedback entry with the next sequence number (0 for the first); returns it.
    /// Safe to call from several threads.
    pub fn append_feedback(&self, value: &serde_json::Value) -> Result<u64, StoreError> {
        let json = self.feedback_json(value)?;
        loop {
            let next = match self.feedback.last().map_err(|e| self.sled_err(e))? {
                None => 0,
                Some((k, _)) => self.feedback_seq(&k)?.saturating_add(1),
            };
            let swapped = self
                .feedback
                .compare_and_swap(next.to_be_bytes(), None::<&[u8]>, Some(json.as_slice()))
                .map_err(|e| self.sled_err(e))?;
            if swapped.is_ok() {
                return Ok(next);
            }
        }
    }

    /// Stores feedback entry `seq` (replacing one with that number).
    pub fn put_feedback(&self, seq: u64, value: &serde_json::Value) -> Result<(), StoreError> {
        let json = self.feedback_json(value)?;
        self.feedback
            .insert(seq.to_be_bytes(), json)
            .map(drop)
            .map_err(|e| self.sled_err(e))
    }

    /// Feedback entry `seq`, or `None`.
    pub fn feedback(&self, seq: u64) -> Result<Option<serde_json::Value>, StoreError> {
        let v = self
            .feedback
            .get(seq.to_be_bytes())
            .map_err(|e| self.sled_err(e))?;
        v.map(|v| {
            serde_json::from_slice(&v)
                .map_err(|e| self.corrupt("feedback", seq.to_string(), e.to_string()))
        })
        .transpose()
    }

    /// Every feedback entry with its sequence number, in order.
    pub fn feedback_entries(&self) -> Result<Vec<(u64, serde_json::Value)>, StoreError> {
        self.feedback
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.sled_err(e))?;
                let seq = self.feedback_seq(&k)?;
                let value = serde_json::from_slice(&v)
                    .map_err(|e| self.corrupt("feedback", seq.to_string(), e.to_string()))?;
                Ok((seq, value))
            })
            .collect()
    }

    fn feedback_json(&self, value: &serde_json::Value) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value).map_err(|e| self.corrupt("feedback", "new".into(), e.to_string()))
    }

    fn feedback_seq(&self, k: &[u8]) -> Result<u64, StoreError> {
        <[u8; 8]>::try_from(k)
            .map(u64::from_be_bytes)
            .map_err(|_| self.corrupt("feedback", format!("{k:?}"), "malformed key".into()))
    }

    // ---- raw copies (erase_parts) ----

    fn tree(&self, part: Part) -> &sled::Tree {
        match part {
            Part::Recordings => &self.recordings,
            Part::Features => &self.features,
            Part::Profile => &self.profile,
            Part::Feedback => &self.feedback,
        }
    }

    fn copy_tree_to(&self, part: Part, to: &ParticipantStore) -> Result<(), StoreError> {
        for item in self.tree(part).iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            to.tree(part).insert(k, v).map_err(|e| to.sled_err(e))?;
        }
        Ok(())
    }

    // ---- errors ----

    fn check_name(&self, what: &'static str, name: &str) -> Result<(), StoreError> {
        check_name(name).map_err(|reason| StoreError::BadName {
            participant: self.participant.clone(),
            what,
            name: name.to_owned(),
            reason,
        })
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        sled_error(&self.participant, &self.path, source)
    }

    fn corrupt(&self, tree: &'static str, key: String, message: String) -> StoreError {
        StoreError::Corrupt {
            participant: self.participant.clone(),
            path: self.path.clone(),
            tree,
            key,
            message,
        }
    }
}

fn part_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

fn part_key(name: &str, index: u32) -> Vec<u8> {
    let mut k = part_prefix(name);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn sled_error(participant: &ParticipantId, path: &Path, source: sled::Error) -> StoreError {
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

/// fsyncs a directory, so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Counts the files under `path` and their bytes, without following symlinks.
fn tally(path: &Path) -> io::Result<(u64, u64)> {
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
fn staging_dir(data_dir: &Path, prefix: &str, participant: &ParticipantId) -> PathBuf {
    participants_dir(data_dir).join(format!("{prefix}{}", participant.as_str()))
}

/// Removes `dir` whole if it exists, adding what it held to `counts`.
fn remove_counted(
    participant: &ParticipantId,
    dir: &Path,
    counts: &mut (u64, u64),
) -> Result<bool, StoreError> {
    let io = |op, source| StoreError::Io {
        participant: participant.clone(),
        op,
        path: dir.to_owned(),
        source,
    };
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io("inspect", e)),
        Ok(_) => {}
    }
    let (files, bytes) = tally(dir).map_err(|e| io("inspect", e))?;
    fs::remove_dir_all(dir).map_err(|e| io("remove", e))?;
    counts.0 += files;
    counts.1 += bytes;
    Ok(true)
}

/// How long closing waits for sled's threads to release a database, and how long opening and
/// erasing wait for a lock that may be on its way to release before reporting
/// [`StoreError::Locked`].
pub const RELEASE_WAIT: Duration = Duration::from_secs(1);
const LOCK_POLL: Duration = Duration::from_millis(1);

/// [`lock_db`], retried until `wait` has passed.
fn wait_unlocked(
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
fn lock_db(participant: &ParticipantId, dir: &Path) -> Result<Option<File>, StoreError> {
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
    if !exists(&dir) && !exists(&forgetting) && !others.iter().any(|p| exists(p)) {
        return Err(StoreError::UnknownParticipant {
            participant: participant.clone(),
            path: dir,
        });
    }
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io {
            participant: participant.clone(),
            op,
            path,
            source,
        }
    };
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
    }
    remove_counted(participant, &forgetting, &mut counts)?;
    sync_dir(&parent).map_err(io("fsync", &parent))?;
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
    if !dir.join("db").is_file() {
        return Err(StoreError::UnknownParticipant {
            participant: participant.clone(),
            path: dir,
        });
    }
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
    if parts.is_empty() {
        return Ok(receipt);
    }
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io {
            participant: participant.clone(),
            op,
            path,
            source,
        }
    };
    let mut counts = (0, 0);
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
    {
        let _lock = wait_unlocked(participant, &dir, RELEASE_WAIT)?;
        fs::rename(&dir, &forgetting).map_err(io("rename", &dir))?;
    }
    fs::rename(&rewrite, &dir).map_err(io("rename", &rewrite))?;
    sync_dir(&parent).map_err(io("fsync", &parent))?;
    remove_counted(participant, &forgetting, &mut counts)?;
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

/// Finishes or undoes what a crash interrupted, for every participant (module doc, "Erasure").
/// Call at startup before opening stores. Returns the participants whose directories it touched.
pub fn recover(data_dir: &Path) -> Result<Vec<ParticipantId>, StoreError> {
    let dir = participants_dir(data_dir);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::DataDir {
                op: "list",
                path: dir,
                source,
            });
        }
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
    let io = |op, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io {
            participant: participant.clone(),
            op,
            path,
            source,
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("session-1.v2_a").is_ok());
        for bad in ["", ".hidden", "..", "a/b", "a\0b", "é", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dot_ids_are_refused_before_touching_paths() {
        // The id type itself refuses them (model.rs); the store's own check stays as a second
        // layer for ids that reach it some other way.
        for id in ["..", ".", ".forget-p01"] {
            assert!(ParticipantId::new(id).is_err(), "{id}");
        }
    }

    #[test]
    fn a_second_open_in_this_process_is_refused_until_close() {
        let dir = tempfile::tempdir().unwrap();
        let p = pid("p01");
        let s = ParticipantStore::open(dir.path(), &p).unwrap();
        let err = ParticipantStore::open(dir.path(), &p).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        let err = forget(dir.path(), &p, 0).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        s.close().unwrap();
        ParticipantStore::open(dir.path(), &p)
            .unwrap()
            .close()
            .unwrap();
    }

    #[test]
    fn one_directory_gets_one_busy_key_however_it_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let p = pid("p01");
        let data = dir.path().join("data");
        let _held = BusyGuard::acquire(&data, &p).unwrap(); // before it exists
        std::fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("link")).unwrap();
        for spelled in [
            dir.path().join("data").join("..").join("data"),
            dir.path().join("link"),
        ] {
            let err = BusyGuard::acquire(&spelled, &p).unwrap_err();
            assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        }
    }

    #[test]
    fn feature_rows_round_trip_frames() {
        let f = FeatureFrame {
            t: 12.25,
            values: [Some(71.5), None, Some(f64::NAN), Some(2.0)],
            sources: [
                StreamKind::Hr,
                StreamKind::Rr,
                StreamKind::Eda,
                StreamKind::Eda,
            ],
        };
        let row = FeatureRow::from_frame(&f).unwrap();
        assert_eq!(row.t_ms, 12_250);
        assert_eq!(row.scl_us, None);
        let back = row.to_frame();
        assert_eq!(back.t, 12.25);
        assert_eq!(back.sources, f.sources);
        assert_eq!(back.values, [Some(71.5), None, None, Some(2.0)]);
        let neg = FeatureFrame { t: -1.0, ..f };
        assert!(FeatureRow::from_frame(&neg).is_err());
    }

    #[test]
    fn feedback_sequence_numbers_count_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let s = ParticipantStore::open(dir.path(), &pid("p01")).unwrap();
        let v = serde_json::json!({"rating": "right"});
        assert_eq!(s.append_feedback(&v).unwrap(), 0);
        assert_eq!(s.append_feedback(&v).unwrap(), 1);
        s.put_feedback(10, &v).unwrap();
        assert_eq!(s.append_feedback(&v).unwrap(), 11);
        assert_eq!(s.feedback(1).unwrap(), Some(v));
        assert_eq!(s.feedback_entries().unwrap().len(), 4);
    }

    #[test]
    fn the_lock_is_free_as_soon_as_close_returns() {
        let dir = tempfile::tempdir().unwrap();
        let p = pid("p01");
        for i in 0..20 {
            let s = ParticipantStore::open(dir.path(), &p).unwrap();
            s.put_profile("x", &serde_json::json!(i)).unwrap();
            s.close().unwrap();
            let lock = lock_db(&p, &participant_dir(dir.path(), &p)).unwrap();
            assert!(lock.is_some());
        }
    }
}
