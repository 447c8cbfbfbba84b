//! Each metric on hand-built sessions with exact expected values.

use super::*;
use crate::model::ParticipantId;

fn seg(label: &str, start_s: f64, end_s: f64) -> Segment {
    Segment {
        label: label.into(),
        start_s,
        end_s,
    }
}

fn dp(t: f64, action: Action, rule: Rule) -> DecisionPoint {
    DecisionPoint {
        t,
        action,
        arousal: None,
        rule,
    }
}

/// Ticks every `step` s over `[0, end)`: calibrating before `calib_s`, then `action_at(t)`.
fn ticks(
    end: f64,
    step: f64,
    calib_s: f64,
    action_at: impl Fn(f64) -> Action,
) -> Vec<DecisionPoint> {
    let n = (end / step).round() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 * step;
            if t < calib_s {
                dp(t, Action::Hold, Rule::Calibrating)
            } else {
                dp(t, action_at(t), Rule::BaselineArousal)
            }
        })
        .collect()
}

fn run(segments: Vec<Segment>, decisions: Vec<DecisionPoint>, duration_s: f64) -> PersonRun {
    PersonRun {
        participant: ParticipantId::new("t-1").unwrap(),
        scenario: "test".into(),
        seed: None,
        segments,
        duration_s,
        features: Vec::new(),
        decisions,
        generator: None,
    }
}

use Action::{EaseOff, Escalate, Hold};

#[test]
fn an_onset_is_detected_at_its_first_post_calibration_ease_off() {
    let segs = vec![seg("rest", 0.0, 100.0), seg("stress", 100.0, 200.0)];
    let mut d = ticks(
        200.0,
        0.5,
        30.0,
        |t| if t >= 112.5 { EaseOff } else { Hold },
    );
    // A calibrating ease_off inside the block does not count.
    let i = d.iter().position(|x| x.t == 105.0).unwrap();
    d[i] = dp(105.0, EaseOff, Rule::Calibrating);
    let m = score_run(&run(segs, d, 200.0));
    assert_eq!(m.onsets, 1);
    assert_eq!(m.onset_delays_s, vec![12.5]);
    assert_eq!(m.missed_onsets, 0);
    assert_eq!(m.onset_delay_s(), Some(12.5));
    assert_eq!(
        m.calm_ease_off,
        Share {
            hits: 0,
            ticks: 140
        }
    );
    assert_eq!(m.flips, 1);
    assert_eq!(m.post_calibration_s, 170.0);
    let s = summarize([&m]);
    assert_eq!(s.onset_delay_median_s, Some(12.5));
    assert_eq!(s.onset_delay_p90_s, Some(12.5));
    assert_eq!(s.false_ease_off_rest_frac, Some(0.0));
}

#[test]
fn an_onset_without_ease_off_inside_the_block_is_missed() {
    let segs = vec![
        seg("rest", 0.0, 100.0),
        seg("stress", 100.0, 200.0),
        seg("rest", 200.0, 300.0),
    ];
    // Ease off before the block (a false alarm) and after it (too late), never inside.
    let d = ticks(300.0, 0.5, 30.0, |t| {
        if (50.0..60.0).contains(&t) || t >= 250.0 {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score_run(&run(segs, d, 300.0));
    assert_eq!((m.onsets, m.missed_onsets), (1, 1));
    assert!(m.onset_delays_s.is_empty());
    // Calm ticks: 140 in [30, 100) and 200 in [200, 300); ease_off: 20 + 100.
    assert_eq!(
        m.calm_ease_off,
        Share {
            hits: 120,
            ticks: 340
        }
    );
    let s = summarize([&m]);
    assert_eq!(s.onset_delay_median_s, None);
    assert_eq!((s.onsets, s.missed_onsets), (1, 1));
    assert_eq!(s.false_ease_off_rest_frac, Some(120.0 / 340.0));
}

#[test]
fn a_block_at_the_session_start_is_no_onset_and_recovery_needs_30_s_without_ease_off() {
    let segs = vec![seg("stress", 0.0, 100.0), seg("recovery", 100.0, 200.0)];
    let d = ticks(200.0, 0.5, 30.0, |t| {
        if t < 110.0 || (125.0..=126.0).contains(&t) {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score_run(&run(segs, d, 200.0));
    assert_eq!(m.onsets, 0);
    // The run from 110 s ends at 125 s (15 s); the one from 126.5 s lasts.
    assert_eq!(m.recovery_delays_s, vec![26.5]);
    assert_eq!(m.unrecovered, 0);
}

#[test]
fn a_recovery_that_never_lasts_30_s_before_the_end_is_censored() {
    let segs = vec![seg("stress", 0.0, 100.0), seg("recovery", 100.0, 140.0)];
    // Hold from 115 s: 25 s before the session ends.
    let late = ticks(140.0, 0.5, 30.0, |t| if t < 115.0 { EaseOff } else { Hold });
    let a = score_run(&run(segs.clone(), late, 140.0));
    assert_eq!((a.recovery_delays_s.len(), a.unrecovered), (0, 1));
    // Never eased off: there was no response to recover from; not scored, counted apart.
    let b = score_run(&run(segs, ticks(140.0, 0.5, 30.0, |_| Hold), 140.0));
    assert!(b.recovery_delays_s.is_empty());
    assert_eq!((b.not_eased_at_end, b.unrecovered), (1, 0));
    let s = summarize([&a, &b]);
    assert_eq!(s.recovery_delay_median_s, None);
    assert_eq!((s.unrecovered, s.not_eased_at_end), (1, 1));
    // A block running to the session end has no recovery to score.
    let c = score_run(&run(
        vec![seg("rest", 0.0, 100.0), seg("stress", 100.0, 200.0)],
        ticks(200.0, 0.5, 30.0, |_| EaseOff),
        200.0,
    ));
    assert_eq!((c.recovery_delays_s.len(), c.unrecovered), (0, 0));
}

#[test]
fn rest_fractions_are_pooled_over_ticks_not_averaged_over_people() {
    // A: 100 post-calibration rest ticks, 10 ease_off, 5 escalate. B: 300 ticks, none.
    let a = ticks(110.0, 1.0, 10.0, |t| {
        if t < 20.0 {
            EaseOff
        } else if t < 25.0 {
            Escalate
        } else {
            Hold
        }
    });
    let b = ticks(310.0, 1.0, 10.0, |_| Hold);
    let a = score_run(&run(vec![seg("rest", 0.0, 110.0)], a, 110.0));
    let b = score_run(&run(vec![seg("rest", 0.0, 310.0)], b, 310.0));
    assert_eq!(
        a.calm_ease_off,
        Share {
            hits: 10,
            ticks: 100
        }
    );
    assert_eq!(
        a.calm_escalate,
        Share {
            hits: 5,
            ticks: 100
        }
    );
    let s = summarize([&a, &b]);
    assert_eq!(s.people, 2);
    assert_eq!(s.false_ease_off_rest_frac, Some(10.0 / 400.0));
    assert_eq!(s.escalate_rest_frac, Some(5.0 / 400.0));
    // No stress, no movement, no startle: nothing to say.
    assert_eq!(s.onsets, 0);
    assert_eq!(s.onset_delay_median_s, None);
    assert_eq!(s.recovery_delay_median_s, None);
    assert_eq!(s.ease_off_movement_frac, None);
    assert_eq!(s.ease_off_startle_frac, None);
}

#[test]
fn flips_and_escalation_entries_count_changes_of_post_calibration_actions() {
    let segs = vec![seg("rest", 0.0, 3.0), seg("stress", 3.0, 10.0)];
    let acts = [
        Hold, EaseOff, EaseOff, Hold, Escalate, Escalate, Hold, Escalate,
    ];
    let mut d = vec![dp(-1.0, Escalate, Rule::WarmingUp)];
    d.extend(
        acts.iter()
            .enumerate()
            .map(|(i, &a)| dp(i as f64, a, Rule::BaselineArousal)),
    );
    let m = score_run(&run(segs, d, 10.0));
    // h→e, e→h, h→x, x→h, h→x.
    assert_eq!(m.flips, 5);
    assert_eq!(m.post_calibration_s, 10.0);
    assert_eq!(m.flips_per_min(), Some(30.0));
    // Entries at 4 s and 7 s, both inside the block.
    assert_eq!(m.escalations_during_stress, 2);
    let other = score_run(&run(
        vec![seg("rest", 0.0, 10.0)],
        vec![dp(0.0, Hold, Rule::BaselineArousal)],
        10.0,
    ));
    let s = summarize([&m, &other]);
    assert_eq!(s.flips_per_min, Some(15.0));
    assert_eq!(s.escalations_during_stress, 2);
    // An escalate as the first post-calibration tick is an entry.
    let first = score_run(&run(
        vec![seg("stress", 0.0, 10.0)],
        vec![
            dp(0.0, Escalate, Rule::Calibrating),
            dp(1.0, Escalate, Rule::HighArousal),
        ],
        10.0,
    ));
    assert_eq!(first.escalations_during_stress, 1);
}

#[test]
fn movement_and_startle_ticks_are_reported_on_their_own() {
    let segs = vec![
        seg("rest", 0.0, 10.0),
        seg("movement", 10.0, 20.0),
        seg("cooldown", 20.0, 30.0),
        seg("startle", 30.0, 40.0),
    ];
    let d = ticks(40.0, 1.0, 0.0, |t| {
        if (15.0..25.0).contains(&t) || (30.0..32.0).contains(&t) {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score_run(&run(segs, d, 40.0));
    assert_eq!(
        m.movement_ease_off,
        Share {
            hits: 10,
            ticks: 20
        }
    );
    assert_eq!(m.startle_ease_off, Share { hits: 2, ticks: 10 });
    assert_eq!(m.calm_ease_off, Share { hits: 0, ticks: 10 });
    let s = summarize([&m]);
    assert_eq!(s.ease_off_movement_frac, Some(0.5));
    assert_eq!(s.ease_off_startle_frac, Some(0.2));
}

#[test]
fn consecutive_stress_segments_form_one_block() {
    let segs = vec![
        seg("baseline", 0.0, 10.0),
        seg("anticipation", 10.0, 20.0),
        seg("speech", 20.0, 25.0),
        seg("arithmetic", 25.0, 30.0),
        seg("recovery", 30.0, 40.0),
    ];
    let b = stress_blocks(&segs);
    assert_eq!(b.len(), 1);
    assert_eq!((b[0].start_s, b[0].end_s), (10.0, 30.0));
    assert!(b[0].follows_calm() && b[0].has_recovery());
}

#[test]
fn quantiles_interpolate_between_order_statistics() {
    let xs = [4.0, 1.0, 3.0, 2.0];
    assert_eq!(quantile(&xs, 0.5), Some(2.5));
    assert!((quantile(&xs, 0.9).unwrap() - 3.7).abs() < 1e-12);
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
}

#[test]
fn the_reference_rule_eases_off_7_5_bpm_above_its_first_two_minutes() {
    // HR alternates 58/62 (mean 60) for 2 min, then 67.4, 67.5, missing, and from 212.5 s 70.
    let frames: Vec<FeatureFrame> = (0..600)
        .map(|i| {
            let t = i as f64 * 0.5;
            let mut f = FeatureFrame::empty(t);
            f.values[0] = match t {
                t if t < 120.0 => Some(if i % 2 == 0 { 58.0 } else { 62.0 }),
                t if t < 150.0 => Some(67.4),
                t if t < 160.0 => Some(67.5),
                t if t < 170.0 => None,
                t if t < 212.5 => Some(60.0),
                _ => Some(70.0),
            };
            f
        })
        .collect();
    let d = reference_rule(&frames);
    assert_eq!(d.len(), frames.len());
    let at = |t: f64| d.iter().find(|x| x.t == t).unwrap();
    assert_eq!(at(119.5).rule, Rule::Calibrating);
    assert_eq!(at(119.5).action, Hold);
    assert_eq!(at(140.0).action, Hold);
    assert_eq!(at(155.0).action, EaseOff);
    assert_eq!((at(165.0).action, at(165.0).rule), (Hold, Rule::NoData));
    let mut r = run(
        vec![seg("rest", 0.0, 200.0), seg("stress", 200.0, 300.0)],
        Vec::new(),
        300.0,
    );
    r.features = frames;
    let m = score_reference(&r);
    assert_eq!(m.onset_delays_s, vec![12.5]);
    // Calm post-calibration ticks: [120, 200) = 160; ease_off in [150, 160) = 20.
    assert_eq!(
        m.calm_ease_off,
        Share {
            hits: 20,
            ticks: 160
        }
    );
}

#[test]
fn a_stress_block_at_the_start_is_not_an_onset_but_counts_as_initial_stress() {
    let segs = vec![
        seg("stress", 0.0, 300.0),
        seg("recovery", 300.0, 600.0),
        seg("rest", 600.0, 900.0),
    ];
    // Calibrating for 120 s; ease_off from 250 s to 320 s.
    let d = ticks(900.0, 0.25, 120.0, |t| {
        if (250.0..320.0).contains(&t) {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score(&segs, &d, 900.0);
    assert_eq!((m.onsets, m.missed_onsets), (0, 0));
    assert_eq!(
        (m.initial_stress_blocks, m.initial_stress_eased_off),
        (1, 1)
    );
    assert_eq!(m.recovery_delays_s, vec![20.0]);
    let never = score(&segs, &ticks(900.0, 0.25, 120.0, |_| Hold), 900.0);
    assert_eq!(
        (never.initial_stress_blocks, never.initial_stress_eased_off),
        (1, 0)
    );
    let s = summarize([&m, &never]);
    assert_eq!(
        (s.initial_stress_blocks, s.initial_stress_eased_off),
        (2, 1)
    );
}

#[test]
fn a_false_alarm_running_into_the_onset_pre_empts_it_and_only_an_entry_counts() {
    let segs = vec![seg("rest", 0.0, 200.0), seg("stress", 200.0, 400.0)];
    // Easing off from 190 s on: already on at the onset.
    let pre = score(
        &segs,
        &ticks(
            400.0,
            0.25,
            30.0,
            |t| if t >= 190.0 { EaseOff } else { Hold },
        ),
        400.0,
    );
    assert_eq!(
        (pre.onsets, pre.preempted_onsets, pre.missed_onsets),
        (1, 1, 0)
    );
    assert!(pre.onset_delays_s.is_empty());
    // Off at the onset, entering at 215 s.
    let entry = score(
        &segs,
        &ticks(
            400.0,
            0.25,
            30.0,
            |t| if t >= 215.0 { EaseOff } else { Hold },
        ),
        400.0,
    );
    assert_eq!(entry.onset_delays_s, vec![15.0]);
    assert_eq!(summarize([&pre, &entry]).preempted_onsets, 1);
}

#[test]
fn stress_during_calibration_is_initial_and_stress_after_recovery_is_an_onset() {
    // The baseline takes 120 s; the stressor starts at 75 s.
    let segs = vec![
        seg("baseline", 0.0, 75.0),
        seg("speech", 75.0, 300.0),
        seg("recovery", 300.0, 400.0),
        seg("arithmetic", 400.0, 500.0),
        seg("rest", 500.0, 600.0),
    ];
    let d = ticks(600.0, 0.25, 120.0, |t| {
        if (410.0..520.0).contains(&t) {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score(&segs, &d, 600.0);
    assert_eq!(
        (m.initial_stress_blocks, m.initial_stress_eased_off),
        (1, 0)
    );
    assert_eq!((m.onsets, m.missed_onsets), (1, 0));
    assert_eq!(m.onset_delays_s, vec![10.0]);
    // The first block was not eased off at its end; the second was, and recovered at 520 s.
    assert_eq!(m.not_eased_at_end, 1);
    assert_eq!(m.recovery_delays_s, vec![20.0]);
}

fn stressed_start() -> Vec<Segment> {
    vec![
        seg("stress", 0.0, 300.0),
        seg("recovery", 300.0, 600.0),
        seg("rest", 600.0, 1200.0),
    ]
}

#[test]
fn initial_stress_counts_an_ease_off_in_its_first_60_s_of_any_rule() {
    // Real decisions from the first tick (no calibration); ease_off from 60 s exactly.
    let d = ticks(1200.0, 0.5, 0.0, |t| {
        if (60.0..300.0).contains(&t) {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score(&stressed_start(), &d, 1200.0);
    assert_eq!(m.initial_stress_blocks, 1);
    assert_eq!(m.initial_stress_eased_off, 1);
    assert_eq!(m.initial_stress_eased_off_60s, 1);
    // From 60.5 s: too late.
    let late = ticks(1200.0, 0.5, 0.0, |t| {
        if (60.5..300.0).contains(&t) {
            EaseOff
        } else {
            Hold
        }
    });
    let m = score(&stressed_start(), &late, 1200.0);
    assert_eq!(
        (m.initial_stress_eased_off, m.initial_stress_eased_off_60s),
        (1, 0)
    );
    // A calibrating tick whose action is ease_off counts within 60 s (the app is eased off),
    // though not for `initial_stress_eased_off`, which needs a post-calibration one.
    let mut cal = ticks(1200.0, 0.5, 400.0, |_| Hold);
    cal[20] = dp(10.0, EaseOff, Rule::Calibrating);
    let m = score(&stressed_start(), &cal, 1200.0);
    assert_eq!(
        (m.initial_stress_eased_off, m.initial_stress_eased_off_60s),
        (0, 1)
    );
    // No initial stress: nothing counted, fraction undefined.
    let s = summarize([&score(
        &[seg("rest", 0.0, 600.0)],
        &ticks(600.0, 0.5, 0.0, |_| EaseOff),
        600.0,
    )]);
    assert_eq!(s.initial_stress_eased_off_60s, 0);
    assert_eq!(s.initial_stress_eased_off_60s_frac, None);
}

#[test]
fn escalate_after_initial_stress_is_a_share_of_post_calibration_ticks_after_the_block() {
    // Calibrating until 100 s; escalate 900..1000 s (200 ticks) and once inside the stress.
    let d = ticks(1200.0, 0.5, 100.0, |t| {
        if (900.0..1000.0).contains(&t) || t == 200.0 {
            Escalate
        } else {
            Hold
        }
    });
    let m = score(&stressed_start(), &d, 1200.0);
    // 300..1200 s at 2 ticks a second.
    assert_eq!(
        m.escalate_after_initial_stress,
        Share {
            hits: 200,
            ticks: 1800
        }
    );
    assert_eq!(m.escalations_during_stress, 1);
    let other = score(
        &stressed_start(),
        &ticks(1200.0, 0.5, 100.0, |_| Hold),
        1200.0,
    );
    let s = summarize([&m, &other]);
    assert_eq!(s.escalate_after_initial_stress, 200);
    assert_eq!(s.escalate_after_initial_stress_ticks, 3600);
    assert_eq!(s.escalate_after_initial_stress_frac, Some(200.0 / 3600.0));
    assert_eq!(
        (s.initial_stress_eased_off_60s, s.initial_stress_blocks),
        (0, 2)
    );
    assert_eq!(s.initial_stress_eased_off_60s_frac, Some(0.0));
    // A later stressor is not "after the initial stress" and an onset's session has none.
    let segs = vec![
        seg("stress", 0.0, 100.0),
        seg("rest", 100.0, 300.0),
        seg("stress", 300.0, 400.0),
    ];
    let m = score(&segs, &ticks(400.0, 0.5, 50.0, |_| Escalate), 400.0);
    assert_eq!(
        m.escalate_after_initial_stress,
        Share {
            hits: 400,
            ticks: 400
        }
    );
    let rts = vec![seg("rest", 0.0, 100.0), seg("stress", 100.0, 200.0)];
    let m = score(&rts, &ticks(200.0, 0.5, 50.0, |_| Escalate), 200.0);
    assert_eq!(m.escalate_after_initial_stress, Share::default());
}

#[test]
fn the_responder_rule_reads_hr_rise_or_a_responding_skin() {
    use serde_json::json;
    let p = |hr: f64, class: &str, scl: f64| json!({"heart": {"hr_rise_bpm": hr}, "eda": {"class": class, "scl_rise_us": scl}});
    assert_eq!(is_responder(&p(3.0, "non", 0.0)), Some(true));
    assert_eq!(is_responder(&p(2.99, "normal", 0.29)), Some(false));
    assert_eq!(is_responder(&p(0.5, "hypo", 0.3)), Some(true));
    assert_eq!(is_responder(&p(0.5, "normal", 1.2)), Some(true));
    assert_eq!(is_responder(&p(0.5, "non", 1.2)), Some(false));
    assert_eq!(
        is_responder(&json!({"heart": {"hr_rise_bpm": 8.0}})),
        Some(true)
    );
    assert_eq!(is_responder(&json!({"heart": {"hr_rise_bpm": 1.0}})), None);
    assert_eq!(is_responder(&json!({})), None);
    // Through a run's generator.
    let mut r = run(
        vec![seg("rest", 0.0, 100.0), seg("stress", 100.0, 200.0)],
        ticks(200.0, 0.5, 30.0, |_| Hold),
        200.0,
    );
    assert_eq!(score_run(&r).responder, None);
    r.generator = Some(json!({"person": p(5.0, "normal", 0.0)}));
    assert_eq!(score_run(&r).responder, Some(true));
    assert_eq!(score_reference(&r).responder, Some(true));
}

#[test]
fn responder_onset_figures_pool_responders_only_and_leave_pre_empted_onsets_out() {
    let segs = vec![seg("rest", 0.0, 100.0), seg("stress", 100.0, 200.0)];
    let with = |responder: Option<bool>, decisions: Vec<DecisionPoint>| PersonMetrics {
        responder,
        ..score(&segs, &decisions, 200.0)
    };
    let at = |t0: f64| {
        ticks(
            200.0,
            0.5,
            30.0,
            move |t| if t >= t0 { EaseOff } else { Hold },
        )
    };
    let people = [
        with(Some(true), at(110.0)),                          // detected, 10 s
        with(Some(true), at(130.0)),                          // detected, 30 s
        with(Some(true), ticks(200.0, 0.5, 30.0, |_| Hold)),  // missed
        with(Some(true), at(90.0)),                           // pre-empted
        with(Some(false), ticks(200.0, 0.5, 30.0, |_| Hold)), // not a responder
        with(None, at(150.0)),                                // unknown
    ];
    let s = summarize(&people);
    assert_eq!(s.responders, 4);
    assert_eq!(s.responder_onsets, 4);
    assert_eq!(s.responder_missed_onsets, 1);
    assert_eq!(s.responder_preempted_onsets, 1);
    assert_eq!(s.responder_detected_frac, Some(2.0 / 3.0));
    assert_eq!(s.responder_onset_delay_median_s, Some(20.0));
    assert_eq!(s.responder_onset_delay_p90_s, Some(28.0));
    // All people: 3 delays (10, 30, 50) and 2 missed.
    assert_eq!((s.onsets, s.missed_onsets), (6, 2));
    assert_eq!(s.onset_delay_median_s, Some(30.0));
    let none = summarize(&people[4..]);
    assert_eq!(none.responders, 0);
    assert_eq!(none.responder_detected_frac, None);
    assert_eq!(none.responder_onset_delay_median_s, None);
}

#[test]
fn ectopic_comparison_matches_ticks_by_time_and_counts_differing_actions() {
    let clean = ticks(100.0, 0.5, 10.0, |t| if t >= 50.0 { EaseOff } else { Hold });
    // Eases off 2 s later, and flickers once at 80 s.
    let mut ect = ticks(100.0, 0.5, 10.0, |t| {
        if t >= 52.0 && t != 80.0 {
            EaseOff
        } else {
            Hold
        }
    });
    // One tick missing, one extra slightly off-grid.
    ect.remove(ect.iter().position(|d| d.t == 90.0).unwrap());
    ect.push(dp(99.75, EaseOff, Rule::HighArousal));
    let c = compare_ectopic(&clean, &ect);
    assert_eq!(c.flips_clean, 1);
    assert_eq!(c.flips_ectopic, 3);
    assert_eq!(
        c.flips_clean,
        score(&[seg("rest", 0.0, 100.0)], &clean, 100.0).flips
    );
    // 50.0..51.5 (4 ticks) and 80.0 differ.
    assert_eq!(c.action_diff_ticks, 5);
    assert_eq!(c.ticks, 199);
    assert_eq!(c.unmatched_ticks, 2);
    let same = compare_ectopic(&clean, &clean);
    assert_eq!((same.action_diff_ticks, same.unmatched_ticks), (0, 0));
    let fewer = EctopicComparison {
        flips_clean: 5,
        flips_ectopic: 2,
        ..c
    };
    let s = summarize_ectopic(10.0, [&c, &fewer]);
    assert_eq!(s.n_people, 2);
    assert_eq!((s.flips_clean, s.flips_ectopic), (6, 5));
    // Only the person with more flips adds: max(0, 3 − 1) + max(0, 2 − 5).
    assert_eq!(s.ectopic_extra_flips, 2);
    assert_eq!((s.action_diff_ticks, s.ticks), (10, 398));
    assert_eq!(s.action_diff_frac, Some(10.0 / 398.0));
    assert_eq!(summarize_ectopic(10.0, []).action_diff_frac, None);
}
