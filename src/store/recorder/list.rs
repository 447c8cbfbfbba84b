//! Listing session files (`attune sessions`) without loading them: each file's header and first
//! record are read from the start, its duration and `end` from a window at its tail.

use super::{RecorderError, SESSION_SUFFIX, session_dir, sessions_dir};
use crate::model::ParticipantId;
use crate::recording::Reader;
use crate::store::trust;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The largest tail window read to find the last record, bytes.
const MAX_TAIL_BYTES: u64 = 16 * 1024 * 1024;

/// One session file as `attune sessions` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionEntry {
    /// The session's name (file name without `.attune.ndjson`).
    pub id: String,
    /// Whose.
    pub participant: String,
    /// The file.
    pub path: PathBuf,
    /// Wall-clock start, Unix ms (the header's `session.started_unix_ms`), if known.
    pub started_unix_ms: Option<i64>,
    /// Last record's `host_t` minus the first's, s.
    pub duration_s: Option<f64>,
    /// Stream kinds in the header.
    pub streams: Vec<String>,
    /// File size.
    pub bytes: u64,
    /// The file was repaired after a crash.
    pub recovered: bool,
    /// The file has no `end` yet and a daemon holds the data directory: being recorded.
    pub open: bool,
    /// Why the file could not be read, if it could not.
    pub problem: Option<String>,
}

/// The session files of `participant` (or of everyone), sorted by participant and name.
/// `daemon_running`: a file without `end` is being written (`open`), not broken.
pub fn list_sessions(
    data_dir: &Path,
    participant: Option<&ParticipantId>,
    daemon_running: bool,
) -> Result<Vec<SessionEntry>, RecorderError> {
    let root = sessions_dir(data_dir);
    if !trust::check_dir(&root)? {
        return Ok(Vec::new());
    }
    let dirs: Vec<(String, PathBuf)> = match participant {
        Some(p) => vec![(p.as_str().to_owned(), session_dir(data_dir, p))],
        None => {
            let mut v: Vec<(String, PathBuf)> = fs::read_dir(&root)
                .map_err(|e| list_err(&root, e))?
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    (!name.starts_with('.')).then(|| (name, e.path()))
                })
                .collect();
            v.sort();
            v
        }
    };
    let mut out = Vec::new();
    for (p, dir) in dirs {
        if !trust::check_dir(&dir)? {
            continue;
        }
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| list_err(&dir, e))?
            .flatten()
            .map(|e| e.path())
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SESSION_SUFFIX) && !n.starts_with('.'))
            })
            .collect();
        files.sort();
        for f in files {
            out.push(describe(&p, &f, daemon_running));
        }
    }
    // By participant, then start; `20261201T122000Z` before its `-2`.
    out.sort_by(|a, b| {
        (&a.participant, a.started_unix_ms, a.id.len(), &a.id).cmp(&(
            &b.participant,
            b.started_unix_ms,
            b.id.len(),
            &b.id,
        ))
    });
    Ok(out)
}

fn list_err(path: &Path, e: std::io::Error) -> RecorderError {
    RecorderError::Untrusted(trust::UntrustedPath::Io {
        op: "list",
        path: path.to_owned(),
        source: e,
    })
}

/// One file's entry; a file that cannot be read gets its `problem`.
fn describe(participant: &str, path: &Path, daemon_running: bool) -> SessionEntry {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .trim_end_matches(SESSION_SUFFIX)
        .to_owned();
    let mut e = SessionEntry {
        id: name,
        participant: participant.to_owned(),
        path: path.to_owned(),
        started_unix_ms: None,
        duration_s: None,
        streams: Vec::new(),
        bytes: 0,
        recovered: false,
        open: false,
        problem: None,
    };
    if let Err(why) = fill(&mut e, path, daemon_running) {
        e.problem = Some(why);
    }
    e
}

fn fill(e: &mut SessionEntry, path: &Path, daemon_running: bool) -> Result<(), String> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(trust::nofollow() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|x| x.to_string())?;
    let meta = f.metadata().map_err(|x| x.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    e.bytes = meta.len();
    let mut reader = Reader::open(BufReader::new(&f)).map_err(|x| x.to_string())?;
    e.streams = reader
        .header()
        .streams
        .iter()
        .map(|s| s.kind.clone())
        .collect();
    e.started_unix_ms = reader.session().map(|s| s.started_unix_ms);
    // The first record's host time (reading on stops at the first record).
    let first = reader.next_record().ok().flatten().map(|r| r.host_t());
    let (last, end) = tail(&f, e.bytes)?;
    match end {
        Some(recovered) => e.recovered = recovered,
        None if daemon_running => e.open = true,
        None => {
            return Err("no end record (repaired at the next open of the data directory)".into());
        }
    }
    if let (Some(a), Some(b)) = (first, last) {
        e.duration_s = Some((b - a).max(0.0));
    }
    Ok(())
}

/// From the end of the file: the last record's `host_t`, and whether an `end` record closes it
/// (`Some(recovered)`).
fn tail(mut f: &File, len: u64) -> Result<(Option<f64>, Option<bool>), String> {
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        f.seek(SeekFrom::Start(start)).map_err(|x| x.to_string())?;
        let mut buf = Vec::new();
        f.take(window)
            .read_to_end(&mut buf)
            .map_err(|x| x.to_string())?;
        let mut lines: Vec<&[u8]> = buf.split(|b| *b == b'\n').collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // partial first line of the window
        }
        let mut end = None;
        for line in lines.iter().rev() {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if v["type"] == "end" {
                end = Some(v["recovered"].as_bool().unwrap_or(false));
                continue;
            }
            if let Some(t) = v["host_t"].as_f64() {
                return Ok((Some(t), end));
            }
        }
        if start == 0 || window >= MAX_TAIL_BYTES {
            return Ok((None, end));
        }
        window *= 4;
    }
}
