use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9
}

fn assert_times(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(close(*g, *w), "{got:?} vs {want:?}");
    }
}

fn tl(lost_tolerance_s: f64, uncertainty_window: usize) -> Timeline {
    Timeline::new(TimelineConfig {
        lost_tolerance_s,
        uncertainty_window,
    })
}

fn beats(t: &mut Timeline, host_t: f64, rr: &[u16]) -> (Option<BeatGap>, Beats) {
    t.on_rr(host_t, rr)
        .expect("a non-empty notification gives beats")
}

#[test]
fn the_first_notification_anchors_its_newest_beat_at_host_time() {
    let mut t = Timeline::new(TimelineConfig::default());
    assert_eq!(t.last_beat(), None);
    let (gap, b) = beats(&mut t, 10.0, &[1024, 512, 800]);
    assert_eq!(gap, None);
    // Walk back from 10.0: 800/1024 = 0.78125, then 0.5.
    assert_times(&b.times, &[10.0 - 0.78125 - 0.5, 10.0 - 0.78125, 10.0]);
    assert_eq!(b.rr_ms, vec![1000.0, 500.0, 781.25]);
    assert_eq!(b.raw, vec![1024.0, 512.0, 800.0]);
    assert!(b.suspect.is_empty());
    assert_eq!(b.uncertainty_s, 0.0);
    assert_eq!(t.last_beat(), Some(10.0));
}

#[test]
fn later_notifications_continue_the_cumulative_sum_and_do_not_follow_the_arrival() {
    let mut t = Timeline::new(TimelineConfig::default());
    beats(&mut t, 10.0, &[1024]);
    // Arrives 0.3 s later than the sum says: the beat stays on the sum.
    let (gap, b) = beats(&mut t, 11.3, &[1024]);
    assert_eq!(gap, None);
    assert_times(&b.times, &[11.0]);
    assert!(close(b.uncertainty_s, 0.3), "{}", b.uncertainty_s);
    let (_, b) = beats(&mut t, 12.05, &[512, 512]);
    assert_times(&b.times, &[11.5, 12.0]);
    assert!(b.suspect.is_empty());
}

#[test]
fn zero_one_two_and_nine_intervals_per_notification() {
    let mut t = tl(2.0, 60);
    beats(&mut t, 5.0, &[700]);
    let step = 700.0 / 1024.0;
    let mut last = 5.0;
    let mut host = 5.0;
    for n in [0usize, 1, 2, 9, 0, 1] {
        host += n as f64 * step;
        let rr = vec![700u16; n];
        let out = t.on_rr(host, &rr);
        if n == 0 {
            assert_eq!(out, None);
            assert_eq!(t.last_beat(), Some(last));
            continue;
        }
        let (gap, b) = out.expect("beats");
        assert_eq!(gap, None);
        assert_eq!(b.times.len(), n);
        assert_eq!(b.rr_ms.len(), n);
        assert_eq!(b.raw.len(), n);
        let want: Vec<f64> = (1..=n).map(|k| last + k as f64 * step).collect();
        assert_times(&b.times, &want);
        last = want[n - 1];
    }
}

#[test]
fn an_empty_notification_makes_the_next_first_interval_suspect() {
    let mut t = Timeline::new(TimelineConfig::default());
    beats(&mut t, 1.0, &[1024]);
    assert_eq!(t.on_rr(2.0, &[]), None);
    assert_eq!(t.last_beat(), Some(1.0));
    let (gap, b) = beats(&mut t, 3.0, &[1024, 1024]);
    assert_eq!(gap, None);
    assert_eq!(b.suspect, vec![0]);
    assert_times(&b.times, &[2.0, 3.0]);
    let (_, b) = beats(&mut t, 4.0, &[1024]);
    assert!(b.suspect.is_empty(), "only the first batch after it");
}

#[test]
fn a_lost_notification_gives_a_gap_and_a_suspect_interval() {
    let mut t = tl(0.3, 60);
    beats(&mut t, 1.0, &[1024]);
    beats(&mut t, 2.0, &[1024]);
    // The notification at 3.0 (one beat) is lost.
    let (gap, b) = beats(&mut t, 4.0, &[1024]);
    assert_eq!(
        gap,
        Some(BeatGap {
            start: 2.0,
            end: 4.0
        })
    );
    assert_eq!(b.suspect, vec![0]);
    assert_times(&b.times, &[4.0]);
    assert_eq!(b.uncertainty_s, 0.0, "a new anchoring");
    assert_eq!(t.lost(), 1);
    // And it continues from the new anchor.
    let (gap, b) = beats(&mut t, 5.02, &[1024]);
    assert_eq!(gap, None);
    assert_times(&b.times, &[5.0]);
    assert!(b.suspect.is_empty());
}

#[test]
fn the_same_arrivals_without_a_loss_give_no_gap() {
    let mut t = tl(0.3, 60);
    for k in 1..=4 {
        let (gap, b) = beats(&mut t, f64::from(k), &[1024]);
        assert_eq!(gap, None);
        assert!(b.suspect.is_empty());
    }
    assert_eq!(t.lost(), 0);
}

#[test]
fn an_outage_reanchors_marks_suspect_and_keeps_order() {
    let mut t = Timeline::new(TimelineConfig::default());
    beats(&mut t, 10.0, &[1024]);
    t.outage();
    // Back at 30 s: anchored there, no BeatGap (the source emits the outage's gap).
    let (gap, b) = beats(&mut t, 30.0, &[1024, 1024]);
    assert_eq!(gap, None);
    assert_times(&b.times, &[29.0, 30.0]);
    assert_eq!(b.suspect, vec![0]);
    // An outage whose batch would reach back before the last beat is shifted later.
    t.outage();
    let (gap, b) = beats(&mut t, 30.5, &[1024, 1024]);
    assert_eq!(gap, None);
    assert_times(&b.times, &[31.0, 32.0]);
    assert!(b.times[0] > 30.0);
    assert_eq!(b.suspect, vec![0]);
    // Then the sum continues.
    let (_, b) = beats(&mut t, 33.0, &[1024]);
    assert_times(&b.times, &[33.0]);
    assert!(b.suspect.is_empty());
}

#[test]
fn a_zero_interval_is_refused_and_the_next_is_suspect() {
    let mut t = Timeline::new(TimelineConfig::default());
    beats(&mut t, 1.0, &[1024]);
    let (_, b) = beats(&mut t, 2.0, &[0, 1024]);
    assert_times(&b.times, &[2.0]);
    assert_eq!(b.suspect, vec![0]);
    assert_eq!((t.refused(), t.refused_values()), (1, 1));
    let (_, b) = beats(&mut t, 3.0, &[512, 0, 512]);
    assert_times(&b.times, &[2.5, 3.0]);
    assert_eq!(b.raw, vec![512.0, 512.0]);
    assert_eq!(b.suspect, vec![1]);
    // A zero at the end: the next batch's first is suspect.
    let (_, b) = beats(&mut t, 4.0, &[1024, 0]);
    assert!(b.suspect.is_empty());
    let (_, b) = beats(&mut t, 5.0, &[1024]);
    assert_eq!(b.suspect, vec![0]);
    // Only zeros: nothing returned, counted, and the next is suspect.
    assert_eq!(t.on_rr(6.0, &[0, 0]), None);
    assert_eq!((t.refused(), t.refused_values()), (4, 5));
    assert_eq!(t.last_beat(), Some(5.0));
    let (_, b) = beats(&mut t, 7.0, &[1024, 1024]);
    assert_eq!(b.suspect, vec![0]);
}

#[test]
fn a_sum_running_ahead_of_the_host_is_kept() {
    let mut t = tl(0.3, 60);
    beats(&mut t, 10.0, &[1024]);
    // Two seconds of beats in 0.2 s of host time: residual −1.8 s.
    let (gap, b) = beats(&mut t, 10.2, &[1024, 1024]);
    assert_eq!(gap, None);
    assert_times(&b.times, &[11.0, 12.0]);
    assert!(close(b.uncertainty_s, 1.8));
    // The host catches up to the sum (residual 0, 1.8 s above the lowest): the host is not
    // ahead of the sum, so nothing was lost and nothing moves.
    let (gap, b) = beats(&mut t, 13.0, &[1024]);
    assert_eq!(gap, None);
    assert_times(&b.times, &[13.0]);
    assert!(t.last_beat().is_some_and(|l| l > 12.0));
}

#[test]
fn uncertainty_is_the_residual_spread_over_the_window() {
    let jitter = [0.03, 0.07, 0.0, 0.05, 0.08, 0.01, 0.02, 0.06, 0.04, 0.0];
    let window = 4;
    let mut t = tl(2.0, window);
    for (k, j) in jitter.iter().enumerate() {
        let (gap, b) = beats(&mut t, k as f64 + j, &[1024]);
        assert_eq!(gap, None);
        // Residuals are j − j[0]; their spread is the spread of the jitter.
        let w = &jitter[(k + 1).saturating_sub(window)..=k];
        let hi = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lo = w.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(
            close(b.uncertainty_s, hi - lo),
            "k {k}: {} vs {}",
            b.uncertainty_s,
            hi - lo
        );
    }
}

#[test]
fn a_non_finite_host_time_changes_nothing() {
    let mut t = Timeline::new(TimelineConfig::default());
    beats(&mut t, 1.0, &[1024]);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 2.0 * MAX_HOST_T] {
        assert_eq!(t.on_rr(bad, &[1024]), None);
        assert_eq!(t.on_rr(bad, &[]), None);
        assert_eq!(t.on_rr(bad, &[0]), None);
    }
    assert_eq!(t.last_beat(), Some(1.0));
    assert_eq!(t.refused(), 0);
    let (_, b) = beats(&mut t, 2.0, &[1024]);
    assert!(
        b.suspect.is_empty(),
        "the empty one above was not remembered"
    );
    assert_times(&b.times, &[2.0]);
}

/// What a simulated hour gave.
struct SimOut {
    /// Runs of lost notifications followed by a delivery.
    drops: usize,
    gaps: usize,
    gaps_right_after_a_drop: usize,
    beats_sent: usize,
    beats_returned: usize,
}

/// One hour of a strap: beats at `rr_lo..rr_hi` s (slow sine plus noise), stamped on a strap
/// clock with `skew_ppm` and 1/1024 s ticks, notified every 1 s with a latency of 0–80 ms.
/// Every `drop_every` notifications (offset at random) `drop_run` consecutive non-empty
/// notifications are lost. Asserts strict order and the beat count.
fn simulate_hour(
    seed: u64,
    rr: (f64, f64),
    drop_every: usize,
    drop_run: usize,
    tol: f64,
) -> SimOut {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let skew = 40e-6;
    let (mid, amp) = ((rr.0 + rr.1) / 2.0, (rr.1 - rr.0) / 2.0);
    let mut t = tl(tol, 60);
    let mut last_tick: i64 = 0;
    let mut next_drop = rng.random_range(20..drop_every);
    let mut dropping = 0usize;
    let mut prev_time = f64::NEG_INFINITY;
    let mut out = SimOut {
        drops: 0,
        gaps: 0,
        gaps_right_after_a_drop: 0,
        beats_sent: 0,
        beats_returned: 0,
    };
    let mut after_drop = false;
    let mut pending: Vec<u16> = Vec::new();
    let mut next_beat = mid;
    for n in 1..=3600usize {
        let send = n as f64;
        while next_beat <= send {
            let tau = next_beat; // true time of the beat, s
            let tick = ((tau * (1.0 + skew)) * 1024.0).round() as i64;
            let raw = u16::try_from(tick - last_tick).expect("an interval fits");
            last_tick = tick;
            pending.push(raw);
            let r = mid
                + 0.7 * amp * (2.0 * std::f64::consts::PI * tau / 60.0).sin()
                + rng.random_range(-0.3..0.3) * amp;
            next_beat = tau + r;
        }
        let rr = std::mem::take(&mut pending);
        if drop_run > 0 && n > 1 && n >= next_drop && !rr.is_empty() && dropping == 0 {
            dropping = drop_run;
            out.drops += 1;
            next_drop = n + rng.random_range(drop_every / 2..drop_every);
        }
        if dropping > 0 {
            if !rr.is_empty() {
                dropping -= 1;
                after_drop = true;
            }
            continue;
        }
        let host = send + rng.random_range(0.0..0.08);
        out.beats_sent += rr.len();
        let Some((gap, b)) = t.on_rr(host, &rr) else {
            assert!(rr.is_empty());
            continue;
        };
        if let Some(g) = gap {
            out.gaps += 1;
            out.gaps_right_after_a_drop += usize::from(after_drop);
            assert!(g.start < g.end);
            assert_eq!(b.suspect.first(), Some(&0));
        }
        after_drop = false;
        assert!(b.times.len() <= rr.len());
        out.beats_returned += b.times.len();
        for &x in &b.times {
            assert!(x > prev_time, "n {n}: {x} after {prev_time}");
            prev_time = x;
        }
    }
    if after_drop {
        // A run lost at the very end: nothing arrived after it to show the loss.
        out.drops -= 1;
    }
    out
}

#[test]
fn an_hour_at_rest_with_skew_and_jitter_finds_every_lost_run_and_nothing_else() {
    // 60–95 bpm: a non-empty notification's newest beat is up to one interval (≤ 1 s) old when
    // sent, so the residual varies by ≈ 1.08 s without any loss; a run of 3 lost notifications
    // loses ≥ 2 s of beats. Tolerance 1.5 s sits between.
    for seed in 1..=3 {
        let o = simulate_hour(seed, (0.63, 0.98), 300, 3, 1.5);
        assert!(o.drops >= 10, "seed {seed}: {} drops", o.drops);
        assert_eq!(o.gaps, o.drops, "seed {seed}");
        assert_eq!(o.gaps_right_after_a_drop, o.gaps, "seed {seed}");
        assert_eq!(o.beats_returned, o.beats_sent, "seed {seed}");
    }
}

#[test]
fn an_hour_in_exercise_finds_every_single_lost_notification() {
    // 120–150 bpm: a lost notification loses ≥ 2 beats (≥ 0.8 s); without loss the residual
    // varies by ≤ 0.5 + 0.08 s. Tolerance 0.7 s.
    for seed in 1..=3 {
        let o = simulate_hour(seed, (0.4, 0.5), 200, 1, 0.7);
        assert!(o.drops >= 15, "seed {seed}: {} drops", o.drops);
        assert_eq!(o.gaps, o.drops, "seed {seed}");
        assert_eq!(o.gaps_right_after_a_drop, o.gaps, "seed {seed}");
        assert_eq!(o.beats_returned, o.beats_sent, "seed {seed}");
    }
}

#[test]
fn an_hour_without_losses_gives_no_gap_at_the_default_tolerance() {
    for seed in 1..=3 {
        let o = simulate_hour(seed, (0.63, 0.98), usize::MAX / 2, 0, 2.0);
        assert_eq!((o.drops, o.gaps), (0, 0), "seed {seed}");
        assert_eq!(o.beats_returned, o.beats_sent);
    }
}

/// One input step of the property test.
#[derive(Debug, Clone)]
enum Step {
    Rr(f64, Vec<u16>),
    Outage,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            prop_oneof![
                9 => -1e6..1e6f64,
                1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, 0.0, 1e12]),
            ],
            prop::collection::vec(
                prop_oneof![4 => 300u16..2100, 1 => Just(0u16), 1 => any::<u16>()],
                0..10
            )
        )
            .prop_map(|(t, rr)| Step::Rr(t, rr)),
        1 => Just(Step::Outage),
    ]
}

proptest! {
    #![proptest_config(Config {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    })]

    #[test]
    fn times_strictly_increase_and_no_beat_is_invented(
        tol in prop_oneof![Just(0.0), 0.0..5.0f64, Just(f64::NAN)],
        window in 0usize..80,
        steps in prop::collection::vec(step(), 0..60),
    ) {
        let mut t = tl(tol, window);
        let mut prev = f64::NEG_INFINITY;
        for s in steps {
            match s {
                Step::Outage => t.outage(),
                Step::Rr(host, rr) => {
                    let before = t.last_beat();
                    if let Some((gap, b)) = t.on_rr(host, &rr) {
                        prop_assert!(!b.times.is_empty());
                        prop_assert!(b.times.len() <= rr.len());
                        prop_assert_eq!(b.times.len(), rr.iter().filter(|&&v| v != 0).count());
                        prop_assert_eq!(b.rr_ms.len(), b.times.len());
                        prop_assert_eq!(b.raw.len(), b.times.len());
                        prop_assert!(b.suspect.windows(2).all(|w| w[0] < w[1]));
                        prop_assert!(b.suspect.iter().all(|&i| (i as usize) < b.times.len()));
                        prop_assert!(b.uncertainty_s >= 0.0);
                        for &x in &b.times {
                            prop_assert!(x.is_finite() && x > prev, "{} after {}", x, prev);
                            prev = x;
                        }
                        if let Some(g) = gap {
                            prop_assert_eq!(Some(g.start), before);
                            prop_assert_eq!(g.end, b.times[0]);
                        }
                        prop_assert_eq!(t.last_beat(), Some(prev));
                    } else {
                        prop_assert_eq!(t.last_beat(), before);
                    }
                }
            }
        }
    }
}
