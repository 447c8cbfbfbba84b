//! Agreement of the spectral features with their references (`docs/agreement.md`, "Spectral
//! features"): `fixtures/reference/spectral-reference.json`, made by
//! `fixtures/reference/make_spectral_reference.py` (NeuroKit2 0.2.13 `hrv_frequency` per window;
//! EDASymp written in Python from Posada-Quintero et al. 2016). Run with `--nocapture` for the
//! figures.

use crate::util::{fixture, json, root, run_attune};
use attune::dsp::hrv::frequency_neurokit;
use attune::dsp::hrv_spectral::HrvSpectral;
use serde_json::Value;

fn reference() -> Value {
    let path = root().join("fixtures/reference/spectral-reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn column(name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(fixture(&format!("signals/{name}.csv"))).unwrap();
    text.lines().skip(1).map(|l| l.parse().unwrap()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn hrv_windows_agree_with_neurokit2_hrv_frequency() {
    let r = reference();
    for name in ["pyhrv_nn_short", "pyhrv_nn_long"] {
        let rr = column(name);
        let windows = r["hrv"][name]["windows"].as_array().unwrap();
        assert!(!windows.is_empty());
        let (mut worst_nk, mut ratios_lfhf, mut ratios_lf, mut ratios_hf) =
            (0.0f64, Vec::new(), Vec::new(), Vec::new());
        for w in windows {
            let range = w["interval_range"].as_array().unwrap();
            let (lo, hi) = (
                range[0].as_u64().unwrap() as usize,
                range[1].as_u64().unwrap() as usize,
            );
            let win = &rr[lo..hi];
            let nk = &w["welch"];
            // The NeuroKit2 method on the same beats: exact.
            let f = frequency_neurokit(win).unwrap();
            for (got, key) in [(f.lf, "LF"), (f.hf, "HF"), (f.lf_hf, "LFHF")] {
                let want = nk[key].as_f64().unwrap();
                let rel = (got.unwrap() - want).abs() / want.abs();
                worst_nk = worst_nk.max(rel);
            }
            // The live (sliding Task Force) method on the same beats: another method.
            let mut t = 0.0;
            let beats = win.iter().map(|&x| {
                t += x / 1000.0;
                (t, x, false)
            });
            let s = HrvSpectral::new().compute(beats).unwrap();
            ratios_lf.push(s.lf_ms2 / nk["LF"].as_f64().unwrap());
            ratios_hf.push(s.hf_ms2 / nk["HF"].as_f64().unwrap());
            ratios_lfhf.push(s.lf_hf / nk["LFHF"].as_f64().unwrap());
        }
        let n = ratios_lfhf.len();
        let (lfhf_med, lfhf_p10, lfhf_p90) = (
            median(ratios_lfhf.clone()),
            quantile(ratios_lfhf.clone(), 0.1),
            quantile(ratios_lfhf.clone(), 0.9),
        );
        println!(
            "{name}: {n} windows of 130 s; neurokit method vs NeuroKit2 worst rel {worst_nk:.1e}; \
             sliding/NeuroKit2 LF median {:.3} (p10 {:.3}, p90 {:.3}), HF median {:.3} (p10 {:.3}, p90 {:.3}), \
             LF/HF median {lfhf_med:.3} (p10 {lfhf_p10:.3}, p90 {lfhf_p90:.3})",
            median(ratios_lf.clone()),
            quantile(ratios_lf.clone(), 0.1),
            quantile(ratios_lf, 0.9),
            median(ratios_hf.clone()),
            quantile(ratios_hf.clone(), 0.1),
            quantile(ratios_hf, 0.9),
        );
        assert!(worst_nk < 1e-9, "{name}: {worst_nk}");
        // Documented tolerance of the live method against NeuroKit2 (docs/agreement.md): the
        // median LF/HF within 25 %, 80 % of windows within a factor 1.6.
        assert!((lfhf_med - 1.0).abs() < 0.25, "{name}: {lfhf_med}");
        assert!(
            lfhf_p10 > 1.0 / 1.6 && lfhf_p90 < 1.6,
            "{name}: {lfhf_p10} {lfhf_p90}"
        );
    }
}

#[test]
fn eda_symp_windows_agree_with_the_paper_reference() {
    let r = reference();
    for (name, fs) in [
        ("nk_eda_32hz_s42", "32"),
        ("nk_eda_100hz_s7", "100"),
        ("nk_eda_1000hz_s8", "1000"),
    ] {
        let (code, out, err) = run_attune(&[
            "analyze",
            fixture(&format!("signals/{name}.csv")).to_str().unwrap(),
            "--kind",
            "eda",
            "--rate",
            fs,
            "--windows",
            "--window-s",
            "128",
            "--hop-s",
            "16",
        ]);
        assert_eq!(code, Some(0), "{err}");
        let got: Vec<Value> = out.lines().map(json).collect();
        let want = r["eda"][name]["windows"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        let (mut worst, mut worst_n, mut nk_ratio) = (0.0f64, 0.0f64, Vec::new());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["t_start_s"], w["t_start_s"]);
            assert_eq!(g["eda_spectrum"], "ok");
            let (gs, ws) = (
                g["eda_symp_us2"].as_f64().unwrap(),
                w["eda_symp_us2"].as_f64().unwrap(),
            );
            worst = worst.max((gs - ws).abs() / ws);
            worst_n = worst_n
                .max((g["eda_sympn"].as_f64().unwrap() - w["eda_sympn"].as_f64().unwrap()).abs());
            nk_ratio.push(w["nk"]["EDA_Sympathetic"].as_f64().unwrap() / gs);
        }
        println!(
            "{name}: {} windows of 128 s; EDASymp worst rel {worst:.1e}, EDASympn worst abs {worst_n:.1e}; \
             NeuroKit2 eda_sympathetic / attune median {:.3}",
            got.len(),
            median(nk_ratio.clone())
        );
        // The same method: only the summation order differs.
        assert!(worst < 1e-9, "{name}: {worst}");
        assert!(worst_n < 1e-9, "{name}: {worst_n}");
        // NeuroKit2's variant (400 Hz resampling, unprimed filter, nfft 256, trapezoids) reads
        // 10-15 % lower on these files; more would mean a change in either.
        let m = median(nk_ratio);
        assert!((0.8..1.0).contains(&m), "{name}: {m}");
    }
}

#[test]
fn a_record_shorter_than_the_window_says_so() {
    // The only real EDA fixture is 40 s: no EDASymp window fits, and attune says why.
    let r = reference();
    assert_eq!(r["eda"]["bsn_eda_10hz"]["windows"], serde_json::json!([]));
    let (code, out, err) = run_attune(&[
        "analyze",
        fixture("signals/bsn_eda_10hz.csv").to_str().unwrap(),
        "--kind",
        "eda",
        "--rate",
        "10",
        "--windows",
        "--window-s",
        "30",
        "--hop-s",
        "10",
    ]);
    assert_eq!(code, Some(0), "{err}");
    for line in out.lines() {
        let v = json(line);
        assert_eq!(v["eda_spectrum"], "short_window", "{line}");
        assert!(v["eda_symp_us2"].is_null());
        assert!(
            v["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| w.as_str().unwrap().contains("at least 128 s")),
            "{line}"
        );
    }
}
