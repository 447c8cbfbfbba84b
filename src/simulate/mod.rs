//! Synthetic participants: RR intervals and EDA whose physiology changes at a stress onset.
//!
//! Pure: a seed in, a recording (header and records in host-arrival order) out; the same seed
//! gives the same bytes on every machine (ChaCha8 RNG, no clock).
//!
//! The model (each parameter drawn per person from the seed; values are typical adult ranges,
//! chosen for plausibility, not fitted to a dataset):
//! - **Heart**: RR(t) = 60000/HR(t) + respiratory sinus arrhythmia A·sin(2π f_resp t) + a 0.1 Hz
//!   Mayer wave + a slow AR(1) wander + beat-to-beat jitter. Resting HR 58–80 bpm, RSA amplitude
//!   25–60 ms at 0.2–0.3 Hz. Under stress HR rises 10–22 bpm and RSA shrinks to 25–50 %, which
//!   lowers RMSSD (vagal withdrawal, Task Force 1996). Beat times are integrated from RR, and
//!   each RR is quantised to 1/1024 s as a BLE Heart Rate strap reports it (SIGNALS.md §2.5).
//! - **EDA** at 32 Hz: tonic SCL 2–10 µS with a slow random drift; SCRs as Bateman functions
//!   (rise τ 0.6–0.9 s, decay τ 3–5 s, so rise times ≈ 1.5–2 s) arriving as a Poisson process at
//!   1–3/min at rest and 4–9/min under stress (non-specific SCRs, SIGNALS.md §5), log-normal
//!   amplitudes (median 0.12 µS at rest, 0.25 µS under stress); under stress the SCL rises by
//!   0.6–2.5 µS over ~30 s; white measurement noise of 3 nS, values rounded to 0.1 nS.
//! - The change ramps in smoothly (raised cosine) over 10–30 s from the onset.
//!
//! Host arrival: one RR chunk per beat, arriving 10–60 ms after the beat (one BLE notification);
//! EDA in 1 s chunks (32 samples) arriving 5–40 ms after the last sample.

pub mod live;

use crate::consent::{AllStreams, ConsentManifest, ManifestGrant, Purpose, StreamSelector};
use crate::model::{Chunk, ParticipantId, StreamKind, Timing};
use crate::recording::{
    Device, FORMAT_NAME, FORMAT_VERSION, Header, Marker, Provenance, Record, Segment, StreamSpec,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};
use serde_json::json;
use std::f64::consts::PI;

/// Simulated scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Seated rest for the first half, then a stressor for the second half.
    RestThenStress,
    /// Rest for the whole recording.
    Rest,
}

impl Scenario {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RestThenStress => "rest-then-stress",
            Self::Rest => "rest",
        }
    }
}

/// Simulation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Scenario.
    pub scenario: Scenario,
    /// Length, s (≥ 60).
    pub duration_s: f64,
    /// RNG seed; also picks the person.
    pub seed: u64,
    /// Participant id written in the header.
    pub participant: ParticipantId,
    /// EDA rate, Hz.
    pub eda_rate_hz: f64,
}

/// The person a seed draws.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Person {
    hr_rest: f64,
    hr_rise: f64,
    rsa_ms: f64,
    rsa_stress_factor: f64,
    f_resp: f64,
    mayer_ms: f64,
    jitter_ms: f64,
    scl0: f64,
    scl_rise: f64,
    scr_rate_rest: f64,
    scr_rate_stress: f64,
    scr_amp_rest: f64,
    scr_amp_stress: f64,
    ramp_s: f64,
}

impl Person {
    pub(crate) fn draw(rng: &mut ChaCha8Rng) -> Self {
        Self {
            hr_rest: rng.random_range(58.0..80.0),
            hr_rise: rng.random_range(10.0..22.0),
            rsa_ms: rng.random_range(25.0..60.0),
            rsa_stress_factor: rng.random_range(0.25..0.5),
            f_resp: rng.random_range(0.2..0.3),
            mayer_ms: rng.random_range(10.0..25.0),
            jitter_ms: rng.random_range(5.0..10.0),
            scl0: rng.random_range(2.0..10.0),
            scl_rise: rng.random_range(0.6..2.5),
            scr_rate_rest: rng.random_range(1.0..3.0),
            scr_rate_stress: rng.random_range(4.0..9.0),
            scr_amp_rest: 0.12,
            scr_amp_stress: 0.25,
            ramp_s: rng.random_range(10.0..30.0),
        }
    }
}

/// A simulated recording.
pub struct Simulation {
    /// The header.
    pub header: Header,
    /// Records in host-arrival order.
    pub records: Vec<Record>,
}

/// Stress level 0..1 at time t: 0 before the onset, raised-cosine ramp to 1.
pub(crate) fn stress_level(t: f64, onset: Option<f64>, ramp_s: f64) -> f64 {
    match onset {
        Some(o) if t > o => {
            let x = ((t - o) / ramp_s).min(1.0);
            0.5 - 0.5 * (PI * x).cos()
        }
        _ => 0.0,
    }
}

/// The consent a simulated participant comes with (they are synthetic: nobody to ask): process,
/// adapt, share features and record, for every stream. The same manifest goes into simulated
/// recordings and governs live simulated participants; the ledger can still withdraw any of it.
pub fn synthetic_consent() -> ConsentManifest {
    ConsentManifest {
        text_version: Some("synthetic-1".into()),
        by: Some("attune simulate".into()),
        grants: vec![ManifestGrant {
            stream: StreamSelector::All(AllStreams::All),
            purposes: vec![
                Purpose::Process,
                Purpose::Adapt,
                Purpose::ShareFeatures,
                Purpose::Record,
            ],
        }],
    }
}

/// Generates a recording.
pub fn simulate(cfg: &SimConfig) -> Simulation {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let person = Person::draw(&mut rng);
    let dur = cfg.duration_s.max(60.0);
    let onset = match cfg.scenario {
        Scenario::RestThenStress => Some((dur / 2.0).round()),
        Scenario::Rest => None,
    };
    let participant = cfg.participant.clone();
    let mut records = rr_records(&mut rng, &person, &participant, dur, onset);
    records.extend(eda_records(
        &mut rng,
        &person,
        &participant,
        dur,
        onset,
        cfg.eda_rate_hz,
    ));
    if let Some(o) = onset {
        records.push(Record::Marker(Marker {
            host_t: o,
            t: o,
            label: "stress_onset".into(),
            data: None,
        }));
    }
    // Host-arrival order; ties broken by a fixed kind order, so the output is stable.
    records.sort_by(|a, b| {
        a.host_t()
            .total_cmp(&b.host_t())
            .then(rank(a).cmp(&rank(b)))
    });
    let device = Device {
        name: "attune-simulator".into(),
        protocol: "synthetic".into(),
        firmware: None,
    };
    let segments = match onset {
        Some(o) => vec![
            Segment {
                label: "rest".into(),
                start_s: 0.0,
                end_s: o,
            },
            Segment {
                label: "stress".into(),
                start_s: o,
                end_s: dur,
            },
        ],
        None => vec![Segment {
            label: "rest".into(),
            start_s: 0.0,
            end_s: dur,
        }],
    };
    let header = Header {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        participant,
        streams: vec![
            StreamSpec {
                id: "rr".into(),
                kind: "rr".into(),
                unit: "ms".into(),
                rate_hz: None,
                device: device.clone(),
            },
            StreamSpec {
                id: "eda".into(),
                kind: "eda".into(),
                unit: "uS".into(),
                rate_hz: Some(cfg.eda_rate_hz),
                device,
            },
        ],
        consent: synthetic_consent(),
        provenance: Provenance {
            source: format!(
                "attune simulate --scenario {} --minutes {} --seed {}",
                cfg.scenario.name(),
                dur / 60.0,
                cfg.seed
            ),
            licence: "CC0-1.0".into(),
            attribution: None,
            generator: Some(json!({
                "scenario": cfg.scenario.name(),
                "seed": cfg.seed,
                "duration_s": dur,
                "stress_onset_s": onset,
                "person": {
                    "hr_rest_bpm": round3(person.hr_rest),
                    "hr_rise_bpm": round3(person.hr_rise),
                    "rsa_ms": round3(person.rsa_ms),
                    "rsa_stress_factor": round3(person.rsa_stress_factor),
                    "resp_hz": round3(person.f_resp),
                    "scl_us": round3(person.scl0),
                    "scl_rise_us": round3(person.scl_rise),
                    "scr_per_min_rest": round3(person.scr_rate_rest),
                    "scr_per_min_stress": round3(person.scr_rate_stress),
                    "ramp_s": round3(person.ramp_s),
                },
            })),
        },
        segments,
    };
    Simulation { header, records }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn rank(r: &Record) -> u8 {
    match r {
        Record::Marker(_) | Record::State(_) => 0,
        Record::Gap(_) => 1,
        Record::Chunk(c) if c.kind == StreamKind::Rr => 2,
        Record::Chunk(_) => 3,
    }
}

fn rr_records(
    rng: &mut ChaCha8Rng,
    p: &Person,
    participant: &ParticipantId,
    dur: f64,
    onset: Option<f64>,
) -> Vec<Record> {
    let mut heart = Heart::new(rng, p);
    let mut t = 0.0;
    let mut out = Vec::new();
    let mut seq = 0;
    loop {
        let rr = heart.next_rr(rng, p, t, onset);
        let beat = t + rr / 1000.0;
        if beat > dur {
            break;
        }
        let host_t = beat + rng.random_range(0.010..0.060);
        out.push(Record::Chunk(Chunk {
            participant: participant.clone(),
            kind: StreamKind::Rr,
            seq,
            host_t: round_us(host_t),
            timing: Timing::Events(vec![round_us(beat)]),
            samples: vec![rr],
        }));
        seq += 1;
        t = beat;
    }
    out
}

fn eda_records(
    rng: &mut ChaCha8Rng,
    p: &Person,
    participant: &ParticipantId,
    dur: f64,
    onset: Option<f64>,
    fs: f64,
) -> Vec<Record> {
    let n = (dur * fs).floor() as usize;
    let mut x = vec![0.0; n];
    // Tonic: level, slow drift (integrated, damped noise, simulated on a fixed 32 Hz grid so
    // that the person does not depend on the EDA rate), stress rise over ~30 s.
    let n_drift = ((dur * DRIFT_HZ).floor() as usize).max(1);
    let mut drift = Vec::with_capacity(n_drift);
    let mut tonic = TonicDrift::default();
    for _ in 0..n_drift {
        drift.push(tonic.step(rng));
    }
    for (i, v) in x.iter_mut().enumerate() {
        let t = i as f64 / fs;
        let k = ((t * DRIFT_HZ).floor() as usize).min(n_drift - 1);
        *v = tonic_level(p, drift[k], t, onset);
    }
    // Phasic: Poisson SCR onsets, Bateman shapes.
    let mut t = 0.0;
    while let Some(gap) = scr_gap(rng, p, t, onset) {
        t += gap;
        if t >= dur {
            break;
        }
        let scr = Scr::draw(rng, p, t, onset);
        let start = (t * fs).ceil() as usize;
        let end = scr.end_index(fs).min(n as f64) as usize;
        for (i, v) in x.iter_mut().enumerate().take(end).skip(start) {
            *v += scr.value(i as f64 / fs);
        }
    }
    let noise = eda_noise();
    for v in &mut x {
        *v = measure_eda(*v, noise.sample(rng));
    }
    let per_chunk = fs.round().max(1.0) as usize;
    x.chunks(per_chunk)
        .enumerate()
        .map(|(k, samples)| {
            let t0 = (k * per_chunk) as f64 / fs;
            let last = t0 + (samples.len() - 1) as f64 / fs;
            Record::Chunk(Chunk {
                participant: participant.clone(),
                kind: StreamKind::Eda,
                seq: k as u64,
                host_t: round_us(last + 1.0 / fs + rng.random_range(0.005..0.040)),
                timing: Timing::Uniform { t0, rate_hz: fs },
                samples: samples.to_vec(),
            })
        })
        .collect()
}

/// Rate of the grid the tonic drift is simulated on, Hz (fixed, so that the person does not
/// depend on the EDA rate).
pub(crate) const DRIFT_HZ: f64 = 32.0;

/// The heart's state between beats (shared by the batch and the live simulator).
#[derive(Debug, Clone)]
pub(crate) struct Heart {
    jitter: Normal<f64>,
    wander_noise: Normal<f64>,
    phase_resp: f64,
    phase_mayer: f64,
    wander: f64,
}

impl Heart {
    /// Draws the respiratory and Mayer-wave phases from `rng`.
    pub(crate) fn new(rng: &mut ChaCha8Rng, p: &Person) -> Self {
        let jitter = Normal::new(0.0, p.jitter_ms).unwrap_or_else(|_| unreachable_normal());
        let phase_resp = rng.random_range(0.0..2.0 * PI);
        let phase_mayer = rng.random_range(0.0..2.0 * PI);
        Self {
            jitter,
            wander_noise: Normal::new(0.0, 3.0).unwrap_or_else(|_| unreachable_normal()),
            phase_resp,
            phase_mayer,
            wander: 0.0,
        }
    }

    /// The RR interval (ms, quantised to 1/1024 s) of the beat that follows the one at `t` (s).
    pub(crate) fn next_rr(
        &mut self,
        rng: &mut ChaCha8Rng,
        p: &Person,
        t: f64,
        onset: Option<f64>,
    ) -> f64 {
        let s = stress_level(t, onset, p.ramp_s);
        let hr = p.hr_rest + s * p.hr_rise;
        let rsa = p.rsa_ms * (1.0 - s * (1.0 - p.rsa_stress_factor));
        let f_resp = p.f_resp + s * 0.05;
        self.wander = 0.98 * self.wander + rng.sample(self.wander_noise);
        let rr = 60_000.0 / hr
            + rsa * (2.0 * PI * f_resp * t + self.phase_resp).sin()
            + p.mayer_ms * (2.0 * PI * 0.1 * t + self.phase_mayer).sin()
            + self.wander
            + self.jitter.sample(rng);
        // BLE HRM reports RR in 1/1024 s.
        (rr.clamp(300.0, 2000.0) * 1.024).round() / 1.024
    }
}

/// The slow tonic drift: integrated, damped noise, one step per 1/[`DRIFT_HZ`] s.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TonicDrift {
    d: f64,
    slope: f64,
}

impl TonicDrift {
    /// Advances one grid step and returns the drift, µS.
    pub(crate) fn step(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        let noise = Normal::new(0.0, 0.0004).unwrap_or_else(|_| unreachable_normal());
        self.slope = 0.999 * self.slope + noise.sample(rng) / DRIFT_HZ;
        self.d = 0.9995 * self.d + self.slope;
        self.d
    }
}

/// Tonic skin conductance at `t`, µS: level, drift and the stress rise over ~30 s.
pub(crate) fn tonic_level(p: &Person, drift: f64, t: f64, onset: Option<f64>) -> f64 {
    let s = stress_level(t, onset, 30.0);
    p.scl0 + drift + s * p.scl_rise
}

/// The wait from an SCR onset at `t` to the next one (Poisson arrivals at the rate in force at
/// `t`), s; `None` if the rate is not a valid rate.
pub(crate) fn scr_gap(rng: &mut ChaCha8Rng, p: &Person, t: f64, onset: Option<f64>) -> Option<f64> {
    let s = stress_level(t, onset, p.ramp_s);
    let rate_per_s = (p.scr_rate_rest + s * (p.scr_rate_stress - p.scr_rate_rest)) / 60.0;
    Exp::new(rate_per_s).ok().map(|gap| gap.sample(rng))
}

/// One skin conductance response: a Bateman function with its peak scaled to `amp` µS.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scr {
    /// Onset, s.
    pub(crate) t: f64,
    amp: f64,
    tr: f64,
    td: f64,
    norm: f64,
}

impl Scr {
    /// Draws the amplitude and time constants of an SCR starting at `t`.
    pub(crate) fn draw(rng: &mut ChaCha8Rng, p: &Person, t: f64, onset: Option<f64>) -> Self {
        let s = stress_level(t, onset, p.ramp_s);
        let median = p.scr_amp_rest + s * (p.scr_amp_stress - p.scr_amp_rest);
        let amp = LogNormal::new(median.ln(), 0.5)
            .map(|d| d.sample(rng))
            .unwrap_or(median)
            .clamp(0.02, 2.0);
        let tr: f64 = rng.random_range(0.6..0.9);
        let td: f64 = rng.random_range(3.0..5.0);
        let tp = (td / tr).ln() * tr * td / (td - tr);
        let norm = (-tp / td).exp() - (-tp / tr).exp();
        Self {
            t,
            amp,
            tr,
            td,
            norm,
        }
    }

    /// One past the last sample index (at `fs`) the response is added to: it is cut off after
    /// 8 decay time constants. Returned as f64, as the batch simulator computes it.
    pub(crate) fn end_index(&self, fs: f64) -> f64 {
        ((self.t + 8.0 * self.td) * fs).ceil()
    }

    /// The response at time `t_s` (≥ the onset), µS.
    pub(crate) fn value(&self, t_s: f64) -> f64 {
        let u = t_s - self.t;
        self.amp * ((-u / self.td).exp() - (-u / self.tr).exp()) / self.norm
    }
}

/// White measurement noise of the EDA sensor, µS.
pub(crate) fn eda_noise() -> Normal<f64> {
    Normal::new(0.0, 0.003).unwrap_or_else(|_| unreachable_normal())
}

/// A true conductance plus a noise draw, rounded to 0.1 nS as the sensor reports it, µS.
pub(crate) fn measure_eda(v: f64, noise: f64) -> f64 {
    ((v + noise) * 10_000.0).round() / 10_000.0
}

pub(crate) fn round_us(t: f64) -> f64 {
    (t * 1e6).round() / 1e6
}

/// `Normal::new` fails only for a negative or non-finite sd; every sd above is a positive literal
/// or drawn from a positive range.
fn unreachable_normal() -> Normal<f64> {
    Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("standard normal is valid"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rr::{RrConfig, RrWindow};

    fn sim(seed: u64) -> Simulation {
        simulate(&SimConfig {
            scenario: Scenario::RestThenStress,
            duration_s: 600.0,
            seed,
            participant: ParticipantId::new("p01").unwrap(),
            eda_rate_hz: 32.0,
        })
    }

    #[test]
    fn same_seed_same_output_different_seed_different_person() {
        let (a, b, c) = (sim(1), sim(1), sim(2));
        assert_eq!(a.records, b.records);
        assert_eq!(a.header, b.header);
        assert_ne!(a.records, c.records);
    }

    #[test]
    fn stress_raises_hr_lowers_rmssd_raises_scl_and_scr_rate() {
        for seed in 1..=5 {
            let s = sim(seed);
            let mut rest = RrWindow::new(RrConfig::default());
            let mut stress = RrWindow::new(RrConfig::default());
            let mut scl_rest = (0.0, 0);
            let mut scl_stress = (0.0, 0);
            for r in &s.records {
                let Record::Chunk(c) = r else { continue };
                for (i, &v) in c.samples.iter().enumerate() {
                    let t = c.time_of(i);
                    match c.kind {
                        StreamKind::Rr if t < 300.0 => drop(rest.push(t, v)),
                        StreamKind::Rr if t > 360.0 => drop(stress.push(t, v)),
                        StreamKind::Eda if t < 300.0 => scl_rest = (scl_rest.0 + v, scl_rest.1 + 1),
                        StreamKind::Eda if t > 360.0 => {
                            scl_stress = (scl_stress.0 + v, scl_stress.1 + 1)
                        }
                        _ => {}
                    }
                }
            }
            let hr_r = rest.hr_bpm(300.0, 240.0, 10).unwrap();
            let hr_s = stress.hr_bpm(600.0, 240.0, 10).unwrap();
            let rm_r = rest.rmssd_ms(300.0, 240.0, 10).unwrap();
            let rm_s = stress.rmssd_ms(600.0, 240.0, 10).unwrap();
            assert!(hr_s > hr_r + 8.0, "seed {seed}: HR {hr_r} -> {hr_s}");
            assert!(rm_s < rm_r * 0.8, "seed {seed}: RMSSD {rm_r} -> {rm_s}");
            assert!(
                rm_r > 15.0 && rm_r < 80.0,
                "seed {seed}: resting RMSSD {rm_r}"
            );
            let (a, b) = (
                scl_rest.0 / scl_rest.1 as f64,
                scl_stress.0 / scl_stress.1 as f64,
            );
            assert!(b > a + 0.4, "seed {seed}: SCL {a} -> {b}");
        }
    }
}
