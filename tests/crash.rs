//! Crash safety of the operations that erase data (tracker defects 2 and 3): a revocation of
//! `record` and a `forget`, killed with SIGKILL at every step, converge at the next command or
//! daemon start to "revoked (or forgotten), data gone, exactly one receipt".
//!
//! Two ways of killing: the test-only failpoints (`ATTUNE_FAILPOINT`, `store::failpoint`), one
//! trial per listed step, and strace fault injection (SIGKILL at the n-th rename, for every n
//! until the command finishes), which needs no help from the code and is skipped with a printed
//! reason where strace is absent. The recovering process is killed at the same step again where
//! the step is on its path too, so crashes during recovery are covered as well.
//!
//! `ATTUNE_TEST_BIN` runs the tests against another build (e.g. one from before the fix).

use crate::util::{fixture, grant, scan, simulated_recording, wait_for_socket};
use attune::features::{FEATURE_SOURCES, FeatureFrame};
use attune::model::ParticipantId;
use attune::store::failpoint::{ENV, STEPS};
use attune::store::participant::ParticipantStore;
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> PathBuf {
    std::env::var_os("ATTUNE_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_attune")),
        PathBuf::from,
    )
}

/// A data directory and a socket path no daemon listens on.
pub struct Dir {
    _tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub sock: PathBuf,
}

impl Dir {
    pub fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let sock = tmp.path().join("run").join("s.sock");
        Dir {
            _tmp: tmp,
            data,
            sock,
        }
    }

    fn command(&self, prefix: &[&str], failpoint: Option<&str>, args: &[&str]) -> Command {
        let mut c = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        c.args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--socket")
            .arg(&self.sock)
            .env_remove(ENV)
            .stdin(Stdio::null());
        if let Some(fp) = failpoint {
            c.env(ENV, fp);
        }
        c
    }

    /// Runs `attune ARGS`, dying at `failpoint` if given.
    pub fn run(&self, failpoint: Option<&str>, args: &[&str]) -> Output {
        self.command(&[], failpoint, args).output().unwrap()
    }

    /// Runs `attune ARGS` and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(None, args);
        assert!(
            o.status.success(),
            "attune {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs `attune ARGS` under `strace`, killed at the `n`-th rename.
    fn run_strace(&self, n: usize, args: &[&str]) -> Output {
        let inject = format!("inject=rename,renameat,renameat2:signal=SIGKILL:when={n}");
        self.command(
            &["strace", "-f", "-qq", "-o", "/dev/null", "-e", &inject],
            None,
            args,
        )
        .output()
        .unwrap()
    }

    /// Starts a daemon (`replay` of a short fixture, as fast as possible) and waits for it to
    /// end: it opens the data directory (recovery included) like `attune run` does.
    pub fn daemon_start(&self) {
        let fixture = fixture("pyhrv-short-rr.attune.ndjson");
        let o = self.run(
            None,
            &["replay", fixture.to_str().unwrap(), "--speed", "max"],
        );
        assert!(
            o.status.success(),
            "daemon: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn history(&self, p: &str) -> Vec<Value> {
        let out = self.ok(&["consent", "history", "--participant", p, "--json"]);
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        v["events"].as_array().unwrap().clone()
    }
}

/// Gives `p` consent (process, record, profile) and a store: a recording carrying `rec`, 2,000
/// feature rows, and a profile carrying `prof`.
pub fn participant_with_data(d: &Dir, p: &str, rec: &str, prof: &str) {
    d.ok(&grant(p, "all", "process,record,profile"));
    let id = ParticipantId::new(p).unwrap();
    let s = ParticipantStore::open(&d.data, &id).unwrap();
    s.put_recording("session1", &simulated_recording(&id, 20.0, 5, rec))
        .unwrap();
    for i in 0..2000u32 {
        s.put_features(&FeatureFrame {
            t: f64::from(i) * 0.25,
            values: [Some(60.0 + f64::from(i % 9)), None, Some(2.5), None],
            sources: FEATURE_SOURCES,
            beats_corrected: None,
            spectral: Default::default(),
        })
        .unwrap();
    }
    s.put_profile("baseline", &serde_json::json!({ "note": prof }))
        .unwrap();
    s.close().unwrap();
    assert!(
        scan(&d.data, rec) > 0 && scan(&d.data, prof) > 0,
        "positive control"
    );
}

/// (recordings, feature rows, profile entries) that `export` writes, or None if it refuses
/// because the participant has no data.
fn exported(d: &Dir, p: &str) -> Option<(u64, u64, u64)> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = d.data.parent().unwrap().join(format!("export-{n}"));
    let o = d.run(
        None,
        &["export", "--participant", p, "--out", out.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    if !o.status.success() {
        assert!(err.contains("has no data"), "export: {err}");
        return None;
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let num = |what: &str| -> u64 {
        let before = text.split(what).next().unwrap();
        before
            .rsplit(' ')
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    Some((
        num(" recordings"),
        num(" feature rows"),
        num(" profile entries"),
    ))
}

fn staging_dirs(d: &Dir) -> Vec<String> {
    std::fs::read_dir(d.data.join("participants"))
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

fn count(events: &[Value], action: &str) -> usize {
    events.iter().filter(|e| e["action"] == action).count()
}

/// The state after a revocation of `record` has converged.
fn assert_record_revoked(d: &Dir, p: &str, rec: &str, prof: &str, trial: &str) {
    let out = d.ok(&["consent", "show", "--participant", p, "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let lines = v["lines"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .filter(|l| l["purpose"] == "record")
            .all(|l| l["status"] == "revoked"),
        "{trial}: record is not revoked: {out}"
    );
    let h = d.history(p);
    let receipts: Vec<&Value> = h
        .iter()
        .filter(|e| e["action"] == "data_erased" && e["purpose"] == "record")
        .collect();
    assert_eq!(receipts.len(), 1, "{trial}: one data_erased receipt: {h:?}");
    let revoke_seq = h
        .iter()
        .filter(|e| e["action"] == "revoke")
        .map(|e| e["seq"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(receipts[0]["seq"].as_u64().unwrap() > revoke_seq, "{trial}");
    assert_eq!(
        exported(d, p),
        Some((0, 0, 1)),
        "{trial}: export after the revocation (recordings, features, profile)"
    );
    assert_eq!(scan(&d.data, rec), 0, "{trial}: a recording byte survived");
    assert!(
        scan(&d.data, prof) > 0,
        "{trial}: the profile was not covered"
    );
    assert_eq!(staging_dirs(d), Vec::<String>::new(), "{trial}");
}

/// The state after a forget has converged.
fn assert_forgotten(d: &Dir, p: &str, rec: &str, prof: &str, trial: &str) {
    let out = d.ok(&["consent", "show", "--participant", p, "--json"]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        v["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "revoked"),
        "{trial}: consent survived forget: {out}"
    );
    let h = d.history(p);
    assert_eq!(count(&h, "erased"), 1, "{trial}: one erased receipt: {h:?}");
    assert_eq!(exported(d, p), None, "{trial}: export found data");
    assert_eq!(scan(&d.data, rec), 0, "{trial}: a recording byte survived");
    assert_eq!(scan(&d.data, prof), 0, "{trial}: a profile byte survived");
    assert_eq!(staging_dirs(d), Vec::<String>::new(), "{trial}");
}

const REVOKE: [&str; 9] = [
    "consent",
    "revoke",
    "--participant",
    "p01",
    "--stream",
    "all",
    "--purpose",
    "record",
    "--json",
];
const FORGET: [&str; 5] = ["forget", "--participant", "p01", "--by", "researcher1"];

fn on_revoke_path(step: &str) -> bool {
    step.starts_with("append.revoke.")
        || step.starts_with("erase_parts.")
        || step.starts_with("append.data_erased.")
        || step == "complete.before"
}

fn on_forget_path(step: &str) -> bool {
    step.starts_with("append.forget_requested.")
        || step.starts_with("forget.")
        || step.starts_with("append.erased.")
        || step == "complete.before"
}

/// Runs `op` killed at `step`, then recovers: by a command (killed at the same step again
/// where recovery meets it) or by a daemon start.
fn crash_at(d: &Dir, op: &[&str], step: &str, on_path: bool, by_daemon: bool) {
    let o = d.run(Some(step), op);
    if on_path {
        assert_eq!(
            o.status.signal(),
            Some(9),
            "{step}: the failpoint did not fire (stderr: {})",
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        assert!(
            o.status.success(),
            "{step}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    if by_daemon {
        d.daemon_start();
    } else {
        // Recovery meets the same step again (and dies there) where it is on its path.
        let again = d.run(Some(step), &["consent", "verify"]);
        assert!(
            again.status.success() || again.status.signal() == Some(9),
            "{step}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
}

#[test]
fn every_failpoint_is_on_a_path() {
    for s in STEPS {
        assert!(
            on_revoke_path(s) || on_forget_path(s),
            "{s} is tested by nothing"
        );
    }
}

#[test]
fn revoking_record_killed_at_every_step_converges() {
    for (i, step) in STEPS.iter().enumerate() {
        let d = Dir::new();
        let (rec, prof) = (
            format!("REC-{i:02}-c0ffee77aa"),
            format!("PROF-{i:02}-beef99dd"),
        );
        participant_with_data(&d, "p01", &rec, &prof);
        let by_daemon = i % 2 == 1;
        crash_at(&d, &REVOKE, step, on_revoke_path(step), by_daemon);
        let trial = format!(
            "revoke killed at {step}, recovered by {}",
            if by_daemon {
                "a daemon start"
            } else {
                "a command"
            }
        );
        assert_record_revoked(&d, "p01", &rec, &prof, &trial);
        // Recovery is idempotent: another daemon start adds no second receipt.
        d.daemon_start();
        assert_record_revoked(&d, "p01", &rec, &prof, &trial);
    }
}

#[test]
fn forget_killed_at_every_step_converges() {
    for (i, step) in STEPS.iter().enumerate() {
        let d = Dir::new();
        let (rec, prof) = (
            format!("REC-{i:02}-f0f0a1b2c3"),
            format!("PROF-{i:02}-d4e5f6a7"),
        );
        participant_with_data(&d, "p01", &rec, &prof);
        let by_daemon = i % 2 == 0;
        crash_at(&d, &FORGET, step, on_forget_path(step), by_daemon);
        let trial = format!(
            "forget killed at {step}, recovered by {}",
            if by_daemon {
                "a daemon start"
            } else {
                "a command"
            }
        );
        assert_forgotten(&d, "p01", &rec, &prof, &trial);
        d.daemon_start();
        assert_forgotten(&d, "p01", &rec, &prof, &trial);
    }
}

/// SIGKILL at the n-th rename, for every n until the command finishes unharmed. A kill
/// before the `intent` event is durable must leave everything as it was; any later one must
/// converge (`check`).
fn strace_trials(op: &[&str], intent: &str, check: fn(&Dir, &str, &str, &str, &str)) {
    match Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .output()
    {
        Err(_) => {
            eprintln!("skipped: strace is not installed (apt-get install strace)");
            return;
        }
        Ok(o) if !o.status.success() => {
            eprintln!(
                "skipped: strace cannot trace here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Ok(_) => {}
    }
    for n in 1..=40 {
        let d = Dir::new();
        let (rec, prof) = (
            format!("REC-{n:02}-5eed5eed11"),
            format!("PROF-{n:02}-a11ce0b0"),
        );
        participant_with_data(&d, "p01", &rec, &prof);
        let o = d.run_strace(n, op);
        let killed = o.status.signal() == Some(9);
        if !killed {
            assert!(
                o.status.success(),
                "rename {n}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        if n % 2 == 0 {
            d.daemon_start();
        }
        let trial = format!("killed at rename {n}");
        let h = d.history("p01");
        if count(&h, intent) == 0 {
            // Killed before the intent was durable: the command was never acknowledged, and
            // nothing may have changed.
            assert!(killed, "{trial}: acknowledged without its intent event");
            assert_eq!(
                exported(&d, "p01"),
                Some((1, 2000, 1)),
                "{trial}: data lost"
            );
            assert!(
                scan(&d.data, &rec) > 0 && scan(&d.data, &prof) > 0,
                "{trial}"
            );
        } else {
            check(&d, "p01", &rec, &prof, &trial);
        }
        if !killed {
            assert!(
                n > 2,
                "the operation renamed nothing: strace injection did not work"
            );
            eprintln!(
                "{op:?}: killed at each of its {} renames, then it finished",
                n - 1
            );
            return;
        }
    }
    panic!("the operation was still being killed after 40 renames");
}

#[test]
fn revoking_record_killed_at_each_rename_converges() {
    strace_trials(&REVOKE, "revoke", assert_record_revoked);
}

#[test]
fn forget_killed_at_each_rename_converges() {
    strace_trials(&FORGET, "forget_requested", assert_forgotten);
}

impl Dir {
    /// Starts a long replay daemon on this data directory (dying at `failpoint` if given) and
    /// waits until its control socket answers.
    fn daemon(&self, failpoint: Option<&str>) -> std::process::Child {
        let fixture = fixture("sim-rest-stress.attune.ndjson");
        let mut c = self.command(
            &[],
            failpoint,
            &["replay", fixture.to_str().unwrap(), "--speed", "1"],
        );
        let child = c
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_socket(&self.sock.with_file_name("control.sock"));
        child
    }
}

#[test]
fn a_daemon_killed_mid_erasure_converges_at_its_next_start() {
    for (op, on_path, check) in [
        (
            &REVOKE[..],
            on_revoke_path as fn(&str) -> bool,
            assert_record_revoked as fn(&Dir, &str, &str, &str, &str),
        ),
        (&FORGET[..], on_forget_path, assert_forgotten),
    ] {
        for (i, step) in STEPS.iter().filter(|s| on_path(s)).enumerate() {
            let d = Dir::new();
            let (rec, prof) = (
                format!("REC-{i:02}-da3a0a1b2c"),
                format!("PROF-{i:02}-da3a0d4e"),
            );
            participant_with_data(&d, "p01", &rec, &prof);
            let mut daemon = d.daemon(Some(step));
            let o = d.run(None, op);
            let status = daemon.wait().unwrap();
            assert_eq!(
                status.signal(),
                Some(9),
                "{op:?} {step}: the daemon's failpoint did not fire"
            );
            assert!(
                !o.status.success(),
                "{step}: acknowledged although the daemon died"
            );
            let mut daemon = d.daemon(None);
            let trial = format!("daemon killed at {step} during {op:?}");
            check(&d, "p01", &rec, &prof, &trial);
            daemon.kill().unwrap();
            daemon.wait().unwrap();
        }
    }
}
