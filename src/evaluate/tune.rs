//! Tuning harness for the policy (ignored tests, not part of the product): the real engine and
//! metrics with the policy's knobs set from environment variables, so that a knob can be tried
//! without a rebuild. Use a cohort seed no test uses, and judge the result on another one.
//!
//! `SEED=11 N=20 F_SCL=0.1 cargo test --release --lib evaluate::tune::tune -- --ignored --nocapture`
//! prints the rest / onset figures per scenario; `tune_z` prints per-feature z quantiles at rest.
#![allow(missing_docs)]
use super::*;
use crate::evaluate::metrics::{score_run, summarize};

fn env(k: &str, d: f64) -> f64 {
    std::env::var(k)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(d)
}

fn cfg() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    let pc = &mut cfg.pipeline;
    pc.policy.bands.engaged.1 = env("ENTER", 2.3);
    pc.policy.hysteresis_z = env("HYST", 0.5);
    pc.policy.high_sustain_s = env("SUSTAIN", 2.0);
    pc.policy.smooth_z_tau_s = env("ZTAU", 0.0);
    pc.policy.population_high_z = env("POP", 3.0);
    pc.baseline.adapt_tau_s = env("TAU", 150.0);
    pc.baseline.adapt_calm_z = env("CALMZ", 1.5);
    pc.baseline.adapt_kernel = env("KERNEL", 1.0) > 0.0;
    pc.baseline.calibration.recent_windows[2] = match env("RECENT_SCL", 6.0) as usize {
        0 => None,
        k => Some(k),
    };
    pc.policy.fast_hr_z = env("FAST", 3.0);
    pc.policy.fast_composite_z = env("FASTC", 1.5);
    pc.baseline.settle_z = env("SETTLEZ", -1.5);
    pc.baseline.calibration.floors[0] = env("F_HR", 3.0);
    pc.baseline.calibration.floors[1] = env("F_RMSSD", 0.2);
    pc.baseline.calibration.floors[2] = env("F_SCL", 0.08);
    pc.baseline.calibration.duration_s = env("CALIB", 180.0);
    pc.score.weights = [
        env("W0", 1.0),
        env("W1", 0.5),
        env("W2", 1.0),
        env("W3", 0.5),
    ];
    cfg
}

#[test]
#[ignore]
fn tune_z() {
    let cfg = cfg();
    let scenario =
        CohortScenario::from_name(&std::env::var("SCEN").unwrap_or("rest".into())).unwrap();
    let n: u64 = env("N", 12.0) as u64;
    let mut zs: Vec<Vec<f64>> = vec![Vec::new(); 6];
    for i in 0..n {
        let (_seed, sim) = simulate_member(scenario, env("SEED", 11.0) as u64, i, None);
        let p = sim.header.participant.clone();
        let consent = ConsentSnapshot::from_manifest(&p, &sim.header.consent);
        let mut engine = Engine::new(cfg.clone(), consent);
        let (mut eo, mut tot, mut pop_eo) = (0usize, 0usize, 0usize);
        let mut firsts: Vec<String> = Vec::new();
        let mut prev = Action::Hold;
        replay_max_speed(&mut engine, &sim.header, &p, sim.records, |ev| {
            if let EventBody::Adaptation(a) = &ev.body {
                let d = &a.decision;
                let Some(z) = d.composite_z else { return };
                let pop = d
                    .baseline
                    .as_ref()
                    .is_some_and(|b| b.kind == crate::baseline::score::BaselineKind::Population);
                tot += 1;
                if d.action == Action::EaseOff
                    && prev != Action::EaseOff
                    && firsts.len() < 3
                    && d.t < env("UNTIL", 1e9)
                {
                    firsts.push(format!("{:.0}s {}", d.t, d.summary()));
                }
                prev = d.action;
                if d.action == Action::EaseOff {
                    eo += 1;
                    if pop {
                        pop_eo += 1;
                    }
                }
                if pop {
                    zs[5].push(z);
                    return;
                }
                for t in &d.terms {
                    if let Some(z) = t.z {
                        zs[t.index].push(z);
                    }
                }
                zs[4].push(z);
            }
        });
        println!(
            "{i}: ease_off {:.3} (population {:.3})",
            eo as f64 / tot.max(1) as f64,
            pop_eo as f64 / tot.max(1) as f64
        );
        for f in &firsts {
            println!("    {f}");
        }
    }
    for (k, v) in zs.iter_mut().enumerate() {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            if v.is_empty() {
                f64::NAN
            } else {
                v[((v.len() - 1) as f64 * p) as usize]
            }
        };
        println!(
            "z {k}: n {} p2 {:.2} p50 {:.2} p95 {:.2} p98 {:.2} p99 {:.2}",
            v.len(),
            q(0.02),
            q(0.5),
            q(0.95),
            q(0.98),
            q(0.99)
        );
    }
}

#[test]
#[ignore]
fn tune() {
    let cfg = cfg();
    let n: u64 = env("N", 20.0) as u64;
    let seed: u64 = env("SEED", 11.0) as u64;
    let scen = std::env::var("SCEN").unwrap_or("rest,rest-then-stress,tsst,stressed-start".into());
    let people: Vec<u64> = (0..n).collect();
    for name in scen.split(',') {
        let scenario = CohortScenario::from_name(name).unwrap();
        let runs = par_map(&people, 2, |&i| {
            run_simulated(scenario, seed, i, None, &cfg)
        });
        let m: Vec<_> = runs.iter().map(score_run).collect();
        let s = summarize(m.iter());
        println!(
            "{name:18} eo_rest {:.3} esc_rest {:.3} onsets {} missed {} pre {} med {:?} p90 {:?} esc_stress {} init_eo {}/{}",
            s.false_ease_off_rest_frac.unwrap_or(f64::NAN),
            s.escalate_rest_frac.unwrap_or(f64::NAN),
            s.onsets,
            s.missed_onsets,
            s.preempted_onsets,
            s.onset_delay_median_s.map(|x| x.round()),
            s.onset_delay_p90_s.map(|x| x.round()),
            s.escalations_during_stress,
            s.initial_stress_eased_off,
            s.initial_stress_blocks,
        );
    }
}

#[test]
#[ignore]
fn tune_ectopic() {
    use crate::evaluate::metrics::{compare_ectopic, summarize_ectopic};
    let cfg = cfg();
    let n: u64 = env("N", 20.0) as u64;
    let seed: u64 = env("SEED", 11.0) as u64;
    let frac = env("ECT", 0.10);
    let scen = std::env::var("SCEN").unwrap_or("rest,rest-then-stress".into());
    let people: Vec<u64> = (0..n).collect();
    for name in scen.split(',') {
        let scenario = CohortScenario::from_name(name).unwrap();
        let cmp = par_map(&people, 2, |&i| {
            let clean = run_simulated(scenario, seed, i, None, &cfg);
            let (_, sim) = simulate_member_with(scenario, seed, i, None, Some(frac));
            let ect = run_recording(&sim.header, sim.records, &cfg, scenario.name());
            compare_ectopic(&clean.decisions, &ect.decisions)
        });
        let s = summarize_ectopic(frac * 100.0, cmp.iter());
        println!(
            "{name:18} diff {:.4} flips clean {} ectopic {} extra {}",
            s.action_diff_frac.unwrap_or(f64::NAN),
            s.flips_clean,
            s.flips_ectopic,
            s.ectopic_extra_flips
        );
    }
}
