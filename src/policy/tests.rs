//! Policy unit tests: hysteresis, dwell, the escalation safeguard, fail-safe, override,
//! targets and feedback.

use super::*;
use crate::baseline::score::{BaselineKind, Score, Term};
use crate::model::StreamKind;

fn term(degraded: bool) -> Term {
    Term {
        index: 0,
        value: Some(70.0),
        z: Some(0.0),
        weight: 1.0,
        stat: None,
        degraded,
        source: StreamKind::Rr,
        dropped: None,
    }
}

fn sc(z: f64) -> Score {
    Score {
        terms: vec![term(false)],
        composite: Some(z),
        confidence: 0.8,
        agreement: 1.0,
    }
}

fn base(kind: BaselineKind) -> BaselineInfo {
    BaselineInfo {
        kind,
        from_s: 60.0,
        to_s: 240.0,
        windows: 18,
        frames: 720,
        suspect: None,
        clusters: None,
        rebased: 0,
    }
}

fn session() -> BaselineInfo {
    base(BaselineKind::Session)
}

/// Feeds z(t) every 0.25 s over [from, to) and returns the decisions.
fn run(
    p: &mut Policy,
    from: f64,
    to: f64,
    z: impl Fn(f64) -> f64,
    b: &BaselineInfo,
) -> Vec<Decision> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to - 1e-9 {
        out.push(p.decide(t, sc(z(t)), b.clone(), false));
        t += 0.25;
    }
    out
}

#[test]
fn ease_off_needs_a_sustained_high_and_holds_through_the_hysteresis() {
    let mut p = Policy::new(PolicyConfig::default());
    let b = session();
    let d = run(&mut p, 0.0, 20.0, |_| 0.0, &b);
    assert!(
        d.iter()
            .all(|d| d.action == Action::Hold && d.rule == Rule::BaselineArousal)
    );
    // A 1 s spike above the top (2.3) does nothing: 2 s are needed.
    let d = run(&mut p, 20.0, 21.0, |_| 3.0, &b);
    assert!(d.iter().all(|d| d.action == Action::Hold));
    run(&mut p, 21.0, 25.0, |_| 0.0, &b);
    let d = run(&mut p, 25.0, 30.0, |_| 2.5, &b);
    let first = d.iter().find(|d| d.action == Action::EaseOff).unwrap();
    assert!((first.t - 27.0).abs() < 1e-9, "{}", first.t);
    assert_eq!(
        (first.rule, first.state),
        (Rule::HighArousal, ArousalState::High)
    );
    // Between top − 0.5 and top: still easing off.
    let d = run(&mut p, 30.0, 60.0, |_| 2.0, &b);
    assert!(d.iter().all(|d| d.action == Action::EaseOff));
    // Below 1.8: back to hold (dwell long over).
    let d = run(&mut p, 60.0, 61.0, |_| 1.0, &b);
    assert_eq!(d[0].action, Action::Hold);
    assert!((d[0].arousal.unwrap() - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12);
}

#[test]
fn a_change_inside_the_minimum_dwell_is_held() {
    let mut p = Policy::new(PolicyConfig::default());
    let b = session();
    run(&mut p, 0.0, 5.0, |_| 0.0, &b);
    let d = run(&mut p, 5.0, 20.0, |_| 3.0, &b);
    // Unknown → normal at t = 0; high is due at 7 s but the dwell holds it until 10 s.
    let first = d.iter().find(|d| d.action == Action::EaseOff).unwrap();
    assert!((first.t - 10.0).abs() < 1e-9, "{}", first.t);
    assert!(d.iter().any(|d| d.rule == Rule::MinDwell));
}

#[test]
fn escalation_needs_a_minute_of_low_arousal_at_good_quality() {
    let mut p = Policy::new(PolicyConfig::default());
    let b = session();
    run(&mut p, 0.0, 20.0, |_| 0.0, &b);
    let d = run(&mut p, 20.0, 100.0, |_| -3.0, &b);
    let first = d.iter().position(|d| d.action == Action::Escalate).unwrap();
    assert!((d[first].t - 80.0).abs() < 1e-9, "{}", d[first].t);
    assert!(
        d[..first]
            .iter()
            .skip(40)
            .all(|d| d.blocked == Some("not_sustained"))
    );
    assert_eq!(d[first].rule, Rule::LowArousal);
    // A degraded stream stops it at once, and the minute starts again afterwards.
    let mut s = sc(-3.0);
    s.terms[0].degraded = true;
    let d = p.decide(100.0, s, b.clone(), false);
    assert_eq!((d.action, d.blocked), (Action::Hold, Some("quality")));
    let d = run(&mut p, 100.25, 130.0, |_| -3.0, &b);
    assert!(d.iter().all(|d| d.action == Action::Hold));
}

#[test]
fn no_escalation_after_high_arousal_when_rising_or_too_often() {
    let cfg = PolicyConfig::default();
    let mut p = Policy::new(cfg.clone());
    let b = session();
    run(&mut p, 0.0, 20.0, |_| 3.0, &b);
    // Straight from high to very low: a minute of low is not enough, 120 s quiet are needed.
    let d = run(&mut p, 20.0, 150.0, |_| -3.0, &b);
    let first = d.iter().position(|d| d.action == Action::Escalate).unwrap();
    assert!(
        d[first].t >= 20.0 + cfg.escalate_quiet_s - 1.0,
        "{}",
        d[first].t
    );
    assert!(d.iter().any(|d| d.blocked == Some("recent_high")));
    // Rising fast while still low: blocked.
    let d = run(&mut p, 150.0, 160.0, |t| -3.0 + (t - 150.0) * 0.2, &b);
    assert!(
        d.iter().any(|d| d.blocked == Some("rising")),
        "{:?}",
        d.last().unwrap().blocked
    );
    // Back to the band, then low again: the next entry waits for the rate limit.
    let mut p = Policy::new(cfg.clone());
    run(&mut p, 0.0, 10.0, |_| 0.0, &b);
    let d = run(&mut p, 10.0, 80.0, |_| -3.0, &b);
    let t1 = d.iter().find(|d| d.action == Action::Escalate).unwrap().t;
    run(&mut p, 80.0, 100.0, |_| 0.0, &b);
    let d = run(&mut p, 100.0, 500.0, |_| -3.0, &b);
    let t2 = d.iter().find(|d| d.action == Action::Escalate).unwrap().t;
    assert!(t2 - t1 >= cfg.escalate_rate_limit_s - 1e-9, "{t1} {t2}");
    assert!(d.iter().any(|d| d.blocked == Some("rate_limited")));
}

#[test]
fn population_suspect_baselines_and_the_calm_target_never_escalate() {
    let b_pop = base(BaselineKind::Population);
    let mut sus = session();
    sus.suspect = Some("aroused_vs_population");
    for (b, target, why) in [
        (b_pop.clone(), Target::Engaged, "population_baseline"),
        (sus, Target::Engaged, "baseline_not_calm"),
        (session(), Target::Calm, "target"),
    ] {
        let mut p = Policy::new(PolicyConfig::default());
        p.set_target(Some(target));
        let d = run(&mut p, 0.0, 400.0, |_| -4.0, &b);
        assert!(d.iter().all(|d| d.action != Action::Escalate), "{why}");
        if target != Target::Calm && b.kind != BaselineKind::Population {
            assert_eq!(d.last().unwrap().blocked, Some(why));
        }
    }
    // The population prior eases off only from 3.0.
    let mut p = Policy::new(PolicyConfig::default());
    let d = run(&mut p, 0.0, 30.0, |_| 2.8, &b_pop);
    assert!(d.iter().all(|d| d.action == Action::Hold));
    let d = run(&mut p, 30.0, 60.0, |_| 3.2, &b_pop);
    assert!(d.iter().any(|d| d.action == Action::EaseOff));
    assert_eq!(d[0].target.z_low, f64::NEG_INFINITY);
}

#[test]
fn lost_signal_holds_or_eases_off_as_configured() {
    let none = || Score {
        terms: Vec::new(),
        composite: None,
        confidence: 0.0,
        agreement: 1.0,
    };
    let mut p = Policy::new(PolicyConfig::default());
    run(&mut p, 0.0, 5.0, |_| 0.0, &session());
    let d = p.decide(5.0, none(), session(), false);
    assert_eq!(
        (d.action, d.rule, d.confidence),
        (Action::Hold, Rule::NoData, 0.0)
    );
    let mut p = Policy::new(PolicyConfig {
        ease_off_on_loss: true,
        ..PolicyConfig::default()
    });
    // Never had data: no_data; had data: signal_lost → ease_off.
    assert_eq!(p.decide(0.0, none(), session(), false).rule, Rule::NoData);
    run(&mut p, 0.0, 5.0, |_| 0.0, &session());
    let d = p.decide(5.0, none(), session(), false);
    assert_eq!((d.action, d.rule), (Action::EaseOff, Rule::SignalLost));
}

#[test]
fn an_override_pins_the_action_until_auto() {
    let mut p = Policy::new(PolicyConfig::default());
    let b = session();
    p.set_override(Some(Action::EaseOff));
    let d = run(&mut p, 0.0, 5.0, |_| 0.0, &b);
    assert!(
        d.iter()
            .all(|d| d.action == Action::EaseOff && d.rule == Rule::Override)
    );
    assert_eq!(p.waiting(6.0, Rule::WarmingUp).rule, Rule::Override);
    p.set_override(None);
    let d = run(&mut p, 6.0, 8.0, |_| 0.0, &b);
    assert!(d.iter().all(|d| d.action == Action::Hold));
}

#[test]
fn feedback_moves_the_band_and_explicit_bounds_work() {
    let mut p = Policy::new(PolicyConfig::default());
    let b = session();
    // z 2.1 is inside the engaged band...
    let d = run(&mut p, 0.0, 20.0, |_| 2.1, &b);
    assert!(d.iter().all(|d| d.action == Action::Hold));
    // ...until the person says it is too intense (band −0.25 z): now 2.1 ≥ 2.05.
    assert!(p.feedback(Rating::TooIntense, 20.0));
    assert!(!p.feedback(Rating::TooIntense, 25.0), "flooding is ignored");
    let d = run(&mut p, 20.0, 40.0, |_| 2.1, &b);
    assert!(d.iter().any(|d| d.action == Action::EaseOff));
    assert_eq!(d[0].target.shift_z, -0.25);
    assert!(
        d[0].summary().contains("target engaged"),
        "{}",
        d[0].summary()
    );
    // Bounds {0.3, 0.6}: z above logit(0.6) = 0.405 eases off.
    let mut p = Policy::new(PolicyConfig::default());
    p.set_target(Some(Target::bounds(0.3, 0.6).unwrap()));
    let d = run(&mut p, 0.0, 15.0, |_| 0.6, &b);
    assert!(d.iter().any(|d| d.action == Action::EaseOff));
}

#[test]
fn heart_rate_alone_may_carry_an_onset_while_the_slow_features_lag() {
    let mut p = Policy::new(PolicyConfig::default());
    let b = session();
    run(&mut p, 0.0, 20.0, |_| 0.0, &b);
    let fast = |z_hr: f64, z: f64| {
        let mut s = sc(z);
        s.terms[0].z = Some(z_hr);
        s
    };
    // HR z 3.5 but a composite of 1.4 (the slow features not yet up): nothing.
    let mut t = 20.0;
    while t < 30.0 {
        assert_eq!(
            p.decide(t, fast(3.5, 1.4), b.clone(), false).action,
            Action::Hold
        );
        t += 0.25;
    }
    // Composite 1.6: HR carries it after the 2 s sustain.
    let mut first = None;
    while t < 40.0 {
        let d = p.decide(t, fast(3.5, 1.6), b.clone(), false);
        if d.action == Action::EaseOff && first.is_none() {
            first = Some(t);
        }
        t += 0.25;
    }
    assert_eq!(first, Some(32.0));
}
