//! The bench's signal bank: a few persons' worth of ECG and EDA, computed once and cut into
//! chunks for every participant, so that the cost measured is the engine's, not the
//! generator's.
//!
//! Each entry is a different seed of the waveform simulator (`crate::simulate::waveform`): an
//! ECG whose beats follow a heart-rate model with respiratory sinus arrhythmia, and an EDA with
//! a tonic level and spontaneous SCRs; entries are `seconds` long and looped by the source.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bank entries (distinct persons).
pub const ENTRIES: usize = 8;

/// Beat times (s) of a resting heart over `seconds`: 60–75 bpm, RSA ±40 ms at 0.25 Hz, jitter.
pub fn beat_times(seed: u64, seconds: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = 60.0 / rng.random_range(60.0..75.0);
    let mut t = rng.random_range(0.1..0.5);
    let mut out = Vec::new();
    while t < seconds {
        out.push(t);
        let rsa = 0.04 * (2.0 * std::f64::consts::PI * 0.25 * t).sin();
        t += base + rsa + rng.random_range(-0.01..0.01);
    }
    out
}

/// `seconds` of ECG at `fs` for bank entry `seed`, mV.
pub fn ecg(seed: u64, fs: f64, seconds: f64) -> Vec<f64> {
    let beats = beat_times(seed, seconds);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xec9);
    let params = crate::simulate::waveform::EcgParams::draw(&mut rng);
    crate::simulate::waveform::ecg_from_beats(&beats, fs, seconds, &params, seed)
}

/// `seconds` of EDA at `fs` for bank entry `seed`, µS: a drifting tonic level with SCRs
/// (Bateman shape, rise τ 0.75 s, decay τ 4 s) about twice a minute.
pub fn eda(seed: u64, fs: f64, seconds: f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xeda);
    let n = (seconds * fs).round() as usize;
    let level = rng.random_range(2.0..10.0);
    let mut onsets = Vec::new();
    let mut t = rng.random_range(0.0..20.0);
    while t < seconds {
        onsets.push((t, rng.random_range(0.05..0.4)));
        t += rng.random_range(10.0..50.0);
    }
    (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            let scr: f64 = onsets
                .iter()
                .filter(|(o, _)| *o <= t && t - o < 40.0)
                .map(|(o, a)| a * 1.6 * ((-(t - o) / 4.0).exp() - (-(t - o) / 0.75).exp()))
                .sum();
            level + 0.2 * (2.0 * std::f64::consts::PI * t / seconds).sin() + scr
        })
        .collect()
}
