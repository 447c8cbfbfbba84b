//! The pure pipeline: consent gate → features → provisional baseline → policy, per participant.
//!
//! Pure and synchronous: records in, [`Output`]s out, no clock. Time advances only through
//! [`Pipeline::advance`], which emits one update per participant at every tick (every 0.25 s of
//! stream time, SIGNALS.md §5) not later than the given host time. Sources call `advance(host_t)`
//! before handing over a record, so a tick at `t` sees exactly the records that had arrived by
//! `t`. This is what makes replay deterministic.
//!
//! Consent (DESIGN.md): a chunk without `process` consent is dropped at the gate and counted;
//! its stream reports `no_consent`. Features leave only for streams with `share_features`;
//! a feature enters decisions only if its stream has `adapt`, and decisions are emitted only when
//! at least one stream has `adapt`.

use crate::baseline::score::{Availability, ScoreConfig, score};
use crate::baseline::{Stage, Tracker, TrackerConfig};
use crate::consent::gate::{Gate, Verdict};
use crate::consent::{ConsentSnapshot, Purpose};
use crate::features::{
    FEATURE_SOURCES, FeatureConfig, FeatureFrame, HEART_STREAMS, ParticipantFeatures, Quality,
};
use crate::model::{ALL_KINDS, Chunk, Gap, ParticipantId, StreamKind, StreamState};
use crate::policy::target::{Rating, Target};
use crate::policy::{Action, Decision, Policy, PolicyConfig, Rule};
use std::collections::BTreeMap;

/// Ticks per second.
pub const TICKS_PER_S: f64 = 4.0;

/// The shortest and longest calibration a `calibrate` marker may ask for, minutes (below one
/// minute there are too few 10 s windows to cluster; beyond half an hour a "calm" period is
/// unlikely to stay calm).
pub const CALIBRATE_MINUTES: (f64, f64) = (1.0, 30.0);

/// Pipeline settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineConfig {
    /// Features.
    pub features: FeatureConfig,
    /// Baselines: calibration, adaptation.
    pub baseline: TrackerConfig,
    /// Scoring.
    pub score: ScoreConfig,
    /// Policy.
    pub policy: PolicyConfig,
}

/// A stream state change.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// Whose stream.
    pub participant: ParticipantId,
    /// Which stream.
    pub kind: StreamKind,
    /// New state.
    pub state: StreamState,
    /// Stream time of the change, s.
    pub since: f64,
    /// Why, when the pipeline itself judged the stream (e.g. `flat`, `inverted` for
    /// `low_quality`).
    pub reason: Option<&'static str>,
}

/// What the pipeline produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Features (only consented ones are `Some`).
    Features(ParticipantId, FeatureFrame),
    /// A decision.
    Decision(ParticipantId, Decision),
    /// A stream state change.
    State(StateChange),
    /// A chunk could not be used (e.g. an EDA rate the filters cannot handle); one line.
    Warning(String),
}

struct Participant {
    features: ParticipantFeatures,
    baseline: Tracker,
    policy: Policy,
    states: BTreeMap<StreamKind, StreamState>,
    in_gap: BTreeMap<StreamKind, bool>,
    /// Streams the source itself called low quality (a strap without skin contact, one that
    /// sends no RR): that holds until the stream's next chunk or source state, whatever the
    /// data quality says meanwhile.
    source_low: std::collections::BTreeSet<StreamKind>,
}

/// The pipeline.
pub struct Pipeline {
    cfg: PipelineConfig,
    gate: Gate,
    participants: BTreeMap<ParticipantId, Participant>,
    next_tick: Option<u64>,
    /// Participants with a requested calibration under way (checked after each step, so it
    /// must not cost a walk over every participant).
    calibrating: std::collections::BTreeSet<ParticipantId>,
}

impl Pipeline {
    /// A pipeline reading consent from `snapshot`.
    pub fn new(cfg: PipelineConfig, snapshot: ConsentSnapshot) -> Self {
        Self {
            cfg,
            gate: Gate::new(snapshot),
            participants: BTreeMap::new(),
            next_tick: None,
            calibrating: std::collections::BTreeSet::new(),
        }
    }

    /// The gate (for its counters).
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Replaces the consent snapshot; effective from the next record. Streams that lost
    /// `process` consent have their buffered data dropped at once.
    pub fn set_consent(&mut self, snapshot: ConsentSnapshot) {
        for (id, p) in &mut self.participants {
            for kind in ALL_KINDS {
                if !snapshot.allows(id, kind, Purpose::Process) {
                    p.features.forget_stream(kind);
                }
            }
            // A stored profile is used only under `profile` consent for every stream kind.
            if p.baseline.has_personal()
                && !ALL_KINDS
                    .into_iter()
                    .all(|k| snapshot.allows(id, k, Purpose::Profile))
            {
                p.baseline.clear_personal();
            }
        }
        self.gate.swap(snapshot);
    }

    /// The baseline tracker of `p`.
    pub fn baseline(&self, p: &ParticipantId) -> Option<&Tracker> {
        self.participants.get(p).map(|x| &x.baseline)
    }

    /// Gives `p` a stored profile: its calm reference (used from now on, kind `personal`) and
    /// the feedback shift learnt in earlier sessions. Registers `p` if needed.
    pub fn set_personal(
        &mut self,
        p: &ParticipantId,
        reference: crate::baseline::score::Reference,
        feedback_shift_z: f64,
    ) {
        let x = self.participant(p);
        x.baseline.set_personal(reference);
        x.policy.restore_feedback(feedback_shift_z);
    }

    /// `p`'s feedback shift (to keep in their profile), if `p` is in the session.
    pub fn feedback_shift(&self, p: &ParticipantId) -> Option<f64> {
        self.participants
            .get(p)
            .map(|x| x.policy.feedback_shift().shift_z)
    }

    /// A marker for `p` at stream time `t` that the policy acts on: `exercise_start` (its
    /// `target`: a name or `{"low":…,"high":…}`), `exercise_end`, `feedback` (`rating`),
    /// `override` (`action`: `ease_off`, `hold`, `escalate` or `auto`), `rest_start`,
    /// `rest_end`, `calibrate` (`minutes`, default 3, within [`CALIBRATE_MINUTES`]: a new
    /// calibration starts now; the reference in use stays until it is done). Other labels are
    /// ignored here. Errors are one line for the sender; nothing
    /// changes then.
    pub fn on_marker(
        &mut self,
        participant: &ParticipantId,
        label: &str,
        data: Option<&serde_json::Value>,
        t: f64,
    ) -> Result<(), String> {
        let field = |k: &str| data.and_then(|d| d.get(k));
        // Parse before touching any state.
        enum Act {
            Target(Option<Target>),
            Feedback(Rating),
            Override(Option<Action>),
            Rest(bool),
            Calibrate(f64),
        }
        let act = match label {
            "exercise_start" => Act::Target(match field("target") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(n)) => {
                    Some(Target::named(n).map_err(|e| e.to_string())?)
                }
                Some(b) => {
                    let num = |k: &str| b.get(k).and_then(serde_json::Value::as_f64);
                    match (num("low"), num("high")) {
                        (Some(lo), Some(hi)) => {
                            Some(Target::bounds(lo, hi).map_err(|e| e.to_string())?)
                        }
                        _ => {
                            return Err(format!(
                                "bad target {b}: a name or {{\"low\":…,\"high\":…}}"
                            ));
                        }
                    }
                }
            }),
            "exercise_end" => Act::Target(None),
            "feedback" => {
                let r = field("rating")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                Act::Feedback(Rating::parse(r).ok_or_else(|| {
                    format!("bad feedback rating {r:?} (too_intense, right, too_easy)")
                })?)
            }
            "override" => {
                let a = field("action")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                Act::Override(match a {
                    "auto" => None,
                    _ => Some(Action::parse(a).ok_or_else(|| {
                        format!("bad override {a:?} (ease_off, hold, escalate, auto)")
                    })?),
                })
            }
            "rest_start" => Act::Rest(true),
            "rest_end" => Act::Rest(false),
            "calibrate" => {
                let m = match field("minutes") {
                    None | Some(serde_json::Value::Null) => 3.0,
                    Some(v) => v.as_f64().unwrap_or(f64::NAN),
                };
                if !(CALIBRATE_MINUTES.0..=CALIBRATE_MINUTES.1).contains(&m) {
                    return Err(format!(
                        "a calibration lasts {} to {} minutes, not {}",
                        CALIBRATE_MINUTES.0,
                        CALIBRATE_MINUTES.1,
                        field("minutes").map_or("?".into(), |v| v.to_string())
                    ));
                }
                Act::Calibrate(m * 60.0)
            }
            _ => return Ok(()),
        };
        let Some(p) = self.participants.get_mut(participant) else {
            return Err(format!("participant {participant} is not in the session"));
        };
        match act {
            Act::Target(tg) => p.policy.set_target(tg),
            Act::Feedback(r) => {
                p.policy.feedback(r, t);
            }
            Act::Override(a) => p.policy.set_override(a),
            Act::Rest(r) => p.baseline.set_rest(r),
            Act::Calibrate(secs) => {
                p.baseline.recalibrate(secs);
                self.calibrating.insert(participant.clone());
            }
        }
        Ok(())
    }

    /// Participants whose requested calibration (`calibrate` marker) completed since the last
    /// call: the edge stores their profile now.
    pub fn take_requested_calibrations(&mut self) -> Vec<ParticipantId> {
        if self.calibrating.is_empty() {
            return Vec::new();
        }
        let participants = &mut self.participants;
        let mut done = Vec::new();
        self.calibrating
            .retain(|id| match participants.get_mut(id) {
                Some(x) => {
                    let finished = x.baseline.take_requested_done();
                    if finished {
                        done.push(id.clone());
                    }
                    !finished
                }
                None => false,
            });
        done
    }

    /// `p`'s baseline tracker, to note that its session reference was stored.
    pub fn baseline_mut(&mut self, p: &ParticipantId) -> Option<&mut Tracker> {
        self.participants.get_mut(p).map(|x| &mut x.baseline)
    }

    /// The published state of each stream of `p`.
    pub fn stream_states(
        &self,
        p: &ParticipantId,
    ) -> impl Iterator<Item = (StreamKind, StreamState)> + '_ {
        self.participants
            .get(p)
            .into_iter()
            .flat_map(|x| x.states.iter().map(|(k, s)| (*k, *s)))
    }

    /// The policy settings.
    pub fn policy_config(&self) -> &PolicyConfig {
        &self.cfg.policy
    }

    fn participant(&mut self, p: &ParticipantId) -> &mut Participant {
        let cfg = &self.cfg;
        self.participants
            .entry(p.clone())
            .or_insert_with(|| Participant {
                features: {
                    let mut f = ParticipantFeatures::new(cfg.features.clone());
                    f.set_spectral_phase(crate::features::phase_of(
                        p.as_str(),
                        cfg.features.spectral_hop_s,
                    ));
                    f
                },
                baseline: Tracker::new(cfg.baseline.clone()),
                policy: Policy::new(cfg.policy.clone()),
                states: BTreeMap::new(),
                in_gap: BTreeMap::new(),
                source_low: std::collections::BTreeSet::new(),
            })
    }

    /// Registers `p` (a participant of the session): from the next tick on they get ticks and,
    /// with consent, decisions, whether or not data has arrived.
    pub fn join(&mut self, p: &ParticipantId) {
        self.participant(p);
    }

    /// Forgets `p` (they left the session): features, baseline, policy and states.
    pub fn leave(&mut self, p: &ParticipantId) {
        self.participants.remove(p);
    }

    /// The participants of the session.
    pub fn participants(&self) -> impl Iterator<Item = &ParticipantId> + '_ {
        self.participants.keys()
    }

    /// A source reports a state for one stream (`connecting`, `reconnecting`, `lost`,
    /// `low_quality`, `ended`). Ignored without `process` consent for that stream (its state
    /// is `no_consent`). `reconnecting`, `lost` and `connecting` hold until data arrives again;
    /// `low_quality` and `ended` likewise until the next chunk.
    pub fn source_state(
        &mut self,
        participant: &ParticipantId,
        kind: StreamKind,
        state: StreamState,
        at: f64,
        out: &mut Vec<Output>,
    ) {
        if !self
            .gate
            .snapshot()
            .allows(participant, kind, Purpose::Process)
        {
            return;
        }
        let p = self.participant(participant);
        if state == StreamState::LowQuality {
            p.source_low.insert(kind);
        } else {
            p.source_low.remove(&kind);
        }
        if matches!(state, StreamState::Reconnecting | StreamState::Lost) {
            p.features.on_gap(kind);
            p.in_gap.insert(kind, true);
        }
        set_state(p, participant, kind, state, at, out);
    }

    /// Emits every tick at or before host time `now`.
    pub fn advance(&mut self, now: f64, out: &mut Vec<Output>) {
        while !self.advance_bounded(now, out, usize::MAX) {}
    }

    /// Emits at most `max_ticks` of the ticks at or before `now`; true when none is left.
    pub fn advance_bounded(&mut self, now: f64, out: &mut Vec<Output>, max_ticks: usize) -> bool {
        let mut k = *self
            .next_tick
            .get_or_insert_with(|| (now * TICKS_PER_S).ceil().max(0.0) as u64);
        let mut emitted = 0;
        while (k as f64) / TICKS_PER_S <= now {
            if emitted == max_ticks {
                self.next_tick = Some(k);
                return false;
            }
            self.tick(k as f64 / TICKS_PER_S, out);
            k += 1;
            emitted += 1;
        }
        self.next_tick = Some(k);
        true
    }

    /// Stream time of the next tick, once the first record has set the clock.
    pub fn next_tick_time(&self) -> Option<f64> {
        self.next_tick.map(|k| k as f64 / TICKS_PER_S)
    }

    /// A chunk arrives (call [`advance`](Self::advance) with its host time first).
    pub fn on_chunk(&mut self, c: &Chunk, out: &mut Vec<Output>) {
        let verdict = self.gate.check(&c.participant, c.kind, c.samples.len());
        let p = self.participant(&c.participant);
        match verdict {
            Verdict::Drop { first } => {
                if first {
                    set_state(
                        p,
                        &c.participant,
                        c.kind,
                        StreamState::NoConsent,
                        c.time_of(0),
                        out,
                    );
                }
            }
            Verdict::Pass => {
                p.in_gap.insert(c.kind, false);
                p.source_low.remove(&c.kind);
                if let Err(e) = p.features.on_chunk(c) {
                    out.push(Output::Warning(format!(
                        "participant {}, stream {}: {e}",
                        c.participant, c.kind
                    )));
                }
                if !matches!(
                    p.states.get(&c.kind),
                    Some(StreamState::Streaming | StreamState::LowQuality)
                ) {
                    set_state(
                        p,
                        &c.participant,
                        c.kind,
                        StreamState::Streaming,
                        c.time_of(0),
                        out,
                    );
                }
            }
        }
    }

    /// A gap notice arrives.
    pub fn on_gap(&mut self, g: &Gap, out: &mut Vec<Output>) {
        if !self
            .gate
            .snapshot()
            .allows(&g.participant, g.kind, Purpose::Process)
        {
            return;
        }
        let p = self.participant(&g.participant);
        p.features.on_gap(g.kind);
        p.in_gap.insert(g.kind, true);
        set_state(p, &g.participant, g.kind, StreamState::Stale, g.start, out);
    }

    /// Stream time jumps from `from` to `to` with nothing in between: a gap on every stream of
    /// every participant (windows reset, state `stale` from `from`) and one warning; ticking
    /// resumes with the last tick at or before `to`, without the ticks in between.
    pub fn jump(&mut self, from: f64, to: f64, out: &mut Vec<Output>) {
        let resume = (to * TICKS_PER_S).floor().max(0.0) as u64;
        let skipped = match self.next_tick {
            Some(k) if resume > k => {
                self.next_tick = Some(resume);
                resume - k
            }
            _ => 0,
        };
        for (id, p) in &mut self.participants {
            let kinds: Vec<StreamKind> = p.states.keys().copied().collect();
            for k in kinds {
                if matches!(
                    p.states.get(&k),
                    Some(StreamState::NoConsent | StreamState::Ended)
                ) {
                    continue;
                }
                p.features.on_gap(k);
                p.in_gap.insert(k, true);
                set_state(p, id, k, StreamState::Stale, from, out);
            }
        }
        out.push(Output::Warning(format!(
            "no data from t = {from:.2} s to t = {to:.2} s: treated as a gap on every stream ({skipped} ticks skipped)"
        )));
    }

    /// The source has ended: every stream of every participant reports `ended`.
    pub fn finish(&mut self, at: f64, out: &mut Vec<Output>) {
        for (id, p) in &mut self.participants {
            let kinds: Vec<StreamKind> = p.states.keys().copied().collect();
            for k in kinds {
                set_state(p, id, k, StreamState::Ended, at, out);
            }
        }
    }

    fn tick(&mut self, t: f64, out: &mut Vec<Output>) {
        let consent = self.gate.snapshot();
        for (id, p) in &mut self.participants {
            // Stream states from feature quality.
            for kind in ALL_KINDS {
                let Some(q) = p.features.quality(kind, t) else {
                    continue;
                };
                if p.source_low.contains(&kind) {
                    continue;
                }
                let current = p.states.get(&kind).copied();
                let gap = p.in_gap.get(&kind).copied().unwrap_or(false);
                let next = match (q, current) {
                    (
                        _,
                        Some(
                            StreamState::NoConsent
                            | StreamState::Ended
                            | StreamState::Connecting
                            | StreamState::Reconnecting
                            | StreamState::Lost,
                        ),
                    )
                    | (_, None) => continue,
                    (Quality::Good, _) if gap => continue,
                    (Quality::Good, _) => StreamState::Streaming,
                    (Quality::Stale, _) => StreamState::Stale,
                    (Quality::OutOfRange | Quality::Flat | Quality::Signal(_), _) => {
                        StreamState::LowQuality
                    }
                };
                set_state_because(p, id, kind, next, t, q.reason(), out);
            }
            let mut frame = p.features.frame(t);
            // A spectral value stands only while its stream streams: one the source calls lost,
            // reconnecting or of low quality gives `no_signal`, whatever its last samples were.
            let streaming = |k: StreamKind| {
                matches!(p.states.get(&k), Some(StreamState::Streaming) | None)
                    && !p.source_low.contains(&k)
            };
            if let (Some(k), Some(Ok(_))) = (frame.spectral.hrv_source, frame.spectral.hrv)
                && !streaming(k)
            {
                frame.spectral.hrv =
                    Some(Err(crate::dsp::hrv_spectral::HrvSpectrumIssue::NoSignal));
            }
            if matches!(frame.spectral.eda, Some(Ok(_))) && !streaming(StreamKind::Eda) {
                frame.spectral.eda = Some(Err(crate::dsp::eda_symp::EdaSympIssue::NoSignal));
            }
            // A value may be used for a purpose only under its own stream's consent.
            let allowed = |purpose: Purpose, i: usize| {
                consent.allows(id, frame.sources[i], Purpose::Process)
                    && consent.allows(id, frame.sources[i], purpose)
            };
            // A feature is expected when a stream that can give it is present and processed.
            let expected: [bool; 4] = std::array::from_fn(|i| {
                let present = |k: StreamKind| {
                    p.states.contains_key(&k) && consent.allows(id, k, Purpose::Process)
                };
                match FEATURE_SOURCES[i] {
                    StreamKind::Rr => HEART_STREAMS.into_iter().any(present),
                    k => present(k),
                }
            });
            p.baseline.push(&frame, expected);
            let (reference, stage) = p.baseline.reference();
            let decision = match stage {
                Stage::WarmingUp => p.policy.waiting(t, Rule::WarmingUp),
                Stage::Calibrating | Stage::Ready => {
                    let avail = Availability {
                        expected,
                        usable: std::array::from_fn(|i| allowed(Purpose::Adapt, i)),
                        degraded: std::array::from_fn(|i| {
                            !matches!(
                                p.states.get(&frame.sources[i]),
                                Some(StreamState::Streaming) | None
                            ) || p.source_low.contains(&frame.sources[i])
                        }),
                    };
                    let s = score(&frame, reference, &avail, &self.cfg.score);
                    let info = p.baseline.info();
                    let d = p.policy.decide(t, s, info, stage == Stage::Calibrating);
                    p.baseline.after(t, d.composite_z, d.state);
                    d
                }
            };
            let share: [bool; 4] = std::array::from_fn(|i| allowed(Purpose::ShareFeatures, i));
            if share.iter().any(|s| *s) {
                let mut shared = frame;
                for (v, ok) in shared.values.iter_mut().zip(share) {
                    if !ok {
                        *v = None;
                    }
                }
                // The spectral values, under their own streams' consent (the same streams as
                // the time-domain features' in nearly every case: reuse those answers).
                let share_kind = |k: StreamKind| match (0..4).find(|&i| frame.sources[i] == k) {
                    Some(i) => share[i],
                    None => {
                        consent.allows(id, k, Purpose::Process)
                            && consent.allows(id, k, Purpose::ShareFeatures)
                    }
                };
                if (shared.spectral.hrv_source.is_some() || shared.spectral.hrv.is_some())
                    && !shared.spectral.hrv_source.is_some_and(share_kind)
                {
                    shared.spectral.hrv = None;
                    shared.spectral.hrv_source = None;
                }
                if shared.spectral.eda.is_some() && !share_kind(StreamKind::Eda) {
                    shared.spectral.eda = None;
                }
                out.push(Output::Features(id.clone(), shared));
            }
            if (0..4).any(|i| allowed(Purpose::Adapt, i)) {
                out.push(Output::Decision(id.clone(), decision));
            }
        }
    }
}

fn set_state(
    p: &mut Participant,
    id: &ParticipantId,
    kind: StreamKind,
    state: StreamState,
    since: f64,
    out: &mut Vec<Output>,
) {
    set_state_because(p, id, kind, state, since, None, out);
}

fn set_state_because(
    p: &mut Participant,
    id: &ParticipantId,
    kind: StreamKind,
    state: StreamState,
    since: f64,
    reason: Option<&'static str>,
    out: &mut Vec<Output>,
) {
    if p.states.get(&kind) == Some(&state) {
        return;
    }
    p.states.insert(kind, state);
    out.push(Output::State(StateChange {
        participant: id.clone(),
        kind,
        state,
        since,
        reason,
    }));
}
