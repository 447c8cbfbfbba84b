//! `attune status`: the running session as one JSON object (edge, rendering only).
//!
//! Keys (stable; more may be added): `session` {`t`, `speed`, `live`, `phase`: `starting`
//! (waiting for subscribers) or `running`, `stalls` (host stalls, [`super::stalls`])}, `participants[]`
//! {`id`, `streams[]` {`stream`, `state`, `device`, `clock` {`offset_s`, `skew_ppm`,
//! `latency_s`, `observations`}, `drops` {reason: count}}, `baseline` {`kind`, `stage`,
//! `suspect`, `centres` {feature: centre in its unit}, `calibration` {`collecting`, `requested`, `duration_s`, `completed`},
//! `profile` (what was last done with the stored profile, one line, or null)}}, `publishers[]` {`name`, …each
//! publisher's own counters}, `drops` {reason: total}.

use crate::engine::Engine;
use crate::publish::Publisher;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A participant's baseline: the reference in use, the calibration, the profile.
fn baseline_of(t: &crate::baseline::Tracker) -> Value {
    let (r, stage) = t.reference();
    let c = t.calibration_status();
    json!({
        "kind": r.kind.name(),
        "stage": stage.name(),
        "suspect": r.suspect,
        "centres": r.centres_json(),
        "calibration": {
            "collecting": c.collecting,
            "requested": c.requested,
            "duration_s": c.duration_s,
            "completed": c.completed,
        },
        "profile": t.profile_note(),
    })
}

/// The status object.
pub(super) fn render(
    engine: &Engine,
    publishers: &[&mut dyn Publisher],
    speed: f64,
    live: bool,
    stalls: &super::stalls::Stalls,
) -> Value {
    let mut drops_by: BTreeMap<(String, &'static str), BTreeMap<&'static str, u64>> =
        BTreeMap::new();
    let mut totals: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (p, k, r, n) in engine.drops() {
        *drops_by
            .entry((p.to_string(), k.name()))
            .or_default()
            .entry(r.name())
            .or_default() += n;
        *totals.entry(r.name()).or_default() += n;
    }
    let mut participants: BTreeMap<String, Vec<Value>> = engine
        .pipeline()
        .participants()
        .map(|p| (p.to_string(), Vec::new()))
        .collect();
    for s in engine.stream_status() {
        let clock = s.clock.map(|c| {
            json!({"offset_s": c.offset_s, "skew_ppm": c.skew_ppm, "latency_s": c.latency_s,
                   "observations": c.observations})
        });
        let drops = drops_by
            .get(&(s.participant.to_string(), s.kind.name()))
            .cloned()
            .unwrap_or_default();
        participants
            .entry(s.participant.to_string())
            .or_default()
            .push(json!({
                "stream": s.kind.name(),
                "state": s.state.map(|x| x.name()),
                "device": s.device,
                "clock": clock,
                "drops": drops,
            }));
    }
    let participants: Vec<Value> = participants
        .into_iter()
        .map(|(id, streams)| {
            let baseline = crate::model::ParticipantId::new(&id)
                .ok()
                .and_then(|p| engine.pipeline().baseline(&p).map(baseline_of));
            json!({"id": id, "streams": streams, "baseline": baseline})
        })
        .collect();
    let publishers: Vec<Value> = publishers
        .iter()
        .map(|p| {
            let mut v = p.status();
            if let Some(o) = v.as_object_mut() {
                o.insert("name".into(), json!(p.name()));
            }
            v
        })
        .collect();
    json!({
        "session": {"t": engine.now(), "speed": speed, "live": live, "phase": "running",
                    "stalls": stalls.json()},
        "participants": participants,
        "publishers": publishers,
        "drops": totals,
    })
}
