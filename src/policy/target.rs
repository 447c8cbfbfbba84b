//! Exercise targets and the participant's feedback: the arousal band the policy steers into.
//!
//! Pure. A target is a band of `arousal` (0..1, 0.5 = the participant's calm reference, the
//! logistic of the composite z). The policy eases off above the band's top and may escalate
//! below its bottom. The named targets:
//!
//! | target | band (arousal) | composite z | meaning |
//! |---|---|---|---|
//! | `engaged` (default) | 0.119–0.909 | −2 … +2.3 | stay near the calm reference; ease off on clear arousal |
//! | `calm` | 0–0.818 | −∞ … +1.5 | relaxation, breathing: ease off earlier, **never escalate** |
//! | `challenge` | 0.378–0.953 | −0.5 … +3 | some arousal is wanted: escalate sooner, ease off later |
//! | bounds `{low, high}` | as given, 0 ≤ low < high ≤ 1 | logit(low) … logit(high) | `low = 0` never escalates, `high = 1` never eases off |
//!
//! **Feedback** moves the band, per participant (DESIGN.md `feedback` message): `too_intense`
//! shifts it down by 0.25 z (ease off sooner, escalate later), `too_easy` up by 0.25 z, `right`
//! halves the shift (the person confirms the current setting, so the next correction is
//! smaller only if it was needed). The shift is bounded to ±1 z, so feedback can never make the
//! band leave ±3 z of where the target put it. Feedback counts at most once every
//! `feedback_min_interval_s` (30 s); faster feedback is ignored and counted (flooding).

/// Shift per `too_intense` / `too_easy`, in composite z.
pub const FEEDBACK_STEP_Z: f64 = 0.25;
/// Bound of the feedback shift, in composite z.
pub const FEEDBACK_MAX_Z: f64 = 1.0;

/// The named targets' bands in composite z (module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    /// `engaged`: (bottom, top).
    pub engaged: (f64, f64),
    /// `calm`: top (no bottom).
    pub calm_high: f64,
    /// `challenge`: (bottom, top).
    pub challenge: (f64, f64),
}

impl Default for Bands {
    fn default() -> Self {
        Self {
            engaged: (-2.0, 2.3),
            calm_high: 1.5,
            challenge: (-0.5, 3.0),
        }
    }
}

/// What the exercise wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Calm the person down.
    Calm,
    /// Keep them near their calm reference.
    Engaged,
    /// Challenge them.
    Challenge,
    /// An explicit arousal band.
    Bounds {
        /// Bottom, 0..1.
        low: f64,
        /// Top, 0..1.
        high: f64,
    },
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// Bounds outside 0..1 or not increasing.
    #[error("target bounds must satisfy 0 <= low < high <= 1 (got low {low}, high {high})")]
    Bounds {
        /// Bottom.
        low: f64,
        /// Top.
        high: f64,
    },
    /// An unknown name.
    #[error("unknown target {0:?} (calm, engaged, challenge, or {{\"low\":…,\"high\":…}})")]
    Unknown(String),
}

impl Target {
    /// A named target.
    pub fn named(name: &str) -> Result<Self, TargetError> {
        match name {
            "calm" => Ok(Self::Calm),
            "engaged" => Ok(Self::Engaged),
            "challenge" => Ok(Self::Challenge),
            other => Err(TargetError::Unknown(other.to_string())),
        }
    }

    /// An explicit band, checked.
    pub fn bounds(low: f64, high: f64) -> Result<Self, TargetError> {
        if low.is_finite() && high.is_finite() && 0.0 <= low && low < high && high <= 1.0 {
            Ok(Self::Bounds { low, high })
        } else {
            Err(TargetError::Bounds { low, high })
        }
    }

    /// Wire name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Calm => "calm",
            Self::Engaged => "engaged",
            Self::Challenge => "challenge",
            Self::Bounds { .. } => "bounds",
        }
    }

    /// The band in composite z: (escalate below, ease off above); infinite where the target
    /// never acts.
    pub fn z_band(self, bands: &Bands) -> (f64, f64) {
        match self {
            Self::Calm => (f64::NEG_INFINITY, bands.calm_high),
            Self::Engaged => bands.engaged,
            Self::Challenge => bands.challenge,
            Self::Bounds { low, high } => (logit(low), logit(high)),
        }
    }
}

/// logit, with ±∞ at 0 and 1.
pub fn logit(p: f64) -> f64 {
    if p <= 0.0 {
        f64::NEG_INFINITY
    } else if p >= 1.0 {
        f64::INFINITY
    } else {
        (p / (1.0 - p)).ln()
    }
}

/// A `feedback` rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rating {
    /// The exercise felt too intense.
    TooIntense,
    /// About right.
    Right,
    /// Too easy.
    TooEasy,
}

impl Rating {
    /// From its wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "too_intense" => Some(Self::TooIntense),
            "right" => Some(Self::Right),
            "too_easy" => Some(Self::TooEasy),
            _ => None,
        }
    }
}

/// The band shift learned from feedback, with its flood guard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedbackShift {
    /// Shift of the band, composite z (negative: eases off sooner).
    pub shift_z: f64,
    /// Ratings taken.
    pub taken: u64,
    /// Ratings ignored as flooding.
    pub ignored: u64,
    last_t: Option<f64>,
}

impl Default for FeedbackShift {
    fn default() -> Self {
        Self::new(0.0)
    }
}

impl FeedbackShift {
    /// Starting from a stored shift (clamped to the bound; non-finite → 0).
    pub fn new(shift_z: f64) -> Self {
        let s = if shift_z.is_finite() { shift_z } else { 0.0 };
        Self {
            shift_z: s.clamp(-FEEDBACK_MAX_Z, FEEDBACK_MAX_Z),
            taken: 0,
            ignored: 0,
            last_t: None,
        }
    }

    /// Applies a rating at stream time `t`; false if ignored as flooding.
    pub fn apply(&mut self, r: Rating, t: f64, min_interval_s: f64) -> bool {
        if self.last_t.is_some_and(|l| t - l < min_interval_s) {
            self.ignored += 1;
            return false;
        }
        self.last_t = Some(t);
        self.taken += 1;
        self.shift_z = match r {
            Rating::TooIntense => self.shift_z - FEEDBACK_STEP_Z,
            Rating::TooEasy => self.shift_z + FEEDBACK_STEP_Z,
            Rating::Right => self.shift_z * 0.5,
        }
        .clamp(-FEEDBACK_MAX_Z, FEEDBACK_MAX_Z);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_of_the_named_targets() {
        let b = Bands::default();
        assert_eq!(Target::Engaged.z_band(&b), (-2.0, 2.3));
        assert_eq!(Target::Calm.z_band(&b).0, f64::NEG_INFINITY);
        let (lo, hi) = Target::bounds(0.0, 0.5).unwrap().z_band(&b);
        assert_eq!((lo, hi), (f64::NEG_INFINITY, 0.0));
        assert!((logit(0.8807970779778823) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn bad_targets_are_refused_with_one_line() {
        for (lo, hi) in [
            (-0.1, 0.5),
            (0.6, 0.5),
            (0.2, 1.2),
            (f64::NAN, 0.5),
            (0.5, 0.5),
        ] {
            let e = Target::bounds(lo, hi).unwrap_err();
            assert!(e.to_string().starts_with("target bounds"), "{e}");
        }
        assert!(Target::named("frantic").is_err());
    }

    #[test]
    fn feedback_is_bounded_and_flood_guarded() {
        let mut f = FeedbackShift::default();
        assert!(f.apply(Rating::TooIntense, 0.0, 30.0));
        assert!(!f.apply(Rating::TooIntense, 10.0, 30.0));
        assert_eq!((f.shift_z, f.taken, f.ignored), (-0.25, 1, 1));
        for k in 1..20 {
            f.apply(Rating::TooIntense, 30.0 * k as f64, 30.0);
        }
        assert_eq!(f.shift_z, -FEEDBACK_MAX_Z);
        f.apply(Rating::Right, 1000.0, 30.0);
        assert_eq!(f.shift_z, -0.5);
        f.apply(Rating::TooEasy, 1100.0, 30.0);
        assert_eq!(f.shift_z, -0.25);
        assert_eq!(FeedbackShift::new(f64::NAN).shift_z, 0.0);
        assert_eq!(FeedbackShift::new(7.0).shift_z, 1.0);
    }
}
