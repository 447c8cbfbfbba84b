//! The MQTT transport end to end against a real Mosquitto (Debian's `mosquitto`, started here on
//! a free loopback port for each test) and Mosquitto's own `mosquitto_sub` as the subscriber:
//! topics, QoS, payloads identical to the Unix socket's lines and in order, the retained
//! `status` (`online`, `offline` at shutdown, the last will on kill -9), a broker restart
//! recovered with the gap counted and announced, a revocation, and a broker that is down or
//! refuses. They skip (saying why) without Mosquitto, and fail instead when
//! ATTUNE_REQUIRE_TRANSPORTS=1.
#![cfg(feature = "mqtt")]

use crate::util::{LiveDaemon, free_port, json, revoke};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A Mosquitto of this test's own.
pub(crate) struct Broker {
    child: Option<Child>,
    port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

fn mosquitto() -> Option<&'static str> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

impl Broker {
    /// Starts a broker (`anonymous`: whether clients without a login are let in), or skips.
    fn start_or_skip(anonymous: bool) -> Option<Broker> {
        Self::start_with_or_skip(anonymous, "")
    }

    /// Starts a broker whose configuration ends with `extra` (more listeners), or skips.
    pub(crate) fn start_with_or_skip(anonymous: bool, extra: &str) -> Option<Broker> {
        let missing = match (mosquitto(), which("mosquitto_sub")) {
            (None, _) => Some("mosquitto is not installed (Debian package mosquitto)"),
            (_, false) => Some("mosquitto_sub is not installed (Debian package mosquitto-clients)"),
            _ => None,
        };
        if let Some(why) = missing {
            if std::env::var("ATTUNE_REQUIRE_TRANSPORTS").as_deref() == Ok("1") {
                panic!("MQTT broker required (ATTUNE_REQUIRE_TRANSPORTS=1): {why}");
            }
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        let port = free_port();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".to_owned(), |u| u.name);
        let mut f = std::fs::File::create(&conf).unwrap();
        writeln!(
            f,
            "per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous {anonymous}\npersistence false\nuser {user}\nlog_dest stderr\n{extra}"
        )
        .unwrap();
        if !anonymous {
            let pw = dir.path().join("passwd");
            std::fs::write(&pw, "someone:not-attune\n").unwrap();
            writeln!(f, "password_file {}", pw.display()).unwrap();
        }
        let mut b = Broker {
            child: None,
            port,
            conf,
            _dir: dir,
        };
        b.up();
        Some(b)
    }

    /// Starts (or restarts) the broker on its port and waits until it accepts connections.
    fn up(&mut self) {
        let child = Command::new(mosquitto().unwrap())
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker (SIGKILL: a crash, no goodbye to clients).
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn which(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One message as `mosquitto_sub` printed it.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    at: Instant,
    retained: bool,
    qos: u8,
    pub(crate) topic: String,
    pub(crate) payload: String,
}

/// `mosquitto_sub` on `filter`, collecting every message in the background.
pub(crate) struct Sub {
    child: Child,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Sub {
    pub(crate) fn start(b: &Broker, filter: &str) -> Sub {
        let mut child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &b.port.to_string(),
                "-q",
                "1",
                "-t",
                filter,
            ])
            .args(["-F", "%r\t%q\t%t\t%p"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let f: Vec<&str> = line.splitn(4, '\t').collect();
                if let [r, q, t, p] = f[..] {
                    g.lock().unwrap().push(Got {
                        at: Instant::now(),
                        retained: r == "1",
                        qos: q.parse().unwrap_or(9),
                        topic: t.to_owned(),
                        payload: p.to_owned(),
                    });
                }
            }
        });
        // Give it its subscription before anything is published.
        std::thread::sleep(Duration::from_millis(300));
        Sub { child, got }
    }

    pub(crate) fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits up to `secs` for a message that `pred` accepts.
    pub(crate) fn wait_for(&self, secs: u64, what: &str, pred: impl Fn(&Got) -> bool) -> Got {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(g) = self.all().into_iter().find(|g| pred(g)) {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {secs} s; got {} messages, last: {:?}",
                self.all().len(),
                self.all().last()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The retained message on `topic` as a new subscriber gets it (live messages are ignored).
fn retained(b: &Broker, topic: &str) -> Option<(bool, String)> {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &b.port.to_string(), "-t", topic])
        .args(["--retained-only", "-C", "1", "-W", "2", "-F", "%r\t%p"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (r, p) = s.split_once('\t')?;
    Some((r == "1", p.to_owned()))
}

/// The MQTT entry of `attune status` (`None` while the daemon is still starting).
fn mqtt_entry(d: &LiveDaemon) -> (Option<serde_json::Value>, serde_json::Value) {
    let s = d.status();
    (crate::util::publisher(&s, "mqtt"), s)
}

/// The MQTT entry of `attune status`.
pub(crate) fn mqtt_status(d: &LiveDaemon) -> serde_json::Value {
    let (e, s) = mqtt_entry(d);
    e.unwrap_or_else(|| panic!("no mqtt publisher in status: {s}"))
}

/// The MQTT entry of `attune status` once `pred` holds for it (the status is refreshed about
/// once a second), within `secs`.
pub(crate) fn mqtt_status_until(
    d: &LiveDaemon,
    secs: u64,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (e, s) = mqtt_entry(d);
        if let Some(st) = &e
            && pred(st)
        {
            return st.clone();
        }
        assert!(Instant::now() < deadline, "{what} within {secs} s: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Revokes `purpose` of p01's streams, waits a second for the broker to forward what was
/// written under the old consent, then returns what arrives in the next 3 s.
fn after_revoking(d: &LiveDaemon, sub: &Sub, purpose: &str) -> Vec<Got> {
    let (code, _, err) = d.cli(&revoke("p01", "all", purpose));
    assert_eq!(code, Some(0), "{err}");
    std::thread::sleep(Duration::from_secs(1));
    let cut = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    sub.all().into_iter().filter(|g| g.at > cut).collect()
}

fn t_of(payload: &str) -> f64 {
    json(payload)["t"].as_f64().unwrap()
}

#[test]
fn mqtt_carries_the_socket_lines_in_order_with_qos_status_and_a_revocation() {
    let Some(b) = Broker::start_or_skip(true) else {
        return;
    };
    let sub = Sub::start(&b, "attune/#");
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "10", "--mqtt", &b.addr()]);
    let mut sock = d.subscribe_for("p01", &["adaptation"]);
    let base = mqtt_status(&d)["topics"]
        .as_str()
        .unwrap()
        .trim_end_matches("/…")
        .to_owned();
    assert!(base.starts_with("attune/"), "{base}");
    // The socket's first decisions, then the same lines must be on the broker.
    let mut socket_lines = Vec::new();
    while socket_lines.len() < 8 {
        let l = sock.line().unwrap();
        if json(&l)["type"] == "adaptation" {
            socket_lines.push(l);
        }
    }
    let last = socket_lines.last().unwrap().clone();
    sub.wait_for(5, "the socket's 8th decision on MQTT", |g| {
        g.payload == last
    });
    let got = sub.all();
    let on = |level: &str| -> Vec<Got> {
        got.iter()
            .filter(|g| g.topic == format!("{base}/p01/{level}"))
            .cloned()
            .collect()
    };
    let decisions = on("decision");
    let payloads: Vec<&str> = decisions.iter().map(|g| g.payload.as_str()).collect();
    for l in &socket_lines {
        assert!(
            payloads.contains(&l.as_str()),
            "a socket line missing on MQTT: {l}"
        );
    }
    assert!(decisions.iter().all(|g| g.qos == 1 && !g.retained));
    assert!(
        payloads.windows(2).all(|w| t_of(w[0]) < t_of(w[1])),
        "decisions out of order"
    );
    for p in &payloads {
        assert_eq!(json(p)["type"], "adaptation");
    }
    let features = on("features");
    assert!(!features.is_empty());
    assert!(
        features
            .iter()
            .all(|g| g.qos == 0 && json(&g.payload)["type"] == "features")
    );
    let states = on("state");
    assert!(!states.is_empty());
    assert!(
        states
            .iter()
            .all(|g| g.qos == 1 && json(&g.payload)["type"] == "state")
    );
    assert!(
        got.iter()
            .any(|g| g.topic == format!("{base}/status") && g.payload == "online")
    );
    assert_eq!(
        retained(&b, &format!("{base}/status")),
        Some((true, "online".into()))
    );
    // No participant data is retained.
    assert_eq!(retained(&b, &format!("{base}/p01/#")), None);
    mqtt_status_until(&d, 5, "connected, messages sent", |st| {
        st["connected"] == true && st["sent"].as_u64() > Some(10)
    });

    // Revoke share_features: once acknowledged, no features line reaches the broker while the
    // decisions (adapt is still given) go on.
    let after = after_revoking(&d, &sub, "share_features");
    assert!(
        after.iter().all(|g| !g.topic.ends_with("/p01/features")),
        "a features line after share_features was revoked"
    );
    assert!(
        after.iter().any(|g| g.topic.ends_with("/p01/decision")),
        "decisions still flow (adapt was not revoked)"
    );

    // Revoke adapt: once acknowledged, nothing checked against the old consent is still to be
    // written; after a second for the broker to forward what was written, no decision comes.
    let after = after_revoking(&d, &sub, "adapt");
    assert!(
        after.iter().all(|g| !g.topic.ends_with("/p01/decision")),
        "a decision after the acknowledged revocation"
    );

    // A clean stop says offline, and leaves it retained.
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    sub.wait_for(3, "offline at shutdown", |g| {
        g.topic == format!("{base}/status") && g.payload == "offline"
    });
    assert_eq!(
        retained(&b, &format!("{base}/status")),
        Some((true, "offline".into()))
    );
}

#[test]
fn mqtt_a_broker_restart_is_recovered_with_the_gap_counted_and_kill_9_fires_the_will() {
    let Some(mut b) = Broker::start_or_skip(true) else {
        return;
    };
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "10", "--mqtt", &b.addr()]);
    let base = mqtt_status(&d)["topics"]
        .as_str()
        .unwrap()
        .trim_end_matches("/…")
        .to_owned();
    let sub = Sub::start(&b, "attune/#");
    sub.wait_for(5, "a decision", |g| g.topic.ends_with("/p01/decision"));
    b.kill();
    std::thread::sleep(Duration::from_secs(1));
    let st = mqtt_status_until(&d, 5, "disconnected", |st| st["connected"] == false);
    assert!(st["last_error"].is_string(), "{st}");
    b.up();
    let sub = Sub::start(&b, "attune/#");
    let lagged = sub.wait_for(20, "the gap announced on …/lagged", |g| {
        g.topic == format!("{base}/lagged")
    });
    let skipped = json(&lagged.payload)["skipped"].as_u64().unwrap();
    assert!(skipped > 0, "{}", lagged.payload);
    sub.wait_for(5, "decisions again", |g| {
        g.topic.ends_with("/p01/decision") && g.at > lagged.at
    });
    assert_eq!(
        retained(&b, &format!("{base}/status")),
        Some((true, "online".into()))
    );
    let st = mqtt_status_until(&d, 5, "connected again", |st| {
        st["connected"] == true && st["connections"].as_u64() >= Some(2)
    });
    assert!(
        st["dropped"]["failed"].as_u64().unwrap() >= skipped,
        "the gap is counted in status: {st}"
    );

    // kill -9: no goodbye; the broker publishes the will.
    let t0 = Instant::now();
    let _ = d.stop_with(nix::sys::signal::Signal::SIGKILL);
    let will = sub.wait_for(5, "the last will", |g| {
        g.topic == format!("{base}/status") && g.payload == "offline"
    });
    assert!(will.at >= t0);
    assert_eq!(
        retained(&b, &format!("{base}/status")),
        Some((true, "offline".into()))
    );
}

#[test]
fn mqtt_a_broker_that_is_down_or_refuses_is_one_line_and_the_daemon_goes_on() {
    // Refused: the broker wants a login attune does not have.
    let Some(strict) = Broker::start_or_skip(false) else {
        return;
    };
    let d = LiveDaemon::start(&[
        "--simulate",
        "p01",
        "--speed",
        "10",
        "--mqtt",
        &strict.addr(),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let st = mqtt_status_until(&d, 5, "a refusal counted", |st| {
        st["last_error"].is_string() && st["dropped"]["failed"].as_u64() > Some(0)
    });
    assert_eq!(st["connected"], false, "{st}");
    let e = st["last_error"].as_str().unwrap_or_default().to_owned();
    assert!(
        e.to_lowercase().contains("refused") || e.contains("NotAuthorized"),
        "{e}"
    );
    assert!(st["dropped"]["failed"].as_u64().unwrap() > 0, "{st}");
    // The socket still serves.
    let mut sock = d.subscribe_for("p01", &["adaptation"]);
    assert!(sock.line().is_some());
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let warns = err
        .lines()
        .filter(|l| l.contains("no connection to the broker"))
        .count();
    assert_eq!(warns, 1, "one line per outage, not per retry:\n{err}");

    // Down at the start, up later: the daemon connects when it comes.
    let Some(mut late) = Broker::start_or_skip(true) else {
        return;
    };
    late.kill();
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "10", "--mqtt", &late.addr()]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(mqtt_status(&d)["connected"], false);
    late.up();
    mqtt_status_until(&d, 20, "connected once the broker is up", |st| {
        st["connected"] == true
    });
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// Added latency and CPU of the MQTT transport (a measurement, not a check; run with
/// `cargo test --release --test integration mqtt_bench -- --ignored --nocapture`).
///
/// Latency: the arrival at `mosquitto_sub` of each `…/p01/decision` against the arrival of the
/// same line on the Unix socket (the same payload, so ticks are matched exactly), at real time.
/// It includes the broker's forwarding. CPU: 100 simulated participants at real time, with and
/// without `--mqtt` (the broker's own CPU is not counted).
#[test]
#[ignore = "a measurement: run it on purpose"]
fn mqtt_bench_latency_and_cpu_at_100_participants() {
    let Some(b) = Broker::start_or_skip(true) else {
        return;
    };
    let sub = Sub::start(&b, "attune/+/p01/decision");
    let d = LiveDaemon::start(&[
        "--simulate",
        "p01",
        "--speed",
        "1",
        "--no-record",
        "--mqtt",
        &b.addr(),
    ]);
    let mut sock = d.subscribe_for("p01", &["adaptation"]);
    let mut socket_at = std::collections::HashMap::new();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        let Some(l) = sock.line() else { break };
        socket_at.insert(l, Instant::now());
    }
    std::thread::sleep(Duration::from_millis(200));
    d.stop();
    let lat: Vec<f64> = sub
        .all()
        .iter()
        .filter_map(|g| {
            let s = socket_at.get(&g.payload)?;
            Some(g.at.duration_since(*s).as_secs_f64() - s.duration_since(g.at).as_secs_f64())
        })
        .collect();
    crate::util::report_latency("mqtt (through Mosquitto)", "decisions", lat);
    let base = crate::util::cpu_share(100, &[], 30.0);
    let with = crate::util::cpu_share(100, &["--mqtt", &b.addr()], 30.0);
    eprintln!(
        "100 participants at real time: daemon CPU {:.1} % of a core without MQTT, {:.1} % with (+{:.1} points)",
        base * 100.0,
        with * 100.0,
        (with - base) * 100.0
    );
}
