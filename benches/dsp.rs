//! Per-stage benchmarks of the offline DSP. Inputs are synthetic and built here, so
//! the benches need no fixture: `cargo bench --bench dsp`.
//!
//! Sizes follow SIGNALS.md §7's anchors: 10 min of 1000 Hz ECG, 1 h of 32 Hz EDA, 5 min of RR.

use attune::dsp::{ecg, eda_nk, hrv};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// A spiky ECG-like signal: narrow triangles every ~0.85 s on a wandering baseline, mV.
fn ecg_like(seconds: f64, fs: f64) -> Vec<f64> {
    let n = (seconds * fs) as usize;
    let period = 0.85 * fs;
    (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            let phase = (i as f64 % period) / fs;
            let r = (1.0 - (phase - 0.3).abs() / 0.012).max(0.0);
            r + 0.1 * (2.0 * std::f64::consts::PI * 0.25 * t).sin()
                + 0.01 * ((i * 7919) % 13) as f64
        })
        .collect()
}

/// EDA-like: a level with SCR-shaped bumps every 20 s, µS.
fn eda_like(seconds: f64, fs: f64) -> Vec<f64> {
    let n = (seconds * fs) as usize;
    (0..n)
        .map(|i| {
            let u = (i as f64 / fs) % 20.0;
            4.0 + 0.3 * ((-u / 4.0).exp() - (-u / 0.75).exp())
        })
        .collect()
}

fn rr_like(beats: usize) -> Vec<f64> {
    (0..beats)
        .map(|i| 850.0 + 40.0 * (i as f64 * 0.9).sin() + ((i * 31) % 17) as f64)
        .collect()
}

fn benches(c: &mut Criterion) {
    let fs = 1000.0;
    let x = ecg_like(600.0, fs);
    let clean = ecg::clean(&x, fs, 50.0).unwrap_or_default();
    let peaks = ecg::peaks_neurokit(&clean, fs);
    let rri = hrv::intervals_ms(&peaks, fs);
    let mut g = c.benchmark_group("ecg_10min_1000hz");
    g.sample_size(10);
    g.bench_function("ecg_clean", |b| {
        b.iter(|| ecg::clean(black_box(&x), fs, 50.0))
    });
    g.bench_function("ecg_peaks", |b| {
        b.iter(|| ecg::peaks_neurokit(black_box(&clean), fs))
    });
    g.bench_function("hrv_time", |b| b.iter(|| hrv::time_domain(black_box(&rri))));
    g.bench_function("hrv_frequency_neurokit", |b| {
        b.iter(|| hrv::frequency_neurokit(black_box(&rri)))
    });
    g.bench_function("hrv_frequency_taskforce", |b| {
        b.iter(|| hrv::frequency_taskforce(black_box(&rri)))
    });
    g.finish();

    let rr5 = rr_like(350);
    c.bench_function("hrv_frequency_taskforce_5min_rr", |b| {
        b.iter(|| hrv::frequency_taskforce(black_box(&rr5)))
    });

    let eda = eda_like(3600.0, 32.0);
    let mut g = c.benchmark_group("eda_1h_32hz");
    g.sample_size(10);
    g.bench_function("eda_process", |b| {
        b.iter(|| eda_nk::process(black_box(&eda), 32.0))
    });
    g.finish();
}

criterion_group!(dsp, benches);
criterion_main!(dsp);
