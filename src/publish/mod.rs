//! Publishing to subscribers.
//!
//! - [`messages`] (pure): protocol v1 lines and the client-line parser.
//! - [`server`] (edge): the Unix socket server with private permissions, peer-uid check,
//!   separate limits for subscribed and not-yet-subscribed connections, an idle timeout before
//!   `subscribe`, bounded per-subscriber queues (`lagged` on loss) and line-length limits.
//! - [`egress`] (edge): the consent-epoch handshake that lets a revocation be acknowledged only
//!   when no line the old consent allowed can still be written.
//! - [`transport`] (edge): WebSocket, OSC, MQTT and LSL, each a [`Publisher`] with a bounded
//!   queue and the same consent re-check at egress.
//! - [`trust`] (edge): what clients check before sending a byte to a socket (private
//!   directory, daemon's uid).
//!
//! The pipeline publishes each message once onto a [`Bus`]: a bounded broadcast ring (tokio
//! `broadcast`, loom-tested upstream). Every subscriber reads the ring at its own pace; one that
//! falls more than the ring's capacity behind loses its oldest messages and is told how many in a
//! `lagged` line. The pipeline never waits for a subscriber (STYLE.md §10, `DropOldest`).

pub mod egress;
pub mod messages;
pub mod ndjson;
pub mod server;
pub mod transport;
pub mod trust;
pub mod unix;

use crate::model::ParticipantId;
use messages::Topic;
use std::sync::Arc;
use tokio::sync::broadcast;

/// One published line with what subscribers filter on.
#[derive(Debug)]
pub struct BusMessage {
    /// The participant it concerns.
    pub participant: ParticipantId,
    /// Its topic.
    pub topic: Topic,
    /// The JSON line, without newline.
    pub line: String,
    /// The consents this line relies on: egress drops it if any was withdrawn after it was
    /// queued (RELIABILITY.md, revocation path).
    pub needs: Vec<Need>,
}

pub use crate::consent::Need;

/// The sending side of the bus.
pub type Bus = broadcast::Sender<Arc<BusMessage>>;

/// A handle that can join the bus without keeping it open (clients hold this, so the bus closes
/// when the pipeline drops its sender).
pub type WeakBus = broadcast::WeakSender<Arc<BusMessage>>;

/// The latest `state` line of every stream, so that a new subscriber learns the current states
/// at once instead of waiting for the next change. Key: (participant, stream kind name).
pub type StateBoard =
    Arc<std::sync::Mutex<std::collections::BTreeMap<(ParticipantId, &'static str), String>>>;

/// Messages the subscriber connections dropped, by reason (`attune status`).
#[derive(Debug, Default)]
pub struct EgressDrops {
    /// Lost by subscribers that fell behind (each was told in a `lagged` line).
    pub lagged: std::sync::atomic::AtomicU64,
    /// Withdrawn at egress: queued before a revocation, not written after it.
    pub withdrawn: std::sync::atomic::AtomicU64,
}

/// A bus whose ring holds `capacity` messages (the per-subscriber queue bound).
pub fn bus(capacity: usize) -> Bus {
    broadcast::channel(capacity.max(1)).0
}

/// What a publisher tells the engine after an event (STYLE.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep sending.
    Continue,
    /// Detach this publisher (it failed for good, or has nothing more to do).
    Stop,
}

/// A push-model sink for engine events: the Unix socket, the recorder, later WebSocket, OSC,
/// MQTT and LSL (DESIGN.md, "The engine boundary").
///
/// Methods only enqueue; the transport's own task does the I/O, so a slow transport never
/// blocks the engine. Every event's [`Event::needs`](crate::engine::event::Event::needs) must
/// still be met by the consent in force when the transport writes it.
pub trait Publisher: Send {
    /// A short name for `status` and logs (`"unix"`, `"recorder"`).
    fn name(&self) -> &'static str;
    /// One event, in engine order. Must not block.
    fn publish(&mut self, event: &Arc<crate::engine::event::Event>) -> Flow;
    /// The consent in force changed. No default: each transport must drop what it has queued
    /// that `snapshot` no longer allows, and stop what it no longer covers, before returning.
    fn consent(&mut self, snapshot: &Arc<crate::consent::ConsentSnapshot>) -> Flow;
    /// Counters and state for `attune status` (a JSON object).
    fn status(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}
