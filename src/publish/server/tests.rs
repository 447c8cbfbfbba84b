//! Server tests over a real socket in a temporary directory: admission (peer uid, both pools,
//! idle timeout), line handling, half-closed subscribers, consent at egress and the revocation
//! handshake, and the bind's refusals.

use super::{Feeds, Server, ServerConfig, ServerError, ensure_private_dir};
use crate::consent::ConsentSnapshot;
use crate::consent::Purpose;
use crate::model::ParticipantId;
use crate::model::StreamKind;
use crate::publish::Need;
use crate::publish::egress::Egresses;
use crate::publish::messages::Topic;
use crate::publish::{BusMessage, StateBoard};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::time::{Duration, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
            markers: None,
            drops: Default::default(),
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
