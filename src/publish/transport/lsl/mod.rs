//! Lab Streaming Layer outlets (edge): the signals and decisions of each participant as LSL
//! streams a lab records with LabRecorder, with the pure-Rust `labstream` crate (its wire
//! protocol follows liblsl; pylsl 1.18.6, which bundles liblsl, reads it, tested in the suite).
//!
//! # Streams
//!
//! One outlet per participant and signal, opened when its first samples arrive:
//!
//! | name | type | channel (label, unit, type) | rate | `source_id` |
//! |---|---|---|---|---|
//! | `attune <p> ECG` | `ECG` | `ECG`, `microvolts`, `ECG` | the device's nominal rate | `attune-<daemon-id>-<p>-ecg` |
//! | `attune <p> PPG` | `PPG` | `PPG`, `a.u.`, `PPG` | nominal | `attune-<daemon-id>-<p>-ppg` |
//! | `attune <p> EDA` | `GSR` | `EDA`, `microsiemens`, `GSR` | nominal | `attune-<daemon-id>-<p>-eda` |
//! | `attune <p> RR` | `RR` | `RR`, `milliseconds`, `RR` | irregular (one sample per beat) | `attune-<daemon-id>-<p>-rr` |
//! | `attune <p> Markers` | `Markers` | one string channel | irregular | `attune-<daemon-id>-<p>-markers` |
//!
//! Samples are float32, ECG converted from attune's mV to µV. `source_id`s stay the same across
//! restarts, so LabRecorder finds a stream again after the daemon or a device comes back. The
//! markers are the protocol-v1 `adaptation` lines of the participant's decisions, and
//! `{"type":"marker","label":…,"data":…}` for each marker (an app's `exercise_start`/`_end`
//! and `feedback`, a researcher's `attune mark`), as compact JSON.
//!
//! # Time
//!
//! Timestamps are on the LSL clock (`labstream::clock()`, liblsl's `local_clock`). Each stream
//! is anchored when its first samples arrive: the newest sample's device time is mapped to the
//! clock reading then, and later samples keep their device spacing from it (a uniform stream's
//! samples are `1/rate` apart, an RR stream's beats are at their device times). Device-clock
//! drift against the host is therefore not corrected (100 ppm is 0.36 s an hour), and a stream
//! whose device time jumps back (a replayed file restarting, a device reset) is re-anchored.
//! Markers are anchored the same way on session time. At `--speed` other than 1 the stamps follow
//! session time, not the wall clock.
//!
//! # Consent, queue, failures
//!
//! Raw samples leave the process here, so each stream needs `process` and `share_raw` for it
//! ([`super::raw_needs`]); decisions need what they need on the socket, markers `record`
//! (LabRecorder records them). The writer re-checks each item under its egress gate right
//! before the push and closes a stream's outlet when its consent is withdrawn (LabRecorder then
//! sees the stream end). The engine only enqueues (bounded, `queue_full` counted), and does not
//! queue samples whose `share_raw` is missing. An outlet that cannot be opened (no network
//! interface for discovery, LSL's port range used up) is logged once; its data is counted as
//! `failed` and it is tried again every 30 s. LSL's default port range (`ports.BasePort` 16572,
//! `ports.PortRange` 32 in `lsl_api.cfg`, which labstream reads as liblsl does) holds about 16
//! outlets per machine with IPv4 and IPv6: raise `PortRange` for more participants.

use super::{Context, Counters, Outbox};
use crate::consent::Need;
use crate::engine::event::{Event, EventBody};
use crate::model::{ParticipantId, StreamKind, Timing};
use crate::publish::messages::Topic;
use crate::publish::{Flow, Publisher, ndjson};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{info, warn};

mod config;

pub use config::{LslSpec, from_section};

/// One stream's outlet description.
struct Kind {
    label: &'static str,
    stream_type: &'static str,
    unit: &'static str,
    /// Factor from attune's unit to the outlet's.
    scale: f64,
}

fn kind_of(k: StreamKind) -> Option<Kind> {
    let (label, stream_type, unit, scale) = match k {
        StreamKind::Ecg => ("ECG", "ECG", "microvolts", 1000.0),
        StreamKind::Ppg => ("PPG", "PPG", "a.u.", 1.0),
        StreamKind::Eda => ("EDA", "GSR", "microsiemens", 1.0),
        StreamKind::Rr => ("RR", "RR", "milliseconds", 1.0),
        _ => return None,
    };
    Some(Kind {
        label,
        stream_type,
        unit,
        scale,
    })
}

/// What the writer is handed.
#[derive(Debug)]
enum Item {
    /// Samples of one stream: device times and values (in attune's unit).
    Samples {
        participant: ParticipantId,
        kind: StreamKind,
        /// `Some(rate)` for a uniform stream.
        rate: Option<f64>,
        times: Vec<f64>,
        values: Vec<f64>,
    },
    /// A marker string at session time `t`.
    Marker {
        participant: ParticipantId,
        needs: Vec<Need>,
        t: f64,
        text: String,
    },
}

/// The LSL transport as a [`Publisher`].
pub struct LslPublisher {
    spec: LslSpec,
    out: Outbox<Item>,
    open: Arc<std::sync::Mutex<Vec<String>>>,
    /// The consent last handed to [`Publisher::consent`]: samples without `share_raw` are not
    /// queued at all (the writer re-checks every item anyway).
    snapshot: Arc<crate::consent::ConsentSnapshot>,
}

impl Publisher for LslPublisher {
    fn name(&self) -> &'static str {
        "lsl"
    }

    fn publish(&mut self, event: &Arc<Event>) -> Flow {
        let Some(p) = event.participant() else {
            return Flow::Continue;
        };
        if !self.spec.scope.has_participant(p) {
            return Flow::Continue;
        }
        match &event.body {
            EventBody::Samples(c) if self.spec.streams.contains(&c.kind) => {
                if !super::raw_needs(c.kind)
                    .iter()
                    .all(|n| n.met(&self.snapshot, p))
                {
                    return Flow::Continue;
                }
                let rate = match c.timing {
                    Timing::Uniform { rate_hz, .. } => Some(rate_hz),
                    Timing::Events(_) => None,
                };
                let times = (0..c.samples.len()).map(|i| c.time_of(i)).collect();
                self.out.push(Item::Samples {
                    participant: p.clone(),
                    kind: c.kind,
                    rate,
                    times,
                    values: c.samples.clone(),
                });
            }
            EventBody::Adaptation(a) if self.spec.scope.has_topic(Topic::Adaptation) => {
                if let Some(line) = ndjson::line(event) {
                    self.out.push(Item::Marker {
                        participant: p.clone(),
                        needs: event.needs().to_vec(),
                        t: a.decision.t,
                        text: line.to_owned(),
                    });
                }
            }
            EventBody::Marker(_, m) => {
                let text = serde_json::json!({"type": "marker", "label": m.label, "data": m.data})
                    .to_string();
                self.out.push(Item::Marker {
                    participant: p.clone(),
                    needs: event.needs().to_vec(),
                    t: m.t,
                    text,
                });
            }
            _ => {}
        }
        Flow::Continue
    }

    fn consent(&mut self, snapshot: &Arc<crate::consent::ConsentSnapshot>) -> Flow {
        self.snapshot = snapshot.clone();
        // The writer re-checks every item under its egress gate and closes outlets whose
        // consent is gone (module docs).
        Flow::Continue
    }

    fn status(&self) -> serde_json::Value {
        let mut v = self.out.counters.json();
        if let Some(o) = v.as_object_mut() {
            let open = self.open.lock().unwrap_or_else(|e| e.into_inner()).clone();
            o.insert("outlets".into(), serde_json::json!(open));
        }
        v
    }
}

/// Starts the LSL transport (outlets open as data arrives).
pub async fn start(spec: LslSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let (out, rx) = Outbox::new(spec.queue);
    let open = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = Writer {
        daemon: ctx.daemon_id.clone(),
        counters: out.counters.clone(),
        consent: ctx.consent.clone(),
        registration: ctx.egress.register(),
        outlets: BTreeMap::new(),
        markers: BTreeMap::new(),
        open: open.clone(),
        failing: false,
        refused: BTreeMap::new(),
    };
    ctx.tasks.spawn(writer.run(rx, ctx.closing.clone()));
    info!("LSL: outlets open as each participant's data arrives.");
    Ok(Box::new(LslPublisher {
        spec,
        out,
        open,
        snapshot: ctx.consent.borrow().clone(),
    }))
}

/// An open outlet and its time anchor (LSL clock = device or session time + offset).
struct Open {
    outlet: labstream::Outlet,
    offset: f64,
    last_t: f64,
}

struct Writer {
    daemon: String,
    counters: Arc<Counters>,
    consent: tokio::sync::watch::Receiver<Arc<crate::consent::ConsentSnapshot>>,
    registration: crate::publish::egress::Registration,
    outlets: BTreeMap<(ParticipantId, StreamKind), Open>,
    markers: BTreeMap<ParticipantId, Open>,
    open: Arc<std::sync::Mutex<Vec<String>>>,
    /// An outlet failed to open (logged once).
    failing: bool,
    /// Streams whose outlet could not be opened, and when to try again: opening binds sockets,
    /// and retrying it for every item of a stream would burn a core.
    refused: BTreeMap<String, tokio::time::Instant>,
}

/// How long a stream whose outlet could not be opened waits before the next attempt.
const RETRY_OPEN: std::time::Duration = std::time::Duration::from_secs(30);

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Item>,
        closing: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                biased;
                _ = closing.cancelled() => break,
                _ = self.registration.egress.cancel.cancelled() => break,
                item = rx.recv() => match item {
                    Some(i) => self.take(i).await,
                    None => break,
                },
                changed = self.consent.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.close_withdrawn();
                }
            }
        }
        // Outlets close when dropped: LabRecorder sees the streams end.
    }

    fn source_id(&self, p: &ParticipantId, what: &str) -> String {
        format!("attune-{}-{p}-{what}", self.daemon)
    }

    fn refresh_open(&self) {
        let mut names: Vec<String> = self
            .outlets
            .values()
            .chain(self.markers.values())
            .map(|o| o.outlet.info().source_id().to_owned())
            .collect();
        names.sort();
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = names;
    }

    /// Closes the sample outlets whose `share_raw` (or `process`) the consent in force no longer
    /// allows: LabRecorder sees those streams end.
    fn close_withdrawn(&mut self) {
        let consent = self.consent.clone();
        let before = self.outlets.len();
        self.outlets.retain(|(p, k), _| {
            let keep = super::met(&super::raw_needs(*k), p, &consent);
            if !keep {
                info!(participant = %p, stream = k.name(), "LSL: consent withdrawn; outlet closed.");
            }
            keep
        });
        if self.outlets.len() != before {
            self.refresh_open();
        }
    }

    /// True when `sid`'s outlet failed to open recently (its item is counted as failed).
    fn waiting(&mut self, sid: &str) -> bool {
        match self.refused.get(sid) {
            Some(&until) if tokio::time::Instant::now() < until => {
                Counters::add(&self.counters.failed);
                true
            }
            _ => false,
        }
    }

    fn opened(
        &mut self,
        made: Result<labstream::Outlet, labstream::Error>,
        sid: &str,
    ) -> Option<labstream::Outlet> {
        match made {
            Ok(o) => {
                self.refused.remove(sid);
                info!(stream = sid, "LSL: outlet open.");
                Some(o)
            }
            Err(e) => {
                Counters::add(&self.counters.failed);
                self.refused
                    .insert(sid.to_owned(), tokio::time::Instant::now() + RETRY_OPEN);
                if !self.failing {
                    self.failing = true;
                    warn!(stream = sid, error = %e, "LSL: an outlet could not be opened (LSL's port range may be used up: ports.PortRange in lsl_api.cfg); its data is counted as failed and the outlet is tried again every 30 s.");
                }
                None
            }
        }
    }

    async fn take(&mut self, item: Item) {
        let egress = self.registration.egress.clone();
        let _gate = egress.gate.lock().await;
        if egress.cancel.is_cancelled() {
            return;
        }
        match item {
            Item::Samples {
                participant,
                kind,
                rate,
                times,
                values,
            } => {
                let key = (participant.clone(), kind);
                if !super::met(&super::raw_needs(kind), &participant, &self.consent) {
                    Counters::add(&self.counters.withdrawn);
                    if self.outlets.remove(&key).is_some() {
                        info!(participant = %participant, stream = kind.name(), "LSL: consent withdrawn; outlet closed.");
                        self.refresh_open();
                    }
                    return;
                }
                let (Some(k), Some(&newest)) = (kind_of(kind), times.last()) else {
                    return;
                };
                if !self.outlets.contains_key(&key) {
                    let sid = self.source_id(&participant, kind.name());
                    if self.waiting(&sid) {
                        return;
                    }
                    let mut b = labstream::StreamInfo::builder(
                        &format!("attune {participant} {}", k.label),
                        k.stream_type,
                        labstream::Format::Float32,
                    )
                    .source_id(&sid)
                    .channels([labstream::Channel::new(k.label)
                        .unit(k.unit)
                        .kind(k.stream_type)]);
                    b = match rate {
                        Some(r) => b.rate(r),
                        None => b.irregular(),
                    };
                    let made = b.build().and_then(labstream::Outlet::new);
                    let Some(outlet) = self.opened(made, &sid) else {
                        return;
                    };
                    self.outlets.insert(
                        key.clone(),
                        Open {
                            outlet,
                            offset: labstream::clock() - newest,
                            last_t: f64::NEG_INFINITY,
                        },
                    );
                    self.refresh_open();
                }
                let Some(o) = self.outlets.get_mut(&key) else {
                    return;
                };
                if times.first().is_some_and(|&t0| t0 < o.last_t) {
                    o.offset = labstream::clock() - newest;
                }
                o.last_t = newest;
                let mut ok = true;
                for (t, v) in times.iter().zip(&values) {
                    let x = (v * k.scale) as f32;
                    ok &= o.outlet.push_at(&[x], t + o.offset).is_ok();
                }
                Counters::add(if ok {
                    &self.counters.sent
                } else {
                    &self.counters.failed
                });
            }
            Item::Marker {
                participant,
                needs,
                t,
                text,
            } => {
                if !super::met(&needs, &participant, &self.consent) {
                    Counters::add(&self.counters.withdrawn);
                    return;
                }
                if !self.markers.contains_key(&participant) {
                    let sid = self.source_id(&participant, "markers");
                    if self.waiting(&sid) {
                        return;
                    }
                    let made = labstream::StreamInfo::builder(
                        &format!("attune {participant} Markers"),
                        "Markers",
                        labstream::Format::String,
                    )
                    .irregular()
                    .source_id(&sid)
                    .channel_labels(["Marker"])
                    .build()
                    .and_then(labstream::Outlet::new);
                    let Some(outlet) = self.opened(made, &sid) else {
                        return;
                    };
                    self.markers.insert(
                        participant.clone(),
                        Open {
                            outlet,
                            offset: labstream::clock() - t,
                            last_t: f64::NEG_INFINITY,
                        },
                    );
                    self.refresh_open();
                }
                let Some(o) = self.markers.get_mut(&participant) else {
                    return;
                };
                if t < o.last_t {
                    o.offset = labstream::clock() - t;
                }
                o.last_t = t;
                let ok = o.outlet.push_text_at(&text, t + o.offset).is_ok();
                Counters::add(if ok {
                    &self.counters.sent
                } else {
                    &self.counters.failed
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_streamed_kind_has_its_lsl_type_and_unit() {
        let ecg = kind_of(StreamKind::Ecg).unwrap();
        assert_eq!(
            (ecg.stream_type, ecg.unit, ecg.scale),
            ("ECG", "microvolts", 1000.0)
        );
        let eda = kind_of(StreamKind::Eda).unwrap();
        assert_eq!((eda.stream_type, eda.unit), ("GSR", "microsiemens"));
        let rr = kind_of(StreamKind::Rr).unwrap();
        assert_eq!((rr.stream_type, rr.unit), ("RR", "milliseconds"));
        assert!(kind_of(StreamKind::Hr).is_none());
    }
}
