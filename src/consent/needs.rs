//! What consent each engine event relies on: one function, [`needs`], used by the engine before it
//! emits an event and by every egress before it writes one (DESIGN.md, "Consent model").
//!
//! The rules:
//! - `features`: `process` and `share_features` for the source stream of each value shown.
//! - `adaptation`: `process` and `adapt` for at least one stream (every decision line is a
//!   decision about the participant, even a warm-up one); `process` for each stream a term
//!   draws on, `adapt` for each that scored a z, `share_features` for each value shown.
//! - `state`: none beyond the participant being known (a state carries no data).
//! - samples, gaps and stream declarations (recording): `process` and `record` for the stream.
//! - markers: `record` for at least one stream (they are written only into recordings).
//! - drop counts and warnings: none (counts, no data).

use super::{ConsentSnapshot, Purpose};
use crate::engine::event::EventBody;
use crate::model::{ParticipantId, StreamKind};

/// One consent an event relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `purpose` for this stream kind of the event's participant (data derived from it).
    Stream(StreamKind, Purpose),
    /// `purpose` for at least one stream kind of the event's participant: the kind of message
    /// needs it whatever it carries (every `adaptation` line needs `adapt`, even a warm-up
    /// line that relies on no data).
    Any(Purpose),
}

impl Need {
    /// Whether `snap` grants this need for `participant`.
    pub fn met(self, snap: &ConsentSnapshot, participant: &ParticipantId) -> bool {
        match self {
            Self::Stream(k, p) => snap.allows(participant, k, p),
            Self::Any(p) => snap.allows_any(participant, p),
        }
    }
}

/// What sharing `kind`'s raw samples (or values read straight off them: a strap's HR, its RR
/// intervals, a beat) with a transport needs: `process` and `share_raw`. A `Samples` event's
/// own [`needs`] are the recorder's (`record`); a transport that carries samples checks these.
pub fn raw_share(kind: StreamKind) -> [Need; 2] {
    [
        Need::Stream(kind, Purpose::Process),
        Need::Stream(kind, Purpose::ShareRaw),
    ]
}

/// Whether every need is met for `participant` under `snap`.
pub fn all_met(needs: &[Need], snap: &ConsentSnapshot, participant: &ParticipantId) -> bool {
    needs.iter().all(|n| n.met(snap, participant))
}

/// The consents `body` relies on.
pub fn needs(body: &EventBody) -> Vec<Need> {
    let mut needs = Vec::new();
    let mut stream = |k, p| {
        needs.push(Need::Stream(k, Purpose::Process));
        needs.push(Need::Stream(k, p));
    };
    match body {
        EventBody::Features(_, f) => {
            for (v, k) in f.values.iter().zip(f.sources) {
                if v.is_some() {
                    stream(k, Purpose::ShareFeatures);
                }
            }
            // The spectral values (numbers or reasons) rest on their streams too; an HRV entry
            // without a named source needs every heart stream's consent.
            if f.spectral.hrv.is_some() {
                match f.spectral.hrv_source {
                    Some(k) => stream(k, Purpose::ShareFeatures),
                    None => {
                        for k in crate::features::HEART_STREAMS {
                            stream(k, Purpose::ShareFeatures);
                        }
                    }
                }
            }
            if f.spectral.eda.is_some() {
                stream(StreamKind::Eda, Purpose::ShareFeatures);
            }
        }
        EventBody::Adaptation(a) => {
            needs.push(Need::Any(Purpose::Process));
            needs.push(Need::Any(Purpose::Adapt));
            for t in &a.decision.terms {
                if t.z.is_some() || t.value.is_some() {
                    needs.push(Need::Stream(t.source, Purpose::Process));
                }
                if t.z.is_some() {
                    needs.push(Need::Stream(t.source, Purpose::Adapt));
                }
                if t.value.is_some() && a.shared.get(t.index).copied().unwrap_or(false) {
                    needs.push(Need::Stream(t.source, Purpose::ShareFeatures));
                }
            }
        }
        EventBody::Samples(c) => stream(c.kind, Purpose::Record),
        EventBody::Gap(g) => stream(g.kind, Purpose::Record),
        EventBody::Stream(s) => stream(s.kind, Purpose::Record),
        EventBody::Marker(..) => needs.push(Need::Any(Purpose::Record)),
        EventBody::State(_) | EventBody::Dropped { .. } | EventBody::Warning(_) => {}
    }
    needs.dedup();
    needs
}
