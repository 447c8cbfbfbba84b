//! Consent end to end (issue 4): the CLI reaches a running daemon, a revocation during a replay
//! takes effect from the next chunk, and an acknowledged revocation survives kill -9.

use crate::util::{Daemon, fixture, grant, json, revoke, run_attune_in};
use std::path::Path;
use std::time::Duration;

#[test]
fn revoking_eda_during_a_replay_stops_everything_derived_from_it() {
    let d = Daemon::replay(
        &fixture("sim-rest-stress.attune.ndjson"),
        &["--speed", "20", "--wait-subscribers", "1"],
    );
    let mut sub = d.subscribe(&["features", "state"]);
    // Wait until EDA features flow.
    loop {
        let m = json(&sub.line().unwrap());
        if m["type"] == "features" && m["scl_us"].is_number() {
            break;
        }
    }
    let (code, out, err) = d.cli(&revoke("sim-0007", "eda", "process"));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("revoke sim-0007 process for eda"), "{out}");
    // From the no_consent state on (the first EDA chunk after the revocation), nothing carries
    // EDA values; heart features go on.
    let mut revoked = false;
    let mut after = 0;
    let mut hr_after = 0;
    while after < 200 {
        let m = json(&sub.line().expect("daemon closed early"));
        if m["type"] == "state" && m["stream"] == "eda" && m["state"] == "no_consent" {
            revoked = true;
            continue;
        }
        if revoked && m["type"] == "features" {
            after += 1;
            assert!(
                m["scl_us"].is_null() && m["scr_per_min"].is_null(),
                "EDA after revoke: {m}"
            );
            hr_after += usize::from(m["hr_bpm"].is_number());
        }
    }
    assert!(hr_after > 150, "heart features stopped too");
    // `show` through the daemon sees it.
    let (code, out, _) = d.cli(&["consent", "show", "--participant", "sim-0007", "--json"]);
    assert_eq!(code, Some(0));
    let v = json(out.trim());
    let line = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["stream"] == "eda" && l["purpose"] == "process")
        .cloned()
        .unwrap();
    assert_eq!(line["status"], "revoked");
}

#[test]
fn an_acknowledged_revoke_survives_kill_9() {
    // 20 trials with the real binary (RELIABILITY.md's second tier), the kill landing 0-57 ms
    // after the acknowledgement.
    for trial in 0..20u64 {
        let mut d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "5"]);
        let (code, _, err) = d.cli(&grant("p9", "all", "process,adapt"));
        assert_eq!(code, Some(0), "{err}");
        let (code, _, err) = d.cli(&revoke("p9", "rr", "adapt"));
        assert_eq!(code, Some(0), "{err}");
        // SIGKILL right after the acknowledgement (a little later in later trials).
        std::thread::sleep(Duration::from_millis((trial * 37) % 58));
        d.child.kill().unwrap();
        d.child.wait().unwrap();
        let (code, out, err) = d.cli(&["consent", "show", "--participant", "p9", "--json"]);
        assert_eq!(code, Some(0), "trial {trial}: {err}");
        let v = json(out.trim());
        let status = |stream: &str, purpose: &str| {
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["stream"] == stream && l["purpose"] == purpose)
                .map(|l| l["status"].as_str().unwrap().to_owned())
        };
        assert_eq!(
            status("rr", "adapt").as_deref(),
            Some("revoked"),
            "trial {trial}"
        );
        assert_eq!(
            status("eda", "adapt").as_deref(),
            Some("granted"),
            "trial {trial}"
        );
        let (code, out, err) = d.cli(&["consent", "verify"]);
        assert_eq!(code, Some(0), "trial {trial}: {err}");
        assert!(out.contains("hash chain intact"));
    }
}

#[test]
fn a_tampered_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sock = dir.path().join("run").join("s.sock");
    let must = |data: &Path, args: &[&str]| {
        let (code, _, err) = run_attune_in(&sock, data, args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    };
    must(&data, &grant("p1", "eda", "process"));
    // Remove the newest event: the chain alone cannot show it; the head record does.
    must(&data, &revoke("p1", "eda", "process"));
    {
        let db = sled::open(data.join("ledger")).unwrap();
        let t = db.open_tree("events").unwrap();
        t.remove(1u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (code, _, err) = run_attune_in(&sock, &data, &["consent", "show", "--participant", "p1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("events removed"), "{err}");
    let data = dir.path().join("data2");
    must(&data, &grant("p1", "eda", "process"));
    // Flip the action inside the stored event with sled itself.
    {
        let db = sled::open(data.join("ledger")).unwrap();
        let t = db.open_tree("events").unwrap();
        let (k, v) = t.iter().next().unwrap().unwrap();
        let text = String::from_utf8(v.to_vec())
            .unwrap()
            .replace("\"grant\"", "\"revoke\"");
        t.insert(k, text.as_bytes()).unwrap();
        db.flush().unwrap();
    }
    let (code, _, err) = run_attune_in(&sock, &data, &["consent", "verify"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("tampered") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn apps_can_read_consent_but_not_change_it() {
    use std::io::Write;
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    let mut sub = d.subscribe(&["adaptation"]);
    writeln!(
        sub.writer,
        "{{\"type\":\"consent_query\",\"participant\":\"sim-0007\"}}"
    )
    .unwrap();
    writeln!(
        sub.writer,
        "{{\"type\":\"consent_change\",\"participant\":\"sim-0007\"}}"
    )
    .unwrap();
    let (mut consent_msg, mut refused) = (None, None);
    while consent_msg.is_none() || refused.is_none() {
        let m = json(&sub.line().unwrap());
        match m["type"].as_str() {
            Some("consent") => consent_msg = Some(m),
            Some("error") => refused = Some(m["code"].as_str().unwrap().to_owned()),
            _ => {}
        }
    }
    let c = consent_msg.unwrap();
    // The fixture's manifest grants process, adapt, share_features and record for all streams.
    assert_eq!(
        c["streams"]["eda"],
        serde_json::json!(["process", "adapt", "share_features", "record"])
    );
    assert_eq!(refused.as_deref(), Some("not_permitted"));
}

#[test]
fn a_command_that_cannot_reach_the_running_daemon_says_so() {
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    // Same data directory, but a socket path where no daemon listens.
    let elsewhere = d.dir.path().join("other").join("s.sock");
    let (code, _, err) = run_attune_in(&elsewhere, &d.data(), &grant("p1", "eda", "process"));
    assert_eq!(code, Some(1));
    assert!(err.contains("held by a running daemon"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_command_meant_for_another_data_directory_is_refused_by_the_daemon() {
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    let other = d.dir.path().join("other-data");
    let (code, _, err) = run_attune_in(&d.socket, &other, &grant("p1", "eda", "process"));
    assert_eq!(code, Some(1));
    assert!(err.contains("uses data directory"), "{err}");
    // Nothing was written to the daemon's ledger.
    let (code, _, err) = d.cli(&["consent", "history", "--participant", "p1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no consent recorded"), "{err}");
}

#[test]
fn after_an_acknowledged_share_features_revoke_no_line_carries_those_values() {
    use std::sync::mpsc;
    use std::time::Instant;
    let d = Daemon::replay(
        &fixture("sim-rest-stress.attune.ndjson"),
        &["--speed", "20", "--wait-subscribers", "1"],
    );
    let mut sub = d.subscribe(&["features", "adaptation"]);
    // Read continuously on a thread, stamping each line with its arrival.
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        while let Some(l) = sub.line() {
            if tx.send((Instant::now(), l)).is_err() {
                break;
            }
        }
    });
    // Wait for EDA values and a baseline, so adaptation reasons carry values too.
    loop {
        let (_, l) = rx.recv().unwrap();
        let m = json(&l);
        if m["type"] == "adaptation" && m["reason"]["baseline"].is_object() {
            break;
        }
    }
    let (code, _, err) = d.cli(&revoke("sim-0007", "eda", "share_features"));
    assert_eq!(code, Some(0), "{err}");
    // Lines written before the acknowledgement may still be in flight for a few ms.
    let acked = Instant::now() + Duration::from_millis(50);
    let mut checked = 0;
    while checked < 200 {
        let (at, l) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("daemon went quiet");
        if at < acked {
            continue;
        }
        let m = json(&l);
        match m["type"].as_str() {
            Some("features") => {
                assert!(m["scl_us"].is_null() && m["scr_per_min"].is_null(), "{m}");
                assert!(m["hr_bpm"].is_number(), "heart features stopped: {m}");
            }
            Some("adaptation") => {
                for f in m["reason"]["features"].as_array().unwrap() {
                    if f["name"] == "scl_us" || f["name"] == "scr_per_min" {
                        assert!(
                            f["value"].is_null() && f["baseline_median"].is_null(),
                            "{m}"
                        );
                    }
                }
            }
            _ => continue,
        }
        checked += 1;
    }
}
