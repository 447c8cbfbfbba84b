//! End to end: the real binary replays a fixture and a client reads the socket.

use crate::util::{
    Daemon, Subscriber, fixture, json, read_recording, root, run_attune, run_pipeline,
};
use attune::pipeline::{Output, PipelineConfig};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

const SIM: &str = "sim-rest-stress.attune.ndjson";

/// Replays `SIM` at max speed and returns every adaptation line a subscriber received.
fn adaptation_lines() -> Vec<String> {
    let d = Daemon::replay(
        &fixture(SIM),
        &[
            "--speed",
            "max",
            "--wait-subscribers",
            "1",
            "--queue",
            "65536",
        ],
    );
    let mut sub = d.subscribe(&["adaptation"]);
    let lines = sub.all_lines();
    let socket = d.socket.clone();
    let (code, err) = d.wait();
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(!socket.exists(), "socket file left behind");
    assert_eq!(json(&lines[0])["type"], "welcome");
    let rest: Vec<String> = lines[1..].to_vec();
    assert!(
        rest.iter().all(|l| json(l)["type"] == "adaptation"),
        "unexpected line type"
    );
    rest
}

#[test]
fn replayed_fixture_holds_at_rest_and_eases_off_within_60_s_of_stress() {
    let (header, _) = read_recording(&fixture(SIM));
    let onset = header.segment_start("stress").unwrap();
    let lines = adaptation_lines();
    // 10 min at 4 updates per second, from the first record to the last.
    assert!(lines.len() > 2300, "{} decisions", lines.len());
    let mut first_ease_off = None;
    let mut rest_decided = 0;
    for l in &lines {
        let m = json(l);
        let t = m["t"].as_f64().unwrap();
        let action = m["action"].as_str().unwrap();
        let rule = m["reason"]["rule"].as_str().unwrap();
        assert!(["ease_off", "hold", "escalate"].contains(&action));
        if t < onset {
            assert!(
                action == "hold" || action == "escalate",
                "{action} at {t} s during rest"
            );
            if !matches!(rule, "warming_up" | "calibrating") {
                rest_decided += 1;
                assert!(m["arousal"].is_number() && m["reason"]["baseline"].is_object());
            }
        } else if action == "ease_off" && first_ease_off.is_none() {
            first_ease_off = Some(t);
            assert_eq!(m["arousal_state"], "high");
            assert_eq!(rule, "high_arousal");
            let names: Vec<&str> = m["reason"]["features"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["hr_bpm", "rmssd_ms", "scl_us", "scr_per_min"]);
        }
    }
    assert!(
        rest_decided > 100,
        "only {rest_decided} real decisions during rest"
    );
    let t = first_ease_off.expect("no ease_off after the stress onset");
    assert!(
        t - onset <= 60.0,
        "first ease_off {} s after the onset",
        t - onset
    );
}

#[test]
fn two_max_speed_replays_are_byte_identical_and_match_the_golden_file() {
    let a = adaptation_lines();
    let b = adaptation_lines();
    assert_eq!(a, b, "adaptation messages differ between two replays");
    // The golden file keeps the decision fields of every adaptation message.
    let compact: Vec<String> = a
        .iter()
        .map(|l| {
            let m = json(l);
            serde_json::json!({
                "t": m["t"], "action": m["action"], "arousal": m["arousal"],
                "arousal_state": m["arousal_state"], "confidence": m["confidence"],
                "rule": m["reason"]["rule"], "composite_z": m["reason"]["composite_z"],
            })
            .to_string()
        })
        .collect();
    let golden = root().join("fixtures/golden/sim-rest-stress.decisions.ndjson");
    let text = compact.join("\n") + "\n";
    if std::env::var_os("ATTUNE_BLESS").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let want = std::fs::read_to_string(&golden)
        .expect("golden file missing; run with ATTUNE_BLESS=1 once to create it");
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), text.lines().collect());
    assert_eq!(w.len(), g.len(), "decision count changed");
    for (i, (w, g)) in w.iter().zip(&g).enumerate() {
        assert_eq!(w, g, "decision {i} differs from {}", golden.display());
    }
}

#[test]
fn state_messages_and_snapshot_on_subscribe() {
    let d = Daemon::replay(
        &fixture(SIM),
        &["--speed", "max", "--wait-subscribers", "1"],
    );
    let mut sub = d.subscribe(&["state"]);
    let lines = sub.all_lines();
    let states: Vec<(String, String)> = lines
        .iter()
        .map(|l| json(l))
        .filter(|m| m["type"] == "state")
        .map(|m| {
            (
                m["stream"].as_str().unwrap().to_owned(),
                m["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for s in ["rr", "eda"] {
        assert!(
            states.contains(&(s.into(), "streaming".into())),
            "{states:?}"
        );
        assert_eq!(
            states.iter().rfind(|(k, _)| k == s).unwrap().1,
            "ended",
            "{states:?}"
        );
    }
    assert_eq!(d.wait().0, Some(0));
}

#[test]
fn a_late_subscriber_gets_the_current_states_at_once() {
    let d = Daemon::replay(&fixture(SIM), &["--speed", "20", "--wait-subscribers", "1"]);
    let mut first = d.subscribe(&["adaptation"]);
    // Let the replay run a little, then join.
    for _ in 0..30 {
        first.line().unwrap();
    }
    let mut late = d.subscribe(&["state"]);
    assert_eq!(json(&late.line().unwrap())["type"], "welcome");
    let mut got = Vec::new();
    for _ in 0..2 {
        let m = json(&late.line().unwrap());
        assert_eq!(m["type"], "state");
        got.push(m["stream"].as_str().unwrap().to_owned());
    }
    got.sort();
    assert_eq!(got, ["eda", "rr"]);
}

#[test]
fn sigterm_shuts_down_gracefully_and_removes_the_socket() {
    let d = Daemon::replay(&fixture(SIM), &["--speed", "1", "--wait-subscribers", "1"]);
    let mut sub = d.subscribe(&["state"]);
    assert_eq!(json(&sub.line().unwrap())["type"], "welcome");
    // The first state line proves the subscription is in place and the replay is running.
    assert_eq!(json(&sub.line().unwrap())["state"], "streaming");
    let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
    let socket = d.socket.clone();
    let t0 = Instant::now();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let (code, err) = d.wait();
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert!(!socket.exists());
    // The subscriber sees the connection close (states `ended` first, if any were pending).
    let rest = sub.all_lines();
    assert!(rest.iter().all(|l| json(l)["type"] == "state"), "{rest:?}");
    assert!(rest.iter().any(|l| json(l)["state"] == "ended"), "{rest:?}");
}

#[test]
fn a_stalled_and_a_slow_subscriber_never_stall_the_replay() {
    // Queue of 64 messages: the slow reader must lose messages and be told how many.
    let (header, records) = read_recording(&fixture(SIM));
    let published = run_pipeline(&header, &records, PipelineConfig::default())
        .iter()
        .filter(|o| !matches!(o, Output::Warning(_)))
        .count() as u64;
    let d = Daemon::replay(
        &fixture(SIM),
        &["--speed", "max", "--wait-subscribers", "3", "--queue", "64"],
    );
    let all = ["adaptation", "state", "features"];
    let _stalled = Subscriber::connect(&d.socket, &all);
    let mut slow = Subscriber::connect(&d.socket, &all);
    let mut probe = Subscriber::connect(&d.socket, &all);
    // The probe reads as fast as it can; its end of stream means everything was published.
    // Only then does the slow subscriber start reading (within the daemon's 1.5 s drain).
    let _ = probe.all_lines();
    let lines = slow.all_lines();
    let (code, err) = d.wait();
    assert_eq!(code, Some(0), "stderr: {err}");
    let mut delivered = 0u64;
    let mut skipped = 0u64;
    for l in &lines[1..] {
        let m = json(l);
        match m["type"].as_str().unwrap() {
            "lagged" => skipped += m["skipped"].as_u64().unwrap(),
            _ => delivered += 1,
        }
    }
    assert!(skipped > 0, "the slow reader was never told it lagged");
    assert_eq!(
        delivered + skipped,
        published,
        "messages lost without a lagged notice"
    );
}

fn attune(args: &[&str]) -> (Option<i32>, String, String) {
    run_attune(args)
}

#[test]
fn bad_recordings_give_one_clear_line_and_no_socket() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture(SIM)).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    let truncated = {
        let mut s = lines[..5].join("\n");
        s.push('\n');
        s.push_str(&lines[5][..lines[5].len() / 2]);
        s
    };
    let cut_at_line = lines[..100].join("\n") + "\n";
    lines[3] = "{\"type\":\"chunk\",\"stream\":\"eda\"";
    let malformed = lines.join("\n");
    let unknown_kind = good.replacen("\"kind\":\"eda\"", "\"kind\":\"temperature\"", 1);
    let cases = [
        ("missing.attune.ndjson", None, "No such file"),
        (
            "empty.attune.ndjson",
            Some(String::new()),
            "the file is empty",
        ),
        (
            "truncated.attune.ndjson",
            Some(truncated),
            "line 6: the file is truncated",
        ),
        (
            "cut.attune.ndjson",
            Some(cut_at_line),
            "line 101: the file ends without its end record",
        ),
        ("malformed.attune.ndjson", Some(malformed), "line 4: "),
        (
            "kind.attune.ndjson",
            Some(unknown_kind),
            "line 1: stream \"eda\": unknown stream kind \"temperature\"",
        ),
    ];
    for (name, content, want) in cases {
        let path = dir.path().join(name);
        if let Some(c) = content {
            std::fs::write(&path, c).unwrap();
        }
        let sock = dir.path().join("run").join("s.sock");
        let (code, _, err) = attune(&[
            "replay",
            path.to_str().unwrap(),
            "--speed",
            "max",
            "--socket",
            sock.to_str().unwrap(),
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
        ]);
        assert_eq!(code, Some(1), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: not one line: {err}");
        assert!(err.starts_with("attune: "), "{err}");
        assert!(err.contains(name), "{name}: the file is not named: {err}");
        assert!(err.contains(want), "{name}: {err:?} lacks {want:?}");
        assert!(!err.contains("panicked"));
        assert!(!sock.exists(), "{name}: a socket was created");
    }
}

#[test]
fn a_socket_in_use_or_in_an_open_directory_is_refused() {
    let d = Daemon::replay(&fixture(SIM), &["--speed", "1"]);
    let other_data = tempfile::tempdir().unwrap();
    let (code, _, err) = attune(&[
        "replay",
        fixture(SIM).to_str().unwrap(),
        "--socket",
        d.socket.to_str().unwrap(),
        "--data-dir",
        other_data.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is in use by a running daemon"), "{err}");
    // The first daemon still serves.
    let mut s = d.subscribe(&["state"]);
    assert_eq!(json(&s.line().unwrap())["type"], "welcome");

    // The same data directory is locked too.
    let sock2 = d.dir.path().join("run2").join("s.sock");
    let (code, _, err) = attune(&[
        "replay",
        fixture(SIM).to_str().unwrap(),
        "--socket",
        sock2.to_str().unwrap(),
        "--data-dir",
        d.dir.path().join("data").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("in use by another attune daemon"), "{err}");

    let open = tempfile::tempdir().unwrap();
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, _, err) = attune(&[
        "replay",
        fixture(SIM).to_str().unwrap(),
        "--socket",
        open.path().join("s.sock").to_str().unwrap(),
        "--data-dir",
        other_data.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not private"), "{err}");

    // A path that cannot be created.
    let (code, _, err) = attune(&[
        "replay",
        fixture(SIM).to_str().unwrap(),
        "--socket",
        "/dev/null/attune/s.sock",
        "--data-dir",
        other_data.path().to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/dev/null/attune"), "{err}");
}

#[test]
fn the_socket_is_private() {
    let d = Daemon::replay(&fixture(SIM), &["--speed", "1"]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&d.socket), 0o600);
    assert_eq!(mode(d.socket.parent().unwrap()), 0o700);
}

#[test]
fn listen_prints_n_messages_and_exits() {
    let d = Daemon::replay(
        &fixture(SIM),
        &["--speed", "max", "--wait-subscribers", "1"],
    );
    let (code, out, err) = attune(&[
        "listen",
        "--socket",
        d.socket.to_str().unwrap(),
        "--topics",
        "adaptation",
        "--count",
        "5",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(json(lines[0])["type"], "welcome");
    assert!(lines[1..].iter().all(|l| json(l)["type"] == "adaptation"));
}

#[test]
fn listen_without_a_daemon_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = attune(&[
        "listen",
        "--socket",
        dir.path().join("none.sock").to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no daemon is listening"), "{err}");
}

#[test]
fn the_python_client_from_the_docs_works_against_the_daemon() {
    let d = Daemon::replay(
        &fixture(SIM),
        &["--speed", "max", "--wait-subscribers", "1"],
    );
    let out = Command::new("python3")
        .arg(root().join("docs/clients/attune_client.py"))
        .args([
            "--socket",
            d.socket.to_str().unwrap(),
            "--topics",
            "adaptation",
            "--count",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hold"), "{text}");
}

#[test]
fn bad_client_lines_get_errors_and_an_overlong_line_closes_only_that_client() {
    use std::io::Write;
    let d = Daemon::replay(&fixture(SIM), &["--speed", "1"]);
    let mut a = d.subscribe(&["state"]);
    assert_eq!(json(&a.line().unwrap())["type"], "welcome");
    // Skip the state snapshot (rr, eda may or may not have started yet).
    writeln!(a.writer, "this is not json").unwrap();
    writeln!(a.writer, "{{\"type\":\"dance\"}}").unwrap();
    writeln!(a.writer, "{{\"type\":\"hello\",\"protocol\":1}}").unwrap();
    writeln!(
        a.writer,
        "{{\"type\":\"feedback\",\"participant\":\"p\",\"rating\":\"right\"}}"
    )
    .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 3 {
        let m = json(&a.line().unwrap());
        if m["type"] == "error" {
            codes.push(m["code"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        codes,
        ["bad_request", "unknown_type", "unknown_participant"]
    );

    let mut b = d.subscribe(&["state"]);
    let big = "x".repeat(70 * 1024);
    let _ = writeln!(b.writer, "{big}");
    let mut closed_with = None;
    while let Some(l) = b.line() {
        let m = json(&l);
        if m["type"] == "error" {
            closed_with = Some(m["code"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(closed_with.as_deref(), Some("line_too_long"));
    // The first client is unaffected.
    writeln!(a.writer, "{{\"type\":\"dance\"}}").unwrap();
    loop {
        let m = json(&a.line().unwrap());
        if m["type"] == "error" {
            assert_eq!(m["code"], "unknown_type");
            break;
        }
    }
}

#[test]
fn every_daemon_message_validates_against_the_published_schema() {
    use std::io::Write;
    let d = Daemon::replay(
        &fixture(SIM),
        &[
            "--speed",
            "max",
            "--wait-subscribers",
            "1",
            "--queue",
            "256",
        ],
    );
    let mut sub = d.subscribe(&["adaptation", "state", "features"]);
    writeln!(sub.writer, "{{\"type\":\"dance\"}}").unwrap();
    writeln!(
        sub.writer,
        "{{\"type\":\"consent_query\",\"participant\":\"sim-0007\"}}"
    )
    .unwrap();
    // Read slowly at first so that the small queue overflows and `lagged` appears too.
    std::thread::sleep(Duration::from_millis(800));
    let lines = sub.all_lines();
    let mut child = Command::new("python3")
        .arg(root().join("tests/python/validate_messages.py"))
        .arg(root().join("docs/protocol.schema.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "validator failed (is jsonschema installed?)"
    );
    let report = json(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(report["invalid"], serde_json::json!([]), "{report}");
    for t in [
        "welcome",
        "state",
        "adaptation",
        "features",
        "lagged",
        "error",
    ] {
        assert!(
            report["types"][t].as_u64().unwrap_or(0) > 0,
            "no {t} message seen: {report}"
        );
    }
}

/// The adaptation line as it was rendered before it was serialized from structs (a `Value`
/// tree built with `json!`): the reference the faster rendering must match byte for byte.
fn adaptation_reference(a: &attune::engine::event::Adaptation) -> String {
    use attune::baseline::score::{DIRECTIONS, SCALES, from_scale};
    use attune::features::FEATURE_NAMES;
    use serde_json::{Value, json};
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let opt3 = |x: Option<f64>| x.map_or(Value::Null, |v| json!(r3(v)));
    let (p, d) = (&a.participant, &a.decision);
    let features: Vec<Value> = d
        .terms
        .iter()
        .map(|t| {
            let show = a.shared.get(t.index).copied().unwrap_or(false);
            let hide = |v: Option<f64>| if show { opt3(v) } else { Value::Null };
            json!({"name": FEATURE_NAMES[t.index], "value": hide(t.value), "z": opt3(t.z),
                   "direction": DIRECTIONS[t.index] as i8, "weight": r3(t.weight),
                   "scale": SCALES[t.index].name(),
                   "baseline_median": hide(t.stat.map(|s| from_scale(t.index, s.center))),
                   "baseline_scale": hide(t.stat.map(|s| s.scale)), "dropped": t.dropped})
        })
        .collect();
    let baseline = d.baseline.as_ref().map_or(Value::Null, |b| {
        json!({"kind": b.kind.name(), "from_s": r3(b.from_s), "to_s": r3(b.to_s),
               "windows": b.windows, "frames": b.frames, "suspect": b.suspect,
               "clusters": b.clusters, "rebased": b.rebased})
    });
    let finite = |x: f64| {
        if x.is_finite() {
            json!(r3(x))
        } else {
            Value::Null
        }
    };
    let target = json!({"name": d.target.target.name(), "z_low": finite(d.target.z_low),
                        "z_high": finite(d.target.z_high),
                        "feedback_shift_z": r3(d.target.shift_z)});
    json!({
        "type": "adaptation", "participant": p, "t": d.t, "action": d.action.name(),
        "arousal": opt3(d.arousal), "confidence": r3(d.confidence),
        "arousal_state": d.state.name(),
        "reason": {
            "rule": d.rule.name(), "summary": a.summary, "composite_z": opt3(d.composite_z),
            "features": features, "quality": a.quality, "baseline": baseline,
            "target": target, "blocked": d.blocked, "dwell_s": r3(d.dwell_s),
        }
    })
    .to_string()
}

#[test]
fn adaptation_lines_render_byte_for_byte_as_the_value_tree_did() {
    use attune::engine::event::EventBody;
    let (h, recs) =
        crate::util::read_recording(&crate::util::fixture("sim-rest-stress.attune.ndjson"));
    let mut n = 0;
    for ev in crate::util::run_engine(&h, &recs, PipelineConfig::default()) {
        if let EventBody::Adaptation(a) = &ev.body {
            assert_eq!(
                attune::publish::messages::adaptation(a),
                adaptation_reference(a)
            );
            n += 1;
        }
    }
    assert!(n > 2000, "{n} adaptation lines");
}
