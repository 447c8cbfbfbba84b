//! Realism, norm, direction, artefact and determinism checks of the heart model. The realism
//! numbers quoted in `docs/evaluation.md` are printed by
//! `cargo test --release --lib simulate::cohort::heart -- --nocapture`.

use super::super::{CohortPerson, CohortScenario, Drives, Timeline, person_seed, rng_for, streams};
use super::*;
use crate::dsp::hrv::{frequency_taskforce, percentile_sorted, time_domain};

/// One cohort member's heart through a scenario, as `simulate_person` draws it.
fn run(seed: u64, scenario: CohortScenario, dur: f64) -> (CohortPerson, Drives, HeartOutput) {
    let person = CohortPerson::draw(seed);
    let tl = Timeline::new(scenario, dur, &mut rng_for(seed, streams::TIMELINE));
    let drives = Drives::new(&person.psyche, &tl, &mut rng_for(seed, streams::AROUSAL));
    let out = simulate(
        &mut rng_for(seed, streams::HEART),
        &person.heart,
        &drives,
        dur,
    );
    (person, drives, out)
}

fn fixture_rr(name: &str) -> Vec<f64> {
    let path = format!("{}/fixtures/signals/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .skip(1)
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .collect()
}

/// (beat time s, RR ms) of intervals given back to back.
fn timed(rr: &[f64]) -> Vec<(f64, f64)> {
    let mut t = 0.0;
    rr.iter()
        .map(|r| {
            t += r / 1000.0;
            (t, *r)
        })
        .collect()
}

/// Normal-to-normal beats (artefact-free; the real fixtures are NN series) as (t, RR).
fn nn(out: &HeartOutput, from: f64, to: f64) -> Vec<(f64, f64)> {
    out.beats
        .iter()
        .filter(|b| b.artefact.is_none() && (from..to).contains(&b.t))
        .map(|b| (b.t, b.rr_ms))
        .collect()
}

fn rr_of(b: &[(f64, f64)]) -> Vec<f64> {
    b.iter().map(|x| x.1).collect()
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn sd1(x: &[f64]) -> f64 {
    let m = mean(x);
    (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0)).sqrt()
}

fn median(x: &[f64]) -> f64 {
    quantile(x, 50.0)
}

fn quantile(x: &[f64], q: f64) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    percentile_sorted(&s, q)
}

/// Within-person spread: the sample SD of the means of instantaneous HR (60000/RR) over beats
/// ending in consecutive non-overlapping `w`-second windows from `t0` (the recording's start).
fn window_spread(beats: &[(f64, f64)], t0: f64, w: f64) -> f64 {
    let mut sums: Vec<(f64, usize)> = Vec::new();
    for &(t, rr) in beats {
        let k = ((t - t0) / w) as usize;
        if sums.len() <= k {
            sums.resize(k + 1, (0.0, 0));
        }
        sums[k].0 += 60_000.0 / rr;
        sums[k].1 += 1;
    }
    let means: Vec<f64> = sums
        .iter()
        .filter(|s| s.1 > 0)
        .map(|s| s.0 / s.1 as f64)
        .collect();
    sd1(&means)
}

fn hr_mean(b: &[(f64, f64)]) -> f64 {
    mean(&b.iter().map(|x| 60_000.0 / x.1).collect::<Vec<_>>())
}

fn rmssd(b: &[(f64, f64)]) -> f64 {
    time_domain(&rr_of(b)).map(|t| t.rmssd).unwrap_or(f64::NAN)
}

const WINDOWS: [f64; 3] = [10.0, 60.0, 120.0];

#[test]
fn within_person_spread_at_rest_matches_the_real_recordings() {
    let short = timed(&fixture_rr("pyhrv_nn_short.csv"));
    let long = timed(&fixture_rr("pyhrv_nn_long.csv"));
    assert!(short.len() > 300 && long.len() > 4000);
    let n = 24;
    let dur = 3600.0;
    let mut sims: Vec<[f64; 3]> = Vec::new();
    let mut sims_5min: Vec<[f64; 3]> = Vec::new();
    let mut rmssd_ranges = Vec::new();
    for i in 0..n {
        let (_, _, out) = run(person_seed(9000, i), CohortScenario::Rest, dur);
        let b = nn(&out, 0.0, dur);
        sims.push(WINDOWS.map(|w| window_spread(&b, 0.0, w)));
        sims_5min.push(WINDOWS.map(|w| window_spread(&nn(&out, 0.0, 300.0), 0.0, w)));
        let seg: Vec<f64> = (0..12)
            .map(|k| rmssd(&nn(&out, k as f64 * 300.0, (k + 1) as f64 * 300.0)))
            .collect();
        let (lo, hi) = (quantile(&seg, 0.0), quantile(&seg, 100.0));
        rmssd_ranges.push(hi / lo);
    }
    let real_long_seg: Vec<f64> = (0..11)
        .map(|k| {
            let (a, b) = (k as f64 * 300.0, (k + 1) as f64 * 300.0);
            let s: Vec<(f64, f64)> = long
                .iter()
                .copied()
                .filter(|x| (a..b).contains(&x.0))
                .collect();
            rmssd(&s)
        })
        .collect();
    let real_ratio = quantile(&real_long_seg, 100.0) / quantile(&real_long_seg, 0.0);
    eprintln!(
        "within-person SD of window-mean HR at rest, bpm (sim: median [IQR] of {n} people, 60 min NN):"
    );
    for (k, w) in WINDOWS.iter().enumerate() {
        let s: Vec<f64> = sims.iter().map(|x| x[k]).collect();
        let s5: Vec<f64> = sims_5min.iter().map(|x| x[k]).collect();
        let (rs, rl) = (
            window_spread(&short, 0.0, *w),
            window_spread(&long, 0.0, *w),
        );
        let m = median(&s);
        eprintln!(
            "  {w:>4} s: sim {m:.2} [{:.2}-{:.2}] (first 5 min: {:.2}); real short {rs:.2}, long {rl:.2}; ratio sim/short {:.2}, sim/long {:.2}",
            quantile(&s, 25.0),
            quantile(&s, 75.0),
            median(&s5),
            m / rs,
            m / rl
        );
        let (lo, hi) = (rs.min(rl), rs.max(rl));
        assert!(
            (0.7 * lo..=1.3 * hi).contains(&m),
            "{w} s: median {m:.2} outside ±30 % of the real band {lo:.2}-{hi:.2}"
        );
    }
    let r = median(&rmssd_ranges);
    eprintln!(
        "  max/min of 5-min RMSSD over an hour: sim median {r:.2} [{:.2}-{:.2}]; real long {real_ratio:.2}",
        quantile(&rmssd_ranges, 25.0),
        quantile(&rmssd_ranges, 75.0)
    );
    assert!(r > 1.2 && r < 2.5, "{r}");
}

#[test]
fn resting_five_minute_hrv_sits_in_the_published_norms() {
    let n = 48;
    let (mut rm, mut sd, mut lfhf, mut hr) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let (_, _, out) = run(person_seed(9100, i), CohortScenario::Rest, 300.0);
        let b = rr_of(&nn(&out, 0.0, 300.0));
        let td = time_domain(&b).unwrap_or_else(|| panic!("person {i}"));
        rm.push(td.rmssd);
        sd.push(td.sdnn);
        hr.push(td.hr_mean_bpm);
        lfhf.push(
            frequency_taskforce(&b)
                .and_then(|f| f.lf_hf)
                .unwrap_or(f64::NAN),
        );
    }
    let show = |name: &str, x: &[f64], lo: f64, hi: f64| {
        let (p5, p50, p95) = (quantile(x, 5.0), quantile(x, 50.0), quantile(x, 95.0));
        eprintln!("  {name}: 5th {p5:.2}, median {p50:.2}, 95th {p95:.2} (Nunan 2010: {lo}-{hi})");
        (p5, p50, p95)
    };
    eprintln!(
        "resting 5-min HRV, {n} people (LF/HF: Task Force method, dsp::hrv::frequency_taskforce):"
    );
    let (p5, p50, p95) = show("RMSSD ms", &rm, 19.0, 75.0);
    assert!(p5 > 12.0 && p5 < 28.0 && p50 > 25.0 && p50 < 55.0 && p95 > 55.0 && p95 < 110.0);
    let (p5, p50, p95) = show("SDNN ms", &sd, 32.0, 93.0);
    assert!(p5 > 20.0 && p5 < 45.0 && p50 > 35.0 && p50 < 75.0 && p95 > 65.0 && p95 < 130.0);
    let (p5, p50, p95) = show("LF/HF", &lfhf, 1.1, 11.6);
    assert!(p5 > 0.4 && p5 < 2.0 && p50 > 1.1 && p50 < 4.5 && p95 > 3.0 && p95 < 17.0);
    let (p5, _, p95) = show("HR bpm", &hr, 52.0, 76.0);
    assert!(p5 > 48.0 && p95 < 100.0);
}

#[test]
fn stress_raises_hr_with_null_responders_and_baseline_dependent_hrv_withdrawal() {
    let n = 40;
    let (mut rises, mut gains, mut base_rm, mut d_ln_rm) = (vec![], vec![], vec![], vec![]);
    for i in 0..n {
        let (person, _, out) = run(person_seed(9200, i), CohortScenario::Tsst, 2400.0);
        let base = nn(&out, 300.0, 600.0);
        let speech = nn(&out, 1260.0, 1500.0);
        rises.push(hr_mean(&speech) - hr_mean(&base));
        gains.push(person.heart.hr_rise_bpm);
        base_rm.push(rmssd(&base));
        d_ln_rm.push((rmssd(&speech) / rmssd(&base)).ln());
    }
    let small = gains.iter().filter(|g| **g < 3.0).count();
    eprintln!(
        "TSST speech vs baseline, {n} people: HR rise median {:.1} bpm [5th {:.1}, 95th {:.1}]; {small} with a gain < 3 bpm",
        median(&rises),
        quantile(&rises, 5.0),
        quantile(&rises, 95.0)
    );
    assert!(median(&rises) > 6.0 && median(&rises) < 16.0);
    assert!(small >= 1, "no small or null responders");
    assert!(quantile(&rises, 5.0) < 3.0);
    // High-RMSSD people lose more (ln RMSSD change), low-RMSSD people little or none.
    let mut idx: Vec<usize> = (0..n as usize).collect();
    idx.sort_by(|a, b| base_rm[*a].total_cmp(&base_rm[*b]));
    let third = idx.len() / 3;
    let low: Vec<f64> = idx[..third].iter().map(|i| d_ln_rm[*i]).collect();
    let high: Vec<f64> = idx[idx.len() - third..]
        .iter()
        .map(|i| d_ln_rm[*i])
        .collect();
    eprintln!(
        "  ln RMSSD change: low-baseline third {:.2}, high-baseline third {:.2}",
        median(&low),
        median(&high)
    );
    assert!(median(&high) < median(&low) - 0.15);
    assert!(median(&high) < -0.2);
}

/// The frequency (Hz) of the largest peak in 0.04–0.4 Hz of RR resampled at 4 Hz.
fn peak_hz(b: &[(f64, f64)]) -> f64 {
    let (t0, t1) = (b[0].0, b[b.len() - 1].0);
    let mut y = Vec::new();
    let mut j = 0;
    let mut t = t0;
    while t < t1 {
        while j + 1 < b.len() && b[j + 1].0 <= t {
            j += 1;
        }
        let (a, c) = (b[j], b[(j + 1).min(b.len() - 1)]);
        let f = if c.0 > a.0 {
            (t - a.0) / (c.0 - a.0)
        } else {
            0.0
        };
        y.push(a.1 + (c.1 - a.1) * f);
        t += 0.25;
    }
    let m = mean(&y);
    y.iter_mut().for_each(|v| *v -= m);
    let psd =
        crate::dsp::spectrum::welch(&y, 4.0, 256, 128, 1024).unwrap_or_else(|| panic!("too short"));
    psd.freq
        .iter()
        .zip(&psd.power)
        .filter(|(f, _)| (0.04..=0.4).contains(*f))
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(f, _)| *f)
        .unwrap_or(f64::NAN)
}

#[test]
fn paced_breathing_raises_rmssd_and_lf_hf_and_moves_the_peak_to_a_tenth_of_a_hertz() {
    let n = 30;
    let (mut ratio, mut lfhf_ratio, mut dhr, mut at_01) = (vec![], vec![], vec![], 0);
    for i in 0..n {
        // 1200 s: rest 0–480, paced 480–840, rest 840–1200.
        let (_, _, out) = run(person_seed(9300, i), CohortScenario::PacedBreathing, 1200.0);
        let rest = nn(&out, 180.0, 480.0);
        let paced = nn(&out, 540.0, 840.0);
        ratio.push(rmssd(&paced) / rmssd(&rest));
        let lfhf = |b: &[(f64, f64)]| {
            frequency_taskforce(&rr_of(b))
                .and_then(|f| f.lf_hf)
                .unwrap_or(f64::NAN)
        };
        lfhf_ratio.push(lfhf(&paced) / lfhf(&rest));
        dhr.push(hr_mean(&paced) - hr_mean(&rest));
        let f = peak_hz(&paced);
        if (0.085..=0.115).contains(&f) {
            at_01 += 1;
        }
    }
    eprintln!(
        "paced 0.1 Hz vs rest, {n} people: RMSSD ratio median {:.2} [5th {:.2}, 95th {:.2}]; LF/HF ratio median {:.1}; HR change median {:.1} bpm; peak at 0.1 Hz in {at_01}",
        median(&ratio),
        quantile(&ratio, 5.0),
        quantile(&ratio, 95.0),
        median(&lfhf_ratio),
        median(&dhr)
    );
    assert!(median(&ratio) > 1.1, "{}", median(&ratio));
    assert!(median(&lfhf_ratio) > 2.0);
    assert!(median(&dhr).abs() < 3.0);
    assert!(at_01 >= n * 8 / 10, "{at_01}");
}

#[test]
fn walking_raises_hr_and_suppresses_rmssd_and_a_startle_is_a_brief_acceleration() {
    let n = 30;
    let (mut dhr, mut ratio) = (vec![], vec![]);
    for i in 0..n {
        // 1200 s: rest 0–480, walking 480–780, cool-down.
        let (_, _, out) = run(person_seed(9400, i), CohortScenario::Movement, 1200.0);
        let rest = nn(&out, 180.0, 480.0);
        let walk = nn(&out, 630.0, 780.0);
        dhr.push(hr_mean(&walk) - hr_mean(&rest));
        ratio.push(rmssd(&walk) / rmssd(&rest));
    }
    eprintln!(
        "walking vs rest, {n} people: HR rise median {:.1} bpm [5th {:.1}, 95th {:.1}]; RMSSD ratio median {:.2} [95th {:.2}]",
        median(&dhr),
        quantile(&dhr, 5.0),
        quantile(&dhr, 95.0),
        median(&ratio),
        quantile(&ratio, 95.0)
    );
    assert!(quantile(&dhr, 5.0) > 5.0 && median(&dhr) > 10.0 && median(&dhr) < 25.0);
    assert!(median(&ratio) < 0.6 && quantile(&ratio, 95.0) < 1.0);

    let (mut early, mut late) = (vec![], vec![]);
    for i in 0..n {
        let (_, d, out) = run(person_seed(9500, i), CohortScenario::Startle, 900.0);
        for s in &d.startles {
            let before = hr_mean(&nn(&out, s - 10.0, *s));
            early.push(hr_mean(&nn(&out, s + 1.0, s + 6.0)) - before);
            late.push(hr_mean(&nn(&out, s + 15.0, s + 25.0)) - before);
        }
    }
    eprintln!(
        "startle, {} probes: HR 1–6 s after minus 10 s before {:.2} bpm; 15–25 s after {:.2} bpm",
        early.len(),
        mean(&early),
        mean(&late)
    );
    assert!(mean(&early) > 1.0 && mean(&early) > mean(&late) + 1.0);
}

#[test]
fn artefact_rates_match_the_intended_ones() {
    let n = 50;
    let (mut beats_rest, mut wrong_rest, mut beats_move, mut wrong_move) = (0, 0, 0, 0);
    let (mut ectopic, mut ectopic_expected, mut dropouts, mut dropouts_expected) = (0, 0.0, 0, 0.0);
    for i in 0..n {
        let (person, d, out) = run(person_seed(9600, i), CohortScenario::Movement, 1200.0);
        let h = &person.heart;
        for (k, b) in out.beats.iter().enumerate() {
            let wrong = matches!(
                b.artefact,
                Some(BeatArtefact::Missed) | Some(BeatArtefact::Extra)
            );
            let e = d.exercise_at(b.t);
            if e < 0.01 {
                beats_rest += 1;
                wrong_rest += wrong as usize;
            } else if e > 0.9 {
                beats_move += 1;
                wrong_move += wrong as usize;
            }
            if b.artefact == Some(BeatArtefact::Ectopic) {
                ectopic += 1;
                let next = out.beats.get(k + 1).map(|x| x.artefact);
                assert_eq!(next, Some(Some(BeatArtefact::Compensatory)));
            }
        }
        ectopic_expected += h.ectopic_per_h * 1200.0 / 3600.0;
        dropouts += out.dropouts.len();
        let walking_h = 300.0 / 3600.0;
        dropouts_expected += h.strap_factor
            * (artefacts::DROPOUTS_PER_H_REST * (1200.0 / 3600.0 - walking_h)
                + artefacts::DROPOUTS_PER_H_MOVE * walking_h);
        for w in out.beats.windows(2) {
            assert!(w[1].t > w[0].t);
        }
    }
    let (sr, sm) = (
        wrong_rest as f64 / beats_rest as f64,
        wrong_move as f64 / beats_move as f64,
    );
    eprintln!(
        "artefacts, {n} people × 20 min: wrong intervals {:.3} % at rest ({wrong_rest}/{beats_rest}), {:.3} % walking ({wrong_move}/{beats_move}); ectopic {ectopic} (expected {ectopic_expected:.1}); dropouts {dropouts} (expected {dropouts_expected:.1})",
        100.0 * sr,
        100.0 * sm
    );
    assert!((0.0025..0.0055).contains(&sr), "{sr}");
    assert!((0.0035..0.0090).contains(&sm), "{sm}");
    let tol = |x: f64| 4.0 * x.sqrt() + 3.0;
    assert!((ectopic as f64 - ectopic_expected).abs() < tol(ectopic_expected));
    assert!((dropouts as f64 - dropouts_expected).abs() < tol(dropouts_expected));

    // The population's ectopy: 31 % none in 24 h, median ≈ 2/24 h, 95th percentile ≈ 200/24 h.
    let per_day: Vec<f64> = (0..4000)
        .map(|i| {
            let mut rng = rng_for(person_seed(9700, i), streams::HEART_PERSON);
            HeartPerson::draw(&mut rng, 0.0).ectopic_per_h * 24.0
        })
        .collect();
    let none = per_day.iter().filter(|x| **x == 0.0).count() as f64 / 4000.0;
    let (p50, p95) = (quantile(&per_day, 50.0), quantile(&per_day, 95.0));
    eprintln!(
        "  ectopic per 24 h across 4000 drawn people: none {none:.2}, median {p50:.1}, 95th {p95:.0}"
    );
    assert!(
        (0.27..0.35).contains(&none) && (1.0..4.0).contains(&p50) && (120.0..320.0).contains(&p95)
    );
}

#[test]
fn the_same_rng_gives_the_same_heart_and_another_a_different_one() {
    let a = run(person_seed(1, 3), CohortScenario::Tsst, 900.0);
    let b = run(person_seed(1, 3), CohortScenario::Tsst, 900.0);
    let c = run(person_seed(1, 4), CohortScenario::Tsst, 900.0);
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    assert_eq!(a.0.heart, b.0.heart);
    assert_ne!(a.2, c.2);
    assert_ne!(a.0.heart, c.0.heart);
    assert_eq!(a.0.heart.summary(), b.0.heart.summary());
}

/// 50 people × 7 scenarios at their default lengths (run with `--release --ignored`).
#[test]
#[ignore]
fn a_cohort_simulates_in_a_few_seconds() {
    let start = std::time::Instant::now();
    let mut beats = 0;
    for i in 0..50 {
        for s in super::super::ALL_SCENARIOS {
            beats += run(person_seed(42, i), s, s.default_duration_s())
                .2
                .beats
                .len();
        }
    }
    let el = start.elapsed().as_secs_f64();
    eprintln!("50 people × 7 scenarios: {beats} beats in {el:.2} s");
    assert!(el < 10.0);
}

#[test]
fn added_ectopics_reach_their_share_in_the_drawn_shape_and_touch_nothing_else() {
    let (_, _, clean) = run(person_seed(4242, 3), CohortScenario::Rest, 600.0);
    let mut ect = clean.clone();
    artefacts::add_ectopics(&mut rng_for(9, streams::ECTOPIC_EXTRA), &mut ect, 0.10);
    assert_eq!(ect.beats.len(), clean.beats.len());
    assert_eq!(ect.dropouts, clean.dropouts);
    let n = ect.beats.len() as f64;
    let share = ect
        .beats
        .iter()
        .filter(|b| b.artefact == Some(BeatArtefact::Ectopic))
        .count() as f64
        / n;
    assert!((share - 0.10).abs() < 0.02, "ectopic share {share}");
    let mut changed = 0;
    for (i, (c, e)) in clean.beats.iter().zip(&ect.beats).enumerate() {
        if c == e {
            continue;
        }
        changed += 1;
        match e.artefact {
            Some(BeatArtefact::Ectopic) => {
                // 20–40 % early, and the pause after it fully compensatory.
                assert_eq!(c.artefact, None);
                let early = 1.0 - e.rr_ms / c.rr_ms;
                assert!((0.19..=0.41).contains(&early), "{early}");
                let (cn, en) = (clean.beats[i + 1], ect.beats[i + 1]);
                assert_eq!(en.artefact, Some(BeatArtefact::Compensatory));
                assert_eq!(en.t, cn.t);
                assert!((e.rr_ms + en.rr_ms - c.rr_ms - cn.rr_ms).abs() < 1e-6);
            }
            Some(BeatArtefact::Compensatory) => {}
            other => panic!("beat {i} changed into {other:?}"),
        }
    }
    assert!(changed > 0);
    let mut none = clean.clone();
    artefacts::add_ectopics(&mut rng_for(9, streams::ECTOPIC_EXTRA), &mut none, 0.0);
    assert_eq!(none, clean);
}
