//! Tests of `waveform`.

use super::*;

/// Beats with a 0.25 Hz RSA around 70 bpm, s.
fn beats(dur: f64) -> Vec<f64> {
    let mut t = 0.6;
    let mut out = Vec::new();
    while t < dur {
        out.push(t);
        t += 0.857 + 0.05 * (2.0 * PI * 0.25 * t).sin();
    }
    out
}

fn person(seed: u64) -> (EcgParams, PpgParams) {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (EcgParams::draw(&mut r), PpgParams::draw(&mut r))
}

fn argmax_near(x: &[f64], fs: f64, t: f64, half_s: f64) -> f64 {
    let lo = ((t - half_s) * fs).ceil().max(0.0) as usize;
    let hi = (((t + half_s) * fs).floor() as usize).min(x.len() - 1);
    let i = (lo..=hi)
        .max_by(|&a, &b| x[a].total_cmp(&x[b]))
        .unwrap_or(lo);
    i as f64 / fs
}

#[test]
fn r_peaks_and_systolic_peaks_are_where_the_truth_says() {
    let b = beats(60.0);
    for seed in 1..=4 {
        let (e, p) = person(seed);
        for fs in [250.0, 500.0, 1000.0] {
            let x = ecg_from_beats(&b, fs, 60.0, &e.clone().noise_free(), seed);
            for &t in &b[..b.len() - 1] {
                let got = argmax_near(&x, fs, t, 0.1);
                assert!((got - t).abs() <= 1.0 / fs, "ECG fs {fs}: {got} vs {t}");
            }
            let (y, peaks) = ppg_from_beats(&b, fs, 60.0, &p.clone().noise_free(), seed);
            for &t in &peaks[..peaks.len() - 1] {
                let got = argmax_near(&y, fs, t, 0.1);
                assert!((got - t).abs() <= 1.0 / fs, "PPG fs {fs}: {got} vs {t}");
            }
        }
    }
}

#[test]
fn streaming_in_odd_blocks_equals_the_whole_record() {
    let b = beats(30.0);
    let (e, p) = person(7);
    let whole = ecg_from_beats(&b, 500.0, 30.0, &e, 7);
    let (whole_ppg, _) = ppg_from_beats(&b, 100.0, 30.0, &p, 7);
    let mut s = EcgSynth::new(&e, 500.0, 7);
    let mut q = PpgSynth::new(&p, 100.0, 7);
    let (mut out, mut out_ppg) = (Vec::new(), Vec::new());
    let mut buf = [0.0; 37];
    for &t in &b {
        s.push_beat(t);
        q.push_beat(t);
        loop {
            let k = s.fill(&mut buf);
            out.extend_from_slice(&buf[..k]);
            if k < buf.len() {
                break;
            }
        }
        let k = q.fill(&mut buf[..13]);
        out_ppg.extend_from_slice(&buf[..k]);
    }
    s.end_beats();
    q.end_beats();
    while out.len() < whole.len() {
        let k = s.fill(&mut buf[..(whole.len() - out.len()).min(37)]);
        out.extend_from_slice(&buf[..k]);
    }
    while out_ppg.len() < whole_ppg.len() {
        let k = q.fill(&mut buf[..(whole_ppg.len() - out_ppg.len()).min(13)]);
        out_ppg.extend_from_slice(&buf[..k]);
    }
    assert_eq!(out, whole);
    assert_eq!(out_ppg, whole_ppg);
}

#[test]
fn a_sample_waits_for_the_beats_that_reach_it() {
    let (e, _) = person(1);
    let mut s = EcgSynth::new(&e, 1000.0, 1);
    assert_eq!(s.ready(), 0);
    s.push_beat(1.0);
    assert_eq!(s.ready(), 200); // up to 1.0 − 0.8 s
    s.push_beat(1.8);
    assert_eq!(s.ready(), 1000);
}

#[test]
fn amplitudes_are_plausible() {
    let b = beats(60.0);
    let (e, p) = person(3);
    let x = ecg_from_beats(&b, 500.0, 60.0, &e.clone().noise_free(), 3);
    let max = x.iter().copied().fold(f64::MIN, f64::max);
    let min = x.iter().copied().fold(f64::MAX, f64::min);
    assert!((0.95..1.6).contains(&max), "R {max}");
    assert!((-0.6..-0.1).contains(&min), "S {min}");
    let (y, _) = ppg_from_beats(&b, 100.0, 60.0, &p.noise_free(), 3);
    let max = y.iter().copied().fold(f64::MIN, f64::max);
    assert!((0.7..1.4).contains(&max), "PPG {max}");
}

#[test]
fn same_seed_same_samples_other_seed_other_noise() {
    let b = beats(20.0);
    let (e, _) = person(1);
    let a = ecg_from_beats(&b, 250.0, 20.0, &e, 5);
    assert_eq!(a, ecg_from_beats(&b, 250.0, 20.0, &e, 5));
    assert_ne!(a, ecg_from_beats(&b, 250.0, 20.0, &e, 6));
}

/// `cargo test --release --lib waveform::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore = "timing; run in release"]
fn throughput() {
    let b = beats(600.0);
    let (e, p) = person(1);
    let mut buf = vec![0.0; 250];
    for fs in [250.0, 1000.0] {
        let n = (600.0 * fs) as usize;
        let mut s = EcgSynth::new(&e, fs, 1);
        let mut q = PpgSynth::new(&p, fs, 1);
        for &t in &b {
            s.push_beat(t);
            q.push_beat(t);
        }
        s.end_beats();
        q.end_beats();
        let (mut done, mut sink) = (0, 0.0);
        let t = std::time::Instant::now();
        while done < n {
            done += s.fill(&mut buf);
            sink += buf[0];
        }
        let ecg = t.elapsed().as_nanos() as f64 / n as f64;
        let t = std::time::Instant::now();
        done = 0;
        while done < n {
            done += q.fill(&mut buf);
            sink += buf[0];
        }
        let ppg = t.elapsed().as_nanos() as f64 / n as f64;
        eprintln!("{fs} Hz: ECG {ecg:.1} ns/sample, PPG {ppg:.1} ns/sample ({sink:.1})");
    }
}
