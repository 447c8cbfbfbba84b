//! The cohort's scenarios: labelled phases on a timeline, and what each phase asks of the person
//! (a psychological load, physical exercise, paced breathing, speaking, startle probes).
//!
//! Phase lengths follow the protocols they imitate and scale with the session length:
//! - `tsst`: the Trier Social Stress Test (Kirschbaum, Pirke & Hellhammer 1993,
//!   *Neuropsychobiology* 28:76): 10 min anticipation (preparation), 5 min free speech before a
//!   panel, 5 min mental arithmetic (serial subtraction); here after a 10 min seated baseline and
//!   followed by 10 min recovery (40 min in all).
//! - `paced-breathing`: resonance-frequency breathing at 6 breaths/min (0.1 Hz; Lehrer &
//!   Gevirtz 2014, *Front Psychol* 5:756) between two rests.
//! - `movement`: light walking (light activity raises HR up to ~16 bpm above rest, moderate up
//!   to ~35 bpm) between a rest and a cool-down.
//! - `startle`: seated rest with acoustic startle probes (95 dB, 50 ms white-noise bursts, as in
//!   Healey & Picard's MIT TR-468) at irregular intervals of 1.5–3 min.
//! - `stressed-start`: the person arrives aroused (a stressor still acting through the
//!   calibration minutes), then recovers and rests.
//!
//! Pure: no RNG beyond the one passed in (startle times), no clock.

use crate::recording::Segment;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A cohort scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CohortScenario {
    /// Seated rest throughout.
    Rest,
    /// Rest for the first half, a stressor for the second.
    RestThenStress,
    /// Baseline, anticipation, speech, arithmetic, recovery.
    Tsst,
    /// Rest, 6 breaths/min paced breathing, rest.
    PacedBreathing,
    /// Rest, light walking, cool-down.
    Movement,
    /// Rest with acoustic startle probes.
    Startle,
    /// Aroused during calibration, then recovery and rest.
    StressedStart,
}

/// Every scenario, in report order.
pub const ALL_SCENARIOS: [CohortScenario; 7] = [
    CohortScenario::Rest,
    CohortScenario::RestThenStress,
    CohortScenario::Tsst,
    CohortScenario::PacedBreathing,
    CohortScenario::Movement,
    CohortScenario::Startle,
    CohortScenario::StressedStart,
];

impl CohortScenario {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::RestThenStress => "rest-then-stress",
            Self::Tsst => "tsst",
            Self::PacedBreathing => "paced-breathing",
            Self::Movement => "movement",
            Self::Startle => "startle",
            Self::StressedStart => "stressed-start",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_SCENARIOS.into_iter().find(|s| s.name() == name)
    }

    /// The default session length, s.
    pub fn default_duration_s(self) -> f64 {
        match self {
            Self::Tsst => 40.0 * 60.0,
            Self::Startle => 15.0 * 60.0,
            _ => 20.0 * 60.0,
        }
    }
}

/// What a phase's label means for an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentClass {
    /// The person is calm: `rest`, `baseline`, `paced_breathing` (slow breathing raises HRV; it
    /// is not low arousal and not stress). Easing off here is a false alarm.
    Calm,
    /// A psychological stressor acts: `stress`, `anticipation`, `speech`, `arithmetic`.
    Stress,
    /// After a stressor: `recovery`.
    Recovery,
    /// Neither: `movement`, `cooldown` (physical, not psychological arousal), `startle` (a
    /// probe and the seconds after it). Reported on their own.
    Other,
}

/// The class of a segment label (unknown labels are [`SegmentClass::Other`]).
pub fn class_of(label: &str) -> SegmentClass {
    match label {
        "rest" | "baseline" | "paced_breathing" => SegmentClass::Calm,
        "stress" | "anticipation" | "speech" | "arithmetic" => SegmentClass::Stress,
        "recovery" => SegmentClass::Recovery,
        _ => SegmentClass::Other,
    }
}

/// One phase of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    /// Segment label (written into the recording header).
    pub label: &'static str,
    /// Start, s.
    pub start_s: f64,
    /// End, s.
    pub end_s: f64,
    /// Psychological load the phase imposes, 0 (none) to 1 (the TSST's speech before a panel).
    /// The person's arousal follows it with their own gain and time constants.
    pub load: f64,
    /// Physical exercise, 0 (seated) to 1 (light walking).
    pub exercise: f64,
    /// Paced breathing rate, Hz, if the phase paces it.
    pub paced_resp_hz: Option<f64>,
    /// Whether the person speaks (speech changes breathing and moves EDA and HF-HRV on its own:
    /// a neutral-speaking control differs from baseline as much as the stressors do).
    pub speaking: bool,
}

/// A scenario laid out on a session of a given length.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The scenario.
    pub scenario: CohortScenario,
    /// Session length, s.
    pub duration_s: f64,
    /// Phases in time order, covering `[0, duration_s]`.
    pub phases: Vec<Phase>,
    /// Startle probe times, s.
    pub startles: Vec<f64>,
}

/// Breathing rate of resonance-frequency paced breathing, Hz (6 breaths/min).
pub const PACED_RESP_HZ: f64 = 0.1;
/// How long a startle segment lasts after the probe, s (the SCR peaks 2–6 s after it and
/// recovers within ~20 s).
pub const STARTLE_SEGMENT_S: f64 = 20.0;

impl Timeline {
    /// Lays out `scenario` over `duration_s` (phases keep their proportions); startle times
    /// are drawn from `rng`.
    pub fn new(scenario: CohortScenario, duration_s: f64, rng: &mut ChaCha8Rng) -> Self {
        let d = duration_s;
        // (label, share of the session, load, exercise, paced, speaking)
        type P = (&'static str, f64, f64, f64, Option<f64>, bool);
        let parts: Vec<P> = match scenario {
            CohortScenario::Rest => vec![("rest", 1.0, 0.0, 0.0, None, false)],
            CohortScenario::RestThenStress => vec![
                ("rest", 0.5, 0.0, 0.0, None, false),
                ("stress", 0.5, 0.8, 0.0, None, false),
            ],
            CohortScenario::Tsst => vec![
                ("baseline", 0.25, 0.0, 0.0, None, false),
                ("anticipation", 0.25, 0.45, 0.0, None, false),
                ("speech", 0.125, 1.0, 0.0, None, true),
                ("arithmetic", 0.125, 0.85, 0.0, None, true),
                ("recovery", 0.25, 0.0, 0.0, None, false),
            ],
            CohortScenario::PacedBreathing => vec![
                ("rest", 0.4, 0.0, 0.0, None, false),
                ("paced_breathing", 0.3, 0.0, 0.0, Some(PACED_RESP_HZ), false),
                ("rest", 0.3, 0.0, 0.0, None, false),
            ],
            CohortScenario::Movement => vec![
                ("rest", 0.4, 0.0, 0.0, None, false),
                ("movement", 0.25, 0.0, 1.0, None, false),
                ("cooldown", 0.35, 0.0, 0.0, None, false),
            ],
            CohortScenario::Startle => vec![("rest", 1.0, 0.0, 0.0, None, false)],
            CohortScenario::StressedStart => vec![
                ("stress", 0.25, 0.7, 0.0, None, false),
                ("recovery", 0.25, 0.0, 0.0, None, false),
                ("rest", 0.5, 0.0, 0.0, None, false),
            ],
        };
        let mut phases = Vec::with_capacity(parts.len());
        let mut t = 0.0;
        let n = parts.len();
        for (i, (label, share, load, exercise, paced_resp_hz, speaking)) in
            parts.into_iter().enumerate()
        {
            let end = if i + 1 == n {
                d
            } else {
                (t + share * d).round()
            };
            phases.push(Phase {
                label,
                start_s: t,
                end_s: end,
                load,
                exercise,
                paced_resp_hz,
                speaking,
            });
            t = end;
        }
        let mut startles = Vec::new();
        if scenario == CohortScenario::Startle {
            // The first probe after the 3 min the baseline needs, then every 1.5–3 min.
            let mut s = 180.0 + rng.random_range(0.0..60.0);
            while s + STARTLE_SEGMENT_S < d {
                startles.push((s * 1000.0_f64).round() / 1000.0);
                s += rng.random_range(90.0..180.0);
            }
        }
        Self {
            scenario,
            duration_s: d,
            phases,
            startles,
        }
    }

    /// The phase in force at `t` (the last one after the end).
    pub fn phase_at(&self, t: f64) -> &Phase {
        self.phases
            .iter()
            .find(|p| t < p.end_s)
            .or(self.phases.last())
            .unwrap_or_else(|| unreachable!("a timeline has at least one phase"))
    }

    /// The header's segments: the phases, with each startle probe's [`STARTLE_SEGMENT_S`] cut
    /// out of the phase it falls in as a `startle` segment.
    pub fn segments(&self) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        for p in &self.phases {
            let mut start = p.start_s;
            for &s in self
                .startles
                .iter()
                .filter(|&&s| s >= p.start_s && s < p.end_s)
            {
                let end = (s + STARTLE_SEGMENT_S).min(p.end_s);
                if s > start {
                    out.push(seg(p.label, start, s));
                }
                out.push(seg("startle", s, end));
                start = end;
            }
            if p.end_s > start {
                out.push(seg(p.label, start, p.end_s));
            }
        }
        out
    }
}

fn seg(label: &str, start_s: f64, end_s: f64) -> Segment {
    Segment {
        label: label.into(),
        start_s,
        end_s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_timeline_covers_the_session_in_order_and_names_known_classes() {
        for s in ALL_SCENARIOS {
            for minutes in [5.0, 20.0, 60.0] {
                let mut rng = ChaCha8Rng::seed_from_u64(1);
                let tl = Timeline::new(s, minutes * 60.0, &mut rng);
                let segs = tl.segments();
                assert_eq!(segs[0].start_s, 0.0);
                assert_eq!(segs.last().map(|x| x.end_s), Some(minutes * 60.0));
                for w in segs.windows(2) {
                    assert_eq!(w[0].end_s, w[1].start_s, "{s:?}: {segs:?}");
                    assert!(w[0].end_s > w[0].start_s);
                }
                assert_eq!(CohortScenario::from_name(s.name()), Some(s));
            }
        }
    }

    #[test]
    fn the_tsst_has_its_five_phases_and_startles_fall_after_the_baseline() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let tl = Timeline::new(CohortScenario::Tsst, 2400.0, &mut rng);
        let labels: Vec<_> = tl.phases.iter().map(|p| (p.label, p.start_s)).collect();
        assert_eq!(
            labels,
            [
                ("baseline", 0.0),
                ("anticipation", 600.0),
                ("speech", 1200.0),
                ("arithmetic", 1500.0),
                ("recovery", 1800.0)
            ]
        );
        let tl = Timeline::new(CohortScenario::Startle, 900.0, &mut rng);
        assert!(tl.startles.len() >= 3, "{:?}", tl.startles);
        assert!(tl.startles[0] >= 180.0);
        let startle_segs = tl
            .segments()
            .iter()
            .filter(|s| s.label == "startle")
            .count();
        assert_eq!(startle_segs, tl.startles.len());
    }
}
