//! A raw capture decoded again (pure): the capture's bytes go through the same protocol host and
//! [`Assembler`] as on the live port, at the times they were read, and come out as a recording
//! v1 (in memory) that `attune replay` streams like any other. A capture from a real device
//! thus becomes a regression fixture: its decode is what a live session would have seen.
//!
//! The host's own writes are not compared with the captured `tx` bytes (the capture's device
//! answered the live host's commands; a replayed host issues the same ones given the same
//! replies). The host's timers run at the capture's read and write times (the live host wrote
//! when its timers fired), so a paced start-up exchange replays as it ran.

use super::assemble::Assembler;
use super::raw::{Capture, unhex};
use crate::engine::input::{Input, SourceStatus};
use crate::protocol::{HostOut, Phase, Stats};
use crate::recording::{Header, Provenance, StateRecord, StreamSpec, Writer};

/// What decoding a capture found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Connections that reached streaming.
    pub connections: u64,
    /// Decoder counters, summed over connections.
    pub stats: Stats,
}

/// The engine inputs a capture decodes to, in time order, and its counters.
pub fn decode(cap: &Capture) -> (Vec<Input>, Decoded) {
    let mut asm =
        Assembler::new(cap.header.participant.clone()).receipt_timed(cap.settings.receipt_timed());
    let mut inputs = Vec::new();
    let mut summary = Decoded::default();
    let mut host: Option<Box<dyn crate::protocol::Host>> = None;
    let mut streaming = false;
    let mut declared = false;
    let mut out = HostOut::default();
    let end_connection = |host: &mut Option<Box<dyn crate::protocol::Host>>,
                          summary: &mut Decoded| {
        if let Some(h) = host.take() {
            add(&mut summary.stats, h.stats());
        }
    };
    for e in &cap.events {
        let t = e.t;
        out.clear();
        if e.open.is_some() {
            end_connection(&mut host, &mut summary);
            asm.disconnected(t, &mut inputs);
            let mut h = cap.settings.host();
            h.start(t, &mut out);
            host = Some(h);
            streaming = false;
        } else if let Some(why) = &e.close {
            end_connection(&mut host, &mut summary);
            asm.disconnected(t, &mut inputs);
            for k in asm.kinds().collect::<Vec<_>>() {
                inputs.push(Input::Source(crate::engine::input::SourceState {
                    participant: cap.header.participant.clone(),
                    kind: k,
                    status: SourceStatus::Reconnecting,
                    host_t: t,
                    detail: Some(why.clone()),
                }));
            }
            streaming = false;
        } else if let (Some(_), Some(h)) = (&e.tx, host.as_mut()) {
            // The live host wrote here, so its timers had fired by now.
            h.on_tick(t, &mut out);
        } else if let (Some(rx), Some(h)) = (&e.rx, host.as_mut()) {
            let bytes = unhex(rx).unwrap_or_default();
            h.on_tick(t, &mut out);
            h.on_bytes(t, &bytes, &mut out);
            h.on_tick(t, &mut out);
            if !streaming && *h.phase() == Phase::Streaming {
                streaming = true;
                summary.connections += 1;
                asm.connected(h.channels());
                if !declared {
                    declared = true;
                    inputs.extend(super::declarations(
                        &cap.header.participant,
                        &cap.header.protocol,
                        h.as_ref(),
                    ));
                }
            }
            asm.decoded(t, &out.decoded, &mut inputs);
        }
    }
    let last_t = cap.events.last().map_or(0.0, |e| e.t);
    end_connection(&mut host, &mut summary);
    asm.flush(last_t, &mut inputs);
    (inputs, summary)
}

fn add(a: &mut Stats, b: Stats) {
    a.bytes += b.bytes;
    a.frames += b.frames;
    a.crc_errors += b.crc_errors;
    a.frames_lost += b.frames_lost;
    a.bytes_skipped += b.bytes_skipped;
    a.bad_lines += b.bad_lines;
}

/// A capture as recording v1 bytes (its header names the capture as the source, its consent is
/// the capture's), and its counters. `path` names the capture in the provenance.
pub fn to_recording(cap: &Capture, path: &str) -> std::io::Result<(Vec<u8>, Decoded)> {
    let (inputs, summary) = decode(cap);
    let streams: Vec<StreamSpec> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Stream(s) => Some(StreamSpec {
                id: s.kind.name().to_owned(),
                kind: s.kind.name().to_owned(),
                unit: s.kind.unit().to_owned(),
                rate_hz: s.rate_hz,
                device: s.device.clone(),
            }),
            _ => None,
        })
        .collect();
    if streams.is_empty() {
        return Err(std::io::Error::other(
            "the capture never reached streaming: no device answered the start-up exchange",
        ));
    }
    let header = Header {
        format: crate::recording::FORMAT_NAME.to_owned(),
        version: crate::recording::FORMAT_VERSION,
        participant: cap.header.participant.clone(),
        streams,
        consent: cap.header.consent.clone(),
        provenance: Provenance {
            source: format!(
                "attune replay --raw {path} --protocol {}",
                cap.header.protocol
            ),
            licence: "(participant data; not licensed)".to_owned(),
            attribution: None,
            generator: None,
        },
        segments: Vec::new(),
    };
    let mut w = Writer::new(Vec::new(), &header)?;
    for i in &inputs {
        match i {
            Input::Chunk(c) => w.chunk(c.kind.name(), c)?,
            Input::Gap(g) => w.gap(g.kind.name(), g)?,
            Input::Source(s) if s.status == SourceStatus::Reconnecting => w.state(
                s.kind.name(),
                &StateRecord {
                    kind: s.kind,
                    host_t: s.host_t,
                    state: "reconnecting".to_owned(),
                    detail: s.detail.clone(),
                },
            )?,
            _ => {}
        }
    }
    Ok((w.finish()?, summary))
}
