//! OSC over UDP (edge): heart rate for VRChat avatars, and attune's own data for any OSC app.
//!
//! Encoding: OSC 1.0 messages (Wright 2002, opensoundcontrol.org), one UDP datagram each, with
//! the `rosc` crate. Default target 127.0.0.1:9000 (VRChat's OSC input port). OSCQuery is not
//! spoken.
//!
//! # Avatar parameters (the VRChat heart-rate convention)
//!
//! The parameters the common heart-rate tools send, so that avatars built for them work
//! unchanged (HRPresence and PyHRPresence: `HR`, `floatHR`, `isHRConnected`, `HeartBeatToggle`,
//! `RRInterval` under `/avatar/parameters/`). The prefix and every name are configurable
//! (`[osc]` keys `prefix`, `hr`, `float_hr`, `connected`, `beat_toggle`, `rr_interval`).
//!
//! | address | type | value |
//! |---|---|---|
//! | `/avatar/parameters/HR` | int | heart rate, bpm, clamped to 0–255 |
//! | `/avatar/parameters/floatHR` | float | `HR / 255 · 2 − 1` (0–255 onto −1..1, as HRPresence maps it) |
//! | `/avatar/parameters/isHRConnected` | bool | a heart value arrived within `hr_timeout_s` (5 s) and the heart stream is streaming |
//! | `/avatar/parameters/HeartBeatToggle` | bool | flips on every real beat (an RR interval), never on a timer |
//! | `/avatar/parameters/RRInterval` | int | the beat's RR interval, ms |
//!
//! Where the heart rate comes from: each RR interval of a strap or device (`HR = 60000 / RR`,
//! with the beat toggle), or a strap's own HR value; both are raw values and need the stream's
//! `process` and `share_raw` consent ([`super::raw_needs`]). Without `share_raw`, the 10 s heart
//! rate of the features is sent instead (it needs `share_features`, as for a socket subscriber),
//! and `HeartBeatToggle` does not flip. Beats that attune detects itself in raw ECG/PPG are not
//! engine events today, so an ECG/PPG-only participant drives the avatar from the features.
//! RR intervals arrive in batches (a strap notifies about once a second): the toggles of a batch
//! are sent as it arrives, not spread over the beats' times.
//!
//! One participant drives the avatar: `avatar_participant` if configured, otherwise the first
//! participant heart data arrives for (logged once).
//!
//! # attune's own data
//!
//! Under `/attune/<participant>/` (the `attune` prefix is `attune_prefix`): `action` (string:
//! `ease_off`, `hold`, `escalate`), `arousal` (float 0..1, only when known), `confidence`
//! (float), `arousal_state` (string), `rule` (string), `state/<stream>` (string: the stream's
//! state), and `features/<name>` (float, each consented feature: `hr_bpm`, `rmssd_ms`,
//! `scl_us`, `scr_per_min`). Each needs what the same message needs on the Unix socket.
//!
//! # Timing, queue, failures
//!
//! Sent on each update, plus a keepalive every second that repeats the avatar's last `HR`,
//! `floatHR` and `isHRConnected` (false once no heart value came for `hr_timeout_s`, or the heart
//! stream stopped streaming). The engine only enqueues (bounded queue, `queue_full` drops
//! counted); the writer task re-checks each message's consent under its egress gate just before
//! sending it. A send error (the target is unreachable: `ECONNREFUSED` from ICMP, no route) is
//! counted as `failed` and logged once per outage; the transport never stops the daemon.

use super::{Context, Counters, Outbox, Scope};
use crate::consent::Need;
use crate::engine::event::{Event, EventBody};
use crate::features::FEATURE_NAMES;
use crate::model::{ParticipantId, StreamKind, StreamState};
use crate::publish::messages::Topic;
use crate::publish::{Flow, Publisher};
use rosc::{OscMessage, OscPacket, OscType};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// The default OSC target (VRChat's input port).
pub const DEFAULT_ADDR: &str = "127.0.0.1:9000";

/// An outage is over after this long without a send error.
const OUTAGE_QUIET: Duration = Duration::from_secs(5);

/// The keepalive period.
pub const KEEPALIVE: Duration = Duration::from_secs(1);

mod config;
#[cfg(test)]
mod tests;

pub use config::{AvatarNames, OscSpec, from_section};

/// One message to send, with the consent it rests on.
#[derive(Debug, Clone, PartialEq)]
struct Out {
    participant: ParticipantId,
    needs: Vec<Need>,
    addr: String,
    args: Vec<OscType>,
    /// Heart state the writer keeps for the keepalive: `Some(bpm)` for an avatar HR value.
    heart: Option<f64>,
}

/// What the writer is told besides messages.
#[derive(Debug)]
enum Item {
    Send(Out),
    /// The avatar's heart stream stopped streaming.
    HeartLost,
}

/// The avatar's part of the publisher's state (the engine side).
struct Avatar {
    who: Option<ParticipantId>,
    toggle: bool,
    /// Heart rate from beats or a strap arrived recently (so the features' HR is not used).
    raw_heart_t: Option<f64>,
}

/// The OSC transport as a [`Publisher`].
pub struct OscPublisher {
    spec: OscSpec,
    out: Outbox<Item>,
    avatar: Avatar,
    /// The consent last handed to [`Publisher::consent`]: raw heart values are used only where
    /// it allows `share_raw` (the writer re-checks every message anyway).
    snapshot: Option<Arc<crate::consent::ConsentSnapshot>>,
}

fn float_hr(bpm: f64) -> f32 {
    ((bpm.clamp(0.0, 255.0) / 255.0) * 2.0 - 1.0) as f32
}

fn hr_int(bpm: f64) -> i32 {
    bpm.round().clamp(0.0, 255.0) as i32
}

impl OscPublisher {
    fn param(&self, name: &str) -> String {
        format!("{}/{name}", self.spec.prefix)
    }

    fn own(&self, p: &ParticipantId, rest: &str) -> String {
        format!("{}/{p}/{rest}", self.spec.attune_prefix)
    }

    fn push(&self, participant: &ParticipantId, needs: &[Need], addr: String, args: Vec<OscType>) {
        self.out.push(Item::Send(Out {
            participant: participant.clone(),
            needs: needs.to_vec(),
            addr,
            args,
            heart: None,
        }));
    }

    /// The avatar's HR messages for `bpm` (and a beat's toggle and RR when `rr_ms` is given).
    fn heart(&mut self, p: &ParticipantId, needs: &[Need], bpm: f64, rr_ms: Option<f64>) {
        if !(bpm.is_finite() && bpm > 0.0) {
            return;
        }
        let n = self.spec.names.clone();
        if let Some(rr) = rr_ms {
            self.avatar.toggle = !self.avatar.toggle;
            self.push(
                p,
                needs,
                self.param(&n.beat_toggle),
                vec![OscType::Bool(self.avatar.toggle)],
            );
            self.push(
                p,
                needs,
                self.param(&n.rr_interval),
                vec![OscType::Int(rr.round().clamp(0.0, 65535.0) as i32)],
            );
        }
        self.out.push(Item::Send(Out {
            participant: p.clone(),
            needs: needs.to_vec(),
            addr: self.param(&n.hr),
            args: vec![OscType::Int(hr_int(bpm))],
            heart: Some(bpm),
        }));
        self.push(
            p,
            needs,
            self.param(&n.float_hr),
            vec![OscType::Float(float_hr(bpm))],
        );
        self.push(
            p,
            needs,
            self.param(&n.connected),
            vec![OscType::Bool(true)],
        );
    }

    /// True when `p` drives the avatar (the first with heart data, unless configured).
    fn drives_avatar(&mut self, p: &ParticipantId) -> bool {
        match &self.avatar.who {
            Some(w) => w == p,
            None => {
                info!(participant = %p, "OSC: this participant drives the avatar parameters.");
                self.avatar.who = Some(p.clone());
                true
            }
        }
    }
}

impl Publisher for OscPublisher {
    fn name(&self) -> &'static str {
        "osc"
    }

    fn publish(&mut self, event: &Arc<Event>) -> Flow {
        let Some(p) = event.participant().cloned() else {
            return Flow::Continue;
        };
        if !self.spec.scope.has_participant(&p) {
            return Flow::Continue;
        }
        let needs = event.needs();
        match &event.body {
            EventBody::Adaptation(a) if self.spec.scope.has_topic(Topic::Adaptation) => {
                let d = &a.decision;
                let s = |x: &str| vec![OscType::String(x.to_owned())];
                self.push(&p, needs, self.own(&p, "action"), s(d.action.name()));
                if let Some(x) = d.arousal.filter(|x| x.is_finite()) {
                    self.push(
                        &p,
                        needs,
                        self.own(&p, "arousal"),
                        vec![OscType::Float(x as f32)],
                    );
                }
                self.push(
                    &p,
                    needs,
                    self.own(&p, "confidence"),
                    vec![OscType::Float(d.confidence as f32)],
                );
                self.push(&p, needs, self.own(&p, "arousal_state"), s(d.state.name()));
                self.push(&p, needs, self.own(&p, "rule"), s(d.rule.name()));
            }
            EventBody::Features(_, f) => {
                if self.spec.scope.has_topic(Topic::Features) {
                    for (i, v) in f.values.iter().enumerate() {
                        if let Some(v) = v.filter(|v| v.is_finite()) {
                            let addr = self.own(&p, &format!("features/{}", FEATURE_NAMES[i]));
                            self.push(&p, needs, addr, vec![OscType::Float(v as f32)]);
                        }
                    }
                }
                // The features' HR drives the avatar when no raw heart value does.
                let raw_recent = self
                    .avatar
                    .raw_heart_t
                    .is_some_and(|t| f.t - t <= self.spec.hr_timeout_s);
                if let Some(hr) = f.values[0]
                    && !raw_recent
                    && self.drives_avatar(&p)
                {
                    self.heart(&p, needs, hr, None);
                }
            }
            EventBody::State(s) => {
                let c = &s.change;
                if self.spec.scope.has_topic(Topic::State) {
                    let addr = self.own(&p, &format!("state/{}", c.kind.name()));
                    self.push(
                        &p,
                        needs,
                        addr,
                        vec![OscType::String(c.state.name().into())],
                    );
                }
                let heart = matches!(
                    c.kind,
                    StreamKind::Rr | StreamKind::Hr | StreamKind::Ecg | StreamKind::Ppg
                );
                if heart
                    && c.state != StreamState::Streaming
                    && self.avatar.who.as_ref() == Some(&p)
                {
                    self.out.push(Item::HeartLost);
                }
            }
            EventBody::Samples(c) if matches!(c.kind, StreamKind::Rr | StreamKind::Hr) => {
                let raw = super::raw_needs(c.kind);
                let shared = self
                    .snapshot
                    .as_ref()
                    .is_some_and(|s| raw.iter().all(|n| n.met(s, &p)));
                if !shared || !self.drives_avatar(&p) {
                    return Flow::Continue;
                }
                for (i, &v) in c.samples.iter().enumerate() {
                    let (bpm, rr) = match c.kind {
                        StreamKind::Rr if v > 0.0 => (60_000.0 / v, Some(v)),
                        StreamKind::Hr => (v, None),
                        _ => continue,
                    };
                    self.avatar.raw_heart_t = Some(c.time_of(i).max(c.host_t));
                    self.heart(&p, &raw, bpm, rr);
                }
            }
            _ => {}
        }
        Flow::Continue
    }

    fn consent(&mut self, snapshot: &Arc<crate::consent::ConsentSnapshot>) -> Flow {
        self.snapshot = Some(snapshot.clone());
        // The writer re-checks every message against the consent in force, under its egress
        // gate, right before it sends it: nothing queued can outlive a revocation.
        Flow::Continue
    }

    fn status(&self) -> serde_json::Value {
        let mut v = self.out.counters.json();
        if let Some(o) = v.as_object_mut() {
            o.insert("target".into(), serde_json::json!(self.spec.addr));
            o.insert(
                "avatar_participant".into(),
                serde_json::json!(self.avatar.who.as_ref().map(ParticipantId::as_str)),
            );
        }
        v
    }
}

/// Starts the OSC transport: resolves the target and spawns the writer.
pub async fn start(spec: OscSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let target = tokio::net::lookup_host(&spec.addr)
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", spec.addr))?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", spec.addr))?;
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = tokio::net::UdpSocket::bind(local)
        .await
        .map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket
        .connect(target)
        .await
        .map_err(|e| format!("cannot send to {target}: {e}"))?;
    let (out, rx) = Outbox::new(spec.queue);
    let writer = Writer {
        socket,
        counters: out.counters.clone(),
        consent: ctx.consent.clone(),
        registration: ctx.egress.register(),
        names: spec.names.clone(),
        prefix: spec.prefix.clone(),
        timeout: Duration::from_secs_f64(spec.hr_timeout_s),
        failing: None,
    };
    ctx.tasks.spawn(writer.run(rx, ctx.closing.clone()));
    info!(target = %target, "OSC: sending.");
    Ok(Box::new(OscPublisher {
        avatar: Avatar {
            who: spec.avatar_participant.clone(),
            toggle: false,
            raw_heart_t: None,
        },
        spec,
        out,
        snapshot: Some(ctx.consent.borrow().clone()),
    }))
}

/// The writer task: sends each message after the consent re-check, and the keepalive.
struct Writer {
    socket: tokio::net::UdpSocket,
    counters: Arc<Counters>,
    consent: tokio::sync::watch::Receiver<Arc<crate::consent::ConsentSnapshot>>,
    registration: crate::publish::egress::Registration,
    names: AvatarNames,
    prefix: String,
    timeout: Duration,
    /// The last send error of the current outage.
    failing: Option<tokio::time::Instant>,
}

/// The avatar's heart as the keepalive repeats it.
struct LastHeart {
    participant: ParticipantId,
    needs: Vec<Need>,
    bpm: f64,
    at: tokio::time::Instant,
    lost: bool,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Item>,
        closing: tokio_util::sync::CancellationToken,
    ) {
        let mut keepalive = tokio::time::interval(KEEPALIVE);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<LastHeart> = None;
        loop {
            tokio::select! {
                biased;
                _ = closing.cancelled() => break,
                _ = self.registration.egress.cancel.cancelled() => break,
                item = rx.recv() => match item {
                    Some(Item::Send(o)) => {
                        if let Some(bpm) = o.heart {
                            last = Some(LastHeart {
                                participant: o.participant.clone(),
                                needs: o.needs.clone(),
                                bpm,
                                at: tokio::time::Instant::now(),
                                lost: false,
                            });
                        }
                        self.send(&o).await;
                    }
                    Some(Item::HeartLost) => {
                        if let Some(l) = &mut last {
                            l.lost = true;
                        }
                        self.connected_false(last.as_ref()).await;
                    }
                    None => break,
                },
                _ = keepalive.tick() => {
                    let Some(l) = &last else { continue };
                    if l.lost || l.at.elapsed() > self.timeout {
                        self.connected_false(Some(l)).await;
                        continue;
                    }
                    let p = |n: &str| format!("{}/{n}", self.prefix);
                    for (addr, args) in [
                        (p(&self.names.hr), vec![OscType::Int(hr_int(l.bpm))]),
                        (p(&self.names.float_hr), vec![OscType::Float(float_hr(l.bpm))]),
                        (p(&self.names.connected), vec![OscType::Bool(true)]),
                    ] {
                        let o = Out {
                            participant: l.participant.clone(),
                            needs: l.needs.clone(),
                            addr,
                            args,
                            heart: None,
                        };
                        self.send(&o).await;
                    }
                }
            }
        }
        // Say the heart is gone as the daemon stops (avatars then show it disconnected).
        self.connected_false(last.as_ref()).await;
    }

    /// `isHRConnected` false (it carries no data, so it needs no consent).
    async fn connected_false(&mut self, last: Option<&LastHeart>) {
        let Some(l) = last else { return };
        let o = Out {
            participant: l.participant.clone(),
            needs: Vec::new(),
            addr: format!("{}/{}", self.prefix, self.names.connected),
            args: vec![OscType::Bool(false)],
            heart: None,
        };
        self.send(&o).await;
    }

    async fn send(&mut self, o: &Out) {
        let bytes = match rosc::encoder::encode(&OscPacket::Message(OscMessage {
            addr: o.addr.clone(),
            args: o.args.clone(),
        })) {
            Ok(b) => b,
            Err(e) => {
                Counters::add(&self.counters.failed);
                warn!(address = %o.addr, error = %e, "OSC: a message could not be encoded.");
                return;
            }
        };
        let egress = self.registration.egress.clone();
        let _gate = egress.gate.lock().await;
        if egress.cancel.is_cancelled() {
            return;
        }
        if !super::met(&o.needs, &o.participant, &self.consent) {
            Counters::add(&self.counters.withdrawn);
            return;
        }
        match self.socket.send(&bytes).await {
            Ok(_) => {
                Counters::add(&self.counters.sent);
                // A UDP send succeeds before the ICMP error of the previous one arrives, so
                // the outage is over only after a quiet spell without errors.
                if self
                    .failing
                    .is_some_and(|last| last.elapsed() >= OUTAGE_QUIET)
                {
                    self.failing = None;
                    info!("OSC: no send error for a while; the target seems back.");
                }
            }
            Err(e) => {
                Counters::add(&self.counters.failed);
                let now = tokio::time::Instant::now();
                if self.failing.replace(now).is_none() {
                    warn!(error = %e, "OSC: the target is unreachable; messages are counted as failed until it is back.");
                }
            }
        }
    }
}
