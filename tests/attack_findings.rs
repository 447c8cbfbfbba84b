//! Regressions found by attacking the hardened daemon as a hostile local user, a bad file or a
//! crash would: import restores only what is consented (read once, regular files, never
//! racing a revocation), and the data directory trusts no link or foreign owner in it.

use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, symlink};

/// Releases a FIFO writer that is still waiting for a reader, then joins it.
fn finish_fifo(path: &Path, t: std::thread::JoinHandle<()>) {
    while !t.is_finished() {
        let _ = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(path);
        std::thread::sleep(Duration::from_millis(20));
    }
    t.join().unwrap();
}
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_attune")
}

/// A temp data directory and socket path.
struct Env {
    tmp: tempfile::TempDir,
    data: PathBuf,
    sock: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let sock = tmp.path().join("run").join("attune.sock");
        Env { tmp, data, sock }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data-dir")
            .arg(&self.data)
            .arg("--socket")
            .arg(&self.sock)
            .args(args)
            .env_remove("ATTUNE_FAILPOINT")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let o = self.cmd(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (o.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "attune {args:?} failed: {text}");
        text
    }

    fn store(&self, p: &str) -> PathBuf {
        self.data.join("participants").join(p)
    }

    /// Starts a long replay daemon and waits for its control socket.
    fn daemon(&self) -> std::process::Child {
        let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/sim-rest-stress.attune.ndjson");
        let child = self
            .cmd(&["replay", fixture.to_str().unwrap(), "--speed", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let control = self.sock.with_file_name("control.sock");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&control).is_err() {
            assert!(Instant::now() < deadline, "the daemon never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Writes the files of an export of `participant` (one recording, the given profile) into
/// `dir` and returns the manifest's bytes (not written).
fn export_files(dir: &Path, participant: &str, recording: &str, profile: &str) -> Vec<u8> {
    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sim-rest-stress.attune.ndjson");
    let text = std::fs::read_to_string(fixture).unwrap();
    let (head, body) = text.split_once('\n').unwrap();
    let mut h: serde_json::Value = serde_json::from_str(head).unwrap();
    h["participant"] = participant.into();
    let rec = format!("{h}\n{body}");
    let rec_path = format!("recordings/{recording}.attune.ndjson");
    let files: Vec<(String, Vec<u8>)> = vec![
        ("consent_history.jsonl".into(), Vec::new()),
        (
            "features.csv".into(),
            b"t_s,hr_bpm,rmssd_ms,scl_us,scr_per_min,hr_source\n".to_vec(),
        ),
        ("feedback.jsonl".into(), Vec::new()),
        ("profile.json".into(), profile.as_bytes().to_vec()),
        (rec_path, rec.into_bytes()),
    ];
    std::fs::create_dir_all(dir.join("recordings")).unwrap();
    let mut listed = Vec::new();
    for (p, b) in &files {
        std::fs::write(dir.join(p), b).unwrap();
        listed.push(serde_json::json!({"path": p, "bytes": b.len(), "sha256": sha(b)}));
    }
    let n_profile = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(profile)
        .unwrap()
        .len();
    let m = serde_json::json!({
        "format": "attune-export", "version": 1, "participant": participant,
        "counts": {"consent_events": 0, "profile_entries": n_profile, "feature_rows": 0,
                   "feedback_entries": 0, "recordings": 1},
        "files": listed,
    });
    serde_json::to_vec_pretty(&m).unwrap()
}

/// Serves `contents[i]` to the i-th reader of the FIFO at `path`, calling `between(i)` before
/// serving each one; returns the thread.
fn serve_fifo(
    path: &Path,
    contents: Vec<Vec<u8>>,
    between: impl Fn(usize) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let path = path.to_owned();
    std::thread::spawn(move || {
        for (i, c) in contents.into_iter().enumerate() {
            between(i);
            // Blocks until the importer opens the manifest.
            let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            let _ = f.write_all(&c);
            drop(f);
            // Let that reader finish and close before the next content is offered (a reader
            // still open would get both contents). The importer reads its manifest in
            // microseconds and opens it again only after a round trip.
            std::thread::sleep(Duration::from_millis(300));
        }
    })
}

/// Finding 1: `import` restores a profile (baseline) with no `profile` consent at all, and all
/// recordings on a `record` consent for one stream kind (`cli::data::run_import` checks "any
/// `record` line is granted"; `export::import` stores every part).
#[test]
fn import_needs_the_consent_of_what_it_restores() {
    let e = Env::new();
    e.ok(&[
        "consent",
        "grant",
        "--participant",
        "p01",
        "--stream",
        "hr",
        "--purpose",
        "record",
    ]);
    let x = e.tmp.path().join("export");
    let m = export_files(&x, "p01", "r1", r#"{"baseline": {"a": 1}}"#);
    std::fs::write(x.join("manifest.json"), m).unwrap();
    let (ok, text) = e.run(&["import", x.to_str().unwrap()]);
    let out = e.tmp.path().join("out");
    let profile_kept = ok
        && e.run(&[
            "export",
            "--participant",
            "p01",
            "--out",
            out.to_str().unwrap(),
        ])
        .0
        && std::fs::read_to_string(out.join("profile.json"))
            .unwrap()
            .contains("baseline");
    assert!(
        !profile_kept,
        "import stored a profile without `profile` consent (and eda/rr recordings on an hr-only `record` consent): {text}"
    );
}

/// Finding 2: `run_import` reads `manifest.json` once to check consent and `export::import`
/// reads it again to import: the participant checked is not the participant imported.
#[test]
fn import_checks_the_participant_it_imports() {
    let e = Env::new();
    e.ok(&[
        "consent",
        "grant",
        "--participant",
        "p01",
        "--stream",
        "all",
        "--purpose",
        "process,record",
    ]);
    let x = e.tmp.path().join("export");
    let consented = export_files(&x, "p01", "r1", "{}");
    let stranger = export_files(&x, "p03", "r3", "{}");
    let t = serve_fifo(&x.join("manifest.json"), vec![consented, stranger], |_| {});
    let (_ok, text) = e.run(&["import", x.to_str().unwrap()]);
    finish_fifo(&x.join("manifest.json"), t);
    assert!(
        !e.store("p03").exists(),
        "p03, who never consented to anything, now has a store: {text}"
    );
}

/// Finding 3: with a daemon running, `import` holds nothing between its consent check and the
/// rename of its store: a `record` revocation acknowledged in between ("0 files erased") is
/// followed by the imported data, stored under no consent.
#[test]
fn an_import_cannot_outlive_a_revocation_acknowledged_during_it() {
    let e = Env::new();
    e.ok(&[
        "consent",
        "grant",
        "--participant",
        "p01",
        "--stream",
        "all",
        "--purpose",
        "process,record",
    ]);
    let mut daemon = e.daemon();
    let x = e.tmp.path().join("export");
    let m = export_files(&x, "p01", "r1", "{}");
    let args = vec![
        "--data-dir".to_owned(),
        e.data.display().to_string(),
        "--socket".to_owned(),
        e.sock.display().to_string(),
    ];
    let t = serve_fifo(&x.join("manifest.json"), vec![m.clone(), m], move |i| {
        if i == 1 {
            // The consent check has read the manifest once; revoke before the import proper.
            let o = Command::new(bin())
                .args(&args)
                .args([
                    "consent",
                    "revoke",
                    "--participant",
                    "p01",
                    "--stream",
                    "all",
                    "--purpose",
                    "record",
                ])
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
        }
    });
    let (_ok, text) = e.run(&["import", x.to_str().unwrap()]);
    finish_fifo(&x.join("manifest.json"), t);
    let stored = e.store("p01").exists();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        !stored,
        "p01's data is stored after `record` was revoked and its erasure acknowledged: {text}"
    );
}

/// Finding 4a: the data directory is used whoever owns it and whatever its entries are: the
/// `ledger.head` temp file is created through a symlink planted in it, overwriting the
/// link's target (`store::ledger::write_head`, `File::create` follows symlinks).
#[test]
fn a_symlink_in_the_data_dir_does_not_redirect_writes() {
    let e = Env::new();
    e.ok(&[
        "consent",
        "grant",
        "--participant",
        "p01",
        "--stream",
        "all",
        "--purpose",
        "process",
    ]);
    let victim = e.tmp.path().join("victim.conf");
    std::fs::write(&victim, b"precious\n").unwrap();
    symlink(&victim, e.data.join("ledger.head.tmp")).unwrap();
    let _ = e.run(&[
        "consent",
        "grant",
        "--participant",
        "p02",
        "--stream",
        "all",
        "--purpose",
        "process",
    ]);
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"precious\n",
        "a write to the data directory followed a planted symlink and overwrote its target"
    );
}

/// Finding 4b: `participants/` replaced by a symlink makes `forget` delete a directory named
/// after the participant wherever the link points (`store::participant::forget`).
#[test]
fn forget_does_not_follow_a_symlinked_participants_dir() {
    let e = Env::new();
    e.ok(&[
        "consent",
        "grant",
        "--participant",
        "p09",
        "--stream",
        "all",
        "--purpose",
        "process",
    ]);
    let elsewhere = e.tmp.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("p09")).unwrap();
    std::fs::write(elsewhere.join("p09/important.txt"), b"x").unwrap();
    let _ = std::fs::remove_dir_all(e.data.join("participants"));
    symlink(&elsewhere, e.data.join("participants")).unwrap();
    let (_ok, text) = e.run(&["forget", "--participant", "p09"]);
    assert!(
        elsewhere.join("p09/important.txt").exists(),
        "forget deleted a directory outside the data directory through a symlink: {text}"
    );
}

/// Finding 4c (root only): a data directory owned by another user is used as is.
#[test]
fn a_data_dir_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let e = Env::new();
    std::fs::create_dir(&e.data).unwrap();
    nix::unistd::chown(
        &e.data,
        Some(nix::unistd::Uid::from_raw(65534)),
        Some(nix::unistd::Gid::from_raw(65534)),
    )
    .unwrap();
    let (ok, text) = e.run(&[
        "consent",
        "grant",
        "--participant",
        "p01",
        "--stream",
        "all",
        "--purpose",
        "process",
    ]);
    assert!(
        !ok,
        "consent was written into a data directory owned by uid 65534: {text}"
    );
}
