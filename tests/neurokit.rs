//! Agreement with NeuroKit2 0.2.13 (issue 3). Reference values: SIGNALS.md §6.1 and
//! `fixtures/reference/neurokit2-0.2.13.json` (made by `fixtures/reference/make_reference.py`).

use crate::util::{fixture, read_recording};
use attune::dsp::hrv::time_domain;
use attune::recording::Record;

/// `want` was printed with `decimals` decimals: agree to within half of its last digit.
fn printed(got: f64, want: f64, decimals: i32, what: &str) {
    let tol = 0.5 * 10f64.powi(-decimals) + 1e-12 * want.abs();
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs NeuroKit2 {want} (printed to {decimals} decimals)"
    );
}

#[test]
fn hrv_time_on_the_pyhrv_series_matches_signals_r1() {
    let (_, records) = read_recording(&fixture("pyhrv-short-rr.attune.ndjson"));
    let rri: Vec<f64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Chunk(c) => Some(c.samples.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let t = time_domain(&rri).unwrap();
    // SIGNALS.md §6.1 R1 (NeuroKit2 0.2.13, printed to 6 decimals).
    for (got, want, what) in [
        (t.mean_nn, 888.955490, "MeanNN"),
        (t.sdnn, 95.690354, "SDNN"),
        (t.rmssd, 101.300634, "RMSSD"),
        (t.sdsd, 101.451714, "SDSD"),
        (t.pnn50, 48.367953, "pNN50"),
        (t.pnn20, 78.931751, "pNN20"),
        (t.median_nn, 867.0, "MedianNN"),
        (
            t.mad_nn,
            69.682200,
            "MadNN (printed 69.6822: 4 decimals, checked below)",
        ),
        (t.iqr_nn, 102.0, "IQRNN"),
        (t.min_nn, 719.0, "MinNN"),
        (t.max_nn, 1195.0, "MaxNN"),
        (t.hti, 12.035714, "HTI"),
        (t.cvnn, 0.107644, "CVNN"),
    ] {
        let decimals = if what.starts_with("MadNN") { 4 } else { 6 };
        printed(got, want, decimals, what);
    }
}

fn pyhrv_rri() -> Vec<f64> {
    let (_, records) = read_recording(&fixture("pyhrv-short-rr.attune.ndjson"));
    records
        .iter()
        .filter_map(|r| match r {
            Record::Chunk(c) => Some(c.samples.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn hrv_frequency_neurokit_method_matches_signals_r1_and_r2() {
    use attune::dsp::hrv::frequency_neurokit;
    let rri = pyhrv_rri();
    let f = frequency_neurokit(&rri).unwrap();
    for (got, want, what) in [
        (f.vlf, 1011.223342, "VLF"),
        (f.lf, 1442.546653, "LF"),
        (f.hf, 4248.557186, "HF"),
        (f.vhf, 209.840246, "VHF"),
        (f.tp, 6912.167427, "TP"),
        (f.lf_hf, 0.339538, "LFHF"),
        (f.ln_hf, 8.354335, "LnHF"),
    ] {
        printed(got.unwrap(), want, 6, what);
    }
    // R2: the first 60 s (LF band starts at 4/T; VLF is NaN).
    let mut acc = 0.0;
    let first: Vec<f64> = rri
        .iter()
        .copied()
        .take_while(|r| {
            acc += r;
            acc <= 60_000.0
        })
        .collect();
    assert_eq!(first.len(), 67);
    let f = frequency_neurokit(&first).unwrap();
    assert_eq!(f.vlf, None);
    assert_eq!(f.ulf, None);
    for (got, want, what) in [
        (f.lf, 765.003571, "LF 60 s"),
        (f.hf, 5222.770958, "HF 60 s"),
        (f.vhf, 168.780958, "VHF 60 s"),
        (f.tp, 6156.555487, "TP 60 s"),
        (f.lf_hf, 0.146475, "LFHF 60 s"),
    ] {
        printed(got.unwrap(), want, 6, what);
    }
}

#[test]
fn hrv_frequency_taskforce_method_matches_signals_r1() {
    use attune::dsp::hrv::frequency_taskforce;
    let f = frequency_taskforce(&pyhrv_rri()).unwrap();
    for (got, want, what) in [
        (f.vlf, 2087.2997, "VLF"),
        (f.lf, 1787.2883, "LF"),
        (f.hf, 4868.0317, "HF"),
    ] {
        printed(got.unwrap(), want, 4, what);
    }
    printed(f.lf_hf.unwrap(), 0.367148, 6, "LF/HF");
    printed(100.0 * f.lfn.unwrap(), 26.855, 3, "LF n.u.");
}

/// The committed NeuroKit2 0.2.13 reference (fixtures/reference/make_reference.py).
pub fn reference() -> serde_json::Value {
    let path = crate::util::root().join("fixtures/reference/neurokit2-0.2.13.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Loads an entry's input column.
pub fn input(entry: &serde_json::Value) -> Vec<f64> {
    let path = crate::util::root().join(entry["file"].as_str().unwrap());
    let text = std::fs::read_to_string(path).unwrap();
    attune::recording::csv::read_column(&text, entry["column"].as_str())
        .unwrap()
        .values
}

/// `got` agrees with NeuroKit2's `want` to `rtol` (both null counts as agreement).
fn agree(got: &serde_json::Value, want: &serde_json::Value, rtol: f64, what: &str) {
    match (got.as_f64(), want.as_f64()) {
        (None, None) => {}
        (Some(g), Some(w)) => assert!(
            (g - w).abs() <= rtol * w.abs() + 1e-12,
            "{what}: attune {g} vs NeuroKit2 {w} (rtol {rtol})"
        ),
        _ => panic!("{what}: attune {got} vs NeuroKit2 {want}"),
    }
}

#[test]
fn ecg_and_rr_analyze_matches_neurokit2_on_every_reference_record() {
    use attune::analyze::{Kind, Method, analyze};
    use attune::dsp::hrv::PsdMethod;
    let r = reference();
    let mut checked = 0;
    for (name, e) in r["entries"].as_object().unwrap() {
        let kind = match e["kind"].as_str().unwrap() {
            "ecg" => Kind::Ecg,
            "rr" => Kind::Rr,
            _ => continue,
        };
        let x = input(e);
        let fs = e["sampling_rate"].as_f64();
        let rate = if kind == Kind::Rr { None } else { fs };
        let got = analyze(kind, &x, rate, Method::NeuroKit, PsdMethod::NeuroKit).unwrap();
        assert_eq!(got["beats"], e["beats"], "{name}: beats");
        if kind == Kind::Ecg {
            // Identical R-peak indices, not just the same count.
            let fs = fs.unwrap();
            let clean = attune::dsp::ecg::clean(&x, fs, 50.0).unwrap();
            let peaks = attune::dsp::ecg::peaks_neurokit(&clean, fs);
            let want: Vec<usize> = e["peaks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(peaks, want, "{name}: R-peak indices");
            // The cleaned signal itself (SIGNALS.md §4.5: rtol 1e-9).
            let idx = e["clean_at"]["indices"].as_array().unwrap();
            let vals = e["clean_at"]["values"].as_array().unwrap();
            let scale = (e["clean_sumsq"].as_f64().unwrap() / x.len() as f64).sqrt();
            for (i, v) in idx.iter().zip(vals) {
                let i = i.as_u64().unwrap() as usize;
                let d = (clean[i] - v.as_f64().unwrap()).abs();
                assert!(d <= 1e-9 * scale, "{name}: clean[{i}] differs by {d}");
            }
        }
        let t = &e["hrv_time"];
        let f = &e["hrv_frequency"];
        // Issue 3's tolerances are MeanNN 0.5 %, RMSSD/SDNN 1 %, pNN50 1 point, LF/HF 5 %;
        // the port is exact, so hold it to 1e-9.
        for (k, nk) in [
            ("mean_nn_ms", &t["MeanNN"]),
            ("sdnn_ms", &t["SDNN"]),
            ("rmssd_ms", &t["RMSSD"]),
            ("sdsd_ms", &t["SDSD"]),
            ("pnn50_pct", &t["pNN50"]),
            ("pnn20_pct", &t["pNN20"]),
            ("median_nn_ms", &t["MedianNN"]),
            ("mad_nn_ms", &t["MadNN"]),
            ("iqr_nn_ms", &t["IQRNN"]),
            ("min_nn_ms", &t["MinNN"]),
            ("max_nn_ms", &t["MaxNN"]),
            ("hti", &t["HTI"]),
            ("vlf_ms2", &f["VLF"]),
            ("lf_ms2", &f["LF"]),
            ("hf_ms2", &f["HF"]),
            ("lf_hf", &f["LFHF"]),
            ("tp_ms2", &f["TP"]),
        ] {
            agree(&got[k], nk, 1e-9, &format!("{name}: {k}"));
        }
        agree(
            &got["hr_mean_bpm"],
            &e["hr_mean_bpm"],
            1e-9,
            &format!("{name}: hr"),
        );
        checked += 1;
    }
    assert_eq!(checked, 9, "7 ECG records and 2 RR series");
}
