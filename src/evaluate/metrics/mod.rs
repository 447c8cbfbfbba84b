//! Scoring decisions against labelled segments, per person and pooled per scenario.
//!
//! # Terms
//!
//! - A **tick** is one decision ([`DecisionPoint`]). It is **post-calibration** unless its rule
//!   is [`Rule::WarmingUp`] or [`Rule::Calibrating`]. Rate metrics use post-calibration ticks
//!   only; for onset and recovery detection a calibrating tick simply is "not `ease_off`".
//! - A tick at time `t` lies in the segment with `start_s <= t < end_s` (segments sorted by
//!   start; a tick at or after the last segment's end lies in the last segment). Segments are
//!   classed by [`class_of`] of their label.
//! - A **stress block** is a maximal run of consecutive (in start order) Stress segments, from
//!   the first one's start to the last one's end. An **onset** is a stress block whose preceding
//!   segment is Calm or Recovery and which starts after the first post-calibration tick. A block
//!   that starts the labelled session (as in `stressed-start`) or starts while the baseline is
//!   still being taken is **initial stress** instead: the person was aroused during calibration.
//!
//! # Per person ([`PersonMetrics`], from [`score`])
//!
//! - onset delay: for each onset, `t − block start` of the first **entry** into `ease_off`
//!   inside the block (a post-calibration `ease_off` tick whose previous tick was not
//!   `ease_off`); an onset without one is **missed**. An onset where the policy was already
//!   easing off at the block start (its last tick before the start was a post-calibration
//!   `ease_off`: a false alarm still running) is **pre-empted**: counted in `preempted_onsets`,
//!   neither detected nor missed, and not in the delays.
//! - `false_ease_off_rest_frac`: post-calibration ticks in Calm segments that are `ease_off`,
//!   divided by all post-calibration ticks in Calm segments (`None` without such ticks).
//!   `escalate_rest_frac`: the same for `escalate`.
//! - escalations during stress: entries into `escalate` (a post-calibration `escalate` tick
//!   whose previous post-calibration tick was not `escalate`, or which is the first
//!   post-calibration tick) whose time lies inside a stress block.
//! - `flips_per_min`: changes of action between consecutive post-calibration ticks, divided by
//!   the post-calibration time in minutes (session end − first post-calibration tick; `None`
//!   if that is not positive).
//! - recovery delay: for each stress block followed by a Recovery or Calm segment **whose last
//!   tick before its end `E` was a post-calibration `ease_off`** (the policy was responding;
//!   other blocks count in `not_eased_at_end` and are not scored), take the ticks at or after
//!   `E`. A tick *starts a calm run* if it is not `ease_off`
//!   and is the first tick at or after `E` or follows an `ease_off` tick. The run lasts until
//!   the next `ease_off` tick, or the session end. The delay is `t − E` of the first tick that
//!   starts a run of at least [`RECOVERY_RUN_S`]; if there is none, the block is
//!   **unrecovered** (censored: counted, not in the delays).
//! - initial stress: each initial stress block (see Terms) is counted in
//!   `initial_stress_blocks`, and in `initial_stress_eased_off` if a post-calibration `ease_off`
//!   tick lies inside it.
//! - movement and startle: post-calibration ticks in segments labelled `movement` or `cooldown`
//!   (resp. `startle`) that are `ease_off`, counted with their totals.
//! - initial stress within 60 s: `initial_stress_eased_off_60s` counts the initial stress blocks
//!   with a tick whose action is `ease_off` (whatever its rule, calibrating included: it is what
//!   the app is told) at `t` with `start_s <= t < end_s` and `t − start_s <=`
//!   [`INITIAL_EASE_OFF_S`].
//! - `escalate_after_initial_stress`: `escalate` among the post-calibration ticks at or after the
//!   end of the first initial stress block, up to the session end, that lie in no stress block
//!   (in `stressed-start`: the recovery and rest segments). Empty without initial stress.
//! - **responder** ([`is_responder`], from the generator's `person` object of a simulated
//!   person): `heart.hr_rise_bpm >=` [`RESPONDER_HR_RISE_BPM`] (HR rise at full load), or
//!   `eda.class` is not `"non"` and `eda.scl_rise_us >=` [`RESPONDER_SCL_RISE_US`] (tonic
//!   skin-conductance rise at full load). `None` (JSON `null`) without those parameters, e.g.
//!   for a recording. A non-responder's stress leaves next to nothing in the signals the engine
//!   reads, so no policy can be asked to find it.
//!
//! # Ectopic robustness ([`compare_ectopic`], [`summarize_ectopic`])
//!
//! The same person and session run twice, clean and with added ectopic beats
//! (`CohortConfig::ectopic_frac`). `flips_clean` and `flips_ectopic` are [`flips`] of each run
//! (the `flips` of [`score`]). Ticks are paired by time (equal within [`SAME_TICK_S`], walking
//! both sequences in order); `ticks` counts the pairs, `action_diff_ticks` the pairs whose
//! actions differ (calibrating ticks included), `unmatched_ticks` the ticks of either run
//! without a partner. Per scenario the counts are summed, `action_diff_frac` is
//! `action_diff_ticks / ticks` and `ectopic_extra_flips` is Σ max(0, flips_ectopic −
//! flips_clean) over people.
//!
//! # Per scenario ([`Summary`], from [`summarize`])
//!
//! Counts are summed over the cohort; fractions are pooled (sum of hits over sum of ticks, so a
//! person contributes by their number of ticks); `onset_delay_median_s`, `onset_delay_p90_s` and
//! `recovery_delay_median_s` are quantiles over every detected onset (resp. recovered block) of
//! the cohort, linear interpolation between order statistics (NumPy's default); `flips_per_min`
//! is the mean over people who have a value. Anything without data is `None` (JSON `null`).
//!
//! `initial_stress_eased_off_60s_frac` is `initial_stress_eased_off_60s / initial_stress_blocks`;
//! `escalate_after_initial_stress` (hits), `escalate_after_initial_stress_ticks` and `_frac` pool
//! the per-person share. The `responder_*` keys are the onset figures over responders only
//! (people with `responder == Some(true)`; `responders` counts them): `responder_onsets`,
//! `responder_missed_onsets`, `responder_preempted_onsets` summed, `responder_detected_frac` =
//! detected / (onsets − pre-empted), where detected = onsets − missed − pre-empted (a pre-empted
//! onset is neither detected nor missed, so it leaves the denominator), and the median and p90
//! of their detected onsets' delays.
//!
//! # The reference rule ([`reference_rule`])
//!
//! A crude rule any physiologist would try first: the reference is the mean `hr_bpm` of the
//! feature frames before [`REFERENCE_CALIBRATION_S`]; from then on, `ease_off` when `hr_bpm`
//! is at least the reference + [`REFERENCE_MARGIN_BPM`], else `hold` (also when `hr_bpm` or the
//! reference is missing). Its ticks are the feature frames' times; before
//! [`REFERENCE_CALIBRATION_S`] they are calibrating. It is scored with [`score`] like the
//! policy.
//!
//! Pure: values in, values out.

#[cfg(test)]
mod tests;

use super::{DecisionPoint, PersonRun};
use crate::features::FeatureFrame;
use crate::policy::{Action, Rule};
use crate::recording::Segment;
use crate::simulate::cohort::{SegmentClass, class_of};
use serde::Serialize;

/// How long a run without `ease_off` must last to count as recovered, s.
pub const RECOVERY_RUN_S: f64 = 30.0;
/// The reference rule's calibration time, s.
pub const REFERENCE_CALIBRATION_S: f64 = 120.0;
/// The reference rule's margin above the reference heart rate, bpm.
pub const REFERENCE_MARGIN_BPM: f64 = 7.5;
/// How soon after an initial stress block's start an `ease_off` must come, s.
pub const INITIAL_EASE_OFF_S: f64 = 60.0;
/// A responder's least heart-rate rise at full load, bpm (`heart.hr_rise_bpm`).
pub const RESPONDER_HR_RISE_BPM: f64 = 3.0;
/// A responder's least tonic skin-conductance rise at full load, µS (`eda.scl_rise_us`, for
/// an `eda.class` other than `non`).
pub const RESPONDER_SCL_RISE_US: f64 = 0.3;

/// A count of ticks and of the ticks that hit (were `ease_off`, or `escalate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    /// Ticks that hit.
    pub hits: u64,
    /// All ticks.
    pub ticks: u64,
}

impl Share {
    fn add(&mut self, hit: bool) {
        self.ticks += 1;
        self.hits += u64::from(hit);
    }

    fn merge(&mut self, other: Share) {
        self.hits += other.hits;
        self.ticks += other.ticks;
    }

    /// `hits / ticks`, or `None` without ticks.
    pub fn frac(self) -> Option<f64> {
        (self.ticks > 0).then(|| self.hits as f64 / self.ticks as f64)
    }
}

/// One person's scores (module doc).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonMetrics {
    /// Onsets in the session.
    pub onsets: u64,
    /// Delay of each detected onset, s, in time order.
    pub onset_delays_s: Vec<f64>,
    /// Onsets without `ease_off` inside the block.
    pub missed_onsets: u64,
    /// `ease_off` among post-calibration Calm ticks.
    pub calm_ease_off: Share,
    /// `escalate` among post-calibration Calm ticks.
    pub calm_escalate: Share,
    /// Entries into `escalate` inside stress blocks.
    pub escalations_during_stress: u64,
    /// Action changes between consecutive post-calibration ticks.
    pub flips: u64,
    /// Post-calibration time, s.
    pub post_calibration_s: f64,
    /// Recovery delay of each recovered block, s.
    pub recovery_delays_s: Vec<f64>,
    /// Blocks followed by Recovery or Calm that never recovered.
    pub unrecovered: u64,
    /// `ease_off` among post-calibration `movement` and `cooldown` ticks.
    pub movement_ease_off: Share,
    /// `ease_off` among post-calibration `startle` ticks.
    pub startle_ease_off: Share,
    /// Onsets where the policy was already easing off.
    pub preempted_onsets: u64,
    /// Blocks with a recovery to score whose last tick was not `ease_off`.
    pub not_eased_at_end: u64,
    /// Stress blocks at the session start or during calibration.
    pub initial_stress_blocks: u64,
    /// ... with an `ease_off` inside.
    pub initial_stress_eased_off: u64,
    /// ... with a tick whose action is `ease_off` in its first [`INITIAL_EASE_OFF_S`].
    pub initial_stress_eased_off_60s: u64,
    /// `escalate` among post-calibration ticks after the first initial stress block, outside
    /// stress blocks.
    pub escalate_after_initial_stress: Share,
    /// Whether the person is a responder ([`is_responder`]); `None` without the parameters
    /// (a recording, or [`score`] alone).
    pub responder: Option<bool>,
}

impl PersonMetrics {
    /// Flips per minute of post-calibration time.
    pub fn flips_per_min(&self) -> Option<f64> {
        (self.post_calibration_s > 0.0)
            .then(|| self.flips as f64 / (self.post_calibration_s / 60.0))
    }

    /// The median of this person's onset delays.
    pub fn onset_delay_s(&self) -> Option<f64> {
        quantile(&self.onset_delays_s, 0.5)
    }

    /// The median of this person's recovery delays.
    pub fn recovery_delay_s(&self) -> Option<f64> {
        quantile(&self.recovery_delays_s, 0.5)
    }
}

/// A stress block: consecutive Stress segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StressBlock {
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
    /// The class of the segment before it (`None` at the session start).
    pub before: Option<SegmentClass>,
    /// The class of the segment after it (`None` at the session end).
    pub after: Option<SegmentClass>,
}

impl StressBlock {
    /// Whether it can be an onset: it follows a Calm or Recovery segment (it must also start
    /// after calibration, [`score`]).
    pub fn follows_calm(&self) -> bool {
        matches!(
            self.before,
            Some(SegmentClass::Calm | SegmentClass::Recovery)
        )
    }

    /// Whether its recovery is scored (a Recovery or Calm segment follows).
    pub fn has_recovery(&self) -> bool {
        matches!(
            self.after,
            Some(SegmentClass::Recovery | SegmentClass::Calm)
        )
    }

    fn contains(&self, t: f64) -> bool {
        t >= self.start_s && t < self.end_s
    }
}

fn sorted(segments: &[Segment]) -> Vec<&Segment> {
    let mut s: Vec<&Segment> = segments.iter().collect();
    s.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    s
}

/// The stress blocks of a session, in time order.
pub fn stress_blocks(segments: &[Segment]) -> Vec<StressBlock> {
    let segs = sorted(segments);
    let classes: Vec<SegmentClass> = segs.iter().map(|s| class_of(&s.label)).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < segs.len() {
        if classes[i] != SegmentClass::Stress {
            i += 1;
            continue;
        }
        let first = i;
        while i + 1 < segs.len() && classes[i + 1] == SegmentClass::Stress {
            i += 1;
        }
        out.push(StressBlock {
            start_s: segs[first].start_s,
            end_s: segs[i].end_s,
            before: first.checked_sub(1).map(|j| classes[j]),
            after: classes.get(i + 1).copied(),
        });
        i += 1;
    }
    out
}

/// Whether a tick is post-calibration.
pub fn post_calibration(d: &DecisionPoint) -> bool {
    !matches!(d.rule, Rule::WarmingUp | Rule::Calibrating)
}

/// Whether a tick counts as `ease_off` for onset and recovery detection.
fn eases_off(d: &DecisionPoint) -> bool {
    post_calibration(d) && d.action == Action::EaseOff
}

/// The label of the segment a tick at `t` lies in (module doc).
fn label_at<'a>(segs: &[&'a Segment], t: f64) -> Option<&'a str> {
    segs.iter()
        .find(|s| t >= s.start_s && t < s.end_s)
        .or_else(|| segs.last().filter(|s| t >= s.end_s))
        .map(|s| s.label.as_str())
}

/// Scores one person's decisions (time order) against their segments; the session lasted
/// `duration_s`.
pub fn score(segments: &[Segment], decisions: &[DecisionPoint], duration_s: f64) -> PersonMetrics {
    let segs = sorted(segments);
    let blocks = stress_blocks(segments);
    let mut m = PersonMetrics::default();

    let calibrated_at = decisions
        .iter()
        .find(|d| post_calibration(d))
        .map_or(f64::INFINITY, |d| d.t);
    let mut initial_end: Option<f64> = None;
    for b in &blocks {
        if !(b.follows_calm() && b.start_s >= calibrated_at) {
            m.initial_stress_blocks += 1;
            if decisions.iter().any(|d| b.contains(d.t) && eases_off(d)) {
                m.initial_stress_eased_off += 1;
            }
            if decisions.iter().any(|d| {
                b.contains(d.t)
                    && d.t - b.start_s <= INITIAL_EASE_OFF_S
                    && d.action == Action::EaseOff
            }) {
                m.initial_stress_eased_off_60s += 1;
            }
            initial_end.get_or_insert(b.end_s);
            continue;
        }
        m.onsets += 1;
        let before = decisions.iter().rfind(|d| d.t < b.start_s);
        if before.is_some_and(eases_off) {
            m.preempted_onsets += 1;
            continue;
        }
        let mut prev_eased = false;
        let entry = decisions.iter().find(|d| {
            let entered = b.contains(d.t) && eases_off(d) && !prev_eased;
            if d.t >= b.start_s {
                prev_eased = eases_off(d);
            }
            entered
        });
        match entry {
            Some(d) => m.onset_delays_s.push(d.t - b.start_s),
            None => m.missed_onsets += 1,
        }
    }

    let mut prev: Option<Action> = None;
    let mut first_post: Option<f64> = None;
    let mut last_t = f64::NEG_INFINITY;
    for d in decisions.iter().filter(|d| post_calibration(d)) {
        first_post.get_or_insert(d.t);
        last_t = d.t;
        match label_at(&segs, d.t) {
            Some(l) if class_of(l) == SegmentClass::Calm => {
                m.calm_ease_off.add(d.action == Action::EaseOff);
                m.calm_escalate.add(d.action == Action::Escalate);
            }
            Some("movement" | "cooldown") => m.movement_ease_off.add(d.action == Action::EaseOff),
            Some("startle") => m.startle_ease_off.add(d.action == Action::EaseOff),
            _ => {}
        }
        let in_stress = blocks.iter().any(|b| b.contains(d.t));
        if d.action == Action::Escalate && prev != Some(Action::Escalate) && in_stress {
            m.escalations_during_stress += 1;
        }
        if initial_end.is_some_and(|e| d.t >= e) && !in_stress {
            m.escalate_after_initial_stress
                .add(d.action == Action::Escalate);
        }
        if prev.is_some_and(|p| p != d.action) {
            m.flips += 1;
        }
        prev = Some(d.action);
    }
    if let Some(t0) = first_post {
        m.post_calibration_s = duration_s.max(last_t) - t0;
    }

    let end = duration_s.max(decisions.last().map_or(f64::NEG_INFINITY, |d| d.t));
    for b in blocks.iter().filter(|b| b.has_recovery()) {
        if !decisions
            .iter()
            .rfind(|d| d.t < b.end_s)
            .is_some_and(eases_off)
        {
            m.not_eased_at_end += 1;
            continue;
        }
        match recovery_delay(decisions, b.end_s, end) {
            Some(delay) => m.recovery_delays_s.push(delay),
            None => m.unrecovered += 1,
        }
    }
    m
}

/// Scores a run's decisions ([`score`]), with whether the person is a responder.
pub fn score_run(run: &PersonRun) -> PersonMetrics {
    PersonMetrics {
        responder: run_responder(run),
        ..score(&run.segments, &run.decisions, run.duration_s)
    }
}

/// Scores the reference rule on a run's feature frames ([`reference_rule`], [`score`]), with
/// whether the person is a responder.
pub fn score_reference(run: &PersonRun) -> PersonMetrics {
    PersonMetrics {
        responder: run_responder(run),
        ..score(
            &run.segments,
            &reference_rule(&run.features),
            run.duration_s,
        )
    }
}

fn run_responder(run: &PersonRun) -> Option<bool> {
    run.generator
        .as_ref()
        .and_then(|g| g.get("person"))
        .and_then(is_responder)
}

/// Whether a simulated person (the generator's `person` object) responds to stress in what the
/// engine sees (module doc): `heart.hr_rise_bpm >= RESPONDER_HR_RISE_BPM`, or `eda.class` is not
/// `"non"` and `eda.scl_rise_us >= RESPONDER_SCL_RISE_US`. `None` if `heart.hr_rise_bpm` is
/// missing, or it is below its threshold and the EDA parameters are missing.
pub fn is_responder(person: &serde_json::Value) -> Option<bool> {
    let num = |a: &str, b: &str| {
        person
            .get(a)
            .and_then(|x| x.get(b))
            .and_then(|x| x.as_f64())
    };
    let hr = num("heart", "hr_rise_bpm")?;
    if hr >= RESPONDER_HR_RISE_BPM {
        return Some(true);
    }
    let class = person
        .get("eda")
        .and_then(|e| e.get("class"))
        .and_then(|c| c.as_str())?;
    let scl = num("eda", "scl_rise_us")?;
    Some(class != "non" && scl >= RESPONDER_SCL_RISE_US)
}

/// The recovery delay after a block ending at `block_end` (module doc), or `None`.
fn recovery_delay(decisions: &[DecisionPoint], block_end: f64, session_end: f64) -> Option<f64> {
    let mut run_start: Option<f64> = None;
    for d in decisions.iter().filter(|d| d.t >= block_end) {
        if let Some(s) = run_start
            && d.t - s >= RECOVERY_RUN_S
        {
            return Some(s - block_end);
        }
        if eases_off(d) {
            run_start = None;
        } else if run_start.is_none() {
            run_start = Some(d.t);
        }
    }
    run_start
        .filter(|&s| session_end - s >= RECOVERY_RUN_S)
        .map(|s| s - block_end)
}

/// The `q` quantile (0..=1) of `xs`, linear between order statistics; `None` when empty.
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    Some(v[lo] + (h - lo as f64) * (v[hi] - v[lo]))
}

/// A scenario's scores pooled over its people (module doc). Field names are the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// People scored (`n_people`; `people` is the per-person array next to it).
    #[serde(rename = "n_people")]
    pub people: u64,
    /// Onsets, summed.
    pub onsets: u64,
    /// Median onset delay over detected onsets, s.
    pub onset_delay_median_s: Option<f64>,
    /// 90th percentile onset delay over detected onsets, s.
    pub onset_delay_p90_s: Option<f64>,
    /// Onsets without `ease_off`, summed.
    pub missed_onsets: u64,
    /// Pooled share of `ease_off` among post-calibration Calm ticks.
    pub false_ease_off_rest_frac: Option<f64>,
    /// Pooled share of `escalate` among post-calibration Calm ticks.
    pub escalate_rest_frac: Option<f64>,
    /// Entries into `escalate` inside stress blocks, summed.
    pub escalations_during_stress: u64,
    /// Mean over people of action changes per post-calibration minute.
    pub flips_per_min: Option<f64>,
    /// Median recovery delay over recovered blocks, s.
    pub recovery_delay_median_s: Option<f64>,
    /// Blocks that never recovered, summed.
    pub unrecovered: u64,
    /// Pooled share of `ease_off` among post-calibration `movement` and `cooldown` ticks.
    pub ease_off_movement_frac: Option<f64>,
    /// Pooled share of `ease_off` among post-calibration `startle` ticks.
    pub ease_off_startle_frac: Option<f64>,
    /// Onsets where the policy was already easing off, summed.
    pub preempted_onsets: u64,
    /// Blocks with a recovery to score that were not being eased off at their end, summed.
    pub not_eased_at_end: u64,
    /// Stress blocks at the session start or during calibration, summed.
    pub initial_stress_blocks: u64,
    /// ... with an `ease_off` inside, summed.
    pub initial_stress_eased_off: u64,
    /// ... with a tick whose action is `ease_off` in its first 60 s, summed.
    pub initial_stress_eased_off_60s: u64,
    /// `initial_stress_eased_off_60s / initial_stress_blocks`.
    pub initial_stress_eased_off_60s_frac: Option<f64>,
    /// `escalate` ticks after an initial stress block (module doc), summed.
    pub escalate_after_initial_stress: u64,
    /// ... all post-calibration ticks there, summed.
    pub escalate_after_initial_stress_ticks: u64,
    /// Pooled share of `escalate` among them.
    pub escalate_after_initial_stress_frac: Option<f64>,
    /// People who are responders ([`is_responder`]).
    pub responders: u64,
    /// Onsets of responders, summed.
    pub responder_onsets: u64,
    /// Missed onsets of responders, summed.
    pub responder_missed_onsets: u64,
    /// Pre-empted onsets of responders, summed.
    pub responder_preempted_onsets: u64,
    /// Detected / (onsets − pre-empted) among responders.
    pub responder_detected_frac: Option<f64>,
    /// Median onset delay over responders' detected onsets, s.
    pub responder_onset_delay_median_s: Option<f64>,
    /// 90th percentile onset delay over responders' detected onsets, s.
    pub responder_onset_delay_p90_s: Option<f64>,
}

/// Pools people's scores into a scenario's summary.
pub fn summarize<'a>(people: impl IntoIterator<Item = &'a PersonMetrics>) -> Summary {
    let mut n = 0;
    let mut onsets = 0;
    let mut missed = 0;
    let mut delays = Vec::new();
    let mut calm_e = Share::default();
    let mut calm_x = Share::default();
    let mut esc = 0;
    let mut flips = Vec::new();
    let mut rec = Vec::new();
    let mut unrec = 0;
    let mut mov = Share::default();
    let mut startle = Share::default();
    let (mut init, mut init_eased, mut pre, mut not_eased) = (0, 0, 0, 0);
    let mut init_60 = 0;
    let mut after_init = Share::default();
    let (mut resp, mut r_onsets, mut r_missed, mut r_pre) = (0, 0, 0, 0);
    let mut r_delays = Vec::new();
    for p in people {
        init_60 += p.initial_stress_eased_off_60s;
        after_init.merge(p.escalate_after_initial_stress);
        if p.responder == Some(true) {
            resp += 1;
            r_onsets += p.onsets;
            r_missed += p.missed_onsets;
            r_pre += p.preempted_onsets;
            r_delays.extend_from_slice(&p.onset_delays_s);
        }
        pre += p.preempted_onsets;
        not_eased += p.not_eased_at_end;
        init += p.initial_stress_blocks;
        init_eased += p.initial_stress_eased_off;
        n += 1;
        onsets += p.onsets;
        missed += p.missed_onsets;
        delays.extend_from_slice(&p.onset_delays_s);
        calm_e.merge(p.calm_ease_off);
        calm_x.merge(p.calm_escalate);
        esc += p.escalations_during_stress;
        flips.extend(p.flips_per_min());
        rec.extend_from_slice(&p.recovery_delays_s);
        unrec += p.unrecovered;
        mov.merge(p.movement_ease_off);
        startle.merge(p.startle_ease_off);
    }
    Summary {
        people: n,
        onsets,
        onset_delay_median_s: quantile(&delays, 0.5),
        onset_delay_p90_s: quantile(&delays, 0.9),
        missed_onsets: missed,
        false_ease_off_rest_frac: calm_e.frac(),
        escalate_rest_frac: calm_x.frac(),
        escalations_during_stress: esc,
        flips_per_min: (!flips.is_empty()).then(|| flips.iter().sum::<f64>() / flips.len() as f64),
        recovery_delay_median_s: quantile(&rec, 0.5),
        unrecovered: unrec,
        ease_off_movement_frac: mov.frac(),
        ease_off_startle_frac: startle.frac(),
        preempted_onsets: pre,
        not_eased_at_end: not_eased,
        initial_stress_blocks: init,
        initial_stress_eased_off: init_eased,
        initial_stress_eased_off_60s: init_60,
        initial_stress_eased_off_60s_frac: (init > 0).then(|| init_60 as f64 / init as f64),
        escalate_after_initial_stress: after_init.hits,
        escalate_after_initial_stress_ticks: after_init.ticks,
        escalate_after_initial_stress_frac: after_init.frac(),
        responders: resp,
        responder_onsets: r_onsets,
        responder_missed_onsets: r_missed,
        responder_preempted_onsets: r_pre,
        responder_detected_frac: (r_onsets > r_pre)
            .then(|| r_delays.len() as f64 / (r_onsets - r_pre) as f64),
        responder_onset_delay_median_s: quantile(&r_delays, 0.5),
        responder_onset_delay_p90_s: quantile(&r_delays, 0.9),
    }
}

/// The reference rule's decisions on a person's feature frames (module doc).
pub fn reference_rule(features: &[FeatureFrame]) -> Vec<DecisionPoint> {
    let calib: Vec<f64> = features
        .iter()
        .filter(|f| f.t < REFERENCE_CALIBRATION_S)
        .filter_map(|f| f.values[0])
        .filter(|x| x.is_finite())
        .collect();
    let reference = (!calib.is_empty()).then(|| calib.iter().sum::<f64>() / calib.len() as f64);
    features
        .iter()
        .map(|f| {
            let hr = f.values[0].filter(|x| x.is_finite());
            let (action, rule) = if f.t < REFERENCE_CALIBRATION_S {
                (Action::Hold, Rule::Calibrating)
            } else {
                match (hr, reference) {
                    (Some(h), Some(r)) if h >= r + REFERENCE_MARGIN_BPM => {
                        (Action::EaseOff, Rule::HighArousal)
                    }
                    (Some(_), Some(_)) => (Action::Hold, Rule::BaselineArousal),
                    _ => (Action::Hold, Rule::NoData),
                }
            };
            DecisionPoint {
                t: f.t,
                action,
                arousal: None,
                rule,
            }
        })
        .collect()
}

/// Two ticks are at the same time if their times differ by at most this, s.
pub const SAME_TICK_S: f64 = 1e-6;

/// One person's clean run against the same person with added ectopic beats (module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EctopicComparison {
    /// Action changes between consecutive post-calibration ticks, clean run.
    pub flips_clean: u64,
    /// ... the run with ectopic beats.
    pub flips_ectopic: u64,
    /// Ticks at the same time in both runs whose actions differ.
    pub action_diff_ticks: u64,
    /// Ticks at the same time in both runs.
    pub ticks: u64,
    /// Ticks of either run without a tick at the same time in the other.
    pub unmatched_ticks: u64,
}

/// Action changes between consecutive post-calibration ticks (`flips` of [`score`]).
pub fn flips(decisions: &[DecisionPoint]) -> u64 {
    let post: Vec<Action> = decisions
        .iter()
        .filter(|d| post_calibration(d))
        .map(|d| d.action)
        .collect();
    post.windows(2).filter(|w| w[0] != w[1]).count() as u64
}

/// Compares a clean run's decisions with the ectopic run's (both in time order; module doc).
pub fn compare_ectopic(clean: &[DecisionPoint], ectopic: &[DecisionPoint]) -> EctopicComparison {
    let mut c = EctopicComparison {
        flips_clean: flips(clean),
        flips_ectopic: flips(ectopic),
        ..EctopicComparison::default()
    };
    let (mut i, mut j) = (0, 0);
    while i < clean.len() && j < ectopic.len() {
        let (a, b) = (&clean[i], &ectopic[j]);
        if (a.t - b.t).abs() <= SAME_TICK_S {
            c.ticks += 1;
            c.action_diff_ticks += u64::from(a.action != b.action);
            i += 1;
            j += 1;
        } else if a.t < b.t {
            c.unmatched_ticks += 1;
            i += 1;
        } else {
            c.unmatched_ticks += 1;
            j += 1;
        }
    }
    c.unmatched_ticks += (clean.len() - i + ectopic.len() - j) as u64;
    c
}

/// A scenario's ectopic comparisons pooled (module doc). Field names are the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EctopicSummary {
    /// The share of ectopic beats asked for, %.
    pub ectopic_pct: f64,
    /// People compared.
    pub n_people: u64,
    /// Clean-run flips, summed.
    pub flips_clean: u64,
    /// Ectopic-run flips, summed.
    pub flips_ectopic: u64,
    /// Σ max(0, flips_ectopic − flips_clean) over people.
    pub ectopic_extra_flips: u64,
    /// Ticks at the same time whose actions differ, summed.
    pub action_diff_ticks: u64,
    /// Ticks at the same time, summed.
    pub ticks: u64,
    /// `action_diff_ticks / ticks`.
    pub action_diff_frac: Option<f64>,
    /// Ticks without a partner at the same time, summed.
    pub unmatched_ticks: u64,
}

/// Pools people's ectopic comparisons.
pub fn summarize_ectopic<'a>(
    ectopic_pct: f64,
    people: impl IntoIterator<Item = &'a EctopicComparison>,
) -> EctopicSummary {
    let mut s = EctopicSummary {
        ectopic_pct,
        n_people: 0,
        flips_clean: 0,
        flips_ectopic: 0,
        ectopic_extra_flips: 0,
        action_diff_ticks: 0,
        ticks: 0,
        action_diff_frac: None,
        unmatched_ticks: 0,
    };
    for p in people {
        s.n_people += 1;
        s.flips_clean += p.flips_clean;
        s.flips_ectopic += p.flips_ectopic;
        s.ectopic_extra_flips += p.flips_ectopic.saturating_sub(p.flips_clean);
        s.action_diff_ticks += p.action_diff_ticks;
        s.ticks += p.ticks;
        s.unmatched_ticks += p.unmatched_ticks;
    }
    s.action_diff_frac = (s.ticks > 0).then(|| s.action_diff_ticks as f64 / s.ticks as f64);
    s
}
