//! Waveform streams (ECG, PPG) cut into the 0.25 s blocks a wired or BLE sensor streams, for
//! both simulator models: the synthesiser gets every beat, then fills one block at a time,
//! following the breathing rate the model gives for each block.

use crate::model::{Chunk, ParticipantId, StreamKind, Timing};
use crate::recording::Record;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::round_us;
use super::waveform::{EcgSynth, PpgSynth};

/// Block length of the waveform streams, s.
const WAVE_BLOCK_S: f64 = 0.25;

pub(crate) enum Synth<'a> {
    Ecg(&'a mut EcgSynth),
    Ppg(&'a mut PpgSynth),
}

impl Synth<'_> {
    fn rate_hz(&self) -> f64 {
        match self {
            Self::Ecg(s) => s.rate_hz(),
            Self::Ppg(s) => s.rate_hz(),
        }
    }
    fn push_beat(&mut self, t: f64) {
        match self {
            Self::Ecg(s) => drop(s.push_beat(t)),
            Self::Ppg(s) => drop(s.push_beat(t)),
        }
    }
    fn end_beats(&mut self) {
        match self {
            Self::Ecg(s) => s.end_beats(),
            Self::Ppg(s) => s.end_beats(),
        }
    }
    fn set_resp_hz(&mut self, hz: f64) {
        match self {
            Self::Ecg(s) => s.set_resp_hz(hz),
            Self::Ppg(s) => s.set_resp_hz(hz),
        }
    }
    fn fill(&mut self, out: &mut [f64]) -> usize {
        match self {
            Self::Ecg(s) => s.fill(out),
            Self::Ppg(s) => s.fill(out),
        }
    }
    fn kind(&self) -> StreamKind {
        match self {
            Self::Ecg(_) => StreamKind::Ecg,
            Self::Ppg(_) => StreamKind::Ppg,
        }
    }
    /// Values as the device reports them: ECG to 1 µV, PPG to 10⁻⁴ a.u.
    fn quantise(&self, v: f64) -> f64 {
        match self {
            Self::Ecg(_) => (v * 1e3).round() / 1e3,
            Self::Ppg(_) => (v * 1e4).round() / 1e4,
        }
    }
}

/// A waveform stream in blocks of 0.25 s, with R peaks at `beats`; the waveform's respiratory
/// rate at each block's start is `resp_hz_at(t)` (the basic model's rises by up to 0.05 Hz under
/// stress).
pub(crate) fn wave_records(
    synth: &mut Synth<'_>,
    beats: &[f64],
    rng: &mut ChaCha8Rng,
    resp_hz_at: &dyn Fn(f64) -> f64,
    participant: &ParticipantId,
    dur: f64,
) -> Vec<Record> {
    let fs = synth.rate_hz();
    let kind = synth.kind();
    for &t in beats {
        synth.push_beat(t);
    }
    synth.end_beats();
    let n = (dur * fs).floor() as usize;
    let per_chunk = (fs * WAVE_BLOCK_S).round().max(1.0) as usize;
    let mut buf = vec![0.0; per_chunk];
    let mut out = Vec::with_capacity(n / per_chunk + 1);
    let mut start = 0;
    let mut seq = 0;
    while start < n {
        let len = per_chunk.min(n - start);
        let t0 = start as f64 / fs;
        synth.set_resp_hz(resp_hz_at(t0));
        let got = synth.fill(&mut buf[..len]);
        let samples: Vec<f64> = buf[..got].iter().map(|&v| synth.quantise(v)).collect();
        let last = t0 + (len - 1) as f64 / fs;
        out.push(Record::Chunk(Chunk {
            raw: None,
            meta: None,
            participant: participant.clone(),
            kind,
            seq,
            host_t: round_us(last + 1.0 / fs + rng.random_range(0.005..0.040)),
            timing: Timing::Uniform { t0, rate_hz: fs },
            samples,
        }));
        seq += 1;
        start += len;
    }
    out
}
