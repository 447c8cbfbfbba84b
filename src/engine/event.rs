//! What the engine emits to publishers (DESIGN.md, "The engine boundary"). Pure data.
//!
//! Each [`Event`] carries everything a publisher needs to render it (no publisher reaches back
//! into the engine) and the consents it relies on, [`Event::needs`], computed once by
//! [`crate::consent::needs()`]: the engine emits an event only if its needs are met by the consent
//! in force, and every egress checks the same needs again against the consent in force when it
//! writes (a revocation between the two withdraws it).

use crate::consent::Need;
use crate::engine::input::StreamInfo;
use crate::features::FeatureFrame;
use crate::model::{Chunk, Gap, ParticipantId, StreamKind};
use crate::pipeline::StateChange;
use crate::policy::Decision;
use crate::recording::Marker;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// How a stream's device clock maps onto the session clock (`engine::clock`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockReport {
    /// Session time minus device time at the latest sample (the lower envelope of the arrival
    /// delays: clock offset plus the smallest transport latency), s.
    pub offset_s: f64,
    /// Device clock rate error relative to the host, parts per million (+ = device fast).
    pub skew_ppm: f64,
    /// How far behind the lower envelope samples typically arrive (batching, buffering), s:
    /// the delay the engine waits before it treats a sample's time as reached.
    pub latency_s: f64,
    /// Arrivals the estimate is based on.
    pub observations: u64,
}

/// Why something was dropped (STYLE.md §11). [`DropReason::intended`] says whether it is by
/// design (consent) or a loss to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// No `process` consent at the gate (intended).
    NoConsent,
    /// A subscriber or publisher fell behind and lost its oldest messages.
    Lagged,
    /// Input that failed validation (bad times, a rate the filters cannot handle).
    Malformed,
    /// Samples that arrived with device times before ones already processed.
    Late,
    /// Consent was withdrawn between the engine and the egress (intended).
    WithdrawnAtEgress,
    /// A recording could not be written (disk full, I/O error).
    WriteFailed,
}

impl DropReason {
    /// Every reason, in a fixed order.
    pub const ALL: [DropReason; 6] = [
        Self::NoConsent,
        Self::Lagged,
        Self::Malformed,
        Self::Late,
        Self::WithdrawnAtEgress,
        Self::WriteFailed,
    ];

    /// The name in `status` and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoConsent => "no_consent",
            Self::Lagged => "lagged",
            Self::Malformed => "malformed",
            Self::Late => "late",
            Self::WithdrawnAtEgress => "withdrawn_at_egress",
            Self::WriteFailed => "write_failed",
        }
    }

    /// Whether the drop is by design (consent) rather than a loss.
    pub fn intended(self) -> bool {
        matches!(self, Self::NoConsent | Self::WithdrawnAtEgress)
    }
}

/// A decision with what its `adaptation` line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptation {
    /// Whose.
    pub participant: ParticipantId,
    /// The decision.
    pub decision: Decision,
    /// One sentence explaining it (from the policy settings).
    pub summary: String,
    /// The state of each stream of the participant (`"eda" → "stale"`).
    pub quality: BTreeMap<&'static str, &'static str>,
    /// Per feature (FEATURE_NAMES order): whether its value and baseline statistics may be
    /// shown (`share_features` for its source stream).
    pub shared: [bool; 4],
}

/// A stream state change, with its clock mapping where one is known.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The change.
    pub change: StateChange,
    /// Session time the engine published it, s (`change.since` may lie earlier, or later: it
    /// is on the stream's mapped timeline).
    pub at: f64,
    /// The stream's clock mapping.
    pub clock: Option<ClockReport>,
    /// Why, for people (a source's detail), if known.
    pub detail: Option<String>,
}

/// What an event is.
#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    /// Feature values (only consented ones are `Some`).
    Features(ParticipantId, FeatureFrame),
    /// A decision.
    Adaptation(Box<Adaptation>),
    /// A stream state change.
    State(State),
    /// A stream was declared (what a recording's header says about it).
    Stream(Arc<StreamInfo>),
    /// Samples as received (device and host times untouched), for recording.
    Samples(Chunk),
    /// An explicit gap, for recording.
    Gap(Gap),
    /// A marker.
    Marker(ParticipantId, Marker),
    /// Something was dropped.
    Dropped {
        /// Whose stream.
        participant: ParticipantId,
        /// Which stream.
        kind: StreamKind,
        /// Why.
        reason: DropReason,
        /// Chunks (or messages) dropped.
        count: u64,
    },
    /// One line for the log (a chunk could not be used).
    Warning(String),
}

/// One engine event: what it is, what consent it needs, and its protocol line once rendered.
#[derive(Debug)]
pub struct Event {
    /// What it is.
    pub body: EventBody,
    needs: Vec<Need>,
    line: OnceLock<Option<String>>,
}

impl Event {
    /// Wraps a body with its needs ([`crate::consent::needs()`]).
    pub fn new(body: EventBody) -> Arc<Self> {
        let needs = crate::consent::needs(&body);
        Arc::new(Self {
            body,
            needs,
            line: OnceLock::new(),
        })
    }

    /// The consents this event relies on.
    pub fn needs(&self) -> &[Need] {
        &self.needs
    }

    /// Whose event, if it concerns one participant.
    pub fn participant(&self) -> Option<&ParticipantId> {
        match &self.body {
            EventBody::Features(p, _) | EventBody::Marker(p, _) => Some(p),
            EventBody::Adaptation(a) => Some(&a.participant),
            EventBody::State(s) => Some(&s.change.participant),
            EventBody::Stream(s) => Some(&s.participant),
            EventBody::Samples(c) => Some(&c.participant),
            EventBody::Gap(g) => Some(&g.participant),
            EventBody::Dropped { participant, .. } => Some(participant),
            EventBody::Warning(_) => None,
        }
    }

    /// The protocol line, rendered once by `render` and shared by every subscriber.
    pub fn line_with(&self, render: impl FnOnce(&EventBody) -> Option<String>) -> Option<&str> {
        self.line.get_or_init(|| render(&self.body)).as_deref()
    }
}
