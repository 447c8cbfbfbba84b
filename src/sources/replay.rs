//! Replay source: reads a recording on a blocking thread and hands its records, in file order,
//! to the daemon through a bounded channel (`Block` policy: the reader waits for the pipeline;
//! nothing is dropped). Pacing by `host_t` happens in the daemon.
//!
//! **One open, one recording.** [`open`] opens the path once and everything after works on that
//! handle, never on the path again: a file renamed over the path after the start cannot
//! replace what was validated (the consent manifest is the validated file's).
//!
//! - A regular file is read twice through the same handle: once to validate it whole (a
//!   malformed recording is refused before anything is published), then, rewound, to stream it.
//!   Both passes hash the bytes (SHA-256); if the file was rewritten in place between them, the
//!   stream pass ends with [`RecordingChanged`](ReplaySourceError::Changed) instead of pretending
//!   all went well.
//! - Anything else (a pipe, a FIFO, `-` or `/dev/stdin` on a pipe, a character device) can be
//!   read only once: it is read into memory, up to [`MAX_PIPED_BYTES`], validated there and
//!   streamed from there.

use crate::model::ParticipantId;
use crate::recording::{Header, Reader, Record, RecordingError};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The largest recording read from a pipe (it has to be held in memory), bytes.
pub const MAX_PIPED_BYTES: u64 = 1 << 30;

/// What went wrong with a recording, beyond its format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplaySourceError {
    /// The recording is unreadable or malformed.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// A piped recording exceeded [`MAX_PIPED_BYTES`].
    #[error(
        "a recording read from a pipe must fit in memory (at most {} MiB); save it to a file and replay that",
        MAX_PIPED_BYTES >> 20
    )]
    PipeTooLarge,
    /// The file's bytes changed between validation and streaming.
    #[error(
        "the recording was modified while it was replayed (its bytes differ from the validated ones); what was published up to here came from the validated part"
    )]
    Changed,
}

/// A recording error together with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: ReplaySourceError,
}

/// A validated recording, ready to stream.
#[derive(Debug)]
pub struct Opened {
    /// The path it was opened from (for messages).
    pub path: PathBuf,
    /// The validated header.
    pub header: Header,
    /// Records in the file (implied gaps not counted, the end record not counted).
    pub records: u64,
    input: Input,
    digest: [u8; 32],
}

#[derive(Debug)]
enum Input {
    /// A regular file, validated once, to be rewound and streamed again.
    File(File),
    /// The whole recording in memory (it came from a pipe).
    Memory(Arc<Vec<u8>>),
}

/// A reader that hashes every byte it passes on.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
        }
    }
}

/// Reads every record, then any bytes after the end record, and returns the record count.
fn read_all<R: io::BufRead>(r: &mut Reader<R>) -> Result<u64, RecordingError> {
    let mut n = 0;
    while r.next_record()?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Opens `path` once (`-` is standard input) and validates the whole recording (module doc).
pub fn open(path: &Path) -> Result<Opened, FileError> {
    let err = |source: ReplaySourceError| FileError {
        path: path.to_owned(),
        source,
    };
    let io_err = |e: io::Error| err(RecordingError::Io(e).into());
    let stdin = path.as_os_str() == "-";
    let file = if stdin {
        None
    } else {
        Some(File::open(path).map_err(io_err)?)
    };
    let regular = match &file {
        Some(f) => f.metadata().map_err(io_err)?.is_file(),
        None => false,
    };
    if let (Some(mut f), true) = (file.as_ref(), regular) {
        let mut reader = Reader::open(BufReader::with_capacity(1 << 16, Hashing::new(&mut f)))
            .map_err(|e| err(e.into()))?;
        let records = read_all(&mut reader).map_err(|e| err(e.into()))?;
        let header = reader.header().clone();
        let digest = finish(reader);
        let mut file = file.ok_or_else(|| io_err(io::Error::other("file vanished")))?;
        file.rewind().map_err(io_err)?;
        return Ok(Opened {
            path: path.to_owned(),
            header,
            records,
            input: Input::File(file),
            digest,
        });
    }
    // Read once, into memory.
    let mut bytes = Vec::new();
    let limit = MAX_PIPED_BYTES + 1;
    let read = match file {
        Some(f) => f.take(limit).read_to_end(&mut bytes),
        None => io::stdin().lock().take(limit).read_to_end(&mut bytes),
    };
    read.map_err(io_err)?;
    if bytes.len() as u64 > MAX_PIPED_BYTES {
        return Err(err(ReplaySourceError::PipeTooLarge));
    }
    open_bytes(path, bytes)
}

/// Validates a recording held in memory (`path` names it in messages): a raw capture decoded
/// into a recording, or a piped one.
pub fn open_bytes(path: &Path, bytes: Vec<u8>) -> Result<Opened, FileError> {
    let err = |source: ReplaySourceError| FileError {
        path: path.to_owned(),
        source,
    };
    let mut reader =
        Reader::open(BufReader::new(Hashing::new(bytes.as_slice()))).map_err(|e| err(e.into()))?;
    let records = read_all(&mut reader).map_err(|e| err(e.into()))?;
    let header = reader.header().clone();
    let digest = finish(reader);
    Ok(Opened {
        path: path.to_owned(),
        header,
        records,
        input: Input::Memory(Arc::new(bytes)),
        digest,
    })
}

/// The hash of everything a reader consumed (it has read to the end).
fn finish<R: Read>(reader: Reader<BufReader<Hashing<R>>>) -> [u8; 32]
where
    Hashing<R>: Read,
{
    reader.into_inner().into_inner().hash.finalize().into()
}

/// Streams the records of `opened` into `tx` from a blocking thread, renaming the participant
/// to `rename` if given. Ends early (Ok) when the receiver is gone.
pub fn spawn_reader(
    opened: Opened,
    rename: Option<ParticipantId>,
    tx: mpsc::Sender<Record>,
) -> tokio::task::JoinHandle<Result<(), FileError>> {
    tokio::task::spawn_blocking(move || {
        let Opened {
            path,
            input,
            digest,
            ..
        } = opened;
        let err = |source: ReplaySourceError| FileError {
            path: path.clone(),
            source,
        };
        match input {
            Input::File(mut f) => {
                let reader = Reader::open(BufReader::with_capacity(1 << 16, Hashing::new(&mut f)))
                    .map_err(|e| err(e.into()))?;
                stream(reader, &rename, &tx, digest).map_err(err)
            }
            Input::Memory(bytes) => {
                let reader = Reader::open(BufReader::new(Hashing::new(bytes.as_slice())))
                    .map_err(|e| err(e.into()))?;
                stream(reader, &rename, &tx, digest).map_err(err)
            }
        }
    })
}

fn stream<R: Read>(
    mut r: Reader<BufReader<Hashing<R>>>,
    rename: &Option<ParticipantId>,
    tx: &mpsc::Sender<Record>,
    digest: [u8; 32],
) -> Result<(), ReplaySourceError> {
    loop {
        let Some(mut rec) = r.next_record()? else {
            break;
        };
        if let Some(p) = rename {
            match &mut rec {
                Record::Chunk(c) => c.participant = p.clone(),
                Record::Gap(g) => g.participant = p.clone(),
                Record::Marker(_) | Record::State(_) => {}
            }
        }
        if tx.blocking_send(rec).is_err() {
            return Ok(());
        }
    }
    if finish(r) != digest {
        return Err(ReplaySourceError::Changed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pyhrv-short-rr.attune.ndjson")
    }

    fn collect(opened: Opened) -> Result<Vec<Record>, FileError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, mut rx) = mpsc::channel(4);
            let task = spawn_reader(opened, None, tx);
            let mut out = Vec::new();
            while let Some(r) = rx.recv().await {
                out.push(r);
            }
            task.await.unwrap().map(|()| out)
        })
    }

    #[test]
    fn a_file_renamed_over_the_path_after_open_is_not_what_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.ndjson");
        std::fs::copy(fixture(), &path).unwrap();
        let opened = open(&path).unwrap();
        let n = opened.records;
        // Replace the path with something else entirely (a valid but different recording).
        let other = dir.path().join("other.ndjson");
        std::fs::write(&other, b"not a recording\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let recs = collect(opened).unwrap();
        assert_eq!(recs.len() as u64, n);
    }

    #[test]
    fn a_file_rewritten_in_place_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.ndjson");
        std::fs::copy(fixture(), &path).unwrap();
        let opened = open(&path).unwrap();
        // Same inode, one digit changed in a sample (still a valid recording).
        let text = std::fs::read_to_string(&path).unwrap();
        let pos = text.rfind("\"samples\":[").unwrap() + 11;
        let mut bytes = text.into_bytes();
        bytes[pos] = if bytes[pos] == b'9' { b'8' } else { b'9' };
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&bytes, 0)
            .unwrap();
        let e = collect(opened).unwrap_err();
        assert!(matches!(e.source, ReplaySourceError::Changed), "{e}");
    }

    #[test]
    fn a_fifo_is_read_once_into_memory() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let bytes = std::fs::read(fixture()).unwrap();
                std::fs::write(&fifo, bytes).unwrap();
            })
        };
        let opened = open(&fifo).unwrap();
        writer.join().unwrap();
        let n = opened.records;
        assert!(n > 100);
        assert_eq!(collect(opened).unwrap().len() as u64, n);
    }

    use std::os::unix::fs::FileExt;
}
