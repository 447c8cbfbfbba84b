//! What the chest strap reports of the sinus rhythm: ectopic beats, missed and extra
//! detections, and contact-loss dropouts laid over the true beat sequence.
//!
//! - **Ectopic beats** (premature ventricular or atrial complexes) come at a per-person rate
//!   drawn from a heavy-tailed distribution matched to 24-h Holter counts in healthy adults
//!   (median 2 PVC/24 h, 95th percentile ≈ 200/24 h, 31 % with none in 24 h; the
//!   population-based young-adult cohort in `research/cohort-calibration.md` §4). Each is a
//!   short–long pair: the ectopic beat comes 20–40 % early and the pause after it is fully
//!   compensatory (the two intervals sum to the two sinus intervals they replace).
//! - **Missed / extra detections**: a strap misses a beat (the reported interval spans two true
//!   ones) or detects a false one (a true interval is split in two, both parts marked). Rates
//!   give ≈ 0.4 % wrong intervals at rest and ≈ 0.6 % in movement (Polar H10: 99.6 % / 99.4 %
//!   correctly detected RR; Gilgen-Ammann, Schweizer & Wyss 2019, *Eur J Appl Physiol*
//!   119:1525).
//! - **Dropouts** (strap contact lost, no beats for 3–30 s, log-uniform): 0.3 per hour at
//!   rest, 4 per hour walking (assumption: no rate was found; straps lose contact mainly when
//!   dry or moving).
//!
//! RR is reported in ticks of 1/1024 s as BLE heart-rate straps do; beat time is the previous
//! beat plus the reported interval (a dropout's first beat after the gap keeps its true time).

use super::{Beat, BeatArtefact, Dropout, HeartOutput};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Wrong intervals per reported interval at rest (Gilgen-Ammann 2019: 99.6 % correct).
pub const WRONG_SHARE_REST: f64 = 0.004;
/// Wrong intervals per reported interval in movement (99.4 % correct at high intensity).
pub const WRONG_SHARE_MOVE: f64 = 0.006;
/// Dropouts per hour at rest (assumption).
pub const DROPOUTS_PER_H_REST: f64 = 0.3;
/// Dropouts per hour walking (assumption).
pub const DROPOUTS_PER_H_MOVE: f64 = 4.0;

/// A person's artefact rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Ectopic beats per hour.
    pub ectopic_per_h: f64,
    /// Multiplies detection errors and dropouts (median ≈ 0.9, mean 1: how well the strap sits).
    pub strap_factor: f64,
}

/// One true (sinus) beat: its time in ticks since the session start and the interval ending at
/// it in ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sinus {
    /// Beat time, ticks of 1/1024 s.
    pub t: u64,
    /// Interval ending at the beat, ticks.
    pub rr: u64,
}

const TICK_S: f64 = 1.0 / 1024.0;

fn push(out: &mut HeartOutput, t: u64, rr: u64, artefact: Option<BeatArtefact>) {
    out.beats.push(Beat {
        t: t as f64 * TICK_S,
        rr_ms: rr as f64 * TICK_S * 1000.0,
        artefact,
    });
}

/// Lays artefacts over `sinus`; `exercise(t)` (0..1) raises detection-error and dropout rates.
pub fn report(
    rng: &mut ChaCha8Rng,
    sinus: &[Sinus],
    rates: &Rates,
    exercise: impl Fn(f64) -> f64,
) -> HeartOutput {
    let mut out = HeartOutput {
        beats: Vec::with_capacity(sinus.len() + 8),
        dropouts: Vec::new(),
    };
    // An error event corrupts 1 interval (missed) or 2 (extra): 1.5 on average.
    let event_rest = WRONG_SHARE_REST / 1.5 * rates.strap_factor;
    let event_move = WRONG_SHARE_MOVE / 1.5 * rates.strap_factor;
    let mut i = 0;
    while i < sinus.len() {
        let b = sinus[i];
        let t_s = b.t as f64 * TICK_S;
        let rr_s = b.rr as f64 * TICK_S;
        let ex = exercise(t_s).clamp(0.0, 1.0);
        let drop_rate =
            (DROPOUTS_PER_H_REST + (DROPOUTS_PER_H_MOVE - DROPOUTS_PER_H_REST) * ex) / 3600.0;
        let err = event_rest + (event_move - event_rest) * ex;
        let ect = rates.ectopic_per_h / 3600.0 * rr_s;
        let u: f64 = rng.random();
        let p_drop = drop_rate * rates.strap_factor * rr_s;
        let prev_t = b.t - b.rr;
        let has_next = i + 1 < sinus.len();
        if u < p_drop && t_s > 5.0 {
            // Contact lost after the previous beat.
            let dur = (rng.random_range(3.0_f64.ln()..30.0_f64.ln())).exp();
            let start = prev_t as f64 * TICK_S;
            let end = start + dur;
            out.dropouts.push(Dropout {
                start_s: start,
                end_s: end,
            });
            while i < sinus.len() && (sinus[i].t as f64 * TICK_S) < end {
                i += 1;
            }
            if let Some(next) = sinus.get(i) {
                push(&mut out, next.t, next.rr, None);
            }
            i += 1;
            continue;
        }
        let u = u - p_drop;
        if u < ect && has_next {
            let p = rng.random_range(0.2..0.4);
            let short = ((b.rr as f64) * (1.0 - p)).round() as u64;
            let next = sinus[i + 1];
            push(&mut out, prev_t + short, short, Some(BeatArtefact::Ectopic));
            push(
                &mut out,
                next.t,
                next.t - (prev_t + short),
                Some(BeatArtefact::Compensatory),
            );
            i += 2;
            continue;
        }
        let u = u - ect;
        if u < err / 2.0 && has_next {
            let next = sinus[i + 1];
            push(&mut out, next.t, b.rr + next.rr, Some(BeatArtefact::Missed));
            i += 2;
            continue;
        }
        if u < err {
            let part = ((b.rr as f64) * rng.random_range(0.25..0.75)).round() as u64;
            push(&mut out, prev_t + part, part, Some(BeatArtefact::Extra));
            push(&mut out, b.t, b.rr - part, Some(BeatArtefact::Extra));
            i += 1;
            continue;
        }
        push(&mut out, b.t, b.rr, None);
        i += 1;
    }
    out
}

/// The largest ectopic share [`add_ectopics`] accepts.
pub const MAX_ADDED_ECTOPIC_FRAC: f64 = 0.5;

/// Adds ectopic short–long pairs to a reported beat sequence until about `frac` of its beats
/// are ectopic (robustness runs; `frac` is clamped to 0..=[`MAX_ADDED_ECTOPIC_FRAC`]).
///
/// Walking the beats in order, a beat can become ectopic when it and the next beat are clean
/// sinus beats (no artefact) and the next one follows it directly (its time minus its interval
/// is this beat's time). Such a beat becomes ectopic with probability `q = f / (1 − f)`, where
/// `f = frac` minus the share of ectopic beats already there (each pair uses two beats, so a
/// share `f` of the beats is ectopic); the pair has the shape of a drawn one: the beat comes
/// 20–40 % early, marked [`BeatArtefact::Ectopic`], and the next interval is the fully
/// compensatory pause, marked [`BeatArtefact::Compensatory`], ending at the next beat's own
/// time. Every other beat, every dropout and the person's own artefacts stay exactly as they
/// are (the draws come from `rng` alone).
pub fn add_ectopics(rng: &mut ChaCha8Rng, out: &mut HeartOutput, frac: f64) {
    let n = out.beats.len();
    if n == 0 || !frac.is_finite() {
        return;
    }
    let have = out
        .beats
        .iter()
        .filter(|b| b.artefact == Some(BeatArtefact::Ectopic))
        .count() as f64
        / n as f64;
    let f = (frac.clamp(0.0, MAX_ADDED_ECTOPIC_FRAC) - have).max(0.0);
    let q = f / (1.0 - f);
    if q <= 0.0 {
        return;
    }
    let ticks = |x_s: f64| (x_s / TICK_S).round() as u64;
    let rr_ticks = |rr_ms: f64| (rr_ms / 1000.0 / TICK_S).round() as u64;
    let mut i = 0;
    while i + 1 < n {
        let (b, next) = (out.beats[i], out.beats[i + 1]);
        let (t, rr) = (ticks(b.t), rr_ticks(b.rr_ms));
        let (nt, nrr) = (ticks(next.t), rr_ticks(next.rr_ms));
        let eligible = b.artefact.is_none()
            && next.artefact.is_none()
            && rr > 0
            && rr <= t
            && nt.checked_sub(nrr) == Some(t);
        if !(eligible && rng.random_bool(q.min(1.0))) {
            i += 1;
            continue;
        }
        let p = rng.random_range(0.2..0.4);
        let prev_t = t - rr;
        let short = ((rr as f64) * (1.0 - p)).round() as u64;
        let beat = |t: u64, rr: u64, artefact| Beat {
            t: t as f64 * TICK_S,
            rr_ms: rr as f64 * TICK_S * 1000.0,
            artefact: Some(artefact),
        };
        out.beats[i] = beat(prev_t + short, short, BeatArtefact::Ectopic);
        out.beats[i + 1] = beat(nt, nt - (prev_t + short), BeatArtefact::Compensatory);
        i += 2;
    }
}
