//! Consent commands as data: what `attune consent ...` asks and what it gets back, the same
//! whether a running daemon answers over its control socket or the command opens the ledger
//! itself. Pure; one JSON object per line on the control socket.

use super::ledger::{Action, Event, Status};
use super::{Purpose, StreamSelector};
use crate::model::ParticipantId;
use serde::{Deserialize, Serialize};

/// A consent command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Grant purposes for streams.
    Grant {
        /// Whose.
        participant: ParticipantId,
        /// Which streams.
        streams: Vec<StreamSelector>,
        /// Which purposes.
        purposes: Vec<Purpose>,
        /// Expiry, unix ms (must be in the future).
        #[serde(default)]
        expires_ms: Option<i64>,
        /// Consent-text version.
        #[serde(default)]
        text_version: Option<String>,
        /// Actor.
        by: String,
    },
    /// Revoke purposes for streams.
    Revoke {
        /// Whose.
        participant: ParticipantId,
        /// Which streams.
        streams: Vec<StreamSelector>,
        /// Which purposes.
        purposes: Vec<Purpose>,
        /// Actor.
        by: String,
    },
    /// Current consent of a participant.
    Show {
        /// Whose.
        participant: ParticipantId,
    },
    /// Every event of a participant.
    History {
        /// Whose.
        participant: ParticipantId,
    },
    /// Verify the whole hash chain.
    Verify,
    /// A running daemon's health (`attune status`): sources, streams, clocks, subscribers,
    /// drops, recordings. Only a daemon answers it.
    Status,
    /// A researcher's marker for a participant of the running session (`attune mark`).
    Mark {
        /// Whose session.
        participant: ParticipantId,
        /// The label (1–128 printable characters).
        label: String,
        /// Free-form details.
        #[serde(default)]
        data: Option<serde_json::Value>,
    },
    /// Erase everything of a participant (`forget`): the `forget_requested` intent (which
    /// revokes everything), the erasure, then the `erased` receipt (no health data).
    Forget {
        /// Whose.
        participant: ParticipantId,
        /// Actor.
        by: String,
    },
}

/// What an erasure removed: ids, names and counts, no health data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// Whose data.
    pub participant: ParticipantId,
    /// The stored parts erased (`recordings`, `features`, `profile`, `feedback`).
    pub parts: Vec<String>,
    /// Files deleted.
    pub files_removed: u64,
    /// Their total size, bytes.
    pub bytes_removed: u64,
}

/// What a command sends on the control socket: the request, and the data directory the command
/// means, so that a daemon owning another data directory refuses instead of acting on the
/// wrong ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlLine {
    /// The data directory the command was given (absolute).
    pub data_dir: std::path::PathBuf,
    /// The request.
    pub request: Request,
}

/// One line of `show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Stream kind.
    pub stream: String,
    /// Purpose.
    pub purpose: Purpose,
    /// `granted`, `expired` or `revoked`.
    pub status: String,
    /// Expiry of a grant, unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    /// Events appended (grant, revoke), durable when this is sent.
    Appended {
        /// The new events (for a revoke of `record`/`profile`, the revocations and then the
        /// `data_erased` receipts).
        events: Vec<Event>,
        /// Ledger epoch after the change.
        epoch: u64,
        /// What the revocation erased, when it covered stored data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        erased: Option<Erasure>,
    },
    /// `forget`: the data is erased and the receipt is durable.
    Forgotten {
        /// What was erased.
        erasure: Erasure,
        /// Sequence number of the `forget_requested` event.
        requested: u64,
        /// The `erased` receipt.
        receipt: Event,
        /// Ledger epoch after the change.
        epoch: u64,
    },
    /// `show`.
    Consent {
        /// Whose.
        participant: ParticipantId,
        /// Per stream kind and purpose.
        lines: Vec<Line>,
        /// Ledger epoch.
        epoch: u64,
    },
    /// `history`.
    History {
        /// The events.
        events: Vec<Event>,
    },
    /// `verify`.
    Verified {
        /// Number of events checked.
        events: u64,
    },
    /// `status`: the daemon's health as one JSON object.
    Status {
        /// See `attune status --json`.
        status: serde_json::Value,
    },
    /// `mark`: the marker is in the session (and in its recording, with `record` consent).
    Marked {
        /// Whose session.
        participant: ParticipantId,
        /// Session time of the marker, s.
        t: f64,
    },
    /// The command was refused; one sentence.
    Error {
        /// Why.
        message: String,
    },
}

/// `show` lines from a fold, at `now_ms`.
pub fn lines(of: &[(crate::model::StreamKind, Purpose, Status)], now_ms: i64) -> Vec<Line> {
    of.iter()
        .map(|(k, p, s)| {
            let (status, expires_ms) = match s {
                Status::Revoked => ("revoked", None),
                Status::Granted { expires_ms } if expires_ms.is_some_and(|x| now_ms >= x) => {
                    ("expired", *expires_ms)
                }
                Status::Granted { expires_ms } => ("granted", *expires_ms),
            };
            Line {
                stream: k.name().to_owned(),
                purpose: *p,
                status: status.to_owned(),
                expires_ms,
            }
        })
        .collect()
}

/// The action name of an event, for people.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Grant => "grant",
        Action::Revoke => "revoke",
        Action::Erased => "erased",
        Action::ForgetRequested => "forget_requested",
        Action::DataErased => "data_erased",
    }
}
