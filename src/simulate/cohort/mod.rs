//! The evaluation cohort: synthetic people calibrated to published norms and to the real
//! recordings in `fixtures/`, taken through labelled scenarios (`docs/evaluation.md` has the
//! model, its sources and the realism checks with their numbers).
//!
//! Pure: a person seed and a scenario in, a recording out; the same inputs give the same bytes
//! on every machine (ChaCha8, one stream per concern, so that e.g. asking for another scenario
//! does not change who the person is).
//!
//! A person is three parts:
//! - **the psyche** ([`Psyche`], this module): how strongly and how fast their arousal follows a
//!   scenario's psychological load, how it recovers and habituates, and how much it wanders on
//!   its own at rest. Reactivity is one shared factor `z_general` (so HR and EDA responses
//!   correlate across people, but not perfectly) plus each system's own.
//! - **the heart** ([`heart`]): RR intervals with respiratory and Mayer-wave components, slow
//!   non-stationarity, stress, exercise and paced-breathing responses, and artefacts.
//! - **the skin** ([`eda`]): tonic level and drift, spontaneous and evoked SCRs, non- and
//!   hypo-responders, habituation, startle responses, motion and contact artefacts.
//!
//! The three meet in [`Drives`]: the person's arousal, exercise and breathing over the session on
//! a 4 Hz grid, which both organ models read.

pub mod eda;
pub mod heart;
pub mod scenario;

use super::waveform::{EcgParams, EcgSynth, PpgParams, PpgSynth};
use super::{ECG_RATE_HZ, PPG_RATE_HZ, Simulation, WaveConfig, round_us, synthetic_consent};
use crate::model::{Chunk, Gap, ParticipantId, StreamKind, Timing};
use crate::recording::{FORMAT_NAME, FORMAT_VERSION, Header, Provenance, Record};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
pub use scenario::{ALL_SCENARIOS, CohortScenario, SegmentClass, Timeline, class_of};
use serde_json::json;

/// The model name written into provenance (`attune simulate --model cohort`).
pub const MODEL: &str = "cohort";

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortConfig {
    /// Scenario.
    pub scenario: CohortScenario,
    /// Session length, s (at least 60; the scenario's default if `None`).
    pub duration_s: Option<f64>,
    /// The person's seed: the same seed is the same person in every scenario.
    pub seed: u64,
    /// Participant id written in the header.
    pub participant: ParticipantId,
    /// EDA rate, Hz.
    pub eda_rate_hz: f64,
    /// Robustness runs only: ectopic short–long pairs added until about this share (0..=0.5)
    /// of the reported beats is ectopic ([`heart::artefacts::add_ectopics`]), drawn on a stream
    /// of their own so that the person, the sinus rhythm and every other artefact stay as
    /// they are. `None`: the person's own drawn rate only.
    pub ectopic_frac: Option<f64>,
}

/// ChaCha8 streams, one per concern.
mod streams {
    pub const PSYCHE: u64 = 21;
    pub const HEART_PERSON: u64 = 22;
    pub const EDA_PERSON: u64 = 23;
    pub const TIMELINE: u64 = 24;
    pub const AROUSAL: u64 = 25;
    pub const HEART: u64 = 26;
    pub const EDA: u64 = 27;
    pub const DELIVERY: u64 = 28;
    pub const ECG_PERSON: u64 = 29;
    pub const PPG_PERSON: u64 = 30;
    pub const ECG_DELIVERY: u64 = 31;
    pub const PPG_DELIVERY: u64 = 32;
    pub const ECTOPIC_EXTRA: u64 = 33;
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The seed of person `i` of a cohort drawn with `seed` (SplitMix64 of both, so neighbouring
/// cohort seeds share no people).
pub fn person_seed(cohort_seed: u64, i: u64) -> u64 {
    let mut z = cohort_seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(i.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How a person's arousal follows a scenario's load.
#[derive(Debug, Clone, PartialEq)]
pub struct Psyche {
    /// Shared reactivity factor, standard normal: the organ models scale their stress
    /// responses with it (plus their own factor), so responses correlate across systems.
    pub z_general: f64,
    /// How much of a load reaches arousal during anticipation (worriers anticipate more).
    pub anticipation_gain: f64,
    /// Arousal rise time constant, s.
    pub tau_on_s: f64,
    /// Arousal recovery time constant, s (recovery takes minutes).
    pub tau_off_s: f64,
    /// Share of the response lost to habituation over a long stressor.
    pub habituation: f64,
    /// SD of spontaneous arousal fluctuations at rest, load units.
    pub wander_sd: f64,
    /// Their time constant, s.
    pub wander_tau_s: f64,
}

impl Psyche {
    /// Draws a psyche.
    pub fn draw(rng: &mut ChaCha8Rng) -> Self {
        let z: f64 = Normal::new(0.0_f64, 1.0)
            .map(|n| n.sample(rng))
            .unwrap_or(0.0)
            .clamp(-3.0, 3.0);
        Self {
            z_general: z,
            anticipation_gain: rng.random_range(0.4..1.4),
            tau_on_s: rng.random_range(10.0..40.0),
            tau_off_s: (rng.random_range(60.0_f64.ln()..300.0_f64.ln())).exp(),
            habituation: rng.random_range(0.0..0.4),
            wander_sd: rng.random_range(0.03..0.12),
            wander_tau_s: rng.random_range(60.0..180.0),
        }
    }

    fn summary(&self) -> serde_json::Value {
        json!({
            "z_general": r3(self.z_general),
            "anticipation_gain": r3(self.anticipation_gain),
            "tau_on_s": r3(self.tau_on_s),
            "tau_off_s": r3(self.tau_off_s),
            "habituation": r3(self.habituation),
            "wander_sd": r3(self.wander_sd),
        })
    }
}

/// A cohort member.
#[derive(Debug, Clone)]
pub struct CohortPerson {
    /// Psyche.
    pub psyche: Psyche,
    /// Heart.
    pub heart: heart::HeartPerson,
    /// Skin.
    pub eda: eda::EdaPerson,
}

impl CohortPerson {
    /// The person a seed draws (the same in every scenario).
    pub fn draw(seed: u64) -> Self {
        let psyche = Psyche::draw(&mut rng_for(seed, streams::PSYCHE));
        let heart =
            heart::HeartPerson::draw(&mut rng_for(seed, streams::HEART_PERSON), psyche.z_general);
        let eda = eda::EdaPerson::draw(&mut rng_for(seed, streams::EDA_PERSON), psyche.z_general);
        Self { psyche, heart, eda }
    }
}

/// Rate of the [`Drives`] grid, Hz.
pub const DRIVE_HZ: f64 = 4.0;

/// A person's state over a session on a [`DRIVE_HZ`] grid: what the organ models read.
#[derive(Debug, Clone, PartialEq)]
pub struct Drives {
    /// Psychological arousal, in load units (0 = calm; 1 = this person's full response to the
    /// speech task before the habituation; spontaneous wander included, may dip below 0).
    pub arousal: Vec<f64>,
    /// Physical exercise, 0..1, lagged as the body follows it.
    pub exercise: Vec<f64>,
    /// Paced breathing rate, Hz, where a phase paces it.
    pub paced_resp_hz: Vec<Option<f64>>,
    /// Whether the person speaks.
    pub speaking: Vec<bool>,
    /// Startle probe times, s.
    pub startles: Vec<f64>,
}

impl Drives {
    fn index(&self, t: f64) -> usize {
        ((t.max(0.0) * DRIVE_HZ) as usize).min(self.arousal.len().saturating_sub(1))
    }

    /// Arousal at `t`, linearly interpolated.
    pub fn arousal_at(&self, t: f64) -> f64 {
        interp(&self.arousal, t)
    }

    /// Exercise at `t`, linearly interpolated.
    pub fn exercise_at(&self, t: f64) -> f64 {
        interp(&self.exercise, t)
    }

    /// Paced breathing rate at `t`, if paced.
    pub fn paced_resp_at(&self, t: f64) -> Option<f64> {
        self.paced_resp_hz.get(self.index(t)).copied().flatten()
    }

    /// Whether the person speaks at `t`.
    pub fn speaking_at(&self, t: f64) -> bool {
        self.speaking.get(self.index(t)).copied().unwrap_or(false)
    }

    /// Computes the drives of `psyche` through `tl`. Arousal follows the phase load (scaled by
    /// the anticipation gain in `anticipation`) with a first-order lag (`tau_on_s` rising,
    /// `tau_off_s` falling), loses up to `habituation` of itself over a long stressor (time
    /// constant 5 min), and wanders (Ornstein–Uhlenbeck). A session that starts under load
    /// starts at that load (the person arrived aroused). Exercise follows its phase with 30 s
    /// rising and 90 s falling time constants.
    pub fn new(psyche: &Psyche, tl: &Timeline, rng: &mut ChaCha8Rng) -> Self {
        let n = (tl.duration_s * DRIVE_HZ).ceil() as usize + 1;
        let dt = 1.0 / DRIVE_HZ;
        let noise = Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("valid"));
        let first = tl.phase_at(0.0);
        let mut a = first.load;
        let mut e = first.exercise;
        let mut wander = 0.0;
        let mut under_load_s = 0.0;
        let mut out = Self {
            arousal: Vec::with_capacity(n),
            exercise: Vec::with_capacity(n),
            paced_resp_hz: Vec::with_capacity(n),
            speaking: Vec::with_capacity(n),
            startles: tl.startles.clone(),
        };
        let k = (-dt / psyche.wander_tau_s).exp();
        let wander_step = psyche.wander_sd * (1.0 - k * k).sqrt();
        for i in 0..n {
            let t = i as f64 * dt;
            let p = tl.phase_at(t);
            let mut target = p.load;
            if p.label == "anticipation" {
                target *= psyche.anticipation_gain;
            }
            if target > 0.0 {
                under_load_s += dt;
            } else {
                under_load_s = 0.0;
            }
            target *= 1.0 - psyche.habituation * (1.0 - (-under_load_s / 300.0).exp());
            let tau = if target > a {
                psyche.tau_on_s
            } else {
                psyche.tau_off_s
            };
            a += (target - a) * (1.0 - (-dt / tau).exp());
            let tau_e = if p.exercise > e { 30.0 } else { 90.0 };
            e += (p.exercise - e) * (1.0 - (-dt / tau_e).exp());
            wander = k * wander + wander_step * noise.sample(rng);
            out.arousal.push(a + wander);
            out.exercise.push(e);
            out.paced_resp_hz.push(p.paced_resp_hz);
            out.speaking.push(p.speaking);
        }
        out
    }
}

fn interp(v: &[f64], t: f64) -> f64 {
    let x = t.max(0.0) * DRIVE_HZ;
    let i = x.floor() as usize;
    match (v.get(i), v.get(i + 1)) {
        (Some(&a), Some(&b)) => a + (b - a) * (x - i as f64),
        (Some(&a), None) => a,
        _ => v.last().copied().unwrap_or(0.0),
    }
}

/// Generates one person's recording of a scenario (RR and EDA streams).
pub fn simulate_person(cfg: &CohortConfig) -> Simulation {
    simulate_person_with(cfg, &WaveConfig::default())
}

/// The breathing rate the waveforms' respiratory modulation follows, Hz: the paced rate where
/// a phase paces it, else 0.25 Hz rising with exercise and arousal. (Only the ECG baseline
/// wander and the PPG amplitude use it; the RR intervals' respiratory sinus arrhythmia is the
/// heart model's own.)
fn wave_resp_hz(d: &Drives, t: f64) -> f64 {
    d.paced_resp_at(t)
        .unwrap_or(0.25 + 0.1 * d.exercise_at(t) + 0.03 * d.arousal_at(t).max(0.0))
}

/// [`simulate_person`] with the waveform streams `wave` asks for (ECG and PPG as in
/// [`crate::simulate::simulate_with`]: an R peak at every reported beat, a PPG pulse a pulse
/// transit time after it; artefact beats included, as a strap's detector would report them).
pub fn simulate_person_with(cfg: &CohortConfig, wave: &WaveConfig) -> Simulation {
    let dur = cfg
        .duration_s
        .unwrap_or_else(|| cfg.scenario.default_duration_s())
        .max(60.0);
    let person = CohortPerson::draw(cfg.seed);
    let tl = Timeline::new(cfg.scenario, dur, &mut rng_for(cfg.seed, streams::TIMELINE));
    let drives = Drives::new(
        &person.psyche,
        &tl,
        &mut rng_for(cfg.seed, streams::AROUSAL),
    );
    let mut heart_out = heart::simulate(
        &mut rng_for(cfg.seed, streams::HEART),
        &person.heart,
        &drives,
        dur,
    );
    if let Some(frac) = cfg.ectopic_frac {
        heart::artefacts::add_ectopics(
            &mut rng_for(cfg.seed, streams::ECTOPIC_EXTRA),
            &mut heart_out,
            frac,
        );
    }
    let eda_out = eda::simulate(
        &mut rng_for(cfg.seed, streams::EDA),
        &person.eda,
        &drives,
        dur,
        cfg.eda_rate_hz,
    );
    let mut delivery = rng_for(cfg.seed, streams::DELIVERY);
    let p = &cfg.participant;
    let mut records = Vec::new();
    for (seq, b) in heart_out.beats.iter().enumerate() {
        records.push(Record::Chunk(Chunk {
            raw: None,
            meta: None,
            participant: p.clone(),
            kind: StreamKind::Rr,
            seq: seq as u64,
            host_t: round_us(b.t + delivery.random_range(0.010..0.060)),
            timing: Timing::Events(vec![round_us(b.t)]),
            samples: vec![b.rr_ms],
        }));
    }
    for d in &heart_out.dropouts {
        records.push(Record::Gap(Gap {
            participant: p.clone(),
            kind: StreamKind::Rr,
            start: round_us(d.start_s),
            end: round_us(d.end_s),
            // Noticed when the strap is back: with the first beat after it at the latest (a
            // tie sorts the gap first), so nothing after the dropout arrives before its notice.
            host_t: round_us(d.end_s),
            reason: "contact_lost".into(),
        }));
    }
    let fs = cfg.eda_rate_hz;
    let per_chunk = fs.round().max(1.0) as usize;
    for (k, samples) in eda_out.samples.chunks(per_chunk).enumerate() {
        let t0 = (k * per_chunk) as f64 / fs;
        let last = t0 + (samples.len() - 1) as f64 / fs;
        records.push(Record::Chunk(Chunk {
            raw: None,
            meta: None,
            participant: p.clone(),
            kind: StreamKind::Eda,
            seq: k as u64,
            host_t: round_us(last + 1.0 / fs + delivery.random_range(0.005..0.040)),
            timing: Timing::Uniform { t0, rate_hz: fs },
            samples: samples.to_vec(),
        }));
    }
    records.extend(exercise_markers(&tl));
    let beat_times: Vec<f64> = heart_out.beats.iter().map(|b| round_us(b.t)).collect();
    let mut wave_streams = Vec::new();
    let resp = |t: f64| wave_resp_hz(&drives, t);
    if let Some(fs) = wave
        .ecg_rate_hz
        .map(|f| f.clamp(*ECG_RATE_HZ.start(), *ECG_RATE_HZ.end()))
    {
        let mut params = EcgParams::draw(&mut rng_for(cfg.seed, streams::ECG_PERSON));
        params.mains_hz = wave.mains_hz;
        params.resp_hz = resp(0.0);
        let mut synth = EcgSynth::new(&params, fs, cfg.seed);
        records.extend(super::blocks::wave_records(
            &mut super::blocks::Synth::Ecg(&mut synth),
            &beat_times,
            &mut rng_for(cfg.seed, streams::ECG_DELIVERY),
            &resp,
            p,
            dur,
        ));
        wave_streams.push((StreamKind::Ecg, fs));
    }
    if let Some(fs) = wave
        .ppg_rate_hz
        .map(|f| f.clamp(*PPG_RATE_HZ.start(), *PPG_RATE_HZ.end()))
    {
        let mut params = PpgParams::draw(&mut rng_for(cfg.seed, streams::PPG_PERSON));
        params.resp_hz = resp(0.0);
        let mut synth = PpgSynth::new(&params, fs, cfg.seed);
        records.extend(super::blocks::wave_records(
            &mut super::blocks::Synth::Ppg(&mut synth),
            &beat_times,
            &mut rng_for(cfg.seed, streams::PPG_DELIVERY),
            &resp,
            p,
            dur,
        ));
        wave_streams.push((StreamKind::Ppg, fs));
    }
    records.sort_by(|a, b| {
        a.host_t()
            .total_cmp(&b.host_t())
            .then(super::rank(a).cmp(&super::rank(b)))
    });
    let mut source = format!(
        "attune simulate --model {MODEL} --scenario {} --minutes {} --seed {} --eda-rate {}",
        cfg.scenario.name(),
        dur / 60.0,
        cfg.seed,
        fs
    );
    let streams = super::simulator_streams(
        fs,
        &wave_streams,
        wave.ecg_rate_hz.and(wave.mains_hz),
        &mut source,
    );
    let mut generator = json!({
        "model": MODEL,
        "scenario": cfg.scenario.name(),
        "seed": cfg.seed,
        "duration_s": dur,
        "startles_s": tl.startles,
        "person": {
            "psyche": person.psyche.summary(),
            "heart": person.heart.summary(),
            "eda": person.eda.summary(),
        },
        "artefacts": {
            "heart": heart_out.artefact_counts(),
            "eda": eda_out.artefact_counts(),
        },
    });
    if let (Some(frac), Some(g)) = (cfg.ectopic_frac, generator.as_object_mut()) {
        g.insert("ectopic_frac".into(), json!(frac));
    }
    let header = Header {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        participant: p.clone(),
        streams,
        consent: synthetic_consent(),
        provenance: Provenance {
            source,
            licence: "CC0-1.0".into(),
            attribution: None,
            generator: Some(generator),
        },
        segments: tl.segments(),
    };
    Simulation { header, records }
}

/// The exercise the app would announce for a `paced_breathing` phase.
pub const PACED_BREATHING_EXERCISE: &str = "paced-breathing";

/// The markers an app's exercise messages would leave in a live session
/// (`crate::publish::server` turns `{"type":"exercise","event":"start",...}` into them): for
/// every `paced_breathing` phase, `exercise_start` at its start with data
/// `{"exercise":"paced-breathing","target":"calm"}` and `exercise_end` at its end with data
/// `{"exercise":"paced-breathing"}` (host and stream time alike). No other phase has markers.
pub fn exercise_markers(tl: &Timeline) -> Vec<Record> {
    let marker = |t: f64, label: &str, data: serde_json::Value| {
        Record::Marker(crate::recording::Marker {
            host_t: round_us(t),
            t: round_us(t),
            label: label.into(),
            data: Some(data),
        })
    };
    tl.phases
        .iter()
        .filter(|p| p.label == "paced_breathing")
        .flat_map(|p| {
            [
                marker(
                    p.start_s,
                    "exercise_start",
                    json!({"exercise": PACED_BREATHING_EXERCISE, "target": "calm"}),
                ),
                marker(
                    p.end_s,
                    "exercise_end",
                    json!({"exercise": PACED_BREATHING_EXERCISE}),
                ),
            ]
        })
        .collect()
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(scenario: CohortScenario, seed: u64) -> CohortConfig {
        CohortConfig {
            scenario,
            duration_s: Some(600.0),
            seed,
            participant: ParticipantId::new("p").unwrap_or_else(|_| unreachable!()),
            eda_rate_hz: 32.0,
            ectopic_frac: None,
        }
    }

    #[test]
    fn same_seed_same_bytes_and_the_same_person_in_every_scenario() {
        let a = simulate_person(&cfg(CohortScenario::Tsst, 5));
        let b = simulate_person(&cfg(CohortScenario::Tsst, 5));
        assert_eq!(a.records, b.records);
        assert_eq!(a.header, b.header);
        let c = simulate_person(&cfg(CohortScenario::Rest, 5));
        let person = |s: &Simulation| {
            s.header
                .provenance
                .generator
                .as_ref()
                .map(|g| g["person"].clone())
        };
        assert_eq!(person(&a), person(&c));
        assert_ne!(
            person(&a),
            person(&simulate_person(&cfg(CohortScenario::Tsst, 6)))
        );
        a.header.validate().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn person_seeds_differ_between_neighbouring_cohorts() {
        let a: Vec<u64> = (0..50).map(|i| person_seed(1, i)).collect();
        let b: Vec<u64> = (0..50).map(|i| person_seed(2, i)).collect();
        assert!(a.iter().all(|x| !b.contains(x)));
    }

    #[test]
    fn arousal_follows_the_load_and_recovers_over_minutes() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tl = Timeline::new(CohortScenario::Tsst, 2400.0, &mut rng);
        let psyche = Psyche {
            wander_sd: 0.0,
            habituation: 0.0,
            ..Psyche::draw(&mut rng)
        };
        let d = Drives::new(&psyche, &tl, &mut rng);
        assert!(d.arousal_at(500.0).abs() < 1e-9);
        assert!(d.arousal_at(1400.0) > 0.9, "{}", d.arousal_at(1400.0));
        let after = d.arousal_at(1800.0 + psyche.tau_off_s);
        let at_end = d.arousal_at(1800.0);
        assert!((after / at_end - (-1.0_f64).exp()).abs() < 0.05);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let tl = Timeline::new(CohortScenario::StressedStart, 1200.0, &mut rng);
        let d = Drives::new(&psyche, &tl, &mut rng);
        assert!((d.arousal_at(0.0) - 0.7).abs() < 1e-9);
    }

    #[test]
    fn a_dropout_notice_arrives_before_the_data_after_it() {
        // Walking loses the strap most often; 60 min of the movement scenario for a few people.
        let mut gaps = 0;
        for seed in 0..8 {
            let sim = simulate_person(&CohortConfig {
                duration_s: Some(3600.0),
                ..cfg(CohortScenario::Movement, person_seed(4242, seed))
            });
            for (i, r) in sim.records.iter().enumerate() {
                let Record::Gap(g) = r else { continue };
                gaps += 1;
                assert!(g.start < g.end && g.host_t >= g.end, "{g:?}");
                // No RR chunk before the notice has a beat after the gap's end.
                for earlier in &sim.records[..i] {
                    if let Record::Chunk(c) = earlier
                        && c.kind == StreamKind::Rr
                    {
                        assert!(c.time_of(0) <= g.start + 1e-6, "{c:?} before {g:?}");
                    }
                }
            }
        }
        assert!(gaps > 0, "no dropout in 8 h of walking");
    }

    #[test]
    fn paced_breathing_carries_exercise_markers_at_its_segment_bounds_and_nothing_else_does() {
        let markers = |s: &Simulation| -> Vec<crate::recording::Marker> {
            s.records
                .iter()
                .filter_map(|r| match r {
                    Record::Marker(m) => Some(m.clone()),
                    _ => None,
                })
                .collect()
        };
        let sim = simulate_person(&cfg(CohortScenario::PacedBreathing, 5));
        let seg = sim
            .header
            .segments
            .iter()
            .find(|s| s.label == "paced_breathing")
            .cloned()
            .unwrap_or_else(|| panic!("no paced_breathing segment"));
        let m = markers(&sim);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            (m[0].label.as_str(), m[0].t, m[0].host_t),
            ("exercise_start", seg.start_s, seg.start_s)
        );
        assert_eq!(
            m[0].data,
            Some(json!({"exercise": "paced-breathing", "target": "calm"}))
        );
        assert_eq!(
            (m[1].label.as_str(), m[1].t, m[1].host_t),
            ("exercise_end", seg.end_s, seg.end_s)
        );
        assert_eq!(m[1].data, Some(json!({"exercise": "paced-breathing"})));
        // In arrival order, and replayed to the engine as markers.
        assert!(
            sim.records
                .windows(2)
                .all(|w| w[0].host_t() <= w[1].host_t())
        );
        let p = sim.header.participant.clone();
        let input = crate::sources::replay_feed::record_input(Record::Marker(m[0].clone()), &p);
        assert!(
            matches!(&input, Some(crate::engine::input::Input::Marker(who, x)) if *who == p && *x == m[0]),
            "{input:?}"
        );
        for s in ALL_SCENARIOS
            .into_iter()
            .filter(|&s| s != CohortScenario::PacedBreathing)
        {
            assert!(markers(&simulate_person(&cfg(s, 5))).is_empty(), "{s:?}");
        }
    }

    #[test]
    fn an_ectopic_run_changes_only_rr_values_of_the_same_person() {
        let clean = simulate_person(&cfg(CohortScenario::RestThenStress, 7));
        let ect = simulate_person(&CohortConfig {
            ectopic_frac: Some(0.1),
            ..cfg(CohortScenario::RestThenStress, 7)
        });
        let g = |s: &Simulation| s.header.provenance.generator.clone().unwrap_or_default();
        assert_eq!(g(&clean)["person"], g(&ect)["person"]);
        assert_eq!(g(&ect)["ectopic_frac"], json!(0.1));
        assert!(g(&clean).get("ectopic_frac").is_none());
        let beats = g(&ect)["artefacts"]["heart"]["ectopic"]
            .as_u64()
            .unwrap_or(0);
        assert!(beats > 50, "{beats} ectopic beats in 10 min");
        assert_eq!(clean.header.segments, ect.header.segments);
        assert_eq!(clean.records.len(), ect.records.len());
        let split = |s: &Simulation| -> (Vec<Chunk>, Vec<Record>) {
            let (mut rr, mut other) = (Vec::new(), Vec::new());
            for r in &s.records {
                match r {
                    Record::Chunk(c) if c.kind == StreamKind::Rr => rr.push(c.clone()),
                    _ => other.push(r.clone()),
                }
            }
            (rr, other)
        };
        let ((rr_a, other_a), (rr_b, other_b)) = (split(&clean), split(&ect));
        assert_eq!(other_a, other_b);
        assert_eq!(rr_a.len(), rr_b.len());
        let mut rr_changed = 0;
        for (x, y) in rr_a.iter().zip(&rr_b) {
            assert_eq!(x.seq, y.seq);
            rr_changed += usize::from(x != y);
        }
        assert!(rr_changed > 50, "{rr_changed}");
    }
}
