//! The consent-epoch handshake between the control socket and every subscriber egress (edge;
//! RELIABILITY.md, "Revocation path", steps 4–5).
//!
//! Each subscriber connection is one egress point: it checks a message's [`Need`s](super::Need)
//! against the consent snapshot in force, then writes the line. A revocation must be
//! acknowledged only when no line that the old consent allowed can still be written, so each
//! egress holds its [`Egress::gate`] from the consent check until its write is complete.
//!
//! [`Egresses::quiesce`], called after the new snapshot (epoch e+1) is published, takes and
//! releases every registered gate in turn. Getting a gate means that connection has no write in
//! flight that was checked against an older snapshot; every check it makes afterwards reads the
//! watch after the publish, so it sees epoch ≥ e+1. A connection whose gate is not free within
//! the bound (stalled in a write because its client does not read) is cancelled: its pending
//! write is dropped, the connection closes, and only then does `quiesce` return.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a revocation waits for subscribers to finish a write checked against the old
/// consent before it closes them.
pub const QUIESCE_BOUND: Duration = Duration::from_secs(1);

/// How long a cancelled connection may take to drop its write (it does so at its next poll).
const CANCEL_BOUND: Duration = Duration::from_secs(2);

/// One egress point (a subscriber connection).
#[derive(Debug, Default)]
pub struct Egress {
    /// Held from the consent check of a data line until its write has completed.
    pub gate: tokio::sync::Mutex<()>,
    /// Cancelled to close a connection that did not confirm in time.
    pub cancel: CancellationToken,
}

/// Every live egress point.
#[derive(Debug, Clone, Default)]
pub struct Egresses {
    live: Arc<std::sync::Mutex<BTreeMap<u64, Arc<Egress>>>>,
    next: Arc<AtomicU64>,
}

/// Keeps an egress registered; deregisters it on drop.
#[derive(Debug)]
pub struct Registration {
    id: u64,
    of: Egresses,
    /// The egress itself.
    pub egress: Arc<Egress>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.of
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// What [`Egresses::quiesce`] had to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quiesced {
    /// Egress points that confirmed in time.
    pub confirmed: usize,
    /// Egress points closed because they did not confirm within the bound.
    pub closed: usize,
    /// Closed egress points that had still not dropped their write 2 s after being closed
    /// (a stuck runtime; the revocation must not be acknowledged as complete).
    pub stuck: usize,
}

impl Egresses {
    /// Registers a new egress point. Call it before the connection writes any data line.
    pub fn register(&self) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let egress = Arc::new(Egress::default());
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, egress.clone());
        Registration {
            id,
            of: self.clone(),
            egress,
        }
    }

    /// Number of registered egress points.
    pub fn len(&self) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// True when none is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call after publishing a new consent snapshot: returns once every egress point has
    /// finished any write checked against an older snapshot, closing those that do not within
    /// `bound` (module doc).
    pub async fn quiesce(&self, bound: Duration) -> Quiesced {
        let all: Vec<Arc<Egress>> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let deadline = tokio::time::Instant::now() + bound;
        let mut q = Quiesced::default();
        for e in all {
            if tokio::time::timeout_at(deadline, e.gate.lock())
                .await
                .is_ok()
            {
                q.confirmed += 1;
                continue;
            }
            e.cancel.cancel();
            q.closed += 1;
            if tokio::time::timeout(CANCEL_BOUND, e.gate.lock())
                .await
                .is_err()
            {
                q.stuck += 1;
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quiesce_waits_for_a_write_in_flight_and_closes_a_stalled_one() {
        let reg = Egresses::default();
        let a = reg.register();
        let b = reg.register();
        // `a` is mid-write for 100 ms; `b` never finishes (its client does not read).
        let (a_held, b_held) = (
            tokio::sync::oneshot::channel(),
            tokio::sync::oneshot::channel(),
        );
        let ga = a.egress.clone();
        let writing_a = tokio::spawn(async move {
            let g = ga.gate.lock().await;
            let _ = a_held.0.send(());
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(g);
        });
        let gb = b.egress.clone();
        let stalled_b = tokio::spawn(async move {
            let _g = gb.gate.lock().await;
            let _ = b_held.0.send(());
            gb.cancel.cancelled().await;
        });
        a_held.1.await.unwrap();
        b_held.1.await.unwrap();
        let t0 = tokio::time::Instant::now();
        let q = reg.quiesce(Duration::from_millis(400)).await;
        assert_eq!(
            q,
            Quiesced {
                confirmed: 1,
                closed: 1,
                stuck: 0
            }
        );
        assert!(b.egress.cancel.is_cancelled());
        assert!(!a.egress.cancel.is_cancelled());
        assert!(t0.elapsed() >= Duration::from_millis(400));
        assert!(writing_a.is_finished() && stalled_b.is_finished());
        drop(a);
        assert_eq!(reg.len(), 1);
    }
}
