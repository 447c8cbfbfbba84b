//! The OSC transport end to end: a UDP listener that decodes every packet with rosc, against a
//! live daemon with `--osc`. Addresses and types, the VRChat heart-rate parameters (HR from the
//! features: a simulated participant has no `share_raw` consent, so no beat toggle), the
//! keepalive, `isHRConnected` false at shutdown, and a revocation of `adapt` stopping
//! `/attune/<p>/action` at the acknowledgement.
#![cfg(feature = "osc")]

use crate::util::{LiveDaemon, cpu_share, revoke};
use rosc::{OscPacket, OscType};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn listener() -> (UdpSocket, String) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = s.local_addr().unwrap().to_string();
    (s, addr)
}

/// Every message received for `secs` s: (arrival, address, arguments).
fn collect(s: &UdpSocket, secs: f64) -> Vec<(Instant, String, Vec<OscType>)> {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    let mut out = Vec::new();
    let mut buf = [0u8; 65_536];
    while Instant::now() < end {
        if let Ok(n) = s.recv(&mut buf) {
            match rosc::decoder::decode_udp(&buf[..n]) {
                Ok((_, OscPacket::Message(m))) => out.push((Instant::now(), m.addr, m.args)),
                other => panic!("not an OSC message: {other:?}"),
            }
        }
    }
    out
}

#[test]
fn osc_sends_avatar_parameters_and_attune_addresses_and_stops_at_a_revocation() {
    let (sock, addr) = listener();
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "10", "--osc", &addr]);
    let got = collect(&sock, 8.0);
    let of = |a: &str| -> Vec<&Vec<OscType>> {
        got.iter()
            .filter(|(_, x, _)| x == a)
            .map(|(_, _, v)| v)
            .collect()
    };
    let actions = of("/attune/p01/action");
    assert!(!actions.is_empty(), "no action in {} messages", got.len());
    for a in &actions {
        assert!(
            matches!(&a[..], [OscType::String(s)] if ["ease_off", "hold", "escalate"].contains(&s.as_str())),
            "{a:?}"
        );
    }
    assert!(
        of("/attune/p01/confidence")
            .iter()
            .all(|a| matches!(&a[..], [OscType::Float(c)] if (0.0..=1.0).contains(c)))
    );
    assert!(!of("/attune/p01/state/rr").is_empty());
    let hrs: Vec<i32> = of("/avatar/parameters/HR")
        .iter()
        .map(|a| match &a[..] {
            [OscType::Int(h)] => *h,
            other => panic!("HR is an int: {other:?}"),
        })
        .collect();
    assert!(!hrs.is_empty(), "no HR");
    assert!(hrs.iter().all(|h| (40..=160).contains(h)), "{hrs:?}");
    for a in of("/avatar/parameters/floatHR") {
        assert!(
            matches!(&a[..], [OscType::Float(f)] if (-1.0..=1.0).contains(f)),
            "{a:?}"
        );
    }
    assert!(
        of("/avatar/parameters/isHRConnected")
            .iter()
            .all(|a| a[..] == [OscType::Bool(true)])
    );
    // No share_raw: no beats are sent.
    assert!(of("/avatar/parameters/HeartBeatToggle").is_empty());
    assert!(of("/avatar/parameters/RRInterval").is_empty());
    // The features' HR arrives with each feature frame (4 per session second at 10x, so 40 per
    // wall second); the keepalive repeats it every wall second on top.
    assert!(hrs.len() > 40, "{}", hrs.len());

    // Revoke share_features: once the command returns (the revocation is acknowledged),
    // everything sent before is already in the socket; after draining it, no feature and no
    // heart rate (the avatar's HR comes from the features) may arrive, while actions go on.
    let drain = |sock: &std::net::UdpSocket| {
        let mut buf = [0u8; 65_536];
        sock.set_nonblocking(true).unwrap();
        while sock.recv(&mut buf).is_ok() {}
        sock.set_nonblocking(false).unwrap();
    };
    let (code, _, err) = d.cli(&revoke("p01", "all", "share_features"));
    assert_eq!(code, Some(0), "{err}");
    drain(&sock);
    let after = collect(&sock, 3.0);
    assert!(
        after
            .iter()
            .all(|(_, a, _)| !a.starts_with("/attune/p01/features/")
                && a != "/avatar/parameters/HR"
                && a != "/avatar/parameters/floatHR"),
        "a feature or heart rate after share_features was revoked: {:?}",
        after
            .iter()
            .map(|(_, a, _)| a)
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert!(
        after.iter().any(|(_, a, _)| a == "/attune/p01/action"),
        "actions still flow (adapt was not revoked)"
    );

    // Revoke adapt as well: no action may arrive.
    let (code, _, err) = d.cli(&revoke("p01", "all", "adapt"));
    assert_eq!(code, Some(0), "{err}");
    drain(&sock);
    let after = collect(&sock, 3.0);
    assert!(
        after.iter().all(|(_, a, _)| a != "/attune/p01/action"),
        "an action after the acknowledged revocation"
    );

    // At shutdown the avatar is told the heart is gone.
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let last = collect(&sock, 1.0);
    assert!(
        last.iter()
            .any(|(_, a, v)| a == "/avatar/parameters/isHRConnected"
                && v[..] == [OscType::Bool(false)]),
        "no isHRConnected false at shutdown"
    );
}

#[test]
fn osc_an_unreachable_target_is_counted_and_the_daemon_goes_on() {
    // A port nobody listens on: each send fails with ECONNREFUSED (ICMP), counted, not fatal.
    let (sock, addr) = listener();
    drop(sock);
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "10", "--osc", &addr]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = d.status();
        let osc = s["publishers"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "osc").cloned());
        if let Some(o) = osc
            && o["dropped"]["failed"].as_u64().unwrap_or(0) > 0
        {
            assert!(o["sent"].as_u64().is_some());
            break;
        }
        assert!(Instant::now() < deadline, "no failed sends counted: {s}");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// Added latency and CPU of the OSC transport (a measurement, not a check; run with
/// `cargo test --release --test integration osc_bench -- --ignored --nocapture`).
///
/// Latency: the arrival of each `/attune/p01/action` datagram against the arrival of the same
/// tick's `adaptation` line on the Unix socket (both are handed out by the same engine step),
/// at real-time speed. CPU: 100 simulated participants at real time, with and without `--osc`.
#[test]
#[ignore = "a measurement: run it on purpose"]
fn osc_bench_latency_and_cpu_at_100_participants() {
    let (sock, addr) = listener();
    let d = LiveDaemon::start(&[
        "--simulate",
        "p01",
        "--speed",
        "1",
        "--no-record",
        "--osc",
        &addr,
    ]);
    let mut sub = d.subscribe_for("p01", &["adaptation"]);
    let lines = std::thread::spawn(move || {
        let mut at = Vec::new();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if sub.line().is_none() {
                break;
            }
            at.push(Instant::now());
        }
        at
    });
    let got = collect(&sock, 30.0);
    let socket_at = lines.join().unwrap();
    d.stop();
    let lat: Vec<f64> = got
        .iter()
        .filter(|(_, a, _)| a == "/attune/p01/action")
        .filter_map(|(t, _, _)| {
            // The socket line of the same tick: the nearest one (ticks are 250 ms apart).
            socket_at
                .iter()
                .map(|s| t.duration_since(*s).as_secs_f64() - s.duration_since(*t).as_secs_f64())
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                .filter(|d| d.abs() < 0.1)
        })
        .collect();
    crate::util::report_latency("osc (negative: the datagram came first)", "ticks", lat);
    let (_l, addr) = listener();
    let base = cpu_share(100, &[], 30.0);
    let with = cpu_share(100, &["--osc", &addr], 30.0);
    eprintln!(
        "100 participants at real time: daemon CPU {:.1} % of a core without OSC, {:.1} % with (+{:.1} points)",
        base * 100.0,
        with * 100.0,
        (with - base) * 100.0
    );
}
