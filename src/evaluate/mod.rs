//! `attune evaluate`: the policy judged on a simulated cohort or on labelled recordings.
//!
//! Every person goes through the real engine exactly as `attune replay --speed max` would take
//! their recording ([`crate::sources::replay_feed::replay_max_speed`]: the same inputs, the same
//! engine, the same policy), and the decisions are scored against the recording's labelled
//! segments ([`metrics`]). A crude reference rule is scored on the same people, so that anyone
//! can see whether the cohort is hard enough ([`metrics::reference_rule`]). `--plots` draws one
//! picture per person ([`plot`]).
//!
//! Pure apart from [`plot`] writing files: no clock, no tokio.

pub mod metrics;
#[cfg(feature = "plots")]
pub mod plot;
#[cfg(not(feature = "plots"))]
#[path = "plot_off.rs"]
pub mod plot;

use crate::consent::ConsentSnapshot;
use crate::engine::event::EventBody;
use crate::engine::{Engine, EngineConfig};
use crate::features::FeatureFrame;
use crate::model::ParticipantId;
use crate::policy::{Action, Rule};
use crate::recording::{Header, Record, Segment};
use crate::simulate::Simulation;
use crate::simulate::cohort::{CohortConfig, CohortScenario, person_seed, simulate_person};
use crate::sources::replay_feed::replay_max_speed;

/// The participant id of cohort member `i` (`sim-001` for the first).
pub fn member_id(i: u64) -> String {
    format!("sim-{:03}", i + 1)
}

/// One decision, as an evaluation sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecisionPoint {
    /// Tick time, s.
    pub t: f64,
    /// The action.
    pub action: Action,
    /// Arousal 0..1, if known.
    pub arousal: Option<f64>,
    /// The rule that fired.
    pub rule: Rule,
}

/// One person's session through the engine.
#[derive(Debug, Clone)]
pub struct PersonRun {
    /// Who (the recording's participant).
    pub participant: ParticipantId,
    /// The scenario's name (a simulated cohort) or the recording's file name.
    pub scenario: String,
    /// The person's seed, for a simulated person.
    pub seed: Option<u64>,
    /// Labelled segments (from the recording header).
    pub segments: Vec<Segment>,
    /// Session length: the last record's arrival time, s.
    pub duration_s: f64,
    /// Feature frames, in time order.
    pub features: Vec<FeatureFrame>,
    /// Decisions, in time order.
    pub decisions: Vec<DecisionPoint>,
    /// What the recording header says about the simulated person (`provenance.generator`).
    pub generator: Option<serde_json::Value>,
}

impl PersonRun {
    /// The decisions as (time, action) pairs.
    pub fn actions(&self) -> Vec<(f64, Action)> {
        self.decisions.iter().map(|d| (d.t, d.action)).collect()
    }
}

/// Runs one recording through a fresh engine (consent from its header, as `replay` does).
pub fn run_recording(
    header: &Header,
    records: Vec<Record>,
    cfg: &EngineConfig,
    scenario: &str,
) -> PersonRun {
    let p = header.participant.clone();
    let consent = ConsentSnapshot::from_manifest(&p, &header.consent);
    let mut engine = Engine::new(cfg.clone(), consent);
    let mut features = Vec::new();
    let mut decisions = Vec::new();
    let duration_s = replay_max_speed(&mut engine, header, &p, records, |ev| match &ev.body {
        EventBody::Features(_, f) => features.push(*f),
        EventBody::Adaptation(a) => decisions.push(DecisionPoint {
            t: a.decision.t,
            action: a.decision.action,
            arousal: a.decision.arousal,
            rule: a.decision.rule,
        }),
        _ => {}
    });
    PersonRun {
        participant: p,
        scenario: scenario.to_string(),
        seed: None,
        segments: header.segments.clone(),
        duration_s,
        features,
        decisions,
        generator: header.provenance.generator.clone(),
    }
}

/// Simulates cohort member `i` of cohort `cohort_seed` through `scenario` and runs them through
/// the engine.
pub fn run_simulated(
    scenario: CohortScenario,
    cohort_seed: u64,
    i: u64,
    duration_s: Option<f64>,
    cfg: &EngineConfig,
) -> PersonRun {
    let (seed, sim) = simulate_member(scenario, cohort_seed, i, duration_s);
    let mut run = run_recording(&sim.header, sim.records, cfg, scenario.name());
    run.seed = Some(seed);
    run
}

/// The recording of cohort member `i` (participant `sim-NNN`, seed `person_seed(cohort_seed,
/// i)`) in `scenario`: the first half of [`run_simulated`], with the person's seed.
pub fn simulate_member(
    scenario: CohortScenario,
    cohort_seed: u64,
    i: u64,
    duration_s: Option<f64>,
) -> (u64, Simulation) {
    simulate_member_with(scenario, cohort_seed, i, duration_s, None)
}

/// [`simulate_member`] with `ectopic_frac` ([`CohortConfig::ectopic_frac`]): the same person,
/// the same session, with about that share of the beats ectopic.
pub fn simulate_member_with(
    scenario: CohortScenario,
    cohort_seed: u64,
    i: u64,
    duration_s: Option<f64>,
    ectopic_frac: Option<f64>,
) -> (u64, Simulation) {
    let seed = person_seed(cohort_seed, i);
    let participant =
        ParticipantId::new(&member_id(i)).unwrap_or_else(|_| unreachable!("a valid id"));
    let sim = simulate_person(&CohortConfig {
        scenario,
        duration_s,
        seed,
        participant,
        eda_rate_hz: 32.0,
        ectopic_frac,
    });
    (seed, sim)
}

/// `f` over `items` on `threads` worker threads (at least one), results in `items` order:
/// the output does not depend on the thread count or on which thread ran what.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let threads = threads.clamp(1, items.len().max(1));
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        for w in workers {
            match w.join() {
                Ok(done) => {
                    for (i, r) in done {
                        slots[i] = Some(r);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_person_goes_through_the_engine_to_decisions() {
        let run = run_simulated(
            CohortScenario::RestThenStress,
            1,
            0,
            Some(600.0),
            &EngineConfig::default(),
        );
        assert_eq!(run.scenario, "rest-then-stress");
        assert!(run.duration_s > 590.0);
        // 4 decisions a second once the engine runs.
        assert!(run.decisions.len() > 2000, "{}", run.decisions.len());
        assert!(run.features.iter().any(|f| f.values[0].is_some()));
        assert_eq!(run.segments.len(), 2);
    }

    #[test]
    fn par_map_keeps_input_order_for_any_thread_count() {
        let items: Vec<u64> = (0..37).collect();
        let want: Vec<u64> = items.iter().map(|x| x * x).collect();
        for threads in [0, 1, 2, 5, 64] {
            assert_eq!(par_map(&items, threads, |x| x * x), want);
        }
        assert!(par_map(&[] as &[u64], 4, |x| *x).is_empty());
    }
}
#[cfg(test)]
mod tune;
