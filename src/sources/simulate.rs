//! The live simulated source: a [`LiveSim`] paced on the [`SessionClock`].
//!
//! [`run`] sends, in order: an [`Input::Stream`] declaration per enabled stream (RR first), an
//! [`Input::Source`] `Connecting` then `Streaming` state per stream (stamped with the session
//! clock when they are sent), then every delivery of the generator in arrival order, each sent
//! once the session clock has reached its arrival time. A chunk's `host_t` is the
//! *generator's* arrival time, not the clock read at sending, so a simulated session's inputs
//! are the same on every run whatever the scheduling delay (it is at most that delay
//! earlier than the clock when the chunk is sent, never later). The generator's true time 0 is
//! the session start: a source started late catches up at once.
//!
//! Channel policy: `Block` (STYLE.md §10): a full channel makes the source wait, nothing is
//! dropped. It never busy-loops: it sleeps until the next arrival, and when several are due
//! (high clock speeds, or after waiting on a full channel) it sends them back to back. It ends
//! with `Ok` when `stop` is cancelled (then it sends nothing more, even if blocked on a full
//! channel or asleep) or when the receiver is gone.

use crate::engine::input::{Input, SourceState, SourceStatus};
use crate::simulate::live::{LiveSim, LiveSpec, LiveSpecError};
use crate::sources::SessionClock;
use std::sync::Arc;
use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

/// Why the simulated source could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The spec is unusable.
    #[error(transparent)]
    Spec(#[from] LiveSpecError),
}

/// Runs the simulated participant `spec` until `stop` or until the receiver is gone (module
/// doc). Fails only on a spec that [`LiveSpec::check`] refuses, before sending anything.
pub async fn run(
    spec: LiveSpec,
    clock: SessionClock,
    tx: Sender<Input>,
    stop: CancellationToken,
) -> Result<(), SimError> {
    spec.check()?;
    let mut sim = LiveSim::new(&spec);
    let streams = sim.streams();
    let mut intro: Vec<Input> = streams
        .iter()
        .map(|s| Input::Stream(Arc::new(s.clone())))
        .collect();
    for status in [SourceStatus::Connecting, SourceStatus::Streaming] {
        for s in &streams {
            intro.push(Input::Source(SourceState {
                participant: s.participant.clone(),
                kind: s.kind,
                status,
                host_t: clock.now(),
                detail: None,
            }));
        }
    }
    for input in intro {
        if !send(&tx, &stop, input).await {
            return Ok(());
        }
    }
    // A source started after the session (a participant added by a reloaded configuration) is a
    // device switched on then: nothing it would have measured before that is delivered, and its
    // chunks count from 0.
    let switched_on = clock.now();
    let mut first_seq: std::collections::BTreeMap<crate::model::StreamKind, u64> =
        std::collections::BTreeMap::new();
    while let Some(mut d) = sim.next_delivery() {
        if switched_on > LATE_START_S && d.first_true_t < switched_on {
            continue;
        }
        let first = *first_seq.entry(d.chunk.kind).or_insert(d.chunk.seq);
        d.chunk.seq -= first;
        let at = d.chunk.host_t;
        if clock.now() < at {
            tokio::select! {
                biased;
                () = stop.cancelled() => return Ok(()),
                () = tx.closed() => return Ok(()),
                () = clock.sleep_until(at) => {}
            }
        }
        if !send(&tx, &stop, Input::Chunk(d.chunk)).await {
            return Ok(());
        }
    }
    Ok(())
}

/// A source starting this long (session s) after the session is a device switched on late.
const LATE_START_S: f64 = 0.5;

/// Sends `input` unless stopped first; false: stop, or the receiver is gone.
async fn send(tx: &Sender<Input>, stop: &CancellationToken, input: Input) -> bool {
    if stop.is_cancelled() {
        return false;
    }
    tokio::select! {
        biased;
        () = stop.cancelled() => false,
        r = tx.send(input) => r.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ParticipantId, StreamKind};
    use crate::simulate::Scenario;
    use crate::simulate::live::StreamTiming;
    use std::time::Duration;
    use tokio::sync::mpsc;

    fn spec() -> LiveSpec {
        let t = |block_s| StreamTiming {
            offset_s: -3.0,
            drift_ppm: 50.0,
            latency_s: 0.05,
            jitter_s: 0.2,
            block_s,
        };
        LiveSpec {
            participant: ParticipantId::new("p01").unwrap(),
            seed: 7,
            scenario: Scenario::RestThenStress,
            stress_onset_s: 30.0,
            rr: Some(t(1.0)),
            eda: Some(t(1.0)),
            eda_rate_hz: 32.0,
        }
    }

    fn chunks_until(spec: &LiveSpec, t: f64) -> Vec<Input> {
        let mut out = Vec::new();
        LiveSim::new(spec).until(t, &mut out);
        out
    }

    /// Awaits the task, failing if it takes longer than `real_s` of real time.
    async fn ends_within(task: tokio::task::JoinHandle<Result<(), SimError>>, real_s: f64) {
        let r = tokio::time::timeout(Duration::from_secs_f64(real_s), task).await;
        assert_eq!(r.expect("the source did not end in time").unwrap(), Ok(()));
    }

    /// One EDA stream delivering every 10 s: the next arrival is always far away.
    fn sparse() -> LiveSpec {
        let mut s = spec();
        s.rr = None;
        if let Some(t) = &mut s.eda {
            (t.block_s, t.jitter_s) = (10.0, 0.0);
        }
        s
    }

    // These run on real time at high clock speeds: `start_paused` needs tokio's `test-util`
    // feature, which the crate's dev-dependencies do not enable (yet).

    #[tokio::test]
    async fn paced_delivery_matches_the_generator_and_is_never_early() {
        let speed = 200.0;
        let clock = SessionClock::start(speed);
        let (tx, mut rx) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(spec(), clock, tx, stop.clone()));
        let mut intro = Vec::new();
        for _ in 0..6 {
            intro.push(rx.recv().await.unwrap());
        }
        assert!(matches!(&intro[0], Input::Stream(s) if s.kind == StreamKind::Rr));
        assert!(matches!(&intro[1], Input::Stream(s) if s.kind == StreamKind::Eda));
        let status = |i: &Input| match i {
            Input::Source(s) => Some(s.status),
            _ => None,
        };
        assert_eq!(status(&intro[2]), Some(SourceStatus::Connecting));
        assert_eq!(status(&intro[5]), Some(SourceStatus::Streaming));
        let want = chunks_until(&spec(), 60.0);
        assert!(want.len() > 100, "{}", want.len());
        let (mut got, mut late) = (Vec::new(), Vec::new());
        for _ in 0..want.len() {
            let input = rx.recv().await.unwrap();
            let (now, host_t) = (clock.now(), input.host_t().unwrap());
            assert!(
                now >= host_t,
                "received at {now} before its arrival {host_t}"
            );
            late.push((now - host_t) / speed);
            got.push(input);
        }
        assert_eq!(got, want);
        late.sort_by(f64::total_cmp);
        // Real-time scheduling: a generous bound on the median lateness, in real seconds.
        assert!(
            late[late.len() / 2] < 0.05,
            "median lateness {} s",
            late[late.len() / 2]
        );
        stop.cancel();
        ends_within(task, 1.0).await;
    }

    #[tokio::test]
    async fn stop_ends_it_at_once_while_asleep_and_nothing_more_is_sent() {
        let clock = SessionClock::start(10.0);
        let (tx, mut rx) = mpsc::channel(64);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(sparse(), clock, tx, stop.clone()));
        while !matches!(rx.recv().await, Some(Input::Chunk(_))) {}
        stop.cancel();
        // The next chunk is due 10 session s = 1 real s later.
        ends_within(task, 0.3).await;
        assert!(rx.recv().await.is_none(), "sent after the stop");
    }

    #[tokio::test]
    async fn stop_ends_it_while_blocked_on_a_full_channel() {
        let clock = SessionClock::start(1000.0);
        let (tx, mut rx) = mpsc::channel(1);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(spec(), clock, tx, stop.clone()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.cancel();
        ends_within(task, 0.3).await;
        assert!(rx.recv().await.is_some(), "the one buffered input");
        assert!(rx.recv().await.is_none(), "sent after the stop");
    }

    #[tokio::test]
    async fn a_dropped_receiver_ends_it_with_ok_without_waiting_for_the_next_arrival() {
        let clock = SessionClock::start(10.0);
        let (tx, mut rx) = mpsc::channel(64);
        let task = tokio::spawn(run(sparse(), clock, tx, CancellationToken::new()));
        while !matches!(rx.recv().await, Some(Input::Chunk(_))) {}
        drop(rx);
        ends_within(task, 0.3).await;
    }

    #[tokio::test]
    async fn a_spec_without_streams_is_refused_before_sending() {
        let (tx, mut rx) = mpsc::channel(4);
        let mut s = spec();
        s.rr = None;
        s.eda = None;
        let r = run(s, SessionClock::start(1.0), tx, CancellationToken::new()).await;
        assert!(matches!(
            r,
            Err(SimError::Spec(LiveSpecError::NoStreams(_)))
        ));
        assert!(rx.recv().await.is_none());
    }
}
