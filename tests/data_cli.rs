//! `attune forget`, `export`, `import` through the real binary, with the consent ledger.

use crate::util::{grant, json, revoke, run_attune_in, scan, simulated_recording};
use attune::model::ParticipantId;
use attune::store::participant::ParticipantStore;
use std::path::Path;

fn attune(data: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    run_attune_in(
        &data.parent().unwrap().join("run").join("s.sock"),
        data,
        args,
    )
}

#[test]
fn export_forget_import_with_the_ledger_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let marker = b"MARKER-7f3a9c1e2b";
    let p = ParticipantId::new("p01").unwrap();
    // Consent first: a data directory whose participants/ holds stores but has no ledger is
    // refused (a deleted ledger must not pass for a new one).
    let (code, _, err) = attune(&data, &grant("p01", "all", "process,record"));
    assert_eq!(code, Some(0), "{err}");
    // A participant with a recording and a profile that both carry the marker.
    {
        let recording = simulated_recording(&p, 60.0, 3, &String::from_utf8_lossy(marker));
        let store = ParticipantStore::open(&data, &p).unwrap();
        store.put_recording("session1", &recording).unwrap();
        store
            .put_profile(
                "baseline",
                &serde_json::json!({"note": String::from_utf8_lossy(marker)}),
            )
            .unwrap();
        store.flush().unwrap();
        store.close().unwrap();
    }
    assert!(
        scan(&data, marker) > 0,
        "positive control: the marker is on disk"
    );

    let export1 = dir.path().join("export1");
    let (code, out, err) = attune(
        &data,
        &[
            "export",
            "--participant",
            "p01",
            "--out",
            export1.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("2 consent events, 1 recordings"), "{out}");

    let (code, out, err) = attune(
        &data,
        &["forget", "--participant", "p01", "--by", "researcher1"],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("forgot p01") && out.contains("erasure receipt is ledger event 3"),
        "{out}"
    );
    assert_eq!(
        scan(&data, marker),
        0,
        "a copy of the marker survived forget"
    );
    let (code, out, _) = attune(
        &data,
        &["consent", "show", "--participant", "p01", "--json"],
    );
    assert_eq!(code, Some(0));
    assert!(
        json(out.trim())["lines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["status"] == "revoked")
    );
    let (code, out, _) = attune(
        &data,
        &["consent", "history", "--participant", "p01", "--json"],
    );
    assert_eq!(code, Some(0));
    let last = json(out.trim())["events"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(
        (last["action"].as_str(), last["by"].as_str()),
        (Some("erased"), Some("researcher1"))
    );
    assert!(!out.contains("MARKER"), "the receipt holds no data");

    // Import stores data again only under a live `record` consent: forget revoked it.
    let (code, _, err) = attune(&data, &["import", export1.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no live `record` consent"), "{err}");
    // The export holds a recording and a profile: both consents are needed.
    assert_eq!(attune(&data, &grant("p01", "all", "record")).0, Some(0));
    let (code, _, err) = attune(&data, &["import", export1.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no live `profile` consent for all streams"),
        "{err}"
    );
    assert_eq!(attune(&data, &grant("p01", "all", "profile")).0, Some(0));
    let (code, out, err) = attune(&data, &["import", export1.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("imported p01: 1 recordings"), "{out}");
    let export2 = dir.path().join("export2");
    let (code, _, err) = attune(
        &data,
        &[
            "export",
            "--participant",
            "p01",
            "--out",
            export2.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    for f in [
        "recordings/session1.attune.ndjson",
        "profile.json",
        "features.csv",
        "feedback.jsonl",
    ] {
        assert_eq!(
            std::fs::read(export1.join(f)).unwrap(),
            std::fs::read(export2.join(f)).unwrap(),
            "{f} differs after export, forget, import, export"
        );
    }

    // Bad input.
    let (code, _, err) = attune(&data, &["forget", "--participant", "nobody"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no data and no consent recorded"), "{err}");
    let (code, _, err) = attune(&data, &["forget", "--participant", ".."]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn revoking_profile_consent_erases_the_profile_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = ParticipantId::new("p02").unwrap();
    let profile_marker = b"PROFILE-MARK-91c2";
    assert_eq!(
        attune(&data, &grant("p02", "all", "process,profile")).0,
        Some(0)
    );
    {
        let store = ParticipantStore::open(&data, &p).unwrap();
        store
            .put_profile(
                "baseline",
                &serde_json::json!({"m": String::from_utf8_lossy(profile_marker)}),
            )
            .unwrap();
        store
            .append_feedback(&serde_json::json!({"rating": "right"}))
            .unwrap();
        store.flush().unwrap();
        store.close().unwrap();
    }
    assert!(scan(&data, profile_marker) > 0);
    let (code, out, err) = attune(&data, &revoke("p02", "all", "profile"));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("erased profile of p02"), "{out}");
    assert!(
        out.contains("data_erased p02 profile"),
        "the receipt is printed: {out}"
    );
    assert_eq!(
        scan(&data, profile_marker),
        0,
        "the profile survived the revocation"
    );
    let store = ParticipantStore::open(&data, &p).unwrap();
    assert_eq!(
        store.feedback_entries().unwrap().len(),
        1,
        "feedback was not covered"
    );
    store.close().unwrap();
}

/// `import` checks consent per part and stream kind, reads only regular files, and needs the
/// data directory itself (no daemon).
#[test]
fn import_needs_every_consent_its_parts_need_a_regular_manifest_and_no_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = ParticipantId::new("p01").unwrap();
    assert_eq!(
        attune(&data, &grant("p01", "all", "process,record")).0,
        Some(0)
    );
    let recording = simulated_recording(&p, 60.0, 3, "x");
    let store = ParticipantStore::open(&data, &p).unwrap();
    store.put_recording("session1", &recording).unwrap();
    store.close().unwrap();
    let export1 = dir.path().join("export1");
    let x = export1.to_str().unwrap();
    let (code, _, err) = attune(&data, &["export", "--participant", "p01", "--out", x]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        attune(&data, &["forget", "--participant", "p01"]).0,
        Some(0)
    );

    // `record` for one kind does not cover a recording of others.
    assert_eq!(attune(&data, &grant("p01", "hr", "record")).0, Some(0));
    let (code, _, err) = attune(&data, &["import", x]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("no live `record` consent for ") && err.contains("nothing was imported"),
        "{err}"
    );
    assert!(!data.join("participants").join("p01").exists());

    // A FIFO as manifest is refused at once, not waited on.
    let fifo_dir = dir.path().join("fifo-export");
    std::fs::create_dir(&fifo_dir).unwrap();
    nix::unistd::mkfifo(
        &fifo_dir.join("manifest.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let (code, _, err) = crate::util::run_attune_within(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "import",
            fifo_dir.to_str().unwrap(),
        ],
        20,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a regular file"), "{err}");

    assert_eq!(attune(&data, &grant("p01", "all", "record")).0, Some(0));
    let (code, out, err) = attune(&data, &["import", x]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("imported p01: 1 recordings"), "{out}");

    // With a daemon holding its data directory, import is refused, naming the control socket.
    let mut d = crate::util::Daemon::replay(
        &crate::util::fixture("sim-rest-stress.attune.ndjson"),
        &["--speed", "1"],
    );
    assert_eq!(d.cli(&grant("p01", "all", "record")).0, Some(0));
    let (code, _, err) = d.cli(&["import", x]);
    let _ = d.child.kill();
    let _ = d.child.wait();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("stop the daemon, then import") && err.contains("control.sock"),
        "{err}"
    );
    assert!(!d.data().join("participants").join("p01").exists());
}
