//! Heart Rate Measurement notifications → engine inputs (pure): the part of the BLE source that
//! does not need a radio, so it is tested on byte vectors and simulated outages.
//!
//! # Streams
//!
//! A strap feeds two streams of its participant, declared at its first notification:
//! - `hr`: the heart rate the strap reports (bpm), one sample per notification. The strap
//!   gives it no time of its own, so each sample is timed at the notification's arrival (session
//!   time, never before the previous sample), declared at the nominal 1 Hz the Heart Rate
//!   Service is sent at. It is the heart feature of a strap without RR.
//! - `rr`: every RR interval, ms, timed by [`super::beats::Timeline`] (cumulative sum anchored
//!   to arrivals), with the raw 1/1024 s counts as the chunk's `raw`, suspect intervals and the
//!   timing uncertainty as its [`ChunkMeta`].
//!
//! # States
//!
//! - A strap whose notifications never set the RR bit is "RR unavailable", not "no beats": after
//!   [`RR_UNAVAILABLE_AFTER`] notifications without the bit, the `rr` stream turns `low_quality`
//!   with the detail `rr_unavailable: …` (once; the `hr` stream carries on). A notification with
//!   the bit and no interval is a beat still to come (heart rate below the notification rate).
//! - Contact (flags bit 2 set: the strap can tell) reported lost: the values of such
//!   notifications are no heart data and are not forwarded; both streams turn `low_quality`
//!   (`no_contact: …`), and the first notification with contact again closes one `contact_lost`
//!   gap per stream. A strap that cannot tell (bit 2 clear, e.g. a Polar H10) is never judged
//!   on contact.
//!
//! # Gaps
//!
//! Exactly one gap per stream per outage: [`Assembler::outage`] (the link was lost, or the
//! watchdog gave up on a silent strap) opens a `disconnect` gap that the first notification
//! after the reconnect closes, from the last sample before to the first after. Beats the
//! timeline finds lost within a connection (a dropped notification) give a `lost_notification`
//! gap on `rr`. Malformed notifications are counted ([`Counters`]) and logged by the source;
//! they give no sample and no gap (the next beat's timing is unaffected: the timeline keeps
//! its cumulative sum, and a lost RR shows as the residual jump above).

use super::beats::{Timeline, TimelineConfig};
use crate::engine::input::{Input, SourceState, SourceStatus, StreamInfo};
use crate::model::{Chunk, ChunkMeta, Gap, ParticipantId, StreamKind, Timing};
use crate::protocol::hrs;
use crate::recording::Device;
use std::sync::Arc;

/// Notifications without the RR bit before the `rr` stream is declared unavailable.
pub const RR_UNAVAILABLE_AFTER: u64 = 5;

/// The least step between two `hr` samples, s.
const HR_STEP_S: f64 = 1e-6;

/// The wire protocol's name in recordings.
pub const PROTOCOL: &str = "ble_hrm";

/// What the assembler counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Notifications decoded.
    pub notifications: u64,
    /// Notifications that failed to decode.
    pub malformed: u64,
    /// Notifications with an odd trailing byte (the RR before it kept).
    pub trailing_bytes: u64,
    /// RR intervals delivered.
    pub beats: u64,
    /// Notifications with the RR bit and no interval.
    pub empty: u64,
    /// Notifications dropped for lost skin contact.
    pub no_contact: u64,
}

#[derive(Debug)]
struct Out {
    seq: u64,
    last_t: Option<f64>,
    gap: Option<&'static str>,
}

impl Out {
    fn new() -> Self {
        Self {
            seq: 0,
            last_t: None,
            gap: None,
        }
    }
}

/// One strap's assembly state, kept across connections.
#[derive(Debug)]
pub struct Assembler {
    participant: ParticipantId,
    device: Device,
    declared: bool,
    timeline: Timeline,
    hr: Out,
    rr: Out,
    without_rr: u64,
    rr_unavailable_said: bool,
    contact_lost: bool,
    counters: Counters,
    last_error: Option<String>,
}

impl Assembler {
    /// A strap of `participant`, described by `device` in its streams' declarations.
    pub fn new(participant: ParticipantId, device: Device) -> Self {
        Self {
            participant,
            device,
            declared: false,
            timeline: Timeline::new(TimelineConfig::default()),
            hr: Out::new(),
            rr: Out::new(),
            without_rr: 0,
            rr_unavailable_said: false,
            contact_lost: false,
            counters: Counters::default(),
            last_error: None,
        }
    }

    /// Updates the device description (name, firmware) before the streams are declared; later
    /// it is kept as declared.
    pub fn describe(&mut self, device: Device) {
        if !self.declared {
            self.device = device;
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The last decode error, taken (the source logs it once per distinct message).
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    /// The connection was lost (or given up): the next samples close one `disconnect` gap per
    /// stream that had data, and the next beats are re-anchored.
    pub fn outage(&mut self) {
        self.timeline.outage();
        // Said again after the reconnect if it still holds (the outage's `reconnecting`
        // replaced it).
        self.without_rr = 0;
        self.rr_unavailable_said = false;
        for o in [&mut self.hr, &mut self.rr] {
            if o.last_t.is_some() {
                o.gap.get_or_insert("disconnect");
            }
        }
    }

    /// One notification's bytes, arrived at session time `host_t`.
    pub fn notification(&mut self, host_t: f64, bytes: &[u8], out: &mut Vec<Input>) {
        let m = match hrs::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.counters.malformed += 1;
                self.last_error = Some(e.to_string());
                return;
            }
        };
        self.counters.notifications += 1;
        if m.trailing_byte {
            self.counters.trailing_bytes += 1;
            self.last_error = Some("heart-rate measurement with an odd trailing byte".into());
        }
        if !self.declared {
            self.declared = true;
            for kind in [StreamKind::Hr, StreamKind::Rr] {
                out.push(Input::Stream(Arc::new(StreamInfo {
                    participant: self.participant.clone(),
                    kind,
                    rate_hz: (kind == StreamKind::Hr).then_some(1.0),
                    device: Device {
                        conversion: Some(
                            match kind {
                                StreamKind::Hr => "hrs-hr bpm (0x2A37)",
                                _ => "hrs-rr 1/1024 s (0x2A37)",
                            }
                            .into(),
                        ),
                        ..self.device.clone()
                    },
                })));
            }
        }
        if m.contact == Some(false) {
            self.counters.no_contact += 1;
            if !self.contact_lost {
                self.contact_lost = true;
                self.timeline.outage();
                for (kind, o) in [
                    (StreamKind::Hr, &mut self.hr),
                    (StreamKind::Rr, &mut self.rr),
                ] {
                    if o.last_t.is_some() {
                        o.gap.get_or_insert("contact_lost");
                    }
                    out.push(state(
                        &self.participant,
                        kind,
                        SourceStatus::LowQuality,
                        host_t,
                        "no_contact: the strap reports no skin contact (wet the electrodes, tighten the strap)",
                    ));
                }
            }
            return;
        }
        self.contact_lost = false;
        // Heart rate, timed at arrival.
        let t = self
            .hr
            .last_t
            .map_or(host_t, |last| host_t.max(last + HR_STEP_S));
        if host_t.is_finite() {
            if let (Some(reason), Some(start)) = (self.hr.gap.take(), self.hr.last_t) {
                out.push(gap(
                    &self.participant,
                    StreamKind::Hr,
                    start,
                    t,
                    host_t,
                    reason,
                ));
            }
            out.push(Input::Chunk(Chunk {
                participant: self.participant.clone(),
                kind: StreamKind::Hr,
                seq: self.hr.seq,
                host_t,
                timing: Timing::Uniform {
                    t0: t,
                    rate_hz: 1.0,
                },
                samples: vec![f64::from(m.hr_bpm)],
                raw: None,
                meta: None,
            }));
            self.hr.seq += 1;
            self.hr.last_t = Some(t);
        }
        // RR.
        if !m.rr_present {
            self.without_rr += 1;
            if self.without_rr >= RR_UNAVAILABLE_AFTER && !self.rr_unavailable_said {
                self.rr_unavailable_said = true;
                out.push(state(
                    &self.participant,
                    StreamKind::Rr,
                    SourceStatus::LowQuality,
                    host_t,
                    "rr_unavailable: the strap sends heart rate only, no beat-to-beat intervals",
                ));
            }
            return;
        }
        self.without_rr = 0;
        if m.rr_raw.is_empty() {
            self.counters.empty += 1;
        }
        let Some((lost, beats)) = self.timeline.on_rr(host_t, &m.rr_raw) else {
            return;
        };
        let (Some(&first), Some(&last)) = (beats.times.first(), beats.times.last()) else {
            return;
        };
        let reason = self
            .rr
            .gap
            .take()
            .or(lost.as_ref().map(|_| "lost_notification"));
        if let (Some(reason), Some(start)) = (reason, self.rr.last_t) {
            out.push(gap(
                &self.participant,
                StreamKind::Rr,
                start,
                first,
                host_t,
                reason,
            ));
        }
        self.counters.beats += beats.rr_ms.len() as u64;
        out.push(Input::Chunk(Chunk {
            participant: self.participant.clone(),
            kind: StreamKind::Rr,
            seq: self.rr.seq,
            host_t,
            timing: Timing::Events(beats.times),
            samples: beats.rr_ms,
            raw: Some(beats.raw),
            meta: Some(Box::new(ChunkMeta {
                suspect: beats.suspect,
                time_uncertainty_s: Some(beats.uncertainty_s),
            })),
        }));
        self.rr.seq += 1;
        self.rr.last_t = Some(last);
    }
}

fn state(
    p: &ParticipantId,
    kind: StreamKind,
    status: SourceStatus,
    host_t: f64,
    detail: &str,
) -> Input {
    Input::Source(SourceState {
        participant: p.clone(),
        kind,
        status,
        host_t,
        detail: Some(detail.to_owned()),
    })
}

fn gap(
    p: &ParticipantId,
    kind: StreamKind,
    start: f64,
    end: f64,
    host_t: f64,
    reason: &str,
) -> Input {
    Input::Gap(Gap {
        participant: p.clone(),
        kind,
        start,
        end,
        host_t,
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
#[path = "assemble_tests.rs"]
mod tests;
