//! The consent in force for a replay and the control socket that changes it (edge).

use crate::consent::ConsentSnapshot;
use crate::model::ParticipantId;
use crate::publish::egress::{Egresses, QUIESCE_BOUND};
use crate::store::datadir::DataDir;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::warn;

/// Whose consent a session reads, and how.
#[derive(Clone, Debug)]
pub(super) enum Scope {
    /// A live participant on a real device (a serial source): the ledger's consent, as it
    /// stands. Simulated participants carry a manifest.
    Live(ParticipantId),
    /// A replayed recording: its manifest, minus what the ledger withdrew for the participant
    /// it is published under or the one it names (they differ with `--participant`).
    Replay {
        participant: ParticipantId,
        recorded: ParticipantId,
        manifest: crate::consent::ConsentManifest,
    },
}

impl Scope {
    /// The participant the session publishes under.
    pub(super) fn participant(&self) -> &ParticipantId {
        match self {
            Self::Live(p) | Self::Replay { participant: p, .. } => p,
        }
    }
}

/// The consent in force for a session: the union of its scopes.
#[derive(Clone)]
pub(super) struct Consent {
    /// The daemon's data directory.
    pub(super) data_dir: PathBuf,
    /// One per participant; changes when a reloaded configuration adds or removes one.
    pub(super) scopes: Arc<std::sync::RwLock<Vec<Scope>>>,
    /// The data directory (lock, ledger); consent requests run on it end to end.
    pub(super) store: Arc<std::sync::Mutex<DataDir>>,
    /// The recorder, whose files must be closed before an erasure removes them.
    pub(super) recorder: Option<crate::store::recorder::RecorderHandle>,
}

impl Consent {
    pub(super) fn snapshot(&self, now_ms: i64) -> ConsentSnapshot {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        snapshot_of(store.state(), &self.scopes_now(), now_ms)
    }

    pub(super) fn next_expiry(&self, now_ms: i64) -> Option<i64> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.state().next_expiry_after(now_ms)
    }

    /// Every participant id the session's consent depends on.
    pub(super) fn ids(&self) -> Vec<ParticipantId> {
        let mut ids: Vec<ParticipantId> = self
            .scopes_now()
            .iter()
            .flat_map(|s| match s {
                Scope::Live(p) => vec![p.clone()],
                Scope::Replay {
                    participant,
                    recorded,
                    ..
                } => vec![participant.clone(), recorded.clone()],
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// Whether `p` is a participant of this session.
    pub(super) fn knows(&self, p: &ParticipantId) -> bool {
        self.scopes_now().iter().any(|s| s.participant() == p)
    }

    /// The scopes in force.
    pub(super) fn scopes_now(&self) -> Vec<Scope> {
        self.scopes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The scopes of `p` alone (cheap: a join or a save checks one participant, and cloning
    /// every scope for each of a thousand joins was quadratic).
    pub(super) fn scopes_of(&self, p: &ParticipantId) -> Vec<Scope> {
        self.scopes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|s| s.participant() == p)
            .cloned()
            .collect()
    }

    /// The participants of the session, in scope order.
    pub(super) fn participants(&self) -> Vec<ParticipantId> {
        self.scopes_now()
            .iter()
            .map(|s| s.participant().clone())
            .collect()
    }
}

/// The snapshot `scopes` get from `state` at `now_ms`.
pub(super) fn snapshot_of(
    state: &crate::consent::ledger::ConsentState,
    scopes: &[Scope],
    now_ms: i64,
) -> ConsentSnapshot {
    let mut triples = Vec::new();
    for scope in scopes {
        match scope {
            Scope::Live(p) => {
                for k in crate::model::ALL_KINDS {
                    for pu in crate::consent::ALL_PURPOSES {
                        if state.allows(p, k, pu, now_ms) {
                            triples.push((p.clone(), k, pu));
                        }
                    }
                }
            }
            Scope::Replay {
                participant,
                recorded,
                manifest,
            } => {
                let snap = state.replay_snapshot(
                    participant,
                    std::slice::from_ref(recorded),
                    manifest,
                    now_ms,
                );
                for k in crate::model::ALL_KINDS {
                    for pu in crate::consent::ALL_PURPOSES {
                        if snap.allows(participant, k, pu) {
                            triples.push((participant.clone(), k, pu));
                        }
                    }
                }
            }
        }
    }
    ConsentSnapshot::from_triples(state.events + 1, triples)
}

/// How long a control connection may take to send its request line.
pub(super) const CONTROL_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Wall-clock now, unix ms (consent times and expiries are wall-clock by nature).
pub(super) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Publishes `snap` unless the snapshot in force is newer: two publishers finishing out of order
/// (two commands, or a command and an expiring grant) must not bring back an older consent.
/// The ledger's event count orders snapshots; one of the same epoch (a grant expired meanwhile)
/// replaces it.
pub(super) fn publish_snapshot(tx: &watch::Sender<Arc<ConsentSnapshot>>, snap: ConsentSnapshot) {
    tx.send_if_modified(|cur| {
        let newer = snap.epoch >= cur.epoch && **cur != snap;
        if newer {
            *cur = Arc::new(snap.clone());
        }
        newer
    });
}

/// Publishes the consent in force after a command and, if it changed, waits until no
/// subscriber can still write a line the old consent allowed (RELIABILITY.md, "Revocation
/// path", steps 2, 4 and 5): every egress confirms it has no write in flight checked against the
/// old snapshot, or is closed. Only then may `resp` be sent.
async fn publish_and_quiesce(
    consent: &Consent,
    consent_tx: &watch::Sender<Arc<ConsentSnapshot>>,
    egress: &Egresses,
    resp: crate::consent::control::Response,
) -> crate::consent::control::Response {
    publish_snapshot(consent_tx, consent.snapshot(now_ms()));
    // Only a change needs the handshake; it is done even when a concurrent command published
    // this change first, because that command may still be waiting for it.
    if !matches!(
        resp,
        crate::consent::control::Response::Appended { .. }
            | crate::consent::control::Response::Forgotten { .. }
    ) {
        return resp;
    }
    let q = egress.quiesce(QUIESCE_BOUND).await;
    if q.closed > 0 {
        warn!(
            closed = q.closed,
            "Subscribers still writing under the old consent after {QUIESCE_BOUND:?} were closed."
        );
    }
    if q.stuck > 0 {
        return crate::consent::control::Response::Error {
            message: format!(
                "the change is recorded, but {} subscriber connection(s) could not be stopped; treat it as not yet in effect and restart the daemon",
                q.stuck
            ),
        };
    }
    resp
}

/// What the control socket's requests act on.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) consent: Consent,
    pub(super) consent_tx: Arc<watch::Sender<Arc<ConsentSnapshot>>>,
    pub(super) egress: Egresses,
    /// Markers go into the session through the engine's input channel.
    pub(super) inputs: tokio::sync::mpsc::Sender<crate::engine::input::Input>,
    pub(super) clock: crate::sources::SessionClock,
    pub(super) status: StatusBoard,
}

/// The latest `attune status` object, refreshed by the session loop.
#[derive(Clone, Default)]
pub(super) struct StatusBoard(Arc<std::sync::Mutex<serde_json::Value>>);

impl StatusBoard {
    /// Recomputes the status from the engine and the publishers.
    pub(super) fn update(
        &self,
        engine: &crate::engine::Engine,
        publishers: &[&mut dyn crate::publish::Publisher],
        speed: f64,
        live: bool,
        stalls: &super::stalls::Stalls,
    ) {
        let v = super::status::render(engine, publishers, speed, live, stalls);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// The status before the session loop runs (waiting for subscribers, starting sources).
    pub(super) fn starting(&self, participants: &[ParticipantId], speed: f64, live: bool) {
        let v = serde_json::json!({
            "session": {"t": null, "speed": speed, "live": live, "phase": "starting",
                        "stalls": super::stalls::Stalls::default().json()},
            "participants": participants
                .iter()
                .map(|p| serde_json::json!({"id": p, "streams": []}))
                .collect::<Vec<_>>(),
            "publishers": [],
            "drops": {},
        });
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    fn get(&self) -> serde_json::Value {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Answers `status` and `mark`, which need the running session, not the ledger.
async fn session_request(
    shared: &Shared,
    req: &crate::consent::control::Request,
) -> Option<crate::consent::control::Response> {
    use crate::consent::control::{Request, Response};
    match req {
        Request::Status => Some(Response::Status {
            status: shared.status.get(),
        }),
        Request::Mark {
            participant,
            label,
            data,
        } => {
            if let Err(message) = crate::store::datadir::check_request(req) {
                return Some(Response::Error { message });
            }
            if !shared.consent.knows(participant) {
                return Some(Response::Error {
                    message: format!(
                        "participant {participant} is not in this session; nothing was recorded"
                    ),
                });
            }
            let t = shared.clock.now();
            let marker = crate::recording::Marker {
                host_t: t,
                t,
                label: label.clone(),
                data: data.clone(),
            };
            let sent = shared
                .inputs
                .send(crate::engine::input::Input::Marker(
                    participant.clone(),
                    marker,
                ))
                .await;
            Some(match sent {
                Ok(()) => Response::Marked {
                    participant: participant.clone(),
                    t,
                },
                Err(_) => Response::Error {
                    message: "the session has ended; nothing was recorded".into(),
                },
            })
        }
        _ => None,
    }
}

/// The control socket: one request per connection. A consent request is answered once it is
/// durable, the new snapshot is published (the engine applies it before its next input, and
/// subscriber egress re-checks it at once) and no subscriber can still write under the old one.
pub(super) async fn serve_control(
    listener: tokio::net::UnixListener,
    allowed_uids: Vec<u32>,
    shared: Shared,
    requests: TaskTracker,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        if !stream
            .peer_cred()
            .is_ok_and(|c| allowed_uids.contains(&c.uid()))
        {
            warn!("Control client uid not allowed; connection closed.");
            continue;
        }
        let shared = shared.clone();
        let consent = shared.consent.clone();
        let consent_tx = shared.consent_tx.clone();
        let egress = shared.egress.clone();
        requests.spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(r.take(64 * 1024));
            // A client that connects and sends nothing must not keep a task forever.
            match tokio::time::timeout(CONTROL_READ_TIMEOUT, reader.read_line(&mut line)).await {
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    warn!("Control client sent no request within {CONTROL_READ_TIMEOUT:?}; closed.");
                    return;
                }
            }
            let parsed = serde_json::from_str::<crate::consent::control::ControlLine>(&line);
            let same_dir = |d: &Path| {
                std::fs::canonicalize(d).ok() == std::fs::canonicalize(&consent.data_dir).ok()
            };
            let resp = match parsed {
                Err(e) => crate::consent::control::Response::Error {
                    message: format!("bad consent request: {e}"),
                },
                Ok(cl) if !same_dir(&cl.data_dir) => crate::consent::control::Response::Error {
                    message: format!(
                        "the daemon on this socket uses data directory {}, not {}; pass --data-dir {} or the other daemon's --socket",
                        consent.data_dir.display(),
                        cl.data_dir.display(),
                        consent.data_dir.display()
                    ),
                },
                Ok(crate::consent::control::ControlLine { request: req, .. })
                    if matches!(
                        req,
                        crate::consent::control::Request::Status
                            | crate::consent::control::Request::Mark { .. }
                    ) =>
                {
                    session_request(&shared, &req)
                        .await
                        .unwrap_or(crate::consent::control::Response::Error {
                            message: "unexpected request".into(),
                        })
                }
                Ok(crate::consent::control::ControlLine { request: req, .. }) => {
                    let c = consent.clone();
                    let tx = consent_tx.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        let now = now_ms();
                        let mut store = c.store.lock().unwrap_or_else(|e| e.into_inner());
                        // Revocations take effect once their intent is durable, before any
                        // erasure they call for runs (the lock on `store` is held here, so the
                        // snapshot is made from the state handed over, not through `c`).
                        let erasing = match &req {
                            crate::consent::control::Request::Revoke { participant, .. }
                            | crate::consent::control::Request::Forget { participant, .. } => {
                                Some(participant.clone())
                            }
                            _ => None,
                        };
                        let mut publish = |state: &crate::consent::ledger::ConsentState| {
                            let snap = snapshot_of(state, &c.scopes_now(), now);
                            if let Some(r) = &c.recorder {
                                r.consent(&Arc::new(snap.clone()));
                            }
                            publish_snapshot(&tx, snap);
                            // The erasure that follows removes the participant's session
                            // files: the one being written is closed first (the recorder stops
                            // at once; nothing holds a handle on what is deleted).
                            if let (Some(r), Some(p)) = (&c.recorder, &erasing)
                                && let Err(e) = r.close_participant(p)
                            {
                                warn!(participant = %p, error = %e, "Could not close the recording before erasing it.");
                            }
                        };
                        store.execute_observed(req, now, &c.ids(), &mut publish)
                    })
                    .await;
                    match done {
                        Ok(resp) => publish_and_quiesce(&consent, &consent_tx, &egress, resp).await,
                        Err(e) => crate::consent::control::Response::Error {
                            message: format!("the consent command failed: {e}"),
                        },
                    }
                }
            };
            let text = serde_json::to_string(&resp).unwrap_or_default();
            let _ = w.write_all(format!("{text}\n").as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Purpose;
    use crate::model::StreamKind;

    fn snap(epoch: u64, purposes: &[Purpose]) -> ConsentSnapshot {
        let p = ParticipantId::new("p01").unwrap();
        ConsentSnapshot::from_triples(
            epoch,
            purposes.iter().map(|pu| (p.clone(), StreamKind::Eda, *pu)),
        )
    }

    /// A revocation published at epoch 5 is not undone by a snapshot computed before it (a
    /// command or an expiring grant finishing late).
    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let (tx, rx) = watch::channel(Arc::new(snap(4, &[Purpose::Process, Purpose::Adapt])));
        publish_snapshot(&tx, snap(5, &[Purpose::Process]));
        publish_snapshot(&tx, snap(4, &[Purpose::Process, Purpose::Adapt]));
        assert_eq!(**rx.borrow(), snap(5, &[Purpose::Process]));
        // Same epoch, less granted (a grant expired): replaces.
        publish_snapshot(&tx, snap(5, &[]));
        assert_eq!(**rx.borrow(), snap(5, &[]));
    }
}
