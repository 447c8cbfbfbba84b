//! Transports beyond the Unix socket (edge): WebSocket ([`ws`]), OSC over UDP ([`osc`]), MQTT
//! ([`mqtt`]) and a Lab Streaming Layer outlet ([`lsl`]). Each is a cargo feature (all on by
//! default) and a [`Publisher`]: the engine hands it every event in order and it only
//! enqueues; its own task does the I/O, so a slow or dead counterpart never blocks the engine
//! or the other transports.
//!
//! Rules every transport keeps (DESIGN.md, "The engine boundary"; RELIABILITY.md, "Revocation
//! path"):
//!
//! - **Consent.** Nothing reaches a transport that the same consent would not let reach a
//!   socket subscriber. A transport registers its writer as an egress point
//!   ([`Context::egress`]) and, holding that egress's gate, re-checks each item's
//!   [`needs`](crate::engine::event::Event::needs) against [`Context::consent`] right before
//!   the write ([`allowed`]); items that fail are counted as `withdrawn`. Raw samples (and
//!   values read straight off them) need `share_raw`, not the recorder's `record`
//!   ([`raw_needs`], [`met`]). The daemon publishes a
//!   new consent snapshot before it calls [`Publisher::consent`], and acknowledges a revocation
//!   only once every egress gate was free, so a line checked against the old consent cannot be
//!   sent after the acknowledgement.
//! - **Bounded queues, counted drops** ([`Outbox`]): a full queue drops the new item and counts
//!   it; `status` shows the counters.
//! - **Scope** ([`Scope`]): which participants and topics a transport carries (config).
//! - **Shutdown**: writer tasks are spawned on [`Context::tasks`] and end when
//!   [`Context::closing`] is cancelled (after the engine's last events); the daemon waits for
//!   them at most `DRAIN`.
//! - **Bad counterparts**: a port in use fails the start with one line; a refused or lost
//!   connection is retried (clients, with backoff and jitter) or counted, never a panic.

#[cfg(feature = "lsl")]
pub mod lsl;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "osc")]
pub mod osc;
pub mod section;
#[cfg(feature = "ws")]
pub mod ws;

use super::egress::Egresses;
use super::messages::Topic;
use super::{Publisher, StateBoard, WeakBus};
use crate::consent::ConsentSnapshot;
use crate::engine::event::Event;
use crate::model::ParticipantId;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the daemon gives a transport when it starts it.
#[derive(Clone)]
pub struct Context {
    /// This daemon's id (MQTT topics, LSL source ids): from the config, else the host name.
    pub daemon_id: String,
    /// The consent in force; re-check it at egress ([`allowed`]).
    pub consent: watch::Receiver<Arc<ConsentSnapshot>>,
    /// Register each writer here (the revocation handshake, [`super::egress`]).
    pub egress: Egresses,
    /// Cancelled at shutdown, after the engine's last events were published.
    pub closing: CancellationToken,
    /// Spawn writer tasks here; the daemon waits for them (at most `DRAIN`) at shutdown.
    pub tasks: TaskTracker,
    /// The data directory (private; e.g. the WebSocket token file).
    pub data_dir: PathBuf,
    /// The protocol-v1 bus the Unix socket's subscribers read (a WebSocket serves the same
    /// lines; weak, so it closes when the pipeline ends).
    pub bus: WeakBus,
    /// The latest `state` line of each stream (for a new subscriber's snapshot).
    pub board: StateBoard,
    /// Where client `exercise` and `feedback` messages go (as for the Unix socket).
    pub markers: Option<super::server::Markers>,
    /// Drop counters shared with the Unix socket's connections.
    pub drops: Arc<super::EgressDrops>,
}

/// One transport to start, with its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// A WebSocket server.
    #[cfg(feature = "ws")]
    Ws(ws::WsSpec),
    /// An OSC sender.
    #[cfg(feature = "osc")]
    Osc(osc::OscSpec),
    /// An MQTT client.
    #[cfg(feature = "mqtt")]
    Mqtt(mqtt::MqttSpec),
    /// An LSL outlet.
    #[cfg(feature = "lsl")]
    Lsl(lsl::LslSpec),
}

impl Spec {
    /// The transport's name (`status`, logs, errors).
    pub fn name(&self) -> &'static str {
        match *self {
            #[cfg(feature = "ws")]
            Self::Ws(_) => "websocket",
            #[cfg(feature = "osc")]
            Self::Osc(_) => "osc",
            #[cfg(feature = "mqtt")]
            Self::Mqtt(_) => "mqtt",
            #[cfg(feature = "lsl")]
            Self::Lsl(_) => "lsl",
        }
    }
}

/// Starts one transport. Call it inside the runtime: it may bind and spawn. The error is one
/// line that names the transport.
#[cfg_attr(
    not(any(feature = "ws", feature = "osc", feature = "mqtt", feature = "lsl")),
    allow(unreachable_code, unused_variables)
)]
pub async fn start(spec: Spec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let name = spec.name();
    let r: Result<Box<dyn Publisher>, String> = match spec {
        #[cfg(feature = "ws")]
        Spec::Ws(s) => ws::start(s, ctx).await,
        #[cfg(feature = "osc")]
        Spec::Osc(s) => osc::start(s, ctx).await,
        #[cfg(feature = "mqtt")]
        Spec::Mqtt(s) => mqtt::start(s, ctx).await,
        #[cfg(feature = "lsl")]
        Spec::Lsl(s) => lsl::start(s, ctx).await,
    };
    r.map_err(|e| format!("{name}: {e}"))
}

/// True when the consent in force meets every need of `event` (the egress re-check). Call it
/// while holding the writer's egress gate.
pub fn allowed(event: &Event, consent: &watch::Receiver<Arc<ConsentSnapshot>>) -> bool {
    let Some(p) = event.participant() else {
        return true;
    };
    let snap = consent.borrow();
    event.needs().iter().all(|n| n.met(&snap, p))
}

/// The consents that sending `kind`'s raw samples (or values read straight off them: a strap's
/// HR, its RR intervals, a beat) to a transport needs: `process` and `share_raw`. A `Samples`
/// event's own [`needs`](crate::engine::event::Event::needs) are the recorder's (`record`);
/// a transport that carries samples checks these instead ([`met`]).
pub fn raw_needs(kind: crate::model::StreamKind) -> [super::Need; 2] {
    crate::consent::raw_share(kind)
}

/// True when the consent in force meets every one of `needs` for `participant` (the egress
/// re-check for items a transport derived itself; hold the writer's egress gate).
pub fn met(
    needs: &[super::Need],
    participant: &ParticipantId,
    consent: &watch::Receiver<Arc<ConsentSnapshot>>,
) -> bool {
    let snap = consent.borrow();
    needs.iter().all(|n| n.met(&snap, participant))
}

/// Which participants and topics a transport carries (`None`: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only these participants.
    pub participants: Option<Vec<ParticipantId>>,
    /// Only these topics.
    pub topics: Option<Vec<Topic>>,
}

impl Scope {
    /// True when `participant` is in scope.
    pub fn has_participant(&self, participant: &ParticipantId) -> bool {
        self.participants
            .as_ref()
            .is_none_or(|ps| ps.contains(participant))
    }

    /// True when `topic` is in scope.
    pub fn has_topic(&self, topic: Topic) -> bool {
        self.topics.as_ref().is_none_or(|ts| ts.contains(&topic))
    }
}

/// Counters of one transport's queue (for `status`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Items enqueued.
    pub queued: AtomicU64,
    /// Items dropped because the queue was full.
    pub dropped_full: AtomicU64,
    /// Items dropped at egress: the consent in force no longer allowed them.
    pub withdrawn: AtomicU64,
    /// Items written to the counterpart.
    pub sent: AtomicU64,
    /// Items lost in a failed write or a lost connection.
    pub failed: AtomicU64,
}

impl Counters {
    /// Adds one to `c`.
    pub fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as a JSON object.
    pub fn json(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "queued": g(&self.queued),
            "sent": g(&self.sent),
            "dropped": {
                "queue_full": g(&self.dropped_full),
                "withdrawn_at_egress": g(&self.withdrawn),
                "failed": g(&self.failed),
            },
        })
    }
}

/// The sending side of a transport's bounded queue: never waits; a full queue drops the new
/// item and counts it.
#[derive(Debug)]
pub struct Outbox<T> {
    tx: mpsc::Sender<T>,
    /// The queue's counters (shared with the writer task).
    pub counters: Arc<Counters>,
}

impl<T> Outbox<T> {
    /// A queue of at most `capacity` items and its receiving end.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<T>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                counters: Arc::new(Counters::default()),
            },
            rx,
        )
    }

    /// Enqueues `item`; false when it was dropped (queue full, or the writer is gone).
    pub fn push(&self, item: T) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => {
                Counters::add(&self.counters.queued);
                true
            }
            Err(_) => {
                Counters::add(&self.counters.dropped_full);
                false
            }
        }
    }

    /// True when the writer task has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_outbox_drops_and_counts() {
        let (o, mut rx) = Outbox::new(2);
        assert!(o.push(1));
        assert!(o.push(2));
        assert!(!o.push(3));
        assert_eq!(rx.try_recv().ok(), Some(1));
        assert!(o.push(4));
        let c = o.counters.json();
        assert_eq!(c["queued"], 3);
        assert_eq!(c["dropped"]["queue_full"], 1);
    }

    #[test]
    fn scope_filters_participants_and_topics() {
        let p1 = ParticipantId::new("p1").unwrap();
        let p2 = ParticipantId::new("p2").unwrap();
        let s = Scope {
            participants: Some(vec![p1.clone()]),
            topics: Some(vec![Topic::Adaptation]),
        };
        assert!(s.has_participant(&p1) && !s.has_participant(&p2));
        assert!(s.has_topic(Topic::Adaptation) && !s.has_topic(Topic::Features));
        assert!(Scope::default().has_participant(&p2));
    }
}
