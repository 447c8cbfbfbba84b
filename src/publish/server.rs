//! Unix socket server for protocol v1 (edge). Safe by construction (RELIABILITY.md, "Unix socket
//! recipe"):
//!
//! 1. The socket's directory must be private: created 0700 if missing; if it exists it must be
//!    owned by our uid with no group/other bits, or the daemon refuses to start.
//! 2. The process umask is 0o077 (set in `main` before the runtime starts); after `bind` the
//!    socket is set to 0600 again.
//! 3. A live socket is never unlinked: if connecting to the path succeeds, another daemon owns it
//!    and we refuse. A stale socket file of ours is removed; any other file is left alone.
//! 4. At most `max_clients` connections (a semaphore permit is taken before `accept`); the peer's
//!    uid (SO_PEERCRED) must be in `allowed_uids` (default: our own) before any byte is exchanged.
//! 5. Inbound lines are limited to `max_line` bytes; a longer line gets `line_too_long` and that
//!    connection only is closed.
//! 6. Each subscriber reads the bus at its own pace; lagging costs it messages (`lagged`), never
//!    the pipeline.

use super::messages::{self, ALL_TOPICS, ClientMessage, PROTOCOL_VERSION, Topic};
use super::{BusMessage, StateBoard, WeakBus};
use crate::consent::ConsentSnapshot;
use crate::model::ParticipantId;
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, broadcast, watch};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Socket path.
    pub path: PathBuf,
    /// Maximum concurrent clients.
    pub max_clients: usize,
    /// Maximum inbound line length, bytes.
    pub max_line: usize,
    /// Peer uids allowed to connect.
    pub allowed_uids: Vec<u32>,
}

impl ServerConfig {
    /// Defaults for `path`: 64 clients, 64 KiB lines, only our own uid.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            max_clients: 64,
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

/// Creates `dir` with mode 0700 if it is missing, else checks that it is private and ours.
pub fn ensure_private_dir(dir: &Path) -> Result<(), ServerError> {
    let uid = nix::unistd::geteuid().as_raw();
    match std::fs::metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
        }
        Err(e) => return Err(io_err(dir)(e)),
    }
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != uid || mode & 0o077 != 0 {
        return Err(ServerError::InsecureDir {
            dir: dir.to_owned(),
            mode,
            owner: meta.uid(),
            uid,
        });
    }
    Ok(())
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
        } = feeds;
        let limit = Arc::new(Semaphore::new(self.cfg.max_clients));
        let subscribers = Arc::new(subscribers);
        loop {
            let permit = tokio::select! {
                _ = stop.cancelled() => break,
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            };
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
            let client = Client {
                bus: bus.clone(),
                board: board.clone(),
                consent: consent.clone(),
                subscribers: subscribers.clone(),
                closing: closing.clone(),
                max_line: self.cfg.max_line,
            };
            tasks.spawn(async move {
                let _permit = permit;
                if let Err(e) = client.serve(stream).await {
                    debug!(error = %e, "Client connection ended with an error.");
                }
            });
        }
    }
}

struct Client {
    bus: WeakBus,
    board: StateBoard,
    consent: watch::Receiver<Arc<ConsentSnapshot>>,
    subscribers: Arc<watch::Sender<usize>>,
    closing: CancellationToken,
    max_line: usize,
}

struct Subscription {
    rx: broadcast::Receiver<Arc<BusMessage>>,
    participant: Option<ParticipantId>,
    topics: BTreeSet<Topic>,
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

impl Client {
    async fn serve(self, stream: UnixStream) -> io::Result<()> {
        let (r, mut w) = stream.into_split();
        let mut lines = FramedRead::new(r, LinesCodec::new_with_max_length(self.max_line));
        send(&mut w, &messages::welcome()).await?;
        let mut sub: Option<Subscription> = None;
        let result = loop {
            tokio::select! {
                biased;
                line = lines.next() => match line {
                    None => break Ok(()),
                    Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                        let msg = format!("line longer than {} bytes; closing", self.max_line);
                        let _ = send(&mut w, &messages::error("line_too_long", &msg)).await;
                        break Ok(());
                    }
                    Some(Err(LinesCodecError::Io(e))) if e.kind() == io::ErrorKind::InvalidData => {
                        let _ = send(&mut w, &messages::error("bad_request", "line is not UTF-8; closing")).await;
                        break Ok(());
                    }
                    Some(Err(LinesCodecError::Io(e))) => break Err(e),
                    Some(Ok(line)) => {
                        if let Err(e) = self.handle(&line, &mut w, &mut sub).await {
                            break Err(e);
                        }
                        if sub.is_none() && line.is_empty() { continue; }
                    }
                },
                m = recv(&mut sub) => match m {
                    Ok(m) => {
                        // Egress re-check: a line queued before a revocation is dropped here.
                        let allowed = {
                            let snap = self.consent.borrow();
                            m.needs.iter().all(|(k, p)| snap.allows(&m.participant, *k, *p))
                        };
                        if allowed && sub.as_ref().is_some_and(|s| s.wants(&m)) {
                            send(&mut w, &m.line).await?;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        send(&mut w, &messages::lagged(n)).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => break Ok(()),
                },
                _ = self.closing.cancelled(), if sub.is_none() => break Ok(()),
            }
        };
        if sub.is_some() {
            self.subscribers.send_modify(|n| *n = n.saturating_sub(1));
        }
        let _ = w.shutdown().await;
        result
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
                let rx = match sub.take() {
                    Some(old) => old.rx,
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
                        let rx = bus.subscribe();
                        self.subscribers.send_modify(|n| *n += 1);
                        rx
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
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    use tokio::time::{Duration, timeout};

    struct Running {
        _dir: tempfile::TempDir,
        path: PathBuf,
        rejected: Arc<AtomicU64>,
        _bus: crate::publish::Bus,
        stop: CancellationToken,
    }

    fn start(edit: impl FnOnce(&mut ServerConfig)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("s.sock");
        let mut cfg = ServerConfig::new(path.clone());
        edit(&mut cfg);
        let server = Server::bind(cfg).unwrap();
        let rejected = server.rejected_uid.clone();
        let bus = crate::publish::bus(8);
        let stop = CancellationToken::new();
        let (subs, _) = watch::channel(0);
        let (_consent_tx, consent_rx) = watch::channel(Arc::new(ConsentSnapshot::deny_all()));
        tokio::spawn(server.run(
            Feeds {
                bus: bus.downgrade(),
                board: StateBoard::default(),
                consent: consent_rx,
                subscribers: subs,
            },
            stop.clone(),
            CancellationToken::new(),
            TaskTracker::new(),
        ));
        Running {
            _dir: dir,
            path,
            rejected,
            _bus: bus,
            stop,
        }
    }

    async fn first_line(s: &mut UnixStream, wait: Duration) -> Option<String> {
        let mut r = BufReader::new(s);
        let mut line = String::new();
        match timeout(wait, r.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => Some(line),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_peer_with_another_uid_is_closed_without_a_byte() {
        let r = start(|c| c.allowed_uids = vec![u32::MAX - 7]);
        let mut s = UnixStream::connect(&r.path).await.unwrap();
        let mut buf = Vec::new();
        let n = timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "bytes sent to a refused peer");
        assert_eq!(r.rejected.load(Ordering::Relaxed), 1);
        r.stop.cancel();
    }

    #[tokio::test]
    async fn a_client_over_the_limit_waits_for_a_free_place() {
        let r = start(|c| c.max_clients = 2);
        let mut a = UnixStream::connect(&r.path).await.unwrap();
        let mut b = UnixStream::connect(&r.path).await.unwrap();
        let wait = Duration::from_secs(5);
        assert!(first_line(&mut a, wait).await.unwrap().contains("welcome"));
        assert!(first_line(&mut b, wait).await.unwrap().contains("welcome"));
        let mut c = UnixStream::connect(&r.path).await.unwrap();
        assert_eq!(first_line(&mut c, Duration::from_millis(300)).await, None);
        drop(a);
        assert!(first_line(&mut c, wait).await.unwrap().contains("welcome"));
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
}
