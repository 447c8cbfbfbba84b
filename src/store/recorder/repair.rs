//! Repair of session files that a crash (or a full disk) left without their `end` record
//! (module doc of `store::recorder`). Run on every open of the data directory
//! (`store::datadir`), while its lock is held, so no recorder is writing.
//!
//! A file is cut to the end of its last whole line that `recording::Reader` accepts (the
//! truncation never reorders or invents anything), then `{"type":"end","records":N,
//! "recovered":true,"reason":"crash"}` is appended and the file is fsynced. Every step is
//! idempotent: a file cut but not yet ended, or with half an `end` line, is simply repaired
//! again at the next open (crash points `repair.truncated`, `repair.ended`). A file whose
//! header line is incomplete holds no record; it is removed.

use super::{RecorderError, SESSION_SUFFIX, sessions_dir};
use crate::model::ParticipantId;
use crate::recording::{Reader, RecordingError, end_line};
use crate::store::participant::sync_dir;
use crate::store::{failpoint, trust};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What [`repair_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The file was complete.
    Complete,
    /// It was cut to `kept_bytes` and closed as recovered with `records` records.
    Repaired {
        /// Records kept.
        records: u64,
        /// Bytes of the file before the new `end` line.
        kept_bytes: u64,
        /// Bytes cut off.
        cut_bytes: u64,
    },
    /// Its header line was incomplete (no record in it): removed.
    Removed,
    /// Its header is not a valid recording header: left alone (not ours to cut).
    NotARecording(String),
}

/// A `BufRead` that counts what its user consumed.
struct Counting<R> {
    inner: R,
    consumed: u64,
}

impl<R: io::Read> io::Read for Counting<BufReader<R>> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.consumed += n as u64;
        Ok(n)
    }
}

impl<R: io::Read> BufRead for Counting<BufReader<R>> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// Repairs every session file of every participant under `<data_dir>/sessions/` (module doc).
/// Returns the files repaired or removed.
pub fn repair(data_dir: &Path) -> Result<Vec<(PathBuf, RepairOutcome)>, RecorderError> {
    let root = sessions_dir(data_dir);
    if !trust::check_dir(&root)? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let anyone = ParticipantId::new("sessions").map_err(|_| RecorderError::Stopped)?;
    let entries = fs::read_dir(&root).map_err(|e| RecorderError::io(&anyone, "list", &root, e))?;
    let mut dirs: Vec<(ParticipantId, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if name.starts_with('.') {
                return None;
            }
            Some((ParticipantId::new(&name).ok()?, e.path()))
        })
        .collect();
    dirs.sort();
    for (p, dir) in dirs {
        if !trust::check_dir(&dir)? {
            continue;
        }
        let entries = fs::read_dir(&dir).map_err(|e| RecorderError::io(&p, "list", &dir, e))?;
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(SESSION_SUFFIX) && !n.starts_with('.'))
            })
            .collect();
        files.sort();
        for path in files {
            let outcome =
                repair_file(&path).map_err(|e| RecorderError::io(&p, "repair", &path, e))?;
            match &outcome {
                RepairOutcome::Complete => {}
                RepairOutcome::NotARecording(why) => {
                    tracing::warn!(path = %path.display(), reason = %why, "Not a session file; left alone.");
                }
                _ => {
                    tracing::warn!(path = %path.display(), outcome = ?outcome, "Repaired a session file that was not finished.");
                    out.push((path, outcome));
                }
            }
        }
        sync_dir(&dir).map_err(|e| RecorderError::io(&p, "fsync", &dir, e))?;
    }
    Ok(out)
}

/// Where the last whole valid line of the file at `f` ends, and the records before it; `None`
/// if the file is complete; `Err(why)` if its header is unusable.
/// What [`scan`] found: `Ok(None)` complete, `Ok(Some((bytes, records)))` the valid prefix,
/// `Err((removable, why))` an unusable header (removable: it is incomplete or empty).
type Scan = Result<Option<(u64, u64)>, (bool, String)>;

fn scan(f: &File) -> io::Result<Scan> {
    let mut input = Counting {
        inner: BufReader::with_capacity(256 * 1024, f),
        consumed: 0,
    };
    let mut reader = match Reader::open(&mut input) {
        Ok(r) => r,
        Err(RecordingError::Io(e)) => return Err(e),
        Err(e @ (RecordingError::Truncated { .. } | RecordingError::Empty)) => {
            return Ok(Err((true, e.to_string())));
        }
        Err(e) => return Ok(Err((false, e.to_string()))),
    };
    // After the header: its line is consumed whole.
    let mut good = (reader.input_mut().consumed, 0);
    loop {
        match reader.next_record() {
            Ok(Some(_)) => good = (reader.input_mut().consumed, reader.records_read()),
            Ok(None) => return Ok(Ok(None)),
            Err(RecordingError::Io(e)) => return Err(e),
            Err(_) => return Ok(Ok(Some(good))),
        }
    }
}

/// Repairs one session file (module doc). Opened without following links.
pub fn repair_file(path: &Path) -> io::Result<RepairOutcome> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(trust::nofollow())
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Ok(RepairOutcome::NotARecording("not a regular file".into()));
    }
    let len = f.metadata()?.len();
    let (kept, records) = match scan(&f)? {
        Ok(None) => return Ok(RepairOutcome::Complete),
        Ok(Some(x)) => x,
        Err((true, _)) => {
            fs::remove_file(path)?;
            return Ok(RepairOutcome::Removed);
        }
        Err((false, why)) => return Ok(RepairOutcome::NotARecording(why)),
    };
    f.set_len(kept)?;
    f.sync_data()?;
    failpoint::hit("repair.truncated");
    let mut end = end_line(records, true, Some("crash"));
    if kept > 0 {
        // A last line that is whole JSON but lost its newline keeps it, and gets one.
        let mut last = [0u8];
        f.seek(SeekFrom::Start(kept - 1))?;
        io::Read::read_exact(&mut f, &mut last)?;
        if last[0] != b'\n' {
            end.insert(0, b'\n');
        }
    }
    f.seek(SeekFrom::Start(kept))?;
    f.write_all(&end)?;
    failpoint::hit("repair.ended");
    f.sync_all()?;
    Ok(RepairOutcome::Repaired {
        records,
        kept_bytes: kept,
        cut_bytes: len - kept,
    })
}
