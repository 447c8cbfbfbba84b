//! Per-stage cost of the daemon's streaming path, in ns per sample (criterion reports
//! elements/s; docs/performance.md turns them into ns/sample against the floor).
//!
//! `cargo bench --bench engine` (CI: `cargo bench --bench engine -- --quick`). Inputs are the
//! bench's signal bank (`attune::bench::bank`): ECG and EDA at 1000 Hz, delivered in 100-sample
//! chunks, the shape of a lab box's stream.
//!
//! Stages: the floor (one biquad section, the cheapest possible per-sample work), the consent
//! gate, each filter, the beat detector, the EDA chain, the features (everything per participant
//! before the policy), the policy with the features of a tick, rendering an adaptation line,
//! publishing it on the bus, and the whole engine step (gate + clock + DSP + beats + features +
//! policy + events) on ECG + EDA at 1 kHz.

use attune::bench::bank;
use attune::consent::ConsentSnapshot;
use attune::consent::gate::Gate;
use attune::dsp::beats::{BeatConfig, BeatDetector, Waveform};
use attune::dsp::eda::{EdaChain, EdaConfig};
use attune::dsp::filter::{Cascade, Pass};
use attune::engine::input::{Input, StreamInfo};
use attune::engine::{Engine, EngineConfig};
use attune::features::{FeatureConfig, ParticipantFeatures};
use attune::model::{Chunk, ParticipantId, StreamKind, Timing};
use attune::recording::Device;
use biquad::{Biquad, Coefficients, DirectForm2Transposed, Q_BUTTERWORTH_F64, ToHertz, Type};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;

const FS: f64 = 1000.0;
const SECONDS: f64 = 60.0;
const CHUNK: usize = 100;

fn pid() -> ParticipantId {
    ParticipantId::new("b00000").expect("a valid id")
}

fn chunks(kind: StreamKind, x: &[f64]) -> Vec<Chunk> {
    x.chunks(CHUNK)
        .enumerate()
        .map(|(j, v)| Chunk {
            raw: None,
            meta: None,
            participant: pid(),
            kind,
            seq: j as u64,
            host_t: ((j + 1) * CHUNK) as f64 / FS,
            timing: Timing::Uniform {
                t0: (j * CHUNK) as f64 / FS,
                rate_hz: FS,
            },
            samples: v.to_vec(),
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let ecg = bank::ecg(1, FS, SECONDS);
    let eda = bank::eda(1, FS, SECONDS);
    let n = ecg.len() as u64;
    let mut g = c.benchmark_group("stage_1khz");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);

    g.bench_function("floor_one_biquad", |b| {
        let coeffs =
            Coefficients::<f64>::from_params(Type::HighPass, FS.hz(), 0.5.hz(), Q_BUTTERWORTH_F64)
                .expect("a valid design");
        let mut f = DirectForm2Transposed::<f64>::new(coeffs);
        b.iter(|| {
            let mut acc = 0.0;
            for &x in &ecg {
                acc += f.run(x);
            }
            black_box(acc)
        })
    });
    g.bench_function("ecg_highpass_order5", |b| {
        let mut f = Cascade::butterworth(Pass::High, 5, FS, 0.5).expect("a valid design");
        let mut v = ecg.clone();
        b.iter(|| {
            v.copy_from_slice(&ecg);
            f.run_in_place(&mut v);
            black_box(v[v.len() - 1])
        })
    });
    g.bench_function("gate_per_chunk", |b| {
        let mut gate = Gate::new(ConsentSnapshot::from_manifest(
            &pid(),
            &attune::simulate::synthetic_consent(),
        ));
        let p = pid();
        b.iter(|| {
            for _ in 0..ecg.len() / CHUNK {
                black_box(gate.check(&p, StreamKind::Ecg, CHUNK));
            }
        })
    });
    for (name, wave) in [("beats_ecg", Waveform::Ecg), ("beats_ppg", Waveform::Ppg)] {
        g.bench_function(name, |b| {
            let mut out = Vec::new();
            b.iter(|| {
                let mut d =
                    BeatDetector::new(wave, FS, &BeatConfig::default()).expect("a supported rate");
                out.clear();
                for ch in ecg.chunks(CHUNK) {
                    d.push(ch, &mut out);
                }
                black_box(out.len())
            })
        });
    }
    g.bench_function("eda_chain", |b| {
        let mut scrs = Vec::new();
        b.iter(|| {
            let mut chain = EdaChain::new(FS, EdaConfig::default()).expect("a supported rate");
            let mut acc = 0.0;
            for (i, &x) in eda.iter().enumerate() {
                if let Some(v) = chain.push(i as f64 / FS, x, &mut scrs) {
                    acc += v;
                }
            }
            black_box(acc)
        })
    });
    let ecg_chunks = chunks(StreamKind::Ecg, &ecg);
    let eda_chunks = chunks(StreamKind::Eda, &eda);
    g.bench_function("features_ecg_eda_per_sample_pair", |b| {
        b.iter(|| {
            let mut f = ParticipantFeatures::new(FeatureConfig::default());
            let mut tick = 0.25;
            for (a, e) in ecg_chunks.iter().zip(&eda_chunks) {
                let _ = f.on_chunk(a);
                let _ = f.on_chunk(e);
                if a.host_t >= tick {
                    black_box(f.frame(tick));
                    tick += 0.25;
                }
            }
        })
    });
    g.finish();

    // The whole engine on ECG + EDA at 1 kHz: samples of both streams.
    let mut g = c.benchmark_group("engine_ecg_eda_1khz");
    g.throughput(Throughput::Elements(2 * n));
    g.sample_size(10);
    g.bench_function("engine_step", |b| {
        b.iter(|| {
            let mut e = Engine::new(
                EngineConfig::default(),
                ConsentSnapshot::from_manifest(&pid(), &attune::simulate::synthetic_consent()),
            );
            let mut out = Vec::new();
            e.step(Input::Join(pid()), &mut out);
            for kind in [StreamKind::Ecg, StreamKind::Eda] {
                e.step(
                    Input::Stream(Arc::new(StreamInfo {
                        participant: pid(),
                        kind,
                        rate_hz: Some(FS),
                        device: Device {
                            conversion: None,
                            name: "bench".into(),
                            protocol: "synthetic".into(),
                            firmware: None,
                        },
                    })),
                    &mut out,
                );
            }
            for (a, d) in ecg_chunks.iter().zip(&eda_chunks) {
                e.step(Input::Chunk(a.clone()), &mut out);
                e.step(Input::Chunk(d.clone()), &mut out);
                out.clear();
            }
            black_box(out.len())
        })
    });
    g.finish();

    // Rendering and publishing one adaptation line (per message, not per sample).
    let ev = adaptation_event(&ecg_chunks, &eda_chunks);
    let mut g = c.benchmark_group("per_message");
    g.bench_function("render_adaptation", |b| {
        b.iter(|| black_box(attune::publish::ndjson::render(&ev.body)))
    });
    g.bench_function("publish_unix_bus_one_subscriber", |b| {
        use attune::publish::Publisher;
        let bus = attune::publish::bus(1 << 16);
        let mut rx = bus.subscribe();
        let mut p = attune::publish::unix::UnixPublisher::new(
            bus,
            Default::default(),
            Arc::new(attune::publish::EgressDrops::default()),
        );
        b.iter(|| {
            // A fresh event each time: the line is rendered once per event, then cached.
            let e = Arc::new(attune::engine::event::Event::new(ev.body.clone()));
            black_box(p.publish(&e));
            while rx.try_recv().is_ok() {}
        })
    });
    g.finish();
}

/// An `adaptation` event from the engine on 60 s of the bank (its policy is still warming up,
/// which renders the same fields).
fn adaptation_event(ecg: &[Chunk], eda: &[Chunk]) -> Arc<attune::engine::event::Event> {
    let mut e = Engine::new(
        EngineConfig::default(),
        ConsentSnapshot::from_manifest(&pid(), &attune::simulate::synthetic_consent()),
    );
    let mut out = Vec::new();
    e.step(Input::Join(pid()), &mut out);
    let mut last = None;
    for (a, d) in ecg.iter().zip(eda) {
        e.step(Input::Chunk(a.clone()), &mut out);
        e.step(Input::Chunk(d.clone()), &mut out);
        for ev in out.drain(..) {
            if matches!(ev.body, attune::engine::event::EventBody::Adaptation(_)) {
                last = Some(ev);
            }
        }
    }
    last.expect("the engine decides every tick")
}

/// One update of each spectral feature (every 5 s per participant), and the per-sample cost of
/// the EDASymp low-pass and 2 Hz series.
fn spectral(c: &mut Criterion) {
    use attune::dsp::eda_symp::EdaSympathetic;
    use attune::dsp::hrv_spectral::HrvSpectral;
    let tau = 2.0 * std::f64::consts::PI;
    let mut t = 0.0;
    let mut beats = Vec::new();
    while t < 130.0 {
        let rr = 850.0 + 30.0 * (tau * 0.1 * t).sin() + 25.0 * (tau * 0.27 * t).sin();
        t += rr / 1000.0;
        beats.push((t, rr, false));
    }
    let mut g = c.benchmark_group("spectral");
    let mut h = HrvSpectral::new();
    g.bench_function("hrv_spectrum_130s_update", |b| {
        b.iter(|| black_box(h.compute(black_box(beats.iter().copied()))))
    });
    let fs = 32.0;
    let mut e = EdaSympathetic::new(fs).expect("32 Hz is a supported rate");
    for i in 0..(140.0 * fs) as usize {
        let t = i as f64 / fs;
        e.push(t, 5.0 + 0.2 * (tau * 0.1 * t).sin());
    }
    g.bench_function("eda_symp_128s_update", |b| {
        b.iter(|| black_box(e.live(black_box(139.0))))
    });
    g.throughput(Throughput::Elements(1));
    let mut e = EdaSympathetic::new(fs).expect("32 Hz is a supported rate");
    let mut i = 0usize;
    g.bench_function("eda_symp_push_per_sample_32hz", |b| {
        b.iter(|| {
            i += 1;
            let t = i as f64 / fs;
            e.push(black_box(t), black_box(5.0 + 1e-3 * (i % 7) as f64));
        })
    });
    g.finish();
}

criterion_group!(engine, stages, spectral);
criterion_main!(engine);
