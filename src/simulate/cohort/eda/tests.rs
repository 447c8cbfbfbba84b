//! Tests of the skin model against the published ranges it claims (see `/work/notes/eda.md`),
//! and the realism report (`report`, ignored by default):
//! `cargo test --release --lib simulate::cohort::eda::tests::report -- --ignored --nocapture`.

use super::scr::{Scr, half_recovery_s};
use super::*;
use crate::simulate::cohort::{
    ALL_SCENARIOS, CohortPerson, DRIVE_HZ, Drives, Timeline, person_seed, rng_for, streams,
};
use rand::SeedableRng;

const FS: f64 = 32.0;

/// Drives with arousal `a(t)`, exercise `e(t)`, no speaking, the given startles.
fn drives(dur: f64, a: impl Fn(f64) -> f64, e: impl Fn(f64) -> f64, st: Vec<f64>) -> Drives {
    let n = (dur * DRIVE_HZ).ceil() as usize + 1;
    let ts = (0..n).map(|i| i as f64 / DRIVE_HZ);
    Drives {
        arousal: ts.clone().map(&a).collect(),
        exercise: ts.map(&e).collect(),
        paced_resp_hz: vec![None; n],
        speaking: vec![false; n],
        startles: st,
    }
}

fn person(i: u64) -> EdaPerson {
    CohortPerson::draw(person_seed(99, i)).eda
}

fn run(p: &EdaPerson, d: &Drives, dur: f64, seed: u64) -> EdaOutput {
    simulate(&mut ChaCha8Rng::seed_from_u64(seed), p, d, dur, FS)
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn sd(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt()
}

/// Spontaneous SCRs per minute at or above `min_us`.
fn ns_rate(o: &EdaOutput, dur: f64, min_us: f64) -> f64 {
    o.scrs
        .iter()
        .filter(|(c, s)| *c == ScrCause::Spontaneous && s.amp_us >= min_us)
        .count() as f64
        / (dur / 60.0)
}

/// SD of consecutive `w`-s window means of `x` over `[t0, t1)`, divided by their mean.
fn window_spread(x: &[f64], fs: f64, t0: f64, t1: f64, w: f64) -> (f64, f64) {
    let per = (w * fs).round() as usize;
    let (i0, i1) = ((t0 * fs) as usize, ((t1 * fs) as usize).min(x.len()));
    let means: Vec<f64> = x[i0..i1].chunks_exact(per).map(mean).collect();
    (sd(&means), sd(&means) / mean(&means))
}

#[test]
fn the_scr_shape_has_the_drawn_rise_and_half_recovery() {
    for (rise, half) in [(0.5, 2.0), (1.5, 4.0), (3.0, 8.0), (5.0, 10.0)] {
        let s = Scr::new(0.0, 1.0, rise, half);
        assert!(
            (s.rise_s() - rise).abs() < 0.01 * rise,
            "{rise} {}",
            s.rise_s()
        );
        assert!((half_recovery_s(&s) - half).abs() < 0.02 * half);
        assert!((s.value_at(rise) - 1.0).abs() < 1e-6);
        assert!(s.value_at(14.0 * s.tau_decay_s) < 1e-4);
    }
}

#[test]
fn cohort_distributions_lie_in_the_published_ranges() {
    let dur = 600.0;
    let rest = drives(dur, |_| 0.0, |_| 0.0, vec![]);
    let (mut scl, mut rate01, mut rate05, mut amps, mut rises, mut halves) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut r_lab = vec![];
    for i in 0..60 {
        let p = person(i);
        let o = run(&p, &rest, dur, i);
        scl.push(mean(&o.samples[(300.0 * FS) as usize..]));
        if p.class != Responder::Non {
            rate01.push(ns_rate(&o, dur, 0.01));
            rate05.push(ns_rate(&o, dur, 0.05));
            r_lab.push((p.lability_z, ns_rate(&o, dur, 0.01)));
        }
        for (_, s) in &o.scrs {
            amps.push(s.amp_us);
            rises.push(s.rise_s());
            halves.push(half_recovery_s(s));
        }
    }
    // SCL: median in 2–10 µS, 5–95 % within ~1–20 µS (Dawson et al. 2007: 2–20 µS, palmar).
    let (q05, q50, q95) = (
        quantile(&scl, 0.05),
        quantile(&scl, 0.5),
        quantile(&scl, 0.95),
    );
    assert!((2.0..10.0).contains(&q50), "SCL median {q50}");
    assert!(q05 > 0.7 && q95 < 25.0, "SCL 5–95 % {q05}–{q95}");
    // NS-SCRs at rest: median 1–3 per min, with stabiles below and labiles above.
    let m01 = quantile(&rate01, 0.5);
    let m05 = quantile(&rate05, 0.5);
    assert!(
        (1.0..3.0).contains(&m01),
        "NS-SCR/min ≥ 0.01 µS median {m01}"
    );
    assert!(
        (0.7..3.0).contains(&m05),
        "NS-SCR/min ≥ 0.05 µS median {m05}"
    );
    assert!(quantile(&rate01, 0.1) < 1.0 && quantile(&rate01, 0.9) > 3.0);
    // Shapes within the physiological ranges; amplitudes mostly above the 0.01 µS criterion.
    assert!(rises.iter().all(|r| (0.49..5.01).contains(r)));
    assert!(halves.iter().all(|h| (1.99..10.05).contains(h)));
    let a50 = quantile(&amps, 0.5);
    assert!((0.03..0.3).contains(&a50), "NS-SCR amplitude median {a50}");
    // Lability sets the rate.
    let hi: Vec<f64> = r_lab.iter().filter(|x| x.0 > 0.5).map(|x| x.1).collect();
    let lo: Vec<f64> = r_lab.iter().filter(|x| x.0 < -0.5).map(|x| x.1).collect();
    assert!(
        mean(&hi) > 2.0 * mean(&lo),
        "labiles {hi:?} stabiles {lo:?}"
    );
}

#[test]
fn about_ten_percent_are_non_responders_with_a_low_flat_skin() {
    let n = 500;
    let people: Vec<EdaPerson> = (0..n).map(person).collect();
    let non = people.iter().filter(|p| p.class == Responder::Non).count() as f64;
    // Binomial(500, 0.10): mean 50, SD 6.7; 3 SD either side.
    assert!((30.0..70.0).contains(&non), "{non} non-responders of {n}");
    let scl_of = |c: bool| {
        let v: Vec<f64> = people
            .iter()
            .filter(|p| (p.class == Responder::Non) == c)
            .map(|p| p.scl_us.ln())
            .collect();
        mean(&v)
    };
    assert!(scl_of(true) < scl_of(false) - 0.4);
    // Behaviourally: over 10 min at rest a non-responder has almost no scorable SCR.
    let dur = 600.0;
    let rest = drives(dur, |_| 0.0, |_| 0.0, vec![]);
    for (i, p) in people
        .iter()
        .enumerate()
        .filter(|(_, p)| p.class == Responder::Non)
        .take(15)
    {
        let o = run(p, &rest, dur, i as u64);
        assert!(ns_rate(&o, dur, 0.05) < 0.2, "{p:?}");
    }
}

#[test]
fn arousal_raises_scl_and_the_scr_rate_and_amplitude() {
    let dur = 1200.0;
    let d = drives(dur, |t| if t < 600.0 { 0.0 } else { 1.0 }, |_| 0.0, vec![]);
    let (mut up_scl, mut n_resp) = (0, 0);
    let (mut before, mut after, mut amp_b, mut amp_a) = (0.0, 0.0, vec![], vec![]);
    for i in 0..40 {
        let p = person(i);
        if p.class == Responder::Non {
            continue;
        }
        n_resp += 1;
        let o = run(&p, &d, dur, i);
        let t0 = mean(&o.tonic_us[(300.0 * DRIVE_HZ) as usize..(600.0 * DRIVE_HZ) as usize]);
        let t1 = mean(&o.tonic_us[(900.0 * DRIVE_HZ) as usize..(1200.0 * DRIVE_HZ) as usize]);
        if t1 > t0 {
            up_scl += 1;
        }
        for (_, s) in o.scrs.iter().filter(|(c, _)| *c == ScrCause::Spontaneous) {
            if (300.0..600.0).contains(&s.onset_s) {
                before += 1.0;
                amp_b.push(s.amp_us);
            } else if s.onset_s >= 900.0 {
                after += 1.0;
                amp_a.push(s.amp_us);
            }
        }
    }
    assert!(up_scl as f64 >= 0.85 * n_resp as f64, "{up_scl}/{n_resp}");
    assert!(after > 2.0 * before, "{before} → {after}");
    assert!(quantile(&amp_a, 0.5) > 1.5 * quantile(&amp_b, 0.5));
}

#[test]
fn speaking_raises_the_scr_rate_on_its_own() {
    let dur = 1200.0;
    let quiet = drives(dur, |_| 0.0, |_| 0.0, vec![]);
    let mut talk = quiet.clone();
    talk.speaking = (0..talk.speaking.len())
        .map(|k| k as f64 / DRIVE_HZ >= 600.0)
        .collect();
    let (mut q, mut t) = (0.0, 0.0);
    for i in 0..40 {
        let p = person(i);
        let count = |o: &EdaOutput| {
            o.scrs
                .iter()
                .filter(|(_, s)| s.onset_s >= 600.0 && s.amp_us >= 0.01)
                .count() as f64
        };
        q += count(&run(&p, &quiet, dur, i));
        t += count(&run(&p, &talk, dur, i));
    }
    assert!(t > 1.25 * q, "{q} → {t}");
}

#[test]
fn startle_scrs_follow_each_probe_and_habituate() {
    let dur = 900.0;
    let probes = vec![200.0, 320.0, 450.0, 600.0, 760.0];
    let d = drives(dur, |_| 0.0, |_| 0.0, probes.clone());
    let mut by_probe = vec![vec![]; probes.len()];
    let mut bigger_than_ns = 0;
    let mut responders = 0;
    for i in 0..60 {
        let p = person(i);
        if p.class == Responder::Non {
            continue;
        }
        responders += 1;
        let o = run(&p, &d, dur, i);
        let st: Vec<&Scr> = o
            .scrs
            .iter()
            .filter(|(c, _)| *c == ScrCause::Startle)
            .map(|(_, s)| s)
            .collect();
        assert_eq!(st.len(), probes.len());
        for (k, s) in st.iter().enumerate() {
            let lat = s.onset_s - probes[k];
            assert!((1.0..3.0).contains(&lat), "latency {lat}");
            by_probe[k].push(s.amp_us);
        }
        if st[0].amp_us > p.ns_amp_us {
            bigger_than_ns += 1;
        }
    }
    let m: Vec<f64> = by_probe.iter().map(|v| mean(v)).collect();
    // Falling over the first probes, then at the floor (Lim et al. 1999: exponential).
    assert!(m[1] < m[0] && m[2] < m[1], "{m:?}");
    assert!(m[4] < 0.5 * m[0], "{m:?}");
    assert!(bigger_than_ns as f64 > 0.8 * responders as f64);
}

#[test]
fn exercise_raises_the_tonic_level_less_than_stress_in_the_same_person() {
    let dur = 900.0;
    let step = |t: f64| if t < 300.0 { 0.0 } else { 1.0 };
    let ex = drives(dur, |_| 0.0, step, vec![]);
    let st = drives(dur, step, |_| 0.0, vec![]);
    for i in 0..40 {
        let p = person(i);
        // The same seed gives the same drift, so the difference is the response.
        let a = run(&p, &ex, dur, i).tonic_us;
        let b = run(&p, &st, dur, i).tonic_us;
        let k0 = (290.0 * DRIVE_HZ) as usize;
        let k1 = (850.0 * DRIVE_HZ) as usize;
        let rise_ex = a[k1] - a[k0];
        let rise_st = b[k1] - b[k0];
        assert!(rise_st - rise_ex > 0.0, "{i}: {rise_ex} vs {rise_st}");
        assert!(a[k1] > run(&p, &drives(dur, |_| 0.0, |_| 0.0, vec![]), dur, i).tonic_us[k1]);
    }
}

#[test]
fn artefacts_arrive_at_the_intended_rates_and_look_like_artefacts() {
    let dur = 1200.0;
    let rest = drives(dur, |_| 0.0, |_| 0.0, vec![]);
    let walk = drives(dur, |_| 0.0, |_| 1.0, vec![]);
    let (mut got_m, mut want_m, mut got_c, mut want_c, mut got_walk) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut steep = 0;
    for i in 0..60 {
        let p = person(i);
        let o = run(&p, &rest, dur, i);
        got_m += o.artefacts.iter().filter(|a| a.kind == "motion").count() as f64;
        got_c += o
            .artefacts
            .iter()
            .filter(|a| a.kind == "contact_loss")
            .count() as f64;
        want_m += p.motion_per_min * dur / 60.0;
        want_c += p.contact_loss_per_min * dur / 60.0;
        let w = run(&p, &walk, dur, i);
        got_walk += w.artefacts.len() as f64;
        for a in &w.artefacts {
            let i0 = (a.start_s * FS) as usize;
            let i1 = ((a.end_s * FS) as usize).min(w.samples.len());
            let seg = &w.samples[i0..i1];
            if a.kind == "contact_loss" {
                let low = seg.iter().filter(|&&v| v < 0.05).count() as f64;
                assert!(low >= 2.0 * FS, "{a:?}");
            } else if seg.windows(2).any(|x| ((x[1] - x[0]) * FS).abs() > 10.0) {
                steep += 1;
            }
        }
    }
    // Poisson counts (a little fewer: no new artefact during one): within 4 SD.
    assert!(
        (got_m - 0.97 * want_m).abs() < 4.0 * want_m.sqrt() + 2.0,
        "{got_m} vs {want_m}"
    );
    assert!(
        (got_c - want_c).abs() < 4.0 * want_c.sqrt() + 2.0,
        "{got_c} vs {want_c}"
    );
    assert!(
        got_walk > 5.0 * (got_m + got_c),
        "{got_walk} vs {}",
        got_m + got_c
    );
    let motion_walk = got_walk * 0.75;
    assert!(
        steep as f64 > 0.6 * motion_walk,
        "{steep} steep of ~{motion_walk}"
    );
}

#[test]
fn the_same_rng_gives_the_same_skin_and_samples_are_finite_and_non_negative() {
    for s in ALL_SCENARIOS {
        for i in 0..3 {
            let seed = person_seed(7, i);
            let person = CohortPerson::draw(seed);
            let dur = s.default_duration_s();
            let tl = Timeline::new(s, dur, &mut rng_for(seed, streams::TIMELINE));
            let d = Drives::new(&person.psyche, &tl, &mut rng_for(seed, streams::AROUSAL));
            let a = simulate(&mut rng_for(seed, streams::EDA), &person.eda, &d, dur, FS);
            let b = simulate(&mut rng_for(seed, streams::EDA), &person.eda, &d, dur, FS);
            assert_eq!(a, b);
            assert_eq!(a.samples.len(), (dur * FS) as usize);
            assert!(
                a.samples.iter().all(|v| v.is_finite() && *v >= 0.0),
                "{s:?}"
            );
            let c = simulate(
                &mut rng_for(seed + 1, streams::EDA),
                &person.eda,
                &d,
                dur,
                FS,
            );
            assert_ne!(a.samples, c.samples);
        }
    }
}

/// Relative SD of 10 s window means of the real 40 s BSN clip (raw ADC units, so only the
/// ratio to the mean means anything).
fn bsn_relative_10s_spread() -> f64 {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/signals/bsn_eda_10hz.csv"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let x: Vec<f64> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    window_spread(&x, 10.0, 0.0, 40.0, 10.0).1
}

#[test]
fn the_resting_10s_spread_is_compared_with_the_real_clip() {
    let real = bsn_relative_10s_spread();
    assert!(real > 0.1, "the clip moves: {real}");
    // Simulated: every 40 s clip of 20 min rest (after 5 min of settling) of 40 people.
    let dur = 1200.0;
    let rest = drives(dur, |_| 0.0, |_| 0.0, vec![]);
    let mut rel = vec![];
    for i in 0..40 {
        let o = run(&person(i), &rest, dur, i);
        let mut t = 300.0;
        while t + 40.0 <= dur {
            rel.push(window_spread(&o.samples, FS, t, t + 40.0, 10.0).1);
            t += 40.0;
        }
    }
    // Honest check, not a fit: resting clips are calmer than the real clip (which is not known
    // to be at rest), but the largest resting clips move by several per cent.
    assert!(quantile(&rel, 0.99) > 0.02, "{}", quantile(&rel, 0.99));
    assert!(quantile(&rel, 0.5) < real);
}

#[test]
#[ignore = "report: prints the realism numbers"]
fn report() {
    let t_start = std::time::Instant::now();
    let mut n_samples = 0usize;
    for s in ALL_SCENARIOS {
        for i in 0..50 {
            let seed = person_seed(1, i);
            let person = CohortPerson::draw(seed);
            let dur = s.default_duration_s();
            let tl = Timeline::new(s, dur, &mut rng_for(seed, streams::TIMELINE));
            let d = Drives::new(&person.psyche, &tl, &mut rng_for(seed, streams::AROUSAL));
            n_samples += simulate(&mut rng_for(seed, streams::EDA), &person.eda, &d, dur, FS)
                .samples
                .len();
        }
    }
    println!(
        "speed: 50 people x 7 scenarios, {n_samples} samples at 32 Hz in {:.2} s",
        t_start.elapsed().as_secs_f64()
    );
    let people: Vec<EdaPerson> = (0..200).map(person).collect();
    let share = |c: Responder| people.iter().filter(|p| p.class == c).count() as f64 / 2.0;
    println!(
        "classes of 200: non {:.1} %, hypo {:.1} %, normal {:.1} %",
        share(Responder::Non),
        share(Responder::Hypo),
        share(Responder::Normal)
    );
    let dur = 1200.0;
    let rest = drives(dur, |_| 0.0, |_| 0.0, vec![]);
    let stress = drives(dur, |t| if t < 600.0 { 0.0 } else { 1.0 }, |_| 0.0, vec![]);
    let walk = drives(dur, |_| 0.0, |t| if t < 600.0 { 0.0 } else { 1.0 }, vec![]);
    let (mut scl, mut r01, mut r05, mut amps) = (vec![], vec![], vec![], vec![]);
    let (mut sp10, mut sp60, mut sp120) = (vec![], vec![], vec![]);
    let (mut rel10, mut d_stress, mut d_walk, mut r_stress) = (vec![], vec![], vec![], vec![]);
    let (mut motion, mut contact, mut startle1) = (0.0, 0.0, vec![]);
    for (i, p) in people.iter().enumerate().take(60) {
        let o = run(p, &rest, dur, i as u64);
        scl.push(mean(&o.samples[(300.0 * FS) as usize..]));
        r01.push(ns_rate(&o, dur, 0.01));
        r05.push(ns_rate(&o, dur, 0.05));
        amps.extend(o.scrs.iter().map(|(_, s)| s.amp_us));
        sp10.push(window_spread(&o.samples, FS, 300.0, dur, 10.0).0);
        sp60.push(window_spread(&o.samples, FS, 300.0, dur, 60.0).0);
        sp120.push(window_spread(&o.samples, FS, 240.0, dur, 120.0).0);
        let mut t = 300.0;
        while t + 40.0 <= dur {
            rel10.push(window_spread(&o.samples, FS, t, t + 40.0, 10.0).1);
            t += 40.0;
        }
        motion += o.artefacts.iter().filter(|a| a.kind == "motion").count() as f64;
        contact += o
            .artefacts
            .iter()
            .filter(|a| a.kind == "contact_loss")
            .count() as f64;
        let s = run(p, &stress, dur, i as u64);
        let w = run(p, &walk, dur, i as u64);
        let m =
            |x: &[f64], a: f64, b: f64| mean(&x[(a * DRIVE_HZ) as usize..(b * DRIVE_HZ) as usize]);
        // Paired with the same person's rest run (same drift), so only the response remains.
        let base = m(&o.tonic_us, 900.0, 1200.0) - m(&o.tonic_us, 300.0, 600.0);
        d_stress.push(m(&s.tonic_us, 900.0, 1200.0) - m(&s.tonic_us, 300.0, 600.0) - base);
        d_walk.push(m(&w.tonic_us, 900.0, 1200.0) - m(&w.tonic_us, 300.0, 600.0) - base);
        if p.class != Responder::Non {
            let st = run(
                p,
                &drives(900.0, |_| 0.0, |_| 0.0, vec![200.0]),
                900.0,
                i as u64,
            );
            if let Some((_, x)) = st.scrs.iter().find(|(c, _)| *c == ScrCause::Startle) {
                startle1.push(x.amp_us);
            }
        }
        let k = |o: &EdaOutput, a: f64, b: f64| {
            o.scrs
                .iter()
                .filter(|(c, x)| *c == ScrCause::Spontaneous && x.amp_us >= 0.01)
                .filter(|(_, x)| (a..b).contains(&x.onset_s))
                .count() as f64
                / ((b - a) / 60.0)
        };
        r_stress.push(k(&s, 900.0, 1200.0));
    }
    let q = |v: &[f64]| {
        format!(
            "p5 {:.3} / p50 {:.3} / p95 {:.3}",
            quantile(v, 0.05),
            quantile(v, 0.5),
            quantile(v, 0.95)
        )
    };
    println!("60 people, 20 min seated rest (after 5 min):");
    println!("  SCL µS: {}", q(&scl));
    println!("  NS-SCR/min >= 0.01 µS: {}", q(&r01));
    println!("  NS-SCR/min >= 0.05 µS: {}", q(&r05));
    println!("  SCR amplitude µS (all SCRs): {}", q(&amps));
    println!("  SD of 10 s SCL means µS: {}", q(&sp10));
    println!("  SD of 60 s SCL means µS: {}", q(&sp60));
    println!("  SD of 120 s SCL means µS: {}", q(&sp120));
    println!("  relative SD of 10 s means in 40 s clips: {}", q(&rel10));
    println!(
        "  real bsn clip (40 s, raw units): {:.3}",
        bsn_relative_10s_spread()
    );
    println!(
        "  artefacts per person-hour at rest: motion {:.2}, contact loss {:.2}",
        motion / 20.0,
        contact / 20.0
    );
    println!("full load (arousal 1) vs rest, same person:");
    println!("  tonic rise µS: {}", q(&d_stress));
    println!("  NS-SCR/min >= 0.01 µS under load: {}", q(&r_stress));
    println!("  first startle SCR µS (responders): {}", q(&startle1));
    println!("full light walking vs rest, same person:");
    println!("  tonic rise µS: {}", q(&d_walk));
}

#[test]
fn stressor_onsets_evoke_scrs_in_the_tsst_and_rarely_at_rest() {
    use crate::simulate::cohort::CohortScenario;
    let share = |s: CohortScenario| {
        let mut with = 0;
        for i in 0..40 {
            let seed = person_seed(3, i);
            let person = CohortPerson::draw(seed);
            let dur = s.default_duration_s();
            let tl = Timeline::new(s, dur, &mut rng_for(seed, streams::TIMELINE));
            let d = Drives::new(&person.psyche, &tl, &mut rng_for(seed, streams::AROUSAL));
            let o = simulate(&mut rng_for(seed, streams::EDA), &person.eda, &d, dur, FS);
            if o.scrs.iter().any(|(c, _)| *c == ScrCause::Onset) {
                with += 1;
            }
        }
        with as f64 / 40.0
    };
    let (tsst, rest) = (share(CohortScenario::Tsst), share(CohortScenario::Rest));
    println!("onset SCRs: tsst {tsst}, rest {rest}");
    assert!(tsst > 0.7 && rest < 0.2, "tsst {tsst}, rest {rest}");
}
