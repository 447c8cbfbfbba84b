//! Model-based property tests of the ledger fold, the gate and the pipeline's egress rules
//! (issue 4; STYLE.md §15). Random interleavings of grant, revoke, expiry (time passing) and
//! chunks run against the real code and a small reference model: 1000 sequences of up to 60
//! operations per run. Failing seeds are kept in `src/consent/proptests.regressions`
//! (committed; proptest replays them first on every run).

use super::gate::{Gate, Verdict};
use super::ledger::{Action, ConsentState, Event, NewEvent, chain};
use super::{AllStreams, Purpose, StreamSelector};
use crate::model::{Chunk, ParticipantId, StreamKind, Timing};
use crate::pipeline::{Output, Pipeline, PipelineConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::collections::HashMap;

#[derive(Debug, Clone)]
enum Op {
    Grant {
        kind: Option<StreamKind>,
        purpose: Purpose,
        expires_in_s: Option<u8>,
    },
    Revoke {
        kind: Option<StreamKind>,
        purpose: Purpose,
    },
    Wait(u8),
    Chunk(StreamKind),
}

fn kind() -> impl Strategy<Value = StreamKind> {
    prop_oneof![
        Just(StreamKind::Rr),
        Just(StreamKind::Eda),
        Just(StreamKind::Hr)
    ]
}

fn purpose() -> impl Strategy<Value = Purpose> {
    prop_oneof![Just(Purpose::Process), Just(Purpose::Adapt)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            proptest::option::of(kind()),
            purpose(),
            proptest::option::of(1u8..30)
        )
            .prop_map(|(kind, purpose, expires_in_s)| Op::Grant {
                kind,
                purpose,
                expires_in_s
            }),
        (proptest::option::of(kind()), purpose())
            .prop_map(|(kind, purpose)| Op::Revoke { kind, purpose }),
        (1u8..20).prop_map(Op::Wait),
        kind().prop_map(Op::Chunk),
        kind().prop_map(Op::Chunk),
    ]
}

fn selector(k: Option<StreamKind>) -> StreamSelector {
    k.map_or(StreamSelector::All(AllStreams::All), StreamSelector::Kind)
}

/// The reference: (kind, purpose) -> expiry (None = open-ended); absent = not granted.
type Model = HashMap<(StreamKind, Purpose), Option<i64>>;

fn model_allows(m: &Model, k: StreamKind, p: Purpose, now: i64) -> bool {
    matches!(m.get(&(k, p)), Some(exp) if exp.is_none_or(|x| now < x))
}

fn config() -> Config {
    Config {
        cases: 1000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// No chunk passes the gate without a live `process` grant at its arrival, and every chunk
    /// with one passes; no decision leaves without `adapt` (and `process`) on a stream.
    #[test]
    fn gate_and_decisions_follow_the_ledger(ops in proptest::collection::vec(op(), 1..60)) {
        let p = ParticipantId::new("p01").unwrap();
        let mut model: Model = HashMap::new();
        let mut events: Vec<Event> = Vec::new();
        let mut state = ConsentState::default();
        let mut now_ms: i64 = 1_000_000;
        let mut gate = Gate::new(state.snapshot_at(now_ms));
        let mut pipeline = Pipeline::new(PipelineConfig::default(), state.snapshot_at(now_ms));
        let mut t = 0.0f64;
        let mut seq = 0u64;
        let mut out = Vec::new();
        for op in ops {
            match op {
                Op::Grant { kind, purpose, expires_in_s } => {
                    let exp = expires_in_s.map(|s| now_ms + i64::from(s) * 1000);
                    let e = chain(events.last(), NewEvent {
                        action: Action::Grant, participant: p.clone(), stream: selector(kind),
                        purpose, at_ms: now_ms, by: "prop".into(), expires_ms: exp, text_version: None,
                    });
                    state.apply(&e);
                    events.push(e);
                    for k in [StreamKind::Rr, StreamKind::Eda, StreamKind::Hr] {
                        if kind.is_none_or(|x| x == k) {
                            model.insert((k, purpose), exp);
                        }
                    }
                }
                Op::Revoke { kind, purpose } => {
                    let e = chain(events.last(), NewEvent {
                        action: Action::Revoke, participant: p.clone(), stream: selector(kind),
                        purpose, at_ms: now_ms, by: "prop".into(), expires_ms: None, text_version: None,
                    });
                    state.apply(&e);
                    events.push(e);
                    for k in [StreamKind::Rr, StreamKind::Eda, StreamKind::Hr] {
                        if kind.is_none_or(|x| x == k) {
                            model.remove(&(k, purpose));
                        }
                    }
                }
                Op::Wait(s) => {
                    now_ms += i64::from(s) * 1000;
                    t += f64::from(s);
                }
                Op::Chunk(k) => {
                    // The daemon re-snapshots on every change and at every expiry, so the
                    // snapshot in force is always the one at `now`.
                    let snap = state.snapshot_at(now_ms);
                    gate.swap(snap.clone());
                    pipeline.set_consent(snap.clone());
                    let want = model_allows(&model, k, Purpose::Process, now_ms);
                    let got = gate.check(&p, k, 1);
                    prop_assert_eq!(got == Verdict::Pass, want, "chunk of {:?} at {}", k, now_ms);
                    t += 0.8;
                    let timing = match k {
                        StreamKind::Rr => Timing::Events(vec![t]),
                        _ => Timing::Uniform { t0: t, rate_hz: 32.0 },
                    };
                    let chunk = Chunk {
                        raw: None,
                        meta: None,
                        participant: p.clone(), kind: k, seq, host_t: t, timing,
                        samples: vec![if k == StreamKind::Rr { 800.0 } else { 5.0 }],
                    };
                    seq += 1;
                    out.clear();
                    pipeline.advance(t, &mut out);
                    pipeline.on_chunk(&chunk, &mut out);
                    for o in &out {
                        if let Output::Decision(..) = o {
                            let ok = [StreamKind::Rr, StreamKind::Eda, StreamKind::Hr].iter().any(|k| {
                                snap.allows(&p, *k, Purpose::Process) && snap.allows(&p, *k, Purpose::Adapt)
                            });
                            prop_assert!(ok, "a decision left without adapt+process on any stream");
                        }
                    }
                }
            }
            prop_assert!(super::ledger::verify(&events).is_ok());
        }
        // The incremental fold equals a fold from scratch.
        prop_assert_eq!(ConsentState::fold(&events), state);
    }
}

/// An operation on the ledger's erasure bookkeeping, for two participants.
#[derive(Debug, Clone)]
enum EraseOp {
    Grant(usize, Purpose),
    Revoke(usize, Purpose),
    ForgetRequested(usize),
    DataErased(usize, Purpose),
    Erased(usize),
}

fn any_purpose() -> impl Strategy<Value = Purpose> {
    proptest::sample::select(super::ALL_PURPOSES.to_vec())
}

fn erase_op() -> impl Strategy<Value = EraseOp> {
    let who = 0usize..2;
    prop_oneof![
        (who.clone(), any_purpose()).prop_map(|(w, p)| EraseOp::Grant(w, p)),
        (who.clone(), any_purpose()).prop_map(|(w, p)| EraseOp::Revoke(w, p)),
        who.clone().prop_map(EraseOp::ForgetRequested),
        (who.clone(), any_purpose()).prop_map(|(w, p)| EraseOp::DataErased(w, p)),
        who.prop_map(EraseOp::Erased),
    ]
}

/// The reference for erasures owed: per participant, whether a forget is owed and which
/// purposes' data.
type OwedModel = HashMap<usize, (bool, std::collections::BTreeSet<Purpose>)>;

proptest! {
    #![proptest_config(config())]

    /// `pending_erasures` follows the module doc's rules: a revoke of `record`/`profile` or a
    /// `forget_requested` makes an erasure owed; `data_erased` and a grant of that purpose
    /// settle a purpose; `erased` settles everything. `forget_requested` revokes everything
    /// in the fold, `data_erased` changes no consent.
    #[test]
    fn owed_erasures_follow_the_model(ops in proptest::collection::vec(erase_op(), 1..40)) {
        use super::ledger::{pending_erasures, erases_data};
        let ids = [ParticipantId::new("p01").unwrap(), ParticipantId::new("p02").unwrap()];
        let mut model: OwedModel = HashMap::new();
        let mut events: Vec<Event> = Vec::new();
        for op in ops {
            let (action, w, purpose) = match op {
                EraseOp::Grant(w, p) => (Action::Grant, w, p),
                EraseOp::Revoke(w, p) => (Action::Revoke, w, p),
                EraseOp::ForgetRequested(w) => (Action::ForgetRequested, w, Purpose::Process),
                EraseOp::DataErased(w, p) => (Action::DataErased, w, p),
                EraseOp::Erased(w) => (Action::Erased, w, Purpose::Process),
            };
            let before = ConsentState::fold(&events);
            let e = chain(events.last(), NewEvent {
                action, participant: ids[w].clone(), stream: selector(None), purpose,
                at_ms: 0, by: "prop".into(), expires_ms: None, text_version: None,
            });
            events.push(e);
            let entry = model.entry(w).or_default();
            match action {
                Action::Revoke if erases_data(purpose) => { entry.1.insert(purpose); }
                Action::ForgetRequested => entry.0 = true,
                Action::Grant | Action::DataErased => { entry.1.remove(&purpose); }
                Action::Erased => *entry = (false, Default::default()),
                Action::Revoke => {}
            }
            let after = ConsentState::fold(&events);
            match action {
                Action::ForgetRequested | Action::Erased => {
                    for k in [StreamKind::Rr, StreamKind::Eda] {
                        for p in super::ALL_PURPOSES {
                            prop_assert!(!after.allows(&ids[w], k, p, 0));
                        }
                    }
                }
                Action::DataErased => {
                    prop_assert_eq!(after.of(&ids[w]), before.of(&ids[w]));
                }
                _ => {}
            }
            let mut want: Vec<(usize, bool, Vec<Purpose>)> = model
                .iter()
                .filter(|(_, (f, ps))| *f || !ps.is_empty())
                .map(|(w, (f, ps))| (*w, *f, ps.iter().copied().collect()))
                .collect();
            want.sort_by_key(|x| x.0);
            let got: Vec<(usize, bool, Vec<Purpose>)> = pending_erasures(&events)
                .into_iter()
                .map(|o| (ids.iter().position(|i| *i == o.participant).unwrap(), o.forget, o.purposes))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
