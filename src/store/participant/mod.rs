//! Per-participant storage (edge): one sled database per participant, so that erasure can delete
//! it whole. Split by job: `trees` ([`ParticipantStore`]), `erase` ([`forget`],
//! [`erase_parts`]), `recover` ([`recover`]), `busy` (who may touch a directory), `error`.
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
//!   finishes a swap that had begun and deletes an unfinished copy; `store::datadir` repeats
//!   the erasure when the ledger says it is still owed (an intent without its receipt).
//! - **Session files** (`store::recorder`, `<data_dir>/sessions/<id>/`) are recordings
//!   too: [`forget`], and [`erase_parts`] of [`Part::Recordings`], rename `sessions/<id>` to
//!   `sessions/.forget-<id>`, fsync `sessions/`, remove it whole and fsync again; the step is
//!   idempotent, so the data directory's re-run of an owed erasure finishes it, and
//!   [`recover`] removes a leftover `.forget-` directory. The receipt counts their files.
//!   [`has_data`] and `forget`'s "unknown participant" check count them; `erase_parts` of
//!   recordings succeeds for a participant who has session files but no database.
//! - An import builds the store in `participants/.import-<id>` and renames it into place;
//!   [`recover`] deletes an unfinished one. `forget` deletes all of these temporary directories
//!   of the participant too, whatever state they are in.
//!
//! **Links and owners.** Every operation on a participant ([`ParticipantStore::open`],
//! [`forget`], [`erase_parts`], [`recover`], import) first checks the data directory,
//! `participants/`, the participant's directory and its temporary directories
//! (`store::trust`): a symbolic link among them is refused, never followed, and so is one
//! that another user owns or that a group or other user can write. `remove_dir_all` does not
//! follow links inside what it deletes; these checks keep the path leading to it ours.
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
//! detected through sled's lock on its `db` file and refused with [`StoreError::Locked`].
//! Erasures are run only by the data directory's owner (`store::datadir::DataDir`, held by the
//! daemon or by a command when no daemon runs), which records the intent in the ledger first,
//! so that a refused or interrupted erasure is finished later rather than forgotten. [`ParticipantStore::close`]
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

mod busy;
mod erase;
mod error;
mod recover;
mod trees;

pub(crate) use busy::BusyGuard;
pub use busy::RELEASE_WAIT;
use busy::wait_unlocked;
pub(crate) use erase::sync_dir;
pub use erase::{erase_parts, forget};
pub use error::StoreError;
pub(crate) use error::io_error;
use error::sled_error;
pub use recover::recover;
pub(crate) use recover::recover_one;
pub use trees::ParticipantStore;

use crate::features::{FEATURE_SOURCES, FeatureFrame};
use crate::model::{ParticipantId, StreamKind};
use crate::store::trust;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
            beats_corrected: None,
            spectral: crate::features::SpectralFrame::default(),
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

/// Checks the part of the data directory's tree a participant's operation goes through
/// (`store::trust`): the data directory, `participants/`, the participant's directory and its
/// temporary directories, those that exist. None may be a symbolic link (inside the data
/// directory links are refused, never followed), and each must be ours without group or
/// other write bits.
pub(crate) fn check_tree(data_dir: &Path, participant: &ParticipantId) -> Result<(), StoreError> {
    trust::check_data_dir(data_dir)?;
    trust::check_dir(&participants_dir(data_dir))?;
    trust::check_dir(&participant_dir(data_dir, participant))?;
    for prefix in [FORGET_PREFIX, REWRITE_PREFIX, IMPORT_PREFIX] {
        trust::check_dir(&erase::staging_dir(data_dir, prefix, participant))?;
    }
    trust::check_dir(&crate::store::recorder::sessions_dir(data_dir))?;
    trust::check_dir(&crate::store::recorder::session_dir(data_dir, participant))?;
    trust::check_dir(&erase::sessions_staging(data_dir, participant))?;
    Ok(())
}

/// Whether anything of `participant` is stored: its directory, or a temporary one of its
/// (an interrupted erasure, rewrite or import), or session files (`store::recorder`).
pub fn has_data(data_dir: &Path, participant: &ParticipantId) -> bool {
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    erase::has_sessions(data_dir, participant)
        || exists(&participant_dir(data_dir, participant))
        || [FORGET_PREFIX, REWRITE_PREFIX, IMPORT_PREFIX]
            .iter()
            .any(|prefix| exists(&erase::staging_dir(data_dir, prefix, participant)))
}

/// The participants that have a store, sorted. An absent data directory has none.
pub fn list_participants(data_dir: &Path) -> Result<Vec<ParticipantId>, StoreError> {
    let dir = participants_dir(data_dir);
    trust::check_dir(&dir)?;
    let Some(entries) = read_dir_if_any(&dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(list_error(&dir))?;
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

/// The entries of the directory `dir` of the data directory, or `None` if it does not exist.
fn read_dir_if_any(dir: &Path) -> Result<Option<fs::ReadDir>, StoreError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(list_error(dir)(e)),
    }
}

/// A `map_err` adapter: the [`StoreError::DataDir`] of failing to list `dir`.
fn list_error(dir: &Path) -> impl FnOnce(io::Error) -> StoreError + use<> {
    let path = dir.to_owned();
    move |source| StoreError::DataDir {
        op: "list",
        path,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use busy::lock_db;

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
            beats_corrected: None,
            spectral: Default::default(),
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

    #[test]
    fn symlinked_participant_directories_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("p01")).unwrap();
        std::fs::write(elsewhere.join("p01/keep"), b"x").unwrap();
        let p = pid("p01");
        ParticipantStore::open(&data, &p).unwrap().close().unwrap();
        // The participant's own directory replaced by a link.
        std::fs::remove_dir_all(participant_dir(&data, &p)).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("p01"), participant_dir(&data, &p)).unwrap();
        let e = forget(&data, &p, 1).unwrap_err();
        assert!(matches!(e, StoreError::Untrusted(_)), "{e}");
        assert!(ParticipantStore::open(&data, &p).is_err());
        assert!(erase_parts(&data, &p, &[Part::Profile], 1).is_err());
        // `participants/` replaced by a link.
        std::fs::remove_dir_all(participants_dir(&data)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, participants_dir(&data)).unwrap();
        let e = forget(&data, &p, 1).unwrap_err().to_string();
        assert!(e.contains("symbolic link") && !e.contains('\n'), "{e}");
        assert!(recover(&data).is_err());
        assert!(list_participants(&data).is_err());
        assert!(elsewhere.join("p01/keep").exists());
    }
}
