use super::*;
use crate::dsp::eda::{EdaChain, EdaConfig};
use crate::engine::input::Input;

fn timing(
    offset_s: f64,
    drift_ppm: f64,
    latency_s: f64,
    jitter_s: f64,
    block_s: f64,
) -> StreamTiming {
    StreamTiming {
        offset_s,
        drift_ppm,
        latency_s,
        jitter_s,
        block_s,
    }
}

fn spec(seed: u64, scenario: Scenario) -> LiveSpec {
    LiveSpec {
        participant: ParticipantId::new("p01").unwrap(),
        seed,
        scenario,
        stress_onset_s: 300.0,
        rr: Some(timing(0.0, 0.0, 0.02, 0.04, 1.0)),
        eda: Some(timing(0.0, 0.0, 0.01, 0.03, 1.0)),
        eda_rate_hz: 32.0,
    }
}

/// Deliveries arriving up to `t`.
fn run(spec: &LiveSpec, t: f64) -> Vec<Delivery> {
    let mut sim = LiveSim::new(spec);
    std::iter::from_fn(|| sim.next_delivery())
        .take_while(|d| d.chunk.host_t <= t)
        .collect()
}

fn of(ds: &[Delivery], kind: StreamKind) -> Vec<&Delivery> {
    ds.iter().filter(|d| d.chunk.kind == kind).collect()
}

/// (true time, value) of every sample of `kind`.
fn samples(sim: &LiveSim, ds: &[Delivery], kind: StreamKind) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for d in of(ds, kind) {
        for (i, &v) in d.chunk.samples.iter().enumerate() {
            let dev = d.chunk.time_of(i);
            // Invert the device clock with the ground truth (offset varies by < 1 µs per s).
            let t = dev - sim.truth_offset(kind, dev).unwrap();
            out.push((t, v));
        }
    }
    out
}

#[test]
fn same_spec_same_inputs_other_seed_other_inputs() {
    let (a, b, c) = (
        run(&spec(1, Scenario::RestThenStress), 400.0),
        run(&spec(1, Scenario::RestThenStress), 400.0),
        run(&spec(2, Scenario::RestThenStress), 400.0),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut out = Vec::new();
    LiveSim::new(&spec(1, Scenario::RestThenStress)).until(400.0, &mut out);
    let chunks: Vec<Input> = a.iter().map(|d| Input::Chunk(d.chunk.clone())).collect();
    assert_eq!(out, chunks);
}

#[test]
fn one_stream_does_not_change_the_other() {
    let both = run(&spec(3, Scenario::RestThenStress), 600.0);
    let mut rr_only = spec(3, Scenario::RestThenStress);
    rr_only.eda = None;
    let mut eda_retimed = spec(3, Scenario::RestThenStress);
    eda_retimed.rr = Some(timing(5.0, 40.0, 1.0, 0.5, 2.0));
    let rr_values = |ds: &[Delivery]| -> Vec<f64> {
        of(ds, StreamKind::Rr)
            .iter()
            .flat_map(|d| d.chunk.samples.clone())
            .collect()
    };
    let eda_chunks = |ds: &[Delivery]| -> Vec<Chunk> {
        of(ds, StreamKind::Eda)
            .iter()
            .map(|d| d.chunk.clone())
            .collect()
    };
    let only = run(&rr_only, 600.0);
    assert!(of(&only, StreamKind::Eda).is_empty());
    assert_eq!(rr_values(&only), rr_values(&both));
    let retimed = run(&eda_retimed, 600.0);
    assert_eq!(eda_chunks(&retimed), eda_chunks(&both));
    // Re-timing RR regroups its beats but keeps the beat values.
    let (a, b) = (rr_values(&retimed), rr_values(&both));
    assert_eq!(a[..a.len().min(b.len()) - 5], b[..a.len().min(b.len()) - 5]);
}

/// Mean HR (bpm) and RMSSD (ms) of the beats in [from, to).
fn hr_rmssd(rr: &[(f64, f64)], from: f64, to: f64) -> (f64, f64) {
    let v: Vec<f64> = rr
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|x| x.1)
        .collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let d2: Vec<f64> = v.windows(2).map(|w| (w[1] - w[0]).powi(2)).collect();
    (
        60_000.0 / mean,
        (d2.iter().sum::<f64>() / d2.len() as f64).sqrt(),
    )
}

fn mean_in(x: &[(f64, f64)], from: f64, to: f64) -> f64 {
    let v: Vec<f64> = x
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|x| x.1)
        .collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn ten_minutes_of_rest_are_plausible() {
    let mut rows = Vec::new();
    for seed in 1..=10 {
        let s = spec(seed, Scenario::Rest);
        let sim = LiveSim::new(&s);
        let ds = run(&s, 600.0);
        let rr = samples(&sim, &ds, StreamKind::Rr);
        let eda = samples(&sim, &ds, StreamKind::Eda);
        assert!(rr.last().unwrap().0 > 595.0 && eda.last().unwrap().0 > 595.0);
        let (hr, rmssd) = hr_rmssd(&rr, 0.0, 600.0);
        let scl = mean_in(&eda, 0.0, 600.0);
        let mut chain = EdaChain::new(32.0, EdaConfig::default()).unwrap();
        let mut scrs = Vec::new();
        for &(t, v) in &eda {
            chain.push(t, v, &mut scrs);
        }
        let scr_per_min = scrs.len() as f64 / 10.0;
        rows.push(format!(
            "seed {seed}: HR {hr:.1} bpm, RMSSD {rmssd:.1} ms, SCL {scl:.2} uS, SCR {scr_per_min:.1}/min"
        ));
        assert!((50.0..=100.0).contains(&hr), "{}", rows[rows.len() - 1]);
        assert!((10.0..=120.0).contains(&rmssd), "{}", rows[rows.len() - 1]);
        assert!((1.0..=20.0).contains(&scl), "{}", rows[rows.len() - 1]);
        assert!(
            (0.0..=10.0).contains(&scr_per_min),
            "{}",
            rows[rows.len() - 1]
        );
    }
    eprintln!("{}", rows.join("\n"));
}

#[test]
fn stress_raises_hr_and_scl_after_the_onset() {
    for seed in 1..=10 {
        let s = spec(seed, Scenario::RestThenStress);
        let sim = LiveSim::new(&s);
        assert_eq!(sim.stress_onset(), Some(300.0));
        let ds = run(&s, 600.0);
        let rr = samples(&sim, &ds, StreamKind::Rr);
        let eda = samples(&sim, &ds, StreamKind::Eda);
        let ((hr_r, _), (hr_s, _)) = (hr_rmssd(&rr, 60.0, 300.0), hr_rmssd(&rr, 360.0, 600.0));
        let (scl_r, scl_s) = (mean_in(&eda, 60.0, 300.0), mean_in(&eda, 360.0, 600.0));
        eprintln!("seed {seed}: HR {hr_r:.1} -> {hr_s:.1} bpm, SCL {scl_r:.2} -> {scl_s:.2} uS");
        assert!(hr_s > hr_r + 5.0, "seed {seed}: HR {hr_r} -> {hr_s}");
        assert!(scl_s > scl_r, "seed {seed}: SCL {scl_r} -> {scl_s}");
        // Rest stays rest: no rise without the onset.
        let ds = run(&spec(seed, Scenario::Rest), 600.0);
        let rr = samples(&sim, &ds, StreamKind::Rr);
        let (hr_a, hr_b) = (hr_rmssd(&rr, 60.0, 300.0).0, hr_rmssd(&rr, 360.0, 600.0).0);
        assert!(
            (hr_b - hr_a).abs() < 5.0,
            "seed {seed}: rest HR {hr_a} -> {hr_b}"
        );
    }
}

#[test]
fn device_clock_offset_latency_blocks_and_drift() {
    let mut s = spec(4, Scenario::Rest);
    s.eda = Some(timing(-10.0, 20.0, 6.0, 0.5, 10.0));
    s.rr = Some(timing(2.0, 100.0, 0.1, 0.3, 1.0));
    let sim = LiveSim::new(&s);
    let ds = run(&s, 3700.0);
    let eda = of(&ds, StreamKind::Eda);
    let mut prev_arrival: Option<f64> = None;
    for (k, d) in eda.iter().enumerate() {
        let c = &d.chunk;
        assert_eq!(c.samples.len(), 320);
        let Timing::Uniform { t0, rate_hz } = c.timing else {
            panic!("{:?}", c.timing)
        };
        assert_eq!(rate_hz, 32.0);
        // True time of sample 320k is 10k s; the device clock is 10 s behind (± drift).
        let truth = k as f64 * 10.0;
        assert_eq!(d.first_true_t, truth);
        let behind = truth - t0;
        assert!(
            (behind - (10.0 - 20e-6 * truth)).abs() < 1e-6,
            "block {k}: {behind}"
        );
        assert!(
            (behind - 10.0).abs() <= 20e-6 * truth + 1e-6,
            "block {k}: {behind}"
        );
        let late = c.host_t - d.last_true_t;
        assert!(
            (6.0 - 1e-6..=6.5 + 1e-6).contains(&late),
            "block {k}: {late}"
        );
        if let Some(p) = prev_arrival {
            assert!(
                (9.5 - 1e-6..=10.5 + 1e-6).contains(&(c.host_t - p)),
                "block {k}"
            );
        }
        prev_arrival = Some(c.host_t);
    }
    assert!(eda.len() >= 369);
    let drift = sim.truth_offset(StreamKind::Rr, 3600.0).unwrap() - 2.0;
    assert!((drift - 0.36).abs() < 1e-3, "{drift}");
    // The RR chunks carry it: a beat near 3600 s is stamped 2.36 s ahead of its true time.
    let rr = of(&ds, StreamKind::Rr);
    let d = rr.iter().find(|d| d.last_true_t > 3600.0).unwrap();
    let ahead = d.chunk.last_time() - d.last_true_t;
    assert!(
        (ahead - (2.0 + 100e-6 * d.last_true_t)).abs() < 1e-6,
        "{ahead}"
    );
    assert!((ahead - 2.36).abs() < 1e-3, "{ahead}");
}

#[test]
fn notifications_sequences_and_arrival_order() {
    let mut s = spec(5, Scenario::RestThenStress);
    s.rr = Some(timing(-1.0, -30.0, 0.05, 2.5, 0.5));
    let ds = run(&s, 900.0);
    let mut last_host = f64::NEG_INFINITY;
    for d in &ds {
        assert!(
            d.chunk.host_t >= last_host,
            "host_t went back at {:?}",
            d.chunk
        );
        let latency = if d.chunk.kind == StreamKind::Rr {
            0.05
        } else {
            0.01
        };
        assert!(d.chunk.host_t >= d.last_true_t + latency - 1e-6);
        last_host = d.chunk.host_t;
    }
    for kind in [StreamKind::Rr, StreamKind::Eda] {
        let ds = of(&ds, kind);
        let mut last_t = f64::NEG_INFINITY;
        for (k, d) in ds.iter().enumerate() {
            assert_eq!(d.chunk.seq, k as u64, "{kind}");
            for i in 0..d.chunk.samples.len() {
                assert!(
                    d.chunk.time_of(i) > last_t,
                    "{kind}: device time not increasing"
                );
                last_t = d.chunk.time_of(i);
            }
        }
    }
    // RR: each notification holds exactly the beats of its window (all beats, each once: the
    // beat times follow from the RR values), and a window without a beat sends nothing.
    for block in [0.5, 2.0] {
        s.rr = Some(timing(-1.0, -30.0, 0.05, 2.5, block));
        let ds = run(&s, 900.0);
        let rr = of(&ds, StreamKind::Rr);
        let mut beat = 0.0;
        let mut windows = Vec::new();
        for d in &rr {
            let Timing::Events(ts) = &d.chunk.timing else {
                panic!()
            };
            assert_eq!(ts.len(), d.chunk.samples.len());
            let w = (d.last_true_t / block).ceil();
            assert!((d.first_true_t / block).ceil() == w && windows.last() < Some(&w));
            windows.push(w);
            for (&t, &v) in ts.iter().zip(&d.chunk.samples) {
                beat += v / 1000.0;
                let dev = (1.0 - 30e-6) * beat - 1.0;
                assert!((t - dev).abs() < 1e-5, "{t} vs {dev}");
                assert_eq!((v * 1.024).round(), v * 1.024, "not 1/1024 s: {v}");
            }
        }
        let most = rr.iter().map(|d| d.chunk.samples.len()).max();
        let skipped = windows.windows(2).any(|w| w[1] > w[0] + 1.0);
        if block == 0.5 {
            assert!(skipped, "no skipped window");
        } else {
            assert!(most >= Some(2), "no batched beats");
        }
    }
    // One notification per beat with block_s 0.
    s.rr = Some(timing(0.0, 0.0, 0.0, 0.0, 0.0));
    assert!(
        of(&run(&s, 120.0), StreamKind::Rr)
            .iter()
            .all(|d| d.chunk.samples.len() == 1)
    );
}

#[test]
fn an_hour_keeps_buffers_bounded() {
    let mut s = spec(6, Scenario::RestThenStress);
    s.stress_onset_s = 600.0;
    let mut sim = LiveSim::new(&s);
    let (mut max, mut n) = (0, 0);
    while let Some(d) = sim.next_delivery() {
        max = max.max(sim.buffered());
        n += d.chunk.samples.len();
        if d.chunk.host_t > 3600.0 {
            break;
        }
    }
    assert!(n > 3600 * 32, "{n}");
    // One pending 32-sample EDA block, a few RR values and the decaying SCRs.
    assert!(max < 100, "buffered up to {max}");
}

#[test]
fn specs_are_checked_and_bad_values_do_not_stall_the_generator() {
    let good = spec(1, Scenario::RestThenStress);
    assert_eq!(good.check(), Ok(()));
    let mut none = good.clone();
    (none.rr, none.eda) = (None, None);
    assert!(matches!(none.check(), Err(LiveSpecError::NoStreams(_))));
    assert!(LiveSim::new(&none).next_delivery().is_none());
    let mut per_beat = good.clone();
    per_beat.rr = Some(timing(0.0, 0.0, 0.0, 0.0, 0.0));
    assert_eq!(per_beat.check(), Ok(()));
    per_beat.eda = per_beat.rr;
    let err = per_beat.check().unwrap_err().to_string();
    assert!(err.contains("eda.block_s must be in (0, 60] s"), "{err}");
    let mut bad = good.clone();
    bad.eda_rate_hz = f64::NAN;
    bad.eda = Some(timing(f64::NAN, f64::INFINITY, -1.0, f64::NAN, 0.0));
    bad.rr = Some(timing(0.0, 0.0, 0.0, 0.0, -5.0));
    assert!(bad.check().is_err());
    let ds = run(&bad, 30.0);
    assert!(of(&ds, StreamKind::Eda).len() > 100 && of(&ds, StreamKind::Rr).len() > 20);
}

#[test]
fn streams_are_declared_as_the_simulator() {
    let mut s = spec(1, Scenario::Rest);
    let info = LiveSim::new(&s).streams();
    assert_eq!(info.len(), 2);
    assert_eq!((info[0].kind, info[0].rate_hz), (StreamKind::Rr, None));
    assert_eq!(
        (info[1].kind, info[1].rate_hz),
        (StreamKind::Eda, Some(32.0))
    );
    assert_eq!(info[1].device.name, "attune-simulator");
    assert_eq!(info[1].device.protocol, "synthetic");
    s.rr = None;
    assert_eq!(LiveSim::new(&s).streams().len(), 1);
}
