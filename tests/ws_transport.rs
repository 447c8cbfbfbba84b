//! The WebSocket transport end to end, with tungstenite's plain client against a live daemon
//! with `--ws`: protocol v1 unchanged (welcome, hello, subscribe, the socket's lines), client
//! requests and bad lines, a revocation, and the handshake's security checks (token, Origin,
//! Host), each counted in `attune status`; a port in use stops the start with one line.
#![cfg(feature = "ws")]

use crate::util::{LiveDaemon, free_port, json, revoke, run_attune_in};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket, stream::MaybeTlsStream};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// A live daemon with `--ws` on a free port, and its token.
fn daemon(extra: &[&str]) -> (LiveDaemon, String, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--simulate", "p01", "--speed", "10", "--ws", addr.as_str()];
    args.extend(extra);
    let d = LiveDaemon::start(&args);
    d.wait_for_publisher("websocket");
    let (code, out, err) = d.cli(&["token", "--json", "--show", "--ws", &addr]);
    assert_eq!(code, Some(0), "{err}");
    let v = json(out.trim());
    let tok = v["token"].as_str().unwrap().to_owned();
    let file = std::path::PathBuf::from(v["token_file"].as_str().unwrap());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    (d, addr, tok)
}

/// Connects with `headers` added; the handshake's HTTP status when refused.
fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Ws, (u16, String)> {
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            tungstenite::http::HeaderValue::from_str(v).unwrap(),
        );
    }
    match tungstenite::connect(req) {
        Ok((ws, _)) => {
            if let MaybeTlsStream::Plain(s) = ws.get_ref() {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            }
            Ok(ws)
        }
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("connect {url}: {e}"),
    }
}

/// The next text message as JSON.
fn next(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return json(t.as_str()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("not a text message: {other:?}"),
        }
    }
}

fn send(ws: &mut Ws, line: &str) {
    ws.send(Message::text(line)).unwrap();
}

fn ws_status(d: &LiveDaemon) -> serde_json::Value {
    d.publisher("websocket")
}

#[test]
fn ws_speaks_protocol_v1_like_the_socket_and_stops_at_a_revocation() {
    let (d, addr, tok) = daemon(&[]);
    let mut ws = connect(&format!("ws://{addr}/?token={tok}"), &[]).unwrap();
    let welcome = next(&mut ws);
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["protocol"], 1);
    send(
        &mut ws,
        r#"{"type":"hello","protocol":1,"client":"ws-test"}"#,
    );
    send(&mut ws, "this is not json");
    assert_eq!(
        next(&mut ws)["code"],
        "bad_request",
        "a bad line is answered, not fatal"
    );
    send(
        &mut ws,
        r#"{"type":"subscribe","participant":"p01","topics":["adaptation","state"]}"#,
    );
    let mut got = Vec::new();
    while got
        .iter()
        .filter(|m: &&serde_json::Value| m["type"] == "adaptation")
        .count()
        < 6
    {
        got.push(next(&mut ws));
    }
    assert!(
        got.iter().any(|m| m["type"] == "state"),
        "the state snapshot or changes"
    );
    assert!(got.iter().all(|m| m["participant"] == "p01"));
    let ts: Vec<f64> = got
        .iter()
        .filter(|m| m["type"] == "adaptation")
        .map(|m| m["t"].as_f64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
    // The same lines as the socket: the socket's next decision arrives on the WebSocket too.
    let mut sock = d.subscribe_for("p01", &["adaptation"]);
    let line = loop {
        let l = sock.line().unwrap();
        if json(&l)["type"] == "adaptation" {
            break json(&l);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = next(&mut ws);
        if m == line {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the socket's line never came: {line}"
        );
    }
    // A client request works as on the socket.
    send(
        &mut ws,
        r#"{"type":"exercise","participant":"p99","event":"start","exercise":"x"}"#,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = next(&mut ws);
        if m["type"] == "error" {
            assert_eq!(m["code"], "unknown_participant", "{m}");
            break;
        }
        assert!(Instant::now() < deadline);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while ws_status(&d)["subscribers"].as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "{}", ws_status(&d));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ws_status(&d)["connections"].as_u64() >= Some(1));

    // Revoke adapt: after the acknowledgement and what was already in flight, no adaptation.
    let (code, _, err) = d.cli(&revoke("p01", "all", "adapt"));
    assert_eq!(code, Some(0), "{err}");
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
    }
    // What the kernel already holds was written before the acknowledgement.
    while ws.read().is_ok() {}
    let end = Instant::now() + Duration::from_secs(2);
    let mut after = Vec::new();
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Text(t)) => after.push(json(t.as_str())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(
        after.iter().all(|m| m["type"] != "adaptation"),
        "an adaptation after the acknowledged revocation: {after:?}"
    );
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn ws_refuses_a_wrong_token_a_foreign_origin_and_a_rebound_host() {
    let (d, addr, tok) = daemon(&[]);
    let port = addr.rsplit_once(':').unwrap().1.to_owned();
    let url = format!("ws://{addr}/?token={tok}");
    // No token, a wrong one, one a byte longer: 401.
    for bad in [
        format!("ws://{addr}/"),
        format!("ws://{addr}/?token=0000"),
        format!("{url}0"),
    ] {
        let (status, body) = connect(&bad, &[]).err().unwrap();
        assert_eq!(status, 401, "{bad}: {body}");
        assert!(body.contains("token"), "{body}");
    }
    // The right token by header works.
    let auth = format!("Bearer {tok}");
    assert!(connect(&format!("ws://{addr}/"), &[("Authorization", &auth)]).is_ok());
    // A web page from elsewhere, even with the token: 403.
    for origin in ["https://evil.example", "null", "http://localhost:5173"] {
        let (status, body) = connect(&url, &[("Origin", origin)]).err().unwrap();
        assert_eq!(status, 403, "{origin}: {body}");
        assert!(body.contains("allowed_origins"), "{body}");
    }
    // DNS rebinding: the page's own name in Host.
    let host = format!("rebind.example:{port}");
    let (status, body) = connect(&url, &[("Host", &host)]).err().unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Host"), "{body}");
    // Not a WebSocket handshake: the live page (tests/ws_live_page.rs), no upgrade. Garbage:
    // counted, nothing else happens.
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    let mut resp = String::new();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = raw.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    let mut junk = TcpStream::connect(&addr).unwrap();
    junk.write_all(&[0xff; 64]).unwrap();
    drop(junk);
    let deadline = Instant::now() + Duration::from_secs(5);
    let st = loop {
        let st = ws_status(&d);
        if st["refused"]["handshake"].as_u64() >= Some(1) && st["page"]["requests"] == 1 {
            break st;
        }
        assert!(Instant::now() < deadline, "{st}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(st["refused"]["token"], 3, "{st}");
    assert_eq!(st["refused"]["origin"], 3, "{st}");
    assert_eq!(st["refused"]["host"], 1, "{st}");
    assert_eq!(st["refused"]["handshake"], 1, "{st}");
    // The daemon serves on.
    let mut ws = connect(&url, &[]).unwrap();
    assert_eq!(next(&mut ws)["type"], "welcome");
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let warns = err.lines().filter(|l| l.contains("was refused")).count();
    assert!(
        warns <= 4,
        "logged once a minute per kind, not per connection:\n{err}"
    );
}

#[test]
fn ws_an_allowed_origin_from_the_config_gets_in_and_a_port_in_use_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("attune.toml");
    std::fs::write(
        &cfg,
        format!(
            "[ws]\naddr = \"127.0.0.1:{port}\"\nallowed_origins = [\"http://localhost:5173\"]\n\n[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"simulate\"\n"
        ),
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let d = LiveDaemon::start(&["--config", cfg_s, "--speed", "10"]);
    d.wait_for_publisher("websocket");
    let (code, out, err) = d.cli(&["token", "--json", "--show"]);
    assert_eq!(code, Some(0), "{err}");
    let tok = json(out.trim())["token"].as_str().unwrap().to_owned();
    let url = format!("ws://127.0.0.1:{port}/?token={tok}");
    let mut ws = connect(&url, &[("Origin", "http://localhost:5173")]).unwrap();
    assert_eq!(next(&mut ws)["type"], "welcome");
    assert_eq!(
        connect(&url, &[("Origin", "http://localhost:5174")])
            .err()
            .unwrap()
            .0,
        403
    );

    // A second daemon on the same port: refused at start, in one line.
    let other = tempfile::tempdir().unwrap();
    let sock = other.path().join("run").join("attune.sock");
    let (code, _, err) = run_attune_in(
        &sock,
        &other.path().join("data"),
        &[
            "run",
            "--simulate",
            "p01",
            "--ws",
            &format!("127.0.0.1:{port}"),
        ],
    );
    assert_ne!(code, Some(0));
    let last = err.trim().lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains("websocket")
            && last.contains("cannot listen")
            && last.contains(&port.to_string()),
        "{err}"
    );
    drop(ws);
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// Added latency and CPU of the WebSocket transport (a measurement, not a check; run with
/// `cargo test --release --test integration ws_bench -- --ignored --nocapture`).
///
/// Latency: the arrival of each `adaptation` line on a WebSocket client against the arrival of
/// the same line on a Unix socket client, at real time. CPU: 100 simulated participants at real
/// time with one client subscribed to everything, over the Unix socket and then over the
/// WebSocket.
#[test]
#[ignore = "a measurement: run it on purpose"]
fn ws_bench_latency_and_cpu_at_100_participants() {
    use std::collections::HashMap;
    let addr2 = format!("127.0.0.1:{}", free_port());
    let d = LiveDaemon::start(&[
        "--simulate",
        "p01",
        "--speed",
        "1",
        "--no-record",
        "--ws",
        &addr2,
    ]);
    d.wait_for_publisher("websocket");
    let (_, out, _) = d.cli(&["token", "--json", "--show"]);
    let tok = json(out.trim())["token"].as_str().unwrap().to_owned();
    let mut ws = connect(&format!("ws://{addr2}/?token={tok}"), &[]).unwrap();
    send(
        &mut ws,
        r#"{"type":"subscribe","participant":"p01","topics":["adaptation"]}"#,
    );
    let mut sock = d.subscribe_for("p01", &["adaptation"]);
    let reader = std::thread::spawn(move || {
        let mut at = HashMap::new();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            let Some(l) = sock.line() else { break };
            at.insert(l, Instant::now());
        }
        at
    });
    let mut ws_at = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if let Ok(Message::Text(t)) = ws.read() {
            ws_at.push((t.as_str().to_owned(), Instant::now()));
        }
    }
    let sock_at = reader.join().unwrap();
    let lat: Vec<f64> = ws_at
        .iter()
        .filter_map(|(l, t)| {
            let s = sock_at.get(l)?;
            Some(t.duration_since(*s).as_secs_f64() - s.duration_since(*t).as_secs_f64())
        })
        .collect();
    d.stop();
    crate::util::report_latency("websocket", "lines", lat);
    // CPU with one client reading everything of 100 participants.
    let share = |over_ws: bool| -> f64 {
        let ids: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
        let a = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<&str> = vec!["--speed", "1", "--no-record", "--ws", &a];
        for id in &ids {
            args.extend(["--simulate", id.as_str()]);
        }
        let d = LiveDaemon::start(&args);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let reader = if over_ws {
            d.wait_for_publisher("websocket");
            let (_, out, _) = d.cli(&["token", "--json", "--show"]);
            let tok = json(out.trim())["token"].as_str().unwrap().to_owned();
            let mut ws = connect(&format!("ws://{a}/?token={tok}"), &[]).unwrap();
            send(&mut ws, r#"{"type":"subscribe"}"#);
            std::thread::spawn(move || {
                while !s2.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = ws.read();
                }
            })
        } else {
            let mut sub = d.subscribe_for("*", &["adaptation", "state", "features"]);
            std::thread::spawn(move || {
                while !s2.load(std::sync::atomic::Ordering::Relaxed) && sub.line().is_some() {}
            })
        };
        std::thread::sleep(Duration::from_secs(5));
        let (c0, t0) = (crate::util::cpu_s(d.child.id()), Instant::now());
        std::thread::sleep(Duration::from_secs(30));
        let s = (crate::util::cpu_s(d.child.id()) - c0) / t0.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        d.stop();
        let _ = reader.join();
        s
    };
    let unix = share(false);
    let over_ws = share(true);
    eprintln!(
        "100 participants at real time, one client reading everything: daemon CPU {:.1} % of a core over the Unix socket, {:.1} % over the WebSocket (+{:.1} points)",
        unix * 100.0,
        over_ws * 100.0,
        (over_ws - unix) * 100.0
    );
}

#[test]
fn ws_the_python_client_reads_decisions_over_websocket_and_says_why_when_refused() {
    let (d, addr, tok) = daemon(&[]);
    let client = crate::util::root().join("docs/clients/attune_client.py");
    let run = |url: &str| {
        let out = std::process::Command::new("python3")
            .arg(&client)
            .args([
                "--ws",
                url,
                "--participant",
                "p01",
                "--topics",
                "adaptation",
                "--count",
                "3",
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&format!("ws://{addr}/?token={tok}"));
    assert_eq!(code, Some(0), "{err}");
    let decisions: Vec<&str> = out.lines().filter(|l| l.starts_with("p01 ")).collect();
    assert_eq!(decisions.len(), 3, "{out}");
    assert!(decisions.iter().all(|l| l.contains("rule=")), "{out}");
    let (code, _, err) = run(&format!("ws://{addr}/?token=nope"));
    assert_eq!(code, Some(1));
    assert!(err.contains("refused") && err.contains("401"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    d.stop();
}
