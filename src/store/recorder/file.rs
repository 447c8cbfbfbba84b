//! One session file being written (module doc of `store::recorder`): created private and
//! without following links, buffered, flushed to the kernel on the writer thread's timer,
//! fsynced at close and every [`FSYNC_EVERY`].

use super::{RecorderError, session_dir, sessions_dir};
use crate::model::{Chunk, Gap, ParticipantId, StreamKind};
use crate::recording::{Header, Marker, SessionInfo, StateRecord, StreamSpec, Writer, end_line};
use crate::store::{failpoint, participant::sync_dir, trust};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The suffix of every session file.
pub const SESSION_SUFFIX: &str = ".attune.ndjson";
/// The longest a written record stays only in the page cache (fsync interval of open files).
pub const FSYNC_EVERY: Duration = Duration::from_secs(5);
/// The userspace buffer of a session file, bytes (flushed sooner on the timer).
const BUFFER_BYTES: usize = 64 * 1024;

/// The file underneath the buffer: counts bytes handed to the kernel, and is where the
/// `recorder.write` failpoint injects a full disk.
pub(super) struct Counted {
    file: File,
    participant: ParticipantId,
    bytes: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        failpoint::io_error("recorder.write", self.participant.as_str())?;
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// One open session file.
pub(super) struct SessionFile {
    pub(super) path: PathBuf,
    pub(super) name: String,
    writer: Writer<BufWriter<Counted>>,
    /// Header stream id of each kind in the file.
    pub(super) ids: BTreeMap<StreamKind, String>,
    /// Per stream, the device time of the last sample written (for lag gaps).
    pub(super) last_time: BTreeMap<StreamKind, f64>,
    /// Host time of the last record written.
    pub(super) last_host_t: f64,
    last_sync: Instant,
    /// Bytes written since the last flush to the kernel.
    dirty: bool,
    synced: bool,
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time in ms (UTC).
pub fn session_stamp(unix_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(unix_ms)
        .map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_else(|_| "19700101T000000Z".to_owned())
}

impl SessionFile {
    /// Creates `sessions/<id>/<stamp>[-N].attune.ndjson` (directories 0700 and checked, the
    /// file 0600 with `O_CREAT | O_EXCL | O_NOFOLLOW`) and writes its header line.
    pub(super) fn create(
        data_dir: &Path,
        header: &Header,
        started_unix_ms: i64,
    ) -> Result<Self, RecorderError> {
        let p = &header.participant;
        trust::check_data_dir(data_dir)?;
        trust::create_private_dir(&sessions_dir(data_dir))?;
        let dir = session_dir(data_dir, p);
        trust::create_private_dir(&dir)?;
        let stamp = session_stamp(started_unix_ms);
        let (name, path, file) = (1..=1000)
            .find_map(|n| {
                let name = if n == 1 {
                    stamp.clone()
                } else {
                    format!("{stamp}-{n}")
                };
                let path = dir.join(format!("{name}{SESSION_SUFFIX}"));
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(trust::nofollow())
                    .open(&path)
                {
                    Ok(f) => Some(Ok((name, path, f))),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                    Err(e) => Some(Err(RecorderError::io(p, "create", &path, e))),
                }
            })
            .unwrap_or_else(|| {
                Err(RecorderError::io(
                    p,
                    "create",
                    &dir,
                    io::Error::other("1000 sessions with the same start second"),
                ))
            })?;
        sync_dir(&dir).map_err(|e| RecorderError::io(p, "fsync", &dir, e))?;
        let session = SessionInfo {
            name: name.clone(),
            started_unix_ms,
            live: true,
        };
        let out = BufWriter::with_capacity(
            BUFFER_BYTES,
            Counted {
                file,
                participant: p.clone(),
                bytes: 0,
            },
        );
        let mut writer = Writer::new_session(out, header, &session)
            .map_err(|e| RecorderError::io(p, "write", &path, e))?;
        writer
            .get_mut()
            .flush()
            .map_err(|e| RecorderError::io(p, "write", &path, e))?;
        let ids = header
            .streams
            .iter()
            .filter_map(|s: &StreamSpec| Some((s.kind()?, s.id.clone())))
            .collect();
        Ok(Self {
            path,
            name,
            writer,
            ids,
            last_time: BTreeMap::new(),
            last_host_t: f64::NEG_INFINITY,
            last_sync: Instant::now(),
            dirty: false,
            synced: false,
        })
    }

    /// Records written.
    pub(super) fn records(&self) -> u64 {
        self.writer.records()
    }

    /// Bytes in the file once the buffer is flushed.
    pub(super) fn bytes(&mut self) -> u64 {
        let buf = self.writer.get_mut();
        buf.get_ref().bytes + buf.buffer().len() as u64
    }

    fn id(&self, kind: StreamKind) -> io::Result<String> {
        self.ids
            .get(&kind)
            .cloned()
            .ok_or_else(|| io::Error::other(format!("stream {kind} is not in the header")))
    }

    fn host(&mut self, host_t: f64) -> f64 {
        // Records stay in host order even if a state's time lags (module doc).
        let t = host_t.max(self.last_host_t);
        self.last_host_t = t;
        self.dirty = true;
        t
    }

    pub(super) fn chunk(&mut self, c: &Chunk) -> io::Result<()> {
        let id = self.id(c.kind)?;
        self.host(c.host_t);
        self.writer.chunk(&id, c)?;
        self.last_time.insert(c.kind, c.last_time());
        Ok(())
    }

    pub(super) fn gap(&mut self, g: &Gap) -> io::Result<()> {
        let id = self.id(g.kind)?;
        let mut g = g.clone();
        g.host_t = self.host(g.host_t);
        self.writer.gap(&id, &g)
    }

    pub(super) fn marker(&mut self, m: &Marker) -> io::Result<()> {
        let mut m = m.clone();
        m.host_t = self.host(m.host_t);
        self.writer.marker(&m)
    }

    pub(super) fn state(&mut self, s: &StateRecord) -> io::Result<()> {
        let id = self.id(s.kind)?;
        let mut s = s.clone();
        s.host_t = self.host(s.host_t);
        self.writer.state(&id, &s)
    }

    /// Hands buffered records to the kernel (`write(2)`); fsyncs if the last fsync is older
    /// than [`FSYNC_EVERY`].
    pub(super) fn flush(&mut self) -> io::Result<()> {
        if self.dirty {
            self.writer.get_mut().flush()?;
            self.dirty = false;
            self.synced = false;
        }
        if !self.synced && self.last_sync.elapsed() >= FSYNC_EVERY {
            self.writer.get_mut().get_ref().file.sync_data()?;
            self.last_sync = Instant::now();
            self.synced = true;
        }
        Ok(())
    }

    /// Writes `end` (with `reason` if the file ends early), flushes and fsyncs, and closes.
    pub(super) fn close(mut self, reason: Option<&str>) -> io::Result<PathBuf> {
        let end = end_line(self.records(), false, reason);
        let out = self.writer.get_mut();
        out.write_all(&end)?;
        out.flush()?;
        out.get_ref().file.sync_all()?;
        Ok(self.path)
    }

    /// After a write failed: best effort, a `write_failed` gap for every stream and an `end`
    /// naming the reason; on any error the file is left for repair at the next start.
    pub(super) fn abandon(mut self, host_t: f64) -> PathBuf {
        let p = self.writer.get_mut().get_ref().participant.clone();
        let kinds: Vec<StreamKind> = self.ids.keys().copied().collect();
        let mut ok = true;
        for kind in kinds {
            let t = self.last_time.get(&kind).copied().unwrap_or(0.0);
            let g = Gap {
                participant: p.clone(),
                kind,
                start: t,
                end: t,
                host_t,
                reason: "write_failed".into(),
            };
            if self.gap(&g).is_err() {
                ok = false;
                break;
            }
        }
        let path = self.path.clone();
        if ok {
            let _ = self.close(Some("write_failed"));
        }
        path
    }
}
