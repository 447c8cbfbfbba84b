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

/// The consent in force for a replay: the recording's manifest, minus what the ledger withdrew.
#[derive(Clone)]
pub(super) struct Consent {
    /// The daemon's data directory.
    pub(super) data_dir: PathBuf,
    pub(super) participant: ParticipantId,
    /// The participant the recording names (differs from `participant` with `--participant`).
    pub(super) recorded: ParticipantId,
    pub(super) manifest: crate::consent::ConsentManifest,
    /// The data directory (lock, ledger); consent requests run on it end to end.
    pub(super) store: Arc<std::sync::Mutex<DataDir>>,
}

impl Consent {
    pub(super) fn snapshot(&self, now_ms: i64) -> ConsentSnapshot {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.state().replay_snapshot(
            &self.participant,
            std::slice::from_ref(&self.recorded),
            &self.manifest,
            now_ms,
        )
    }

    pub(super) fn next_expiry(&self, now_ms: i64) -> Option<i64> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.state().next_expiry_after(now_ms)
    }
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

/// The control socket: one consent request per connection, answered once it is durable, the
/// new snapshot is published (the pipeline applies it before its next record, and subscriber
/// egress re-checks it at once) and no subscriber can still write under the old one.
pub(super) async fn serve_control(
    listener: tokio::net::UnixListener,
    allowed_uids: Vec<u32>,
    consent: Consent,
    consent_tx: Arc<watch::Sender<Arc<ConsentSnapshot>>>,
    egress: Egresses,
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
        let consent = consent.clone();
        let consent_tx = consent_tx.clone();
        let egress = egress.clone();
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
                Ok(crate::consent::control::ControlLine { request: req, .. }) => {
                    let c = consent.clone();
                    let tx = consent_tx.clone();
                    let done = tokio::task::spawn_blocking(move || {
                        let now = now_ms();
                        let mut store = c.store.lock().unwrap_or_else(|e| e.into_inner());
                        // Revocations take effect once their intent is durable, before any
                        // erasure they call for runs (the lock on `store` is held here, so the
                        // snapshot is made from the state handed over, not through `c`).
                        let mut publish = |state: &crate::consent::ledger::ConsentState| {
                            publish_snapshot(
                                &tx,
                                state.replay_snapshot(
                                    &c.participant,
                                    std::slice::from_ref(&c.recorded),
                                    &c.manifest,
                                    now,
                                ),
                            );
                        };
                        store.execute_observed(
                            req,
                            now,
                            &[c.participant.clone(), c.recorded.clone()],
                            &mut publish,
                        )
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
