//! Agreement of `attune::dsp::eda_nk` and `attune::dsp::ppg` with NeuroKit2 0.2.13 (issue 3).
//!
//! Reference: `fixtures/reference/neurokit2-0.2.13.json` (made by
//! `fixtures/reference/make_reference.py` from the CSVs in `fixtures/signals/`), and SIGNALS.md
//! §6.1 R5/R6. The tolerances are SCR count ±1, mean SCL within 0.5 %, mean SCR
//! amplitude within 5 %, PPG peaks ±1 sample; the offline path is held to SIGNALS.md §4.5's
//! stricter targets instead: identical SCR and PPG peak indices, onsets and recovery points, and
//! every float within 1e-9 relative.

use crate::util::root;
use attune::dsp::{eda_nk, ppg};
use serde_json::Value;

/// Relative tolerance for NeuroKit2 floats (SIGNALS.md §4.5, `analyze` column).
const RTOL: f64 = 1e-9;

fn reference() -> Value {
    let path = root().join("fixtures/reference/neurokit2-0.2.13.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A one-column CSV with a header row, as `fixtures/reference/make_inputs.py` writes them.
fn read_csv(entry: &Value) -> Vec<f64> {
    let text = std::fs::read_to_string(root().join(entry["file"].as_str().unwrap())).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), entry["column"].as_str());
    let x: Vec<f64> = lines.map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(x.len() as u64, entry["samples"].as_u64().unwrap());
    x
}

fn entries(doc: &Value, kind: &str) -> Vec<(String, Value)> {
    let out: Vec<(String, Value)> = doc["entries"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, e)| e["kind"] == kind)
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();
    assert!(!out.is_empty(), "no {kind} entries");
    out
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn opt_floats(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap().iter().map(Value::as_f64).collect()
}

fn opt_indices(v: &Value) -> Vec<Option<usize>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().map(|i| i as usize))
        .collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

/// `|got − want| ≤ RTOL · scale` (scale: a magnitude typical of the quantity).
fn close(got: f64, want: f64, scale: f64, what: &str) {
    let tol = RTOL * scale.abs().max(want.abs());
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs NeuroKit2 {want} (|Δ| {:e} > {tol:e})",
        (got - want).abs()
    );
}

/// Sum with Neumaier compensation: within an ulp or two of Python's `math.fsum`.
fn fsum(x: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for &v in x {
        let t = s + v;
        c += if s.abs() >= v.abs() {
            (s - t) + v
        } else {
            (v - t) + s
        };
        s = t;
    }
    s + c
}

fn sum_abs(x: &[f64]) -> f64 {
    x.iter().map(|v| v.abs()).sum()
}

/// `*_sum` and `*_at` of the reference against the signal.
fn signal_matches(got: &[f64], entry: &Value, key: &str, what: &str) {
    close(
        fsum(got),
        entry[format!("{key}_sum")].as_f64().unwrap(),
        sum_abs(got),
        &format!("{what} {key}_sum"),
    );
    let at = &entry[format!("{key}_at")];
    let peak = got.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, want) in indices(&at["indices"])
        .into_iter()
        .zip(floats(&at["values"]))
    {
        close(got[i], want, peak, &format!("{what} {key}[{i}]"));
    }
}

/// `first`/`last` ten samples of a probe.
fn probe_matches(got: &[f64], probe: &Value, what: &str) {
    let peak = got.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let first = floats(&probe["first"]);
    let last = floats(&probe["last"]);
    let n = got.len();
    for (i, want) in first.iter().enumerate() {
        close(got[i], *want, peak, &format!("{what}[{i}]"));
    }
    for (k, want) in last.iter().enumerate() {
        let i = n - last.len() + k;
        close(got[i], *want, peak, &format!("{what}[{i}]"));
    }
}

#[test]
fn eda_process_matches_neurokit2_on_every_eda_fixture() {
    let doc = reference();
    for (name, e) in entries(&doc, "eda") {
        let x = read_csv(&e);
        let fs = e["sampling_rate"].as_f64().unwrap();

        let c = eda_nk::clean(&x, fs).unwrap();
        assert!(c.filtered, "{name}: all fixtures are above 6 Hz");
        signal_matches(&c.signal, &e, "clean", &name);
        let (tonic, phasic) = eda_nk::phasic_highpass(&c.signal, fs).unwrap();
        signal_matches(&tonic, &e, "tonic", &name);
        signal_matches(&phasic, &e, "phasic", &name);

        let s = eda_nk::process(&x, fs).unwrap();
        assert!(s.warnings.is_empty(), "{name}: {:?}", s.warnings);
        // SCRs: identical indices, NaN (null) where NeuroKit2 has NaN.
        assert_eq!(
            s.scr_count as u64,
            e["scr_count"].as_u64().unwrap(),
            "{name}"
        );
        let peaks: Vec<usize> = s.scrs.iter().map(|r| r.peak).collect();
        assert_eq!(peaks, indices(&e["scr_peaks"]), "{name} peaks");
        let onsets: Vec<Option<usize>> = s.scrs.iter().map(|r| r.onset).collect();
        assert_eq!(onsets, opt_indices(&e["scr_onsets"]), "{name} onsets");
        let recovery: Vec<Option<usize>> = s.scrs.iter().map(|r| r.recovery).collect();
        assert_eq!(recovery, opt_indices(&e["scr_recovery"]), "{name} recovery");
        let phasic_peak = phasic.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (field, want, got) in [
            (
                "amplitude",
                opt_floats(&e["scr_amplitudes"]),
                s.scrs.iter().map(|r| r.amplitude).collect::<Vec<_>>(),
            ),
            (
                "height",
                opt_floats(&e["scr_heights"]),
                s.scrs.iter().map(|r| Some(r.height)).collect(),
            ),
            (
                "rise time",
                opt_floats(&e["scr_rise_times"]),
                s.scrs.iter().map(|r| r.rise_time_s).collect(),
            ),
            (
                "recovery time",
                opt_floats(&e["scr_recovery_times"]),
                s.scrs.iter().map(|r| r.recovery_time_s).collect(),
            ),
        ] {
            assert_eq!(got.len(), want.len(), "{name} {field}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                match (g, w) {
                    (Some(g), Some(w)) => {
                        close(*g, *w, phasic_peak, &format!("{name} {field}[{i}]"))
                    }
                    (None, None) => {}
                    _ => panic!("{name} {field}[{i}]: {g:?} vs NeuroKit2 {w:?}"),
                }
            }
        }
        // The summary `attune analyze` prints.
        close(
            s.scl_mean_us,
            e["scl_mean"].as_f64().unwrap(),
            0.0,
            &format!("{name} scl_mean"),
        );
        match (s.scr_amp_mean_us, e["scr_amp_mean"].as_f64()) {
            (Some(g), Some(w)) => close(g, w, 0.0, &format!("{name} scr_amp_mean")),
            (g, w) => assert_eq!(g, w, "{name} scr_amp_mean"),
        }
        let minutes = e["duration_s"].as_f64().unwrap() / 60.0;
        close(
            s.scr_per_min,
            s.scr_count as f64 / minutes,
            0.0,
            &format!("{name} scr_per_min"),
        );
    }
}

#[test]
fn eda_stages_match_the_neurokit2_probes() {
    let doc = reference();
    let e = &doc["entries"]["nk_eda_32hz_s42"];
    let x = read_csv(e);
    let c = eda_nk::clean(&x, 32.0).unwrap().signal;
    probe_matches(&c, &doc["probes"]["eda_clean nk_eda_32hz_s42"], "eda_clean");
    let (tonic, phasic) = eda_nk::phasic_highpass(&c, 32.0).unwrap();
    probe_matches(
        &phasic,
        &doc["probes"]["eda_phasic nk_eda_32hz_s42 EDA_Phasic"],
        "EDA_Phasic",
    );
    probe_matches(
        &tonic,
        &doc["probes"]["eda_phasic nk_eda_32hz_s42 EDA_Tonic"],
        "EDA_Tonic",
    );
}

/// SIGNALS.md §6.1 values, printed to a few decimals: agree to half a unit of the last one.
fn printed(got: f64, want: f64, decimals: i32, what: &str) {
    let tol = 0.5 * 10f64.powi(-decimals) * (1.0 + 1e-9);
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs SIGNALS.md {want} ({decimals} decimals)"
    );
}

#[test]
fn signals_r5_biosignalsnotebooks_eda() {
    let doc = reference();
    let x = read_csv(&doc["entries"]["bsn_eda_10hz"]);
    let s = eda_nk::process(&x, 10.0).unwrap();
    assert_eq!(s.scr_count, 4);
    let peaks: Vec<usize> = s.scrs.iter().map(|r| r.peak).collect();
    assert_eq!(peaks, vec![94, 148, 275, 343]);
    printed(s.scl_mean_us, 561.607925, 6, "R5 mean EDA_Tonic");
    for (r, want) in s.scrs.iter().zip([198.18, 56.05, 95.73, 435.84]) {
        printed(r.amplitude.unwrap(), want, 2, "R5 amplitude");
    }
}

#[test]
fn signals_r6_simulated_eda_seed_42() {
    let doc = reference();
    let x = read_csv(&doc["entries"]["nk_eda_32hz_s42"]);
    printed(fsum(&x), 8689.54914, 5, "R6 input sum");
    let s = eda_nk::process(&x, 32.0).unwrap();
    assert_eq!(s.scr_count, 12);
    printed(s.scl_mean_us, 0.903991, 6, "R6 mean EDA_Tonic");
    let peaks: Vec<usize> = s.scrs.iter().map(|r| r.peak).collect();
    assert_eq!(
        peaks,
        vec![
            22, 816, 1624, 2438, 3218, 4018, 4839, 5626, 6421, 7223, 8021, 8821
        ]
    );
    let onsets: Vec<Option<usize>> = s.scrs.iter().map(|r| r.onset).collect();
    let want = [
        10, 805, 1613, 2427, 3206, 4006, 4828, 5615, 6410, 7211, 8010, 8810,
    ];
    assert_eq!(onsets, want.map(Some).to_vec());
    let amps = [
        1.019217, 1.019996, 1.021427, 1.020958, 1.018825, 1.018833, 1.019740, 1.020373, 1.020309,
        1.018879, 1.022132, 1.022177,
    ];
    for (r, want) in s.scrs.iter().zip(amps) {
        printed(r.amplitude.unwrap(), want, 6, "R6 amplitude");
    }
    let rise: f64 = s.scrs.iter().map(|r| r.rise_time_s.unwrap()).sum::<f64>() / 12.0;
    printed(rise, 0.354, 3, "R6 mean rise time");
    let rec: f64 = s
        .scrs
        .iter()
        .map(|r| r.recovery_time_s.unwrap())
        .sum::<f64>()
        / 12.0;
    printed(rec, 0.531, 3, "R6 mean half-recovery time");
}

#[test]
fn ppg_clean_and_peaks_match_neurokit2_on_every_ppg_fixture() {
    let doc = reference();
    for (name, e) in entries(&doc, "ppg") {
        let x = read_csv(&e);
        let fs = e["sampling_rate"].as_f64().unwrap();
        let c = ppg::clean_elgendi(&x, fs).unwrap();
        signal_matches(&c, &e, "clean", &name);
        let sq: Vec<f64> = c.iter().map(|v| v * v).collect();
        close(
            fsum(&sq),
            e["clean_sumsq"].as_f64().unwrap(),
            0.0,
            &format!("{name} clean_sumsq"),
        );
        let p = ppg::peaks_elgendi(&c, fs).unwrap();
        assert_eq!(p.len() as u64, e["beats"].as_u64().unwrap(), "{name} beats");
        assert_eq!(p, indices(&e["peaks"]), "{name} peaks");
    }
}

#[test]
fn ppg_clean_matches_the_neurokit2_probes() {
    let doc = reference();
    for (entry, probe) in [
        ("bsn_bvp_256hz", "ppg_clean bsn_bvp_256hz"),
        ("nk_ppg_100hz_s1", "ppg_clean nk_ppg_100hz_s1"),
    ] {
        let e = &doc["entries"][entry];
        let x = read_csv(e);
        let c = ppg::clean_elgendi(&x, e["sampling_rate"].as_f64().unwrap()).unwrap();
        probe_matches(&c, &doc["probes"][probe], probe);
    }
}
