//! `attune evaluate` as a researcher runs it: a tiny cohort and the bundled labelled recording
//! in, one JSON object (or tables) out, and a one-line error for every kind of bad input.

use crate::util::{fixture, json, run_attune};

const SMALL: [&str; 9] = [
    "evaluate",
    "--cohort",
    "2",
    "--seed",
    "5",
    "--minutes",
    "5",
    "--scenario",
    "rest-then-stress",
];

const SUMMARY_KEYS: [&str; 17] = [
    "n_people",
    "onsets",
    "onset_delay_median_s",
    "onset_delay_p90_s",
    "missed_onsets",
    "false_ease_off_rest_frac",
    "escalate_rest_frac",
    "escalations_during_stress",
    "flips_per_min",
    "recovery_delay_median_s",
    "unrecovered",
    "ease_off_movement_frac",
    "ease_off_startle_frac",
    "initial_stress_blocks",
    "initial_stress_eased_off",
    "preempted_onsets",
    "not_eased_at_end",
];

const COUNT_KEYS: [&str; 9] = [
    "preempted_onsets",
    "not_eased_at_end",
    "initial_stress_blocks",
    "initial_stress_eased_off",
    "n_people",
    "onsets",
    "missed_onsets",
    "escalations_during_stress",
    "unrecovered",
];

/// A scenario's keys (with the per-person array `people`) or the reference rule's.
fn check_summary(s: &serde_json::Value, people_array: bool) {
    assert_eq!(
        s.get("people").is_some_and(|p| p.is_array()),
        people_array,
        "{s}"
    );
    for k in SUMMARY_KEYS {
        let v = s.get(k).unwrap_or_else(|| panic!("no {k} in {s}"));
        if COUNT_KEYS.contains(&k) {
            assert!(v.is_u64(), "{k}: {v}");
        } else {
            assert!(v.is_null() || v.is_f64(), "{k}: {v}");
        }
    }
}

fn one_line_error(args: &[&str], needle: &str) {
    let (code, out, err) = run_attune(args);
    assert_eq!(code, Some(1), "{args:?}: {err}");
    assert!(out.is_empty(), "{args:?}: {out}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("attune: "), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: want {needle:?} in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_small_cohort_gives_one_json_object_with_every_key() {
    let mut args = SMALL.to_vec();
    args.push("--json");
    let (code, out, err) = run_attune(&args);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1);
    let v = json(out.trim());
    assert_eq!(v["cohort"], 2);
    assert_eq!(v["seed"], 5);
    assert_eq!(v["minutes"], 5.0);
    let scenarios = v["scenarios"].as_object().unwrap();
    assert_eq!(scenarios.keys().collect::<Vec<_>>(), ["rest-then-stress"]);
    let s = &scenarios["rest-then-stress"];
    check_summary(s, true);
    check_summary(&s["reference_rule"], false);
    assert_eq!(s["reference_rule"]["n_people"], 2);
    assert_eq!(s["n_people"], 2);
    assert!(s["reference_rule"].get("people").is_none());
    assert_eq!(s["people"].as_array().unwrap().len(), 2);
    // 5 min sessions: the stressor starts at 150 s, while the baseline may still be taken
    // (then it is stress during calibration, not an onset).
    assert_eq!(
        s["onsets"].as_u64().unwrap() + s["initial_stress_blocks"].as_u64().unwrap(),
        2,
        "{s}"
    );
    for p in s["people"].as_array().unwrap() {
        assert!(p["participant"].is_string());
        assert!(p["seed"].is_u64());
        for k in ["onset_delay_s", "false_ease_off_rest_frac", "flips_per_min"] {
            assert!(p[k].is_null() || p[k].is_f64(), "{k}: {}", p[k]);
        }
        assert!(p["reference_rule"]["missed_onsets"].is_u64());
        assert!(p["person"].is_object(), "{}", p["person"]);
    }
    // Deterministic, whatever the thread count.
    args.extend(["--threads", "1"]);
    let (_, again, _) = run_attune(&args);
    assert_eq!(again, out);
}

#[test]
fn tables_name_the_cohort_and_compare_policy_with_the_reference_rule() {
    let (code, out, err) = run_attune(&SMALL);
    assert_eq!(code, Some(0), "{err}");
    let first = out.lines().next().unwrap();
    assert!(
        first.contains("cohort 2") && first.contains("seed 5"),
        "{first}"
    );
    assert!(first.contains("attune replay"), "{first}");
    assert!(out.contains("== rest-then-stress =="), "{out}");
    assert!(out.contains("onset delay median (s)"), "{out}");
    assert!(out.contains("sim-001") && out.contains("sim-002"), "{out}");
}

#[test]
fn a_labelled_recording_is_scored_under_recordings() {
    let f = fixture("sim-rest-stress.attune.ndjson");
    let (code, out, err) = run_attune(&["evaluate", "--recording", f.to_str().unwrap(), "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let v = json(out.trim());
    assert_eq!(v["recordings"].as_array().unwrap().len(), 1);
    assert!(v["minutes"].is_null());
    let s = &v["scenarios"]["recordings"];
    check_summary(s, true);
    check_summary(&s["reference_rule"], false);
    assert_eq!(s["people"].as_array().unwrap().len(), 1);
    assert_eq!(s["onsets"], 1);
    assert_eq!(s["people"][0]["participant"], "sim-0007");
    assert!(
        s["people"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("sim-rest-stress.attune.ndjson")
    );
}

#[test]
fn bad_input_is_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let fixture_path = fixture("sim-rest-stress.attune.ndjson");
    let rec = fixture_path.to_str().unwrap();
    let ev = |extra: &[&'static str]| {
        let mut a = vec!["evaluate"];
        a.extend_from_slice(extra);
        a
    };
    one_line_error(&ev(&["--cohort", "0"]), "--cohort");
    one_line_error(&ev(&["--cohort", "10001"]), "--cohort");
    one_line_error(&ev(&["--cohort", "-3"]), "--cohort");
    one_line_error(&ev(&["--cohort", "2", "--minutes", "4"]), "--minutes");
    one_line_error(&ev(&["--cohort", "2", "--minutes", "61"]), "--minutes");
    one_line_error(&ev(&["--cohort", "2", "--minutes", "NaN"]), "--minutes");
    one_line_error(
        &ev(&["--cohort", "2", "--scenario", "nap"]),
        "rest-then-stress",
    );
    one_line_error(&ev(&[]), "--cohort");
    one_line_error(
        &["evaluate", "--cohort", "2", "--recording", rec],
        "--cohort",
    );

    let missing = dir.path().join("missing.attune.ndjson");
    one_line_error(
        &["evaluate", "--recording", missing.to_str().unwrap()],
        "missing.attune.ndjson",
    );
    let broken = dir.path().join("broken.attune.ndjson");
    std::fs::write(&broken, "{\"format\":\"nope\"}\nnot json\n").unwrap();
    one_line_error(
        &["evaluate", "--recording", broken.to_str().unwrap()],
        "broken.attune.ndjson",
    );
    // The fixture without its segments.
    let text = std::fs::read_to_string(&fixture_path).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let mut h = json(head);
    h["segments"] = serde_json::json!([]);
    let bare = dir.path().join("bare.attune.ndjson");
    std::fs::write(&bare, format!("{h}\n{rest}")).unwrap();
    one_line_error(
        &["evaluate", "--recording", bare.to_str().unwrap()],
        "bare.attune.ndjson: the recording has no labelled segments",
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("plots");
    let mut a = SMALL.to_vec();
    a.extend(["--plots", under_file.to_str().unwrap()]);
    one_line_error(&a, "--plots");
}

#[test]
fn plots_are_written_one_png_per_person() {
    let dir = tempfile::tempdir().unwrap();
    let plots = dir.path().join("new/plots");
    let mut a = SMALL.to_vec();
    a[2] = "1";
    a.extend(["--json", "--plots", plots.to_str().unwrap()]);
    let (code, out, err) = run_attune(&a);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(json(out.trim())["cohort"], 1);
    let names: Vec<String> = std::fs::read_dir(&plots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["rest-then-stress-sim-001.png"]);
    let png = std::fs::read(plots.join(&names[0])).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "{} bytes", png.len());
}

#[test]
fn an_unlabelled_real_recording_is_refused_or_scored_as_the_label_given() {
    let f = fixture("pyhrv-short-rr.attune.ndjson");
    let f = f.to_str().unwrap();
    one_line_error(&["evaluate", "--recording", f], "has no labelled segments");
    let (code, out, err) = run_attune(&[
        "evaluate",
        "--recording",
        f,
        "--unlabelled-as",
        "rest",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let s = &json(out.trim())["scenarios"]["recordings"];
    check_summary(s, true);
    assert_eq!(s["onsets"], 0);
    // Five minutes of calm: the rest fractions are measured (not null) and are fractions.
    for k in ["false_ease_off_rest_frac", "escalate_rest_frac"] {
        let x = s[k].as_f64().unwrap_or_else(|| panic!("{k}: {s}"));
        assert!((0.0..=1.0).contains(&x), "{k}: {x}");
    }
}
