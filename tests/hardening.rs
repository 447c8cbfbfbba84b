//! Regression tests for defects found by attacking attune as a hostile user, a crash or bad
//! files would: the recording is read once, analyze and replay stay bounded on absurd values,
//! quoted input is escaped, and the command line fails in one line.

use crate::util::{Daemon, fixture, json, run_attune, run_attune_within, wait_within};
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
    wait_within(&mut child, 60, what);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cut.as_bytes())
        .unwrap();
    let (code, err) = finish(child, "cut pipe");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Refused for what the bytes are (before the fix, `-` was a file name that did not exist).
    assert!(err.contains("truncated"), "{err}");
    assert!(!dir.path().join("run/attune.sock").exists());
}

use std::io::Read as _;

#[test]
fn analyze_windows_refuses_an_absurd_interval_instead_of_writing_forever() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "rr\n800\n1e300\n800\n").unwrap();
    let csv = csv.to_str().unwrap();
    // Before the fix this wrote about 65 MB/s until killed.
    let (code, out, err) = run_attune_within(&["analyze", csv, "--kind", "rr", "--windows"], 20);
    assert_eq!(code, Some(1), "{err}");
    assert!(out.is_empty(), "{} bytes written", out.len());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("RR interval 1e300 at row 1 is not plausible"),
        "{err}"
    );
    // The same value inside a recording.
    let rec = dir.path().join("x.attune.ndjson");
    let text = std::fs::read_to_string(fixture("pyhrv-short-rr.attune.ndjson")).unwrap();
    let text = text.replacen("\"samples\":[867.0]", "\"samples\":[1e300]", 1);
    std::fs::write(&rec, text).unwrap();
    let (code, _, err) = run_attune_within(
        &[
            "analyze",
            rec.to_str().unwrap(),
            "--kind",
            "rr",
            "--windows",
        ],
        20,
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // An absurd rate would stretch a uniform signal's windows the same way.
    let eda = dir.path().join("e.csv");
    std::fs::write(&eda, "eda\n1\n2\n3\n").unwrap();
    let eda = eda.to_str().unwrap();
    for rate in ["1e-300", "-inf"] {
        let (code, out, err) = run_attune_within(
            &["analyze", eda, "--kind", "eda", "--rate", rate, "--windows"],
            20,
        );
        assert_eq!(code, Some(1), "{rate}: {err}");
        assert!(out.is_empty());
        // `-inf` used to be read as an unknown flag.
        assert!(err.contains("is not plausible for eda"), "{rate}: {err}");
    }
}

fn has_raw_controls(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn control_characters_from_input_are_escaped_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("pyhrv-short-rr.attune.ndjson")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // A record type with ESC and CR: the parser's message quotes it.
    let bad = dir.path().join("bad.attune.ndjson");
    lines[5] = "{\"type\":\"ma\\u001b[31mrker\\r\"}".into();
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let sock = dir.path().join("run/a.sock");
    let data = dir.path().join("data");
    let common = [
        "--socket",
        sock.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let mut args = vec!["replay", bad.to_str().unwrap(), "--speed", "max"];
    args.extend(common);
    let (code, _, err) = run_attune_within(&args, 30);
    assert_eq!(code, Some(1), "{err}");
    assert!(!has_raw_controls(&err), "raw control characters: {err:?}");
    assert!(err.contains("\\u{1b}[31m"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A marker label with ESC and CR reaches the debug log escaped.
    let text = std::fs::read_to_string(fixture("pyhrv-short-rr.attune.ndjson")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let n = lines.len();
    let records: u64 = (n - 1) as u64; // the end record counts what precedes it, markers included
    lines.insert(
        3,
        "{\"type\":\"marker\",\"host_t\":1.8,\"t\":1.8,\"label\":\"a\\u001b[2Jb\\rc\"}".into(),
    );
    let last = lines.len() - 1;
    lines[last] = format!("{{\"type\":\"end\",\"records\":{records}}}");
    let marked = dir.path().join("marked.attune.ndjson");
    std::fs::write(&marked, lines.join("\n") + "\n").unwrap();
    let mut args = vec!["replay", marked.to_str().unwrap(), "--speed", "max", "-vv"];
    args.extend(common);
    let (code, _, err) = run_attune_within(&args, 30);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("Marker."), "{err}");
    assert!(!has_raw_controls(&err), "raw control characters in the log");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI colour codes on a non-terminal stderr"
    );
}

#[test]
fn usage_errors_are_one_line_with_the_usage() {
    let cases: &[&[&str]] = &[
        &["replay"],
        &["replay", "x", "--speed"],
        &["nope"],
        &["analyze", "--kind", "foo", "x"],
        &["consent", "grant", "--participant", "p1"],
        &["--bogus"],
    ];
    for args in cases {
        let (code, out, err) = run_attune(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("attune: "), "{args:?}: {err}");
        assert!(err.contains("--help"), "{args:?}: {err}");
        assert!(!err.contains('\u{1b}'), "{args:?}: colour codes");
    }
    let (_, _, err) = run_attune(&["consent", "grant", "--participant", "p1"]);
    assert!(
        err.contains("--stream") && err.contains("usage: attune consent grant"),
        "{err}"
    );
    let (code, out, _) = run_attune(&["replay", "--help"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Usage: attune replay"));
}

#[test]
fn output_cut_short_by_its_reader_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attune"))
        .args([
            "analyze",
            fixture("signals/pyhrv_nn_long.csv").to_str().unwrap(),
            "--kind",
            "rr",
            "--windows",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn sighup_is_survived_and_sigquit_stops_gracefully() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    let pid = Pid::from_raw(i32::try_from(d.child.id()).unwrap());
    let control = d.socket.with_file_name("control.sock");
    assert!(control.exists());
    kill(pid, Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut sub = d.subscribe(&["adaptation"]);
    assert!(sub.line().is_some(), "the daemon died of SIGHUP");
    kill(pid, Signal::SIGQUIT).unwrap();
    let socket = d.socket.clone();
    let t0 = Instant::now();
    let (code, err) = d.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!socket.exists(), "subscriber socket left behind");
    assert!(!control.exists(), "control socket left behind");
}

#[test]
fn a_failed_start_leaves_no_socket_behind() {
    let first = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    // A second daemon in the same socket directory binds its own socket, then finds the
    // control socket taken and must fail without leaving its socket file.
    let other = first.socket.with_file_name("other.sock");
    let data = first.dir.path().join("data2");
    let (code, _, err) = run_attune_within(
        &[
            "replay",
            fixture("sim-rest-stress.attune.ndjson").to_str().unwrap(),
            "--socket",
            other.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        30,
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("control.sock"), "{err}");
    assert!(
        !other.exists(),
        "a failed start left {} behind",
        other.display()
    );
    assert!(first.socket.exists());
}

/// The short RR fixture with every record from the 100th on moved 1e6 s later.
fn with_time_jump(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("pyhrv-short-rr.attune.ndjson")).unwrap();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut v = json(line);
        if i >= 100 && v["type"] == "chunk" {
            fn shift(x: &serde_json::Value) -> serde_json::Value {
                serde_json::json!(x.as_f64().unwrap() + 1e6)
            }
            v["host_t"] = shift(&v["host_t"]);
            let times: Vec<_> = v["times"].as_array().unwrap().iter().map(shift).collect();
            v["times"] = times.into();
        }
        out.push(v.to_string());
    }
    let path = dir.join("jump.attune.ndjson");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

#[test]
fn a_time_jump_is_a_gap_not_millions_of_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let file = with_time_jump(dir.path());
    for speed in ["max", "1000"] {
        // Before the fix: 4 million ticks at max speed (minutes of CPU); 1000 s at 1000x.
        let t0 = Instant::now();
        let d = Daemon::replay(&file, &["--speed", speed, "--wait-subscribers", "1"]);
        let mut sub = d.subscribe(&["adaptation", "state"]);
        let lines: Vec<serde_json::Value> = sub.all_lines().iter().map(|l| json(l)).collect();
        let (code, err) = d.wait();
        assert_eq!(code, Some(0), "{speed}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{speed}: {:?}",
            t0.elapsed()
        );
        assert!(
            err.contains("treated as a gap on every stream"),
            "{speed}: {err}"
        );
        let adaptations = lines.iter().filter(|m| m["type"] == "adaptation").count();
        // ~1,200 decisions of the data itself, 480 ticking into the silence, none for the jump.
        assert!(
            (1000..3000).contains(&adaptations),
            "{speed}: {adaptations}"
        );
        // The silence shows as `stale`, and the stream streams again after the jump.
        let states: Vec<(&str, f64)> = lines
            .iter()
            .filter(|m| m["type"] == "state")
            .map(|m| (m["state"].as_str().unwrap(), m["since"].as_f64().unwrap()))
            .collect();
        let stale = states.iter().position(|(s, _)| *s == "stale").unwrap();
        assert!(states[stale].1 < 1e6, "{states:?}");
        assert!(
            states[stale..]
                .iter()
                .any(|(s, t)| *s == "streaming" && *t > 1e6),
            "{states:?}"
        );
        // Decisions after the jump carry the new stream time.
        assert!(
            lines
                .iter()
                .any(|m| m["type"] == "adaptation" && m["t"].as_f64().unwrap() > 1e6)
        );
    }
}

#[test]
fn a_silent_control_connection_is_closed() {
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    let control = d.socket.with_file_name("control.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&control).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    // Before the fix, this read waited forever (the daemon kept the request task alive).
    let n = s.read_to_end(&mut buf).unwrap();
    assert_eq!(n, 0, "{buf:?}");
    assert!(t0.elapsed() >= Duration::from_secs(9), "{:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

#[test]
fn replay_of_a_fifo_nobody_writes_to_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("rec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let child = replay_cmd(dir.path(), fifo.to_str().unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    // Before the fix the open of the FIFO blocked shutdown: only SIGKILL ended it.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let t0 = Instant::now();
    let (code, err) = finish(child, "silent fifo");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("replay stopped"), "{err}");
}

#[test]
fn demo_into_a_closed_pipe_ends_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attune"))
        .current_dir(crate::util::root())
        .args(["demo", "--speed", "max"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Before the fix, println! panicked: "failed printing to stdout: Broken pipe", exit 101.
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
