//! The consent ledger on disk: `<data_dir>/ledger/`, a sled database whose tree `events` maps
//! the big-endian u64 sequence number to the event's JSON (`consent::ledger::Event`).
//!
//! [`LedgerStore::append`] chains the event, inserts it and **flushes before returning**, so an
//! acknowledged change survives a crash (RELIABILITY.md, kill -9 row). Opening verifies the
//! whole hash chain and refuses a tampered or undecodable ledger with a one-line reason.
//!
//! A head record (key [`HEAD_KEY`], nine `0xff` bytes, which sorts after every event key) holds
//! the number of events and the last hash, written in the same batch as the events: removing
//! the newest events, which the chain alone cannot reveal, is detected too. (Someone who
//! rewrites the head as well is not; anchoring the head outside the machine would be needed.)
//!
//! # The head outside the ledger (`<data_dir>/ledger.head`)
//!
//! Deleting or truncating the ledger directory would silently drop every recorded revocation,
//! so a copy of the head (event count and last hash, JSON) lives next to it, replaced
//! atomically after every append (temp file, fsync, rename, fsync of the data directory).
//! Opening refuses, in one line, a ledger that is missing while the head or any participant
//! store exists, one with fewer events than the head records, and one whose event at the
//! head's position has another hash. A ledger ahead of its head copy (a crash between the
//! ledger flush and the head write) is fine: the head is rewritten.
//!
//! `ledger/` and the data directory must pass `store::trust` (not symbolic links, ours, no
//! group or other write bit); the head copy is read without following a link and written
//! through a temp file created with `O_EXCL | O_NOFOLLOW`, so a link planted as
//! `ledger.head.tmp` is replaced, never written through.
//!
//! Every appended event is checked first: its actor and consent-text version must pass
//! [`check_text`] (a request can arrive over the control socket, not only from the CLI).

use crate::consent::ledger::{
    Action, ConsentState, Event, NewEvent, VerifyError, chain, check_text, verify,
};
use crate::model::ParticipantId;
use crate::store::failpoint;
use crate::store::participant::{participants_dir, sync_dir};
use crate::store::trust::{self, UntrustedPath};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Key of the head record.
pub const HEAD_KEY: [u8; 9] = [0xff; 9];
/// The copy of the head outside the ledger directory, under the data directory.
pub const HEAD_FILE: &str = "ledger.head";

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Head {
    events: u64,
    hash: String,
}

/// Why the ledger could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Another process holds the database.
    #[error("consent ledger {0} is in use by another process (a running daemon?)")]
    Locked(PathBuf),
    /// The chain does not verify.
    #[error("consent ledger {path} has been tampered with: {source}")]
    Tampered {
        /// The ledger directory.
        path: PathBuf,
        /// What is wrong.
        source: VerifyError,
    },
    /// An event does not decode.
    #[error("consent ledger {path}: event {seq} is unreadable: {message}")]
    Corrupt {
        /// The ledger directory.
        path: PathBuf,
        /// Key of the event.
        seq: u64,
        /// Decoder message.
        message: String,
    },
    /// The ledger directory is gone while the data directory shows it existed.
    #[error(
        "the consent ledger {path} is missing, but {evidence}; restore it from a backup (a new, empty ledger would drop every recorded revocation)"
    )]
    Missing {
        /// The ledger directory.
        path: PathBuf,
        /// What shows that a ledger existed.
        evidence: String,
    },
    /// The ledger holds fewer events than its head copy records.
    #[error(
        "the consent ledger {path} is truncated: it holds {found} events but {head} records {recorded}; restore it from a backup"
    )]
    Truncated {
        /// The ledger directory.
        path: PathBuf,
        /// The head copy.
        head: PathBuf,
        /// Events present.
        found: u64,
        /// Events the head copy records.
        recorded: u64,
    },
    /// The ledger's event at the head copy's position has another hash.
    #[error(
        "the consent ledger {path} is not the one {head} records: event {seq} has another hash (replaced or rolled back); restore it from a backup"
    )]
    Replaced {
        /// The ledger directory.
        path: PathBuf,
        /// The head copy.
        head: PathBuf,
        /// The event compared.
        seq: u64,
    },
    /// The head copy cannot be read or written.
    #[error("consent ledger head {path}: {message}")]
    HeadFile {
        /// The head file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// An event to append is malformed (checked on every append, whoever sent it).
    #[error("refused consent event: {field} {value:?}: {reason}")]
    BadEvent {
        /// `by` or `text_version`.
        field: &'static str,
        /// The value, shortened to 40 characters.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The data directory or `ledger/` is a symbolic link, or not ours alone (`store::trust`).
    #[error(transparent)]
    Untrusted(#[from] UntrustedPath),
    /// sled failed.
    #[error("consent ledger {path}: {source}")]
    Sled {
        /// The ledger directory.
        path: PathBuf,
        /// The error.
        source: sled::Error,
    },
}

/// The opened ledger, with its events and their fold in memory.
pub struct LedgerStore {
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    events: Vec<Event>,
    state: ConsentState,
}

impl std::fmt::Debug for LedgerStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerStore")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl LedgerStore {
    /// Opens (or creates) `<data_dir>/ledger` and verifies it, against its head copy too
    /// (module doc). Callers hold the data-directory lock (`store::datadir`).
    pub fn open(data_dir: &Path) -> Result<Self, LedgerError> {
        let path = data_dir.join("ledger");
        let head_path = data_dir.join(HEAD_FILE);
        let outside = read_head(&head_path)?;
        if !path.join("db").is_file() {
            let evidence = match &outside {
                Some(h) if h.events > 0 => Some(format!(
                    "{} records {} events",
                    head_path.display(),
                    h.events
                )),
                _ => participant_stores(data_dir).map(|n| {
                    format!(
                        "{} holds {n} participant store(s)",
                        participants_dir(data_dir).display()
                    )
                }),
            };
            if let Some(evidence) = evidence {
                return Err(LedgerError::Missing { path, evidence });
            }
        }
        let sled_err = |source: sled::Error| match &source {
            sled::Error::Io(e) if e.to_string().contains("lock") => {
                LedgerError::Locked(path.clone())
            }
            _ => LedgerError::Sled {
                path: path.clone(),
                source,
            },
        };
        trust::create_data_dir(data_dir)?;
        trust::create_private_dir(&path)?;
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(8 * 1024 * 1024)
            .open()
            .map_err(sled_err)?;
        let tree = db.open_tree("events").map_err(sled_err)?;
        let mut events = Vec::new();
        let mut head: Option<Head> = None;
        for item in tree.iter() {
            let (k, v) = item.map_err(sled_err)?;
            if k.as_ref() == HEAD_KEY {
                head = serde_json::from_slice(&v).ok();
                continue;
            }
            let seq = k
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(u64::MAX);
            let e: Event = serde_json::from_slice(&v).map_err(|e| LedgerError::Corrupt {
                path: path.clone(),
                seq,
                message: e.to_string(),
            })?;
            events.push(e);
        }
        verify(&events).map_err(|source| LedgerError::Tampered {
            path: path.clone(),
            source,
        })?;
        let last = events
            .last()
            .map_or(crate::consent::ledger::GENESIS, |e| e.hash.as_str());
        let head_ok = match &head {
            None => events.is_empty(),
            Some(h) => h.events == events.len() as u64 && h.hash == last,
        };
        if !head_ok {
            return Err(LedgerError::Tampered {
                path: path.clone(),
                source: VerifyError::Head {
                    found: events.len() as u64,
                    recorded: head.map_or(0, |h| h.events),
                },
            });
        }
        if let Some(h) = &outside
            && h.events > 0
        {
            if (events.len() as u64) < h.events {
                return Err(LedgerError::Truncated {
                    path,
                    head: head_path,
                    found: events.len() as u64,
                    recorded: h.events,
                });
            }
            let at = usize::try_from(h.events - 1).unwrap_or(usize::MAX);
            if events.get(at).is_none_or(|e| e.hash != h.hash) {
                return Err(LedgerError::Replaced {
                    path,
                    head: head_path,
                    seq: h.events - 1,
                });
            }
        }
        let state = ConsentState::fold(&events);
        let store = Self {
            path,
            db,
            tree,
            events,
            state,
        };
        let current = store.head();
        if outside.as_ref() != Some(&current) {
            write_head(&head_path, &current)?;
        }
        Ok(store)
    }

    fn head(&self) -> Head {
        Head {
            events: self.events.len() as u64,
            hash: self
                .events
                .last()
                .map_or(crate::consent::ledger::GENESIS, |e| e.hash.as_str())
                .to_owned(),
        }
    }

    fn head_path(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| PathBuf::from(HEAD_FILE), |d| d.join(HEAD_FILE))
    }

    /// Chains, stores and flushes one event; returns it once it is durable.
    pub fn append(&mut self, e: NewEvent) -> Result<&Event, LedgerError> {
        self.append_all(vec![e])?;
        Ok(self
            .events
            .last()
            .unwrap_or_else(|| unreachable!("just appended")))
    }

    /// Chains and stores several events atomically (one sled batch, one flush): a command that
    /// names several streams or purposes is applied whole or not at all.
    pub fn append_all(&mut self, new: Vec<NewEvent>) -> Result<Vec<Event>, LedgerError> {
        for e in &new {
            check_event(e)?;
        }
        let step = new.first().map(|e| action_step(e.action));
        let mut chained: Vec<Event> = Vec::with_capacity(new.len());
        let mut batch = sled::Batch::default();
        for e in new {
            let ev = chain(chained.last().or(self.events.last()), e);
            batch.insert(
                &ev.seq.to_be_bytes(),
                serde_json::to_vec(&ev).unwrap_or_default(),
            );
            chained.push(ev);
        }
        if let Some(last) = chained.last() {
            let head = Head {
                events: last.seq + 1,
                hash: last.hash.clone(),
            };
            batch.insert(&HEAD_KEY, serde_json::to_vec(&head).unwrap_or_default());
        }
        let path = self.path.clone();
        let sled_err = |source| LedgerError::Sled { path, source };
        self.tree.apply_batch(batch).map_err(sled_err.clone())?;
        self.db.flush().map_err(sled_err)?;
        if let Some(step) = step {
            failpoint::hit(&format!("append.{step}.flushed"));
        }
        for ev in &chained {
            self.state.apply(ev);
        }
        self.events.extend(chained.iter().cloned());
        write_head(&self.head_path(), &self.head())?;
        if let Some(step) = step {
            failpoint::hit(&format!("append.{step}.head"));
        }
        Ok(chained)
    }

    /// Every event, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The fold.
    pub fn state(&self) -> &ConsentState {
        &self.state
    }

    /// The events of one participant.
    pub fn history(&self, p: &ParticipantId) -> Vec<&Event> {
        self.events.iter().filter(|e| &e.participant == p).collect()
    }

    /// The ledger directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn action_step(a: Action) -> &'static str {
    match a {
        Action::Grant => "grant",
        Action::Revoke => "revoke",
        Action::Erased => "erased",
        Action::ForgetRequested => "forget_requested",
        Action::DataErased => "data_erased",
    }
}

fn check_event(e: &NewEvent) -> Result<(), LedgerError> {
    let bad = |field, value: &str, reason| LedgerError::BadEvent {
        field,
        value: value.chars().take(40).collect(),
        reason,
    };
    check_text(&e.by).map_err(|r| bad("by", &e.by, r))?;
    if let Some(v) = &e.text_version {
        check_text(v).map_err(|r| bad("text_version", v, r))?;
    }
    Ok(())
}

/// How many entries `participants/` holds (stores and unfinished temporary directories), if any.
fn participant_stores(data_dir: &Path) -> Option<usize> {
    let n = std::fs::read_dir(participants_dir(data_dir))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    (n > 0).then_some(n)
}

fn read_head(path: &Path) -> Result<Option<Head>, LedgerError> {
    let err = |message: String| LedgerError::HeadFile {
        path: path.to_owned(),
        message,
    };
    match trust::read_nofollow(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| err(format!("unreadable ({e}); restore it from a backup"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Replaces the head copy atomically: temp file, fsync, rename, fsync the directory.
fn write_head(path: &Path, head: &Head) -> Result<(), LedgerError> {
    let err = |e: std::io::Error| LedgerError::HeadFile {
        path: path.to_owned(),
        message: format!("cannot write: {e}"),
    };
    let tmp = path.with_extension("head.tmp");
    let mut f = trust::create_temp(&tmp).map_err(err)?;
    f.write_all(&serde_json::to_vec(head).unwrap_or_default())
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(err)?;
    }
    Ok(())
}
