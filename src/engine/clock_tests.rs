//! Tests of the clock mapper on synthetic streams (seeded ChaCha8 noise). Run with
//! `cargo test --lib engine::clock -- --nocapture` to see the measured figures.

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A device clock: at host time `h` it reads `(h − behind_s)·(1 + ppm·1e-6)`.
#[derive(Debug, Clone, Copy)]
struct Device {
    behind_s: f64,
    ppm: f64,
}

impl Device {
    /// Host time at which the device clock reads `dev`.
    fn host_of(&self, dev: f64) -> f64 {
        dev / (1.0 + self.ppm * 1e-6) + self.behind_s
    }
}

/// One delivered uniform chunk: when it arrived, when each sample was really taken (host
/// time), where it was mapped, and the estimate after it.
struct Delivered {
    arrival: f64,
    send: Vec<f64>,
    mapped: Vec<f64>,
    report: ClockReport,
}

/// Feeds `count` chunks of `n` samples at `rate_hz` (device time from 0) through `clock`;
/// each arrives `latency()` after its last sample was taken, in order (FIFO link).
fn feed_uniform(
    clock: &mut StreamClock,
    dev: Device,
    rate_hz: f64,
    n: usize,
    count: usize,
    mut latency: impl FnMut() -> f64,
) -> Vec<Delivered> {
    let mut out = Vec::with_capacity(count);
    let mut prev_arrival = f64::NEG_INFINITY;
    for i in 0..count {
        let t0 = (i * n) as f64 / rate_hz;
        let devs: Vec<f64> = (0..n).map(|j| t0 + j as f64 / rate_hz).collect();
        let send: Vec<f64> = devs.iter().map(|&d| dev.host_of(d)).collect();
        let arrival = (send[n - 1] + latency()).max(prev_arrival);
        prev_arrival = arrival;
        assert_eq!(clock.observe(devs[0], devs[n - 1], arrival), Observed::Used);
        let Some(Timing::Uniform { t0: m0, rate_hz: r }) =
            clock.map_timing(&Timing::Uniform { t0, rate_hz }, n)
        else {
            panic!("no mapping after an observation");
        };
        assert_eq!(r, rate_hz, "the nominal rate is kept");
        let mapped = (0..n).map(|j| m0 + j as f64 / rate_hz).collect();
        let report = clock.report().expect("a report after an observation");
        out.push(Delivered {
            arrival,
            send,
            mapped,
            report,
        });
    }
    out
}

fn rms(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x * x, n + 1));
    (s / n.max(1) as f64).sqrt()
}

fn assert_strictly_increasing(ds: &[Delivered]) {
    let all: Vec<f64> = ds.iter().flat_map(|d| d.mapped.iter().copied()).collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "mapped times reorder");
}

#[test]
fn offset_of_a_clock_10_s_behind_converges() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut clock = StreamClock::new(ClockConfig::default());
    let dev = Device {
        behind_s: 10.0,
        ppm: 0.0,
    };
    let ds = feed_uniform(&mut clock, dev, 1.0, 1, 180, || {
        rng.random_range(0.020..0.060)
    });
    let late: Vec<&Delivered> = ds.iter().filter(|d| d.arrival >= 60.0 + 10.0).collect();
    let err = late
        .iter()
        .map(|d| (d.report.offset_s - 10.020).abs())
        .fold(0.0, f64::max);
    let lat = late.iter().map(|d| d.report.latency_s).fold(0.0, f64::max);
    println!(
        "10 s behind: max |offset − 10.020| = {:.2} ms, max latency_s = {:.1} ms",
        err * 1e3,
        lat * 1e3
    );
    assert!(err < 0.060, "offset error {err}");
    assert!(lat < 0.1, "latency {lat}");
    assert_strictly_increasing(&ds);
}

#[test]
fn steady_6_s_latency_is_absorbed_into_the_offset() {
    // RR beats on a device clock equal to the host's; one notification per host second carries
    // the beats since the last one and arrives 6 s (+0–10 ms) after it was sent.
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut clock = StreamClock::new(ClockConfig::default());
    let mut beat = 0.3;
    let (mut lo, mut hi, mut max_age) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    let mut delivered: Vec<(f64, Vec<f64>)> = Vec::new();
    for k in 1..=300 {
        let notify = f64::from(k);
        let mut beats = Vec::new();
        while beat <= notify {
            beats.push(beat);
            beat += rng.random_range(0.7..1.0);
        }
        let Some((&first, &last)) = beats.first().zip(beats.last()) else {
            continue;
        };
        let arrival = notify + 6.0 + rng.random_range(0.0..0.010);
        assert_eq!(clock.observe(first, last, arrival), Observed::Used);
        let Some(Timing::Events(mapped)) = clock.map_timing(&Timing::Events(beats), 0) else {
            panic!("no mapping");
        };
        if arrival >= 60.0 {
            for &m in &mapped {
                lo = lo.min(m - arrival);
                hi = hi.max(m - arrival);
            }
        }
        delivered.push((arrival, mapped));
    }
    // Age at each tick: the newest delivered beat mapped at or before it.
    for i in 0..((300.0 - 60.0) * 4.0) as usize {
        let tick = 60.0 + i as f64 * 0.25;
        let newest = delivered
            .iter()
            .take_while(|(a, _)| *a <= tick)
            .flat_map(|(_, m)| m.iter().copied())
            .filter(|&m| m <= tick)
            .fold(f64::NEG_INFINITY, f64::max);
        max_age = max_age.max(tick - newest);
    }
    let r = clock.report().expect("report");
    println!(
        "6 s latency: mapped − arrival in [{lo:.3}, {hi:.3}] s, max age at a tick {max_age:.3} s \
         (unmapped: ≥ 6 s), offset {:.3} s, latency_s {:.3} s",
        r.offset_s, r.latency_s
    );
    assert!(lo >= -0.1, "a beat mapped {lo} s before it arrived");
    assert!(hi <= 1.1, "a beat mapped {hi} s after it arrived");
    assert!(max_age <= 1.1, "the stream looked {max_age} s old");
}

#[test]
fn eda_in_10_s_blocks_is_never_stale() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut clock = StreamClock::new(ClockConfig::default());
    let dev = Device {
        behind_s: -5.0,
        ppm: 30.0,
    };
    let ds = feed_uniform(&mut clock, dev, 32.0, 320, 60, || {
        rng.random_range(0.05..0.15)
    });
    let mut max_age = 0.0f64;
    let end = ds.last().map_or(0.0, |d| d.arrival);
    let mut i = 0;
    while 60.0 + i as f64 * 0.25 < end {
        let tick = 60.0 + i as f64 * 0.25;
        let arrived = ds.partition_point(|d| d.arrival <= tick);
        let newest = ds[arrived.saturating_sub(3)..arrived]
            .iter()
            .flat_map(|d| d.mapped.iter().copied())
            .filter(|&m| m <= tick)
            .fold(f64::NEG_INFINITY, f64::max);
        max_age = max_age.max(tick - newest);
        i += 1;
    }
    let late = ds.iter().filter(|d| d.arrival >= 60.0);
    let (lmin, lmax) = late.fold((f64::INFINITY, 0.0f64), |(a, b), d| {
        (a.min(d.report.latency_s), b.max(d.report.latency_s))
    });
    println!(
        "EDA 10 s blocks: max age at a tick {max_age:.3} s, latency_s in [{lmin:.3}, {lmax:.3}] s"
    );
    assert!(max_age <= 1.0, "stale for {max_age} s");
    assert!((9.5..=11.0).contains(&lmin) && (9.5..=11.0).contains(&lmax));
    assert_strictly_increasing(&ds);
}

#[test]
fn skew_of_100_ppm_over_an_hour() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut clock = StreamClock::new(ClockConfig::default());
    let dev = Device {
        behind_s: 2.0,
        ppm: 100.0,
    };
    let ds = feed_uniform(&mut clock, dev, 4.0, 4, 3600, || {
        rng.random_range(0.020..0.060)
    });
    let skew_err = ds
        .iter()
        .filter(|d| d.arrival >= 300.0)
        .map(|d| (d.report.skew_ppm - 100.0).abs())
        .fold(0.0, f64::max);
    let resid = rms(ds.iter().filter(|d| d.arrival >= 1800.0).flat_map(|d| {
        let l = d.report.latency_s;
        d.send
            .iter()
            .zip(&d.mapped)
            .map(move |(s, m)| m - (s + 0.020 + l))
    }));
    let slow = {
        let mut clock = StreamClock::new(ClockConfig::default());
        let dev = Device {
            behind_s: 2.0,
            ppm: -100.0,
        };
        let ds = feed_uniform(&mut clock, dev, 4.0, 4, 400, || {
            rng.random_range(0.020..0.060)
        });
        ds.last().map_or(f64::NAN, |d| d.report.skew_ppm)
    };
    println!(
        "100 ppm fast, 1 h: max |skew − 100| after 5 min {skew_err:.2} ppm, residual RMS over the \
         last 30 min {:.3} ms; 100 ppm slow reads {slow:.2} ppm",
        resid * 1e3
    );
    assert!(skew_err <= 10.0, "skew error {skew_err} ppm");
    assert!(resid <= 0.005, "residual {resid} s");
    assert!(
        (slow + 100.0).abs() <= 10.0,
        "slow clock read as {slow} ppm"
    );
    assert_strictly_increasing(&ds);
}

/// RELIABILITY.md "Monotonic timestamps": 256 Hz, 8-sample chunks (32 a second), arrivals
/// 10 ms ± 5 ms (uniform) after the chunk's last sample, 20 ppm, 3 s offset. The residual is
/// mapped time minus true sampling time (host clock), about its mean (the mean is the intended
/// delay: smallest latency plus the allowance), over every sample that arrived after 60 s.
#[test]
fn dejitter_residual_at_256_hz() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut clock = StreamClock::new(ClockConfig::default());
    let dev = Device {
        behind_s: 3.0,
        ppm: 20.0,
    };
    let ds = feed_uniform(&mut clock, dev, 256.0, 8, 32 * 180, || {
        0.010 + rng.random_range(-0.005..0.005)
    });
    let late: Vec<&Delivered> = ds.iter().filter(|d| d.arrival >= 60.0).collect();
    let r: Vec<f64> = late
        .iter()
        .flat_map(|d| d.send.iter().zip(&d.mapped).map(|(s, m)| m - s))
        .collect();
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let resid = rms(r.iter().map(|x| x - mean));
    let a: Vec<f64> = late.iter().map(|d| d.arrival - d.send[7]).collect();
    let amean = a.iter().sum::<f64>() / a.len() as f64;
    let raw = rms(a.iter().map(|x| x - amean));
    println!(
        "256 Hz ±5 ms: dejitter residual RMS {:.3} ms (raw arrival jitter RMS {:.3} ms), mean \
         delay {:.1} ms",
        resid * 1e3,
        raw * 1e3,
        mean * 1e3
    );
    assert!(resid <= 0.001, "residual {resid} s");
    assert_strictly_increasing(&ds);
}

#[test]
fn device_reset_restarts_and_reconverges() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut clock = StreamClock::new(ClockConfig::default());
    let (mut resets, mut prev) = (0, f64::NEG_INFINITY);
    let mut err_after = 0.0f64;
    for k in 0..600 {
        let host = f64::from(k);
        // Device clock 10 s behind; at 300 s it restarts 1000 s earlier.
        let behind = if k < 300 { 10.0 } else { 1010.0 };
        let last = host - behind;
        let first = last - 0.75;
        let arrival = host + rng.random_range(0.020..0.060);
        match clock.observe(first, last, arrival) {
            Observed::Reset => resets += 1,
            o => assert_eq!(o, Observed::Used),
        }
        let t = Timing::Uniform {
            t0: first,
            rate_hz: 4.0,
        };
        let Some(Timing::Uniform { t0, .. }) = clock.map_timing(&t, 4) else {
            panic!("no mapping");
        };
        assert!(t0 > prev, "mapped times went back at {host}");
        prev = t0 + 0.75;
        if k >= 360 {
            let r = clock.report().expect("report");
            err_after = err_after.max((r.offset_s - 1010.020).abs());
        }
    }
    let r = clock.report().expect("report");
    println!(
        "device reset: {resets} reset(s), max |offset − 1010.020| from 60 s after it {:.2} ms, \
         {} observations since",
        err_after * 1e3,
        r.observations
    );
    assert_eq!(resets, 1);
    assert!(err_after < 0.060, "offset error {err_after}");
    assert_eq!(r.observations, 300);
}

#[test]
fn forward_jump_resets_and_a_stall_does_not() {
    let mut clock = StreamClock::new(ClockConfig::default());
    // One delivery a second, 50 ms late; deliveries 100–104 are held until 105 s (a FIFO link
    // stalls for 5 s, then flushes).
    for k in 0..200 {
        let t = f64::from(k);
        let arrival = if (100..105).contains(&k) {
            105.05
        } else {
            t + 0.05
        };
        assert_eq!(clock.observe(t, t, arrival), Observed::Used);
    }
    let lat = clock.report().map_or(f64::NAN, |r| r.latency_s);
    // A 40 s stall departs upwards with device time moving forward: not a reset.
    assert_eq!(clock.observe(200.0, 200.0, 240.05), Observed::Used);
    println!("after a 5 s stall: latency_s {:.1} ms", lat * 1e3);
    assert!(lat < 0.1, "a stall inflated the allowance to {lat}");
    // Device time jumps 1000 s ahead: a reset.
    assert_eq!(clock.observe(1241.0, 1241.0, 241.05), Observed::Reset);
}

#[test]
fn non_finite_input_changes_nothing() {
    let mut clock = StreamClock::new(ClockConfig::default());
    assert_eq!(clock.to_session(1.0), None);
    assert_eq!(clock.map_timing(&Timing::Events(vec![1.0]), 1), None);
    assert_eq!(clock.observe(0.0, 1.0, 1.5), Observed::Used);
    let before = clock.clone();
    for (a, b, h) in [
        (f64::NAN, 1.0, 2.0),
        (1.0, f64::INFINITY, 2.0),
        (1.0, 2.0, f64::NAN),
        (3.0, 2.0, 4.0),
    ] {
        assert_eq!(clock.observe(a, b, h), Observed::Ignored);
    }
    assert_eq!(
        clock.map_timing(&Timing::Events(vec![2.0, f64::NAN]), 2),
        None
    );
    let bad_rate = Timing::Uniform {
        t0: 2.0,
        rate_hz: 0.0,
    };
    assert_eq!(clock.map_timing(&bad_rate, 2), None);
    assert_eq!(clock, before);
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    behind_s: f64,
    ppm: f64,
    rate_hz: f64,
    per_chunk: usize,
    jitter_s: f64,
    events: bool,
    chunks: usize,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        any::<u64>(),
        -1e4..1e4f64,
        -300.0..300.0f64,
        prop::sample::select(vec![1.0, 4.0, 32.0, 256.0]),
        1..64usize,
        0.0..0.5f64,
        any::<bool>(),
        20..300usize,
    )
        .prop_map(
            |(seed, behind_s, ppm, rate_hz, per_chunk, jitter_s, events, chunks)| Scenario {
                seed,
                behind_s,
                ppm,
                rate_hz,
                per_chunk,
                jitter_s,
                events,
                chunks,
            },
        )
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    })]

    /// Random offsets, drift, jitter and batching, with device jumps, stalls, NaN deliveries and
    /// resets thrown in: mapped times stay finite and strictly increasing, and nothing panics.
    #[test]
    fn mapped_times_always_strictly_increase(s in scenario()) {
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
        let mut clock = StreamClock::new(ClockConfig::default());
        let mut dev = Device { behind_s: s.behind_s, ppm: s.ppm };
        let (mut prev_arrival, mut prev_mapped) = (0.0f64, f64::NEG_INFINITY);
        for i in 0..s.chunks {
            let roll: f64 = rng.random();
            if roll < 0.02 {
                dev.behind_s += rng.random_range(-2000.0..2000.0);
            } else if roll < 0.03 {
                clock.reset();
            }
            let t0 = (i * s.per_chunk) as f64 / s.rate_hz;
            let devs: Vec<f64> = (0..s.per_chunk).map(|j| t0 + j as f64 / s.rate_hz).collect();
            let last = devs[s.per_chunk - 1];
            let stall = if rng.random::<f64>() < 0.01 { rng.random_range(0.0..60.0) } else { 0.0 };
            let arrival = (dev.host_of(last) + rng.random_range(0.0..=s.jitter_s) + stall)
                .max(prev_arrival);
            prev_arrival = arrival;
            if rng.random::<f64>() < 0.02 {
                prop_assert_eq!(clock.observe(f64::NAN, last, arrival), Observed::Ignored);
            }
            clock.observe(devs[0], last, arrival);
            let mapped = if s.events {
                match clock.map_timing(&Timing::Events(devs), s.per_chunk) {
                    Some(Timing::Events(m)) => m,
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            } else {
                match clock.map_timing(&Timing::Uniform { t0, rate_hz: s.rate_hz }, s.per_chunk) {
                    Some(Timing::Uniform { t0: m0, rate_hz }) => {
                        (0..s.per_chunk).map(|j| m0 + j as f64 / rate_hz).collect()
                    }
                    other => return Err(TestCaseError::fail(format!("{other:?}"))),
                }
            };
            for m in mapped {
                prop_assert!(m.is_finite() && m > prev_mapped, "{} after {}", m, prev_mapped);
                prev_mapped = m;
            }
            if let Some(r) = clock.report() {
                prop_assert!(r.offset_s.is_finite() && r.skew_ppm.is_finite());
                prop_assert!(r.latency_s.is_finite() && r.latency_s >= 0.0);
            }
        }
    }
}

#[test]
fn backward_move_is_clamped_not_reordered() {
    let mut clock = StreamClock::new(ClockConfig::default());
    let uniform = |t0: f64| Timing::Uniform { t0, rate_hz: 1.0 };
    // A 10 s block: allowance 10 s, samples mapped 10.05..=20.05.
    assert_eq!(clock.observe(0.0, 10.0, 10.05), Observed::Used);
    let Some(Timing::Uniform { t0: a, .. }) = clock.map_timing(&uniform(0.0), 11) else {
        panic!("no mapping");
    };
    assert!((a - 10.05).abs() < 1e-9);
    // The estimate moves back by 10 s: the next sample is clamped just after 20.05.
    clock.reset();
    assert_eq!(clock.observe(11.0, 11.0, 11.05), Observed::Used);
    let Some(Timing::Uniform { t0: b, .. }) = clock.map_timing(&uniform(11.0), 1) else {
        panic!("no mapping");
    };
    let estimate = clock.to_session(11.0).unwrap_or(f64::NAN);
    println!(
        "clamp: estimate {estimate:.6} s, mapped {b:.6} s, displaced {:.6} s",
        b - estimate
    );
    assert!(b > a + 10.0 && b - (a + 10.0) <= 2e-6, "clamped to {b}");
    assert!(
        b - estimate <= 10.0 + 2e-6,
        "displaced by more than the backward move"
    );
    // Once the estimate passes the floor the mapping is exact again.
    assert_eq!(clock.observe(30.0, 30.0, 30.05), Observed::Used);
    let Some(Timing::Uniform { t0: c, .. }) = clock.map_timing(&uniform(30.0), 1) else {
        panic!("no mapping");
    };
    assert_eq!(Some(c), clock.to_session(30.0));
}
