//! The daemon and stored profiles: a replayed session under `profile` consent leaves a profile,
//! the next session uses it (`personal`) and refines it; without consent nothing is stored.

use crate::util::{
    Subscriber, grant, json, run_attune_in, run_attune_within, wait_for_socket, wait_within,
};
use attune::baseline::profile::{PROFILE_ENTRY, Profile};
use attune::consent::Purpose;
use attune::model::ParticipantId;
use attune::recording::{Record, Writer};
use attune::simulate::{Scenario, SimConfig, simulate};
use attune::store::participant::ParticipantStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A 5-minute rest recording of p01 whose manifest grants `profile` too when `profile` is set.
fn recording(dir: &Path, profile: bool) -> PathBuf {
    let p = ParticipantId::new("p01").unwrap();
    let mut sim = simulate(&SimConfig {
        scenario: Scenario::Rest,
        duration_s: 300.0,
        seed: 5,
        participant: p,
        eda_rate_hz: 32.0,
    });
    if profile {
        sim.header.consent.grants[0].purposes.push(Purpose::Profile);
    }
    let mut w = Writer::new(Vec::new(), &sim.header).unwrap();
    for r in &sim.records {
        match r {
            Record::Chunk(c) => w.chunk(c.kind.name(), c).unwrap(),
            Record::Gap(g) => w.gap(g.kind.name(), g).unwrap(),
            Record::Marker(m) => w.marker(m).unwrap(),
            Record::State(s) => w.state(s.kind.name(), s).unwrap(),
        }
    }
    let path = dir.join(if profile {
        "with.ndjson"
    } else {
        "without.ndjson"
    });
    std::fs::write(&path, w.finish().unwrap()).unwrap();
    path
}

fn stored(data: &Path) -> Option<Profile> {
    let p = ParticipantId::new("p01").unwrap();
    let store = ParticipantStore::open_existing(data, &p).ok()?;
    let v = store.profile(PROFILE_ENTRY).unwrap();
    store.close().unwrap();
    v.map(|v| Profile::from_value(v, &p).unwrap())
}

fn replay(dir: &Path, file: &Path) {
    let socket = dir.join("run").join("s.sock");
    let data = dir.join("data");
    let (code, _, err) = run_attune_within(
        &[
            "replay",
            file.to_str().unwrap(),
            "--speed",
            "max",
            "--socket",
            socket.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        120,
    );
    assert_eq!(code, Some(0), "{err}");
}

/// A fresh directory with its data dir and socket path, p01 granted `process,adapt,profile`
/// in the ledger, and the 5-minute rest recording whose manifest grants `profile`.
fn granted() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("s.sock");
    let file = recording(dir.path(), true);
    let (code, _, err) = run_attune_in(
        &socket,
        &data,
        &grant("p01", "all", "process,adapt,profile"),
    );
    assert_eq!(code, Some(0), "{err}");
    (dir, data, socket, file)
}

/// Starts `attune replay FILE ARGS` on `socket` and `data` (output discarded).
fn spawn_replay(file: &Path, socket: &Path, data: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_attune"))
        .arg("replay")
        .arg(file)
        .args(args)
        .arg("--socket")
        .arg(socket)
        .arg("--data-dir")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_session_under_profile_consent_stores_a_profile_that_the_next_session_uses() {
    let (dir, data, socket, file) = granted();
    assert!(stored(&data).is_none());
    replay(dir.path(), &file);
    let first = stored(&data).expect("the session left a profile");
    assert_eq!(first.sessions, 1);
    assert!(first.feedback_shift_z.is_finite());

    // The next session starts from the profile: its first decision already says `personal`.
    let mut child = spawn_replay(
        &file,
        &socket,
        &data,
        &["--speed", "max", "--wait-subscribers", "1"],
    );
    wait_for_socket(&socket);
    let mut sub = Subscriber::connect(&socket, &["adaptation"]);
    let kinds: Vec<String> = sub
        .all_lines()
        .iter()
        .map(|l| json(l))
        .filter(|v| v["type"] == "adaptation")
        .filter_map(|v| v["reason"]["baseline"]["kind"].as_str().map(str::to_owned))
        .collect();
    let status = wait_within(&mut child, 120, "the replay");
    assert!(status.success());
    assert!(!kinds.is_empty());
    assert!(kinds.iter().all(|k| k == "personal"), "{kinds:?}");
    let second = stored(&data).unwrap();
    assert_eq!(second.sessions, 2, "{:?}", second.history);
    assert_eq!(second.history.len(), 2);
}

#[test]
fn without_profile_consent_a_session_stores_no_profile() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("s.sock");
    // The ledger grants `profile`, but the recording's consent did not: replay grants no more.
    let (code, _, err) = run_attune_in(
        &socket,
        &data,
        &grant("p01", "all", "process,adapt,profile"),
    );
    assert_eq!(code, Some(0), "{err}");
    replay(dir.path(), &recording(dir.path(), false));
    assert!(stored(&data).is_none());
    // The recording grants it, the ledger does not.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let socket = dir.path().join("run").join("s.sock");
    let (code, _, err) = run_attune_in(&socket, &data, &grant("p01", "all", "process"));
    assert_eq!(code, Some(0), "{err}");
    replay(dir.path(), &recording(dir.path(), true));
    assert!(stored(&data).is_none());
}

#[test]
fn calibrate_live_recalibrates_in_the_session_and_stores_the_profile_once() {
    let (_dir, data, socket, file) = granted();
    // 300 s of rest at 10x: the request lands in the first minute, before the session's own
    // 180 s calibration is done, so the requested 1-minute calibration replaces it.
    let mut child = spawn_replay(&file, &socket, &data, &["--speed", "10"]);
    wait_for_socket(&socket);
    // Bad requests: one line each, nothing changes.
    let (code, _, err) = run_attune_in(
        &socket,
        &data,
        &[
            "calibrate",
            "--participant",
            "p01",
            "--live",
            "--minutes",
            "0.5",
        ],
    );
    assert_ne!(code, Some(0));
    assert!(
        err.contains("between 1 and 30") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (code, _, err) = run_attune_in(
        &socket,
        &data,
        &["calibrate", "--participant", "p09", "--live"],
    );
    assert_ne!(code, Some(0));
    assert!(err.contains("not in this session"), "{err}");

    let (code, out, err) = run_attune_in(
        &socket,
        &data,
        &[
            "calibrate",
            "--participant",
            "p01",
            "--live",
            "--minutes",
            "1",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let v = json(out.trim());
    assert_eq!(v["live"], true, "{v}");
    assert_eq!(v["kind"], "session", "{v}");
    assert!(v["requested_t"].as_f64().unwrap() < 120.0, "{v}");
    let hr = v["centres"]["hr_bpm"].as_f64().unwrap();
    assert!((40.0..110.0).contains(&hr), "{v}");
    assert!(v["profile"].as_str().unwrap().starts_with("stored"), "{v}");
    // Stored at once, with its cluster model.
    let now = stored(&data).expect("the live calibration was stored");
    assert_eq!(now.sessions, 1);
    assert!(now.model.is_some());
    let status = wait_within(&mut child, 120, "the replay");
    assert!(status.success());
    // The session's end does not take the same calibration a second time.
    let end = stored(&data).unwrap();
    assert_eq!(end.sessions, 1, "{:?}", end.history);
    assert_eq!(end.history.len(), 1, "{:?}", end.history);
}
