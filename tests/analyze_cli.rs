//! `attune analyze` as a researcher runs it: CSVs and recordings in, one JSON object out, and a
//! clear one-line error for every kind of bad input.

use crate::util::{fixture, json, run_attune};

fn analyze(args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["analyze"];
    all.extend_from_slice(args);
    run_attune(&all)
}

fn signal(name: &str) -> String {
    fixture(&format!("signals/{name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn outputs_one_json_object_with_the_documented_keys() {
    let (code, out, err) = analyze(&[
        &signal("mitbih208_ecg_360hz.csv"),
        "--kind",
        "ecg",
        "--rate",
        "360",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1);
    let m = json(out.trim());
    for k in [
        "beats",
        "hr_mean_bpm",
        "mean_nn_ms",
        "sdnn_ms",
        "rmssd_ms",
        "pnn50_pct",
        "lf_ms2",
        "hf_ms2",
        "lf_hf",
        "warnings",
    ] {
        assert!(m.get(k).is_some(), "missing {k}: {m}");
    }
    assert_eq!(m["beats"], 503);
    let (code, out, _) = analyze(&[&signal("bsn_eda_10hz.csv"), "--kind", "eda", "--rate", "10"]);
    assert_eq!(code, Some(0));
    let m = json(out.trim());
    for k in ["scr_count", "scl_mean_us", "scr_amp_mean_us", "scr_per_min"] {
        assert!(m.get(k).is_some(), "missing {k}: {m}");
    }
    assert_eq!(m["scr_count"], 4);
    let (code, out, _) = analyze(&[&signal("pyhrv_nn_short.csv"), "--kind", "rr"]);
    assert_eq!(code, Some(0));
    assert_eq!(json(out.trim())["beats"], 338);
}

#[test]
fn lf_on_a_short_record_is_null_with_a_reason() {
    let (code, out, _) = analyze(&[
        &signal("pyhrv_ecg_1000hz.csv"),
        "--kind",
        "ecg",
        "--rate",
        "1000",
    ]);
    assert_eq!(code, Some(0));
    let m = json(out.trim());
    assert!(m["lf_ms2"].is_null() && m["lf_hf"].is_null());
    let w = m["warnings"].to_string();
    assert!(w.contains("lf_ms2 is null"), "{w}");
}

#[test]
fn recordings_are_analysed_per_stream_and_windows_are_ndjson() {
    let rec = fixture("sim-rest-stress.attune.ndjson");
    let rec = rec.to_str().unwrap();
    let (code, out, err) = analyze(&[rec, "--kind", "rr"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(json(out.trim())["beats"].as_u64().unwrap() > 600);
    let (code, out, err) = analyze(&[rec, "--kind", "eda", "--windows"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<_> = out.lines().map(json).collect();
    // 600 s in 60 s windows every 15 s.
    assert_eq!(lines.len(), 37);
    assert!(
        lines
            .iter()
            .all(|l| l["method"] == "streaming" && l["scl_mean_us"].is_number())
    );
    let (code, _, err) = analyze(&[rec, "--kind", "ecg"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("has no ecg stream"), "{err}");
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let letters = write("letters.csv", "ecg\n0.1\n0.2\nabc\n");
    let empty = write("empty.csv", "");
    let header_only = write("header.csv", "ecg\n");
    let short = write("short.csv", &format!("ecg\n{}", "0.1\n".repeat(10)));
    let nan = write("nan.csv", "ecg\nNaN\nNaN\n");
    let seconds = write("seconds.csv", "rr\n0.85\n0.9\n0.8\n");
    let mitbih = signal("mitbih208_ecg_360hz.csv");
    let nn = signal("pyhrv_nn_short.csv");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![&letters, "--kind", "ecg", "--rate", "100"],
            "line 4, column \"ecg\": \"abc\" is not a number",
        ),
        (
            vec![&empty, "--kind", "ecg", "--rate", "100"],
            "the file is empty",
        ),
        (
            vec![&header_only, "--kind", "ecg", "--rate", "100"],
            "no data rows",
        ),
        (vec![&short, "--kind", "ecg", "--rate", "100"], "too short"),
        (
            vec![&nan, "--kind", "ecg", "--rate", "100"],
            "no finite value",
        ),
        (vec![&seconds, "--kind", "rr"], "are the values in seconds?"),
        (vec![&mitbih, "--kind", "ecg"], "needs a sampling rate"),
        (
            vec![&mitbih, "--kind", "ecg", "--rate", "-5"],
            "not plausible",
        ),
        (
            vec![&mitbih, "--kind", "ecg", "--rate", "1e9"],
            "not plausible",
        ),
        (
            vec![
                &mitbih, "--kind", "ecg", "--rate", "360", "--column", "lead2",
            ],
            "no column named \"lead2\" (columns: ecg_mv)",
        ),
        (
            vec!["/nonexistent.csv", "--kind", "ecg", "--rate", "360"],
            "cannot read /nonexistent.csv",
        ),
        (vec![&nn, "--kind", "rr", "--rate", "4"], "takes no --rate"),
    ];
    for (args, want) in cases {
        let (code, out, err) = analyze(&args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: output on error: {out}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn a_recording_without_process_consent_is_not_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("sim-rest-stress.attune.ndjson"))
        .unwrap()
        .replacen(
            r#""purposes":["process","adapt","share_features","record"]"#,
            r#""purposes":["adapt"]"#,
            1,
        );
    let p = dir.path().join("no-process.attune.ndjson");
    std::fs::write(&p, text).unwrap();
    let (code, out, err) = analyze(&[p.to_str().unwrap(), "--kind", "eda"]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert!(
        err.contains("does not allow processing its eda stream"),
        "{err}"
    );
}
