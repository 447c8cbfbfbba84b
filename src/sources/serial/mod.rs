//! The serial source (edge): one device on one serial port (USB-serial, Bluetooth RFCOMM, or a
//! simulator's pseudo-terminal), spoken to through a pure [`crate::protocol::Host`].
//!
//! # Lifecycle
//!
//! `connecting` → open the port ([`port::open`], with `serialport`, 8N1, no flow control) →
//! the protocol's start-up exchange (identify, configure, start acquisition) → `streaming`. Any
//! read or write error (an unplugged adapter gives `BrokenPipe` or `EIO`), silence while
//! streaming ([`SerialSpec::silence_s`] without a byte: a device that stopped answering,
//! whatever the port says), or a start-up exchange that fails (no answer, the wrong protocol)
//! ends the connection: every stream turns `reconnecting` with one line naming the port and the
//! cause, and the port is opened again after a backoff ([`backoff`]): 0.25 s doubling up to
//! 1 s, with ±25 % jitter, for as long as the session runs (a device switched on late, or
//! re-plugged, is picked up within about a second). The first samples after a reconnect close
//! exactly one `disconnect` gap per stream ([`assemble`]); nothing is invented for the outage.
//!
//! Errors opening the port are one line naming it: no such port, permission (the `dialout`
//! group), busy (another program holds it; serialport's exclusive lock). They are logged once
//! per distinct cause, not at every retry. Other sources keep running whatever this one does.
//!
//! # Threads
//!
//! serialport is blocking: each connection runs on a blocking thread
//! (`tokio::task::spawn_blocking`) that reads with a 20 ms timeout, drives the host, and sends
//! the engine inputs with `blocking_send` (the input channel's `Block` policy: a full channel
//! makes the reader wait, the kernel's tty buffer holds the bytes meanwhile). The thread checks
//! the stop token at every read; on stop it writes the protocol's stop command.
//!
//! # Raw capture
//!
//! With [`SerialSpec::record_raw`], every byte read and written, and every open and close, is
//! kept with its session time ([`raw`]), only while the participant has `record` consent for
//! every stream the device feeds; a withdrawal deletes the capture. `attune replay --raw` runs a
//! capture back through the same decoder and [`assemble::Assembler`].

pub mod assemble;
pub mod backoff;
pub mod port;
pub mod raw;
pub mod replay;

use crate::consent::{ConsentSnapshot, Purpose};
use crate::engine::input::{Input, SourceState, SourceStatus, StreamInfo};
use crate::model::{ParticipantId, StreamKind};
use crate::protocol::{HostOut, Phase, Settings};
use crate::recording::Device;
use crate::sources::{SessionClock, send_states};
use assemble::Assembler;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Default silence that counts as a lost device while streaming, s.
pub const DEFAULT_SILENCE_S: f64 = 2.0;

/// One serial device of one participant.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSpec {
    /// Whose device.
    pub participant: ParticipantId,
    /// The port (`/dev/ttyUSB0`, `/dev/rfcomm0`, a simulator's path).
    pub path: PathBuf,
    /// Baud rate (meaningless on ptys and RFCOMM, required by USB-serial).
    pub baud: u32,
    /// The protocol and its settings (checked).
    pub settings: Settings,
    /// Silence while streaming that counts as a lost device, s.
    pub silence_s: f64,
    /// Keep the raw bytes here (module doc).
    pub record_raw: Option<PathBuf>,
}

impl SerialSpec {
    /// The source's name in logs and states: `p01/serial /dev/ttyUSB0 (bitalino)`.
    pub fn name(&self) -> String {
        format!(
            "{}/serial {} ({})",
            self.participant,
            self.path.display(),
            self.settings.protocol()
        )
    }
}

/// What a serial source did, for the session summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SerialStats {
    /// Connections that reached streaming.
    pub connections: u64,
    /// Frames delivered.
    pub frames: u64,
    /// Frames lost (decoder gaps).
    pub frames_lost: u64,
    /// Frames that failed their integrity check.
    pub crc_errors: u64,
}

/// How one connection ended.
enum Ended {
    /// The session is stopping (or the engine is gone).
    Stopped,
    /// The connection was lost or never came up: retry.
    Retry(String),
}

/// Runs the device until `stop` (module doc). Never fails: every trouble is a state.
pub async fn run(
    spec: SerialSpec,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
    consent: Option<watch::Receiver<Arc<ConsentSnapshot>>>,
) -> SerialStats {
    let name = spec.name();
    let kinds = spec.settings.kinds();
    let mut stats = SerialStats::default();
    let mut asm =
        Assembler::new(spec.participant.clone()).receipt_timed(spec.settings.receipt_timed());
    let mut declared = false;
    let mut status = SourceStatus::Connecting;
    let mut backoff = backoff::Backoff::new(seed_of(&name));
    let mut last_logged: Option<String> = None;
    let mut capture = spec
        .record_raw
        .clone()
        .map(|path| raw::Gate::new(path, &spec, consent));
    loop {
        send_states(&tx, &spec.participant, &kinds, status, clock.now(), None).await;
        let job = Connection {
            spec: spec.clone(),
            clock,
            tx: tx.clone(),
            stop: stop.clone(),
            asm,
            declared,
            capture: capture.take(),
            stats,
            conn_stats: crate::protocol::Stats::default(),
        };
        let Ok(done) = tokio::task::spawn_blocking(move || job.run()).await else {
            warn!(source = %name, "The serial reader thread failed; the source stops.");
            break;
        };
        asm = done.asm;
        declared = done.declared;
        capture = done.capture;
        if done.streamed {
            backoff.reset();
        }
        stats = done.stats;
        match done.ended {
            Ended::Stopped => break,
            Ended::Retry(why) => {
                let detail = format!("{}: {why}", spec.path.display());
                if last_logged.as_deref() != Some(why.as_str()) {
                    warn!(source = %name, "{detail}; retrying.");
                    last_logged = Some(why);
                }
                status = SourceStatus::Reconnecting;
                send_states(
                    &tx,
                    &spec.participant,
                    &kinds,
                    status,
                    clock.now(),
                    Some(&detail),
                )
                .await;
                let wait = backoff.next_wait();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tx.closed() => break,
                    () = tokio::time::sleep(std::time::Duration::from_secs_f64(wait)) => {}
                }
            }
        }
    }
    stats
}

/// A seed for the backoff jitter: the source's name and the wall clock, so two daemons do not
/// retry in lockstep.
pub fn seed_of(name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .hash(&mut h);
    h.finish()
}

/// One connection's job, run on a blocking thread; it hands its state back.
struct Connection {
    spec: SerialSpec,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
    asm: Assembler,
    declared: bool,
    capture: Option<raw::Gate>,
    stats: SerialStats,
    /// The current connection's decoder counters.
    conn_stats: crate::protocol::Stats,
}

/// What a connection hands back.
struct Done {
    asm: Assembler,
    declared: bool,
    capture: Option<raw::Gate>,
    stats: SerialStats,
    streamed: bool,
    ended: Ended,
}

impl Connection {
    fn run(mut self) -> Done {
        let mut streamed = false;
        let mut opened = false;
        let ended = self.connect(&mut streamed, &mut opened);
        let c = self.conn_stats;
        self.stats.frames += c.frames;
        self.stats.frames_lost += c.frames_lost;
        self.stats.crc_errors += c.crc_errors;
        let now = self.clock.now();
        let mut inputs = Vec::new();
        self.asm.disconnected(now, &mut inputs);
        self.send(inputs);
        if let Some(c) = &mut self.capture
            && opened
        {
            let detail = match &ended {
                Ended::Stopped => "stopped".to_owned(),
                Ended::Retry(why) => why.clone(),
            };
            c.close(now, &detail);
        }
        Done {
            asm: self.asm,
            declared: self.declared,
            capture: self.capture,
            stats: self.stats,
            streamed,
            ended,
        }
    }

    /// Sends inputs; false if the engine is gone.
    fn send(&self, inputs: Vec<Input>) -> bool {
        for i in inputs {
            if self.tx.blocking_send(i).is_err() {
                return false;
            }
        }
        true
    }

    fn connect(&mut self, streamed: &mut bool, opened: &mut bool) -> Ended {
        let mut port = match port::open(&self.spec.path, self.spec.baud) {
            Ok(p) => p,
            Err(e) => return Ended::Retry(e.to_string()),
        };
        *opened = true;
        let mut host = self.spec.settings.host();
        let mut out = HostOut::default();
        let mut buf = vec![0u8; 4096];
        let mut inputs: Vec<Input> = Vec::new();
        let start = self.clock.now();
        if let Some(c) = &mut self.capture {
            c.open(start);
        }
        host.start(start, &mut out);
        let mut last_rx = start;
        let mut streaming = false;
        loop {
            self.conn_stats = host.stats();
            if self.stop.is_cancelled() {
                out.clear();
                host.stop(&mut out);
                if !out.write.is_empty() {
                    if let Some(c) = &mut self.capture {
                        c.tx(self.clock.now(), &out.write);
                    }
                    let _ = port.write_all(&out.write);
                }
                return Ended::Stopped;
            }
            // Writes and decoded output of the previous step.
            if !out.write.is_empty() {
                if let Some(c) = &mut self.capture {
                    c.tx(self.clock.now(), &out.write);
                }
                if let Err(e) = port.write_all(&out.write) {
                    return Ended::Retry(port::describe_io("write failed", &e));
                }
            }
            for n in out.notes.drain(..) {
                info!(source = %self.spec.name(), "{n}");
            }
            let now = self.clock.now();
            match host.phase() {
                Phase::Failed(why) => return Ended::Retry(why.clone()),
                Phase::Streaming if !streaming => {
                    streaming = true;
                    *streamed = true;
                    self.stats.connections += 1;
                    self.asm.connected(host.channels());
                    if !self.declared {
                        self.declared = true;
                        inputs.extend(declarations(
                            &self.spec.participant,
                            self.spec.settings.protocol().name(),
                            host.as_ref(),
                        ));
                    }
                    for kind in self.asm.kinds().collect::<Vec<_>>() {
                        inputs.push(Input::Source(SourceState {
                            participant: self.spec.participant.clone(),
                            kind,
                            status: SourceStatus::Streaming,
                            host_t: now,
                            detail: host.device().map(str::to_owned),
                        }));
                    }
                    info!(source = %self.spec.name(), device = host.device().unwrap_or("?"), "Streaming.");
                }
                _ => {}
            }
            if !out.decoded.is_empty() {
                self.asm.decoded(now, &out.decoded, &mut inputs);
            }
            if !inputs.is_empty() && !self.send(std::mem::take(&mut inputs)) {
                return Ended::Stopped;
            }
            out.clear();
            match port.read(&mut buf) {
                Ok(0) => return Ended::Retry("the port was closed (end of file)".into()),
                Ok(n) => {
                    let now = self.clock.now();
                    last_rx = now;
                    let bytes = buf.get(..n).unwrap_or(&[]);
                    if let Some(c) = &mut self.capture {
                        c.rx(now, bytes);
                    }
                    host.on_bytes(now, bytes, &mut out);
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Ended::Retry(port::describe_io("read failed", &e)),
            }
            let now = self.clock.now();
            host.on_tick(now, &mut out);
            if let Some(c) = &mut self.capture {
                c.flush_if_due(now);
            }
            if streaming && now - last_rx > self.spec.silence_s {
                return Ended::Retry(format!(
                    "no data for {} s: the device stopped sending",
                    self.spec.silence_s
                ));
            }
        }
    }
}

/// The stream declarations of a device that reached streaming (one per kind; the channel's
/// conversion, input and bit depth go into the device description).
pub fn declarations(
    participant: &ParticipantId,
    protocol: &str,
    host: &dyn crate::protocol::Host,
) -> Vec<Input> {
    let mut seen: Vec<StreamKind> = Vec::new();
    let mut out = Vec::new();
    for c in host.channels() {
        if seen.contains(&c.kind) {
            continue;
        }
        seen.push(c.kind);
        let bits = c.bits.map(|b| format!(" {b}-bit")).unwrap_or_default();
        out.push(Input::Stream(Arc::new(StreamInfo {
            participant: participant.clone(),
            kind: c.kind,
            rate_hz: Some(c.rate_hz),
            device: Device {
                conversion: Some(format!("{} {}{bits}", c.conversion, c.input)),
                name: host
                    .device()
                    .map(str::to_owned)
                    .unwrap_or_else(|| protocol.to_owned()),
                protocol: protocol.to_owned(),
                firmware: None,
            },
        })));
    }
    out
}

/// Whether `snap` lets `p`'s device with `kinds` be captured raw.
pub fn may_capture(snap: &ConsentSnapshot, p: &ParticipantId, kinds: &[StreamKind]) -> bool {
    kinds
        .iter()
        .all(|&k| snap.allows(p, k, Purpose::Process) && snap.allows(p, k, Purpose::Record))
}
