//! Simulated ECG and PPG (`attune simulate --ecg-rate HZ --ppg-rate HZ`): the R peaks are the
//! RR stream's beats, the offline detectors find them, and the recording replays.

use crate::util::{fixture, read_recording, run_attune, run_attune_within};
use attune::consent::{ConsentSnapshot, Purpose};
use attune::dsp::{ecg, ppg};
use attune::model::{ParticipantId, StreamKind, Timing};
use attune::recording::Record;
use attune::simulate::waveform::{EcgParams, EcgSynth, PpgSynth};
use attune::simulate::{
    BeatTruth, Scenario, SimConfig, Simulation, WaveConfig, beat_truth, simulate_with, wave_params,
};
use rand::SeedableRng;

fn cfg(seed: u64, minutes: f64) -> SimConfig {
    SimConfig {
        scenario: Scenario::RestThenStress,
        duration_s: minutes * 60.0,
        seed,
        participant: ParticipantId::new("w01").unwrap(),
        eda_rate_hz: 32.0,
    }
}

fn sim(seed: u64, minutes: f64, ecg: Option<f64>, ppg: Option<f64>) -> Simulation {
    simulate_with(
        &cfg(seed, minutes),
        &WaveConfig {
            ecg_rate_hz: ecg,
            ppg_rate_hz: ppg,
            mains_hz: None,
        },
    )
}

/// The samples of one uniform stream, checking that its chunks are contiguous.
fn samples(records: &[Record], kind: StreamKind) -> (Vec<f64>, f64) {
    let mut out = Vec::new();
    let mut fs = 0.0;
    for r in records {
        let Record::Chunk(c) = r else { continue };
        if c.kind != kind {
            continue;
        }
        let Timing::Uniform { t0, rate_hz } = c.timing else {
            panic!("{kind:?} is not uniform")
        };
        fs = rate_hz;
        assert!(
            (t0 * rate_hz - out.len() as f64).abs() < 1e-6,
            "gap at {t0}"
        );
        out.extend_from_slice(&c.samples);
    }
    (out, fs)
}

fn rr_times(records: &[Record]) -> Vec<f64> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Chunk(c) if c.kind == StreamKind::Rr => Some(c.timing.clone()),
            _ => None,
        })
        .flat_map(|t| match t {
            Timing::Events(ts) => ts,
            Timing::Uniform { .. } => Vec::new(),
        })
        .collect()
}

/// (precision, recall, F1) of `found` (s) against `truth` (s) within `tol` s, one match each.
fn score(found: &[f64], truth: &[f64], tol: f64) -> (f64, f64, f64) {
    let (mut i, mut j, mut hit) = (0, 0, 0);
    while i < found.len() && j < truth.len() {
        let d = found[i] - truth[j];
        if d.abs() <= tol {
            hit += 1;
            i += 1;
            j += 1;
        } else if d < 0.0 {
            i += 1;
        } else {
            j += 1;
        }
    }
    let p = hit as f64 / found.len().max(1) as f64;
    let r = hit as f64 / truth.len().max(1) as f64;
    (p, r, 2.0 * p * r / (p + r).max(1e-12))
}

/// Truth inside [0.5 s, end − 0.5 s] (the detectors skip the first 0.3 s by design).
fn inner(t: &[f64], dur: f64) -> Vec<f64> {
    t.iter()
        .copied()
        .filter(|&x| x > 0.5 && x < dur - 0.5)
        .collect()
}

fn inner_found(idx: &[usize], fs: f64, dur: f64) -> Vec<f64> {
    let t: Vec<f64> = idx.iter().map(|&i| i as f64 / fs).collect();
    t.into_iter()
        .filter(|&x| x > 0.45 && x < dur - 0.45)
        .collect()
}

#[test]
fn ecg_r_peaks_are_the_rr_beats_within_one_sample() {
    for fs in [250.0, 500.0, 1000.0] {
        let s = sim(3, 2.0, Some(fs), None);
        let (x, got_fs) = samples(&s.records, StreamKind::Ecg);
        assert_eq!(got_fs, fs);
        let beats = rr_times(&s.records);
        assert_eq!(beats, beat_truth(&cfg(3, 2.0)).r_peaks_s);
        let (mut worst, mut within) = (0.0_f64, 0);
        let half = (0.1 * fs) as usize;
        let interior: Vec<f64> = inner(&beats, 120.0);
        for &t in &interior {
            let c = (t * fs).round() as usize;
            let i = (c - half..=c + half)
                .max_by(|&a, &b| x[a].total_cmp(&x[b]))
                .unwrap();
            let err = (i as f64 / fs - t).abs();
            worst = worst.max(err);
            within += usize::from(err <= 1.0 / fs + 1e-9);
        }
        eprintln!(
            "ECG {fs} Hz: {within}/{} R peaks within one sample, worst {:.2} ms",
            interior.len(),
            worst * 1e3
        );
        // With noise (a few µV), at 1000 Hz a sample next to the flat apex can win.
        if fs < 1000.0 {
            assert!(worst <= 1.0 / fs + 1e-9, "{fs} Hz: worst {worst} s");
        } else {
            assert!(worst <= 2.0 / fs + 1e-9, "{fs} Hz: worst {worst} s");
            assert!(within as f64 >= 0.9 * interior.len() as f64, "{fs} Hz");
        }
    }
}

#[test]
fn noise_free_ecg_puts_the_r_peak_on_the_beat_within_one_sample() {
    let beats = beat_truth(&cfg(5, 2.0)).r_peaks_s;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let p = EcgParams::draw(&mut rng).noise_free();
    for fs in [250.0, 500.0, 1000.0] {
        let x = attune::simulate::waveform::ecg_from_beats(&beats, fs, 120.0, &p, 5);
        for &t in &inner(&beats, 120.0) {
            let c = (t * fs).round() as usize;
            let half = (0.1 * fs) as usize;
            let i = (c - half..=c + half)
                .max_by(|&a, &b| x[a].total_cmp(&x[b]))
                .unwrap();
            assert!((i as f64 / fs - t).abs() <= 1.0 / fs, "{fs} Hz at {t}");
        }
    }
}

#[test]
fn neurokit_ecg_detector_finds_the_simulated_beats() {
    for (seed, fs) in [(1, 250.0), (2, 1000.0), (4, 250.0), (6, 1000.0)] {
        let s = sim(seed, 5.0, Some(fs), None);
        let (x, _) = samples(&s.records, StreamKind::Ecg);
        let cleaned = ecg::clean(&x, fs, 50.0).unwrap();
        let found = inner_found(&ecg::peaks_neurokit(&cleaned, fs), fs, 300.0);
        let truth = inner(&beat_truth(&cfg(seed, 5.0)).r_peaks_s, 300.0);
        let (p, r, f1) = score(&found, &truth, 0.025);
        eprintln!(
            "ECG seed {seed} {fs} Hz: {} beats, precision {p:.4} recall {r:.4} F1 {f1:.4}",
            truth.len()
        );
        assert!(f1 >= 0.99, "seed {seed}, {fs} Hz: F1 {f1}");
    }
}

#[test]
fn elgendi_ppg_detector_finds_the_systolic_peaks() {
    for (seed, fs) in [(1, 100.0), (2, 500.0), (4, 64.0), (6, 100.0)] {
        let s = sim(seed, 5.0, None, Some(fs));
        let (x, _) = samples(&s.records, StreamKind::Ppg);
        let cleaned = ppg::clean_elgendi(&x, fs).unwrap();
        let idx = ppg::peaks_elgendi(&cleaned, fs).unwrap();
        let found = inner_found(&idx, fs, 300.0);
        let BeatTruth { ppg_peaks_s, .. } = beat_truth(&cfg(seed, 5.0));
        let truth = inner(&ppg_peaks_s, 300.0);
        let (p, r, f1) = score(&found, &truth, 0.025);
        let bias = mean_offset(&found, &truth, 0.025);
        eprintln!(
            "PPG seed {seed} {fs} Hz: {} pulses, precision {p:.4} recall {r:.4} F1 {f1:.4}, \
             mean offset {:+.1} ms",
            truth.len(),
            bias * 1e3
        );
        assert!(f1 >= 0.99, "seed {seed}, {fs} Hz: F1 {f1}");
    }
}

fn mean_offset(found: &[f64], truth: &[f64], tol: f64) -> f64 {
    let mut sum = (0.0, 0);
    for &t in truth {
        if let Some(f) = found.iter().find(|&&f| (f - t).abs() <= tol) {
            sum = (sum.0 + f - t, sum.1 + 1);
        }
    }
    sum.0 / sum.1.max(1) as f64
}

#[test]
fn waveforms_leave_rr_and_eda_unchanged_and_are_deterministic() {
    let plain = sim(9, 2.0, None, None);
    let wave = sim(9, 2.0, Some(500.0), Some(100.0));
    let strip = |s: &Simulation| -> Vec<Record> {
        s.records
            .iter()
            .filter(|r| !matches!(r, Record::Chunk(c) if matches!(c.kind, StreamKind::Ecg | StreamKind::Ppg)))
            .cloned()
            .collect()
    };
    assert_eq!(strip(&plain), strip(&wave));
    let again = sim(9, 2.0, Some(500.0), Some(100.0));
    assert_eq!(wave.records, again.records);
    assert_eq!(wave.header, again.header);
    // The person and the truth do not depend on the rates.
    let other = sim(9, 2.0, Some(250.0), Some(50.0));
    assert_eq!(rr_times(&other.records), rr_times(&wave.records));
    assert_ne!(sim(10, 2.0, Some(500.0), None).records, wave.records);
    // host_t never decreases; the consent covers the new streams.
    let mut last = 0.0;
    for r in &wave.records {
        assert!(r.host_t() >= last);
        last = r.host_t();
    }
    let c = ConsentSnapshot::from_manifest(&wave.header.participant, &wave.header.consent);
    for k in [StreamKind::Ecg, StreamKind::Ppg] {
        for purpose in [Purpose::Process, Purpose::Record] {
            assert!(c.allows(&wave.header.participant, k, purpose), "{k:?}");
        }
    }
}

#[test]
fn cli_writes_ecg_and_ppg_that_replay_reads_and_keeps_the_old_output_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("w.attune.ndjson");
    let o = out.to_str().unwrap();
    let args = [
        "simulate",
        "--out",
        o,
        "--minutes",
        "1",
        "--ecg-rate",
        "1000",
        "--ppg-rate",
        "100",
    ];
    let (code, _, err) = run_attune(&args);
    assert_eq!(code, Some(0), "{err}");
    let first = std::fs::read(&out).unwrap();
    let (code, _, _) = run_attune(&args);
    assert_eq!(code, Some(0));
    assert_eq!(
        first,
        std::fs::read(&out).unwrap(),
        "same seed, other bytes"
    );
    let (header, records) = read_recording(&out);
    let kinds: Vec<&str> = header.streams.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["rr", "eda", "ecg", "ppg"]);
    assert_eq!(header.streams[2].unit, "mV");
    assert_eq!(header.streams[3].unit, "a.u.");
    let (ecg, fs) = samples(&records, StreamKind::Ecg);
    assert_eq!((ecg.len(), fs), (60_000, 1000.0));
    let (ppg, fs) = samples(&records, StreamKind::Ppg);
    assert_eq!((ppg.len(), fs), (6_000, 100.0));
    let chunk_len = records
        .iter()
        .find_map(|r| match r {
            Record::Chunk(c) if c.kind == StreamKind::Ecg => Some(c.samples.len()),
            _ => None,
        })
        .unwrap();
    assert_eq!(chunk_len, 250, "0.25 s blocks");

    let run = dir.path().join("run");
    let data = dir.path().join("data");
    let (code, _, err) = run_attune_within(
        &[
            "replay",
            o,
            "--speed",
            "max",
            "--socket",
            run.join("attune.sock").to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        120,
    );
    assert_eq!(code, Some(0), "replay: {err}");

    // Without the new flags the output is the committed fixture, byte for byte.
    let plain = dir.path().join("p.attune.ndjson");
    let (code, _, err) = run_attune(&[
        "simulate",
        "--model",
        "basic",
        "--out",
        plain.to_str().unwrap(),
        "--minutes",
        "10",
        "--seed",
        "7",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(fixture("sim-rest-stress.attune.ndjson")).unwrap()
    );
}

#[test]
fn cli_refuses_rates_out_of_range_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.attune.ndjson");
    let o = out.to_str().unwrap();
    for (flag, v, want) in [
        (
            "--ecg-rate",
            "10",
            "--ecg-rate must be between 50 and 4096 Hz, not 10",
        ),
        (
            "--ecg-rate",
            "5000",
            "--ecg-rate must be between 50 and 4096 Hz",
        ),
        (
            "--ppg-rate",
            "20",
            "--ppg-rate must be between 25 and 2048 Hz, not 20",
        ),
        (
            "--ppg-rate",
            "NaN",
            "--ppg-rate must be between 25 and 2048 Hz",
        ),
    ] {
        let (code, _, err) = run_attune(&["simulate", "--out", o, flag, v]);
        assert_ne!(code, Some(0), "{flag} {v}");
        assert!(err.contains(want), "{flag} {v}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
}

#[test]
fn streaming_the_same_person_chunk_by_chunk_gives_the_recording_samples() {
    let c = SimConfig {
        scenario: Scenario::Rest,
        ..cfg(11, 1.0)
    };
    let s = simulate_with(
        &c,
        &WaveConfig {
            ecg_rate_hz: Some(130.0),
            ppg_rate_hz: Some(64.0),
            mains_hz: None,
        },
    );
    let truth = beat_truth(&c);
    let (e, p) = wave_params(&c);
    let mut ecg = EcgSynth::new(&e, 130.0, c.seed);
    let mut ppg = PpgSynth::new(&p, 64.0, c.seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut buf = [0.0; 73]; // a Polar-H10-sized block
    let mut peaks = Vec::new();
    for &t in &truth.r_peaks_s {
        ecg.push_beat(t);
        peaks.extend(ppg.push_beat(t));
        let k = ecg.fill(&mut buf);
        x.extend_from_slice(&buf[..k]);
        let k = ppg.fill(&mut buf[..16]);
        y.extend_from_slice(&buf[..k]);
    }
    ecg.end_beats();
    ppg.end_beats();
    let (want_x, _) = samples(&s.records, StreamKind::Ecg);
    let (want_y, _) = samples(&s.records, StreamKind::Ppg);
    while x.len() < want_x.len() {
        let k = ecg.fill(&mut buf[..(want_x.len() - x.len()).min(73)]);
        x.extend_from_slice(&buf[..k]);
    }
    while y.len() < want_y.len() {
        let k = ppg.fill(&mut buf[..(want_y.len() - y.len()).min(16)]);
        y.extend_from_slice(&buf[..k]);
    }
    let q = |v: &[f64], s: f64| v.iter().map(|a| (a * s).round() / s).collect::<Vec<_>>();
    assert_eq!(q(&x, 1e3), want_x);
    assert_eq!(q(&y, 1e4), want_y);
    let rounded: Vec<f64> = peaks
        .iter()
        .map(|t| (t * 1e6).round() / 1e6)
        .filter(|&t| t < 60.0)
        .collect();
    assert_eq!(rounded, truth.ppg_peaks_s);
}
