//! Unix socket server for protocol v1 (edge). Safe by construction (RELIABILITY.md, "Unix socket
//! recipe"):
//!
//! 1. The socket's directory must be private: created 0700 if missing; if it exists it must be a
//!    real directory (a symlink is refused, never followed) owned by our uid with no group/other
//!    bits, or the daemon refuses to start ([`trust::check_private_dir`], the rule clients
//!    apply as well).
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

use super::egress::{Egresses, Registration};
use super::messages::{self, ALL_TOPICS, ClientMessage, PROTOCOL_VERSION, Topic};
use super::trust::{self, TrustError};
use super::{BusMessage, StateBoard, WeakBus};
use crate::consent::ConsentSnapshot;
use crate::model::ParticipantId;
use futures_util::{FutureExt, StreamExt};
use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio_util::codec::{AnyDelimiterCodec, AnyDelimiterCodecError, FramedRead};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// How long a connection may stay silent before its first `subscribe`.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections that have not subscribed yet, at most (beyond it the oldest is closed).
pub const MAX_PENDING: usize = 16;

/// How often a subscriber that half-closed is checked for having closed completely (it sends
/// nothing more, so only this or a failed write tells).
const HANGUP_PROBE: Duration = Duration::from_secs(1);

/// How long a closing connection may take to accept its last error line.
const FAREWELL: Duration = Duration::from_millis(200);

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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ServerError + '_ {
    move |source| ServerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The control socket of a daemon whose subscriber socket is `socket`: `control.sock` beside it.
pub fn control_socket_path(socket: &Path) -> PathBuf {
    socket.with_file_name("control.sock")
}

/// The default socket path: `$XDG_RUNTIME_DIR/attune/attune.sock`, else
/// `/tmp/attune-<uid>/attune.sock`.
pub fn default_socket_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("attune").join("attune.sock"),
        _ => PathBuf::from(format!("/tmp/attune-{}", nix::unistd::geteuid())).join("attune.sock"),
    }
}

/// Creates `dir` with mode 0700 if it is missing, else checks that it is private and ours: a
/// real directory (a symlink is refused, never followed), owned by our uid, no group or other
/// bits ([`trust::check_private_dir`], the rule clients apply too).
pub fn ensure_private_dir(dir: &Path) -> Result<(), ServerError> {
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        Err(e) => return Err(io_err(dir)(e)),
    }
    trust::check_private_dir(dir).map_err(|e| match e {
        TrustError::Symlink { dir, owner, uid } => ServerError::SymlinkDir { dir, owner, uid },
        TrustError::NotPrivate {
            dir,
            owner,
            mode,
            uid,
            ..
        } => ServerError::InsecureDir {
            dir,
            mode,
            owner,
            uid,
        },
        TrustError::Io { path, source } => ServerError::Io { path, source },
        other => io_err(dir)(io::Error::other(other.to_string())),
    })
}

/// Binds a Unix socket at `path` the safe way (module doc, steps 1–3): private directory,
/// a live socket is never replaced, a stale one of ours is removed, and the socket appears at
/// its path only with mode 0600.
pub fn bind_private(path: &Path) -> Result<UnixListener, ServerError> {
    let path = path.to_owned();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| ServerError::NoDir(path.clone()))?;
    ensure_private_dir(dir)?;
    match std::fs::symlink_metadata(&path) {
        Ok(meta) => {
            if !meta.file_type().is_socket() {
                return Err(ServerError::NotASocket(path));
            }
            match std::os::unix::net::UnixStream::connect(&path) {
                Ok(_) => return Err(ServerError::InUse(path)),
                Err(_) => {
                    debug!(path = %path.display(), "Removing stale socket.");
                    std::fs::remove_file(&path).map_err(io_err(&path))?;
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    // Bind under a temporary name, set 0600, then link it into place: the socket appears at
    // its path only with its final mode (the umask alone would give 0700), and the link
    // fails rather than replace a socket another daemon created meanwhile.
    let tmp = path.with_file_name(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("attune.sock"),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io_err(&tmp))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    if let Err(e) = placed {
        return Err(match e.kind() {
            io::ErrorKind::AlreadyExists => ServerError::InUse(path),
            _ => io_err(&path)(e),
        });
    }
    Ok(listener)
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
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    cfg: ServerConfig,
    listener: UnixListener,
    /// Connections refused because of the peer uid.
    pub rejected_uid: Arc<AtomicU64>,
}

/// Connections that have not subscribed yet, oldest first: (id, closes it).
type Pending = Arc<std::sync::Mutex<VecDeque<(u64, CancellationToken)>>>;

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
        let Feeds {
            bus,
            board,
            consent,
            subscribers,
            egress,
        } = feeds;
        let slots = Arc::new(Semaphore::new(self.cfg.max_clients));
        let pending: Pending = Arc::default();
        let subscribers = Arc::new(subscribers);
        let mut next_id = 0u64;
        loop {
            let stream = tokio::select! {
                _ = stop.cancelled() => break,
                a = self.listener.accept() => match a {
                    Ok((s, _)) => s,
                    Err(e) => { warn!(error = %e, "Accept failed."); continue; }
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
            next_id += 1;
            let evict = CancellationToken::new();
            {
                let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                while p.len() >= self.cfg.max_pending.max(1) {
                    if let Some((_, oldest)) = p.pop_front() {
                        debug!("Too many connections without a subscription; closing the oldest.");
                        oldest.cancel();
                    }
                }
                p.push_back((next_id, evict.clone()));
            }
            let client = Client {
                id: next_id,
                bus: bus.clone(),
                board: board.clone(),
                consent: consent.clone(),
                subscribers: subscribers.clone(),
                closing: closing.clone(),
                max_line: self.cfg.max_line,
                idle_timeout: self.cfg.idle_timeout,
                slots: slots.clone(),
                max_subscribers: self.cfg.max_clients,
                pending: pending.clone(),
                evict,
                egress: egress.register(),
            };
            tasks.spawn(async move {
                if let Err(e) = client.serve(stream).await {
                    debug!(error = %e, "Client connection ended with an error.");
                }
            });
        }
    }
}

struct Client {
    id: u64,
    bus: WeakBus,
    board: StateBoard,
    consent: watch::Receiver<Arc<ConsentSnapshot>>,
    subscribers: Arc<watch::Sender<usize>>,
    closing: CancellationToken,
    max_line: usize,
    idle_timeout: Duration,
    slots: Arc<Semaphore>,
    max_subscribers: usize,
    pending: Pending,
    /// Cancelled when this connection, not yet subscribed, is closed to admit a newer one.
    evict: CancellationToken,
    egress: Registration,
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

async fn send(w: &mut tokio::net::unix::OwnedWriteHalf, line: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    w.write_all(&buf).await
}

/// A last error line to a connection being closed, without waiting long for a client that
/// does not read.
async fn farewell(w: &mut tokio::net::unix::OwnedWriteHalf, code: &str, message: &str) {
    let _ = tokio::time::timeout(FAREWELL, send(w, &messages::error(code, message))).await;
}

/// What ended a data write.
enum Wrote {
    /// Written, or dropped at egress.
    Done,
    /// The connection was cancelled by the revocation handshake; close it.
    Cancelled,
}

impl Client {
    async fn serve(self, stream: UnixStream) -> io::Result<()> {
        let (r, mut w) = stream.into_split();
        // Bytes, not `String`s: a line that is not UTF-8 is answered and the connection stays
        // open (a `LinesCodec` error would end the stream). Too long a line ends it.
        let mut lines = FramedRead::new(
            r,
            AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), Vec::new(), self.max_line),
        );
        let mut sub: Option<Subscription> = None;
        let mut reading = true;
        let idle = tokio::time::sleep(self.idle_timeout);
        tokio::pin!(idle);
        let cancel = self.egress.egress.cancel.clone();
        let mut probe = tokio::time::interval(HANGUP_PROBE);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let result = async {
            send(&mut w, &messages::welcome()).await?;
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    line = lines.next(), if reading => match line {
                        // End of input. Subscribed: the client half-closed; keep sending until
                        // the bus closes or a write fails. Not subscribed: nothing to send.
                        None if sub.is_some() => reading = false,
                        None => return Ok(()),
                        Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
                            let msg = format!("line longer than {} bytes; closing", self.max_line);
                            farewell(&mut w, "line_too_long", &msg).await;
                            return Ok(());
                        }
                        Some(Err(AnyDelimiterCodecError::Io(e))) => return Err(e),
                        Some(Ok(bytes)) => {
                            idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
                            let bytes = bytes.strip_suffix(b"\r").unwrap_or(&bytes);
                            match std::str::from_utf8(bytes) {
                                Ok(line) => self.handle(line, &mut w, &mut sub).await?,
                                Err(_) => {
                                    let msg = "line is not valid UTF-8; the connection stays open";
                                    send(&mut w, &messages::error("bad_request", msg)).await?;
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
                            send(&mut w, &messages::lagged(n)).await?;
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                    _ = probe.tick(), if !reading => {
                        // Readiness is only read here, never cleared (clearing it could stall
                        // the next write); a peer that closed completely shows as write-closed.
                        let ready = w.as_ref().ready(Interest::WRITABLE).now_or_never();
                        if ready.is_some_and(|r| r.is_ok_and(|r| r.is_write_closed())) {
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
            self.leave_pending();
        }
        let _ = w.shutdown().await;
        result
    }

    fn leave_pending(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.id);
    }

    /// Writes one bus message if the subscription wants it and the consent in force allows it,
    /// holding the egress gate from the check until the write is done (`egress` module doc).
    async fn write_data(
        &self,
        w: &mut tokio::net::unix::OwnedWriteHalf,
        m: &BusMessage,
        sub: Option<&Subscription>,
    ) -> io::Result<Wrote> {
        if !sub.is_some_and(|s| s.wants(m)) {
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
            return Ok(Wrote::Done);
        }
        tokio::select! {
            biased;
            _ = egress.cancel.cancelled() => Ok(Wrote::Cancelled),
            r = send(w, &m.line) => r.map(|()| Wrote::Done),
        }
    }

    async fn handle(
        &self,
        line: &str,
        w: &mut tokio::net::unix::OwnedWriteHalf,
        sub: &mut Option<Subscription>,
    ) -> io::Result<()> {
        if line.trim().is_empty() {
            return Ok(());
        }
        match messages::parse_client_line(line) {
            Err((code, msg)) => send(w, &messages::error(code, &msg)).await,
            Ok(ClientMessage::Hello { protocol, client }) => {
                if protocol != PROTOCOL_VERSION {
                    let msg =
                        format!("this daemon speaks protocol {PROTOCOL_VERSION}, not {protocol}");
                    send(w, &messages::error("unsupported_protocol", &msg)).await?;
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
                            return send(w, &messages::error("bad_request", &e.to_string())).await;
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
                            send(
                                w,
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
                            return send(w, &messages::error("too_many_subscribers", &msg)).await;
                        };
                        self.leave_pending();
                        let rx = bus.subscribe();
                        self.subscribers.send_modify(|n| *n += 1);
                        (rx, slot)
                    }
                };
                // Current stream states first (they may repeat a change that is also queued).
                let snapshot: Vec<String> = if topics.contains(&Topic::State) {
                    let board = self.board.lock().unwrap_or_else(|e| e.into_inner());
                    board
                        .iter()
                        .filter(|((p, _), _)| participant.as_ref().is_none_or(|want| want == p))
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
                    send(w, &line).await?;
                }
                Ok(())
            }
            Ok(ClientMessage::ConsentQuery { participant }) => match ParticipantId::new(&participant) {
                Ok(p) => {
                    let line = messages::consent(&p, &self.consent.borrow());
                    send(w, &line).await
                }
                Err(e) => send(w, &messages::error("bad_request", &e.to_string())).await,
            },
            Ok(ClientMessage::ConsentChange { .. }) => {
                send(
                    w,
                    &messages::error(
                        "not_permitted",
                        "changing consent over this socket is off: no client is configured for it; use `attune consent`",
                    ),
                )
                .await
            }
            Ok(ClientMessage::Exercise { .. } | ClientMessage::Feedback { .. }) => {
                send(
                    w,
                    &messages::error(
                        "not_implemented",
                        "exercise and feedback messages are not acted on yet",
                    ),
                )
                .await
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Purpose;
    use crate::model::StreamKind;
    use crate::publish::Need;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    use tokio::time::{Duration, timeout};

    struct Running {
        _dir: tempfile::TempDir,
        path: PathBuf,
        rejected: Arc<AtomicU64>,
        bus: crate::publish::Bus,
        consent: watch::Sender<Arc<ConsentSnapshot>>,
        subs: watch::Receiver<usize>,
        egress: Egresses,
        stop: CancellationToken,
    }

    const WAIT: Duration = Duration::from_secs(5);

    fn pid() -> ParticipantId {
        ParticipantId::new("p01").unwrap()
    }

    fn granted(purposes: &[Purpose]) -> ConsentSnapshot {
        ConsentSnapshot::from_triples(1, purposes.iter().map(|pu| (pid(), StreamKind::Eda, *pu)))
    }

    fn start(edit: impl FnOnce(&mut ServerConfig)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("s.sock");
        let mut cfg = ServerConfig::new(path.clone());
        edit(&mut cfg);
        let server = Server::bind(cfg).unwrap();
        let rejected = server.rejected_uid.clone();
        let bus = crate::publish::bus(64);
        let stop = CancellationToken::new();
        let (subs_tx, subs) = watch::channel(0);
        let egress = Egresses::default();
        let (consent, consent_rx) =
            watch::channel(Arc::new(granted(&[Purpose::Process, Purpose::Adapt])));
        tokio::spawn(server.run(
            Feeds {
                bus: bus.downgrade(),
                board: StateBoard::default(),
                consent: consent_rx,
                subscribers: subs_tx,
                egress: egress.clone(),
            },
            stop.clone(),
            CancellationToken::new(),
            TaskTracker::new(),
        ));
        Running {
            _dir: dir,
            path,
            rejected,
            bus,
            consent,
            subs,
            egress,
            stop,
        }
    }

    impl Running {
        /// Publishes an adaptation line that relies on no stream data (a warm-up line).
        fn publish(&self, n: u32) {
            let _ = self.bus.send(Arc::new(BusMessage {
                participant: pid(),
                topic: Topic::Adaptation,
                line: format!(r#"{{"type":"adaptation","n":{n}}}"#),
                needs: vec![Need::Any(Purpose::Process), Need::Any(Purpose::Adapt)],
            }));
        }

        /// Waits until `n` connections have subscribed.
        async fn subscribed(&mut self, n: usize) {
            timeout(WAIT, self.subs.wait_for(|k| *k >= n))
                .await
                .unwrap()
                .unwrap();
        }
    }

    struct Conn {
        r: BufReader<tokio::net::unix::OwnedReadHalf>,
        w: tokio::net::unix::OwnedWriteHalf,
    }

    impl Conn {
        async fn open(path: &Path) -> Conn {
            let (r, w) = UnixStream::connect(path).await.unwrap().into_split();
            Conn {
                r: BufReader::new(r),
                w,
            }
        }

        async fn write(&mut self, bytes: &[u8]) {
            self.w.write_all(bytes).await.unwrap();
        }

        /// The next line, or None at EOF or after `wait`.
        async fn line_within(&mut self, wait: Duration) -> Option<serde_json::Value> {
            let mut line = String::new();
            match timeout(wait, self.r.read_line(&mut line)).await {
                Ok(Ok(n)) if n > 0 => Some(serde_json::from_str(&line).unwrap()),
                _ => None,
            }
        }

        async fn line(&mut self) -> serde_json::Value {
            self.line_within(WAIT).await.expect("no line")
        }

        /// Reads until EOF (panics after `WAIT`); returns the lines.
        async fn until_eof(&mut self) -> Vec<serde_json::Value> {
            let mut text = String::new();
            timeout(WAIT, self.r.read_to_string(&mut text))
                .await
                .expect("not closed")
                .unwrap();
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }

        async fn subscribe(path: &Path) -> Conn {
            let mut c = Conn::open(path).await;
            c.write(b"{\"type\":\"subscribe\",\"topics\":[\"adaptation\"]}\n")
                .await;
            assert_eq!(c.line().await["type"], "welcome");
            c
        }
    }

    #[tokio::test]
    async fn a_peer_with_another_uid_is_closed_without_a_byte() {
        let r = start(|c| c.allowed_uids = vec![u32::MAX - 7]);
        let mut s = UnixStream::connect(&r.path).await.unwrap();
        let mut buf = Vec::new();
        let n = timeout(WAIT, s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "bytes sent to a refused peer");
        assert_eq!(r.rejected.load(Ordering::Relaxed), 1);
        r.stop.cancel();
    }

    #[tokio::test]
    async fn a_subscriber_over_the_limit_is_refused_until_a_place_frees() {
        let mut r = start(|c| c.max_clients = 2);
        let a = Conn::subscribe(&r.path).await;
        let _b = Conn::subscribe(&r.path).await;
        r.subscribed(2).await;
        let mut c = Conn::subscribe(&r.path).await;
        let e = c.line().await;
        assert_eq!(e["code"], "too_many_subscribers", "{e}");
        drop(a);
        timeout(WAIT, r.subs.wait_for(|k| *k == 1))
            .await
            .unwrap()
            .unwrap();
        c.write(b"{\"type\":\"subscribe\",\"topics\":[\"adaptation\"]}\n")
            .await;
        r.subscribed(2).await;
        r.publish(1);
        assert_eq!(c.line().await["n"], 1);
        r.stop.cancel();
    }

    /// Issue 10: a client that half-closes after subscribing is still a subscriber.
    #[tokio::test]
    async fn a_client_that_half_closes_after_subscribing_keeps_getting_lines() {
        let mut r = start(|_| {});
        let mut c = Conn::subscribe(&r.path).await;
        r.subscribed(1).await;
        c.w.shutdown().await.unwrap();
        // Give the server time to see the end of input before anything is published.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for n in 0..3 {
            r.publish(n);
        }
        for n in 0..3 {
            assert_eq!(c.line().await["n"], n);
        }
        // Closing completely frees its place even though nothing more is published.
        drop(c);
        timeout(WAIT, r.subs.wait_for(|k| *k == 0))
            .await
            .unwrap()
            .unwrap();
        r.stop.cancel();
    }

    /// Issue 10: invalid UTF-8 is a bad request like any other; the connection stays open.
    #[tokio::test]
    async fn invalid_utf8_gets_bad_request_and_the_connection_stays_open() {
        let r = start(|_| {});
        let mut c = Conn::open(&r.path).await;
        assert_eq!(c.line().await["type"], "welcome");
        c.write(b"{\"type\":\"hello\xff\xfe\"}\n").await;
        let e = c.line().await;
        assert_eq!(e["code"], "bad_request", "{e}");
        c.write(b"{\"type\":\"consent_query\",\"participant\":\"p01\"}\n")
            .await;
        let a = c.line().await;
        assert_eq!(a["type"], "consent", "{a}");
        r.stop.cancel();
    }

    #[tokio::test]
    async fn an_overlong_line_closes_that_connection_with_line_too_long() {
        let r = start(|c| c.max_line = 1024);
        let mut c = Conn::open(&r.path).await;
        c.write(&[b'x'; 4096]).await;
        let lines = c.until_eof().await;
        assert_eq!(lines.last().unwrap()["code"], "line_too_long");
        r.stop.cancel();
    }

    /// Issue 10: a connection that never subscribes is closed after the idle timeout.
    #[tokio::test]
    async fn an_idle_connection_is_closed_with_idle_timeout() {
        let r = start(|c| c.idle_timeout = Duration::from_millis(300));
        let mut idle = Conn::open(&r.path).await;
        // A line resets the timer; a subscriber is never timed out.
        let mut sub = Conn::subscribe(&r.path).await;
        idle.write(b"{\"type\":\"hello\",\"protocol\":1}\n").await;
        let lines = idle.until_eof().await;
        let types: Vec<_> = lines.iter().map(|l| l["type"].clone()).collect();
        assert_eq!(types, ["welcome", "error"], "{lines:?}");
        assert_eq!(lines[1]["code"], "idle_timeout");
        tokio::time::sleep(Duration::from_millis(400)).await;
        r.publish(7);
        assert_eq!(sub.line().await["n"], 7);
        r.stop.cancel();
    }

    /// Issue 10: 80 connections that never subscribe do not keep a new client from subscribing.
    #[tokio::test]
    async fn connections_that_never_subscribe_cannot_lock_out_a_subscriber() {
        let mut r = start(|_| {});
        let mut idle = Vec::new();
        for _ in 0..80 {
            let mut c = Conn::open(&r.path).await;
            assert_eq!(c.line().await["type"], "welcome");
            idle.push(c);
        }
        let mut sub = Conn::subscribe(&r.path).await;
        r.subscribed(1).await;
        r.publish(1);
        assert_eq!(sub.line().await["n"], 1);
        // The oldest idle connections were closed to make room, with a reason.
        let first = idle[0].until_eof().await;
        assert_eq!(first.last().unwrap()["code"], "too_many_clients");
        r.stop.cancel();
    }

    /// Issue 4: an adaptation line needs `adapt` whatever it carries; a warm-up line relying on
    /// no stream data stops once `adapt` is withdrawn.
    #[tokio::test]
    async fn a_withdrawn_adapt_stops_adaptation_lines_that_carry_no_data() {
        let mut r = start(|_| {});
        let mut c = Conn::subscribe(&r.path).await;
        r.subscribed(1).await;
        r.publish(1);
        assert_eq!(c.line().await["n"], 1);
        r.consent
            .send_replace(Arc::new(granted(&[Purpose::Process])));
        r.publish(2);
        assert_eq!(c.line_within(Duration::from_millis(300)).await, None);
        r.stop.cancel();
    }

    /// Issue 4: a revocation is acknowledged only when no write checked against the old
    /// consent is in flight; a subscriber stalled in such a write is closed first.
    #[tokio::test]
    async fn a_revocation_waits_for_a_stalled_subscriber_and_closes_it() {
        let mut r = start(|_| {});
        let mut stalled = Conn::subscribe(&r.path).await;
        let mut live = Conn::subscribe(&r.path).await;
        r.subscribed(2).await;
        // 64 lines of 32 KiB: far more than a socket buffer; `stalled` never reads.
        let pad = "x".repeat(32 * 1024);
        for n in 0..64 {
            let _ = r.bus.send(Arc::new(BusMessage {
                participant: pid(),
                topic: Topic::Adaptation,
                line: format!(r#"{{"type":"adaptation","n":{n},"pad":"{pad}"}}"#),
                needs: vec![Need::Any(Purpose::Adapt)],
            }));
        }
        let mut got = 0;
        while got < 64 {
            if live.line().await["type"] == "adaptation" {
                got += 1;
            }
        }
        r.consent
            .send_replace(Arc::new(granted(&[Purpose::Process])));
        let t0 = tokio::time::Instant::now();
        let q = r.egress.quiesce(Duration::from_millis(300)).await;
        assert_eq!((q.confirmed, q.closed, q.stuck), (1, 1, 0), "{q:?}");
        assert!(t0.elapsed() >= Duration::from_millis(300));
        // The stalled connection is closed: it reads what was written before, then EOF.
        let mut text = Vec::new();
        timeout(WAIT, stalled.r.read_to_end(&mut text))
            .await
            .expect("the stalled subscriber was not closed")
            .unwrap();
        let whole = text
            .split(|b| *b == b'\n')
            .filter(|l| l.ends_with(b"}"))
            .count();
        assert!(whole < 64, "{whole} lines reached a stalled subscriber");
        // The live one stays, under the new consent.
        r.publish(99);
        assert_eq!(live.line_within(Duration::from_millis(300)).await, None);
        r.stop.cancel();
    }

    #[test]
    fn a_non_socket_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        ensure_private_dir(&dir.path().join("run")).unwrap();
        let path = dir.path().join("run").join("s.sock");
        std::fs::write(&path, b"precious").unwrap();
        let e = Server::bind(ServerConfig::new(path.clone())).err().unwrap();
        assert!(matches!(e, ServerError::NotASocket(_)), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    /// Issue 1: the daemon does not follow a symlinked socket directory, even to a private one.
    #[test]
    fn a_symlinked_socket_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        ensure_private_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = Server::bind(ServerConfig::new(link.join("s.sock")))
            .err()
            .unwrap();
        assert!(matches!(e, ServerError::SymlinkDir { .. }), "{e}");
        assert!(std::fs::read_dir(&real).unwrap().next().is_none());
    }
}
