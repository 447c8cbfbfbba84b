//! MQTT client (edge): protocol v1 lines on a broker's topics, for venues that fan out to many
//! rooms or devices (rumqttc, MQTT 3.1.1, plain TCP or TLS: [`tls`]).
//!
//! # Topics
//!
//! | topic | payload | QoS | retained |
//! |---|---|---|---|
//! | `attune/<daemon-id>/<participant>/decision` | the `adaptation` line | 1 | no |
//! | `attune/<daemon-id>/<participant>/features` | the `features` line | 0 | no |
//! | `attune/<daemon-id>/<participant>/state` | the `state` line | 1 | no |
//! | `attune/<daemon-id>/lagged` | a `lagged` line: messages lost while the broker was away | 1 | no |
//! | `attune/<daemon-id>/status` | `online` or `offline` | 1 | yes, and the last will |
//!
//! Payloads are the JSON lines a Unix socket subscriber reads (docs/protocol.md), byte for
//! byte. `<daemon-id>` is the host name reduced to `[A-Za-z0-9_-]`; `attune` is `prefix`.
//! Decisions and states are QoS 1 (at least once: an app must not miss an `ease_off`);
//! features are QoS 0 (four a second, each superseding the last). No participant topic is
//! retained: a broker must not keep a person's data after their consent changes. `status`
//! is retained and is the connection's last will, so a subscriber sees `offline` when the daemon
//! stops (published at shutdown) or dies (the broker publishes the will when the connection
//! drops or goes silent for 1.5 keepalives); it is re-published as `online` on every connection.
//!
//! # Connection, queue, consent
//!
//! The engine only enqueues (bounded queue, `queue_full` drops counted). Two tasks do the I/O
//! (`link.rs`): the driver polls rumqttc's event loop (and is never cancelled mid-poll) and
//! reconnects after a failure with its own exponential backoff with jitter (0.5 s doubling to
//! 30 s, each wait drawn from 50–100 % of the step; rumqttc retries at once, without backoff).
//! The writer takes each message, and under its egress gate re-checks its consent, hands it to
//! rumqttc and waits until rumqttc has written it to the connection (or the connection is
//! dropped, which discards it), so a revocation's acknowledgement comes after every message the
//! old consent allowed has left. Sessions are clean: messages not yet written when the
//! connection fails are discarded, never re-sent later, and with those that arrive while the
//! broker is away they are counted as `failed` (the gap), announced on `…/lagged` at the next
//! connection, and shown in `attune status`. A broker that is down, refuses the connection
//! (`not authorized`, a bad client id) or drops it is one log line per outage; the daemon and
//! the other transports go on.

use super::{Context, Outbox, Scope};
use crate::consent::Need;
use crate::engine::event::Event;
use crate::model::ParticipantId;
use crate::publish::messages::Topic;
use crate::publish::{Flow, Publisher, ndjson};
use std::sync::Arc;

mod config;
mod link;
pub mod tls;

pub use config::{MqttSpec, check_level, from_section};

/// The default broker.
pub const DEFAULT_ADDR: &str = "127.0.0.1:1883";

/// One message for the broker, with the consent it rests on.
#[derive(Debug)]
struct Msg {
    participant: ParticipantId,
    needs: Vec<Need>,
    topic: Topic,
    line: String,
}

/// The last topic level of a protocol topic.
fn level(t: Topic) -> &'static str {
    match t {
        Topic::Adaptation => "decision",
        Topic::Features => "features",
        Topic::State => "state",
    }
}

/// The QoS of a protocol topic (module docs).
fn qos(t: Topic) -> rumqttc::QoS {
    match t {
        Topic::Features => rumqttc::QoS::AtMostOnce,
        Topic::Adaptation | Topic::State => rumqttc::QoS::AtLeastOnce,
    }
}

/// The MQTT transport as a [`Publisher`].
pub struct MqttPublisher {
    spec: MqttSpec,
    out: Outbox<Msg>,
    link: tokio::sync::watch::Receiver<link::LinkState>,
    client_id: String,
    base: String,
}

impl Publisher for MqttPublisher {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn publish(&mut self, event: &Arc<Event>) -> Flow {
        let (Some(topic), Some(p)) = (ndjson::topic(&event.body), event.participant()) else {
            return Flow::Continue;
        };
        if !self.spec.scope.has_participant(p) || !self.spec.scope.has_topic(topic) {
            return Flow::Continue;
        }
        let Some(line) = ndjson::line(event) else {
            return Flow::Continue;
        };
        self.out.push(Msg {
            participant: p.clone(),
            needs: event.needs().to_vec(),
            topic,
            line: line.to_owned(),
        });
        Flow::Continue
    }

    fn consent(&mut self, _snapshot: &Arc<crate::consent::ConsentSnapshot>) -> Flow {
        // The writer re-checks every message against the consent in force under its egress
        // gate and holds the gate until rumqttc wrote it (module docs).
        Flow::Continue
    }

    fn status(&self) -> serde_json::Value {
        let mut v = self.out.counters.json();
        let l = self.link.borrow().clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("broker".into(), serde_json::json!(self.spec.addr));
            o.insert("tls".into(), serde_json::json!(self.spec.tls.is_some()));
            o.insert("client_id".into(), serde_json::json!(self.client_id));
            o.insert(
                "topics".into(),
                serde_json::json!(format!("{}/…", self.base)),
            );
            o.insert("connected".into(), serde_json::json!(l.connected));
            o.insert("connections".into(), serde_json::json!(l.epoch));
            o.insert("last_error".into(), serde_json::json!(l.last_error));
        }
        v
    }
}

/// Starts the MQTT transport: checks the settings and spawns the driver and the writer. The
/// broker need not be up: the driver keeps trying (module docs).
pub async fn start(spec: MqttSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let (host, port) = spec.host_port()?;
    let daemon = check_level("daemon id", &ctx.daemon_id)?;
    let base = format!("{}/{daemon}", spec.prefix);
    let client_id = spec
        .client_id
        .clone()
        .unwrap_or_else(|| format!("attune-{daemon}"));
    let password = match &spec.password_file {
        Some(f) => Some(read_password(f)?),
        None => None,
    };
    let mut opts = rumqttc::MqttOptions::new(client_id.clone(), host, port);
    opts.set_keep_alive(spec.keep_alive)
        .set_clean_session(true)
        .set_last_will(rumqttc::LastWill::new(
            format!("{base}/status"),
            "offline",
            rumqttc::QoS::AtLeastOnce,
            true,
        ));
    if let Some(u) = &spec.username {
        opts.set_credentials(u.clone(), password.unwrap_or_default());
    }
    if let Some(t) = &spec.tls {
        let config = tls::client_config(t).map_err(|e| format!("[mqtt] {e}"))?;
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ));
    }
    let (out, rx) = Outbox::new(spec.queue);
    let link = link::spawn(
        opts,
        link::Setup {
            addr: spec.addr.clone(),
            base: base.clone(),
            counters: out.counters.clone(),
            consent: ctx.consent.clone(),
            registration: ctx.egress.register(),
        },
        rx,
        ctx,
    );
    tracing::info!(broker = %spec.addr, tls = spec.tls.is_some(), topics = %format!("{base}/…"), "MQTT: publishing.");
    Ok(Box::new(MqttPublisher {
        spec,
        out,
        link,
        client_id,
        base,
    }))
}

/// The first line of a password file (which should be private: a warning says when others may
/// read it).
fn read_password(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
    warn_if_others_may_read(path, "password file");
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// A warning when a secret (`what`: the password file, the client key) is readable by other
/// users.
pub(crate) fn warn_if_others_may_read(path: &std::path::Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "MQTT: the {what} can be read by other users (chmod 600 it).");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_qos_follow_the_table() {
        assert_eq!(level(Topic::Adaptation), "decision");
        assert_eq!(level(Topic::Features), "features");
        assert_eq!(level(Topic::State), "state");
        assert_eq!(qos(Topic::Adaptation), rumqttc::QoS::AtLeastOnce);
        assert_eq!(qos(Topic::State), rumqttc::QoS::AtLeastOnce);
        assert_eq!(qos(Topic::Features), rumqttc::QoS::AtMostOnce);
    }

    #[test]
    fn ids_that_are_not_one_topic_level_are_refused() {
        for bad in ["a/b", "a+b", "#", ""] {
            assert!(check_level("daemon id", bad).is_err(), "{bad}");
        }
        assert!(check_level("daemon id", "lab-pc_2").is_ok());
    }
}
