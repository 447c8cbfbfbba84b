//! A participant's stored baseline profile: the calm reference kept across sessions under
//! `profile` consent, refined by each calm session.
//!
//! Pure (no I/O, no clock: callers pass `now_ms`). The profile is plain JSON (serde); the
//! store keeps it in the participant's `profile` tree under [`PROFILE_ENTRY`] (`baseline`),
//! and only while the participant has `profile` consent (the caller checks; see
//! `cli::calibrate`).
//!
//! # Rules
//!
//! - [`Profile::new`] starts a profile from one session's reference: `sessions` = 1, the
//!   reference's statistics as they are.
//! - [`Profile::refine`] takes a later session's reference, **unless**
//!   - `calibrate::compare(session, profile) ≥ 1.5` ([`REFUSE_AROUSED_Z`]): the session sat
//!     well above this person's own calm, and an aroused calibration is not taken as calm
//!     (refused with `aroused_vs_profile`), or
//!   - the session's reference is `suspect` (e.g. `aroused_vs_population`).
//!
//!   A refused session is recorded in `history` with `taken = false`; nothing else changes
//!   (not `sessions`, not `updated_unix_ms`, not the statistics).
//! - A taken session is blended in with weight `w_new = max(1 / (sessions + 1), 0.2)`
//!   ([`MIN_WEIGHT_NEW`]), where `sessions` counts the sessions already in the profile: the
//!   second session weighs ½, the third ⅓, the fourth ¼, the fifth and every later one 0.2.
//!   Up to five sessions this is the plain mean of all of them; after that older sessions
//!   still count together for more, but a profile keeps learning (an exponential forgetting
//!   with weight 0.2). Per feature, in its scoring scale ([`super::score::SCALES`]):
//!   `centre = (1 − w)·centre_old + w·centre_new`, `scale = (1 − w)·scale_old + w·scale_new`
//!   when both have statistics; the session's when only it has them; the profile's when only
//!   it has them. A feature is unsupported in the refined profile when the session marks it
//!   so; it becomes supported again when the session has statistics for it and does not mark
//!   it; a session with neither keeps the profile's mark. `windows` and `frames` add up,
//!   `sessions` grows by one and `updated_unix_ms` becomes `now_ms`.
//! - `model` (the calibration's [`ClusterModel`](super::cluster::ClusterModel) with the
//!   features it covers: robust scaler, components ordered by arousal, BIC per k, the data it
//!   was fitted on) starts as the first session's. A later taken session's model is merged
//!   in with the same weight `w` ([`ClusterModel::merge`](super::cluster::ClusterModel::merge):
//!   moment matching of the calm components) when both cover the same features; otherwise the
//!   newer model replaces it. A session without a model leaves it as it is.
//! - [`Profile::reference`] gives the stored reference as a [`Reference`] of kind `personal`
//!   (no time span, not suspect, no cluster summary); stored `unsupported` reasons map back to
//!   the reasons attune knows (`eda_non_responder`), any other text to `unsupported`.
//! - [`Profile::from_json`] accepts only [`PROFILE_FORMAT`] (1), finite numbers, positive
//!   scales and the expected participant; each refusal is one line.

use super::calibrate;
use super::score::{BaselineKind, ClusterSummary, FeatureModel, RefStat, Reference};
use crate::features::FEATURE_NAMES;
use crate::model::ParticipantId;
use serde::{Deserialize, Serialize};

/// The profile format this attune writes and reads.
pub const PROFILE_FORMAT: u32 = 1;
/// The name of the profile's entry in the participant's `profile` tree.
pub const PROFILE_ENTRY: &str = "baseline";
/// The smallest weight a newly taken session gets.
pub const MIN_WEIGHT_NEW: f64 = 0.2;
/// `calibrate::compare(session, profile)` at or above which a session is refused.
pub const REFUSE_AROUSED_Z: f64 = 1.5;

/// The `unsupported` reasons attune knows (anything else reads back as `unsupported`).
const KNOWN_REASONS: [&str; 1] = ["eda_non_responder"];

/// A reference as stored: statistics per feature in its scoring scale, [`FEATURE_NAMES`] order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReference {
    /// Per feature, `None` where there are no statistics.
    pub stats: [Option<RefStat>; 4],
    /// Per feature, why this participant's signals cannot support it.
    pub unsupported: [Option<String>; 4],
    /// Calibration windows over all sessions taken.
    pub windows: usize,
    /// Feature frames over all sessions taken.
    pub frames: usize,
}

/// One session offered to the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// When, ms since the Unix epoch.
    pub at_unix_ms: i64,
    /// Calibration windows of the session.
    pub windows: usize,
    /// Why the session's calibration may not have been calm, if it may not.
    pub suspect: Option<String>,
    /// Whether it was blended into the profile.
    pub taken: bool,
}

/// A participant's stored baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// [`PROFILE_FORMAT`].
    pub format: u32,
    /// Whose.
    pub participant: ParticipantId,
    /// Created, ms since the Unix epoch.
    pub created_unix_ms: i64,
    /// Last session taken, ms since the Unix epoch.
    pub updated_unix_ms: i64,
    /// Sessions taken into the reference.
    pub sessions: u32,
    /// The calm reference.
    pub reference: StoredReference,
    /// The calibration's cluster model and its features, if it was clustered (module doc).
    pub model: Option<FeatureModel>,
    /// The feedback shift the policy learnt (`Pipeline::feedback_shift`), z units.
    pub feedback_shift_z: f64,
    /// Every session offered, oldest first.
    pub history: Vec<SessionEntry>,
}

/// Why a session was not taken into the profile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefineRefused {
    /// The session was well above the profile's calm.
    #[error(
        "the calibration was {z:.2} z above the stored calm reference (refused at {REFUSE_AROUSED_Z}): an aroused calibration is not taken as calm"
    )]
    Aroused {
        /// `calibrate::compare(session, profile)`.
        z: f64,
    },
    /// The session's calibration is suspect.
    #[error("the calibration may not have been calm ({0}): not taken")]
    Suspect(String),
}

impl RefineRefused {
    /// Short reason code (`aroused_vs_profile`, or the suspect reason).
    pub fn code(&self) -> &str {
        match self {
            Self::Aroused { .. } => "aroused_vs_profile",
            Self::Suspect(s) => s,
        }
    }
}

/// Why a stored profile cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// Not a profile (bad JSON or wrong shape).
    #[error("stored profile is not valid: {0}; recalibrate with `attune calibrate`")]
    Invalid(String),
    /// No format number.
    #[error("stored profile has no format number; recalibrate with `attune calibrate`")]
    NoFormat,
    /// An older format.
    #[error(
        "profile format {found} is older than this attune ({PROFILE_FORMAT}); recalibrate with `attune calibrate`"
    )]
    Older {
        /// Format found.
        found: u64,
    },
    /// A newer format.
    #[error(
        "profile format {found} is newer than this attune ({PROFILE_FORMAT}); use a newer attune or recalibrate with `attune calibrate`"
    )]
    Newer {
        /// Format found.
        found: u64,
    },
    /// A number that is not finite, or a scale that is not positive.
    #[error(
        "stored profile has a non-finite or invalid number in {0}; recalibrate with `attune calibrate`"
    )]
    NonFinite(String),
    /// Another participant's profile.
    #[error("stored profile belongs to {found}, not {expected}")]
    Participant {
        /// Participant in the profile.
        found: String,
        /// Participant asked for.
        expected: String,
    },
}

impl Profile {
    /// A profile from one session's reference (`sessions` = 1, taken into history).
    pub fn new(participant: ParticipantId, r: &Reference, now_ms: i64) -> Self {
        Self {
            format: PROFILE_FORMAT,
            participant,
            created_unix_ms: now_ms,
            updated_unix_ms: now_ms,
            sessions: 1,
            reference: StoredReference {
                stats: r.stats,
                unsupported: r.unsupported.map(|u| u.map(str::to_owned)),
                windows: r.windows,
                frames: r.frames,
            },
            model: r.model.as_deref().cloned(),
            feedback_shift_z: 0.0,
            history: vec![SessionEntry {
                at_unix_ms: now_ms,
                windows: r.windows,
                suspect: r.suspect.map(str::to_owned),
                taken: true,
            }],
        }
    }

    /// The weight the next taken session gets: `max(1 / (sessions + 1), 0.2)`.
    pub fn weight_new(&self) -> f64 {
        (1.0 / (f64::from(self.sessions) + 1.0)).max(MIN_WEIGHT_NEW)
    }

    /// Offers a session's reference (module doc: refusals and the blend).
    pub fn refine(&mut self, session: &Reference, now_ms: i64) -> Result<(), RefineRefused> {
        let z = calibrate::compare(session, &self.reference());
        let refused = if z >= REFUSE_AROUSED_Z {
            Some(RefineRefused::Aroused { z })
        } else {
            session
                .suspect
                .map(|s| RefineRefused::Suspect(s.to_owned()))
        };
        if let Some(why) = refused {
            self.history.push(SessionEntry {
                at_unix_ms: now_ms,
                windows: session.windows,
                suspect: Some(why.code().to_owned()),
                taken: false,
            });
            return Err(why);
        }
        let w = self.weight_new();
        let r = &mut self.reference;
        for i in 0..FEATURE_NAMES.len().min(4) {
            r.stats[i] = match (r.stats[i], session.stats[i]) {
                (Some(o), Some(n)) => Some(RefStat {
                    center: (1.0 - w) * o.center + w * n.center,
                    scale: (1.0 - w) * o.scale + w * n.scale,
                }),
                (None, n) => n,
                (o, None) => o,
            };
            if let Some(why) = session.unsupported[i] {
                r.unsupported[i] = Some(why.to_owned());
            } else if session.stats[i].is_some() {
                r.unsupported[i] = None;
            }
        }
        r.windows += session.windows;
        r.frames += session.frames;
        self.model = match (self.model.take(), session.model.as_deref()) {
            (Some(old), Some(new)) if old.features == new.features => Some(FeatureModel {
                features: new.features.clone(),
                model: old.model.merge(&new.model, w),
            }),
            (_, Some(new)) => Some(new.clone()),
            (old, None) => old,
        };
        self.sessions = self.sessions.saturating_add(1);
        self.updated_unix_ms = now_ms;
        self.history.push(SessionEntry {
            at_unix_ms: now_ms,
            windows: session.windows,
            suspect: None,
            taken: true,
        });
        Ok(())
    }

    /// The stored reference as a [`Reference`] of kind `personal`, `age_days` old at `now_ms`
    /// (since the last session taken).
    pub fn reference_at(&self, now_ms: i64) -> Reference {
        let mut r = self.reference();
        r.age_days = (now_ms.saturating_sub(self.updated_unix_ms) as f64 / 86_400_000.0).max(0.0);
        r
    }

    /// The stored reference as a [`Reference`] of kind `personal` (age 0).
    pub fn reference(&self) -> Reference {
        let unsupported = std::array::from_fn(|i| {
            self.reference.unsupported[i].as_deref().map(|s| {
                KNOWN_REASONS
                    .iter()
                    .copied()
                    .find(|k| *k == s)
                    .unwrap_or("unsupported")
            })
        });
        Reference {
            kind: BaselineKind::Personal,
            stats: self.reference.stats,
            unsupported,
            from_s: 0.0,
            to_s: 0.0,
            windows: self.reference.windows,
            frames: self.reference.frames,
            suspect: None,
            clusters: self.model.as_ref().map(|m| {
                let calm = m.model.calm();
                ClusterSummary {
                    k: m.model.components.len(),
                    calm_weight: calm.weight,
                    method: m.model.method.clone(),
                    current: None,
                    calm_posterior: None,
                }
            }),
            model: self.model.clone().map(std::sync::Arc::new),
            age_days: 0.0,
        }
    }

    /// Reads a stored profile of `participant` (module doc: what is refused).
    pub fn from_json(json: &str, participant: &ParticipantId) -> Result<Profile, ProfileError> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(json_error)?;
        Self::from_value(v, participant)
    }

    /// [`Profile::from_json`] of a parsed value (what `ParticipantStore::profile` returns).
    pub fn from_value(
        v: serde_json::Value,
        participant: &ParticipantId,
    ) -> Result<Profile, ProfileError> {
        let format = v
            .get("format")
            .ok_or(ProfileError::NoFormat)?
            .as_u64()
            .ok_or_else(|| ProfileError::Invalid("format is not a whole number".into()))?;
        match format.cmp(&u64::from(PROFILE_FORMAT)) {
            std::cmp::Ordering::Less => return Err(ProfileError::Older { found: format }),
            std::cmp::Ordering::Greater => return Err(ProfileError::Newer { found: format }),
            std::cmp::Ordering::Equal => {}
        }
        if let Some(found) = v.get("participant").and_then(|p| p.as_str())
            && found != participant.as_str()
        {
            return Err(ProfileError::Participant {
                found: found.to_owned(),
                expected: participant.to_string(),
            });
        }
        let p: Profile = serde_json::from_value(v).map_err(json_error)?;
        p.validate()?;
        Ok(p)
    }

    /// Checks that every number is finite and every scale positive.
    pub fn validate(&self) -> Result<(), ProfileError> {
        for (i, s) in self.reference.stats.iter().enumerate() {
            if let Some(s) = s
                && !(s.center.is_finite() && s.scale.is_finite() && s.scale > 0.0)
            {
                return Err(ProfileError::NonFinite(format!(
                    "reference.stats ({})",
                    FEATURE_NAMES[i]
                )));
            }
        }
        if !self.feedback_shift_z.is_finite() {
            return Err(ProfileError::NonFinite("feedback_shift_z".into()));
        }
        if let Some(m) = &self.model {
            check_model(m)?;
        }
        Ok(())
    }

    /// The profile as a JSON value (to store), after [`Profile::validate`].
    pub fn to_value(&self) -> Result<serde_json::Value, ProfileError> {
        self.validate()?;
        serde_json::to_value(self).map_err(|e| ProfileError::Invalid(e.to_string()))
    }
}

/// serde_json's error as a [`ProfileError`]: an out-of-range float (`1e999`) or a `null` where
/// a number belongs (how NaN serialises) is a number error, the rest a shape error.
fn json_error(e: serde_json::Error) -> ProfileError {
    let s = e.to_string();
    if s.contains("out of range") || s.contains("null, expected f64") {
        ProfileError::NonFinite(s)
    } else {
        ProfileError::Invalid(s)
    }
}

/// A stored model must be usable as it is: known features, one per dimension, every vector
/// and matrix of that dimension, finite numbers, positive scales, at least one component.
fn check_model(m: &FeatureModel) -> Result<(), ProfileError> {
    let bad = |what: &str| Err(ProfileError::Invalid(format!("model: {what}")));
    let d = m.features.len();
    if d == 0 || m.indices().is_none() {
        return bad("unknown or no features");
    }
    let fin = |v: &[f64]| v.iter().all(|x| x.is_finite());
    let sc = &m.model.scaler;
    if sc.center.len() != d
        || sc.scale.len() != d
        || m.model.directions.len() != d
        || !fin(&sc.center)
        || !sc.scale.iter().all(|s| s.is_finite() && *s > 0.0)
    {
        return bad("scaler or directions do not match the features");
    }
    if m.model.components.is_empty() {
        return bad("no component");
    }
    for c in &m.model.components {
        if c.mean.len() != d
            || c.cov.len() != d
            || c.cov.iter().any(|row| row.len() != d || !fin(row))
            || !fin(&c.mean)
            || !(c.weight.is_finite() && c.weight >= 0.0)
        {
            return bad("a component does not match the features");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap_or_else(|_| unreachable!())
    }

    fn session(hr: f64, hr_sd: f64, ln_rmssd: f64) -> Reference {
        let mut r = Reference::population();
        r.kind = BaselineKind::Session;
        r.stats = [
            Some(RefStat {
                center: hr,
                scale: hr_sd,
            }),
            Some(RefStat {
                center: ln_rmssd,
                scale: 0.3,
            }),
            None,
            None,
        ];
        r.windows = 18;
        r.frames = 720;
        r
    }

    #[test]
    fn a_new_profile_holds_the_session_as_personal() {
        let s = session(62.0, 3.0, 3.8);
        let p = Profile::new(pid("p01"), &s, 1000);
        assert_eq!(p.sessions, 1);
        assert_eq!(p.history.len(), 1);
        assert!(p.history[0].taken);
        let r = p.reference();
        assert_eq!(r.kind, BaselineKind::Personal);
        assert_eq!(r.stats, s.stats);
        assert_eq!(r.windows, 18);
        assert_eq!(r.suspect, None);
    }

    #[test]
    fn refine_blends_with_the_documented_weights() {
        let mut p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 0);
        assert_eq!(p.weight_new(), 0.5);
        p.refine(&session(64.0, 5.0, 3.6), 10).unwrap();
        let hr = p.reference.stats[0].unwrap();
        assert!((hr.center - 62.0).abs() < 1e-12, "{hr:?}");
        assert!((hr.scale - 4.0).abs() < 1e-12);
        assert!((p.reference.stats[1].unwrap().center - 3.7).abs() < 1e-12);
        assert_eq!((p.sessions, p.updated_unix_ms), (2, 10));
        assert_eq!(p.reference.windows, 36);
        // Third session weighs 1/3.
        assert!((p.weight_new() - 1.0 / 3.0).abs() < 1e-12);
        p.refine(&session(65.0, 4.0, 3.7), 20).unwrap();
        let hr = p.reference.stats[0].unwrap();
        assert!((hr.center - (62.0 * 2.0 / 3.0 + 65.0 / 3.0)).abs() < 1e-12);
        // From the fifth session on the weight stays at 0.2.
        p.sessions = 4;
        assert_eq!(p.weight_new(), 0.2);
        p.sessions = 40;
        assert_eq!(p.weight_new(), 0.2);
    }

    #[test]
    fn refine_takes_a_new_feature_and_keeps_a_missing_one() {
        let mut p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 0);
        let mut s = session(60.0, 3.0, 3.8);
        s.stats[1] = None;
        s.stats[2] = Some(RefStat {
            center: 1.2,
            scale: 0.2,
        });
        s.unsupported[3] = Some("eda_non_responder");
        p.refine(&s, 1).unwrap();
        assert_eq!(p.reference.stats[1].unwrap().center, 3.8);
        assert_eq!(p.reference.stats[2].unwrap().center, 1.2);
        assert_eq!(p.reference().unsupported[3], Some("eda_non_responder"));
    }

    #[test]
    fn an_aroused_session_is_refused_and_changes_nothing_but_history() {
        let mut p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 0);
        let before = p.clone();
        // HR 12 bpm above a 3 bpm scale, RMSSD down: well above 1.5.
        let e = p.refine(&session(72.0, 3.0, 3.3), 5).unwrap_err();
        assert!(matches!(e, RefineRefused::Aroused { z } if z >= 1.5), "{e}");
        assert_eq!(e.code(), "aroused_vs_profile");
        assert_eq!(p.reference, before.reference);
        assert_eq!((p.sessions, p.updated_unix_ms), (1, 0));
        assert_eq!(p.history.len(), 2);
        assert!(!p.history[1].taken);
        assert_eq!(p.history[1].suspect.as_deref(), Some("aroused_vs_profile"));
        // A slightly higher session is still taken.
        p.refine(&session(62.0, 3.0, 3.8), 6).unwrap();
        assert_eq!(p.sessions, 2);
    }

    #[test]
    fn a_suspect_session_is_refused() {
        let mut p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 0);
        let mut s = session(60.0, 3.0, 3.8);
        s.suspect = Some("aroused_vs_population");
        let e = p.refine(&s, 5).unwrap_err();
        assert_eq!(e, RefineRefused::Suspect("aroused_vs_population".into()));
        assert_eq!(p.sessions, 1);
        assert!(!p.history[1].taken);
    }

    #[test]
    fn unknown_unsupported_reasons_read_back_as_unsupported() {
        let mut p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 0);
        p.reference.unsupported[2] = Some("something_new".into());
        p.reference.unsupported[3] = Some("eda_non_responder".into());
        let r = p.reference();
        assert_eq!(
            r.unsupported,
            [None, None, Some("unsupported"), Some("eda_non_responder")]
        );
    }

    fn model_of(hr: f64) -> FeatureModel {
        let x: Vec<Vec<f64>> = (0..18)
            .map(|i| vec![hr + f64::from(i % 3), 3.8 + 0.01 * f64::from(i % 4)])
            .collect();
        let fit = super::super::cluster::FitConfig::default();
        FeatureModel {
            features: vec!["hr_bpm".into(), "rmssd_ms".into()],
            model: super::super::cluster::fit(&x, &[1.0, -1.0], &[3.0, 0.2], &fit).unwrap(),
        }
    }

    #[test]
    fn the_model_is_kept_merged_with_the_session_weight_and_checked_on_read() {
        let mut s = session(62.0, 3.0, 3.8);
        s.model = Some(std::sync::Arc::new(model_of(62.0)));
        let mut p = Profile::new(pid("p01"), &s, 1000);
        let first = p.model.clone().unwrap();
        assert_eq!(first, model_of(62.0));
        assert_eq!(
            p.reference().clusters.map(|c| c.k),
            Some(first.model.components.len())
        );
        // A second session moves the scaler's centre half way (w = 1/2).
        let mut s2 = session(64.0, 3.0, 3.8);
        s2.model = Some(std::sync::Arc::new(model_of(64.0)));
        p.refine(&s2, 2000).unwrap();
        let c = p.model.as_ref().unwrap().model.scaler.center[0];
        let (c1, c2) = (
            first.model.scaler.center[0],
            model_of(64.0).model.scaler.center[0],
        );
        assert!((c - (c1 + c2) / 2.0).abs() < 1e-9, "{c} vs {c1} {c2}");
        // A session without a model leaves it.
        let before = p.model.clone();
        p.refine(&session(63.0, 3.0, 3.8), 3000).unwrap();
        assert_eq!(p.model, before);
        // Round trip, then a model that does not match its features is refused in one line.
        let v = p.to_value().unwrap();
        assert_eq!(Profile::from_value(v.clone(), &pid("p01")).unwrap(), p);
        let mut bad = v;
        bad["model"]["model"]["components"][0]["mean"] = serde_json::json!([1.0]);
        let e = Profile::from_value(bad, &pid("p01"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("model") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn an_old_profile_is_trusted_less_until_a_calm_session_renews_it() {
        let p = Profile::new(pid("p01"), &session(62.0, 3.0, 3.8), 0);
        let day = 86_400_000;
        assert_eq!(p.reference_at(0).age_days, 0.0);
        assert!((p.reference_at(90 * day).age_days - 90.0).abs() < 1e-9);
        let f = super::super::score::freshness;
        assert_eq!(f(0.0), 1.0);
        assert!((f(90.0) - (0.5 + 0.5 / std::f64::consts::E)).abs() < 1e-12);
        assert!(f(1e6) >= 0.5 && f(f64::NAN) == 1.0 && f(-3.0) == 1.0);
    }

    #[test]
    fn json_round_trips() {
        let mut p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 7);
        p.feedback_shift_z = -0.25;
        p.refine(&session(80.0, 3.0, 3.0), 8).unwrap_err();
        let json = serde_json::to_string(&p.to_value().unwrap()).unwrap();
        assert_eq!(Profile::from_json(&json, &pid("p01")).unwrap(), p);
    }

    #[test]
    fn other_formats_participants_and_bad_numbers_are_refused_in_one_line() {
        let p = Profile::new(pid("p01"), &session(60.0, 3.0, 3.8), 7);
        let mut v = p.to_value().unwrap();
        v["format"] = 0.into();
        let e = Profile::from_value(v.clone(), &pid("p01")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "profile format 0 is older than this attune (1); recalibrate with `attune calibrate`"
        );
        v["format"] = 2.into();
        let e = Profile::from_value(v.clone(), &pid("p01")).unwrap_err();
        assert!(matches!(e, ProfileError::Newer { found: 2 }), "{e}");
        v.as_object_mut().unwrap().remove("format");
        assert_eq!(
            Profile::from_value(v, &pid("p01")).unwrap_err(),
            ProfileError::NoFormat
        );
        let e = Profile::from_value(p.to_value().unwrap(), &pid("p02")).unwrap_err();
        assert_eq!(e.to_string(), "stored profile belongs to p01, not p02");
        let json = serde_json::to_string(&p.to_value().unwrap())
            .unwrap()
            .replace("\"feedback_shift_z\":0.0", "\"feedback_shift_z\":1e999");
        assert!(json.contains("1e999"));
        let e = Profile::from_json(&json, &pid("p01")).unwrap_err();
        assert!(matches!(e, ProfileError::NonFinite(_)), "{e}");
        let mut bad = p.clone();
        bad.reference.stats[0] = Some(RefStat {
            center: 60.0,
            scale: 0.0,
        });
        assert!(matches!(bad.to_value(), Err(ProfileError::NonFinite(_))));
        let mut nan = p;
        nan.feedback_shift_z = f64::NAN;
        assert!(matches!(nan.to_value(), Err(ProfileError::NonFinite(_))));
        for e in [
            Profile::from_json("{", &pid("p01")).unwrap_err(),
            Profile::from_json("{\"format\":1}", &pid("p01")).unwrap_err(),
        ] {
            assert!(!e.to_string().contains('\n'), "{e}");
            assert!(matches!(e, ProfileError::Invalid(_)), "{e}");
        }
    }
}
