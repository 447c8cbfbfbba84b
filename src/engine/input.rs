//! What sources push into the engine (DESIGN.md, "The engine boundary"). Pure data.
//!
//! Every input carries the session time it arrived at (`host_t`, seconds since the session
//! started, on the host's monotonic clock). Sources stamp it from the daemon's session clock;
//! the engine never lets it run backwards (an input stamped before the last tick is treated as
//! arriving at that tick, so the order the engine saw is the order a replay sees).

use crate::consent::ConsentSnapshot;
use crate::model::{Chunk, Gap, ParticipantId, StreamKind};
use crate::recording::{Device, Marker};
use std::sync::Arc;

/// A source's view of one of its streams (DESIGN.md "Core model": stream state is explicit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// Opening the device or the connection.
    Connecting,
    /// Data is flowing.
    Streaming,
    /// The link dropped; the source is retrying.
    Reconnecting,
    /// The source gave up (or failed to start).
    Lost,
    /// The device reports poor signal (e.g. electrode contact).
    LowQuality,
    /// The source has no more data (end of a replayed recording).
    Ended,
}

/// A source state change for one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// Whose stream.
    pub participant: ParticipantId,
    /// Which stream.
    pub kind: StreamKind,
    /// The new state.
    pub status: SourceStatus,
    /// Session time the source noticed it, s.
    pub host_t: f64,
    /// One line for people (`"connection refused"`), if any.
    pub detail: Option<String>,
}

/// What a stream is, as its source declares it before its first chunk: what a recording's header
/// says about a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Whose stream.
    pub participant: ParticipantId,
    /// Which stream.
    pub kind: StreamKind,
    /// Nominal rate for uniform kinds, Hz.
    pub rate_hz: Option<f64>,
    /// The device and its protocol.
    pub device: Device,
}

/// One input to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A participant joins the session (declared in the config, or a replayed recording's).
    /// Their ticks, states and decisions start now, data or not.
    Join(ParticipantId),
    /// A participant leaves the session (removed from a reloaded configuration): everything the
    /// engine holds about them (features, baseline, states, clocks) is dropped.
    Leave(ParticipantId),
    /// A stream is declared (before its first chunk).
    Stream(Arc<StreamInfo>),
    /// Samples; `chunk.host_t` is the arrival time.
    Chunk(Chunk),
    /// An explicit stretch without data.
    Gap(Gap),
    /// A source state change.
    Source(SourceState),
    /// A marker for one participant (an app's `exercise` message, `attune mark`, a recording's).
    Marker(ParticipantId, Marker),
    /// The consent in force changed (a command, an expiry).
    Consent(Arc<ConsentSnapshot>),
    /// Session time has reached `t`: emit every tick at or before it.
    Advance(f64),
    /// Nothing at all arrived from `from` to `to` (a replayed silence longer than the engine
    /// ticks through): every stream is a gap, ticks resume at `to` without those in between.
    Skip {
        /// Start of the silence, s.
        from: f64,
        /// End of the silence, s.
        to: f64,
    },
}

impl Input {
    /// The session time this input carries, if any.
    pub fn host_t(&self) -> Option<f64> {
        match self {
            Self::Chunk(c) => Some(c.host_t),
            Self::Gap(g) => Some(g.host_t),
            Self::Source(s) => Some(s.host_t),
            Self::Marker(_, m) => Some(m.host_t),
            Self::Advance(t) => Some(*t),
            // Time reaches the start of the silence; the skip itself moves the ticks past it.
            Self::Skip { from, .. } => Some(*from),
            Self::Join(_) | Self::Leave(_) | Self::Stream(_) | Self::Consent(_) => None,
        }
    }
}
