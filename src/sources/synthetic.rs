//! The synthetic source of `attune bench`: many participants' waveform streams (ECG and EDA)
//! cut from a small bank of pre-computed signals, so that producing the data costs almost
//! nothing beside the engine that is being measured.
//!
//! Participant `i` of `n` reads bank entry `i mod bank` from an offset of its own, and its
//! deliveries are spread over the chunk period (phase `i/n` of it), as independent devices'
//! are. Chunk `j` of a stream with period `d` holds device times `[j·d + φ, (j+1)·d + φ)` and
//! arrives at `(j+1)·d + φ` (session time; device time = session time, no skew, no latency).
//!
//! Pacing: [`Pace::Wall`] sends each chunk when the session clock reaches its arrival time
//! (checked every [`WAKE_S`]); [`Pace::Unpaced`] sends everything in arrival order as fast as the
//! engine takes it (the chunks' arrival times then drive the engine's ticks). The channel
//! blocks when full: nothing is dropped. `sent` counts what was sent so that the bench can
//! date each tick's data (module `crate::bench`).

use crate::engine::input::{Input, SourceState, SourceStatus, StreamInfo};
use crate::model::{Chunk, ParticipantId, StreamKind, Timing};
use crate::pipeline::TICKS_PER_S;
use crate::recording::Device;
use crate::sources::SessionClock;
use std::sync::Arc;
use tokio::sync::mpsc::Sender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the paced source looks for due chunks, s.
pub const WAKE_S: f64 = 0.005;

/// One synthetic stream kind: its bank and chunking.
#[derive(Debug, Clone)]
pub struct SynthStream {
    /// Which stream.
    pub kind: StreamKind,
    /// Sampling rate, Hz.
    pub rate_hz: f64,
    /// Samples per chunk.
    pub chunk: usize,
    /// Signals to cut from (each at least a few chunks long; looped).
    pub bank: Arc<Vec<Vec<f64>>>,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct SyntheticSpec {
    /// The participants.
    pub participants: Vec<ParticipantId>,
    /// Their streams (the same kinds for all).
    pub streams: Vec<SynthStream>,
    /// Session seconds to send.
    pub seconds: f64,
    /// Where the source notes when data arrived, for the bench's latency figures.
    pub dating: Arc<Dating>,
}

/// When things happened, written by the source, read by the bench.
#[derive(Debug, Default)]
pub struct Dating {
    /// The session clock's start (session time 0).
    pub epoch: std::sync::OnceLock<Instant>,
    /// For tick `k` (session time `k / TICKS_PER_S`), when the first chunk arriving at or after
    /// it was sent: from then on the engine can compute that tick (unpaced runs).
    pub ticks: std::sync::Mutex<Vec<Instant>>,
}

impl SyntheticSpec {
    /// Samples the source sends if nothing stops it early.
    pub fn expected_samples(&self) -> u64 {
        let n = self.participants.len().max(1);
        let mut total = 0u64;
        for s in &self.streams {
            let period = s.chunk as f64 / s.rate_hz;
            for i in 0..self.participants.len() {
                let phase = period * i as f64 / n as f64;
                // Chunks j with j·period + phase + period ≤ seconds.
                let chunks = ((self.seconds - phase) / period).floor().max(0.0) as u64;
                total += chunks * s.chunk as u64;
            }
        }
        total
    }
}

/// How the source is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// On the session clock.
    Wall,
    /// As fast as the engine takes it.
    Unpaced,
}

/// What the source sent.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SynthStats {
    /// Chunks sent.
    pub chunks: u64,
    /// Samples sent.
    pub samples: u64,
    /// True if stopped before the end.
    pub interrupted: bool,
}

struct Lane {
    participant: usize,
    stream: usize,
    next: u64,
    phase: f64,
    offset: usize,
}

/// Sends `spec`'s streams until done, `stop`, or the receiver is gone.
pub async fn run(
    spec: SyntheticSpec,
    pace: Pace,
    clock: SessionClock,
    tx: Sender<Input>,
    stop: CancellationToken,
) -> SynthStats {
    let mut stats = SynthStats::default();
    let _ = spec.dating.epoch.set(clock.instant_of(0.0));
    let mut next_tick = 0u64;
    let n = spec.participants.len().max(1);
    let mut intro = Vec::new();
    for p in &spec.participants {
        intro.push(Input::Join(p.clone()));
        for s in &spec.streams {
            intro.push(Input::Stream(Arc::new(StreamInfo {
                participant: p.clone(),
                kind: s.kind,
                rate_hz: Some(s.rate_hz),
                device: Device {
                    conversion: None,
                    name: "attune bench".into(),
                    protocol: "synthetic".into(),
                    firmware: None,
                },
            })));
            intro.push(Input::Source(SourceState {
                participant: p.clone(),
                kind: s.kind,
                status: SourceStatus::Streaming,
                host_t: 0.0,
                detail: None,
            }));
        }
    }
    for input in intro {
        if !send(&tx, input, &stop).await {
            stats.interrupted = true;
            return stats;
        }
    }
    let mut lanes: Vec<Lane> = Vec::new();
    for (si, s) in spec.streams.iter().enumerate() {
        let period = s.chunk as f64 / s.rate_hz;
        for i in 0..spec.participants.len() {
            let len = s.bank[i % s.bank.len().max(1)].len().max(1);
            lanes.push(Lane {
                participant: i,
                stream: si,
                next: 0,
                phase: period * i as f64 / n as f64,
                offset: (i.wrapping_mul(7919)) % len,
            });
        }
    }
    let mut now = 0.0;
    loop {
        now += WAKE_S;
        if pace == Pace::Wall {
            tokio::select! {
                biased;
                () = stop.cancelled() => {
                    stats.interrupted = true;
                    return stats;
                }
                () = clock.sleep_until(now) => {}
            }
        }
        let mut any_left = false;
        for lane in &mut lanes {
            let s = &spec.streams[lane.stream];
            let period = s.chunk as f64 / s.rate_hz;
            loop {
                let t0 = lane.next as f64 * period + lane.phase;
                if t0 + period > spec.seconds {
                    break;
                }
                any_left = true;
                let arrival = t0 + period;
                if arrival > now {
                    break;
                }
                let signal = &s.bank[lane.participant % s.bank.len()];
                let start = lane.offset + lane.next as usize * s.chunk;
                let samples: Vec<f64> = (0..s.chunk)
                    .map(|k| signal[(start + k) % signal.len()])
                    .collect();
                stats.samples += samples.len() as u64;
                stats.chunks += 1;
                let c = Chunk {
                    raw: None,
                    meta: None,
                    participant: spec.participants[lane.participant].clone(),
                    kind: s.kind,
                    seq: lane.next,
                    host_t: arrival,
                    timing: Timing::Uniform {
                        t0,
                        rate_hz: s.rate_hz,
                    },
                    samples,
                };
                lane.next += 1;
                let tick_t = |k: u64| k as f64 / TICKS_PER_S;
                if arrival >= tick_t(next_tick) {
                    let at = Instant::now();
                    let mut ticks = spec.dating.ticks.lock().unwrap_or_else(|e| e.into_inner());
                    while arrival >= tick_t(next_tick) {
                        ticks.push(at);
                        next_tick += 1;
                    }
                }
                if !send(&tx, Input::Chunk(c), &stop).await {
                    stats.interrupted = true;
                    return stats;
                }
            }
        }
        if !any_left {
            return stats;
        }
    }
}

async fn send(tx: &Sender<Input>, input: Input, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => false,
        r = tx.send(input) => r.is_ok(),
    }
}
