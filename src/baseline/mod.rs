//! Personal baselines: calibration, clustering, the population prior, online scoring, and the
//! slow, guarded adaptation of the calm reference.
//!
//! Pure (no I/O, no clock). One [`Tracker`] per participant chooses the reference a frame is
//! scored against:
//! 1. the participant's stored profile ([`profile`]; handed in with [`Tracker::set_personal`]
//!    by the daemon, under `profile` consent) (`personal`);
//! 2. otherwise, until this session's calibration ([`calibrate`]) is done, the population prior
//!    ([`prior`], `population`: conservative decisions);
//! 3. then the session's calibration (`session`).
//!
//! **Adaptation.** The calm reference follows the person slowly, and only from calm: at every
//! tick whose state is not `high`, each feature's centre moves towards its 20 s smoothed value
//! with a time constant of `adapt_tau_s` (150 s), weighted by `exp(−½ (z / adapt_calm_z)²)`
//! (`adapt_calm_z` 1.5: full weight at the reference, 0.6 at z 1.5, 0.1 at z 3), or with full
//! weight while the app marks rest (`rest_start` … `rest_end` markers). Prolonged stress (state
//! `high`) therefore never becomes the new baseline, while the slow drift of a resting person
//! (the 5–20 min wander of heart rate and skin conductance) does not read as arousal. A hard
//! gate (|z| < `adapt_calm_z`) left people who drifted to z ≈ 1–2 stuck there, one noise spike
//! from a false alarm.
//!
//! **Settling.** People often arrive keyed up: resting baselines taken at the start of a
//! session are commonly elevated (Jennings et al. 1992, *Psychophysiology* 29:742, "vanilla"
//! vs resting baselines). Within `settle_window_s` (900 s) of the calibration's end, or at any
//! time while the calibration is suspect, a composite z at or below `settle_z` (−1.5) for
//! `settle_sustain_s` (60 s) moves every feature that is calmer than the reference to its
//! smoothed value (`rebased` in the reason) and clears the suspicion: the calibration was not
//! calm, and the person is now calmer. Only after the settle window can sustained low arousal
//! lead to `escalate` (and then only through the policy's safeguard).

pub mod calibrate;
pub mod cluster;
pub mod prior;
pub mod profile;
pub mod score;

use crate::features::FeatureFrame;
use crate::policy::{ArousalState, BaselineInfo};
use calibrate::{Calibration, CalibrationConfig, Progress};
use score::{BaselineKind, DIRECTIONS, Reference, SCALES, ScoringScale, to_scale};

/// Tracker settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// The session calibration.
    pub calibration: CalibrationConfig,
    /// Time constant of the calm adaptation, s.
    pub adapt_tau_s: f64,
    /// Composite |z| below which a tick counts as calm.
    pub adapt_calm_z: f64,
    /// Time constant of the smoothing of each feature, s.
    pub smooth_tau_s: f64,
    /// Settling may move the reference this long after calibration, s.
    pub settle_window_s: f64,
    /// Composite z at or below which the person may have settled.
    pub settle_z: f64,
    /// ... for this long, s.
    pub settle_sustain_s: f64,
    /// Weight calm adaptation by `exp(−½(z / adapt_calm_z)²)` instead of a hard gate.
    pub adapt_kernel: bool,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            calibration: CalibrationConfig::default(),
            adapt_tau_s: 150.0,
            adapt_calm_z: 1.5,
            smooth_tau_s: 20.0,
            settle_window_s: 900.0,
            settle_z: -1.5,
            settle_sustain_s: 60.0,
            adapt_kernel: true,
        }
    }
}

/// What the tracker has for a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// No features yet, and no profile.
    WarmingUp,
    /// The session calibration runs; scoring uses the prior or the profile.
    Calibrating,
    /// A session or personal reference is in use.
    Ready,
}

impl Stage {
    /// Its name in `attune status`.
    pub fn name(self) -> &'static str {
        match self {
            Self::WarmingUp => "warming_up",
            Self::Calibrating => "calibrating",
            Self::Ready => "ready",
        }
    }
}

/// One participant's baseline state.
#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    calibration: Option<Calibration>,
    population: Reference,
    session: Option<Reference>,
    personal: Option<Reference>,
    smoothed: [Option<f64>; 4],
    last_t: Option<f64>,
    low_since: Option<f64>,
    rebased: u32,
    rest_marked: bool,
    seen_any: bool,
    /// Calibrations completed this session.
    completed: u32,
    /// A requested calibration (`calibrate` marker) is collecting.
    requested: bool,
    /// Completed requested calibrations not yet taken by [`Tracker::take_requested_done`].
    requested_done: bool,
    /// `to_s` of the session reference last stored in the profile (not stored twice).
    stored_to_s: Option<f64>,
    /// What the edge last did with the profile (one line), for `attune status`.
    profile_note: Option<String>,
}

/// What a participant's calibration is doing (`attune status`, `calibrate --live`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationStatus {
    /// A calibration is collecting windows.
    pub collecting: bool,
    /// It was requested (`calibrate` marker), not the session's first.
    pub requested: bool,
    /// Its length, s of complete features.
    pub duration_s: f64,
    /// Calibrations completed this session.
    pub completed: u32,
}

impl Tracker {
    /// A fresh tracker (no profile).
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            calibration: Some(Calibration::new(cfg.calibration.clone())),
            cfg,
            population: Reference::population(),
            session: None,
            personal: None,
            smoothed: [None; 4],
            last_t: None,
            low_since: None,
            rebased: 0,
            rest_marked: false,
            seen_any: false,
            completed: 0,
            requested: false,
            requested_done: false,
            stored_to_s: None,
            profile_note: None,
        }
    }

    /// Notes what the edge did with the stored profile (one line, for `attune status`).
    pub fn note_profile(&mut self, note: String) {
        self.profile_note = Some(note);
    }

    /// What the edge last did with the stored profile.
    pub fn profile_note(&self) -> Option<&str> {
        self.profile_note.as_deref()
    }

    /// Starts a new calibration of `duration_s` s of complete features now (a `calibrate`
    /// marker: `attune calibrate --live`). The reference in use stays until it is done; then
    /// it becomes the session's reference like the first calibration.
    pub fn recalibrate(&mut self, duration_s: f64) {
        let cfg = CalibrationConfig {
            duration_s,
            ..self.cfg.calibration.clone()
        };
        self.calibration = Some(Calibration::new(cfg));
        self.requested = true;
    }

    /// What the calibration is doing.
    pub fn calibration_status(&self) -> CalibrationStatus {
        CalibrationStatus {
            collecting: self.calibration.is_some(),
            requested: self.requested,
            duration_s: self
                .calibration
                .as_ref()
                .map_or(self.cfg.calibration.duration_s, |c| c.config().duration_s),
            completed: self.completed,
        }
    }

    /// True once after a requested calibration completed (the daemon then stores the profile).
    pub fn take_requested_done(&mut self) -> bool {
        std::mem::take(&mut self.requested_done)
    }

    /// The session reference, unless it is the one last stored (`mark_stored`).
    pub fn unstored_session(&self) -> Option<&Reference> {
        self.session
            .as_ref()
            .filter(|s| self.stored_to_s != Some(s.to_s))
    }

    /// Notes that the session reference was stored in the profile.
    pub fn mark_stored(&mut self) {
        self.stored_to_s = self.session.as_ref().map(|s| s.to_s);
    }

    /// Uses a stored profile's reference from now on (kind `personal`).
    pub fn set_personal(&mut self, mut r: Reference) {
        r.kind = BaselineKind::Personal;
        self.personal = Some(r);
    }

    /// Stops using the stored profile (its `profile` consent was withdrawn): the session's own
    /// calibration, or the population prior until it is done, from now on.
    pub fn clear_personal(&mut self) {
        self.personal = None;
    }

    /// Whether a stored profile is in use.
    pub fn has_personal(&self) -> bool {
        self.personal.is_some()
    }

    /// Drops everything learnt (consent for the baseline withdrawn, a researcher's restart).
    pub fn restart(&mut self) {
        *self = Self::new(self.cfg.clone());
    }

    /// The app marked the start (true) or end of rest.
    pub fn set_rest(&mut self, rest: bool) {
        self.rest_marked = rest;
    }

    /// The session's calibration, once done.
    pub fn session(&self) -> Option<&Reference> {
        self.session.as_ref()
    }

    /// The reference in use and what it is.
    pub fn reference(&self) -> (&Reference, Stage) {
        if let Some(p) = &self.personal {
            // A personal reference is usable at once: the calibration only refines it.
            return (p, Stage::Ready);
        }
        match &self.session {
            Some(s) => (s, Stage::Ready),
            None if self.seen_any => (&self.population, Stage::Calibrating),
            None => (&self.population, Stage::WarmingUp),
        }
    }

    /// What a decision's reason shows of the reference in use.
    pub fn info(&self) -> BaselineInfo {
        let (r, _) = self.reference();
        BaselineInfo {
            kind: r.kind,
            from_s: r.from_s,
            to_s: r.to_s,
            windows: r.windows,
            frames: r.frames,
            suspect: r.suspect,
            clusters: r.clusters.clone().map(|mut c| {
                if let Some((k, p)) = r.model.as_ref().and_then(|m| m.position(&self.smoothed)) {
                    c.current = Some(k);
                    c.calm_posterior = Some((p * 1000.0).round() / 1000.0);
                }
                c
            }),
            rebased: self.rebased,
        }
    }

    /// Feeds a frame to the calibration (until it is done) and the smoothing.
    pub fn push(&mut self, f: &FeatureFrame, expected: [bool; 4]) {
        let dt = self.last_t.map_or(0.0, |l| (f.t - l).clamp(0.0, 1.0));
        self.last_t = Some(f.t);
        self.seen_any |= f.any();
        let a = 1.0 - (-dt / self.cfg.smooth_tau_s).exp();
        for i in 0..4 {
            let x = f.values[i].and_then(|v| to_scale(i, v));
            self.smoothed[i] = match (x, self.smoothed[i]) {
                (Some(x), Some(s)) => Some(s + a * (x - s)),
                (Some(x), None) => Some(x),
                (None, _) => None,
            };
        }
        if let Some(c) = &mut self.calibration
            && let Progress::Ready(mut r) = c.push(f, expected)
        {
            if let Some(p) = &mut self.personal {
                if calibrate::compare(&r, p) >= self.cfg.calibration.suspect_z {
                    r.suspect = Some("aroused_vs_profile");
                } else if r.suspect.is_none() {
                    // A calm calibration that agrees with the profile renews it.
                    p.age_days = 0.0;
                }
            }
            self.session = Some(*r);
            self.calibration = None;
            self.completed += 1;
            if std::mem::take(&mut self.requested) {
                self.requested_done = true;
            }
        }
    }

    /// After a decision at `t` with composite `z` and arousal state `state`: adapts the
    /// reference (module doc).
    pub fn after(&mut self, t: f64, z: Option<f64>, state: ArousalState) {
        let dt = 1.0 / crate::pipeline::TICKS_PER_S;
        let tau = self.cfg.adapt_tau_s;
        let (calm_z, settle_z, sustain, window) = (
            self.cfg.adapt_calm_z,
            self.cfg.settle_z,
            self.cfg.settle_sustain_s,
            self.cfg.settle_window_s,
        );
        let smoothed = self.smoothed;
        let rest = self.rest_marked;
        let kernel = self.cfg.adapt_kernel;
        let Some(r) = self.active_mut() else {
            return;
        };
        let Some(z) = z else {
            return;
        };
        let weight = if rest {
            1.0
        } else if state == ArousalState::High {
            0.0
        } else if kernel {
            (-0.5 * (z / calm_z).powi(2)).exp()
        } else if z.abs() < calm_z {
            1.0
        } else {
            0.0
        };
        if weight > 0.0 {
            let k = weight * dt / tau;
            for i in 0..4 {
                if let (Some(s), Some(x)) = (&mut r.stats[i], smoothed[i]) {
                    let x = if SCALES[i] == ScoringScale::Count {
                        x.max(0.1)
                    } else {
                        x
                    };
                    s.center += k * (x - s.center);
                }
            }
        }
        let settle_open = t - r.to_s <= window || r.suspect.is_some();
        if z <= settle_z && settle_open {
            let since = *self.low_since.get_or_insert(t);
            if t - since >= sustain {
                let Some(r) = self.active_mut() else {
                    return;
                };
                for i in 0..4 {
                    if let (Some(s), Some(x)) = (&mut r.stats[i], smoothed[i])
                        && DIRECTIONS[i] * (x - s.center) < 0.0
                    {
                        s.center = if SCALES[i] == ScoringScale::Count {
                            x.max(0.1)
                        } else {
                            x
                        };
                    }
                }
                r.suspect = None;
                self.rebased += 1;
                self.low_since = None;
            }
        } else {
            self.low_since = None;
        }
    }

    fn active_mut(&mut self) -> Option<&mut Reference> {
        if self.personal.is_some() {
            return self.personal.as_mut();
        }
        self.session.as_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_calibration_replaces_the_reference_once_done_and_is_reported_once() {
        let mut t = Tracker::new(TrackerConfig::default());
        let frame = |t: f64| FeatureFrame {
            values: [
                Some(62.0 + (t * 0.3).sin()),
                Some(45.0),
                Some(6.0),
                Some(2.0),
            ],
            ..FeatureFrame::empty(t)
        };
        let mut now = 0.0;
        let mut run_until = |t: &mut Tracker, done: &dyn Fn(&Tracker) -> bool| {
            while !done(t) {
                t.push(&frame(now), [true; 4]);
                now += 0.25;
                assert!(now < 2000.0, "never done");
            }
            now
        };
        run_until(&mut t, &|t| t.session().is_some());
        assert_eq!(t.calibration_status().completed, 1);
        assert!(
            !t.take_requested_done(),
            "the first calibration was not requested"
        );
        t.mark_stored();
        assert!(t.unstored_session().is_none());
        let first_to = t.session().map(|s| s.to_s);
        t.recalibrate(60.0);
        let c = t.calibration_status();
        assert!(c.collecting && c.requested && c.duration_s == 60.0, "{c:?}");
        // The reference in use stays while it collects.
        assert_eq!(t.reference().0.to_s, first_to.unwrap());
        let end = run_until(&mut t, &|t| t.calibration_status().completed == 2);
        let s = t.session().unwrap();
        assert!(s.to_s > first_to.unwrap() && s.to_s <= end);
        assert!(
            t.unstored_session().is_some(),
            "a new calibration is not stored yet"
        );
        assert!(t.take_requested_done());
        assert!(!t.take_requested_done(), "reported once");
    }

    #[test]
    fn a_profile_is_used_at_once_and_dropped_on_request() {
        let mut t = Tracker::new(TrackerConfig::default());
        assert_eq!(t.reference().1, Stage::WarmingUp);
        let mut r = Reference::population();
        r.kind = BaselineKind::Session;
        t.set_personal(r);
        let (r, stage) = t.reference();
        assert_eq!((r.kind, stage), (BaselineKind::Personal, Stage::Ready));
        assert!(t.has_personal());
        t.clear_personal();
        assert!(!t.has_personal());
        assert_eq!(t.reference().0.kind, BaselineKind::Population);
    }
}
