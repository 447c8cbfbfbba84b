//! The OSC transport end to end: a UDP listener that decodes every packet with rosc, against a
//! live daemon with `--osc`. Addresses and types, the VRChat heart-rate parameters (HR from the
//! features: a simulated participant has no `share_raw` consent, so no beat toggle), the
//! keepalive, `isHRConnected` false at shutdown, and a revocation of `adapt` stopping
//! `/attune/<p>/action` at the acknowledgement.
#![cfg(feature = "osc")]

use crate::util::{LiveDaemon, revoke};
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

    // Revoke adapt: once the command returns (the revocation is acknowledged), everything sent
    // before is already in the socket; after draining it, no action may arrive.
    let (code, _, err) = d.cli(&revoke("p01", "all", "adapt"));
    assert_eq!(code, Some(0), "{err}");
    let mut buf = [0u8; 65_536];
    sock.set_nonblocking(true).unwrap();
    while sock.recv(&mut buf).is_ok() {}
    sock.set_nonblocking(false).unwrap();
    let after = collect(&sock, 3.0);
    assert!(
        after.iter().all(|(_, a, _)| a != "/attune/p01/action"),
        "an action after the acknowledged revocation"
    );
    assert!(
        after
            .iter()
            .any(|(_, a, _)| a == "/attune/p01/features/hr_bpm"),
        "features still flow (share_features was not revoked)"
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
