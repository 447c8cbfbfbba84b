//! WebSocket server for protocol v1 (edge): the Unix socket's protocol, unchanged, over
//! WebSocket (RFC 6455, tokio-tungstenite), for browser and WebGL exercises.
//!
//! One text message per protocol line, both ways: the server's `welcome`, the client's `hello`
//! and `subscribe`, then the subscribed lines, `lagged`, `error` and the client requests
//! (`exercise`, `feedback`, `consent_query`) exactly as on the socket (docs/protocol.md). The
//! protocol loop is the socket's own ([`crate::publish::server`]): the same limits (64
//! subscribers, 16 connections not yet subscribed with a 10 s idle timeout, 64 KiB messages),
//! the same per-subscriber ring with `lagged` for a client that falls behind, and the same
//! consent re-check under the connection's egress gate, held until the frame is written.
//!
//! # Who may connect
//!
//! Bound to 127.0.0.1:8765 by default. A local WebSocket is reachable from any page the user
//! opens, so the handshake checks `Host` (DNS rebinding), `Origin` (an allowlist, empty by
//! default; a native client sends none) and a token ([`guard`], [`token`]). A refused
//! handshake gets an HTTP 401 or 403 with the reason as its body, is counted in `status`
//! (`refused.host`, `.origin`, `.token`, `.handshake`), and is logged once per kind and minute.
//! A handshake must finish within 5 s, and at most 32 run at once.
//!
//! A request that is not a WebSocket handshake gets the live page ([`page`]), unless
//! `[ws] page = false`.

use super::Context;
use crate::publish::server::{Feeds, Hub, Limits, LineError, LineSink};
use crate::publish::{Flow, Publisher};
use futures_util::{SinkExt, StreamExt};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_tungstenite::tungstenite;
use tungstenite::Message;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::WebSocketConfig;

mod config;
pub mod guard;
pub mod page;
pub mod token;

pub use config::{WsSpec, from_section};

/// The default listening address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8765";

/// A handshake must finish within this.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// Handshakes in progress, at most.
const MAX_HANDSHAKES: usize = 32;

/// Counters of refused handshakes, by check.
#[derive(Debug, Default)]
struct Refused {
    host: AtomicU64,
    origin: AtomicU64,
    token: AtomicU64,
    /// Not a WebSocket handshake, too slow, or broken.
    handshake: AtomicU64,
    /// Live page requests answered (any status but a Host refusal, which counts as `host`).
    pages: AtomicU64,
    /// When each kind was last logged (ms since start), so a hostile page cannot flood the log.
    logged: std::sync::Mutex<std::collections::BTreeMap<&'static str, tokio::time::Instant>>,
}

impl Refused {
    fn count(&self, check: &'static str, reason: &str) {
        let c = match check {
            "host" => &self.host,
            "origin" => &self.origin,
            "token" => &self.token,
            _ => &self.handshake,
        };
        c.fetch_add(1, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        let due = logged
            .get(check)
            .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(60));
        if due {
            logged.insert(check, now);
            tracing::warn!(
                check,
                reason,
                "WebSocket: a connection was refused (logged once a minute per kind; `attune status` counts them all)."
            );
        }
    }

    fn json(&self) -> serde_json::Value {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "host": g(&self.host),
            "origin": g(&self.origin),
            "token": g(&self.token),
            "handshake": g(&self.handshake),
        })
    }

    fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }
}

/// The WebSocket transport as a [`Publisher`]: the connections read the bus the Unix publisher
/// fills, so events need nothing here; it reports the server's counters.
pub struct WsPublisher {
    addr: String,
    token_file: std::path::PathBuf,
    hub: Arc<Hub>,
    accepted: Arc<AtomicU64>,
    refused: Arc<Refused>,
    page: bool,
}

impl Publisher for WsPublisher {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn publish(&mut self, _event: &Arc<crate::engine::event::Event>) -> Flow {
        Flow::Continue
    }

    fn consent(&mut self, _snapshot: &Arc<crate::consent::ConsentSnapshot>) -> Flow {
        // Each connection re-checks every line under its egress gate (module docs).
        Flow::Continue
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "address": self.addr,
            "token_file": self.token_file,
            "connections": self.accepted.load(Ordering::Relaxed),
            "subscribers": self.hub.subscribed(),
            "refused": self.refused.json(),
            "page": {"enabled": self.page, "requests": self.refused.pages()},
        })
    }
}

/// A WebSocket as a connection's output: one text message per line, flushed before it returns.
struct WsOut<S>(futures_util::stream::SplitSink<tokio_tungstenite::WebSocketStream<S>, Message>);

impl<S> LineSink for WsOut<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    async fn send_line(&mut self, line: &str) -> io::Result<()> {
        self.0
            .send(Message::text(line))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(200), self.0.close()).await;
    }
}

/// Starts the WebSocket server: reads (or creates) the token, binds, and accepts.
pub async fn start(spec: WsSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let (token_file, token) = token::ensure(&ctx.data_dir)?;
    let listener = tokio::net::TcpListener::bind(&spec.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", spec.addr))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", spec.addr))?;
    let addr = if spec.addr.ends_with(":0") {
        bound.to_string()
    } else {
        spec.addr.clone()
    };
    let policy = Arc::new(guard::Policy {
        hosts: guard::Policy::hosts_for(&addr, &spec.allowed_hosts),
        origins: spec.allowed_origins.clone(),
        token,
    });
    let feeds = Feeds {
        bus: ctx.bus.clone(),
        board: ctx.board.clone(),
        consent: ctx.consent.clone(),
        subscribers: tokio::sync::watch::channel(0).0,
        egress: ctx.egress.clone(),
        markers: ctx.markers.clone(),
        drops: ctx.drops.clone(),
    };
    let limits = Limits {
        max_clients: spec.max_clients,
        max_pending: crate::publish::server::MAX_PENDING,
        idle_timeout: crate::publish::server::IDLE_TIMEOUT,
        max_line: 64 * 1024,
    };
    let hub = Arc::new(Hub::new(feeds, limits, ctx.closing.clone()).with_scope(spec.scope.clone()));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(Refused::default());
    let acceptor = Acceptor {
        listener,
        hub: hub.clone(),
        policy,
        accepted: accepted.clone(),
        refused: refused.clone(),
        handshakes: Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES)),
        tasks: ctx.tasks.clone(),
        page: spec.page,
    };
    ctx.tasks.spawn(acceptor.run(ctx.closing.clone()));
    tracing::info!(address = %addr, token_file = %token_file.display(), "WebSocket: listening (`attune token` shows how clients connect).");
    Ok(Box::new(WsPublisher {
        addr,
        token_file,
        hub,
        accepted,
        refused,
        page: spec.page,
    }))
}

struct Acceptor {
    listener: tokio::net::TcpListener,
    hub: Arc<Hub>,
    policy: Arc<guard::Policy>,
    accepted: Arc<AtomicU64>,
    refused: Arc<Refused>,
    handshakes: Arc<tokio::sync::Semaphore>,
    tasks: tokio_util::task::TaskTracker,
    page: bool,
}

impl Acceptor {
    async fn run(self, closing: tokio_util::sync::CancellationToken) {
        loop {
            let tcp = tokio::select! {
                _ = closing.cancelled() => break,
                a = self.listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "WebSocket: accept failed; retrying in 100 ms.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = self.handshakes.clone().try_acquire_owned() else {
                self.refused
                    .count("handshake", "too many handshakes at once");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let (hub, policy, refused, accepted, page) = (
                self.hub.clone(),
                self.policy.clone(),
                self.refused.clone(),
                self.accepted.clone(),
                self.page,
            );
            self.tasks.spawn(async move {
                let max = hub.max_line();
                let ws =
                    tokio::time::timeout(HANDSHAKE, handshake(tcp, &policy, &refused, max, page))
                        .await;
                drop(permit);
                let ws = match ws {
                    Ok(Some(ws)) => ws,
                    Ok(None) => return,
                    Err(_) => {
                        refused.count("handshake", "no complete handshake within 5 s");
                        return;
                    }
                };
                accepted.fetch_add(1, Ordering::Relaxed);
                let (sink, stream) = ws.split();
                let lines = stream.filter_map(|m| async move {
                    match m {
                        Ok(Message::Text(t)) => Some(Ok(t.as_str().as_bytes().to_vec())),
                        Ok(Message::Binary(b)) => Some(Ok(b.to_vec())),
                        Ok(_) => None,
                        Err(tungstenite::Error::Capacity(_)) => Some(Err(LineError::TooLong)),
                        Err(e) => Some(Err(LineError::Io(io::Error::other(e)))),
                    }
                });
                if let Err(e) = hub.client().serve_lines(Box::pin(lines), WsOut(sink)).await {
                    tracing::debug!(error = %e, "WebSocket connection ended with an error.");
                }
            });
        }
    }
}

/// A connection's stream once its request head has been read.
type Stream = page::Prefixed<tokio::net::TcpStream>;

/// The handshake with the [`guard`] checks; `None` (counted) when refused or broken, or when
/// the request was for the live page (answered here).
async fn handshake(
    mut tcp: tokio::net::TcpStream,
    policy: &guard::Policy,
    refused: &Refused,
    max_message: usize,
    page_on: bool,
) -> Option<tokio_tungstenite::WebSocketStream<Stream>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (head, bytes) = match page::read_head(&mut tcp).await {
        Ok(h) => h,
        Err(e) => {
            refused.count("handshake", &e.to_string());
            if let Some(reply) = page::answer_bad_head(&e) {
                let _ = tcp.write_all(&reply).await;
                let _ = tcp.shutdown().await;
            }
            return None;
        }
    };
    if !head.upgrade {
        let reply = page::answer(&head, policy, page_on);
        match &reply.refusal {
            Some(r) => refused.count(r.check, &r.reason),
            None => {
                refused.pages.fetch_add(1, Ordering::Relaxed);
            }
        }
        if tcp.write_all(&reply.bytes).await.is_ok() {
            let _ = tcp.shutdown().await;
            // Unread request bytes (a body) would turn the close into a reset that can take the
            // answer with it: read them away for a moment (within the handshake's 5 s).
            let mut sink = [0u8; 4096];
            let drain = async {
                let mut left = 64 * 1024usize;
                while left > 0 {
                    match tcp.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
        }
        return None;
    }
    let tcp = page::Prefixed::new(bytes, tcp);
    let mut verdict: Option<guard::Refusal> = None;
    // tungstenite's callback signature returns its (large) error response by value.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        match guard::check(
            policy,
            h("host"),
            h("origin"),
            req.uri().query(),
            h("authorization"),
        ) {
            Ok(()) => Ok(resp),
            Err(r) => {
                let mut e = ErrorResponse::new(Some(format!("{}\n", r.reason)));
                *e.status_mut() = tungstenite::http::StatusCode::from_u16(r.status)
                    .unwrap_or(tungstenite::http::StatusCode::FORBIDDEN);
                verdict = Some(r);
                Err(e)
            }
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    match tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)).await {
        Ok(ws) => Some(ws),
        Err(e) => {
            match verdict {
                Some(r) => refused.count(r.check, &r.reason),
                None => refused.count("handshake", &e.to_string()),
            }
            None
        }
    }
}
