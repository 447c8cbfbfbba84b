//! The pool of connections that have not subscribed yet (step 4 of the [`server`](super)
//! recipe): at most `max_pending` of them, oldest first; admitting one more closes the oldest, so
//! connections that never subscribe cannot lock anyone out. A connection leaves the pool when it
//! subscribes or closes. Subscriber slots are a separate pool (a semaphore, taken at `subscribe`).

use std::collections::VecDeque;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Connections that have not subscribed yet, oldest first: (id, closes it).
pub(super) struct Pending {
    conns: std::sync::Mutex<VecDeque<(u64, CancellationToken)>>,
    /// At most this many (never less than one).
    max: usize,
}

impl Pending {
    /// An empty pool of at most `max_pending` connections (0 counts as 1).
    pub(super) fn new(max_pending: usize) -> Self {
        Self {
            conns: std::sync::Mutex::default(),
            max: max_pending.max(1),
        }
    }

    /// Admits connection `id`, first closing the oldest ones while the pool is full. The token
    /// is cancelled when `id` is closed in turn to admit a newer connection.
    pub(super) fn admit(&self, id: u64) -> CancellationToken {
        let evict = CancellationToken::new();
        let mut p = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        while p.len() >= self.max {
            if let Some((_, oldest)) = p.pop_front() {
                debug!("Too many connections without a subscription; closing the oldest.");
                oldest.cancel();
            }
        }
        p.push_back((id, evict.clone()));
        evict
    }

    /// Removes connection `id` (it subscribed or closed); a no-op if it was already evicted.
    pub(super) fn leave(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| *i != id);
    }
}
