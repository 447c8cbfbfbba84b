//! Replayed recordings as a source of engine inputs: one or several files merged on one
//! timeline by arrival time (a dyad recorded as two files replays as a dyad), paced in one of
//! two ways:
//!
//! - [`Pace::Driven`] (`attune replay`): the source drives session time itself. It sends an
//!   [`Input::Advance`] for every tick between records at its moment (`x` times real time) or,
//!   at `max` speed, lets each record's arrival time advance the engine. Records keep the
//!   arrival times they were recorded with, so the engine sees exactly what the live session
//!   saw, at any speed: a recorded live session replays to the same decisions.
//! - [`Pace::Wall`] (a `replay` source in `attune run`): the daemon's tick timer drives session
//!   time; the source sends each record when the session clock reaches its arrival time.
//!
//! Silences: a stretch of more than [`MAX_SILENCE_S`] with no record at all is ticked through
//! for its first [`MAX_SILENCE_S`] (streams go stale, decisions fall back to `hold`) and the rest
//! is sent as one [`Input::Skip`] (driven pacing only; real-time pacing skips it too).

use super::SessionClock;
use super::replay::{FileError, Opened, spawn_reader};
use crate::engine::input::Input;
use crate::model::ParticipantId;
use crate::pipeline::TICKS_PER_S;
use crate::recording::Record;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use super::replay_feed::{MAX_SILENCE_S, source_status};

/// How a replay is paced (module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// The source drives session time: `None` as fast as possible, `Some(x)` at x times real time.
    Driven(Option<f64>),
    /// The daemon's clock drives session time.
    Wall,
}

/// What a replay read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReplayStats {
    /// Records sent.
    pub records: u64,
    /// Silences longer than [`MAX_SILENCE_S`] skipped.
    pub jumps: u64,
    /// Arrival time of the last record, s.
    pub end_t: f64,
    /// True if stopped before the end.
    pub interrupted: bool,
}

/// One file being read.
struct Lane {
    participant: ParticipantId,
    rx: mpsc::Receiver<Record>,
    head: Option<Record>,
    reader: tokio::task::JoinHandle<Result<(), FileError>>,
}

/// The participant a replayed file is published under.
pub fn participant_of(opened: &Opened, rename: Option<&ParticipantId>) -> ParticipantId {
    rename
        .cloned()
        .unwrap_or_else(|| opened.header.participant.clone())
}

/// Replays `files` into `tx` (module doc). `rename` applies to a single file only (the caller
/// checks). Returns when every file has been sent, the receiver is gone, or `stop` fires.
pub async fn run(
    files: Vec<Opened>,
    rename: Option<ParticipantId>,
    pace: Pace,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
) -> Result<ReplayStats, FileError> {
    let mut stats = ReplayStats::default();
    let mut lanes = Vec::new();
    let mut first = Vec::new();
    for opened in files {
        let participant = participant_of(&opened, rename.as_ref());
        super::replay_feed::opening(&opened.header, &participant, &mut first);
        let (rtx, rx) = mpsc::channel(1024);
        let reader = spawn_reader(opened, rename.clone(), rtx);
        lanes.push(Lane {
            participant,
            rx,
            head: None,
            reader,
        });
    }
    let send = |input: Input| {
        let tx = tx.clone();
        let stop = stop.clone();
        async move {
            tokio::select! {
                biased;
                _ = stop.cancelled() => false,
                r = tx.send(input) => r.is_ok(),
            }
        }
    };
    for input in first {
        if !send(input).await {
            stats.interrupted = true;
            return finish(lanes, stats).await;
        }
    }
    if matches!(pace, Pace::Driven(_)) && !send(Input::Advance(0.0)).await {
        stats.interrupted = true;
        return finish(lanes, stats).await;
    }
    // Session time cut out of real-time pacing by skipped silences, s.
    let mut skipped = 0.0;
    let mut last_t = 0.0_f64;
    let mut next_tick = 1.0 / TICKS_PER_S;
    loop {
        // Fill every lane's head, then take the earliest record.
        for lane in lanes.iter_mut().filter(|l| l.head.is_none()) {
            lane.head = tokio::select! {
                biased;
                _ = stop.cancelled() => { stats.interrupted = true; None }
                r = lane.rx.recv() => r,
            };
        }
        if stats.interrupted {
            break;
        }
        let Some(i) = (0..lanes.len())
            .filter(|&i| lanes[i].head.is_some())
            .min_by(|&a, &b| {
                let t = |i: usize| lanes[i].head.as_ref().map_or(f64::INFINITY, Record::host_t);
                t(a).total_cmp(&t(b))
            })
        else {
            break;
        };
        let Some(rec) = lanes[i].head.take() else {
            break;
        };
        let t = rec.host_t().max(last_t);
        if let Pace::Driven(speed) = pace {
            let tick_until = super::replay_feed::tick_until(last_t, t);
            if let Some(x) = speed {
                // Each tick at its moment, so decisions keep coming while nothing arrives.
                while next_tick <= tick_until {
                    if !sleep_then(&clock, (next_tick - skipped) / x * clock.speed(), &stop).await
                        || !send(Input::Advance(next_tick)).await
                    {
                        stats.interrupted = true;
                        break;
                    }
                    next_tick += 1.0 / TICKS_PER_S;
                }
                if stats.interrupted {
                    break;
                }
            } else if tick_until > last_t && !send(Input::Advance(tick_until)).await {
                stats.interrupted = true;
                break;
            }
            if tick_until < t {
                if !send(Input::Skip {
                    from: tick_until,
                    to: t,
                })
                .await
                {
                    stats.interrupted = true;
                    break;
                }
                stats.jumps += 1;
                skipped += t - tick_until;
                next_tick = (t * TICKS_PER_S).floor() / TICKS_PER_S + 1.0 / TICKS_PER_S;
            }
            if let Some(x) = speed
                && !sleep_then(&clock, (t - skipped) / x * clock.speed(), &stop).await
            {
                stats.interrupted = true;
                break;
            }
            next_tick = next_tick.max((t * TICKS_PER_S).floor() / TICKS_PER_S + 1.0 / TICKS_PER_S);
        } else if !sleep_then(&clock, t, &stop).await {
            stats.interrupted = true;
            break;
        }
        let Some(input) = super::replay_feed::record_input(rec, &lanes[i].participant) else {
            // A state the engine derives from the data again.
            last_t = t;
            continue;
        };
        if !send(input).await {
            stats.interrupted = true;
            break;
        }
        stats.records += 1;
        last_t = t;
        if stats.records.is_multiple_of(256) {
            // At max speed, let the engine and subscribers run between bursts.
            tokio::task::yield_now().await;
        }
    }
    stats.end_t = last_t;
    finish(lanes, stats).await
}

/// Sleeps until session time `t` on `clock`; false if `stop` fired first.
async fn sleep_then(clock: &SessionClock, t: f64, stop: &CancellationToken) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = clock.sleep_until(t) => true,
    }
}

/// Waits for the readers and reports the first error.
async fn finish(lanes: Vec<Lane>, stats: ReplayStats) -> Result<ReplayStats, FileError> {
    let mut result = Ok(stats);
    for lane in lanes {
        drop(lane.rx);
        match lane.reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                if result.is_ok() {
                    result = Err(e);
                }
            }
            Err(e) => tracing::warn!(error = %e, "A recording reader failed."),
        }
    }
    result
}
