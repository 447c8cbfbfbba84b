//! Tests of `rr_fix`.

use super::*;

/// A resting-like series: base interval, RSA (period 4.3 beats) and small deterministic
/// jitter (an LCG), in ms.
fn series(n: usize, base: f64, rsa: f64, seed: u64) -> Vec<f64> {
    let mut s = seed;
    (0..n)
        .map(|k| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            base + rsa * (2.0 * std::f64::consts::PI * k as f64 / 4.3).sin() + 6.0 * u
        })
        .collect()
}

fn run(rr: &[f64]) -> Vec<Decided> {
    let mut f = RrFixer::new(300.0, 2000.0, 0.2, FixConfig::default());
    let mut out = Vec::new();
    let mut t = 0.0;
    for &r in rr {
        t += r / 1000.0;
        f.push(t, r, &mut out);
    }
    f.flush(&mut out);
    out
}

fn classes(d: &[Decided]) -> Vec<(usize, BeatClass)> {
    d.iter()
        .enumerate()
        .filter(|(_, d)| d.class.is_artefact())
        .map(|(i, d)| (i, d.class))
        .collect()
}

const K: usize = 100;
const CASES: [(&str, f64, f64); 2] = [("rest", 920.0, 40.0), ("high HR", 660.0, 12.0)];

#[test]
fn clean_series_have_no_artefacts() {
    for (name, base, rsa) in CASES {
        let d = run(&series(300, base, rsa, 1));
        assert_eq!(d.len(), 300, "{name}: one decision per interval");
        assert_eq!(classes(&d), [], "{name}");
    }
}

#[test]
fn a_pvc_with_a_compensatory_pause_is_ectopic_and_both_intervals_are_averaged() {
    for (name, base, rsa) in CASES {
        for prem in [0.2, 0.35] {
            let mut rr = series(200, base, rsa, 2);
            let sum = rr[K] + rr[K + 1];
            rr[K] *= 1.0 - prem;
            rr[K + 1] = sum - rr[K];
            let d = run(&rr);
            assert_eq!(
                classes(&d),
                [(K, BeatClass::Ectopic), (K + 1, BeatClass::Ectopic)],
                "{name}, {prem}"
            );
            for i in [K, K + 1] {
                let b = d[i].beats[0].unwrap();
                assert!((b.rr_ms - sum / 2.0).abs() < 1e-9 && b.corrected && !b.follows);
            }
            // The beat after the pair is original but has no valid difference.
            let after = d[K + 2].beats[0].unwrap();
            assert!(!after.corrected && !after.follows);
            assert!(d[K + 3].beats[0].unwrap().follows);
        }
    }
}

#[test]
fn a_missed_beat_is_split_in_two() {
    for (name, base, rsa) in CASES {
        let mut rr = series(200, base, rsa, 3);
        let sum = rr[K] + rr.remove(K + 1);
        rr[K] = sum;
        let d = run(&rr);
        assert_eq!(classes(&d), [(K, BeatClass::Missed)], "{name}");
        let [Some(a), Some(b)] = d[K].beats else {
            panic!("{name}: two beats expected")
        };
        assert!((a.rr_ms - sum / 2.0).abs() < 1e-9 && (b.rr_ms - sum / 2.0).abs() < 1e-9);
        assert!(a.t < b.t && a.corrected && b.corrected);
    }
}

#[test]
fn an_extra_beat_is_merged_back() {
    for (name, base, rsa) in CASES {
        for f in [0.25, 0.4, 0.6] {
            let mut rr = series(200, base, rsa, 4);
            let whole = rr[K];
            rr[K] = whole * f;
            rr.insert(K + 1, whole * (1.0 - f));
            let d = run(&rr);
            let (a, b) = (whole * f, whole * (1.0 - f));
            if a >= 300.0 && b >= 300.0 {
                assert_eq!(
                    classes(&d),
                    [(K, BeatClass::Extra), (K + 1, BeatClass::Extra)],
                    "{name}, {f}"
                );
                assert!(d[K].beats[0].is_none());
                let merged = d[K + 1].beats[0].unwrap();
                assert!((merged.rr_ms - whole).abs() < 1e-9 && merged.corrected);
            } else {
                // A piece under 300 ms is implausible and carried into the next interval;
                // what is left may look premature and be corrected as ectopic. Either way
                // only these intervals are touched and time is conserved.
                let c = classes(&d);
                assert!(!c.is_empty() && c.iter().all(|(i, _)| (K..=K + 2).contains(i)));
                let out: f64 = d[K..=K + 2]
                    .iter()
                    .flat_map(|d| d.beats.into_iter().flatten())
                    .map(|b| b.rr_ms)
                    .sum();
                let inp: f64 = rr[K..=K + 2].iter().sum();
                assert!((out - inp).abs() < 1e-6, "{name}, {f}: {c:?}");
                for b in d[K..=K + 2]
                    .iter()
                    .flat_map(|d| d.beats.into_iter().flatten())
                {
                    assert!(
                        (b.rr_ms - base).abs() < 2.0 * rsa + 30.0,
                        "{name}, {f}: {c:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_lone_long_or_short_interval_is_replaced_by_the_median() {
    for (name, base, rsa) in CASES {
        for factor in [1.4, 0.65] {
            let mut rr = series(200, base, rsa, 5);
            rr[K] *= factor;
            let d = run(&rr);
            assert_eq!(classes(&d), [(K, BeatClass::LongShort)], "{name}, {factor}");
            let b = d[K].beats[0].unwrap();
            assert!(
                (b.rr_ms - base).abs() < 2.0 * rsa + 10.0,
                "{name}: {}",
                b.rr_ms
            );
        }
    }
}

#[test]
fn decisions_come_two_beats_late_and_flush_decides_the_rest() {
    let rr = series(60, 900.0, 30.0, 6);
    let mut f = RrFixer::new(300.0, 2000.0, 0.2, FixConfig::default());
    let mut out = Vec::new();
    let mut t = 0.0;
    for (i, &r) in rr.iter().enumerate() {
        t += r / 1000.0;
        f.push(t, r, &mut out);
        // Warm-up decides at once; afterwards two intervals stay pending.
        assert!(out.len() <= i + 1 && out.len() + DELAY_BEATS > i, "{i}");
        if i > 40 {
            assert_eq!(out.len() + DELAY_BEATS, i + 1, "{i}");
        }
    }
    assert_eq!(out.len() + DELAY_BEATS, rr.len());
    f.flush(&mut out);
    assert_eq!(out.len(), rr.len());
}

#[test]
fn a_constant_or_alternating_series_divides_by_nothing() {
    for rr in [
        vec![1000.0; 80],
        (0..80).map(|i| 800.0 + 100.0 * (i % 2) as f64).collect(),
    ] {
        assert_eq!(classes(&run(&rr)), []);
    }
}

#[test]
fn garbage_never_panics_and_memory_stays_bounded() {
    let mut f = RrFixer::new(300.0, 2000.0, 0.2, FixConfig::default());
    let mut out = Vec::new();
    let junk = [
        f64::NAN,
        -5.0,
        0.0,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        299.0,
        2001.0,
        850.0,
        5e-324,
    ];
    for i in 0..5000usize {
        let rr = junk[i % junk.len()];
        let t = match i % 7 {
            0 => f64::NAN,
            1 => -1e9,
            _ => i as f64,
        };
        f.push(t, rr, &mut out);
        f.push(i as f64 + 0.5, 600.0 + (i % 13) as f64 * 40.0, &mut out);
        assert!(f.pending.len() <= DELAY_BEATS);
        assert!(f.th1.len() <= 91 && f.th2.len() <= 91 && f.med.len() <= 11);
        out.clear();
    }
}

#[test]
fn a_bad_start_is_relearnt() {
    // Bigeminy-like chaos for 60 beats, then a normal rhythm: the tail is normal again.
    let mut rr: Vec<f64> = (0..60)
        .map(|i| if i % 2 == 0 { 500.0 } else { 1300.0 })
        .collect();
    rr.extend(series(200, 900.0, 30.0, 7));
    let d = run(&rr);
    let tail = &d[d.len() - 120..];
    let bad = tail.iter().filter(|d| d.class.is_artefact()).count();
    assert_eq!(bad, 0, "{:?}", classes(tail));
}

#[test]
fn an_infinite_tolerance_turns_the_step_off() {
    let mut f = RrFixer::new(0.0, f64::INFINITY, f64::INFINITY, FixConfig::default());
    let mut out = Vec::new();
    for (i, r) in [900.0, 450.0, 1350.0, 900.0].into_iter().enumerate() {
        assert!(f.push(i as f64, r, &mut out));
        assert_eq!(out.len(), i + 1, "no delay");
    }
    assert!(out.iter().all(|d| d.class == BeatClass::Normal));
}
