//! The data directory's owner (`store::datadir`): concurrent commands without a daemon wait
//! for each other (tracker defect 8), a deleted or truncated ledger is refused (defect 9),
//! actors are checked on every path (defect 11), and `forget` and `revoke` agree on a
//! participant known only from a recording's manifest.

use crate::crash::{Dir, participant_with_data};
use crate::util::{Daemon, fixture, grant, json, revoke, scan};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

const GRANT_P1: [&str; 8] = grant("p1", "eda", "process");

fn stderr_of(d: &Dir, args: &[&str]) -> (Option<i32>, String) {
    let o = d.run(None, args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn concurrent_commands_without_a_daemon_all_succeed() {
    let d = std::sync::Arc::new(Dir::new());
    d.ok(&GRANT_P1);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let d = d.clone();
            std::thread::spawn(move || {
                let p = format!("t{t}");
                let mut failures = Vec::new();
                for i in 0..50 {
                    let args: Vec<&str> = match i % 3 {
                        0 => grant(&p, "all", "process,record").to_vec(),
                        1 => revoke(&p, "eda", "record").to_vec(),
                        _ => vec!["consent", "show", "--participant", &p],
                    };
                    let o = d.run(None, &args);
                    if !o.status.success() {
                        failures.push(String::from_utf8_lossy(&o.stderr).into_owned());
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of 200 commands failed, e.g. {:?}",
        failures.len(),
        failures.first()
    );
    let out = d.ok(&["consent", "verify", "--json"]);
    // 1 + 4 threads x (17 grants x 2 events + 17 revokes x (1 + 1 receipt)) events.
    assert_eq!(json(out.trim())["events"], 1 + 4 * (17 * 2 + 17 * 2));
}

/// Runs `args` and expects a refusal in one line that contains `what`.
fn refused(d: &Dir, args: &[&str], what: &str) {
    let (code, err) = stderr_of(d, args);
    assert_eq!(code, Some(1), "{args:?} was not refused: {err}");
    assert!(err.contains(what), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err}"
    );
}

fn refused_everywhere(d: &Dir, what: &str) {
    refused(d, &["consent", "verify"], what);
    refused(d, &["consent", "show", "--participant", "p01"], what);
    refused(d, &GRANT_P1, what);
    let replay = fixture("pyhrv-short-rr.attune.ndjson");
    refused(
        d,
        &["replay", replay.to_str().unwrap(), "--speed", "max"],
        what,
    );
}

#[test]
fn a_deleted_ledger_is_refused_not_replaced_by_an_empty_one() {
    let d = Dir::new();
    participant_with_data(&d, "p01", "REC-ledger-gone-01", "PROF-ledger-gone-01");
    d.ok(&revoke("p01", "all", "process"));
    std::fs::remove_dir_all(d.data.join("ledger")).unwrap();
    refused_everywhere(&d, "is missing");
    assert!(!d.data.join("ledger").exists(), "a new ledger was created");
    // Without the head copy too, the participant store still shows a ledger existed.
    std::fs::remove_file(d.data.join("ledger.head")).unwrap();
    refused_everywhere(&d, "participant store");
    assert!(
        scan(&d.data, "REC-ledger-gone-01") > 0,
        "nothing was erased"
    );
}

/// Removes the newest event from the ledger with sled itself and rewrites the ledger's own head
/// record to match, so that only the copy outside the ledger can tell.
fn drop_newest_event(ledger: &Path) {
    let db = sled::open(ledger).unwrap();
    let t = db.open_tree("events").unwrap();
    let head_key = attune::store::ledger::HEAD_KEY;
    let mut events: Vec<(Vec<u8>, serde_json::Value)> = t
        .iter()
        .map(|kv| kv.unwrap())
        .filter(|(k, _)| k.as_ref() != head_key)
        .map(|(k, v)| (k.to_vec(), serde_json::from_slice(&v).unwrap()))
        .collect();
    let (last, _) = events.pop().unwrap();
    t.remove(last).unwrap();
    let head = serde_json::json!({
        "events": events.len(),
        "hash": events.last().unwrap().1["hash"],
    });
    t.insert(head_key, serde_json::to_vec(&head).unwrap())
        .unwrap();
    db.flush().unwrap();
}

#[test]
fn a_truncated_or_replaced_ledger_is_refused() {
    let d = Dir::new();
    d.ok(&GRANT_P1);
    d.ok(&revoke("p1", "eda", "process"));
    drop_newest_event(&d.data.join("ledger"));
    refused_everywhere(&d, "is truncated");

    // A ledger with as many events but another history.
    let other = Dir::new();
    other.ok(&GRANT_P1);
    other.ok(&grant("p2", "eda", "process"));
    std::fs::remove_dir_all(d.data.join("ledger")).unwrap();
    std::fs::rename(other.data.join("ledger"), d.data.join("ledger")).unwrap();
    refused_everywhere(&d, "has another hash");
}

#[test]
fn a_ledger_ahead_of_its_head_copy_is_accepted() {
    // A crash between the ledger flush and the head write leaves the head one append behind.
    let d = Dir::new();
    d.ok(&GRANT_P1);
    let behind = std::fs::read(d.data.join("ledger.head")).unwrap();
    d.ok(&revoke("p1", "eda", "process"));
    std::fs::write(d.data.join("ledger.head"), behind).unwrap();
    let out = d.ok(&["consent", "verify"]);
    assert!(out.contains("2 events"), "{out}");
    let head: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.data.join("ledger.head")).unwrap()).unwrap();
    assert_eq!(head["events"], 2, "the head copy is rewritten");
}

#[test]
fn forget_by_is_checked_like_grant_by() {
    let d = Dir::new();
    d.ok(&GRANT_P1);
    let long = "x".repeat(100 * 1024);
    for bad in ["researcher1\n#9 forged line", "", long.as_str()] {
        let (code, err) = stderr_of(&d, &["forget", "--participant", "p1", "--by", bad]);
        assert_eq!(
            code,
            Some(2),
            "--by {:?} accepted: {err}",
            &bad[..bad.len().min(30)]
        );
        assert!(err.contains("1-200 printable characters"), "{err}");
    }
    let h = d.history("p1");
    assert_eq!(h.len(), 1, "nothing was appended: {h:?}");
}

/// Sends one raw line to a daemon's control socket and returns its answer.
fn control(d: &Daemon, line: &serde_json::Value) -> serde_json::Value {
    let path = d.socket.with_file_name("control.sock");
    let mut s = UnixStream::connect(path).unwrap();
    writeln!(s, "{line}").unwrap();
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).unwrap();
    json(answer.trim())
}

#[test]
fn the_daemon_refuses_a_bad_actor_too() {
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    let data = std::path::absolute(d.dir.path().join("data")).unwrap();
    for request in [
        serde_json::json!({"op": "revoke", "participant": "sim-0007", "streams": ["all"],
                           "purposes": ["record"], "by": "x".repeat(201)}),
        serde_json::json!({"op": "grant", "participant": "sim-0007", "streams": ["all"],
                           "purposes": ["process"], "by": "ok", "text_version": "v1\r"}),
        serde_json::json!({"op": "forget", "participant": "sim-0007", "by": "a\nb"}),
    ] {
        let a = control(
            &d,
            &serde_json::json!({"data_dir": data, "request": request}),
        );
        assert_eq!(a["result"], "error", "{request}: {a}");
        assert!(
            a["message"].as_str().unwrap().contains("1-200 printable"),
            "{a}"
        );
    }
    let a = control(
        &d,
        &serde_json::json!({"data_dir": data, "request": {"op": "history", "participant": "sim-0007"}}),
    );
    assert_eq!(a["result"], "error", "nothing was appended: {a}");
}

#[test]
fn forget_and_revoke_agree_on_a_participant_known_only_from_a_manifest() {
    // The fixture's manifest grants consent; the ledger has no history of sim-0007.
    let mut answers = Vec::new();
    for op in ["revoke", "forget"] {
        let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
        let args: Vec<&str> = match op {
            "revoke" => revoke("sim-0007", "all", "record").to_vec(),
            _ => vec!["forget", "--participant", "sim-0007"],
        };
        let (code, _, err) = d.cli(&args);
        let (_, events, _) = d.cli(&["consent", "history", "--participant", "sim-0007", "--json"]);
        answers.push((op, code, err, events));
    }
    for (op, code, err, _) in &answers {
        assert_eq!(*code, Some(0), "{op} refused: {err}");
    }
    for (op, _, _, events) in &answers {
        let receipt = if *op == "revoke" {
            "data_erased"
        } else {
            "erased"
        };
        assert!(
            events.contains(&format!("\"action\":\"{receipt}\"")),
            "{op}: {events}"
        );
    }
}
