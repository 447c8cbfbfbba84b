//! `attune calibrate` and the stored baseline profile: consent, refusals, export, forget, import.

use crate::util::{grant, json, run_attune, run_attune_in, scan};
use attune::baseline::profile::{PROFILE_ENTRY, Profile};
use attune::baseline::score::{BaselineKind, RefStat, Reference};
use attune::model::ParticipantId;
use attune::store::participant::{ParticipantStore, participant_dir};
use std::path::{Path, PathBuf};

fn attune(data: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    run_attune_in(
        &data.parent().unwrap().join("run").join("s.sock"),
        data,
        args,
    )
}

/// `attune simulate` of `participant` into `dir/name`.
fn recording(dir: &Path, name: &str, participant: &str, scenario: &str, minutes: &str) -> PathBuf {
    let out = dir.join(name);
    let (code, _, err) = run_attune(&[
        "simulate",
        "--out",
        out.to_str().unwrap(),
        "--scenario",
        scenario,
        "--minutes",
        minutes,
        "--participant",
        participant,
    ]);
    assert_eq!(code, Some(0), "{err}");
    out
}

fn stored(data: &Path, p: &str) -> Option<serde_json::Value> {
    let p = ParticipantId::new(p).unwrap();
    let store = ParticipantStore::open(data, &p).unwrap();
    let v = store.profile(PROFILE_ENTRY).unwrap();
    store.close().unwrap();
    v
}

fn one_line_error(err: &str) -> &str {
    let line = err.trim_end();
    assert!(!line.contains('\n'), "not one line: {err:?}");
    assert!(line.starts_with("attune: "), "{err:?}");
    line
}

#[test]
fn calibrate_creates_then_refines_and_refuses_an_aroused_session() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rest = recording(dir.path(), "rest.ndjson", "p01", "rest", "5");
    let stressed = recording(dir.path(), "ss.ndjson", "p01", "stressed-start", "6");
    let (code, _, err) = attune(&data, &grant("p01", "all", "process,profile"));
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = attune(
        &data,
        &["calibrate", "--participant", "p01", rest.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    let s = json(out.trim());
    assert_eq!(s["participant"], "p01");
    assert_eq!(s["taken"], true);
    assert_eq!(s["created"], true);
    assert_eq!(s["sessions"], 1);
    assert!(s["windows"].as_u64().unwrap() >= 6, "{s}");
    let hr = s["centres"]["hr_bpm"].as_f64().unwrap();
    assert!((40.0..120.0).contains(&hr), "hr in bpm: {s}");
    let rmssd = s["centres"]["rmssd_ms"].as_f64().unwrap();
    assert!((5.0..200.0).contains(&rmssd), "rmssd in ms, not ln ms: {s}");
    let p = Profile::from_value(
        stored(&data, "p01").expect("stored"),
        &ParticipantId::new("p01").unwrap(),
    )
    .unwrap();
    assert_eq!(p.sessions, 1);
    assert_eq!(p.reference().kind, BaselineKind::Personal);

    // The same calm recording again: taken, blended (with itself), two sessions.
    let (code, out, err) = attune(
        &data,
        &["calibrate", "--participant", "p01", rest.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{err}");
    let s = json(out.trim());
    assert_eq!(
        (s["taken"].as_bool(), s["sessions"].as_u64()),
        (Some(true), Some(2)),
        "{s}"
    );

    // A calibration that starts aroused: refused against the profile, only history changes.
    let before = stored(&data, "p01").unwrap();
    let (code, out, err) = attune(
        &data,
        &[
            "calibrate",
            "--participant",
            "p01",
            stressed.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let s = json(out.trim());
    assert_eq!(s["taken"], false, "{s}");
    assert!(
        s["refused"]
            .as_str()
            .unwrap()
            .contains("aroused calibration is not taken as calm"),
        "{s}"
    );
    assert_eq!(s["sessions"], 2);
    let after = stored(&data, "p01").unwrap();
    assert_eq!(after["reference"], before["reference"]);
    assert_eq!(after["history"].as_array().unwrap().len(), 3);
    assert_eq!(after["history"][2]["taken"], false);
}

#[test]
fn calibrate_refuses_without_profile_consent_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let rest = recording(dir.path(), "rest.ndjson", "p01", "rest", "4");
    let (code, _, err) = attune(&data, &grant("p01", "all", "process,record"));
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = attune(
        &data,
        &["calibrate", "--participant", "p01", rest.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{out}");
    let line = one_line_error(&err);
    assert!(line.contains("no live `profile` consent"), "{line}");
    assert!(out.is_empty(), "{out}");
    let p = ParticipantId::new("p01").unwrap();
    assert!(
        !participant_dir(&data, &p).exists(),
        "nothing may be written"
    );
    // `profile` for one stream only is not enough either (a profile covers every stream).
    let (code, _, err) = attune(&data, &grant("p01", "eda", "profile"));
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = attune(
        &data,
        &["calibrate", "--participant", "p01", rest.to_str().unwrap()],
    );
    assert_eq!(code, Some(1));
    assert!(one_line_error(&err).contains("`profile` consent"), "{err}");
    assert!(!participant_dir(&data, &p).exists());
}

#[test]
fn calibrate_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let short = recording(dir.path(), "short.ndjson", "p01", "rest", "2");
    let (code, _, err) = attune(&data, &grant("p01", "all", "process,profile"));
    assert_eq!(code, Some(0), "{err}");
    let cases: [(&[&str], &str); 4] = [
        (
            &["calibrate", "--participant", "p01", short.to_str().unwrap()],
            "calibration too short: found ",
        ),
        (
            &["calibrate", "--participant", "p02", short.to_str().unwrap()],
            "participant p02 is not in this recording (it holds p01)",
        ),
        (
            &["calibrate", "--participant", "p01", "/nonexistent/x.ndjson"],
            "cannot read /nonexistent/x.ndjson",
        ),
        (
            &[
                "calibrate",
                "--participant",
                "p01",
                "--live",
                "--minutes",
                "5",
            ],
            "no attune daemon is running on ",
        ),
    ];
    for (args, want) in cases {
        let (code, out, err) = attune(&data, args);
        assert_eq!(code, Some(1), "{args:?}: {out}");
        let line = one_line_error(&err);
        assert!(line.contains(want), "{args:?}: {line}");
    }
    let (_, _, err) = attune(
        &data,
        &["calibrate", "--participant", "p01", short.to_str().unwrap()],
    );
    assert!(err.contains("180 s are needed"), "{err}");
    // A 2-minute recording has less than 120 s of anything: the count says so.
    let found: f64 = err
        .split("found ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((1.0..120.0).contains(&found), "{err}");
    assert!(!participant_dir(&data, &ParticipantId::new("p01").unwrap()).exists());
}

/// 16 bytes that appear nowhere else.
const CANARY: &str = "CANARY-5e1d9b07f";

#[test]
fn export_includes_the_profile_forget_erases_it_import_restores_it_byte_for_byte() {
    assert_eq!(CANARY.len(), 16);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = ParticipantId::new("p01").unwrap();
    let (code, _, err) = attune(&data, &grant("p01", "all", "process,profile"));
    assert_eq!(code, Some(0), "{err}");
    // A profile whose data carries the canary (as an `unsupported` reason: stored as text).
    let mut r = Reference::population();
    r.kind = BaselineKind::Session;
    r.stats[0] = Some(RefStat {
        center: 61.25,
        scale: 3.0,
    });
    r.unsupported[3] = Some(CANARY);
    r.windows = 18;
    let mut profile = Profile::new(p.clone(), &r, 1_700_000_000_000);
    profile.feedback_shift_z = -0.125;
    let value = profile.to_value().unwrap();
    {
        let store = ParticipantStore::open(&data, &p).unwrap();
        store.put_profile(PROFILE_ENTRY, &value).unwrap();
        store.flush().unwrap();
        store.close().unwrap();
    }
    let before = serde_json::to_vec(&stored(&data, "p01").unwrap()).unwrap();
    assert!(
        scan(&data, CANARY) > 0,
        "positive control: the canary is on disk"
    );

    let export = dir.path().join("export");
    let (code, out, err) = attune(
        &data,
        &[
            "export",
            "--participant",
            "p01",
            "--out",
            export.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 profile entries"), "{out}");
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("profile.json")).unwrap()).unwrap();
    assert_eq!(exported[PROFILE_ENTRY], value);

    let (code, _, err) = attune(&data, &["forget", "--participant", "p01"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        scan(&data, CANARY),
        0,
        "a copy of the profile survived forget"
    );
    assert!(!participant_dir(&data, &p).exists());

    // forget revoked everything: the import needs `profile` again.
    let (code, _, err) = attune(&data, &["import", export.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(one_line_error(&err).contains("profile"), "{err}");
    let (code, _, err) = attune(&data, &grant("p01", "all", "process,profile"));
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = attune(&data, &["import", export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("1 profile entries"), "{out}");
    let after = serde_json::to_vec(&stored(&data, "p01").unwrap()).unwrap();
    assert_eq!(
        after, before,
        "import restores the stored profile byte for byte"
    );
    let back = Profile::from_value(stored(&data, "p01").unwrap(), &p).unwrap();
    assert_eq!(back, profile);
}
