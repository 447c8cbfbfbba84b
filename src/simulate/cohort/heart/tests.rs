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
        .filter(|b| b.artefact.is_none() && b.t >= from && b.t < to)
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
                .filter(|x| x.0 >= a && x.0 < b)
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
            m >= 0.7 * lo && m <= 1.3 * hi,
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
