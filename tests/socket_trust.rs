//! Issue 1: clients trust nothing at a socket path until its directory is private and ours and
//! the daemon runs as our uid; the daemon refuses a symlinked or foreign socket directory.
//!
//! An impostor (`tests/python/fake_daemon.py`) answers like a daemon and logs how many bytes
//! each connection sent it. Each test makes exactly one check fail:
//! - directory: the impostor runs as us, but in a directory owned by uid 65534 (`nobody`);
//! - peer uid: the impostor runs as `nobody` (`setpriv`), and its bound sockets are moved into a
//!   0700 directory we own (a bound socket keeps working under a new name), so the directory
//!   passes and only `SO_PEERCRED` tells.
//!
//! Both need root (chown, setpriv); without it they say so and pass.

use crate::util::{fixture, json, run_attune};
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A 0700 directory owned by `uid`.
fn dir_owned_by(path: &Path, uid: u32) -> PathBuf {
    std::fs::create_dir(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    path.to_owned()
}

/// A running impostor; killed on drop.
struct Fake {
    child: Child,
    log: PathBuf,
}

impl Fake {
    /// Starts the impostor binding `sockets`, as `nobody` if `as_nobody`; `log` must be
    /// writable by that user.
    fn start(work: &Path, log: PathBuf, sockets: &[PathBuf], as_nobody: bool) -> Fake {
        // A copy nobody can read (the repository may sit under a private home directory).
        let script = work.join("fake_daemon.py");
        std::fs::copy(
            crate::util::root().join("tests/python/fake_daemon.py"),
            &script,
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cmd = if as_nobody {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/usr/bin/python3",
            ]);
            c
        } else {
            Command::new("/usr/bin/python3")
        };
        let mut child = cmd
            .arg(&script)
            .arg(&log)
            .args(sockets)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the impostor did not start");
        Fake { child, log }
    }

    /// The (socket name, bytes received) of every connection that has ended, after waiting
    /// until at least `n` have.
    fn connections(&self, n: usize) -> Vec<(String, usize)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let v: Vec<(String, usize)> = text
                .lines()
                .map(|l| {
                    let (name, bytes) = l.split_once(' ').unwrap();
                    (name.to_owned(), bytes.parse().unwrap())
                })
                .collect();
            if v.len() >= n || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A data directory whose ledger grants p1 process and adapt (written without a daemon).
fn ledger(work: &Path) -> PathBuf {
    let data = work.join("data");
    let (code, _, err) = run_attune(&[
        "consent",
        "grant",
        "--participant",
        "p1",
        "--stream",
        "all",
        "--purpose",
        "process,adapt",
        "--socket",
        work.join("no-daemon/attune.sock").to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    data
}

/// `adapt` for eda in the real ledger, read without a daemon.
fn adapt_status(work: &Path, data: &Path) -> String {
    let (code, out, err) = run_attune(&[
        "consent",
        "show",
        "--participant",
        "p1",
        "--json",
        "--socket",
        work.join("no-daemon/attune.sock").to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    json(out.trim())["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["stream"] == "eda" && l["purpose"] == "adapt")
        .map(|l| l["status"].as_str().unwrap().to_owned())
        .unwrap()
}

/// Runs the three commands that talk to a daemon, and the Python example client, against the
/// impostor at `socket`; each must fail with one line containing `why`.
fn every_client_refuses(socket: &Path, data: &Path, why: &str) {
    let s = socket.to_str().unwrap();
    let d = data.to_str().unwrap();
    let commands: [&[&str]; 3] = [
        &[
            "consent",
            "revoke",
            "--participant",
            "p1",
            "--stream",
            "all",
            "--purpose",
            "adapt",
            "--socket",
            s,
            "--data-dir",
            d,
        ],
        &[
            "forget",
            "--participant",
            "p1",
            "--socket",
            s,
            "--data-dir",
            d,
        ],
        &["listen", "--count", "1", "--socket", s],
    ];
    for args in commands {
        let (code, out, err) = run_attune(args);
        assert_ne!(code, Some(0), "{args:?} trusted the impostor: {out}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(
            !out.contains("flushed") && !out.contains("receipt"),
            "{out}"
        );
    }
    // The Python example client from the docs checks the same.
    let out = Command::new("python3")
        .arg(crate::util::root().join("docs/clients/attune_client.py"))
        .args(["--socket", s, "--count", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "python client: {err}");
    assert_eq!(err.trim().lines().count(), 1, "python client: {err}");
    assert!(err.contains(why), "python client: {err}");
}

#[test]
fn a_fake_daemon_in_a_directory_owned_by_another_user_gets_no_byte() {
    if !is_root() {
        eprintln!("skipped: needs root to chown a directory to uid {NOBODY}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let data = ledger(work.path());
    let foreign = dir_owned_by(&work.path().join("foreign"), NOBODY);
    let log = work.path().join("fake.log");
    let sockets = [foreign.join("attune.sock"), foreign.join("control.sock")];
    // Runs as us, so only the directory check can refuse it.
    let fake = Fake::start(work.path(), log, &sockets, false);
    every_client_refuses(&sockets[0], &data, "owner uid 65534");
    // Refused before connecting: no connection at all, so certainly no byte.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.connections(0), []);
    assert_eq!(adapt_status(work.path(), &data), "granted");
}

#[test]
fn a_fake_daemon_of_another_uid_in_our_own_directory_gets_no_byte() {
    if !is_root() {
        eprintln!("skipped: needs root to run the impostor as uid {NOBODY} (setpriv)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = ledger(work.path());
    let theirs = dir_owned_by(&work.path().join("theirs"), NOBODY);
    let ours = dir_owned_by(&work.path().join("ours"), nix::unistd::geteuid().as_raw());
    let names = ["attune.sock", "control.sock"];
    let bound: Vec<PathBuf> = names.iter().map(|n| theirs.join(n)).collect();
    let fake = Fake::start(work.path(), theirs.join("fake.log"), &bound, true);
    for n in names {
        std::fs::rename(theirs.join(n), ours.join(n)).unwrap();
    }
    every_client_refuses(&ours.join("attune.sock"), &data, "runs as uid 65534");
    // revoke and forget reach control.sock (forget stops at its first request), listen and
    // the Python client attune.sock; every connection ended without a byte.
    let conns = fake.connections(4);
    assert_eq!(conns.len(), 4, "{conns:?}");
    assert!(conns.iter().all(|(_, bytes)| *bytes == 0), "{conns:?}");
    assert_eq!(
        conns.iter().filter(|(n, _)| n == "control.sock").count(),
        2,
        "{conns:?}"
    );
    assert_eq!(adapt_status(work.path(), &data), "granted");
}

fn replay_with_socket(socket: &Path, data: &Path) -> (Option<i32>, String) {
    let (code, _, err) = run_attune(&[
        "replay",
        fixture("sim-rest-stress.attune.ndjson").to_str().unwrap(),
        "--speed",
        "max",
        "--socket",
        socket.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    (code, err)
}

#[test]
fn the_daemon_refuses_a_symlinked_or_foreign_socket_directory() {
    let work = tempfile::tempdir().unwrap();
    // A symlink to a private directory of ours: never followed.
    let real = dir_owned_by(&work.path().join("real"), nix::unistd::geteuid().as_raw());
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let (code, err) = replay_with_socket(&link.join("attune.sock"), &work.path().join("d1"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
    if !is_root() {
        eprintln!("skipped the foreign-owner cases: needs root to chown to uid {NOBODY}");
        return;
    }
    let foreign = dir_owned_by(&work.path().join("foreign"), NOBODY);
    let (code, err) = replay_with_socket(&foreign.join("attune.sock"), &work.path().join("d2"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is not private") && err.contains("owner uid 65534"),
        "{err}"
    );
    let link2 = work.path().join("link2");
    std::os::unix::fs::symlink(&foreign, &link2).unwrap();
    let (code, err) = replay_with_socket(&link2.join("attune.sock"), &work.path().join("d3"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);
}
