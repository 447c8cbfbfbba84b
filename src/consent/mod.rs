//! Consent: purposes, stream selectors, and the snapshot the gate reads.
//!
//! Pure: no I/O, no clock. The model is DESIGN.md's: consent is given per participant, per stream
//! kind (or `all`) and per purpose; anything not granted is denied. The ledger of grant and revoke
//! events (issue 4) folds into a [`ConsentSnapshot`]; a replayed recording's snapshot is built
//! from its header's consent manifest, and replay never grants more than that manifest.
//!
//! Purposes: `process` (compute in memory; needed for anything), `adapt` (send decisions),
//! `share_features`, `share_raw`, `record` (persist), `profile` (keep a baseline).

pub mod control;
pub mod gate;
pub mod ledger;
pub mod needs;
#[cfg(test)]
mod proptests;

use crate::model::{ParticipantId, StreamKind};
pub use needs::{Need, all_met, needs, raw_share};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// What a participant may consent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Compute features in memory. Without it a stream is dropped at the gate.
    Process,
    /// Send adaptation decisions derived from the stream.
    Adapt,
    /// Send feature values to subscribers.
    ShareFeatures,
    /// Send raw samples to subscribers.
    ShareRaw,
    /// Persist samples and features.
    Record,
    /// Keep a baseline profile across sessions.
    Profile,
}

/// Every purpose, in a fixed order.
pub const ALL_PURPOSES: [Purpose; 6] = [
    Purpose::Process,
    Purpose::Adapt,
    Purpose::ShareFeatures,
    Purpose::ShareRaw,
    Purpose::Record,
    Purpose::Profile,
];

impl Purpose {
    /// The wire name (`"share_features"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Adapt => "adapt",
            Self::ShareFeatures => "share_features",
            Self::ShareRaw => "share_raw",
            Self::Record => "record",
            Self::Profile => "profile",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown purpose name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown consent purpose {0:?} (expected process, adapt, share_features, share_raw, record or profile)"
)]
pub struct UnknownPurpose(pub String);

impl FromStr for Purpose {
    type Err = UnknownPurpose;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_PURPOSES
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPurpose(s.to_owned()))
    }
}

/// Which streams a grant covers: one kind, or all of the participant's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", untagged)]
pub enum StreamSelector {
    /// Every stream kind (`"all"`).
    All(AllStreams),
    /// One kind.
    Kind(StreamKind),
}

/// The literal `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllStreams {
    /// `"all"`
    All,
}

impl StreamSelector {
    /// Whether this selector covers `kind`.
    pub fn covers(self, kind: StreamKind) -> bool {
        match self {
            Self::All(_) => true,
            Self::Kind(k) => k == kind,
        }
    }
}

/// One grant in a recording's consent manifest: these purposes for these streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestGrant {
    /// A stream kind or `"all"`.
    pub stream: StreamSelector,
    /// The purposes granted.
    pub purposes: Vec<Purpose>,
}

/// The consent given when a recording was made (recording header, `consent`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentManifest {
    /// Version of the consent text the participant agreed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_version: Option<String>,
    /// Who recorded the consent (researcher id, kiosk, "synthetic").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// What was granted. Anything not listed is denied.
    pub grants: Vec<ManifestGrant>,
}

/// An immutable view of who consented to what, tagged with an epoch that grows on every change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsentSnapshot {
    /// Increases with every change of the underlying ledger.
    pub epoch: u64,
    /// Per participant (looked up, not scanned: a session may hold thousands).
    grants: BTreeMap<ParticipantId, BTreeSet<(StreamSelector, Purpose)>>,
}

impl ConsentSnapshot {
    /// The empty snapshot: everything denied.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// The snapshot a recording's manifest grants to `participant`.
    pub fn from_manifest(participant: &ParticipantId, manifest: &ConsentManifest) -> Self {
        let set: BTreeSet<(StreamSelector, Purpose)> = manifest
            .grants
            .iter()
            .flat_map(|g| g.purposes.iter().map(|p| (g.stream, *p)))
            .collect();
        let mut grants = BTreeMap::new();
        if !set.is_empty() {
            grants.insert(participant.clone(), set);
        }
        Self { epoch: 1, grants }
    }

    /// A snapshot holding exactly these (participant, kind, purpose) grants, at `epoch`.
    pub fn from_triples(
        epoch: u64,
        triples: impl IntoIterator<Item = (ParticipantId, StreamKind, Purpose)>,
    ) -> Self {
        let mut grants: BTreeMap<ParticipantId, BTreeSet<(StreamSelector, Purpose)>> =
            BTreeMap::new();
        for (p, k, pu) in triples {
            grants
                .entry(p)
                .or_default()
                .insert((StreamSelector::Kind(k), pu));
        }
        Self { epoch, grants }
    }

    /// Whether `participant` has consented to `purpose` for stream `kind`.
    pub fn allows(&self, participant: &ParticipantId, kind: StreamKind, purpose: Purpose) -> bool {
        self.grants.get(participant).is_some_and(|g| {
            g.iter()
                .any(|(sel, pur)| *pur == purpose && sel.covers(kind))
        })
    }

    /// The consent in force for `participant`'s `kinds`, as a recording manifest (what a
    /// recording or capture made now may later be replayed under), signed `by`.
    pub fn manifest_of(
        &self,
        participant: &ParticipantId,
        kinds: impl IntoIterator<Item = StreamKind>,
        by: &str,
    ) -> ConsentManifest {
        let grants = kinds
            .into_iter()
            .map(|k| ManifestGrant {
                stream: StreamSelector::Kind(k),
                purposes: ALL_PURPOSES
                    .into_iter()
                    .filter(|pu| self.allows(participant, k, *pu))
                    .collect(),
            })
            .collect();
        ConsentManifest {
            text_version: None,
            by: Some(by.to_owned()),
            grants,
        }
    }

    /// Whether `participant` has consented to `purpose` for at least one stream.
    pub fn allows_any(&self, participant: &ParticipantId, purpose: Purpose) -> bool {
        self.grants
            .get(participant)
            .is_some_and(|g| g.iter().any(|(_, pur)| *pur == purpose))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(json: &str) -> ConsentManifest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn default_is_deny() {
        let p = ParticipantId::new("p01").unwrap();
        let s = ConsentSnapshot::deny_all();
        assert!(!s.allows(&p, StreamKind::Eda, Purpose::Process));
    }

    #[test]
    fn manifest_grants_only_what_it_lists() {
        let p = ParticipantId::new("p01").unwrap();
        let other = ParticipantId::new("p02").unwrap();
        let m = manifest(
            r#"{"grants":[{"stream":"eda","purposes":["process"]},
                           {"stream":"all","purposes":["adapt"]}]}"#,
        );
        let s = ConsentSnapshot::from_manifest(&p, &m);
        assert!(s.allows(&p, StreamKind::Eda, Purpose::Process));
        assert!(!s.allows(&p, StreamKind::Rr, Purpose::Process));
        assert!(s.allows(&p, StreamKind::Rr, Purpose::Adapt));
        assert!(!s.allows(&p, StreamKind::Eda, Purpose::ShareFeatures));
        assert!(!s.allows(&other, StreamKind::Eda, Purpose::Process));
    }

    #[test]
    fn unknown_purpose_is_rejected() {
        let r: Result<ConsentManifest, _> =
            serde_json::from_str(r#"{"grants":[{"stream":"eda","purposes":["sell"]}]}"#);
        assert!(r.is_err());
        assert!("sell".parse::<Purpose>().is_err());
    }
}
