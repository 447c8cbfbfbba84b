//! Export and import of everything held about one participant (edge): data portability, and the
//! way back after `forget`.
//!
//! # Layout: `attune-export`, version 1
//!
//! A new directory (mode 0700; files mode 0600, each fsynced), never inside the data directory
//! (refused: `forget` would not find it). All text is UTF-8 with `\n` line ends; every line,
//! including the last, ends with `\n`; a file with no entries is empty (`profile.json`: `{}`).
//!
//! | file | content |
//! |---|---|
//! | `manifest.json` | written last, pretty-printed: `{"format": "attune-export", "version": 1, "participant": "p01", "counts": {...}, "files": [{"path": ..., "bytes": ..., "sha256": ...}, ...]}`. `counts` has `consent_events`, `profile_entries`, `feature_rows`, `feedback_entries`, `recordings`. `files` lists every other file, sorted by path (`/`-separated, relative), with its size in bytes and its SHA-256 in lowercase hex. |
//! | `consent_history.jsonl` | the participant's consent events as the caller (the ledger) gave them, one compact JSON value per line, in order |
//! | `profile.json` | one pretty-printed JSON object: profile entry name → value, sorted by name |
//! | `features.csv` | header `t_s,hr_bpm,rmssd_ms,scl_us,scr_per_min,hr_source`, then one row per feature frame in time order. `t_s`: tick time in s with exactly three decimals (whole ms, exact). Features in their units (bpm, ms, µS, 1/min) written with Rust's shortest round-trip formatting (`72.5`, `1e-7`), so they parse back bit for bit; an empty cell where the window had no value. `hr_source`: the stream HR came from (`rr` or `hr`). |
//! | `feedback.jsonl` | one line per feedback entry in order: `{"seq":0,"feedback":<the stored JSON>}` |
//! | `recordings/<name>.attune.ndjson` | each recording exactly as stored: recording format v1 (`docs/recording-format.md`) |
//! | `sessions/<name>.attune.ndjson` | each finished live session file (`store::recorder`) byte for byte; a session still being recorded (no `end` yet) is left out. `counts.sessions` counts them (absent, 0, in older exports). |
//!
//! Nothing in an export depends on the time or the machine it was made on: the same stored data
//! always gives the same bytes, so export → forget → import → export gives identical files.
//!
//! # Import
//!
//! [`import`] refuses a directory without an `attune-export` manifest
//! ([`StoreError::NotAnExport`]), a version other than [`EXPORT_VERSION`]
//! ([`StoreError::UnsupportedExportVersion`]), any listed file whose size or SHA-256 differs
//! ([`StoreError::ChecksumMismatch`]), content that does not parse or does not match the counts
//! ([`StoreError::BadExport`]), recordings of another participant, and a participant that
//! already has a store ([`StoreError::AlreadyExists`]). It checks everything before it writes
//! anything, builds the store in `participants/.import-<id>/` and renames it into place, so a
//! failed import leaves nothing behind. Files not listed in the manifest are ignored.
//! The consent history is handed back to the caller: the ledger, not this module, owns consent.
//! **Session files are verified (size, SHA-256, readable whole as recordings) but not brought
//! back:** the participant's store and `sessions/<id>/` are separate directories, and no single
//! rename can put both in place, so storing them would break whole-or-nothing. The import
//! reports how many it left out (`ImportSummary::counts.sessions`).
//!
//! The export is read once ([`VerifiedExport::read`]): `manifest.json` and every listed file
//! must be regular files (a FIFO, a device or a directory is refused without being read, and
//! never blocks), the manifest at most [`MAX_MANIFEST_BYTES`], each listed file at most one byte
//! more than its listed size. What is checked and what is stored are the same bytes in memory.
//!
//! # Consent an import needs
//!
//! [`VerifiedExport::needs`] says what the ledger must grant, at the time of the import, for
//! each non-empty part; `attune import` refuses the whole import (stores nothing) unless all of
//! it is granted, so export → forget → import → export stays the identity:
//!
//! | part | needs |
//! |---|---|
//! | recordings, feature rows | `record` for every stream kind they hold: each recording's header streams; for a feature row, `hr_source` (for `hr_bpm`), `rr` (`rmssd_ms`), `eda` (`scl_us`, `scr_per_min`), for each value present |
//! | profile entries | `profile` for every stream kind (a profile does not say which streams it came from, and revoking `profile` for any kind erases it whole) |
//! | feedback entries | `process` for at least one stream kind |
//!
//! A revocation of `record` or `profile` for any one kind erases the whole part, so data stored
//! under these rules is erased as soon as any consent it needed is revoked.
//!
//! Files: this module writes exports ([`export`], [`features_csv`]); `import` reads and
//! verifies them ([`VerifiedExport`], [`import()`]).

mod import;
#[cfg(test)]
mod tests;

pub use import::{ImportNeed, VerifiedExport, import};

use super::participant::{
    self, BusyGuard, FeatureRow, IMPORT_PREFIX, ParticipantStore, StoreError, check_name, io_error,
    participant_dir, participants_dir, sync_dir,
};
use crate::consent::Purpose;
use crate::model::{ALL_KINDS, ParticipantId, StreamKind};
use crate::recording::Reader;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The `format` of every export manifest.
pub const EXPORT_FORMAT: &str = "attune-export";
/// The layout version this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;
/// The header line of `features.csv`.
pub const FEATURES_CSV_HEADER: &str = "t_s,hr_bpm,rmssd_ms,scl_us,scr_per_min,hr_source";
/// The largest manifest [`import`] reads, bytes.
pub const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

const MANIFEST: &str = "manifest.json";
const CONSENT: &str = "consent_history.jsonl";
const PROFILE: &str = "profile.json";
const FEATURES: &str = "features.csv";
const FEEDBACK: &str = "feedback.jsonl";
const RECORDINGS_DIR: &str = "recordings";
const SESSIONS_DIR: &str = "sessions";
const RECORDING_SUFFIX: &str = ".attune.ndjson";

/// How many entries of each kind an export holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportCounts {
    /// Lines of `consent_history.jsonl`.
    pub consent_events: u64,
    /// Entries of `profile.json`.
    pub profile_entries: u64,
    /// Rows of `features.csv`.
    pub feature_rows: u64,
    /// Lines of `feedback.jsonl`.
    pub feedback_entries: u64,
    /// Files under `recordings/`.
    pub recordings: u64,
    /// Files under `sessions/` (absent in exports made before session files existed).
    #[serde(default)]
    pub sessions: u64,
}

/// One file of an export as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFile {
    /// Path relative to the export directory, `/`-separated.
    pub path: String,
    /// Size, bytes.
    pub bytes: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    version: u32,
    participant: ParticipantId,
    counts: ExportCounts,
    files: Vec<ExportFile>,
}

/// What [`export`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSummary {
    /// Whose data.
    pub participant: ParticipantId,
    /// The export directory.
    pub dir: PathBuf,
    /// Entries per kind.
    pub counts: ExportCounts,
    /// Every file but the manifest, as the manifest lists them.
    pub files: Vec<ExportFile>,
}

/// What [`import`] restored.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// Whose data.
    pub participant: ParticipantId,
    /// Entries per kind.
    pub counts: ExportCounts,
    /// The consent history of the export, for the caller's ledger (not stored here).
    pub consent_history: Vec<serde_json::Value>,
}

/// Exports everything stored about `participant`, plus the `consent_history` the caller gives,
/// into the new directory `out_dir` (module doc, "Layout"). Opens the participant's store for
/// the duration; with the store already open, use [`export_store`].
pub fn export(
    data_dir: &Path,
    participant: &ParticipantId,
    consent_history: &[serde_json::Value],
    out_dir: &Path,
) -> Result<ExportSummary, StoreError> {
    // A participant recorded live but never given a store (no features, profile or feedback)
    // has only session files: an empty store is made for them, so that the export holds the
    // sessions and the consent history like any other.
    let store = match ParticipantStore::open_existing(data_dir, participant) {
        Err(StoreError::UnknownParticipant { .. })
            if crate::store::recorder::has_sessions(data_dir, participant) =>
        {
            ParticipantStore::open(data_dir, participant)?
        }
        other => other?,
    };
    let summary = export_store(&store, consent_history, out_dir);
    let closed = store.close();
    let summary = summary?;
    closed?;
    Ok(summary)
}

/// [`export`] from an open store.
pub fn export_store(
    store: &ParticipantStore,
    consent_history: &[serde_json::Value],
    out_dir: &Path,
) -> Result<ExportSummary, StoreError> {
    let participant = store.participant().clone();
    let (files, counts) = render(store, consent_history)?;
    let io = |op, path: &Path| io_error(&participant, op, path);
    if fs::symlink_metadata(out_dir).is_ok() {
        return Err(StoreError::OutDirExists {
            path: out_dir.to_owned(),
        });
    }
    if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(out_dir)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => StoreError::OutDirExists {
                path: out_dir.to_owned(),
            },
            _ => io("create", out_dir)(e),
        })?;
    let inside = match (
        fs::canonicalize(out_dir),
        fs::canonicalize(store.data_dir()),
    ) {
        (Ok(out), Ok(data)) => out.starts_with(data),
        (Err(e), _) => {
            let _ = fs::remove_dir(out_dir);
            return Err(io("resolve", out_dir)(e));
        }
        (_, Err(e)) => {
            let _ = fs::remove_dir(out_dir);
            return Err(io("resolve", store.data_dir())(e));
        }
    };
    if inside {
        let _ = fs::remove_dir(out_dir);
        return Err(StoreError::ExportInsideDataDir {
            path: out_dir.to_owned(),
            data_dir: store.data_dir().to_owned(),
        });
    }
    let written = write_all(out_dir, &participant, &files, counts);
    match written {
        Ok(listed) => Ok(ExportSummary {
            participant,
            dir: out_dir.to_owned(),
            counts,
            files: listed,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(out_dir);
            Err(e)
        }
    }
}

/// A file's path relative to the export directory, and its content.
type NamedBytes = (String, Vec<u8>);

/// Every file but the manifest, with its content, sorted by path; and the counts.
fn render(
    store: &ParticipantStore,
    consent_history: &[serde_json::Value],
) -> Result<(Vec<NamedBytes>, ExportCounts), StoreError> {
    let participant = store.participant();
    let json_err = |file: &str, e: serde_json::Error| StoreError::Corrupt {
        participant: participant.clone(),
        path: store.path().to_owned(),
        tree: "export",
        key: file.to_owned(),
        message: e.to_string(),
    };
    let mut files = Vec::new();

    let mut consent = Vec::new();
    for event in consent_history {
        serde_json::to_writer(&mut consent, event).map_err(|e| json_err(CONSENT, e))?;
        consent.push(b'\n');
    }
    files.push((CONSENT.to_owned(), consent));

    let entries = store.profile_entries()?;
    let profile: serde_json::Map<String, serde_json::Value> = entries.iter().cloned().collect();
    let mut profile_bytes =
        serde_json::to_vec_pretty(&profile).map_err(|e| json_err(PROFILE, e))?;
    profile_bytes.push(b'\n');
    files.push((PROFILE.to_owned(), profile_bytes));

    let rows = store.feature_rows()?;
    files.push((FEATURES.to_owned(), features_csv(&rows)));

    let feedback = store.feedback_entries()?;
    let mut feedback_bytes = Vec::new();
    for (seq, value) in &feedback {
        let line = FeedbackLine {
            seq: *seq,
            feedback: value.clone(),
        };
        serde_json::to_writer(&mut feedback_bytes, &line).map_err(|e| json_err(FEEDBACK, e))?;
        feedback_bytes.push(b'\n');
    }
    files.push((FEEDBACK.to_owned(), feedback_bytes));

    let names = store.recording_names()?;
    for name in &names {
        let bytes = store.recording(name)?.ok_or_else(|| StoreError::Corrupt {
            participant: participant.clone(),
            path: store.path().to_owned(),
            tree: "recordings",
            key: name.clone(),
            message: "listed but not readable".into(),
        })?;
        files.push((recording_path(name), bytes));
    }
    let sessions = session_files(store)?;
    let session_count = sessions.len() as u64;
    files.extend(sessions);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let counts = ExportCounts {
        consent_events: consent_history.len() as u64,
        profile_entries: entries.len() as u64,
        feature_rows: rows.len() as u64,
        feedback_entries: feedback.len() as u64,
        recordings: names.len() as u64,
        sessions: session_count,
    };
    Ok((files, counts))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackLine {
    seq: u64,
    feedback: serde_json::Value,
}

/// The participant's finished session files (`store::recorder`), as `sessions/<name>.attune.ndjson`
/// with their bytes: read without following links and checked whole with the recording reader.
/// A file without its `end` record (a session a running daemon is still recording) is left out.
fn session_files(store: &ParticipantStore) -> Result<Vec<NamedBytes>, StoreError> {
    let participant = store.participant();
    let list = crate::store::recorder::list_sessions(store.data_dir(), Some(participant), true)
        .map_err(|e| io_error(participant, "list", store.data_dir())(io::Error::other(e)))?;
    let mut out = Vec::new();
    for entry in list.into_iter().filter(|e| !e.open && e.problem.is_none()) {
        let bytes = crate::store::trust::read_nofollow(&entry.path).map_err(io_error(
            participant,
            "read",
            &entry.path,
        ))?;
        let mut reader =
            Reader::open(bytes.as_slice()).map_err(|e| session_corrupt(store, &entry.id, e))?;
        while reader
            .next_record()
            .map_err(|e| session_corrupt(store, &entry.id, e))?
            .is_some()
        {}
        out.push((
            format!("{SESSIONS_DIR}/{}{RECORDING_SUFFIX}", entry.id),
            bytes,
        ));
    }
    Ok(out)
}

fn session_corrupt(
    store: &ParticipantStore,
    name: &str,
    e: crate::recording::RecordingError,
) -> StoreError {
    StoreError::Corrupt {
        participant: store.participant().clone(),
        path: crate::store::recorder::session_dir(store.data_dir(), store.participant()),
        tree: "sessions",
        key: name.to_owned(),
        message: e.to_string(),
    }
}

fn recording_path(name: &str) -> String {
    format!("{RECORDINGS_DIR}/{name}{RECORDING_SUFFIX}")
}

/// `features.csv` for these rows (module doc).
pub fn features_csv(rows: &[FeatureRow]) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(64 * (rows.len() + 1));
    s.push_str(FEATURES_CSV_HEADER);
    s.push('\n');
    for r in rows {
        let _ = write!(s, "{}.{:03}", r.t_ms / 1000, r.t_ms % 1000);
        for v in r.values() {
            s.push(',');
            if let Some(v) = v.filter(|v| v.is_finite()) {
                let _ = write!(s, "{v:?}");
            }
        }
        s.push(',');
        s.push_str(r.hr_source.name());
        s.push('\n');
    }
    s.into_bytes()
}

/// Parses `features.csv`; errors carry the 1-based line number.
pub fn parse_features_csv(text: &str) -> Result<Vec<FeatureRow>, (usize, String)> {
    let mut lines = text.split_terminator('\n').enumerate();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err((
            text.lines().count(),
            "the last line does not end with \\n".into(),
        ));
    }
    match lines.next() {
        Some((_, h)) if h == FEATURES_CSV_HEADER => {}
        _ => return Err((1, format!("the header must be {FEATURES_CSV_HEADER:?}"))),
    }
    let mut rows: Vec<FeatureRow> = Vec::new();
    for (i, line) in lines {
        let n = i + 1;
        let cells: Vec<&str> = line.split(',').collect();
        let [t, hr, rmssd, scl, scr, src] = cells[..] else {
            return Err((n, format!("expected 6 cells, found {}", cells.len())));
        };
        let t_ms = parse_t_ms(t).ok_or_else(|| {
            (
                n,
                format!("t_s {t:?} is not seconds with exactly three decimals"),
            )
        })?;
        if rows.last().is_some_and(|r| r.t_ms >= t_ms) {
            return Err((n, "rows must be in strictly increasing time order".into()));
        }
        let value = |s: &str| -> Result<Option<f64>, (usize, String)> {
            if s.is_empty() {
                return Ok(None);
            }
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(Some(v)),
                _ => Err((n, format!("{s:?} is not a finite number"))),
            }
        };
        let hr_source: StreamKind = src.parse().map_err(|e| (n, format!("hr_source: {e}")))?;
        rows.push(FeatureRow {
            t_ms,
            hr_bpm: value(hr)?,
            rmssd_ms: value(rmssd)?,
            scl_us: value(scl)?,
            scr_per_min: value(scr)?,
            hr_source,
        });
    }
    Ok(rows)
}

fn parse_t_ms(t: &str) -> Option<u64> {
    let (s, ms) = t.split_once('.')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(s) || ms.len() != 3 || !digits(ms) || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    let t_ms = s
        .parse::<u64>()
        .ok()?
        .checked_mul(1000)?
        .checked_add(ms.parse().ok()?)?;
    (t_ms <= participant::MAX_T_MS).then_some(t_ms)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes the files and then the manifest into the (new, empty) `dir`; returns the listing.
fn write_all(
    dir: &Path,
    participant: &ParticipantId,
    files: &[NamedBytes],
    counts: ExportCounts,
) -> Result<Vec<ExportFile>, StoreError> {
    let io = |op, path: &Path| io_error(participant, op, path);
    let recordings = dir.join(RECORDINGS_DIR);
    DirBuilder::new()
        .mode(0o700)
        .create(&recordings)
        .map_err(io("create", &recordings))?;
    if counts.sessions > 0 {
        let sessions = dir.join(SESSIONS_DIR);
        DirBuilder::new()
            .mode(0o700)
            .create(&sessions)
            .map_err(io("create", &sessions))?;
    }
    let mut listed = Vec::with_capacity(files.len());
    for (rel, bytes) in files {
        let path = dir.join(rel);
        write_file(&path, bytes).map_err(io("write", &path))?;
        listed.push(ExportFile {
            path: rel.clone(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        });
    }
    sync_dir(&recordings).map_err(io("fsync", &recordings))?;
    if counts.sessions > 0 {
        let sessions = dir.join(SESSIONS_DIR);
        sync_dir(&sessions).map_err(io("fsync", &sessions))?;
    }
    let manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        participant: participant.clone(),
        counts,
        files: listed.clone(),
    };
    let path = dir.join(MANIFEST);
    let mut bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| io("encode", &path)(io::Error::other(e)))?;
    bytes.push(b'\n');
    write_file(&path, &bytes).map_err(io("write", &path))?;
    sync_dir(dir).map_err(io("fsync", dir))?;
    Ok(listed)
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
