//! Issue 4: once a revocation of `adapt` (or a `forget`) is acknowledged, no adaptation line
//! reaches a subscriber, whatever it carries (warm-up, calibrating and no-data lines rely on no
//! stream data and used to slip through).
//!
//! No timing grace: after the acknowledgement the test sends `consent_query` on the subscriber's
//! own connection. The daemon handles a connection's incoming lines and its writes in one loop,
//! so every line after the `consent` answer was written after the acknowledgement; none of
//! them may be an adaptation line. A second query 300 ms later closes the observation window
//! (at `--speed 50` that is 15 s of stream time, about 60 adaptation lines had they gone on).

use crate::util::{Daemon, Subscriber, fixture, grant, json, revoke};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

const SIM: &str = "sim-rest-stress.attune.ndjson";
const WHO: &str = "sim-0007";

fn cli(d: &Daemon, args: &[&str]) {
    let (code, out, err) = d.cli(args);
    assert_eq!(code, Some(0), "{args:?}: {out} {err}");
}

/// Sends `consent_query` and returns the lines up to and including its answer.
fn query(sub: &mut Subscriber) -> Vec<serde_json::Value> {
    writeln!(
        sub.writer,
        "{{\"type\":\"consent_query\",\"participant\":\"{WHO}\"}}"
    )
    .unwrap();
    let mut lines = Vec::new();
    loop {
        let m = json(&sub.line().expect("daemon closed before answering"));
        let answer = m["type"] == "consent";
        lines.push(m);
        if answer {
            return lines;
        }
    }
}

/// One trial: withdraw at stream time `at` (s); returns the rule of the last adaptation line
/// seen before the withdrawal.
fn trial(at: f64, forget: bool) -> String {
    let d = Daemon::replay(&fixture(SIM), &["--speed", "50", "--wait-subscribers", "1"]);
    if forget {
        // `forget` needs the participant in the ledger; a grant the manifest lacks changes
        // nothing in a replay.
        cli(&d, &grant(WHO, "all", "share_raw"));
    }
    let mut sub = d.subscribe(&["adaptation", "state"]);
    let rule = loop {
        let m = json(&sub.line().expect("replay ended before the moment"));
        if m["type"] == "adaptation" && m["t"].as_f64().unwrap() >= at {
            break m["reason"]["rule"].as_str().unwrap().to_owned();
        }
    };
    if forget {
        cli(&d, &["forget", "--participant", WHO, "--by", "test"]);
    } else {
        cli(&d, &revoke(WHO, "all", "adapt"));
    }
    // Acknowledged. Everything after the first answer was written after the acknowledgement.
    let first = query(&mut sub);
    let answer = first.last().unwrap();
    for (kind, purposes) in answer["streams"].as_object().unwrap() {
        assert!(
            !purposes.as_array().unwrap().iter().any(|p| p == "adapt"),
            "at t={at}: adapt still in force for {kind}: {answer}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = query(&mut sub);
    let leaked: Vec<_> = after.iter().filter(|m| m["type"] == "adaptation").collect();
    assert!(
        leaked.is_empty(),
        "at t={at} ({rule}, forget={forget}): {} adaptation line(s) after the acknowledgement, first {}",
        leaked.len(),
        leaked[0]
    );
    rule
}

#[test]
fn no_adaptation_line_follows_an_acknowledged_adapt_revoke_or_forget() {
    let mut rules = BTreeSet::new();
    // Warm-up (< 10 s), calibrating (10–241 s: the population prior) and running (> 241 s).
    for at in [
        1.0, 8.0, 25.0, 50.0, 59.0, 61.0, 75.0, 95.0, 120.0, 150.0, 170.0, 179.0, 250.0, 265.0,
    ] {
        rules.insert(trial(at, false));
    }
    for at in [4.0, 40.0, 65.0, 110.0, 175.0, 255.0] {
        rules.insert(trial(at, true));
    }
    for r in ["warming_up", "calibrating"] {
        assert!(rules.contains(r), "no trial during {r}: {rules:?}");
    }
    assert!(rules.len() >= 3, "no trial after calibration: {rules:?}");
}
