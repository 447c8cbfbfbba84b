//! One connection's protocol loop (steps 5–7 of the [`server`](super) recipe): the welcome, the
//! bounded line reader, client requests (`hello`, `subscribe`, `consent_query`, ...), the idle
//! timeout and eviction while not subscribed, and data lines written under the connection's
//! egress gate after the consent re-check.

use super::pool::Pending;
use crate::consent::ConsentSnapshot;
use crate::model::ParticipantId;
use crate::publish::egress::Registration;
use crate::publish::messages::{self, ALL_TOPICS, ClientMessage, PROTOCOL_VERSION, Topic};
use crate::publish::{BusMessage, StateBoard, WeakBus};
use futures_util::{FutureExt, StreamExt};
use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tracing::info;

/// How often a subscriber that half-closed is checked for having closed completely (it sends
/// nothing more, so only this or a failed write tells).
const HANGUP_PROBE: Duration = Duration::from_secs(1);

/// How long a closing connection may take to accept its last error line.
const FAREWELL: Duration = Duration::from_millis(200);

/// One accepted connection and what it shares with the server.
pub(crate) struct Client {
    pub(super) id: u64,
    pub(super) bus: WeakBus,
    pub(super) board: StateBoard,
    pub(super) consent: watch::Receiver<Arc<ConsentSnapshot>>,
    pub(super) subscribers: Arc<watch::Sender<usize>>,
    pub(super) closing: CancellationToken,
    pub(super) max_line: usize,
    pub(super) idle_timeout: Duration,
    pub(super) slots: Arc<Semaphore>,
    pub(super) max_subscribers: usize,
    pub(super) pending: Arc<Pending>,
    /// Cancelled when this connection, not yet subscribed, is closed to admit a newer one.
    pub(super) evict: CancellationToken,
    pub(super) egress: Registration,
    pub(super) markers: Option<super::Markers>,
    pub(super) drops: Arc<crate::publish::EgressDrops>,
    /// What this listener carries at most (a WebSocket's `[ws]` scope; all for the socket).
    pub(super) scope: crate::publish::transport::Scope,
}

struct Subscription {
    rx: broadcast::Receiver<Arc<BusMessage>>,
    participant: Option<ParticipantId>,
    topics: BTreeSet<Topic>,
    /// The subscriber slot, held while subscribed.
    _slot: OwnedSemaphorePermit,
}

impl Subscription {
    fn wants(&self, m: &BusMessage) -> bool {
        self.topics.contains(&m.topic)
            && self
                .participant
                .as_ref()
                .is_none_or(|p| *p == m.participant)
    }
}

/// Where a connection's lines go: a Unix socket (one line per `\n`) or a WebSocket (one text
/// message per line). `send_line` returns once the line is written to the OS (the egress gate
/// is held until then).
pub(crate) trait LineSink: Send {
    /// Writes one line.
    fn send_line(&mut self, line: &str) -> impl Future<Output = io::Result<()>> + Send;
    /// True when the peer has closed completely (checked only after it stopped sending).
    fn peer_gone(&mut self) -> bool {
        false
    }
    /// Ends the connection politely.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// Why a connection's input ended in error.
#[derive(Debug)]
pub(crate) enum LineError {
    /// A line (message) over the limit.
    TooLong,
    /// The transport failed.
    Io(io::Error),
}

impl LineSink for tokio::net::unix::OwnedWriteHalf {
    async fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.write_all(&buf).await
    }

    fn peer_gone(&mut self) -> bool {
        // Readiness is only read here, never cleared (clearing it could stall the next
        // write); a peer that closed completely shows as write-closed.
        let ready = self.as_ref().ready(Interest::WRITABLE).now_or_never();
        ready.is_some_and(|r| r.is_ok_and(|r| r.is_write_closed()))
    }

    async fn close(&mut self) {
        let _ = self.shutdown().await;
    }
}

/// A last error line to a connection being closed, without waiting long for a client that
/// does not read.
async fn farewell<W: LineSink>(w: &mut W, code: &str, message: &str) {
    let _ = tokio::time::timeout(FAREWELL, w.send_line(&messages::error(code, message))).await;
}

/// What ended a data write.
enum Wrote {
    /// Written, or dropped at egress.
    Done,
    /// The connection was cancelled by the revocation handshake; close it.
    Cancelled,
}

impl Client {
    /// Serves a Unix socket connection until it closes, is closed, or the bus closes.
    pub(super) async fn serve(self, stream: UnixStream) -> io::Result<()> {
        let (r, w) = stream.into_split();
        // Bytes, not `String`s: a line that is not UTF-8 is answered and the connection stays
        // open (a `LinesCodec` error would end the stream). Too long a line ends it.
        let lines = FramedRead::new(
            r,
            AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), self.max_line),
        )
        .map(|r| {
            r.map(|b| b.to_vec()).map_err(|e| match e {
                AnyDelimiterCodecError::MaxChunkLengthExceeded => LineError::TooLong,
                AnyDelimiterCodecError::Io(e) => LineError::Io(e),
            })
        });
        self.serve_lines(lines, w).await
    }

    /// Serves a connection given as its input lines and its output, until it closes, is
    /// closed, or the bus closes.
    pub(crate) async fn serve_lines<R, W>(self, mut lines: R, mut w: W) -> io::Result<()>
    where
        R: futures_util::Stream<Item = Result<Vec<u8>, LineError>> + Unpin + Send,
        W: LineSink,
    {
        let mut sub: Option<Subscription> = None;
        let mut reading = true;
        let idle = tokio::time::sleep(self.idle_timeout);
        tokio::pin!(idle);
        let cancel = self.egress.egress.cancel.clone();
        let mut probe = tokio::time::interval(HANGUP_PROBE);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = async {
            w.send_line(&messages::welcome()).await?;
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    line = lines.next(), if reading => match line {
                        // End of input. Subscribed: the client half-closed; keep sending until
                        // the bus closes or a write fails. Not subscribed: nothing to send.
                        None if sub.is_some() => reading = false,
                        None => return Ok(()),
                        Some(Err(LineError::TooLong)) => {
                            let msg = format!("line longer than {} bytes; closing", self.max_line);
                            farewell(&mut w, "line_too_long", &msg).await;
                            return Ok(());
                        }
                        Some(Err(LineError::Io(e))) => return Err(e),
                        Some(Ok(bytes)) => {
                            idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
                            let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
                            match std::str::from_utf8(bytes) {
                                Ok(line) => self.handle(line, &mut w, &mut sub).await?,
                                Err(_) => {
                                    let msg = "line is not valid UTF-8; the connection stays open";
                                    w.send_line(&messages::error("bad_request", msg)).await?;
                                }
                            }
                        }
                    },
                    m = recv(&mut sub) => match m {
                        Ok(m) => {
                            if let Wrote::Cancelled = self.write_data(&mut w, &m, sub.as_ref()).await? {
                                return Ok(());
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            self.drops.lagged.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                            w.send_line(&messages::lagged(n)).await?;
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                    _ = probe.tick(), if !reading => {
                        if w.peer_gone() {
                            return Ok(());
                        }
                    }
                    _ = self.closing.cancelled(), if sub.is_none() => return Ok(()),
                    _ = self.evict.cancelled(), if sub.is_none() => {
                        farewell(&mut w, "too_many_clients",
                            "closed to admit a newer connection: too many connections have not subscribed; subscribe right after connecting").await;
                        return Ok(());
                    }
                    _ = &mut idle, if sub.is_none() => {
                        let msg = format!("no subscribe within {} s; closing", self.idle_timeout.as_secs_f64());
                        farewell(&mut w, "idle_timeout", &msg).await;
                        return Ok(());
                    }
                }
            }
        }
        .await;
        if sub.is_some() {
            self.subscribers.send_modify(|n| *n = n.saturating_sub(1));
        } else {
            self.pending.leave(self.id);
        }
        w.close().await;
        result
    }

    /// Writes one bus message if the subscription wants it and the consent in force allows it,
    /// holding the egress gate from the check until the write is done (`egress` module doc).
    async fn write_data<W: LineSink>(
        &self,
        w: &mut W,
        m: &BusMessage,
        sub: Option<&Subscription>,
    ) -> io::Result<Wrote> {
        if !sub.is_some_and(|s| s.wants(m))
            || !self.scope.has_participant(&m.participant)
            || !self.scope.has_topic(m.topic)
        {
            return Ok(Wrote::Done);
        }
        let egress = &self.egress.egress;
        let _gate = egress.gate.lock().await;
        if egress.cancel.is_cancelled() {
            return Ok(Wrote::Cancelled);
        }
        // Egress re-check: a line queued before a revocation is dropped here.
        let allowed = {
            let snap = self.consent.borrow();
            m.needs.iter().all(|n| n.met(&snap, &m.participant))
        };
        if !allowed {
            self.drops
                .withdrawn
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(Wrote::Done);
        }
        tokio::select! {
            biased;
            _ = egress.cancel.cancelled() => Ok(Wrote::Cancelled),
            r = w.send_line(&m.line) => r.map(|()| Wrote::Done),
        }
    }

    async fn handle<W: LineSink>(
        &self,
        line: &str,
        w: &mut W,
        sub: &mut Option<Subscription>,
    ) -> io::Result<()> {
        if line.trim().is_empty() {
            return Ok(());
        }
        match messages::parse_client_line(line) {
            Err((code, msg)) => w.send_line(&messages::error(code, &msg)).await,
            Ok(ClientMessage::Hello { protocol, client }) => {
                if protocol != PROTOCOL_VERSION {
                    let msg =
                        format!("this daemon speaks protocol {PROTOCOL_VERSION}, not {protocol}");
                    w.send_line(&messages::error("unsupported_protocol", &msg)).await?;
                    return Err(io::Error::other("unsupported protocol"));
                }
                info!(
                    client = client.as_deref().unwrap_or("?"),
                    "Client said hello."
                );
                Ok(())
            }
            Ok(ClientMessage::Subscribe {
                participant,
                topics,
            }) => {
                let participant = match participant.as_deref() {
                    None | Some("*") => None,
                    Some(p) => match ParticipantId::new(p) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            return w.send_line(&messages::error("bad_request", &e.to_string())).await;
                        }
                    },
                };
                let topics: BTreeSet<Topic> =
                    topics.map_or(ALL_TOPICS.into(), |t| t.into_iter().collect());
                let (rx, slot) = match sub.take() {
                    Some(old) => (old.rx, old._slot),
                    None => {
                        // The bus closes when the pipeline ends; then there is nothing to join.
                        let Some(bus) = self.bus.upgrade() else {
                            w.send_line(
                                &messages::error("shutting_down", "the daemon is shutting down"),
                            )
                            .await?;
                            return Err(io::Error::other("bus closed"));
                        };
                        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                            let msg = format!(
                                "all {} subscriber places are taken; try again later",
                                self.max_subscribers
                            );
                            return w.send_line(&messages::error("too_many_subscribers", &msg)).await;
                        };
                        self.pending.leave(self.id);
                        let rx = bus.subscribe();
                        self.subscribers.send_modify(|n| *n += 1);
                        (rx, slot)
                    }
                };
                // Current stream states first (they may repeat a change that is also queued).
                let snapshot: Vec<String> = if topics.contains(&Topic::State) && self.scope.has_topic(Topic::State) {
                    let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
                    board
                        .iter()
                        .filter(|((p, _), _)| participant.as_ref().is_none_or(|want| want == p))
                        .filter(|((p, _), _)| self.scope.has_participant(p))
                        .map(|(_, line)| line.clone())
                        .collect()
                } else {
                    Vec::new()
                };
                *sub = Some(Subscription {
                    rx,
                    participant,
                    topics,
                    _slot: slot,
                });
                for line in snapshot {
                    w.send_line(&line).await?;
                }
                Ok(())
            }
            Ok(ClientMessage::ConsentQuery { participant }) => match ParticipantId::new(&participant) {
                Ok(p) => {
                    let line = messages::consent(&p, &self.consent.borrow());
                    w.send_line(&line).await
                }
                Err(e) => w.send_line(&messages::error("bad_request", &e.to_string())).await,
            },
            Ok(ClientMessage::ConsentChange { .. }) => {
                w.send_line(
                    &messages::error(
                        "not_permitted",
                        "changing consent over this socket is off: no client is configured for it; use `attune consent`",
                    ),
                )
                .await
            }
            Ok(ClientMessage::Exercise {
                participant,
                event,
                exercise,
                target,
            }) => match self.exercise(&participant, event, exercise, target).await {
                Ok(()) => Ok(()),
                Err((code, msg)) => w.send_line(&messages::error(code, &msg)).await,
            },
            Ok(ClientMessage::Feedback {
                participant,
                rating,
            }) => {
                let data = serde_json::json!({ "rating": rating });
                match self.marker(&participant, "feedback", data).await {
                    Ok(()) => Ok(()),
                    Err((code, msg)) => w.send_line(&messages::error(code, &msg)).await,
                }
            }
        }
    }
}

impl Client {
    /// An app's `exercise` start/end becomes a marker (`exercise_start`/`exercise_end`, with the
    /// exercise and its target as data) in the engine and the recording. Nothing is answered on
    /// success; an unknown participant is an `error`, and nothing is recorded.
    async fn exercise(
        &self,
        participant: &str,
        event: messages::ExerciseEvent,
        exercise: Option<String>,
        target: Option<messages::TargetSpec>,
    ) -> Result<(), (&'static str, String)> {
        if exercise
            .as_deref()
            .is_some_and(|e| e.len() > 128 || e.chars().any(char::is_control))
        {
            return Err((
                "bad_request",
                "an exercise name is at most 128 printable characters".into(),
            ));
        }
        if let Some(messages::TargetSpec::Bounds { low, high }) = target
            && let Err(e) = crate::policy::target::Target::bounds(low, high)
        {
            return Err(("bad_request", e.to_string()));
        }
        let label = match event {
            messages::ExerciseEvent::Start => "exercise_start",
            messages::ExerciseEvent::End => "exercise_end",
        };
        let data = serde_json::json!({"exercise": exercise, "target": target});
        self.marker(participant, label, data).await
    }

    /// A client's message becomes a marker for a participant of the session (in the engine,
    /// which steers the policy by it, and in the recording). An unknown participant is an
    /// `error`, and nothing is recorded.
    async fn marker(
        &self,
        participant: &str,
        label: &str,
        data: serde_json::Value,
    ) -> Result<(), (&'static str, String)> {
        let p = ParticipantId::new(participant).map_err(|e| ("bad_request", e.to_string()))?;
        let Some(m) = &self.markers else {
            return Err((
                "not_implemented",
                "this daemon does not take exercise or feedback messages".into(),
            ));
        };
        let known = m
            .participants
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&p);
        if !known {
            return Err((
                "unknown_participant",
                format!("participant {p} is not in this session; nothing was recorded"),
            ));
        }
        let t = m.clock.now();
        let marker = crate::recording::Marker {
            host_t: t,
            t,
            label: label.into(),
            data: Some(data),
        };
        m.inputs
            .send(crate::engine::input::Input::Marker(p, marker))
            .await
            .map_err(|_| ("shutting_down", "the session has ended".to_owned()))
    }
}

async fn recv(
    sub: &mut Option<Subscription>,
) -> Result<Arc<BusMessage>, broadcast::error::RecvError> {
    match sub {
        Some(s) => s.rx.recv().await,
        None => std::future::pending().await,
    }
}
