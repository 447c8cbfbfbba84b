//! Adaptation policy: features and baseline in, one explained decision out. Pure.
//!
//! Composite arousal: the mean of the signed z-scores of the features that have both a value and
//! a baseline: `+z(hr_bpm)`, `−z(rmssd_ms)` (vagal withdrawal lowers RMSSD under stress),
//! `+z(scl_us)`, `+z(scr_per_min)`. Sympathetic arousal raises heart rate, skin conductance level
//! and the rate of non-specific SCRs (SIGNALS.md §5; Boucsein 2012). `arousal` =
//! logistic(composite z), so 0.5 is the participant's own baseline.
//!
//! Arousal state with hysteresis: enter `high` at z ≥ 1.5 and leave below 1.0; enter `low` at
//! z ≤ −1.5 and leave above −1.0; otherwise `normal`. A state is kept for at least `min_dwell_s`
//! (10 s) before it may change, so the exercise does not flip-flop. Action for the default target
//! (`engaged`): high → `ease_off`, normal → `hold`, low → `escalate`.
//!
//! Fail-safe: before a baseline exists (`warming_up`, `calibrating`) and whenever no feature is
//! usable (`no_data`), the action is `hold` with confidence 0; attune never escalates on missing
//! data. Confidence = (features used / 4) × (1 − 0.5 · share of used features whose stream is
//! degraded); it is 1 only when all four features are fresh.
//!
//! These thresholds are attune's first, documented choice; they are not a validated clinical rule.

use crate::baseline::{Baseline, FeatureStats};
use crate::features::{FEATURE_NAMES, FeatureFrame};

/// Policy settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Enter `high` at composite z ≥ this.
    pub enter_high: f64,
    /// Leave `high` below this.
    pub exit_high: f64,
    /// Enter `low` at composite z ≤ this.
    pub enter_low: f64,
    /// Leave `low` above this.
    pub exit_low: f64,
    /// Minimum time in a state before it may change, s.
    pub min_dwell_s: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            enter_high: 1.5,
            exit_high: 1.0,
            enter_low: -1.5,
            exit_low: -1.0,
            min_dwell_s: 10.0,
        }
    }
}

/// Direction in which each feature's z enters the composite, [`FEATURE_NAMES`] order.
pub const DIRECTIONS: [f64; 4] = [1.0, -1.0, 1.0, 1.0];

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
}

/// Arousal relative to the participant's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArousalState {
    /// Below baseline.
    Low,
    /// Around baseline.
    Normal,
    /// Above baseline.
    High,
    /// Not known (no baseline or no data).
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

    fn action(self) -> Action {
        match self {
            Self::High => Action::EaseOff,
            Self::Low => Action::Escalate,
            Self::Normal | Self::Unknown => Action::Hold,
        }
    }
}

/// The rule that produced a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Not enough data for features yet.
    WarmingUp,
    /// Collecting the provisional baseline.
    Calibrating,
    /// No usable feature: fail-safe hold.
    NoData,
    /// Composite arousal high.
    HighArousal,
    /// Composite arousal around baseline.
    BaselineArousal,
    /// Composite arousal low.
    LowArousal,
    /// The state would change, but the minimum dwell time has not passed.
    MinDwell,
}

impl Rule {
    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::WarmingUp => "warming_up",
            Self::Calibrating => "calibrating",
            Self::NoData => "no_data",
            Self::HighArousal => "high_arousal",
            Self::BaselineArousal => "baseline_arousal",
            Self::LowArousal => "low_arousal",
            Self::MinDwell => "min_dwell",
        }
    }
}

/// One feature's part in a decision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureTerm {
    /// Index into [`FEATURE_NAMES`].
    pub index: usize,
    /// Current value.
    pub value: Option<f64>,
    /// z-score against the baseline.
    pub z: Option<f64>,
    /// Baseline statistics.
    pub stats: Option<FeatureStats>,
    /// Whether the feature's stream is degraded (low quality, stale).
    pub degraded: bool,
    /// The stream the value came from.
    pub source: crate::model::StreamKind,
}

impl FeatureTerm {
    /// Feature name.
    pub fn name(&self) -> &'static str {
        FEATURE_NAMES[self.index]
    }
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Tick time, s.
    pub t: f64,
    /// What to do.
    pub action: Action,
    /// Arousal 0..1 (logistic of composite z), if known.
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
    pub terms: Vec<FeatureTerm>,
    /// Seconds spent in the current arousal state.
    pub dwell_s: f64,
}

impl Decision {
    /// One human-readable sentence.
    pub fn summary(&self, cfg: &PolicyConfig) -> String {
        match (self.rule, self.composite_z) {
            (Rule::WarmingUp, _) => "Waiting for enough data to compute features.".into(),
            (Rule::Calibrating, _) => "Collecting the provisional baseline.".into(),
            (Rule::NoData, _) => "No usable feature right now; holding.".into(),
            (Rule::HighArousal, Some(z)) => format!(
                "Arousal above baseline (composite z {z:+.2}; high from {:+.2} until below {:+.2}).",
                cfg.enter_high, cfg.exit_high
            ),
            (Rule::LowArousal, Some(z)) => format!(
                "Arousal below baseline (composite z {z:+.2}; low from {:+.2} until above {:+.2}).",
                cfg.enter_low, cfg.exit_low
            ),
            (Rule::BaselineArousal, Some(z)) => {
                format!("Arousal near baseline (composite z {z:+.2}).")
            }
            (Rule::MinDwell, Some(z)) => format!(
                "Composite z {z:+.2} suggests a change, held for the minimum dwell of {} s.",
                cfg.min_dwell_s
            ),
            (_, None) => "No composite score.".into(),
        }
    }
}

/// The policy state of one participant.
#[derive(Debug, Clone)]
pub struct Policy {
    cfg: PolicyConfig,
    state: ArousalState,
    since: f64,
}

impl Policy {
    /// A fresh policy.
    pub fn new(cfg: PolicyConfig) -> Self {
        Self {
            cfg,
            state: ArousalState::Unknown,
            since: 0.0,
        }
    }

    /// Settings.
    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// A hold decision before a baseline exists.
    pub fn waiting(&self, t: f64, rule: Rule) -> Decision {
        Decision {
            t,
            action: Action::Hold,
            arousal: None,
            confidence: 0.0,
            state: ArousalState::Unknown,
            rule,
            composite_z: None,
            terms: Vec::new(),
            dwell_s: 0.0,
        }
    }

    /// Decides at tick `f.t`. `usable[i]`: feature i may be used (its stream has `adapt`
    /// consent); `degraded[i]`: its stream is degraded.
    pub fn decide(
        &mut self,
        f: &FeatureFrame,
        base: &Baseline,
        usable: [bool; 4],
        degraded: [bool; 4],
    ) -> Decision {
        let t = f.t;
        let mut terms = Vec::with_capacity(4);
        let (mut sum, mut n, mut n_degraded) = (0.0, 0usize, 0usize);
        for i in 0..4 {
            if !usable[i] {
                continue;
            }
            let stats = base.stats[i];
            let value = f.values[i];
            let z = match (value, stats) {
                (Some(v), Some(s)) => Some(s.z(v)),
                _ => None,
            };
            if let Some(z) = z {
                sum += DIRECTIONS[i] * z;
                n += 1;
                n_degraded += usize::from(degraded[i]);
            }
            terms.push(FeatureTerm {
                index: i,
                value,
                z,
                stats,
                degraded: degraded[i],
                source: f.sources[i],
            });
        }
        if n == 0 {
            let mut d = self.waiting(t, Rule::NoData);
            d.terms = terms;
            return d;
        }
        let z = sum / n as f64;
        let c = &self.cfg;
        let candidate = match self.state {
            ArousalState::High if z >= c.exit_high => ArousalState::High,
            ArousalState::Low if z <= c.exit_low => ArousalState::Low,
            _ if z >= c.enter_high => ArousalState::High,
            _ if z <= c.enter_low => ArousalState::Low,
            _ => ArousalState::Normal,
        };
        let mut rule = match candidate {
            ArousalState::High => Rule::HighArousal,
            ArousalState::Low => Rule::LowArousal,
            _ => Rule::BaselineArousal,
        };
        if candidate != self.state {
            if self.state == ArousalState::Unknown || t - self.since >= c.min_dwell_s {
                self.state = candidate;
                self.since = t;
            } else {
                rule = Rule::MinDwell;
            }
        }
        let confidence = (n as f64 / 4.0) * (1.0 - 0.5 * n_degraded as f64 / n as f64);
        Decision {
            t,
            action: self.state.action(),
            arousal: Some(1.0 / (1.0 + (-z).exp())),
            confidence,
            state: self.state,
            rule,
            composite_z: Some(z),
            terms,
            dwell_s: t - self.since,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Baseline {
        let s = Some(FeatureStats {
            median: 0.0,
            scale: 1.0,
        });
        Baseline {
            from_s: 0.0,
            to_s: 120.0,
            frames: 480,
            stats: [s, s, s, s],
        }
    }

    /// A frame whose composite z is exactly `z` (all four features agree).
    fn frame(t: f64, z: f64) -> FeatureFrame {
        FeatureFrame {
            values: [Some(z), Some(-z), Some(z), Some(z)],
            ..FeatureFrame::empty(t)
        }
    }

    #[test]
    fn hysteresis_and_dwell() {
        let mut p = Policy::new(PolicyConfig::default());
        let b = base();
        let all = [true; 4];
        let ok = [false; 4];
        let d = p.decide(&frame(0.0, 0.2), &b, all, ok);
        assert_eq!((d.action, d.rule), (Action::Hold, Rule::BaselineArousal));
        // Above the enter threshold, but the normal state is only 1 s old: dwell holds.
        let d = p.decide(&frame(1.0, 2.0), &b, all, ok);
        assert_eq!((d.action, d.rule), (Action::Hold, Rule::MinDwell));
        let d = p.decide(&frame(10.0, 2.0), &b, all, ok);
        assert_eq!((d.action, d.state), (Action::EaseOff, ArousalState::High));
        // Between exit and enter: stays high (hysteresis).
        let d = p.decide(&frame(25.0, 1.2), &b, all, ok);
        assert_eq!(d.action, Action::EaseOff);
        let d = p.decide(&frame(30.0, 0.5), &b, all, ok);
        assert_eq!((d.action, d.state), (Action::Hold, ArousalState::Normal));
        let d = p.decide(&frame(45.0, -1.6), &b, all, ok);
        assert_eq!(d.action, Action::Escalate);
        assert!((d.arousal.unwrap() - 1.0 / (1.0 + 1.6f64.exp())).abs() < 1e-12);
        assert_eq!(d.confidence, 1.0);
    }

    #[test]
    fn rmssd_counts_negatively_and_missing_data_holds() {
        let mut p = Policy::new(PolicyConfig::default());
        let b = base();
        let f = FeatureFrame {
            values: [None, Some(-3.0), None, None],
            ..FeatureFrame::empty(0.0)
        };
        let d = p.decide(&f, &b, [true; 4], [false; 4]);
        assert_eq!(d.composite_z, Some(3.0));
        assert_eq!(d.confidence, 0.25);
        let none = FeatureFrame::empty(1.0);
        let d = p.decide(&none, &b, [true; 4], [false; 4]);
        assert_eq!(
            (d.action, d.rule, d.confidence),
            (Action::Hold, Rule::NoData, 0.0)
        );
        // Features without adapt consent are not used.
        let d = p.decide(&frame(2.0, 3.0), &b, [false; 4], [false; 4]);
        assert_eq!(d.rule, Rule::NoData);
    }
}
