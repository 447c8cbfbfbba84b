//! Unix socket server for protocol v1 (edge). Safe by construction (RELIABILITY.md, "Unix socket
//! recipe"):
//!
//! 1. The socket's directory must be private: created 0700 if missing; if it exists it must be a
//!    real directory (a symlink is refused, never followed) owned by our uid with no group/other
//!    bits, or the daemon refuses to start
//!    ([`trust::check_private_dir`](super::trust::check_private_dir), the rule clients apply
//!    as well).
//! 2. The process umask is 0o077 (set in `main` before the runtime starts); after `bind` the
//!    socket is set to 0600 again.
//! 3. A live socket is never unlinked: if connecting to the path succeeds, another daemon owns it
//!    and we refuse. A stale socket file of ours is removed; any other file is left alone.
//! 4. The peer's uid (SO_PEERCRED) must be in `allowed_uids` (default: our own) before any byte
//!    is exchanged. Admission then has two pools, so connections that never subscribe cannot
//!    lock anyone out: at most `max_pending` connections that have not subscribed (when a new
//!    one arrives and the pool is full, the oldest is closed with `too_many_clients`), each
//!    closed with `idle_timeout` after `idle_timeout` without a line; and `max_clients`
//!    subscriber slots, taken at `subscribe` (`too_many_subscribers` when none is free; the
//!    connection stays open and unsubscribed).
//! 5. Inbound lines are bytes up to `max_line`; a longer line gets `line_too_long` and that
//!    connection only is closed. A line that is not UTF-8 gets `bad_request` like any other bad
//!    line, and the connection stays open.
//! 6. Each subscriber reads the bus at its own pace; lagging costs it messages (`lagged`), never
//!    the pipeline. A subscriber that half-closes is still sent to until the bus closes or a
//!    write fails (or, sending nothing, until a probe sees it closed completely).
//! 7. Each connection is an egress point of the revocation handshake ([`super::egress`]): a
//!    data line is checked against the consent in force and written under the connection's
//!    gate, so a revocation is acknowledged only when no line the old consent allowed can still
//!    be written.
//!
//! Layout: `bind` (steps 1–3: the private directory, stale sockets, the socket paths), `pool`
//! (the pool of connections that have not subscribed yet), `client` (one connection's protocol
//! loop: steps 5–7), and here the settings, the errors and the accept loop (step 4).

mod bind;
mod client;
mod pool;

pub use bind::{bind_private, control_socket_path, default_socket_path, ensure_private_dir};

use super::egress::Egresses;
use super::{StateBoard, WeakBus};
use crate::consent::ConsentSnapshot;
use client::Client;
#[cfg(feature = "ws")]
pub(crate) use client::{LineError, LineSink};
use pool::Pending;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

/// How long a connection may stay silent before its first `subscribe`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections that have not subscribed yet, at most (beyond it the oldest is closed).
pub const MAX_PENDING: usize = 16;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Socket path.
    pub path: PathBuf,
    /// Maximum concurrent subscribed clients (subscriber slots).
    pub max_clients: usize,
    /// Maximum connections that have not subscribed yet; when a new connection arrives and this
    /// many are waiting, the oldest of them is closed (`too_many_clients`).
    pub max_pending: usize,
    /// A connection that has not subscribed and sends no line for this long is closed
    /// (`idle_timeout`).
    pub idle_timeout: Duration,
    /// Maximum inbound line length, bytes.
    pub max_line: usize,
    /// Peer uids allowed to connect.
    pub allowed_uids: Vec<u32>,
}

impl ServerConfig {
    /// Defaults for `path`: 64 subscribers, 16 not yet subscribed with a 10 s idle timeout,
    /// 64 KiB lines, only our own uid.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            max_clients: 64,
            max_pending: MAX_PENDING,
            idle_timeout: IDLE_TIMEOUT,
            max_line: 64 * 1024,
            allowed_uids: vec![nix::unistd::geteuid().as_raw()],
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The socket directory is not private.
    #[error(
        "socket directory {dir} is not private (mode {mode:o}, owner uid {owner}); it must be owned by uid {uid} with mode 0700"
    )]
    InsecureDir {
        /// Directory.
        dir: PathBuf,
        /// Its mode bits.
        mode: u32,
        /// Its owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// The socket directory is a symbolic link (it is never followed).
    #[error(
        "socket directory {dir} is a symbolic link (owner uid {owner}); it must be a real directory owned by uid {uid} with mode 0700"
    )]
    SymlinkDir {
        /// Directory.
        dir: PathBuf,
        /// The link's owner.
        owner: u32,
        /// Our uid.
        uid: u32,
    },
    /// Another daemon is listening.
    #[error("socket {0} is in use by a running daemon")]
    InUse(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// The path has no parent directory.
    #[error("socket path {0} has no directory")]
    NoDir(PathBuf),
    /// An OS error with the path it concerns.
    #[error("socket {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Error.
        source: io::Error,
    },
}

/// What the pipeline shares with the server.
pub struct Feeds {
    /// The message bus (weak: it closes when the pipeline ends).
    pub bus: WeakBus,
    /// Latest stream states, for the snapshot on subscribe.
    pub board: StateBoard,
    /// The consent in force, re-checked at egress.
    pub consent: watch::Receiver<Arc<ConsentSnapshot>>,
    /// Counts subscribed connections.
    pub subscribers: watch::Sender<usize>,
    /// Every connection registers here as an egress point (the revocation handshake).
    pub egress: Egresses,
    /// Where an app's `exercise` messages go; `None`: they are refused.
    pub markers: Option<Markers>,
    /// Drop counters the connections add to.
    pub drops: Arc<crate::publish::EgressDrops>,
}

/// Where `exercise` messages become markers: the engine's input channel.
#[derive(Clone)]
pub struct Markers {
    /// The engine's inputs.
    pub inputs: tokio::sync::mpsc::Sender<crate::engine::input::Input>,
    /// Stamps the markers.
    pub clock: crate::sources::SessionClock,
    /// The participants of the session (a marker for anyone else is an error); a reloaded
    /// configuration may change them.
    pub participants: Arc<std::sync::RwLock<Vec<crate::model::ParticipantId>>>,
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    cfg: ServerConfig,
    listener: UnixListener,
    /// Connections refused because of the peer uid.
    pub rejected_uid: Arc<AtomicU64>,
}

impl Server {
    /// Checks the directory, handles a stale socket, binds, and sets 0600.
    pub fn bind(cfg: ServerConfig) -> Result<Self, ServerError> {
        let listener = bind_private(&cfg.path)?;
        Ok(Self {
            cfg,
            listener,
            rejected_uid: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.cfg.path
    }

    /// Accepts clients until `stop` is cancelled. Client tasks go on `tasks`; each drains its
    /// subscription until the bus closes, or ends at `closing` if it never subscribed.
    /// `subscribers` counts connections that have subscribed.
    ///
    /// Admission: a new connection joins the pool of connections that have not subscribed yet
    /// (`max_pending`; when it is full, the oldest of them is closed to make room, so
    /// connections that never subscribe cannot lock anyone out) and moves to one of the
    /// `max_clients` subscriber slots when it subscribes.
    pub async fn run(
        self,
        feeds: Feeds,
        stop: CancellationToken,
        closing: CancellationToken,
        tasks: TaskTracker,
    ) {
        let hub = Hub::new(
            feeds,
            Limits {
                max_clients: self.cfg.max_clients,
                max_pending: self.cfg.max_pending,
                idle_timeout: self.cfg.idle_timeout,
                max_line: self.cfg.max_line,
            },
            closing,
        );
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                a = self.listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of descriptors (EMFILE/ENFILE) repeats at once: back off
                        // instead of spinning and flooding the log.
                        warn!(error = %e, "Accept failed; retrying in 100 ms.");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let uid = match stream.peer_cred() {
                Ok(c) => c.uid(),
                Err(e) => {
                    warn!(error = %e, "Could not read peer credentials; closing.");
                    continue;
                }
            };
            if !self.cfg.allowed_uids.contains(&uid) {
                self.rejected_uid.fetch_add(1, Ordering::Relaxed);
                warn!(uid, "Client uid not allowed; connection closed.");
                drop(stream);
                continue;
            }
            let client = hub.client();
            tasks.spawn(async move {
                if let Err(e) = client.serve(stream).await {
                    debug!(error = %e, "Client connection ended with an error.");
                }
            });
        }
    }
}

/// The limits of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Subscriber slots.
    pub max_clients: usize,
    /// Connections not yet subscribed, at most.
    pub max_pending: usize,
    /// Silence allowed before `subscribe`.
    pub idle_timeout: Duration,
    /// Longest inbound line (message), bytes.
    pub max_line: usize,
}

/// What the connections of one listener share: the feeds, the subscriber slots and the pool of
/// connections not subscribed yet. The Unix socket has one; a WebSocket server has its own.
pub(crate) struct Hub {
    feeds: Feeds,
    subscribers: Arc<watch::Sender<usize>>,
    slots: Arc<Semaphore>,
    pending: Arc<Pending>,
    limits: Limits,
    closing: CancellationToken,
    next_id: AtomicU64,
    scope: crate::publish::transport::Scope,
}

impl Hub {
    /// A hub for connections fed by `feeds`; those not subscribed end at `closing`.
    pub(crate) fn new(feeds: Feeds, limits: Limits, closing: CancellationToken) -> Self {
        let subscribers = Arc::new(feeds.subscribers.clone());
        Self {
            subscribers,
            slots: Arc::new(Semaphore::new(limits.max_clients)),
            pending: Arc::new(Pending::new(limits.max_pending)),
            limits,
            closing,
            next_id: AtomicU64::new(0),
            feeds,
            scope: crate::publish::transport::Scope::default(),
        }
    }

    /// Carries only what `scope` allows.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn with_scope(mut self, scope: crate::publish::transport::Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Connections subscribed now.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn subscribed(&self) -> usize {
        *self.subscribers.borrow()
    }

    /// The protocol loop for one new connection (it joins the not-yet-subscribed pool now);
    /// run it with [`Client::serve_lines`].
    pub(crate) fn client(&self) -> Client {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let f = &self.feeds;
        Client {
            id,
            bus: f.bus.clone(),
            board: f.board.clone(),
            consent: f.consent.clone(),
            subscribers: self.subscribers.clone(),
            closing: self.closing.clone(),
            max_line: self.limits.max_line,
            idle_timeout: self.limits.idle_timeout,
            slots: self.slots.clone(),
            max_subscribers: self.limits.max_clients,
            pending: self.pending.clone(),
            evict: self.pending.admit(id),
            egress: f.egress.register(),
            markers: f.markers.clone(),
            drops: f.drops.clone(),
            scope: self.scope.clone(),
        }
    }

    /// The maximum inbound message size.
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub(crate) fn max_line(&self) -> usize {
        self.limits.max_line
    }
}

#[cfg(test)]
mod tests;
