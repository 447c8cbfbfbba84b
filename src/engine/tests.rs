//! Engine unit tests: ticks on session time, clamped arrival times, consent on events.

use super::*;
use crate::consent::ConsentSnapshot;
use crate::model::{Chunk, Timing};
use crate::policy::{Action, Rule};

fn p() -> ParticipantId {
    ParticipantId::new("p01").unwrap()
}

fn all(purposes: &[Purpose]) -> ConsentSnapshot {
    let mut t = Vec::new();
    for k in crate::model::ALL_KINDS {
        for pu in purposes {
            t.push((p(), k, *pu));
        }
    }
    ConsentSnapshot::from_triples(1, t)
}

fn eda(seq: u64, host_t: f64, t0: f64) -> Chunk {
    Chunk {
        raw: None,
        meta: None,
        participant: p(),
        kind: StreamKind::Eda,
        seq,
        host_t,
        timing: Timing::Uniform { t0, rate_hz: 4.0 },
        samples: vec![5.0; 4],
    }
}

fn adaptations(out: &[Arc<Event>]) -> Vec<f64> {
    out.iter()
        .filter_map(|e| match &e.body {
            EventBody::Adaptation(a) => Some(a.decision.t),
            _ => None,
        })
        .collect()
}

#[test]
fn a_joined_participant_gets_ticks_without_data() {
    let mut e = Engine::new(
        EngineConfig::default(),
        all(&[Purpose::Process, Purpose::Adapt]),
    );
    let mut out = Vec::new();
    e.step(Input::Join(p()), &mut out);
    e.step(Input::Advance(0.0), &mut out);
    e.step(Input::Advance(2.0), &mut out);
    assert_eq!(
        adaptations(&out),
        vec![0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    );
}

#[test]
fn no_adaptation_leaves_without_adapt_consent() {
    let mut e = Engine::new(EngineConfig::default(), all(&[Purpose::Process]));
    let mut out = Vec::new();
    e.step(Input::Join(p()), &mut out);
    e.step(Input::Advance(5.0), &mut out);
    assert!(adaptations(&out).is_empty());
}

#[test]
fn an_input_stamped_before_the_last_tick_arrives_at_that_tick() {
    let mut e = Engine::new(
        EngineConfig::default(),
        all(&[Purpose::Process, Purpose::Record]),
    );
    let mut out = Vec::new();
    e.step(Input::Join(p()), &mut out);
    e.step(Input::Advance(10.0), &mut out);
    out.clear();
    e.step(Input::Chunk(eda(0, 9.5, 100.0)), &mut out);
    let recorded: Vec<f64> = out
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Samples(c) => Some(c.host_t),
            _ => None,
        })
        .collect();
    assert_eq!(recorded, vec![10.0], "the recorded arrival is the engine's");
    assert_eq!(e.now(), Some(10.0));
}

#[test]
fn a_restarted_source_continues_the_streams_chunk_numbers() {
    let mut e = Engine::new(
        EngineConfig::default(),
        all(&[Purpose::Process, Purpose::Record]),
    );
    let mut out = Vec::new();
    // Chunks 0..3, then the source restarts (a reloaded configuration) and counts from 0,
    // then skips one (a lost chunk stays a jump).
    for (seq, t) in [(0, 1.0), (1, 2.0), (2, 3.0), (0, 4.0), (1, 5.0), (3, 7.0)] {
        e.step(Input::Chunk(eda(seq, t, t)), &mut out);
    }
    let seqs: Vec<u64> = out
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Samples(c) => Some(c.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4, 6]);
}

#[test]
fn samples_are_emitted_only_under_record_or_share_raw_consent() {
    for (purposes, want) in [
        (vec![Purpose::Process], 0),
        (vec![Purpose::Process, Purpose::Record], 1),
        (vec![Purpose::Record], 0),
        // For a transport (LSL, OSC beats), which checks share_raw itself.
        (vec![Purpose::Process, Purpose::ShareRaw], 1),
        (vec![Purpose::ShareRaw], 0),
    ] {
        let mut e = Engine::new(EngineConfig::default(), all(&purposes));
        let mut out = Vec::new();
        e.step(Input::Chunk(eda(0, 1.0, 1.0)), &mut out);
        let n = out
            .iter()
            .filter(|e| matches!(e.body, EventBody::Samples(_)))
            .count();
        assert_eq!(n, want, "{purposes:?}");
    }
}

#[test]
fn a_chunk_without_process_consent_is_counted_and_nothing_of_it_leaves() {
    let mut e = Engine::new(EngineConfig::default(), ConsentSnapshot::deny_all());
    let mut out = Vec::new();
    e.step(Input::Chunk(eda(0, 1.0, 1.0)), &mut out);
    e.step(Input::Chunk(eda(1, 2.0, 2.0)), &mut out);
    assert!(out.iter().all(|e| !matches!(e.body, EventBody::Samples(_))));
    let drops: Vec<_> = e.drops().collect();
    assert_eq!(
        drops,
        vec![(&p(), StreamKind::Eda, DropReason::NoConsent, 2)]
    );
}

#[test]
fn chunks_going_back_in_device_time_are_dropped_as_late() {
    let mut e = Engine::new(EngineConfig::default(), all(&[Purpose::Process]));
    let mut out = Vec::new();
    e.step(Input::Chunk(eda(0, 1.0, 10.0)), &mut out);
    e.step(Input::Chunk(eda(1, 2.0, 9.0)), &mut out);
    let late = e
        .drops()
        .find(|(_, _, r, _)| *r == DropReason::Late)
        .map(|d| d.3);
    assert_eq!(late, Some(1));
}

#[test]
fn a_skip_jumps_the_ticks_past_a_long_silence() {
    let mut e = Engine::new(
        EngineConfig::default(),
        all(&[Purpose::Process, Purpose::Adapt]),
    );
    let mut out = Vec::new();
    e.step(Input::Join(p()), &mut out);
    e.step(Input::Advance(1.0), &mut out);
    e.step(Input::Skip { from: 1.0, to: 1e6 }, &mut out);
    out.clear();
    e.step(Input::Advance(1e6 + 0.5), &mut out);
    assert_eq!(adaptations(&out), vec![1e6, 1e6 + 0.25, 1e6 + 0.5]);
}

#[test]
fn a_device_clock_far_behind_the_host_does_not_make_the_stream_stale() {
    // EDA whose device clock is 1000 s behind the session clock, 1 s blocks, 30 ms late.
    let mut e = Engine::new(EngineConfig::default(), all(&[Purpose::Process]));
    let mut out = Vec::new();
    e.step(Input::Join(p()), &mut out);
    for i in 0..60u64 {
        let t = i as f64;
        let c = Chunk {
            raw: None,
            meta: None,
            timing: Timing::Uniform {
                t0: t - 1000.0,
                rate_hz: 4.0,
            },
            ..eda(i, t + 1.0 + 0.03, 0.0)
        };
        e.step(Input::Chunk(c), &mut out);
    }
    let stale = out
        .iter()
        .any(|e| matches!(&e.body, EventBody::State(s) if s.change.state == StreamState::Stale));
    assert!(!stale, "a device clock offset must not read as staleness");
}

#[test]
fn a_dyad_keeps_targets_feedback_and_overrides_apart() {
    let (a, b) = (p(), ParticipantId::new("p02").unwrap());
    let mut t = Vec::new();
    for who in [a.clone(), b.clone()] {
        for k in crate::model::ALL_KINDS {
            for pu in [Purpose::Process, Purpose::Adapt] {
                t.push((who.clone(), k, pu));
            }
        }
    }
    let mut e = Engine::new(EngineConfig::default(), ConsentSnapshot::from_triples(1, t));
    let mut out = Vec::new();
    e.step(Input::Join(a.clone()), &mut out);
    e.step(Input::Join(b.clone()), &mut out);
    e.step(Input::Advance(0.0), &mut out);
    let marker = |label: &str, data: serde_json::Value| crate::recording::Marker {
        host_t: 1.0,
        t: 1.0,
        label: label.into(),
        data: Some(data),
    };
    e.step(
        Input::Marker(
            a.clone(),
            marker("override", serde_json::json!({"action": "ease_off"})),
        ),
        &mut out,
    );
    e.step(
        Input::Marker(
            a.clone(),
            marker("feedback", serde_json::json!({"rating": "too_easy"})),
        ),
        &mut out,
    );
    e.step(
        Input::Marker(
            b.clone(),
            marker("exercise_start", serde_json::json!({"target": "calm"})),
        ),
        &mut out,
    );
    out.clear();
    e.step(Input::Advance(3.0), &mut out);
    fn last(out: &[Arc<Event>], who: &ParticipantId) -> crate::policy::Decision {
        out.iter()
            .rev()
            .find_map(|ev| match &ev.body {
                EventBody::Adaptation(x) if &x.participant == who => Some(x.decision.clone()),
                _ => None,
            })
            .unwrap()
    }
    let (da, db) = (last(&out, &a), last(&out, &b));
    assert_eq!((da.action, da.rule), (Action::EaseOff, Rule::Override));
    assert_eq!(da.target.shift_z, 0.25);
    assert_eq!(da.target.target, crate::policy::target::Target::Engaged);
    assert_eq!((db.action, db.rule), (Action::Hold, Rule::WarmingUp));
    assert_eq!(db.target.shift_z, 0.0);
    assert_eq!(db.target.target, crate::policy::target::Target::Calm);
    // A marker for someone not in the session is a warning and changes nobody.
    let stranger = ParticipantId::new("p99").unwrap();
    out.clear();
    e.step(
        Input::Marker(
            stranger,
            marker("override", serde_json::json!({"action": "escalate"})),
        ),
        &mut out,
    );
    e.step(Input::Advance(4.0), &mut out);
    assert!(last(&out, &b).action == Action::Hold && last(&out, &a).action == Action::EaseOff);
}
