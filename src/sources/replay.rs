//! Replay source: reads a recording file on a blocking thread and hands its records, in file
//! order, to the daemon through a bounded channel (`Block` policy: the reader waits for the
//! pipeline; nothing is dropped). Pacing by `host_t` happens in the daemon.

use crate::model::ParticipantId;
use crate::recording::{Header, Reader, Record, RecordingError};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// A recording error together with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: RecordingError,
}

fn open(path: &Path) -> Result<Reader<BufReader<File>>, FileError> {
    let err = |source| FileError {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(|e| err(RecordingError::Io(e)))?;
    Reader::open(BufReader::with_capacity(1 << 16, file)).map_err(err)
}

/// Reads the whole file once, so that a malformed recording is refused before anything is
/// published. Returns the header and the number of records.
pub fn validate(path: &Path) -> Result<(Header, u64), FileError> {
    let mut r = open(path)?;
    let mut n = 0;
    while r
        .next_record()
        .map_err(|source| FileError {
            path: path.to_owned(),
            source,
        })?
        .is_some()
    {
        n += 1;
    }
    Ok((r.header().clone(), n))
}

/// Streams the records of `path` into `tx` from a blocking thread, renaming the participant to
/// `rename` if given. Ends early (Ok) when the receiver is gone.
pub fn spawn_reader(
    path: PathBuf,
    rename: Option<ParticipantId>,
    tx: mpsc::Sender<Record>,
) -> tokio::task::JoinHandle<Result<(), FileError>> {
    tokio::task::spawn_blocking(move || {
        let mut r = open(&path)?;
        loop {
            let rec = r.next_record().map_err(|source| FileError {
                path: path.clone(),
                source,
            })?;
            let Some(mut rec) = rec else { return Ok(()) };
            if let Some(p) = &rename {
                match &mut rec {
                    Record::Chunk(c) => c.participant = p.clone(),
                    Record::Gap(g) => g.participant = p.clone(),
                    Record::Marker(_) => {}
                }
            }
            if tx.blocking_send(rec).is_err() {
                return Ok(());
            }
        }
    })
}
