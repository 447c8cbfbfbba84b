//! The consent ledger: append-only, hash-chained grant/revoke events and their fold. Pure: the
//! store (`store::ledger`) persists the events, the caller passes every time in.
//!
//! Each [`Event`] names a participant, a stream kind (or `all`), a purpose, the time (unix ms,
//! UTC), the actor, an optional expiry and the consent-text version. Events are chained:
//! `hash = sha256(prev_hash ‖ canonical JSON of the event without its hash)`, hex-encoded, with
//! the all-zero hash before the first event, so editing, inserting, removing or reordering any
//! event is detected by [`verify`].
//!
//! The fold ([`ConsentState`]) expands `all` into every stream kind: a grant sets each covered
//! (participant, kind, purpose) to granted (with its expiry), a revoke sets it to revoked, a
//! `forget_requested` intent and an `erased` receipt revoke everything of the participant, and a
//! `data_erased` receipt changes no consent.
//!
//! # Erasures owed ([`pending_erasures`])
//!
//! Erasing data is a three-step operation recorded in the ledger, so that a crash at any point
//! is finished by the next process that opens the data directory (`store::datadir`):
//!
//! 1. the intent: a `revoke` of `record` or `profile` (which erases what that consent covered),
//!    or a `forget_requested` (which erases everything), appended and flushed first;
//! 2. the erasure itself (idempotent: it deletes whole directories);
//! 3. the completion receipt: `data_erased` with the purpose whose data went (`record`:
//!    recordings and features; `profile`: the baseline profile), or `erased` after a forget.
//!
//! An intent without a later receipt is owed. A later `erased` settles everything of the
//! participant, a later `data_erased` settles its purpose, and a later `grant` of that purpose
//! settles a `revoke` intent too: the store refuses every change while an erasure is owed, so in
//! a ledger it wrote a grant never follows an unsettled intent; in ledgers written before the
//! receipts existed it does, and the data stored under that grant must not be erased.
//!
//! Actors (`by`) and consent-text versions are 1–200 printable characters ([`check_text`]):
//! `history` prints them one event per line. [`ConsentState::snapshot_at`] gives
//! what the gate reads at a time: only grants that have not expired (an expired grant counts as
//! revoked). [`ConsentState::replay_snapshot`] gives a recording's consent: what its manifest
//! granted, minus anything the ledger revoked or let expire.

use super::{ConsentManifest, ConsentSnapshot, Purpose, StreamSelector};
use crate::model::{ALL_KINDS, ParticipantId, StreamKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Give consent.
    Grant,
    /// Withdraw consent.
    Revoke,
    /// The participant's data was erased (`forget`): everything is revoked; the event proves
    /// the erasure and holds no health data.
    Erased,
    /// `forget` was asked for: everything is revoked, and the erasure is owed until an
    /// `erased` receipt follows.
    ForgetRequested,
    /// The data a revoked purpose covered was erased (`record`: recordings and features;
    /// `profile`: the baseline profile): the receipt of a partial erasure, no health data.
    DataErased,
}

/// The longest actor or consent-text version, characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// Checks an actor (`by`) or a consent-text version: 1–[`MAX_TEXT_CHARS`] characters, none of
/// them a control character (a newline would forge a line in `consent history`).
pub fn check_text(s: &str) -> Result<(), &'static str> {
    if s.is_empty() || s.chars().count() > MAX_TEXT_CHARS || s.chars().any(char::is_control) {
        return Err("use 1-200 printable characters");
    }
    Ok(())
}

/// One ledger event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Position in the ledger, from 0.
    pub seq: u64,
    /// Grant, revoke or erased.
    pub action: Action,
    /// Whose consent.
    pub participant: ParticipantId,
    /// Which streams (`all` for `erased`).
    pub stream: StreamSelector,
    /// Which purpose (`process` for `erased`, which covers all).
    pub purpose: Purpose,
    /// When, unix ms (UTC).
    pub at_ms: i64,
    /// Who recorded it (researcher id, `kiosk`, `attune`).
    pub by: String,
    /// When a grant ends, unix ms; None = until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// Version of the consent text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_version: Option<String>,
    /// Hash of the previous event (hex).
    pub prev: String,
    /// This event's hash (hex).
    pub hash: String,
}

/// An event before it is chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Grant, revoke or erased.
    pub action: Action,
    /// Whose consent.
    pub participant: ParticipantId,
    /// Which streams.
    pub stream: StreamSelector,
    /// Which purpose.
    pub purpose: Purpose,
    /// When, unix ms.
    pub at_ms: i64,
    /// Who.
    pub by: String,
    /// Expiry of a grant, unix ms.
    pub expires_ms: Option<i64>,
    /// Consent-text version.
    pub text_version: Option<String>,
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    action: Action,
    participant: &'a ParticipantId,
    stream: StreamSelector,
    purpose: Purpose,
    at_ms: i64,
    by: &'a str,
    expires_ms: Option<i64>,
    text_version: Option<&'a str>,
    prev: &'a str,
}

fn digest(c: &Canonical<'_>) -> String {
    let mut h = Sha256::new();
    h.update(c.prev.as_bytes());
    // Serializing a plain struct of strings and numbers cannot fail.
    h.update(serde_json::to_vec(c).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl Event {
    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            seq: self.seq,
            action: self.action,
            participant: &self.participant,
            stream: self.stream,
            purpose: self.purpose,
            at_ms: self.at_ms,
            by: &self.by,
            expires_ms: self.expires_ms,
            text_version: self.text_version.as_deref(),
            prev: &self.prev,
        }
    }
}

/// Chains `e` after `prev` (None for the first event).
pub fn chain(prev: Option<&Event>, e: NewEvent) -> Event {
    let mut ev = Event {
        seq: prev.map_or(0, |p| p.seq + 1),
        action: e.action,
        participant: e.participant,
        stream: e.stream,
        purpose: e.purpose,
        at_ms: e.at_ms,
        by: e.by,
        expires_ms: e.expires_ms,
        text_version: e.text_version,
        prev: prev.map_or_else(|| GENESIS.to_owned(), |p| p.hash.clone()),
        hash: String::new(),
    };
    ev.hash = digest(&ev.canonical());
    ev
}

/// Why a ledger does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// A sequence number is missing or repeated.
    #[error("event {index}: sequence number {found}, expected {expected}")]
    Sequence {
        /// Position in the ledger.
        index: usize,
        /// Expected seq.
        expected: u64,
        /// Found seq.
        found: u64,
    },
    /// An event does not point at its predecessor.
    #[error("event {seq}: its previous-hash does not match event {prev_seq}")]
    Link {
        /// The event.
        seq: u64,
        /// Its predecessor.
        prev_seq: u64,
    },
    /// An event's content does not match its hash.
    #[error("event {seq}: content does not match its hash (edited)")]
    Hash {
        /// The event.
        seq: u64,
    },
    /// The head record does not match the events (the newest ones were removed).
    #[error("the ledger holds {found} events but its head records {recorded} (events removed)")]
    Head {
        /// Events present.
        found: u64,
        /// Events the head records.
        recorded: u64,
    },
}

/// Checks the whole chain.
pub fn verify(events: &[Event]) -> Result<(), VerifyError> {
    let mut prev: Option<&Event> = None;
    for (index, e) in events.iter().enumerate() {
        if e.seq != index as u64 {
            return Err(VerifyError::Sequence {
                index,
                expected: index as u64,
                found: e.seq,
            });
        }
        let want_prev = prev.map_or(GENESIS, |p| p.hash.as_str());
        if e.prev != want_prev {
            return Err(VerifyError::Link {
                seq: e.seq,
                prev_seq: index.saturating_sub(1) as u64,
            });
        }
        if digest(&e.canonical()) != e.hash {
            return Err(VerifyError::Hash { seq: e.seq });
        }
        prev = Some(e);
    }
    Ok(())
}

/// The fold's value for one (participant, kind, purpose).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Granted, until the expiry if any (unix ms).
    Granted {
        /// Expiry, unix ms.
        expires_ms: Option<i64>,
    },
    /// Revoked (or erased).
    Revoked,
}

/// The current state: the fold of the events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsentState {
    /// Number of events folded (the epoch of the snapshots made from it).
    pub events: u64,
    entries: BTreeMap<(ParticipantId, StreamKind, Purpose), Status>,
}

fn kinds(sel: StreamSelector) -> Vec<StreamKind> {
    match sel {
        StreamSelector::All(_) => ALL_KINDS.to_vec(),
        StreamSelector::Kind(k) => vec![k],
    }
}

impl ConsentState {
    /// Folds `events` in order.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut s = Self::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Applies one event.
    pub fn apply(&mut self, e: &Event) {
        self.events += 1;
        match e.action {
            Action::Grant => {
                for k in kinds(e.stream) {
                    self.entries.insert(
                        (e.participant.clone(), k, e.purpose),
                        Status::Granted {
                            expires_ms: e.expires_ms,
                        },
                    );
                }
            }
            Action::Revoke => {
                for k in kinds(e.stream) {
                    self.entries
                        .insert((e.participant.clone(), k, e.purpose), Status::Revoked);
                }
            }
            Action::Erased | Action::ForgetRequested => {
                for k in ALL_KINDS {
                    for p in super::ALL_PURPOSES {
                        self.entries
                            .insert((e.participant.clone(), k, p), Status::Revoked);
                    }
                }
            }
            Action::DataErased => {}
        }
    }

    /// The status of one (participant, kind, purpose), if the ledger says anything about it.
    pub fn status(&self, p: &ParticipantId, k: StreamKind, purpose: Purpose) -> Option<Status> {
        self.entries.get(&(p.clone(), k, purpose)).copied()
    }

    /// Whether it is granted and not expired at `now_ms`.
    pub fn allows(&self, p: &ParticipantId, k: StreamKind, purpose: Purpose, now_ms: i64) -> bool {
        matches!(self.status(p, k, purpose), Some(Status::Granted { expires_ms })
            if expires_ms.is_none_or(|x| now_ms < x))
    }

    /// Every (kind, purpose, status) the ledger holds for `p`, in a fixed order.
    pub fn of(&self, p: &ParticipantId) -> Vec<(StreamKind, Purpose, Status)> {
        self.entries
            .iter()
            .filter(|((q, _, _), _)| q == p)
            .map(|((_, k, pu), s)| (*k, *pu, *s))
            .collect()
    }

    /// The participants the ledger mentions.
    pub fn participants(&self) -> Vec<ParticipantId> {
        let mut v: Vec<ParticipantId> = self.entries.keys().map(|(p, _, _)| p.clone()).collect();
        v.dedup();
        v
    }

    /// The earliest expiry after `now_ms` (when the snapshot must be rebuilt).
    pub fn next_expiry_after(&self, now_ms: i64) -> Option<i64> {
        self.entries
            .values()
            .filter_map(|s| match s {
                Status::Granted {
                    expires_ms: Some(x),
                } if *x > now_ms => Some(*x),
                _ => None,
            })
            .min()
    }

    /// What the gate reads at `now_ms` for live sources: granted and not expired.
    pub fn snapshot_at(&self, now_ms: i64) -> ConsentSnapshot {
        ConsentSnapshot::from_triples(
            self.events,
            self.entries
                .keys()
                .filter(|(p, k, pu)| self.allows(p, *k, *pu, now_ms))
                .cloned(),
        )
    }

    /// Whether the ledger withdrew this (revoked, erased, or a grant that expired).
    pub fn withdrawn(
        &self,
        p: &ParticipantId,
        k: StreamKind,
        purpose: Purpose,
        now_ms: i64,
    ) -> bool {
        match self.status(p, k, purpose) {
            Some(Status::Revoked) => true,
            Some(Status::Granted { expires_ms }) => expires_ms.is_some_and(|x| now_ms >= x),
            None => false,
        }
    }

    /// A replayed recording's consent at `now_ms`, published as participant `p`: what
    /// `manifest` granted, minus what the ledger withdrew for `p` or for any id in `also` (the
    /// participant the recording names, when it is replayed under another id). Replay never
    /// grants more than the manifest.
    pub fn replay_snapshot(
        &self,
        p: &ParticipantId,
        also: &[ParticipantId],
        manifest: &ConsentManifest,
        now_ms: i64,
    ) -> ConsentSnapshot {
        let from_manifest = ConsentSnapshot::from_manifest(p, manifest);
        let mut triples = Vec::new();
        for k in ALL_KINDS {
            for pu in super::ALL_PURPOSES {
                if !from_manifest.allows(p, k, pu) {
                    continue;
                }
                let withdrawn = std::iter::once(p)
                    .chain(also)
                    .any(|q| self.withdrawn(q, k, pu, now_ms));
                if !withdrawn {
                    triples.push((p.clone(), k, pu));
                }
            }
        }
        ConsentSnapshot::from_triples(self.events + 1, triples)
    }
}

/// An erasure the ledger says is owed: its intent has no receipt yet (module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    /// Whose data.
    pub participant: ParticipantId,
    /// A `forget_requested` is unsettled: erase everything, then append `erased`.
    pub forget: bool,
    /// Purposes (`record`, `profile`) whose revocation is unsettled: erase what each covered,
    /// then append one `data_erased` per purpose.
    pub purposes: Vec<Purpose>,
    /// The actor of the latest unsettled intent (the receipt carries it).
    pub by: String,
    /// Sequence number of the earliest unsettled intent.
    pub since: u64,
}

/// Whether revoking `purpose` erases stored data.
pub fn erases_data(purpose: Purpose) -> bool {
    matches!(purpose, Purpose::Record | Purpose::Profile)
}

/// Every erasure owed, by participant (module doc, "Erasures owed").
pub fn pending_erasures(events: &[Event]) -> Vec<Owed> {
    let mut owed: BTreeMap<ParticipantId, Owed> = BTreeMap::new();
    let entry = |owed: &mut BTreeMap<ParticipantId, Owed>, e: &Event| {
        let o = owed.entry(e.participant.clone()).or_insert_with(|| Owed {
            participant: e.participant.clone(),
            forget: false,
            purposes: Vec::new(),
            by: e.by.clone(),
            since: e.seq,
        });
        o.by.clone_from(&e.by);
    };
    for e in events {
        match e.action {
            Action::Revoke if erases_data(e.purpose) => {
                entry(&mut owed, e);
                if let Some(o) = owed.get_mut(&e.participant)
                    && !o.purposes.contains(&e.purpose)
                {
                    o.purposes.push(e.purpose);
                    o.purposes.sort();
                }
            }
            Action::ForgetRequested => {
                entry(&mut owed, e);
                if let Some(o) = owed.get_mut(&e.participant) {
                    o.forget = true;
                }
            }
            Action::Grant | Action::DataErased => {
                if let Some(o) = owed.get_mut(&e.participant) {
                    o.purposes.retain(|p| *p != e.purpose);
                    if !o.forget && o.purposes.is_empty() {
                        owed.remove(&e.participant);
                    }
                }
            }
            Action::Erased => {
                owed.remove(&e.participant);
            }
            Action::Revoke => {}
        }
    }
    owed.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::AllStreams;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    fn ev(
        action: Action,
        p: &str,
        stream: StreamSelector,
        purpose: Purpose,
        at: i64,
        exp: Option<i64>,
    ) -> NewEvent {
        NewEvent {
            action,
            participant: pid(p),
            stream,
            purpose,
            at_ms: at,
            by: "test".into(),
            expires_ms: exp,
            text_version: Some("v1".into()),
        }
    }

    fn build(evs: Vec<NewEvent>) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        for e in evs {
            let c = chain(out.last(), e);
            out.push(c);
        }
        out
    }

    const ALL: StreamSelector = StreamSelector::All(AllStreams::All);
    const EDA: StreamSelector = StreamSelector::Kind(StreamKind::Eda);

    #[test]
    fn grant_all_then_revoke_one_kind() {
        let evs = build(vec![
            ev(Action::Grant, "p01", ALL, Purpose::Process, 0, None),
            ev(Action::Revoke, "p01", EDA, Purpose::Process, 10, None),
        ]);
        let s = ConsentState::fold(&evs);
        let p = pid("p01");
        assert!(s.allows(&p, StreamKind::Rr, Purpose::Process, 20));
        assert!(!s.allows(&p, StreamKind::Eda, Purpose::Process, 20));
        assert!(!s.allows(&p, StreamKind::Rr, Purpose::Adapt, 20));
        assert!(!s.allows(&pid("p02"), StreamKind::Rr, Purpose::Process, 20));
        let snap = s.snapshot_at(20);
        assert!(snap.allows(&p, StreamKind::Rr, Purpose::Process));
        assert!(!snap.allows(&p, StreamKind::Eda, Purpose::Process));
        assert_eq!(snap.epoch, 2);
    }

    #[test]
    fn an_expired_grant_counts_as_revoked() {
        let evs = build(vec![ev(
            Action::Grant,
            "p01",
            EDA,
            Purpose::Process,
            0,
            Some(100),
        )]);
        let s = ConsentState::fold(&evs);
        let p = pid("p01");
        assert!(s.allows(&p, StreamKind::Eda, Purpose::Process, 99));
        assert!(!s.allows(&p, StreamKind::Eda, Purpose::Process, 100));
        assert_eq!(s.next_expiry_after(50), Some(100));
        assert_eq!(s.next_expiry_after(100), None);
    }

    #[test]
    fn replay_gets_the_manifest_minus_ledger_withdrawals() {
        let p = pid("p01");
        let m: ConsentManifest =
            serde_json::from_str(r#"{"grants":[{"stream":"all","purposes":["process","adapt"]}]}"#)
                .unwrap();
        let evs = build(vec![
            ev(Action::Revoke, "p01", EDA, Purpose::Process, 0, None),
            // A ledger grant beyond the manifest adds nothing to a replay.
            ev(Action::Grant, "p01", ALL, Purpose::ShareRaw, 0, None),
        ]);
        let snap = ConsentState::fold(&evs).replay_snapshot(&p, &[], &m, 10);
        // Replayed under another id, the recorded participant's withdrawals still count.
        let other = pid("alias");
        let renamed =
            ConsentState::fold(&evs).replay_snapshot(&other, std::slice::from_ref(&p), &m, 10);
        assert!(!renamed.allows(&other, StreamKind::Eda, Purpose::Process));
        assert!(renamed.allows(&other, StreamKind::Rr, Purpose::Process));
        assert!(snap.allows(&p, StreamKind::Rr, Purpose::Process));
        assert!(!snap.allows(&p, StreamKind::Eda, Purpose::Process));
        assert!(snap.allows(&p, StreamKind::Eda, Purpose::Adapt));
        assert!(!snap.allows(&p, StreamKind::Rr, Purpose::ShareRaw));
    }

    #[test]
    fn erased_revokes_everything() {
        let evs = build(vec![
            ev(Action::Grant, "p01", ALL, Purpose::Process, 0, None),
            ev(Action::Erased, "p01", ALL, Purpose::Process, 5, None),
        ]);
        let s = ConsentState::fold(&evs);
        assert!(!s.allows(&pid("p01"), StreamKind::Rr, Purpose::Process, 10));
    }

    #[test]
    fn actors_are_printable_and_short() {
        assert!(check_text("researcher 1 (Zoë)").is_ok());
        assert!(
            check_text(&"é".repeat(200)).is_ok(),
            "characters, not bytes"
        );
        for bad in ["", "a\nb", "tab\there", &"x".repeat(201)] {
            assert!(check_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_revoke_of_record_is_owed_until_its_receipt() {
        let p = pid("p01");
        let mut evs = vec![
            ev(Action::Grant, "p01", ALL, Purpose::Record, 0, None),
            ev(Action::Revoke, "p01", EDA, Purpose::Record, 1, None),
            ev(Action::Revoke, "p01", ALL, Purpose::Adapt, 2, None),
        ];
        let owed = pending_erasures(&build(evs.clone()));
        assert_eq!(owed.len(), 1);
        assert_eq!((owed[0].forget, owed[0].since), (false, 1));
        assert_eq!(owed[0].purposes, [Purpose::Record]);
        evs.push(ev(Action::DataErased, "p01", ALL, Purpose::Record, 3, None));
        assert!(pending_erasures(&build(evs.clone())).is_empty());
        evs.push(ev(
            Action::ForgetRequested,
            "p01",
            ALL,
            Purpose::Process,
            4,
            None,
        ));
        let built = build(evs.clone());
        assert!(pending_erasures(&built)[0].forget);
        assert!(!ConsentState::fold(&built).allows(&p, StreamKind::Rr, Purpose::Process, 5));
        evs.push(ev(Action::Erased, "p01", ALL, Purpose::Process, 5, None));
        assert!(pending_erasures(&build(evs)).is_empty());
    }

    #[test]
    fn tampering_is_detected() {
        let mut evs = build(vec![
            ev(Action::Grant, "p01", ALL, Purpose::Process, 0, None),
            ev(Action::Revoke, "p01", ALL, Purpose::Process, 10, None),
            ev(Action::Grant, "p01", EDA, Purpose::Adapt, 20, None),
        ]);
        assert_eq!(verify(&evs), Ok(()));
        let mut edited = evs.clone();
        edited[1].action = Action::Grant;
        assert_eq!(verify(&edited), Err(VerifyError::Hash { seq: 1 }));
        let mut removed = evs.clone();
        removed.remove(1);
        assert!(matches!(
            verify(&removed),
            Err(VerifyError::Sequence { index: 1, .. })
        ));
        evs.swap(1, 2);
        assert!(verify(&evs).is_err());
    }
}
