//! Adaptation policy: a scored frame in, one explained decision out. Pure.
//!
//! The score ([`crate::baseline::score`]) is a composite z of the features against the
//! participant's calm reference; `arousal` = logistic(composite z), so 0.5 is the calm
//! reference. The exercise's target ([`target`]) gives a band of composite z, shifted by the
//! participant's feedback. Above the band the policy eases off; below it, it may escalate; in
//! it, it holds.
//!
//! **Hysteresis and dwell.** `high` is entered when z has stayed at or above the band's top for
//! `high_sustain_s` (2 s, so one frame's spike does not act) and left when it falls below the
//! top − `hysteresis_z` (0.5); `low` likewise below the bottom and above bottom + 0.5. A state is
//! kept at least `min_dwell_s` (10 s) before it may change (rule `min_dwell`). Heart rate, the
//! fastest feature (a 10 s window; SCL follows arousal 20–60 s later, RMSSD and the SCR rate use
//! 60 s windows), may carry `high` alone at the start of a response: HR z ≥ `fast_hr_z` (3.0,
//! moved with the band's top) with the composite ≥ `fast_composite_z` (1.5). (Requiring that
//! no other feature point the other way — RMSSD up with HR up is slow breathing — was tried: it
//! delayed onsets and did not lower paced breathing's false alarms.)
//!
//! **Escalation safeguard.** Escalating is the one action that can hurt, so `low` arousal
//! becomes `escalate` only when every condition holds, else the decision is `hold` with rule
//! `escalate_blocked` and the condition that failed in `blocked`:
//! - `target`: the target allows it (`calm` never escalates);
//! - `population_baseline`: the reference is this person's (session or personal), not
//!   strangers';
//! - `baseline_not_calm`: the reference is not suspect (a calibration that was not calm);
//! - `quality`: every feature used is of a streaming, non-degraded stream and the confidence
//!   is at least `escalate_min_confidence` (0.5);
//! - `not_sustained`: z has been below the band, at good quality and with the same features,
//!   for `escalate_sustain_s` (60 s);
//! - `recent_high`: the state was not `high` in the last `escalate_quiet_s` (120 s);
//! - `rising`: z has not risen by `onset_rise_z` (1.0) over the last `onset_window_s` (20 s) —
//!   never at a stress onset;
//! - `rate_limited`: the previous entry into `escalate` is at least `escalate_rate_limit_s`
//!   (300 s) old.
//!
//! **Fail-safe.** Without a usable feature (signal lost, stale, no consent) the decision is
//! `hold` with confidence 0 (`no_data`), or `ease_off` (`signal_lost`) where
//! `ease_off_on_loss` is set and features were there before. Before any reference exists the
//! rule is `warming_up` or `calibrating`. With the population prior (cold start) the band's top
//! is at least `population_high_z` (3.0) and nothing escalates.
//!
//! **Human oversight.** A researcher's override pins the action (rule `override`) until `auto`.
//!
//! These thresholds are attune's documented choice, judged on the simulated cohort
//! (docs/evaluation.md); they are not a validated clinical rule.

pub mod target;

use crate::baseline::score::{BaselineKind, ClusterSummary, Score, Term};
use std::collections::VecDeque;
use target::{Bands, FeedbackShift, Rating, Target};

pub use crate::baseline::score::DIRECTIONS;

/// Policy settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Width of the hysteresis on both edges of the band, composite z.
    pub hysteresis_z: f64,
    /// Minimum time in a state before it may change, s.
    pub min_dwell_s: f64,
    /// z must stay above the band's top this long before `high`, s.
    pub high_sustain_s: f64,
    /// Lowest top of the band with the population prior, composite z.
    pub population_high_z: f64,
    /// Low arousal must last this long before `escalate`, s.
    pub escalate_sustain_s: f64,
    /// Lowest confidence at which `escalate` may be entered.
    pub escalate_min_confidence: f64,
    /// No `escalate` this long after `high`, s.
    pub escalate_quiet_s: f64,
    /// Entries into `escalate` at least this far apart, s.
    pub escalate_rate_limit_s: f64,
    /// A rise of z by this much over `onset_window_s` blocks `escalate`.
    pub onset_rise_z: f64,
    /// Window for `onset_rise_z`, s.
    pub onset_window_s: f64,
    /// Ease off (instead of hold) when the signal is lost.
    pub ease_off_on_loss: bool,
    /// Feedback faster than this is ignored, s.
    pub feedback_min_interval_s: f64,
    /// The target before any `exercise` message.
    pub default_target: Target,
    /// The named targets' bands.
    pub bands: Bands,
    /// Time constant of the smoothing of the composite z the decisions use, s (0: none).
    pub smooth_z_tau_s: f64,
    /// Heart rate alone at or above this z (with the composite at least `fast_composite_z`)
    /// also counts as above the band: the fast feature may act before the slow ones respond
    /// (∞: off).
    pub fast_hr_z: f64,
    /// See `fast_hr_z`.
    pub fast_composite_z: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            hysteresis_z: 0.5,
            min_dwell_s: 10.0,
            high_sustain_s: 2.0,
            population_high_z: 3.0,
            escalate_sustain_s: 60.0,
            escalate_min_confidence: 0.5,
            escalate_quiet_s: 120.0,
            escalate_rate_limit_s: 300.0,
            onset_rise_z: 1.0,
            onset_window_s: 20.0,
            ease_off_on_loss: false,
            feedback_min_interval_s: 30.0,
            default_target: Target::Engaged,
            bands: Bands::default(),
            smooth_z_tau_s: 0.0,
            fast_hr_z: 3.0,
            fast_composite_z: 1.5,
        }
    }
}

/// What the exercise should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Make it easier / calmer.
    EaseOff,
    /// Keep it as it is.
    Hold,
    /// Make it harder / more intense.
    Escalate,
}

impl Action {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::EaseOff => "ease_off",
            Self::Hold => "hold",
            Self::Escalate => "escalate",
        }
    }

    /// From its wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ease_off" => Some(Self::EaseOff),
            "hold" => Some(Self::Hold),
            "escalate" => Some(Self::Escalate),
            _ => None,
        }
    }
}

/// Arousal relative to the participant's calm reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArousalState {
    /// Below the target band.
    Low,
    /// In it.
    Normal,
    /// Above it.
    High,
    /// Not known (no reference or no data).
    Unknown,
}

impl ArousalState {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Unknown => "unknown",
        }
    }
}

/// The rule that produced a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Not enough data for features yet.
    WarmingUp,
    /// Collecting the session calibration; the population prior shows nothing to act on.
    Calibrating,
    /// No usable feature: fail-safe hold.
    NoData,
    /// No usable feature any more, and the configuration eases off on loss.
    SignalLost,
    /// Arousal above the band.
    HighArousal,
    /// Arousal in the band.
    BaselineArousal,
    /// Arousal below the band, and the safeguard lets it escalate.
    LowArousal,
    /// Arousal below the band, but the escalation safeguard holds.
    EscalateBlocked,
    /// The state would change, but the minimum dwell time has not passed.
    MinDwell,
    /// A researcher pinned the action.
    Override,
}

impl Rule {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::WarmingUp => "warming_up",
            Self::Calibrating => "calibrating",
            Self::NoData => "no_data",
            Self::SignalLost => "signal_lost",
            Self::HighArousal => "high_arousal",
            Self::BaselineArousal => "baseline_arousal",
            Self::LowArousal => "low_arousal",
            Self::EscalateBlocked => "escalate_blocked",
            Self::MinDwell => "min_dwell",
            Self::Override => "override",
        }
    }
}

/// The reference a decision used, as its reason shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineInfo {
    /// Population, session or personal.
    pub kind: BaselineKind,
    /// Calibration start, s (session stream time; 0 for population and personal).
    pub from_s: f64,
    /// Calibration end, s.
    pub to_s: f64,
    /// Calibration windows.
    pub windows: usize,
    /// Feature frames of the calibration.
    pub frames: usize,
    /// Why it may not be calm.
    pub suspect: Option<&'static str>,
    /// Clusters of its calibration.
    pub clusters: Option<ClusterSummary>,
    /// Times it was moved to a calmer level since calibration (the person settled).
    pub rebased: u32,
}

/// The target in force, as the reason shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetInfo {
    /// The target.
    pub target: Target,
    /// The band's bottom after feedback, composite z (−∞: never escalates).
    pub z_low: f64,
    /// The band's top after feedback (+∞: never eases off).
    pub z_high: f64,
    /// The feedback shift in it.
    pub shift_z: f64,
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Tick time, s.
    pub t: f64,
    /// What to do.
    pub action: Action,
    /// Arousal 0..1, if known.
    pub arousal: Option<f64>,
    /// Confidence 0..1.
    pub confidence: f64,
    /// Arousal state.
    pub state: ArousalState,
    /// The rule that fired.
    pub rule: Rule,
    /// Composite z, if known.
    pub composite_z: Option<f64>,
    /// The features considered.
    pub terms: Vec<Term>,
    /// Seconds spent in the current arousal state.
    pub dwell_s: f64,
    /// The reference used, once there is one.
    pub baseline: Option<BaselineInfo>,
    /// The target.
    pub target: TargetInfo,
    /// The safeguard condition that held back an escalation.
    pub blocked: Option<&'static str>,
}

impl Decision {
    /// One human-readable sentence.
    pub fn summary(&self) -> String {
        explain(self)
    }
}

fn explain(d: &Decision) -> String {
    let base = match &d.baseline {
        Some(b) => {
            let mut s = match b.kind {
                BaselineKind::Population => "resting norms of the population".to_string(),
                BaselineKind::Session => {
                    format!(
                        "this session's calibration ({:.0}–{:.0} s)",
                        b.from_s, b.to_s
                    )
                }
                BaselineKind::Personal => "the personal profile".to_string(),
            };
            if let Some(why) = b.suspect {
                s.push_str(&format!(", which may not have been calm ({why})"));
            }
            if b.rebased > 0 {
                s.push_str(", moved to a calmer level since");
            }
            s
        }
        None => "no baseline yet".to_string(),
    };
    let mut used: Vec<&Term> = d.terms.iter().filter(|t| t.weight > 0.0).collect();
    used.sort_by(|a, b| {
        let c = |t: &Term| t.weight * t.z.unwrap_or(0.0).abs();
        c(b).total_cmp(&c(a))
    });
    let feats = used
        .iter()
        .take(3)
        .map(|t| format!("{} z {:+.1}", t.name(), t.z.unwrap_or(0.0)))
        .collect::<Vec<_>>()
        .join(", ");
    let z = d.composite_z.unwrap_or(0.0);
    let head = match d.rule {
        Rule::WarmingUp => return "Waiting for enough data to compute features.".into(),
        Rule::Calibrating => {
            return format!(
                "Calibrating; against {base} nothing calls for a change (composite z {z:+.2}); holding."
            );
        }
        Rule::NoData => return "No usable feature right now; holding (fail-safe).".into(),
        Rule::SignalLost => {
            return "The signal was lost; easing off (configured fail-safe).".into();
        }
        Rule::Override => {
            return format!("A researcher set the action to {}.", d.action.name());
        }
        Rule::HighArousal => "Arousal above the target band; easing off",
        Rule::BaselineArousal => "Arousal within the target band; holding",
        Rule::LowArousal => "Arousal below the target band for long enough; escalating",
        Rule::EscalateBlocked => "Arousal below the target band, but escalating is held back",
        Rule::MinDwell => "A change is due but held for the minimum dwell",
    };
    let blocked = d.blocked.map(|b| format!(" ({b})")).unwrap_or_default();
    format!(
        "{head}{blocked}: composite z {z:+.2} ({feats}) against {base}; target {}, confidence {:.2}.",
        d.target.target.name(),
        d.confidence
    )
}

/// The policy state of one participant.
#[derive(Debug, Clone)]
pub struct Policy {
    cfg: PolicyConfig,
    state: ArousalState,
    since: f64,
    target: Target,
    feedback: FeedbackShift,
    pinned: Option<Action>,
    above_since: Option<f64>,
    low_since: Option<f64>,
    low_features: u8,
    last_high_t: Option<f64>,
    last_escalate_entry: Option<f64>,
    escalating: bool,
    had_data: bool,
    z_hist: VecDeque<(f64, f64)>,
    z_smooth: Option<(f64, f64)>,
}

impl Policy {
    /// A fresh policy.
    pub fn new(cfg: PolicyConfig) -> Self {
        Self {
            target: cfg.default_target,
            cfg,
            state: ArousalState::Unknown,
            since: 0.0,
            feedback: FeedbackShift::default(),
            pinned: None,
            above_since: None,
            low_since: None,
            low_features: 0,
            last_high_t: None,
            last_escalate_entry: None,
            escalating: false,
            had_data: false,
            z_hist: VecDeque::new(),
            z_smooth: None,
        }
    }

    /// Settings.
    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// Sets the exercise's target (`None`: back to the default).
    pub fn set_target(&mut self, t: Option<Target>) {
        self.target = t.unwrap_or(self.cfg.default_target);
    }

    /// The target in force.
    pub fn target(&self) -> Target {
        self.target
    }

    /// Applies a participant's rating at `t`; false when ignored as flooding.
    pub fn feedback(&mut self, r: Rating, t: f64) -> bool {
        self.feedback.apply(r, t, self.cfg.feedback_min_interval_s)
    }

    /// The feedback shift (to keep in the profile).
    pub fn feedback_shift(&self) -> FeedbackShift {
        self.feedback
    }

    /// Restores a stored feedback shift.
    pub fn restore_feedback(&mut self, shift_z: f64) {
        self.feedback = FeedbackShift::new(shift_z);
    }

    /// Pins the action (`None`: automatic again).
    pub fn set_override(&mut self, a: Option<Action>) {
        self.pinned = a;
    }

    /// The pinned action, if any.
    pub fn pinned(&self) -> Option<Action> {
        self.pinned
    }

    fn target_info(&self, kind: Option<BaselineKind>) -> TargetInfo {
        let (lo, hi) = self.target.z_band(&self.cfg.bands);
        let s = self.feedback.shift_z;
        let (mut lo, mut hi) = (lo + s, hi + s);
        if kind == Some(BaselineKind::Population) {
            lo = f64::NEG_INFINITY;
            hi = hi.max(self.cfg.population_high_z);
        }
        TargetInfo {
            target: self.target,
            z_low: lo,
            z_high: hi,
            shift_z: s,
        }
    }

    /// A hold before any reference exists.
    pub fn waiting(&self, t: f64, rule: Rule) -> Decision {
        let mut d = Decision {
            t,
            action: Action::Hold,
            arousal: None,
            confidence: 0.0,
            state: ArousalState::Unknown,
            rule,
            composite_z: None,
            terms: Vec::new(),
            dwell_s: 0.0,
            baseline: None,
            target: self.target_info(None),
            blocked: None,
        };
        if let Some(a) = self.pinned {
            d.action = a;
            d.rule = Rule::Override;
        }
        d
    }

    /// Decides at `t` on `score` against the reference described by `base`. `calibrating`:
    /// the session calibration is still running (a hold the prior does not overrule is then
    /// `calibrating`).
    pub fn decide(
        &mut self,
        t: f64,
        score: Score,
        base: BaselineInfo,
        calibrating: bool,
    ) -> Decision {
        let info = self.target_info(Some(base.kind));
        let Some(raw) = score.composite else {
            let lost = self.had_data && self.cfg.ease_off_on_loss;
            self.reset_tracking();
            self.state = ArousalState::Unknown;
            let mut d = self.waiting(t, if lost { Rule::SignalLost } else { Rule::NoData });
            if lost && d.rule != Rule::Override {
                d.action = Action::EaseOff;
            }
            d.terms = score.terms;
            d.baseline = Some(base);
            d.target = info;
            return d;
        };
        self.had_data = true;
        let c = self.cfg.clone();
        let z = match self.z_smooth {
            Some((u, s)) if c.smooth_z_tau_s > 0.0 => {
                let a = 1.0 - (-(t - u).clamp(0.0, 1.0) / c.smooth_z_tau_s).exp();
                s + a * (raw - s)
            }
            _ => raw,
        };
        self.z_smooth = Some((t, z));
        self.z_hist.push_back((t, z));
        while self
            .z_hist
            .front()
            .is_some_and(|(u, _)| t - u > c.onset_window_s)
        {
            self.z_hist.pop_front();
        }
        // High, with a short sustain; heart rate alone may carry it while the slow features lag.
        let hr_z = score
            .terms
            .iter()
            .find(|t| t.index == 0 && t.weight > 0.0)
            .and_then(|t| t.z);
        let fast = info.z_high.is_finite()
            && hr_z.is_some_and(|h| h >= c.fast_hr_z + (info.z_high - c.bands.engaged.1))
            && z >= c.fast_composite_z;
        if z >= info.z_high || fast {
            self.above_since.get_or_insert(t);
        } else {
            self.above_since = None;
        }
        let high_now = self
            .above_since
            .is_some_and(|s| t - s + 1e-9 >= c.high_sustain_s);
        let candidate = match self.state {
            ArousalState::High if z >= info.z_high - c.hysteresis_z => ArousalState::High,
            ArousalState::Low if z <= info.z_low + c.hysteresis_z => ArousalState::Low,
            _ if high_now => ArousalState::High,
            _ if z <= info.z_low => ArousalState::Low,
            _ => ArousalState::Normal,
        };
        let mut rule = None;
        if candidate != self.state {
            if self.state == ArousalState::Unknown || t - self.since >= c.min_dwell_s {
                self.state = candidate;
                self.since = t;
            } else {
                rule = Some(Rule::MinDwell);
            }
        }
        if self.state == ArousalState::High {
            self.last_high_t = Some(t);
        }
        // Escalation tracking: low, at good quality, with the same features.
        let features = score
            .terms
            .iter()
            .filter(|t| t.weight > 0.0)
            .fold(0u8, |m, t| m | (1 << t.index));
        let good = score.confidence >= c.escalate_min_confidence
            && score.terms.iter().all(|t| t.weight == 0.0 || !t.degraded);
        if z <= info.z_low && good && (self.low_since.is_none() || features == self.low_features) {
            self.low_since.get_or_insert(t);
            self.low_features = features;
        } else {
            self.low_since = None;
        }
        let mut blocked = None;
        let action = match self.state {
            ArousalState::High => {
                self.escalating = false;
                Action::EaseOff
            }
            ArousalState::Low => {
                let min_z = self
                    .z_hist
                    .iter()
                    .map(|p| p.1)
                    .fold(f64::INFINITY, f64::min);
                let why = if info.z_low == f64::NEG_INFINITY {
                    Some(if base.kind == BaselineKind::Population {
                        "population_baseline"
                    } else {
                        "target"
                    })
                } else if base.suspect.is_some() {
                    Some("baseline_not_calm")
                } else if !good {
                    Some("quality")
                } else if self.low_since.is_none_or(|s| t - s < c.escalate_sustain_s) {
                    Some("not_sustained")
                } else if self.last_high_t.is_some_and(|h| t - h < c.escalate_quiet_s) {
                    Some("recent_high")
                } else if z - min_z >= c.onset_rise_z {
                    Some("rising")
                } else if !self.escalating
                    && self
                        .last_escalate_entry
                        .is_some_and(|e| t - e < c.escalate_rate_limit_s)
                {
                    Some("rate_limited")
                } else {
                    None
                };
                match why {
                    None => {
                        if !self.escalating {
                            self.last_escalate_entry = Some(t);
                        }
                        self.escalating = true;
                        Action::Escalate
                    }
                    Some(w) => {
                        self.escalating = false;
                        blocked = Some(w);
                        Action::Hold
                    }
                }
            }
            ArousalState::Normal | ArousalState::Unknown => {
                self.escalating = false;
                Action::Hold
            }
        };
        let rule = rule.unwrap_or(match (self.state, action) {
            (ArousalState::High, _) => Rule::HighArousal,
            (ArousalState::Low, Action::Escalate) => Rule::LowArousal,
            (ArousalState::Low, _) => Rule::EscalateBlocked,
            _ if calibrating => Rule::Calibrating,
            _ => Rule::BaselineArousal,
        });
        let mut d = Decision {
            t,
            action,
            arousal: Some(1.0 / (1.0 + (-z).exp())),
            confidence: score.confidence,
            state: self.state,
            rule,
            composite_z: Some(z),
            terms: score.terms,
            dwell_s: t - self.since,
            baseline: Some(base),
            target: info,
            blocked,
        };
        if let Some(a) = self.pinned {
            d.action = a;
            d.rule = Rule::Override;
        }
        d
    }

    fn reset_tracking(&mut self) {
        self.above_since = None;
        self.low_since = None;
        self.escalating = false;
        self.z_hist.clear();
        self.z_smooth = None;
    }
}

#[cfg(test)]
mod tests;
