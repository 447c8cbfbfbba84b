//! Regression tests for defects found by attacking attune as a hostile user, a crash or bad
//! files would: the recording is read once, analyze and replay stay bounded on absurd values,
//! quoted input is escaped, and the command line fails in one line.

use crate::util::{Daemon, fixture, json, run_attune};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The fixture with its header rewritten: another participant, a manifest that grants nothing.
fn grants_nothing(src: &std::path::Path) -> String {
    let text = std::fs::read_to_string(src).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let mut h = json(head);
    h["participant"] = "intruder".into();
    h["consent"]["grants"] = serde_json::json!([]);
    format!("{h}\n{rest}")
}

#[test]
fn a_recording_replaced_after_start_is_not_what_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.attune.ndjson");
    std::fs::copy(fixture("sim-rest-stress.attune.ndjson"), &path).unwrap();
    // Before the fix, the file was validated (and its consent taken) on one open and streamed
    // from a second: a file renamed over the path in between was published in full.
    let d = Daemon::replay(&path, &["--speed", "max", "--wait-subscribers", "1"]);
    let swap = dir.path().join("swap");
    std::fs::write(&swap, grants_nothing(&path)).unwrap();
    std::fs::rename(&swap, &path).unwrap();
    let mut sub = d.subscribe(&["adaptation"]);
    let lines = sub.all_lines();
    let adaptations: Vec<_> = lines
        .iter()
        .map(|l| json(l))
        .filter(|m| m["type"] == "adaptation")
        .collect();
    assert!(adaptations.len() > 1000, "{} lines", adaptations.len());
    assert!(
        adaptations.iter().all(|m| m["participant"] != "intruder"),
        "the replaced file was replayed"
    );
    let (code, err) = d.wait();
    assert_eq!(code, Some(0), "{err}");
}

fn replay_cmd(dir: &std::path::Path, file: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_attune"));
    c.args(["replay", file, "--speed", "max", "--socket"])
        .arg(dir.join("run/attune.sock"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for `child` with a deadline; kills it and fails if it hangs.
fn finish(mut child: std::process::Child, what: &str) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn replay_reads_a_recording_from_a_pipe_and_a_fifo() {
    let bytes = std::fs::read(fixture("pyhrv-short-rr.attune.ndjson")).unwrap();
    for name in ["-", "/dev/stdin"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = replay_cmd(dir.path(), name)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let (code, err) = finish(child, name);
        assert_eq!(code, Some(0), "{name}: {err}");
        // Before the fix, /dev/stdin was read twice and the second read found "the file is empty".
        assert!(err.contains("replay finished"), "{name}: {err}");
        assert!(err.contains("337 records"), "{name}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let child = replay_cmd(dir.path(), fifo.to_str().unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Before the fix, replay opened the FIFO a second time and waited forever for a writer.
    std::fs::write(&fifo, &bytes).unwrap();
    let (code, err) = finish(child, "fifo");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("337 records"), "{err}");
}

#[test]
fn a_malformed_piped_recording_publishes_nothing() {
    let text = std::fs::read_to_string(fixture("pyhrv-short-rr.attune.ndjson")).unwrap();
    let cut = &text[..text.len() * 2 / 3];
    let dir = tempfile::tempdir().unwrap();
    let mut child = replay_cmd(dir.path(), "-")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(cut.as_bytes()).unwrap();
    let (code, err) = finish(child, "cut pipe");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!dir.path().join("run/attune.sock").exists());
}
