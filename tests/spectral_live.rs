//! The spectral features reach subscribers: for a replayed recording and for a live simulated
//! participant, `features` messages carry HRV LF/HF and EDASymp once their windows have filled,
//! and a reason, never a number, before.

use crate::util::{Daemon, LiveDaemon, fixture, read_until};
use serde_json::Value;

/// Checks the spectral part of a run's `features` messages.
fn check(lines: &[Value], what: &str) {
    let feats: Vec<&Value> = lines.iter().filter(|v| v["type"] == "features").collect();
    assert!(!feats.is_empty(), "{what}: no features");
    for f in &feats {
        let t = f["t"].as_f64().unwrap();
        if t < 96.0 {
            // Less than two Welch segments of beats, less than one EDASymp window: a reason
            // (or nothing, before a stream's first data), never a number.
            for key in ["hrv_spectrum", "eda_spectrum"] {
                let ok = f[key] == "short_window" || (t < 10.0 && f[key].is_null());
                assert!(ok, "{what}: {key} at {t}: {f}");
            }
            assert!(
                f["lf_ms2"].is_null() && f["eda_symp_us2"].is_null(),
                "{what}: {f}"
            );
        }
        if f["hrv_spectrum"] == "ok" {
            let (lf, hf) = (f["lf_ms2"].as_f64().unwrap(), f["hf_ms2"].as_f64().unwrap());
            assert!(lf > 0.0 && hf > 0.0, "{what}: {f}");
            let nu = f["lf_nu"].as_f64().unwrap() + f["hf_nu"].as_f64().unwrap();
            assert!((nu - 100.0).abs() < 0.01, "{what}: {f}");
            let peak = f["hf_peak_hz"].as_f64().unwrap();
            assert!((0.15..0.4).contains(&peak), "{what}: {f}");
        } else {
            assert!(f["lf_ms2"].is_null(), "{what}: {f}");
        }
        if f["eda_spectrum"] == "ok" {
            let s = f["eda_symp_us2"].as_f64().unwrap();
            let n = f["eda_sympn"].as_f64().unwrap();
            assert!(s > 0.0 && (0.0..=1.0).contains(&n), "{what}: {f}");
        }
    }
    let late = |key: &str| {
        feats
            .iter()
            .filter(|f| f["t"].as_f64().unwrap() >= 140.0)
            .filter(|f| f[key] == "ok")
            .count()
    };
    assert!(
        late("hrv_spectrum") > 0,
        "{what}: no HRV spectrum after 140 s"
    );
    assert!(late("eda_spectrum") > 0, "{what}: no EDASymp after 140 s");
}

#[test]
fn a_replayed_recording_publishes_spectral_features() {
    let d = Daemon::replay(
        &fixture("sim-rest-stress.attune.ndjson"),
        &["--speed", "max", "--wait-subscribers", "1"],
    );
    let mut sub = d.subscribe(&["features"]);
    let (_, lines) = read_until(&mut sub, 60, |v| {
        v["t"].as_f64().is_some_and(|t| t >= 200.0)
    });
    check(&lines, "replay");
}

#[test]
fn a_live_simulated_participant_publishes_spectral_features() {
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "40", "--no-record"]);
    let mut sub = d.subscribe_for("p01", &["features"]);
    let (hit, lines) = read_until(&mut sub, 30, |v| {
        v["t"].as_f64().is_some_and(|t| t >= 200.0)
    });
    assert!(hit, "session time did not reach 200 s");
    check(&lines, "run --simulate");
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn the_live_edasymp_is_the_offline_window_on_the_same_samples() {
    // The daemon's feature state fed the recording's EDA chunks on their device timeline, and
    // `analyze --windows` on the same samples: the same numbers. (Inside the engine, device
    // time is first mapped onto the session clock, here by the ≈ 1 s transport latency, so a
    // live window is the device-time window shifted by the mapping's offset.)
    use attune::analyze::sliding::EdaWindows;
    use attune::features::{FeatureConfig, ParticipantFeatures};
    use attune::model::{StreamKind, Timing};
    use attune::recording::Record;
    let (_, records) = crate::util::read_recording(&fixture("sim-rest-stress.attune.ndjson"));
    let mut x = Vec::new();
    let mut rate = 0.0;
    let mut live = ParticipantFeatures::new(FeatureConfig::default());
    let mut compared = 0;
    let mut tick = 0.25;
    let mut offline = None;
    for r in &records {
        let Record::Chunk(c) = r else { continue };
        if c.kind != StreamKind::Eda {
            continue;
        }
        let Timing::Uniform { t0, rate_hz } = c.timing else {
            continue;
        };
        assert!(
            (t0 * rate_hz - x.len() as f64).abs() < 1e-6,
            "an EDA gap at {t0}"
        );
        rate = rate_hz;
        x.extend_from_slice(&c.samples);
        live.on_chunk(c).unwrap();
        let end = t0 + c.samples.len() as f64 / rate_hz;
        while tick <= end - 1.0 / rate_hz {
            let f = live.frame(tick);
            if let (Some(t), Some(Ok(v))) = (f.spectral.computed_t, f.spectral.eda)
                && t == tick
            {
                let o = offline.get_or_insert_with(Vec::new);
                o.push((t, v));
            }
            tick += 0.25;
        }
    }
    let mut windows = EdaWindows::new(&x, rate, 128.0);
    for (t, v) in offline.unwrap_or_default() {
        let mut m = serde_json::Map::new();
        // The live window ends at the newest 2 Hz point at or before the tick.
        assert!(
            v.end_s <= t + 0.5 && v.end_s > t - 2.5,
            "at {t}: {}",
            v.end_s
        );
        windows.window(&mut m, v.end_s - 128.0, v.end_s);
        let want = m["eda_symp_us2"].as_f64().unwrap();
        assert!(
            (v.symp_us2 - want).abs() <= 1e-9 * want,
            "at {t}: {} vs {want}",
            v.symp_us2
        );
        assert!(
            (v.sympn - m["eda_sympn"].as_f64().unwrap()).abs() <= 1e-9,
            "at {t}"
        );
        compared += 1;
    }
    assert!(compared > 50, "only {compared} live EDASymp values");
}
