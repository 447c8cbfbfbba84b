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

use crate::consent::control::{Request, Response, lines};
use crate::consent::ledger::{Action, ConsentState, Event, NewEvent, VerifyError, chain, verify};
use crate::consent::{AllStreams, Purpose, StreamSelector};
use crate::model::ParticipantId;
use std::path::{Path, PathBuf};

/// Key of the head record.
pub const HEAD_KEY: [u8; 9] = [0xff; 9];

#[derive(serde::Serialize, serde::Deserialize)]
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

impl LedgerStore {
    /// Opens (or creates) `<data_dir>/ledger` and verifies it.
    pub fn open(data_dir: &Path) -> Result<Self, LedgerError> {
        let path = data_dir.join("ledger");
        let sled_err = |source: sled::Error| match &source {
            sled::Error::Io(e) if e.to_string().contains("lock") => {
                LedgerError::Locked(path.clone())
            }
            _ => LedgerError::Sled {
                path: path.clone(),
                source,
            },
        };
        std::fs::create_dir_all(data_dir).map_err(|e| sled_err(sled::Error::Io(e)))?;
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
        let state = ConsentState::fold(&events);
        Ok(Self {
            path,
            db,
            tree,
            events,
            state,
        })
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
        for ev in &chained {
            self.state.apply(ev);
        }
        self.events.extend(chained.iter().cloned());
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

    /// One event per (stream, purpose), from `template`, appended atomically.
    fn append_each(
        &mut self,
        template: &NewEvent,
        streams: &[StreamSelector],
        purposes: &[Purpose],
    ) -> Response {
        let events: Vec<NewEvent> = streams
            .iter()
            .flat_map(|s| {
                purposes.iter().map(move |p| NewEvent {
                    stream: *s,
                    purpose: *p,
                    ..template.clone()
                })
            })
            .collect();
        match self.append_all(events) {
            Ok(events) => Response::Appended {
                events,
                epoch: self.state.events,
            },
            Err(e) => Response::Error {
                message: e.to_string(),
            },
        }
    }

    /// Carries out a consent command at `now_ms`. Changes are durable before this returns.
    /// `live` lists participants a running daemon is processing: they may be revoked even
    /// without a ledger history (their consent came from a recording's manifest).
    pub fn execute(&mut self, req: Request, now_ms: i64, live: &[ParticipantId]) -> Response {
        let err = |message: String| Response::Error { message };
        match req {
            Request::Grant {
                participant,
                streams,
                purposes,
                expires_ms,
                text_version,
                by,
            } => {
                if streams.is_empty() || purposes.is_empty() {
                    return err("name at least one stream and one purpose".into());
                }
                if let Some(x) = expires_ms
                    && x <= now_ms
                {
                    return err("the expiry date is in the past".into());
                }
                self.append_each(
                    &NewEvent {
                        action: Action::Grant,
                        participant,
                        stream: StreamSelector::All(AllStreams::All),
                        purpose: Purpose::Process,
                        at_ms: now_ms,
                        by,
                        expires_ms,
                        text_version,
                    },
                    &streams,
                    &purposes,
                )
            }
            Request::Revoke {
                participant,
                streams,
                purposes,
                by,
            } => {
                if streams.is_empty() || purposes.is_empty() {
                    return err("name at least one stream and one purpose".into());
                }
                if self.history(&participant).is_empty() && !live.contains(&participant) {
                    return err(format!(
                        "participant {participant} has no consent recorded; nothing to revoke"
                    ));
                }
                self.append_each(
                    &NewEvent {
                        action: Action::Revoke,
                        participant,
                        stream: StreamSelector::All(AllStreams::All),
                        purpose: Purpose::Process,
                        at_ms: now_ms,
                        by,
                        expires_ms: None,
                        text_version: None,
                    },
                    &streams,
                    &purposes,
                )
            }
            Request::Show { participant } => {
                if self.history(&participant).is_empty() {
                    return err(format!("participant {participant} has no consent recorded"));
                }
                Response::Consent {
                    lines: lines(&self.state.of(&participant), now_ms),
                    participant,
                    epoch: self.state.events,
                }
            }
            Request::History { participant } => {
                let events: Vec<Event> = self.history(&participant).into_iter().cloned().collect();
                if events.is_empty() {
                    return err(format!("participant {participant} has no consent recorded"));
                }
                Response::History { events }
            }
            Request::Erased { participant, by } => {
                let e = NewEvent {
                    action: Action::Erased,
                    participant,
                    stream: crate::consent::StreamSelector::All(crate::consent::AllStreams::All),
                    purpose: crate::consent::Purpose::Process,
                    at_ms: now_ms,
                    by,
                    expires_ms: None,
                    text_version: None,
                };
                match self.append(e) {
                    Ok(ev) => Response::Appended {
                        events: vec![ev.clone()],
                        epoch: self.state.events,
                    },
                    Err(e) => err(e.to_string()),
                }
            }
            Request::Verify => match verify(&self.events) {
                Ok(()) => Response::Verified {
                    events: self.events.len() as u64,
                },
                Err(e) => err(format!("the ledger does not verify: {e}")),
            },
        }
    }
}
