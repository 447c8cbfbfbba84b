//! The Unix socket server as a [`Publisher`]: engine events with a subscriber topic are rendered
//! once ([`super::ndjson`]) and put on the bus the server's connections read
//! ([`super::server`]); the latest `state` line of every stream is kept for new subscribers.
//!
//! Consent: each connection re-checks an event's needs against the consent in force when it
//! writes the line (`server::client`, under the egress gate of [`super::egress`]); the daemon
//! updates that consent before it calls [`Publisher::consent`], so nothing queued here can
//! outlive a revocation and `consent` has nothing left to purge.

use super::messages::Topic;
use super::{Bus, BusMessage, Flow, Publisher, StateBoard, ndjson};
use crate::engine::event::{Event, EventBody};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Unix socket publisher.
pub struct UnixPublisher {
    bus: Bus,
    board: StateBoard,
    drops: Arc<super::EgressDrops>,
    published: BTreeMap<&'static str, u64>,
}

impl UnixPublisher {
    /// Publishes onto `bus` and keeps `board` current.
    pub fn new(bus: Bus, board: StateBoard, drops: Arc<super::EgressDrops>) -> Self {
        Self {
            bus,
            board,
            drops,
            published: BTreeMap::new(),
        }
    }

    /// Messages published per topic name.
    pub fn published(&self) -> &BTreeMap<&'static str, u64> {
        &self.published
    }
}

impl Publisher for UnixPublisher {
    fn name(&self) -> &'static str {
        "unix"
    }

    fn publish(&mut self, event: &Arc<Event>) -> Flow {
        let (Some(topic), Some(participant)) = (ndjson::topic(&event.body), event.participant())
        else {
            return Flow::Continue;
        };
        let Some(line) = ndjson::line(event) else {
            return Flow::Continue;
        };
        if let EventBody::State(s) = &event.body {
            self.board
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((participant.clone(), s.change.kind.name()), line.to_owned());
        }
        let name = match topic {
            Topic::Adaptation => "adaptation",
            Topic::State => "state",
            Topic::Features => "features",
        };
        *self.published.entry(name).or_default() += 1;
        // No receiver is not an error: nobody is subscribed.
        let _ = self.bus.send(Arc::new(BusMessage {
            participant: participant.clone(),
            topic,
            line: line.to_owned(),
            needs: event.needs().to_vec(),
        }));
        Flow::Continue
    }

    fn consent(&mut self, _snapshot: &Arc<crate::consent::ConsentSnapshot>) -> Flow {
        // Egress re-checks every line against the consent in force (module doc).
        Flow::Continue
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "subscribers": self.bus.receiver_count(),
            "published": self.published,
            "dropped": {
                "lagged": self.drops.lagged.load(std::sync::atomic::Ordering::Relaxed),
                "withdrawn_at_egress": self.drops.withdrawn.load(std::sync::atomic::Ordering::Relaxed),
            },
        })
    }
}
