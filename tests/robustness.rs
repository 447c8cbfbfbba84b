//! Regressions from the issue 2 review: inputs and flags that used to hang or panic.

use crate::util::{Daemon, fixture, run_attune};
use std::time::{Duration, Instant};

fn attune(args: &[&str]) -> (Option<i32>, String) {
    let (code, _, err) = run_attune(args);
    (code, err)
}

#[test]
fn sigterm_interrupts_a_long_catch_up_at_max_speed() {
    // Two records 100 days apart: 35 million ticks to catch up. The daemon must stay
    // responsive to SIGTERM while it works through them.
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("sim-rest-stress.attune.ndjson")).unwrap();
    let mut lines = good.lines();
    let header = lines.next().unwrap();
    let first = lines.next().unwrap();
    let text = format!(
        "{header}\n{first}\n{}\n{}\n",
        r#"{"type":"marker","host_t":8640000.0,"t":8640000.0,"label":"much later"}"#,
        r#"{"type":"end","records":2}"#
    );
    let file = dir.path().join("jump.attune.ndjson");
    std::fs::write(&file, text).unwrap();
    let d = Daemon::replay(&file, &["--speed", "max"]);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let (code, err) = d.wait();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
}

#[test]
fn flags_out_of_range_are_refused_with_one_line() {
    let f = fixture("sim-rest-stress.attune.ndjson");
    let f = f.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("run").join("s.sock");
    let sock = sock.to_str().unwrap();
    for (mut args, want) in [
        (vec!["replay", f, "--speed", "1e-20"], "speed must be"),
        (vec!["replay", f, "--speed", "0"], "speed must be"),
        (vec!["replay", f, "--queue", "0"], "--queue"),
        (
            vec!["replay", f, "--wait-subscribers", "1000"],
            "exceeds the limit of 64 clients",
        ),
        (vec!["listen", "--count", "0"], "--count"),
    ] {
        args.extend(["--socket", sock]);
        let (code, err) = attune(&args);
        assert!(
            matches!(code, Some(1) | Some(2)),
            "{args:?}: {code:?} {err}"
        );
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn listen_reports_a_refusal_as_an_error() {
    let d = Daemon::replay(&fixture("sim-rest-stress.attune.ndjson"), &["--speed", "1"]);
    let (code, err) = attune(&[
        "listen",
        "--socket",
        d.socket.to_str().unwrap(),
        "--participant",
        "a b",
        "--count",
        "1",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the daemon refused") && err.contains("bad_request"),
        "{err}"
    );
}
