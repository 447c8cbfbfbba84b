use super::import::{Contents, recording_name};
use super::*;

fn row(t_ms: u64, v: [Option<f64>; 4]) -> FeatureRow {
    FeatureRow {
        t_ms,
        hr_bpm: v[0],
        rmssd_ms: v[1],
        scl_us: v[2],
        scr_per_min: v[3],
        hr_source: StreamKind::Rr,
    }
}

#[test]
fn features_csv_round_trips_bit_for_bit() {
    let rows = vec![
        row(0, [None; 4]),
        row(250, [Some(72.5), Some(0.1 + 0.2), Some(1e-7), Some(-0.0)]),
        row(
            1_000_001,
            [Some(f64::MAX), Some(f64::MIN_POSITIVE), Some(5e-324), None],
        ),
    ];
    let csv = features_csv(&rows);
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with(
        "t_s,hr_bpm,rmssd_ms,scl_us,scr_per_min,hr_source\n0.000,,,,,rr\n0.250,72.5,"
    ));
    let back = parse_features_csv(&text).unwrap();
    assert_eq!(back.len(), rows.len());
    for (a, b) in rows.iter().zip(&back) {
        assert_eq!(a.t_ms, b.t_ms);
        let bits = |r: &FeatureRow| r.values().map(|v| v.map(f64::to_bits));
        assert_eq!(bits(a), bits(b));
    }
}

#[test]
fn features_csv_header_lists_the_feature_names() {
    let mut want = vec!["t_s"];
    want.extend(crate::features::FEATURE_NAMES);
    want.push("hr_source");
    assert_eq!(FEATURES_CSV_HEADER, want.join(","));
}

#[test]
fn bad_csv_is_refused_with_a_line() {
    let h = FEATURES_CSV_HEADER;
    for (text, line) in [
        ("nope\n".to_owned(), 1),
        (format!("{h}\n1.5,,,,,rr\n"), 2),
        (format!("{h}\n1.500,,,,\n"), 2),
        (format!("{h}\n1.500,x,,,,rr\n"), 2),
        (format!("{h}\n1.500,inf,,,,rr\n"), 2),
        (format!("{h}\n1.500,,,,,rr\n1.500,,,,,rr\n"), 3),
        (format!("{h}\n1.500,,,,,temp\n"), 2),
    ] {
        let err = parse_features_csv(&text).unwrap_err();
        assert_eq!(err.0, line, "{text:?}: {err:?}");
    }
}

#[test]
fn an_import_needs_the_consent_of_each_non_empty_part() {
    let mut profile = serde_json::Map::new();
    profile.insert("baseline".into(), serde_json::json!(1));
    let mut x = VerifiedExport {
        dir: PathBuf::from("x"),
        manifest: Manifest {
            format: EXPORT_FORMAT.into(),
            version: EXPORT_VERSION,
            participant: ParticipantId::new("p01").unwrap(),
            counts: ExportCounts::default(),
            files: Vec::new(),
        },
        contents: Contents {
            consent_history: Vec::new(),
            profile: serde_json::Map::new(),
            features: vec![row(0, [Some(60.0), None, None, Some(1.0)])],
            feedback: Vec::new(),
            recordings: Vec::new(),
            recording_kinds: BTreeSet::new(),
        },
    };
    let needs = x.needs();
    assert_eq!(needs.len(), 1);
    assert_eq!(needs[0].purpose, Purpose::Record);
    assert_eq!(needs[0].kinds, [StreamKind::Eda, StreamKind::Rr]);
    x.contents.features.clear();
    assert!(x.needs().is_empty(), "an empty export needs nothing");
    x.contents.profile = profile;
    x.contents.feedback = vec![(0, serde_json::json!({}))];
    let needs = x.needs();
    assert_eq!(
        needs.iter().map(|n| (n.purpose, n.any)).collect::<Vec<_>>(),
        [(Purpose::Profile, false), (Purpose::Process, true)]
    );
    assert_eq!(needs[0].kinds, ALL_KINDS);
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join(MANIFEST);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let err = VerifiedExport::read(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::NotAnExport { .. }), "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn recording_paths_are_checked() {
    assert_eq!(recording_name("recordings/s1.attune.ndjson"), Some("s1"));
    assert_eq!(recording_name("recordings/../x.attune.ndjson"), None);
    assert_eq!(recording_name("recordings/a/b.attune.ndjson"), None);
    assert_eq!(recording_name("/etc/passwd"), None);
}
