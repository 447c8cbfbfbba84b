//! The bundled fixtures: readable by the Rust reader and by the ten-line Python reader in
//! docs/recording-format.md, with the same content.

use crate::util::{fixture, read_recording, root, run_pipeline};
use attune::pipeline::{Output, PipelineConfig};
use attune::recording::Record;
use std::collections::BTreeMap;
use std::process::Command;

const FIXTURES: [&str; 2] = [
    "sim-rest-stress.attune.ndjson",
    "pyhrv-short-rr.attune.ndjson",
];

#[test]
fn python_reader_agrees_with_the_rust_reader() {
    for name in FIXTURES {
        let path = fixture(name);
        let (header, records) = read_recording(&path);
        let mut n: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
        for r in &records {
            if let Record::Chunk(c) = r {
                let e = n.entry(c.kind.name().to_owned()).or_insert((0, 0.0, 0.0));
                e.0 += c.samples.len();
                e.1 += c.samples.iter().sum::<f64>();
                e.2 = c.last_time();
            }
        }
        let out = Command::new("python3")
            .arg(root().join("tests/python/read_recording.py"))
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["participant"], header.participant.as_str());
        assert_eq!(v["records"].as_u64().unwrap() as usize, records.len());
        for (id, (count, sum, last)) in &n {
            let s = &v["streams"][id];
            assert_eq!(s["n"].as_u64().unwrap() as usize, *count, "{name} {id}");
            let ps = s["sum"].as_f64().unwrap();
            assert!(
                (ps - sum).abs() <= 1e-9 * sum.abs(),
                "{name} {id}: {ps} vs {sum}"
            );
            assert!(
                (s["last_t"].as_f64().unwrap() - last).abs() < 1e-9,
                "{name} {id}"
            );
        }
    }
}

#[test]
fn pyhrv_rmssd_over_the_whole_record_matches_neurokit2() {
    // SIGNALS.md §6.1 R1: NeuroKit2 0.2.13 hrv_time on this series gives RMSSD 101.300634 ms and
    // MeanNN 888.955490 ms. With acceptance disabled, our windowed RMSSD over the whole record
    // must agree (it is the same formula).
    use attune::dsp::rr::{RrConfig, RrWindow};
    let (_, records) = read_recording(&fixture("pyhrv-short-rr.attune.ndjson"));
    let mut w = RrWindow::new(RrConfig {
        min_ms: 0.0,
        max_ms: f64::INFINITY,
        tolerance: f64::INFINITY,
        median_len: 11,
    });
    let mut last = 0.0;
    for r in &records {
        if let Record::Chunk(c) = r {
            for (i, &v) in c.samples.iter().enumerate() {
                assert!(w.push(c.time_of(i), v));
                last = c.time_of(i);
            }
        }
    }
    let rmssd = w.rmssd_ms(last, last, 300).unwrap();
    assert!((rmssd - 101.300634).abs() < 1e-6, "{rmssd}");
    let hr = w.hr_bpm(last, last, 300).unwrap();
    assert!((hr - 60_000.0 / 888.955490).abs() < 1e-6, "{hr}");
}

#[test]
fn the_real_rr_fixture_drives_decisions_from_cardiac_features_only() {
    let (header, records) = read_recording(&fixture("pyhrv-short-rr.attune.ndjson"));
    let out = run_pipeline(&header, &records, PipelineConfig::default());
    let decided: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Decision(_, d) if d.composite_z.is_some() => Some(d),
            _ => None,
        })
        .collect();
    assert!(!decided.is_empty(), "no decision after the baseline");
    for d in decided {
        // Only the heart features enter; EDA terms (consented, but no stream) carry no value
        // and no weight.
        for t in &d.terms {
            match t.name() {
                "hr_bpm" | "rmssd_ms" => {}
                _ => assert!(t.value.is_none() && t.weight == 0.0, "{t:?}"),
            }
        }
        assert!(d.terms.iter().any(|t| t.weight > 0.0));
        // No stored profile: a session or population reference, whose trust is at most 0.8.
        assert!(d.confidence <= 0.8 + 1e-12, "{}", d.confidence);
    }
}
