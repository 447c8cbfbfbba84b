//! Streaming (causal) against offline (NeuroKit2-exact) on the reference records: the agreement
//! issue 3 asks to measure and test (SIGNALS.md §4.5 gives the tolerances). The numbers these
//! tests print are the ones in docs/agreement.md.

use crate::neurokit::{input, reference};
use attune::analyze::{Kind, Method, analyze};
use attune::dsp::eda::{EdaChain, EdaConfig};
use attune::dsp::hrv::PsdMethod;

fn field(m: &serde_json::Map<String, serde_json::Value>, k: &str) -> f64 {
    m[k].as_f64().unwrap()
}

#[test]
fn ecg_streaming_rmssd_and_sdnn_agree_with_offline() {
    let r = reference();
    for (name, e) in r["entries"].as_object().unwrap() {
        if e["kind"] != "ecg" {
            continue;
        }
        let x = input(e);
        let fs = e["sampling_rate"].as_f64();
        let off = analyze(Kind::Ecg, &x, fs, Method::NeuroKit, PsdMethod::NeuroKit).unwrap();
        let on = analyze(Kind::Ecg, &x, fs, Method::Streaming, PsdMethod::NeuroKit).unwrap();
        let d_rmssd = field(&on, "rmssd_ms") / field(&off, "rmssd_ms") - 1.0;
        let d_sdnn = field(&on, "sdnn_ms") / field(&off, "sdnn_ms") - 1.0;
        let d_beats = field(&on, "beats") - field(&off, "beats");
        eprintln!(
            "{name}: beats {:+} RMSSD {:+.2} % SDNN {:+.2} %",
            d_beats,
            100.0 * d_rmssd,
            100.0 * d_sdnn
        );
        assert!(d_beats.abs() <= 1.0, "{name}: beats differ by {d_beats}");
        // MIT-BIH 208 is arrhythmic (PVCs, missed-beat gaps); its bound is wider.
        let tol = if name.starts_with("mitbih208") {
            0.05
        } else {
            0.02
        };
        assert!(
            d_rmssd.abs() <= tol,
            "{name}: RMSSD {:+.2} %",
            100.0 * d_rmssd
        );
        assert!(d_sdnn.abs() <= tol, "{name}: SDNN {:+.2} %", 100.0 * d_sdnn);
    }
}

#[test]
fn eda_streaming_scr_count_and_scl_agree_with_offline() {
    let r = reference();
    let mut n = 0;
    for (name, e) in r["entries"].as_object().unwrap() {
        // The simulated records are in µS; the bsn clip is in raw ADC units, which the
        // absolute µS thresholds of the streaming detector cannot judge.
        if e["kind"] != "eda" || !name.starts_with("nk_eda") {
            continue;
        }
        let x = input(e);
        let fs = e["sampling_rate"].as_f64().unwrap();
        // NeuroKit2's simulated SCRs rise in ≈ 0.35 s, faster than the physiological 0.5 s gate
        // (SIGNALS.md §4.4 test caveat): the gate is off here.
        let cfg = EdaConfig {
            rise_min_s: 0.0,
            ..EdaConfig::default()
        };
        let mut chain = EdaChain::new(fs, cfg).unwrap();
        let mut scrs = Vec::new();
        let (mut sum, mut k) = (0.0, 0usize);
        for (i, v) in x.iter().enumerate() {
            if let Some(c) = chain.push(i as f64 / fs, *v, &mut scrs) {
                sum += c;
                k += 1;
            }
        }
        let want = e["scr_count"].as_f64().unwrap();
        let scl = sum / k as f64;
        let want_scl = e["scl_mean"].as_f64().unwrap();
        eprintln!(
            "{name}: SCRs {} vs {want}, SCL {:+.3} %",
            scrs.len(),
            100.0 * (scl / want_scl - 1.0)
        );
        assert!(
            (scrs.len() as f64 - want).abs() <= 0.2 * want,
            "{name}: {} SCRs streaming vs {want} offline",
            scrs.len()
        );
        assert!(
            (scl / want_scl - 1.0).abs() <= 0.01,
            "{name}: SCL {scl} vs {want_scl}"
        );
        n += 1;
    }
    assert_eq!(n, 3);
}
