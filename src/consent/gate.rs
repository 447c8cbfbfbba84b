//! The consent gate: the first thing every chunk meets. Pure: a check on a snapshot plus counters.
//!
//! A chunk whose (participant, stream kind) lacks `process` consent at its arrival is dropped here
//! and counted; it is never buffered, logged or stored. Counters are per stream so that tests and
//! the daemon's summary can assert on them.

use super::{ConsentSnapshot, Purpose};
use crate::model::{ParticipantId, StreamKind};
use std::collections::BTreeMap;

/// Per-stream pass/drop counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateCounts {
    /// Chunks that passed.
    pub passed: u64,
    /// Chunks dropped for lack of `process` consent (intentional drops).
    pub dropped_no_consent: u64,
    /// Samples in the dropped chunks.
    pub dropped_samples: u64,
}

/// The gate's verdict on one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The chunk may be processed.
    Pass,
    /// The chunk was dropped; `first` is true the first time this stream was refused since it
    /// last passed, so the caller can publish a `no_consent` state once.
    Drop {
        /// First refusal since the stream last passed.
        first: bool,
    },
}

/// The gate: a consent snapshot and counters.
#[derive(Debug, Default)]
pub struct Gate {
    snapshot: ConsentSnapshot,
    counts: BTreeMap<(ParticipantId, StreamKind), Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    counts: GateCounts,
    refusing: bool,
}

impl Gate {
    /// A gate reading `snapshot`.
    pub fn new(snapshot: ConsentSnapshot) -> Self {
        Self {
            snapshot,
            counts: BTreeMap::new(),
        }
    }

    /// Replaces the snapshot (a consent change); takes effect from the next chunk.
    pub fn swap(&mut self, snapshot: ConsentSnapshot) {
        self.snapshot = snapshot;
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> &ConsentSnapshot {
        &self.snapshot
    }

    /// Decides on a chunk of `n_samples` samples of (`participant`, `kind`).
    pub fn check(
        &mut self,
        participant: &ParticipantId,
        kind: StreamKind,
        n_samples: usize,
    ) -> Verdict {
        let allowed = self.snapshot.allows(participant, kind, Purpose::Process);
        let e = self.counts.entry((participant.clone(), kind)).or_default();
        if allowed {
            e.counts.passed += 1;
            e.refusing = false;
            Verdict::Pass
        } else {
            let first = !e.refusing;
            e.refusing = true;
            e.counts.dropped_no_consent += 1;
            e.counts.dropped_samples += n_samples as u64;
            Verdict::Drop { first }
        }
    }

    /// Counts for one stream.
    pub fn counts(&self, participant: &ParticipantId, kind: StreamKind) -> GateCounts {
        self.counts
            .get(&(participant.clone(), kind))
            .map(|e| e.counts)
            .unwrap_or_default()
    }

    /// All counters, in stream order.
    pub fn all_counts(&self) -> impl Iterator<Item = (&(ParticipantId, StreamKind), &GateCounts)> {
        self.counts.iter().map(|(k, e)| (k, &e.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::{ConsentManifest, ManifestGrant, StreamSelector};

    #[test]
    fn drops_without_process_and_counts() {
        let p = ParticipantId::new("p01").unwrap();
        let m = ConsentManifest {
            grants: vec![ManifestGrant {
                stream: StreamSelector::Kind(StreamKind::Rr),
                purposes: vec![Purpose::Process],
            }],
            ..Default::default()
        };
        let mut g = Gate::new(ConsentSnapshot::from_manifest(&p, &m));
        assert_eq!(g.check(&p, StreamKind::Rr, 1), Verdict::Pass);
        assert_eq!(
            g.check(&p, StreamKind::Eda, 32),
            Verdict::Drop { first: true }
        );
        assert_eq!(
            g.check(&p, StreamKind::Eda, 32),
            Verdict::Drop { first: false }
        );
        let c = g.counts(&p, StreamKind::Eda);
        assert_eq!(
            (c.passed, c.dropped_no_consent, c.dropped_samples),
            (0, 2, 64)
        );
        g.swap(ConsentSnapshot::deny_all());
        assert!(matches!(
            g.check(&p, StreamKind::Rr, 1),
            Verdict::Drop { .. }
        ));
    }
}
