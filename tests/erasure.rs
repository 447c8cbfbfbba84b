//! Erasure and export (issue 4, items 6 and 7): `forget` leaves no byte of a participant's data
//! under the data directory and does not touch anyone else's; export → forget → import → export
//! gives the same data and the same bytes; bad input gets a typed error and changes nothing.
//!
//! Each scan reads every byte of every file under the data directory. A scan that finds nothing
//! proves something only if the same scan finds the marker before the erasure, so every test
//! checks that first (the positive control).

use attune::consent::ConsentManifest;
use attune::features::{FEATURE_SOURCES, FeatureFrame};
use attune::model::{Chunk, ParticipantId, StreamKind, Timing};
use attune::recording::{
    Device, FORMAT_NAME, FORMAT_VERSION, Header, Marker, Provenance, StreamSpec, Writer,
};
use attune::store::export::{EXPORT_VERSION, ExportSummary, export, import};
use attune::store::participant::{
    FeatureRow, Part, ParticipantStore, RECORDING_PART_BYTES, StoreError, erase_parts, forget,
    participant_dir,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

/// A 16-byte ASCII marker no other test (or run) uses: hex of a hash of the process, the time
/// and a counter.
fn marker() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = format!(
        "{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let hex: String = Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let m = hex[..16].to_owned();
    assert_eq!(m.len(), 16);
    m
}

/// An SCL value whose JSON text (as the store writes it) is at least 16 bytes, derived from a
/// marker: the features' own marker.
fn marker_float(m: &str) -> (f64, String) {
    // 15 significant digits, the last one non-zero: every such decimal survives the trip
    // through an f64, and its shortest form is itself, 16 bytes long (`1dd.dddddddddddd`).
    let mut digits: Vec<u8> = m.bytes().map(|b| b'0' + b % 10).take(14).collect();
    if digits[13] == b'0' {
        digits[13] = b'7';
    }
    let d = String::from_utf8(digits).unwrap();
    let text = format!("1{}.{}", &d[..2], &d[2..]);
    let v: f64 = text.parse().unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), text);
    assert_eq!(text.len(), 16);
    (v, text)
}

/// A valid recording of `p`: an event marker labelled `label`, then `chunks` chunks of 4 Hz EDA
/// (about 1.9 kB each, so 40 chunks span more than one stored part).
fn recording(p: &str, label: &str, chunks: u64) -> Vec<u8> {
    let header = Header {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        participant: pid(p),
        streams: vec![StreamSpec {
            id: "eda".into(),
            kind: "eda".into(),
            unit: "uS".into(),
            rate_hz: Some(4.0),
            device: Device {
                conversion: None,
                name: "attune-simulator".into(),
                protocol: "synthetic".into(),
                firmware: None,
            },
        }],
        consent: ConsentManifest::default(),
        provenance: Provenance {
            source: "tests/erasure.rs".into(),
            licence: "CC0-1.0".into(),
            attribution: None,
            generator: None,
        },
        segments: vec![],
    };
    let mut w = Writer::new(Vec::new(), &header).unwrap();
    w.marker(&Marker {
        host_t: 0.0,
        t: 0.0,
        label: label.into(),
        data: None,
    })
    .unwrap();
    for seq in 0..chunks {
        let t0 = seq as f64 * 25.0;
        let samples = (0..100)
            .map(|i| 2.0 + ((seq * 100 + i) as f64 * 0.37).sin() * 0.1)
            .collect();
        let c = Chunk {
            raw: None,
            meta: None,
            participant: pid(p),
            kind: StreamKind::Eda,
            seq,
            host_t: t0 + 25.0,
            timing: Timing::Uniform { t0, rate_hz: 4.0 },
            samples,
        };
        w.chunk("eda", &c).unwrap();
    }
    w.finish().unwrap()
}

fn frame(t: f64, values: [Option<f64>; 4]) -> FeatureFrame {
    FeatureFrame {
        t,
        values,
        sources: FEATURE_SOURCES,
        beats_corrected: None,
        spectral: Default::default(),
    }
}

/// Every regular file under `dir`, recursively, with its content.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Occurrences of `needle` in every byte of every file under `dir`.
fn scan(dir: &Path, needle: &str) -> usize {
    files_under(dir)
        .values()
        .map(|bytes| occurrences(bytes, needle.as_bytes()))
        .sum()
}

fn checksums(dir: &Path) -> BTreeMap<PathBuf, String> {
    files_under(dir)
        .into_iter()
        .map(|(p, bytes)| {
            let hex = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            (p, hex)
        })
        .collect()
}

/// Everything a store holds, read through its API.
#[derive(Debug, PartialEq)]
struct Contents {
    recordings: Vec<(String, Vec<u8>)>,
    profile: Vec<(String, Value)>,
    /// Rows with their values as bit patterns, so -0.0 and every last bit count.
    features: Vec<(u64, [Option<u64>; 4], StreamKind)>,
    feedback: Vec<(u64, Value)>,
}

fn contents(data_dir: &Path, p: &ParticipantId) -> Contents {
    let s = ParticipantStore::open_existing(data_dir, p).unwrap();
    let c = Contents {
        recordings: s
            .recording_names()
            .unwrap()
            .into_iter()
            .map(|n| {
                let bytes = s.recording(&n).unwrap().unwrap();
                (n, bytes)
            })
            .collect(),
        profile: s.profile_entries().unwrap(),
        features: s
            .feature_rows()
            .unwrap()
            .iter()
            .map(|r: &FeatureRow| (r.t_ms, r.values().map(|v| v.map(f64::to_bits)), r.hr_source))
            .collect(),
        feedback: s.feedback_entries().unwrap(),
    };
    s.close().unwrap();
    c
}

/// Fills `p`'s store: a two-part recording, profile entries, 10 min of 4 Hz features and
/// feedback, with `m` in the recording, the profile and the feedback, and `m`'s float in the
/// features. Returns the features' marker text.
fn fill(data_dir: &Path, p: &ParticipantId, m: &str) -> String {
    let (fv, ftext) = marker_float(m);
    let s = ParticipantStore::open(data_dir, p).unwrap();
    let rec = recording(p.as_str(), &format!("stress_onset {m}"), 40);
    assert!(
        rec.len() > RECORDING_PART_BYTES,
        "the recording spans parts"
    );
    s.put_recording("session-1", &rec).unwrap();
    s.put_recording("session-2", &recording(p.as_str(), "rest", 3))
        .unwrap();
    s.put_profile(
        "baseline",
        &json!({"note": format!("calibrated {m}"), "scl_median_us": 2.5, "hr_median_bpm": 61.25}),
    )
    .unwrap();
    s.put_profile(
        "clusters",
        &json!([[0.1, 0.2], [1e-300, -0.0], [12345678901234567u64]]),
    )
    .unwrap();
    for i in 0..2400u32 {
        let t = f64::from(i) * 0.25;
        let hr = (i % 7 != 0).then(|| 60.0 + (f64::from(i) * 0.013).sin() * 5.0);
        let scl = if i == 1000 {
            Some(fv)
        } else {
            Some(2.0 + f64::from(i) * 1e-4)
        };
        let scr = (i >= 240).then_some(f64::from(i % 4));
        s.put_features(&frame(t, [hr, None, scl, scr])).unwrap();
    }
    s.append_feedback(&json!({"type": "feedback", "rating": "too_intense", "note": m}))
        .unwrap();
    s.append_feedback(&json!({"type": "feedback", "rating": "right", "t": 301.5}))
        .unwrap();
    s.flush().unwrap();
    s.close().unwrap();
    ftext
}

#[test]
fn forget_leaves_no_copy_of_the_marker_and_spares_the_others() {
    let data = tempfile::tempdir().unwrap();
    let (p01, p02) = (pid("p01"), pid("p02"));
    let (m, other) = (marker(), marker());
    let fm = fill(data.path(), &p01, &m);
    fill(data.path(), &p02, &other);

    // Positive control, and the measurement: what sled left on disk before the directory goes.
    let in_p01 = scan(&participant_dir(data.path(), &p01), &m);
    let in_all = scan(data.path(), &m);
    let f_in_all = scan(data.path(), &fm);
    eprintln!(
        "before forget: marker copies under p01's directory {in_p01}, under the data directory \
         {in_all}; feature-marker copies {f_in_all}"
    );
    assert!(
        in_p01 >= 3,
        "recording, profile and feedback each hold the marker: {in_p01}"
    );
    assert_eq!(in_all, in_p01, "only p01's directory holds p01's marker");
    assert!(f_in_all >= 1);
    let before = checksums(&participant_dir(data.path(), &p02));
    let p02_data = contents(data.path(), &p02);
    // contents() reopened p02: take the checksums again, as forget will find them.
    let before_reopen = checksums(&participant_dir(data.path(), &p02));
    assert!(!before.is_empty() && !before_reopen.is_empty());

    let receipt = forget(data.path(), &p01, 1_700_000_000_123).unwrap();
    assert_eq!(receipt.participant, p01);
    assert_eq!(receipt.at_unix_ms, 1_700_000_000_123);
    assert_eq!(receipt.parts, Part::ALL.to_vec());
    assert!(
        receipt.files_removed >= 2 && receipt.bytes_removed > 0,
        "{receipt:?}"
    );
    eprintln!("receipt: {receipt:?}");
    let receipt_json = serde_json::to_string(&receipt).unwrap();
    assert!(!receipt_json.contains(&m));
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&receipt_json)
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "participant",
            "at_unix_ms",
            "parts",
            "files_removed",
            "bytes_removed"
        ]
    );

    // Every byte of every file under the data directory.
    assert_eq!(scan(data.path(), &m), 0);
    assert_eq!(scan(data.path(), &fm), 0);
    for path in files_under(data.path()).keys() {
        assert!(
            !path.to_string_lossy().contains("p01"),
            "{path:?} left behind"
        );
    }
    assert!(!participant_dir(data.path(), &p01).exists());

    // The other participant: byte-identical and still readable.
    assert_eq!(
        checksums(&participant_dir(data.path(), &p02)),
        before_reopen
    );
    assert_eq!(contents(data.path(), &p02), p02_data);
    assert!(scan(data.path(), &other) >= 3);

    // Forgotten means unknown from now on.
    let err = ParticipantStore::open_existing(data.path(), &p01).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownParticipant { .. }),
        "{err}"
    );
}

#[test]
fn sled_keeps_removed_values_on_disk_which_is_why_forget_deletes_directories() {
    // The measurement behind the design (RELIABILITY.md, "Erasure"), repeated here so that a
    // sled upgrade that changes it is noticed.
    let dir = tempfile::tempdir().unwrap();
    let m = marker();
    {
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(8 * 1024 * 1024)
            .open()
            .unwrap();
        for i in 0..200u32 {
            db.insert(i.to_be_bytes(), format!("value {i} {m}").as_bytes())
                .unwrap();
        }
        db.flush().unwrap();
        for i in 0..200u32 {
            db.remove(i.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
        assert!(db.is_empty());
    }
    let left = scan(dir.path(), &m);
    eprintln!("sled 0.34: {left} marker copies on disk after removing all 200 keys and closing");
    assert!(left > 0);
}

#[test]
fn revoking_record_erases_recordings_and_features_and_keeps_the_profile() {
    let data = tempfile::tempdir().unwrap();
    let p = pid("p07");
    let (m, keep) = (marker(), marker());
    let (fv, ftext) = marker_float(&m);
    {
        let s = ParticipantStore::open(data.path(), &p).unwrap();
        s.put_recording("s1", &recording("p07", &m, 40)).unwrap();
        s.put_features(&frame(1.0, [Some(61.0), None, Some(fv), None]))
            .unwrap();
        s.put_profile("baseline", &json!({"note": keep})).unwrap();
        s.append_feedback(&json!({"note": keep})).unwrap();
        s.close().unwrap();
    }
    assert!(scan(data.path(), &m) >= 1 && scan(data.path(), &ftext) >= 1);
    let r = erase_parts(data.path(), &p, &[Part::Features, Part::Recordings], 42).unwrap();
    assert_eq!(r.parts, vec![Part::Recordings, Part::Features]);
    assert!(r.files_removed > 0);
    assert_eq!(scan(data.path(), &m), 0);
    assert_eq!(scan(data.path(), &ftext), 0);
    let c = contents(data.path(), &p);
    assert!(c.recordings.is_empty() && c.features.is_empty());
    assert_eq!(
        c.profile,
        vec![("baseline".to_owned(), json!({"note": keep}))]
    );
    assert_eq!(c.feedback, vec![(0, json!({"note": keep}))]);
    let names: Vec<String> = std::fs::read_dir(data.path().join("participants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["p07"], "no temporary directory is left");
}

fn consent_history(p: &str) -> Vec<Value> {
    vec![
        json!({"seq": 0, "event": "grant", "participant": p, "stream": "all",
               "purposes": ["process", "record", "profile"], "at": "2025-11-25T10:00:00Z",
               "by": "researcher-1", "text_version": "v3", "hash": "ab12"}),
        json!({"seq": 1, "event": "revoke", "participant": p, "stream": "eda",
               "purposes": ["share_raw"], "at": "2025-11-25T10:05:00Z", "by": "p01", "hash": "cd34"}),
    ]
}

#[test]
fn export_forget_import_export_restores_the_same_data_and_the_same_bytes() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = pid("p01");
    let m = marker();
    fill(data.path(), &p, &m);
    fill(data.path(), &pid("p02"), &marker());
    let history = consent_history("p01");
    let before = contents(data.path(), &p);

    let first = export(data.path(), &p, &history, &out.path().join("one")).unwrap();
    assert_eq!(first.counts.recordings, 2);
    assert_eq!(first.counts.profile_entries, 2);
    assert_eq!(first.counts.feature_rows, 2400);
    assert_eq!(first.counts.feedback_entries, 2);
    assert_eq!(first.counts.consent_events, 2);
    check_manifest(&first);

    forget(data.path(), &p, 0).unwrap();
    assert_eq!(scan(data.path(), &m), 0);

    let imported = import(data.path(), &first.dir).unwrap();
    assert_eq!(imported.participant, p);
    assert_eq!(imported.counts, first.counts);
    assert_eq!(imported.consent_history, history);
    assert_eq!(contents(data.path(), &p), before, "field for field");

    let second = export(
        data.path(),
        &p,
        &imported.consent_history,
        &out.path().join("two"),
    )
    .unwrap();
    assert_eq!(second.files, first.files);
    let (a, b) = (files_under(&first.dir), files_under(&second.dir));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same files"
    );
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{path:?} differs");
    }
    let names: Vec<String> = std::fs::read_dir(data.path().join("participants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
}

/// The manifest is the documented one and its checksums are right; the features CSV reads back.
fn check_manifest(s: &ExportSummary) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(s.dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "attune-export");
    assert_eq!(manifest["version"], EXPORT_VERSION);
    assert_eq!(manifest["participant"], s.participant.as_str());
    let files = manifest["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "consent_history.jsonl",
            "features.csv",
            "feedback.jsonl",
            "profile.json",
            "recordings/session-1.attune.ndjson",
            "recordings/session-2.attune.ndjson",
        ]
    );
    for f in files {
        let bytes = std::fs::read(s.dir.join(f["path"].as_str().unwrap())).unwrap();
        let hex: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(f["sha256"], hex.as_str());
        assert_eq!(f["bytes"], bytes.len());
    }
    let csv = std::fs::read_to_string(s.dir.join("features.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("t_s,hr_bpm,rmssd_ms,scl_us,scr_per_min,hr_source")
    );
    assert_eq!(lines.next(), Some("0.000,,,2.0,,rr"));
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&s.dir), 0o700);
    assert_eq!(mode(&s.dir.join("manifest.json")), 0o600);
}

/// Rewrites one export file and, optionally, fixes its manifest entry.
fn tamper(dir: &Path, file: &str, edit: impl Fn(&mut Vec<u8>)) {
    let path = dir.join(file);
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    for (rel, bytes) in files_under(from) {
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn bad_input_gets_a_clear_typed_error_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let p = pid("p01");
    fill(data.path(), &p, &marker());

    // Forgetting someone unknown.
    let err = forget(data.path(), &pid("p99"), 0).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownParticipant { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("p99"), "{err}");

    // Forgetting, exporting or importing while a store is open in this process.
    let open = ParticipantStore::open(data.path(), &p).unwrap();
    let err = forget(data.path(), &p, 0).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    let err = export(data.path(), &p, &[], &out.path().join("x")).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    open.close().unwrap();

    // Another process holding sled's lock (a second open file description of `db` locked the
    // way sled locks it).
    let db = std::fs::File::open(participant_dir(data.path(), &p).join("db")).unwrap();
    db.try_lock().unwrap();
    let err = forget(data.path(), &p, 0).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    let err = ParticipantStore::open(data.path(), &p).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(db);

    // Recordings that are not recordings, or someone else's.
    let s = ParticipantStore::open(data.path(), &p).unwrap();
    let err = s.put_recording("x", b"not a recording\n").unwrap_err();
    assert!(matches!(err, StoreError::BadRecording { .. }), "{err}");
    let err = s
        .put_recording("x", &recording("p02", "rest", 1))
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongParticipant { .. }), "{err}");
    let err = s
        .put_recording("../x", &recording("p01", "rest", 1))
        .unwrap_err();
    assert!(matches!(err, StoreError::BadName { .. }), "{err}");
    let err = s.put_features(&frame(f64::NAN, [None; 4])).unwrap_err();
    assert!(matches!(err, StoreError::BadFeatures { .. }), "{err}");
    assert_eq!(s.recording_names().unwrap(), ["session-1", "session-2"]);
    s.close().unwrap();

    // Export targets.
    let good = export(
        data.path(),
        &p,
        &consent_history("p01"),
        &out.path().join("good"),
    )
    .unwrap();
    let err = export(data.path(), &p, &[], &good.dir).unwrap_err();
    assert!(matches!(err, StoreError::OutDirExists { .. }), "{err}");
    let inside = data.path().join("exports").join("p01");
    let err = export(data.path(), &p, &[], &inside).unwrap_err();
    assert!(
        matches!(err, StoreError::ExportInsideDataDir { .. }),
        "{err}"
    );
    assert!(!inside.exists());

    // Import onto an existing participant.
    let err = import(data.path(), &good.dir).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");

    // Into a fresh data directory: tampered, unknown version, not an export.
    let fresh = tempfile::tempdir().unwrap();
    let variant = |name: &str| {
        let d = out.path().join(name);
        copy_dir(&good.dir, &d);
        d
    };
    let tampered = variant("tampered");
    tamper(&tampered, "features.csv", |b| {
        let i = b.len() - 10;
        b[i] = if b[i] == b'1' { b'2' } else { b'1' };
    });
    let err = import(fresh.path(), &tampered).unwrap_err();
    match &err {
        StoreError::ChecksumMismatch { file, .. } => assert_eq!(file, "features.csv"),
        _ => panic!("{err}"),
    }
    let shortened = variant("shortened");
    tamper(&shortened, "recordings/session-2.attune.ndjson", |b| {
        b.truncate(b.len() / 2)
    });
    let err = import(fresh.path(), &shortened).unwrap_err();
    assert!(matches!(err, StoreError::ChecksumMismatch { .. }), "{err}");

    let v2 = variant("v2");
    tamper(&v2, "manifest.json", |b| {
        let s = String::from_utf8(b.clone()).unwrap();
        *b = s
            .replacen("\"version\": 1", "\"version\": 2", 1)
            .into_bytes();
    });
    let err = import(fresh.path(), &v2).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnsupportedExportVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );

    let err = import(fresh.path(), out.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotAnExport { .. }), "{err}");

    // A manifest that lists a path outside the export.
    let escape = variant("escape");
    tamper(&escape, "manifest.json", |b| {
        let s = String::from_utf8(b.clone()).unwrap();
        *b = s
            .replacen("recordings/session-2", "recordings/../../session-2", 1)
            .into_bytes();
    });
    let err = import(fresh.path(), &escape).unwrap_err();
    assert!(matches!(err, StoreError::BadExport { .. }), "{err}");

    // None of it left anything behind.
    assert!(
        files_under(fresh.path()).is_empty(),
        "{:?}",
        files_under(fresh.path())
    );
    let names: Vec<String> = std::fs::read_dir(data.path().join("participants"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["p01"]);

    // And the intact export still imports.
    import(fresh.path(), &good.dir).unwrap();
}

/// Every 16-byte window of lowercase hex found in any file under `dir`: one pass over every byte
/// finds all markers at once (markers are 16 hex characters; the byte-wise scan of the other
/// tests costs one pass per marker).
fn hex_words(dir: &Path) -> std::collections::HashSet<Vec<u8>> {
    let mut out = std::collections::HashSet::new();
    for bytes in files_under(dir).values() {
        let mut run = 0usize;
        for (i, b) in bytes.iter().enumerate() {
            run = if b.is_ascii_digit() || (b'a'..=b'f').contains(b) {
                run + 1
            } else {
                0
            };
            if run >= 16 {
                out.insert(bytes[i + 1 - 16..=i].to_vec());
            }
        }
    }
    out
}

/// A reference model: what each participant should hold.
#[derive(Default, Clone)]
struct Model {
    recordings: BTreeMap<String, Vec<u8>>,
    profile: BTreeMap<String, Value>,
    features: BTreeMap<u64, [Option<u64>; 4]>,
    feedback: Vec<Value>,
    /// Every marker written into this participant's data since it was last forgotten,
    /// including those of values overwritten since (sled keeps those bytes too).
    written: Vec<String>,
}

impl Model {
    /// The markers in values the store still holds: these must be on disk.
    fn live_markers(&self) -> Vec<String> {
        let label = |b: &Vec<u8>| {
            let text = String::from_utf8_lossy(b);
            let i = text.find("\"label\":\"").unwrap() + 9;
            text[i..i + 16].to_owned()
        };
        let field = |v: &Value| v["m"].as_str().unwrap().to_owned();
        let mut out: Vec<String> = self.recordings.values().map(label).collect();
        out.extend(self.profile.values().map(field));
        out.extend(self.feedback.iter().map(field));
        out
    }
}

#[test]
fn random_sequences_of_writes_forgets_and_round_trips_match_a_model() {
    for seed in [1u64, 2, 3] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let ids = ["p01", "p02", "p03"];
        let mut model: BTreeMap<&str, Model> = BTreeMap::new();
        let mut forgotten: Vec<String> = Vec::new();
        for step in 0..40 {
            let id = ids[rng.random_range(0..ids.len())];
            let p = pid(id);
            match rng.random_range(0..10) {
                0..=5 => {
                    // A session's worth of writes.
                    let m = marker();
                    let s = ParticipantStore::open(data.path(), &p).unwrap();
                    let e = model.entry(id).or_default();
                    match rng.random_range(0..4) {
                        0 => {
                            let name = format!("s{}", rng.random_range(0..3));
                            let bytes = recording(id, &m, rng.random_range(1..50));
                            s.put_recording(&name, &bytes).unwrap();
                            e.recordings.insert(name, bytes);
                        }
                        1 => {
                            let name = format!("entry{}", rng.random_range(0..3));
                            let v = json!({"m": m, "x": rng.random::<f64>()});
                            s.put_profile(&name, &v).unwrap();
                            e.profile.insert(name, v);
                        }
                        2 => {
                            let t_ms = rng.random_range(0..100_000u64) * 250;
                            let v = [
                                Some(rng.random::<f64>() * 100.0),
                                None,
                                rng.random_bool(0.5).then(|| rng.random::<f64>()),
                                Some(-0.0),
                            ];
                            s.put_features(&frame(t_ms as f64 / 1000.0, v)).unwrap();
                            e.features.insert(t_ms, v.map(|x| x.map(f64::to_bits)));
                        }
                        _ => {
                            let v = json!({"rating": "right", "m": m});
                            let seq = s.append_feedback(&v).unwrap();
                            assert_eq!(seq, e.feedback.len() as u64);
                            e.feedback.push(v);
                        }
                    }
                    e.written.push(m);
                    s.close().unwrap();
                }
                6..=7 => {
                    let r = forget(data.path(), &p, step);
                    match model.remove(id) {
                        Some(e) => {
                            r.unwrap();
                            forgotten.extend(e.written);
                        }
                        None => {
                            assert!(matches!(r, Err(StoreError::UnknownParticipant { .. })))
                        }
                    }
                }
                _ => {
                    // Export, forget, import: nothing changes.
                    if model.contains_key(id) {
                        let dir = out.path().join(format!("{seed}-{step}"));
                        let s1 = export(data.path(), &p, &[json!({"step": step})], &dir).unwrap();
                        forget(data.path(), &p, step).unwrap();
                        let i = import(data.path(), &s1.dir).unwrap();
                        assert_eq!(i.counts, s1.counts);
                    }
                }
            }
            // Compare every participant with the model.
            for (id, e) in &model {
                let c = contents(data.path(), &pid(id));
                assert_eq!(
                    c.recordings,
                    e.recordings.clone().into_iter().collect::<Vec<_>>(),
                    "seed {seed} step {step} {id}"
                );
                assert_eq!(c.profile, e.profile.clone().into_iter().collect::<Vec<_>>());
                let feats: Vec<_> = c.features.iter().map(|(t, v, _)| (*t, *v)).collect();
                assert_eq!(feats, e.features.clone().into_iter().collect::<Vec<_>>());
                let fb: Vec<_> = c.feedback.into_iter().map(|(_, v)| v).collect();
                assert_eq!(fb, e.feedback);
            }
            // Nothing of a forgotten participant is on disk; everything live is.
            let on_disk = hex_words(data.path());
            for m in &forgotten {
                assert!(
                    !on_disk.contains(m.as_bytes()),
                    "seed {seed} step {step}: forgotten marker {m} on disk"
                );
            }
            for e in model.values() {
                for m in &e.live_markers() {
                    assert!(
                        on_disk.contains(m.as_bytes()),
                        "seed {seed} step {step}: live marker {m} missing"
                    );
                }
            }
        }
    }
}

#[test]
fn recovery_finishes_an_erasure_that_a_crash_interrupted() {
    let data = tempfile::tempdir().unwrap();
    let parts = data.path().join("participants");
    let rename = |from: &str, to: &str| std::fs::rename(parts.join(from), parts.join(to)).unwrap();

    // forget crashed after its rename: the .forget- directory goes.
    let m1 = marker();
    fill(data.path(), &pid("p01"), &m1);
    rename("p01", ".forget-p01");
    // erase_parts crashed between its renames: the complete copy takes the old one's place.
    let (m3, keep) = (marker(), marker());
    fill(data.path(), &pid("p03"), &m3);
    let s = ParticipantStore::open(data.path(), &pid("p06")).unwrap();
    s.put_profile("baseline", &json!({"m": keep})).unwrap();
    s.close().unwrap();
    rename("p03", ".forget-p03");
    rename("p06", ".rewrite-p03");
    // erase_parts crashed while copying: the partial copy goes, the store stays.
    let m4 = marker();
    fill(data.path(), &pid("p04"), &m4);
    let s = ParticipantStore::open(data.path(), &pid("p05")).unwrap();
    s.put_profile("partial", &json!({"m": m4})).unwrap();
    s.close().unwrap();
    let p04 = contents(data.path(), &pid("p04"));
    rename("p05", ".rewrite-p04");

    assert!(scan(data.path(), &m1) > 0 && scan(data.path(), &m3) > 0);
    let touched = attune::store::participant::recover(data.path()).unwrap();
    assert_eq!(touched, [pid("p01"), pid("p03"), pid("p04")]);
    assert_eq!(scan(data.path(), &m1), 0);
    assert_eq!(scan(data.path(), &m3), 0);
    assert_eq!(
        attune::store::participant::list_participants(data.path()).unwrap(),
        [pid("p03"), pid("p04")]
    );
    let p03 = contents(data.path(), &pid("p03"));
    assert_eq!(
        p03.profile,
        vec![("baseline".to_owned(), json!({"m": keep}))]
    );
    assert!(p03.recordings.is_empty());
    assert_eq!(contents(data.path(), &pid("p04")), p04);
    let names: Vec<String> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");
}
