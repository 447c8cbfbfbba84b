//! Unit tests of the streaming detectors on synthetic signals, and a fuzz-style property test.

use super::*;
use proptest::prelude::*;
use std::f64::consts::PI;

/// A synthetic ECG (mV) at `fs` Hz for `secs` s: narrow R waves (σ = 8 ms, 1.2 mV) with small
/// Q and S dips and a T wave, at a slightly varying rate around `bpm`; returns the samples and
/// the R-peak times (s).
fn ecg(fs: f64, secs: f64, bpm: f64) -> (Vec<f64>, Vec<f64>) {
    let mut beats = Vec::new();
    let mut t = 0.5;
    let mut k: f64 = 0.0;
    while t < secs {
        beats.push(t);
        k += 1.0;
        t += 60.0 / bpm * (1.0 + 0.05 * (0.7 * k).sin());
    }
    let g = |t: f64, c: f64, s: f64| (-0.5 * ((t - c) / s).powi(2)).exp();
    // 10 µV of deterministic noise: a real ECG is never exactly silent between beats.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let x = (0..(fs * secs) as usize)
        .map(|i| {
            let t = i as f64 / fs;
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = 0.01 * (((seed >> 11) as f64 / (1u64 << 53) as f64) - 0.5);
            noise
                + beats
                    .iter()
                    .filter(|&&b| (t - b).abs() < 0.6)
                    .map(|&b| {
                        1.2 * g(t, b, 0.008)
                            - 0.15 * g(t, b - 0.025, 0.006)
                            - 0.25 * g(t, b + 0.025, 0.007)
                            + 0.3 * g(t, b + 0.25, 0.04)
                    })
                    .sum::<f64>()
        })
        .collect();
    (x, beats)
}

/// A synthetic PPG: one skewed pulse per beat at `bpm`; returns samples and systolic times (s).
fn ppg(fs: f64, secs: f64, bpm: f64) -> (Vec<f64>, Vec<f64>) {
    let period = 60.0 / bpm;
    let x = (0..(fs * secs) as usize)
        .map(|i| {
            let t = i as f64 / fs;
            let phase = (t % period) / period;
            (-((phase - 0.25) / 0.08).powi(2)).exp() + 0.3 * (-((phase - 0.55) / 0.1).powi(2)).exp()
        })
        .collect();
    let beats = (0..)
        .map(|k| (k as f64 + 0.25) * period)
        .take_while(|&t| t < secs)
        .collect();
    (x, beats)
}

fn detect(kind: Waveform, fs: f64, x: &[f64]) -> (BeatDetector, Vec<DetectedBeat>) {
    let mut d = BeatDetector::new(kind, fs, &BeatConfig::default()).unwrap();
    let mut out = Vec::new();
    for chunk in x.chunks(37) {
        d.push(chunk, &mut out);
    }
    (d, out)
}

/// Every true beat after `from` s (and not in the last `bound`) has one detection within `tol`
/// s, there is no other detection, and each was confirmed within the bound.
fn assert_found(
    d: &BeatDetector,
    got: &[DetectedBeat],
    truth: &[f64],
    fs: f64,
    n: usize,
    tol: f64,
) {
    let bound = d.max_delay_s();
    let last = n as f64 / fs - bound;
    let want: Vec<f64> = truth
        .iter()
        .copied()
        .filter(|&t| t > 0.35 && t < last)
        .collect();
    let times: Vec<f64> = got
        .iter()
        .map(|b| b.at / fs)
        .filter(|&t| t > 0.35 && t < last)
        .collect();
    assert_eq!(times.len(), want.len(), "fs {fs}: {times:?} vs {want:?}");
    for (a, b) in times.iter().zip(&want) {
        assert!((a - b).abs() <= tol, "fs {fs}: beat at {a} s vs {b} s");
    }
    for b in got {
        let delay = (b.confirmed as f64 - b.at) / fs;
        assert!((0.0..=bound).contains(&delay), "delay {delay} > {bound}");
    }
}

#[test]
fn ecg_spikes_are_found_at_every_rate_within_the_delay_bound() {
    for fs in [100.0, 250.0, 360.0, 500.0, 1000.0, 2048.0] {
        let (x, truth) = ecg(fs, 20.0, 75.0);
        let (d, got) = detect(Waveform::Ecg, fs, &x);
        assert_found(&d, &got, &truth, fs, x.len(), 0.012);
        assert!(d.max_delay_s() <= 0.3, "fs {fs}: bound {}", d.max_delay_s());
        assert_eq!(d.issue(), None, "fs {fs}");
        assert_eq!(d.samples(), x.len() as u64);
    }
}

#[test]
fn ecg_survives_a_strong_baseline_wander() {
    let fs = 500.0;
    let (mut x, truth) = ecg(fs, 30.0, 70.0);
    for (i, v) in x.iter_mut().enumerate() {
        *v += 2.0 * (2.0 * PI * 0.3 * i as f64 / fs).sin();
    }
    let (d, got) = detect(Waveform::Ecg, fs, &x);
    assert_found(&d, &got, &truth, fs, x.len(), 0.012);
    assert_eq!(d.issue(), None);
}

#[test]
fn inverted_leads_are_flagged_and_the_beats_still_reported() {
    let fs = 500.0;
    let (x, truth) = ecg(fs, 30.0, 70.0);
    let neg: Vec<f64> = x.iter().map(|v| -v).collect();
    let (d, got) = detect(Waveform::Ecg, fs, &neg);
    assert_eq!(d.issue(), Some(SignalIssue::Inverted));
    // Once the vote has switched (8 beats), the inverted R peaks are reported where they are.
    let late: Vec<DetectedBeat> = got.iter().copied().filter(|b| b.at / fs > 10.2).collect();
    let want: Vec<f64> = truth.iter().copied().filter(|&t| t > 10.2).collect();
    assert_found(&d, &late, &want, fs, x.len(), 0.012);
    // An upright ECG is not flagged.
    let (d, _) = detect(Waveform::Ecg, fs, &x);
    assert_eq!(d.issue(), None);
}

#[test]
fn a_flat_line_gives_no_beats_and_is_flagged() {
    for kind in [Waveform::Ecg, Waveform::Ppg] {
        let (d, got) = detect(kind, 250.0, &vec![0.42; 2500]);
        assert!(got.is_empty());
        assert_eq!(d.issue(), Some(SignalIssue::Flat), "{kind:?}");
    }
    // Lead off after good signal: the ECG goes flat at its last value.
    let fs = 250.0;
    let (mut x, _) = ecg(fs, 10.0, 70.0);
    let last = x[x.len() - 1];
    x.extend(std::iter::repeat_n(last, 1000));
    let (d, _) = detect(Waveform::Ecg, fs, &x);
    assert_eq!(d.issue(), Some(SignalIssue::Flat));
}

#[test]
fn a_clipped_signal_is_flagged_as_saturated() {
    let fs = 360.0;
    let (x, _) = ecg(fs, 20.0, 70.0);
    // An amplifier that clips: the ECG rides on a large wander and hits both rails.
    let clipped: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| (v + 3.0 * (2.0 * PI * 0.25 * i as f64 / fs).sin()).clamp(-1.5, 1.5))
        .collect();
    let (d, _) = detect(Waveform::Ecg, fs, &clipped);
    assert_eq!(d.issue(), Some(SignalIssue::Saturated));
    let (p, _) = ppg(100.0, 20.0, 70.0);
    let clipped: Vec<f64> = p.iter().map(|v| v.min(0.5)).collect();
    let (d, _) = detect(Waveform::Ppg, 100.0, &clipped);
    assert_eq!(d.issue(), Some(SignalIssue::Saturated));
}

#[test]
fn dominant_mains_hum_is_flagged() {
    for (hz, mains) in [(50.0, 50.0), (60.0, 60.0), (60.0, 50.0)] {
        let fs = 1000.0;
        let (mut x, truth) = ecg(fs, 20.0, 70.0);
        for (i, v) in x.iter_mut().enumerate() {
            *v += 1.0 * (2.0 * PI * hz * i as f64 / fs).sin();
        }
        let cfg = BeatConfig {
            powerline_hz: mains,
        };
        let mut d = BeatDetector::new(Waveform::Ecg, fs, &cfg).unwrap();
        let mut got = Vec::new();
        d.push(&x, &mut got);
        assert_eq!(
            d.issue(),
            Some(SignalIssue::Mains),
            "{hz} Hz hum, {mains} Hz mains"
        );
        if hz == mains {
            // The powerline means null the configured mains: the beats are still right.
            assert_found(&d, &got, &truth, fs, x.len(), 0.012);
        }
    }
}

#[test]
fn no_beats_for_three_seconds_is_flagged() {
    let fs = 250.0;
    let (mut x, _) = ecg(fs, 10.0, 70.0);
    // Then a slow wave with no QRS.
    let n = x.len();
    x.extend((0..1250).map(|i| 0.3 * (2.0 * PI * 0.7 * (n + i) as f64 / fs).sin()));
    let (d, _) = detect(Waveform::Ecg, fs, &x);
    assert_eq!(d.issue(), Some(SignalIssue::NoBeats));
}

#[test]
fn non_finite_samples_are_bridged_or_restart_the_filters() {
    let fs = 500.0;
    let (x, truth) = ecg(fs, 30.0, 70.0);
    // Single bad samples every 0.37 s: held, the beats are unchanged (to a sample or two).
    let mut dirty = x.clone();
    for (k, i) in (0..x.len()).step_by(185).enumerate() {
        dirty[i] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300][k % 4];
    }
    let (d, got) = detect(Waveform::Ecg, fs, &dirty);
    assert_found(&d, &got, &truth, fs, x.len(), 0.012);
    assert_eq!(d.issue(), Some(SignalIssue::NonFinite));
    // A 2 s hole of NaN: the filters restart after it, and beats resume after 0.3 s; no beat is
    // invented in or around the hole; the issue clears 2 s later.
    let mut holed = x.clone();
    holed[5000..6000].fill(f64::NAN);
    let (d, got) = detect(Waveform::Ecg, fs, &holed);
    let want: Vec<f64> = truth
        .iter()
        .copied()
        .filter(|&t| !(9.7..=12.3).contains(&t))
        .collect();
    let kept: Vec<DetectedBeat> = got
        .iter()
        .copied()
        .filter(|b| !(9.7..=12.3).contains(&(b.at / fs)))
        .collect();
    assert!(got.iter().all(|b| !(10.0..12.0).contains(&(b.at / fs))));
    assert_found(&d, &kept, &want, fs, x.len(), 0.012);
    assert_eq!(d.issue(), None);
    // Only bad samples: nothing, and no panic.
    let (d, got) = detect(Waveform::Ppg, 100.0, &[f64::NAN; 1000]);
    assert!(got.is_empty());
    assert_eq!(d.issue(), Some(SignalIssue::NonFinite));
}

#[test]
fn reset_starts_over() {
    for kind in [Waveform::Ecg, Waveform::Ppg] {
        let fs = 250.0;
        let (x, _) = if kind == Waveform::Ecg {
            ecg(fs, 15.0, 70.0)
        } else {
            ppg(fs, 15.0, 70.0)
        };
        let (mut d, first) = detect(kind, fs, &x);
        d.reset();
        assert_eq!(d.samples(), 0);
        let mut again = Vec::new();
        d.push(&x, &mut again);
        assert_eq!(first, again, "{kind:?}");
    }
}

#[test]
fn ppg_pulses_are_found_within_the_delay_bound() {
    for fs in [25.0, 64.0, 100.0, 256.0, 1000.0, 2048.0] {
        let (x, truth) = ppg(fs, 30.0, 72.0);
        let (d, got) = detect(Waveform::Ppg, fs, &x);
        assert_found(&d, &got, &truth, fs, x.len(), 0.04);
        assert_eq!(d.issue(), None, "fs {fs}");
    }
}

#[test]
fn ppg_peak_shift_model_is_small_and_positive_in_the_heart_rate_range() {
    for fs in [25.0, 100.0, 1000.0] {
        for bpm in [40.0, 60.0, 90.0, 150.0, 200.0] {
            let s = ppg::peak_shift_s(fs, bpm / 60.0);
            assert!(
                (0.0..=ppg::MAX_CORRECTION_S).contains(&s),
                "{fs} Hz {bpm} bpm: {s}"
            );
        }
    }
    assert_eq!(ppg::peak_shift_s(100.0, f64::NAN), 0.0);
}

#[test]
fn highpass_phase_lead_matches_an_independent_computation() {
    // Python (cmath) on the same sections: −10.31, −2.58, −1.14 ms at 5, 10, 15 Hz (1000 Hz).
    for (f, want) in [(5.0, -10.31e-3), (10.0, -2.58e-3), (15.0, -1.14e-3)] {
        let got = ecg::highpass_phase_delay_s(1000.0, f);
        assert!((got - want).abs() < 0.01e-3, "{f} Hz: {got}");
    }
    // The same lead at every rate (the bilinear prewarp keeps the analog response near 10 Hz).
    for fs in [100.0, 360.0, 2048.0] {
        let got = ecg::highpass_phase_delay_s(fs, 10.0);
        assert!((got + 2.58e-3).abs() < 0.15e-3, "{fs} Hz: {got}");
    }
}

#[test]
fn rates_outside_the_supported_range_are_errors() {
    let cfg = BeatConfig::default();
    for (kind, fs) in [
        (Waveform::Ecg, 99.9),
        (Waveform::Ecg, 2048.1),
        (Waveform::Ecg, f64::NAN),
        (Waveform::Ppg, 24.0),
        (Waveform::Ppg, f64::INFINITY),
        (Waveform::Ppg, -1.0),
    ] {
        assert!(
            matches!(
                BeatDetector::new(kind, fs, &cfg),
                Err(BeatError::Rate { .. })
            ),
            "{kind:?} {fs}"
        );
    }
    for (kind, fs) in [
        (Waveform::Ecg, 100.0),
        (Waveform::Ecg, 2048.0),
        (Waveform::Ppg, 25.0),
    ] {
        assert!(BeatDetector::new(kind, fs, &cfg).is_ok());
    }
    // A nonsensical mains setting falls back to 50 Hz.
    let odd = BeatConfig {
        powerline_hz: f64::NAN,
    };
    assert!(BeatDetector::new(Waveform::Ecg, 500.0, &odd).is_ok());
}

fn garbage() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -5.0..5.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => prop::num::f64::ANY,
        1 => Just(0.0),
        1 => Just(1e100),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any input, any chunking, at the edge rates: no panic; beats in order, finite, confirmed
    /// by a sample already pushed and within the bound; chunking does not matter.
    #[test]
    fn any_input_is_safe(
        xs in prop::collection::vec(garbage(), 0..3000),
        runs in prop::collection::vec((0usize..3000, 1usize..400), 0..4),
        kind in prop_oneof![Just(Waveform::Ecg), Just(Waveform::Ppg)],
        fs_pick in 0usize..4,
        chunk in 1usize..300,
    ) {
        let fs = match (kind, fs_pick) {
            (Waveform::Ecg, 0) => 100.0,
            (Waveform::Ecg, 1) => 2048.0,
            (Waveform::Ecg, _) => 360.0,
            (Waveform::Ppg, 0) => 25.0,
            (Waveform::Ppg, 1) => 2048.0,
            (Waveform::Ppg, _) => 64.0,
        };
        // Mix garbage into a real signal, so that the detector is mid-beat when it strikes.
        let (mut x, _) = if kind == Waveform::Ecg { ecg(fs, 6.0, 80.0) } else { ppg(fs, 6.0, 80.0) };
        for (at, len) in runs {
            for (k, v) in xs.iter().skip(at % xs.len().max(1)).take(len).enumerate() {
                if let Some(s) = x.get_mut(at + k) {
                    *s = *v;
                }
            }
        }
        x.extend_from_slice(&xs);
        let mut d = BeatDetector::new(kind, fs, &BeatConfig::default()).unwrap();
        let mut whole = Vec::new();
        d.push(&x, &mut whole);
        let _ = d.issue();
        let mut d2 = BeatDetector::new(kind, fs, &BeatConfig::default()).unwrap();
        let mut parts = Vec::new();
        for c in x.chunks(chunk) {
            d2.push(c, &mut parts);
            let _ = d2.issue();
        }
        prop_assert_eq!(&whole, &parts);
        let bound = d.max_delay_s();
        let mut prev = f64::NEG_INFINITY;
        for b in &whole {
            prop_assert!(b.at.is_finite() && b.at >= 0.0 && b.at > prev);
            prop_assert!(b.confirmed < x.len() as u64);
            prop_assert!((b.confirmed as f64 - b.at) / fs <= bound + 1e-9);
            prev = b.at;
        }
    }
}

/// Cost per sample, for the integrator: `cargo test --release --lib dsp::beats::tests::speed --
/// --ignored --nocapture` (1 h of ECG and of PPG at 1 kHz, in 1000-sample chunks).
#[test]
#[ignore = "timing; run in release mode"]
fn speed() {
    for kind in [Waveform::Ecg, Waveform::Ppg] {
        let fs = 1000.0;
        let (minute, _) = if kind == Waveform::Ecg {
            ecg(fs, 60.0, 72.0)
        } else {
            ppg(fs, 60.0, 72.0)
        };
        let x: Vec<f64> = std::iter::repeat_n(&minute, 60)
            .flatten()
            .copied()
            .collect();
        let mut d = BeatDetector::new(kind, fs, &BeatConfig::default()).unwrap();
        let mut out = Vec::with_capacity(8192);
        let t = std::time::Instant::now();
        for c in x.chunks(1000) {
            d.push(c, &mut out);
        }
        let ns = t.elapsed().as_nanos() as f64 / x.len() as f64;
        eprintln!(
            "{kind:?}: {ns:.1} ns/sample over {} samples, {} beats",
            x.len(),
            out.len()
        );
    }
}
