//! Sources: the I/O edges that feed the engine. Each source pushes [`crate::engine::input::Input`]s
//! into the daemon's one bounded input channel (`Block`: a full channel makes the source wait;
//! nothing is dropped on the way in) and stamps them with the [`SessionClock`].
//!
//! - [`replay`]: recordings, paced by their arrival times (or as fast as possible).
//! - [`simulate`]: simulated participants producing data live, with device clocks of their own.

pub mod ble;
pub mod replay;
pub mod replay_feed;
pub mod replay_run;
pub mod serial;
pub mod simulate;
pub mod synthetic;

use crate::engine::input::{Input, SourceState, SourceStatus};
use crate::model::{ParticipantId, StreamKind};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Sends one source state for each of `kinds` of `p` (a device's streams change together).
pub(crate) async fn send_states(
    tx: &mpsc::Sender<Input>,
    p: &ParticipantId,
    kinds: &[StreamKind],
    status: SourceStatus,
    at: f64,
    detail: Option<&str>,
) {
    for &kind in kinds {
        let _ = tx
            .send(Input::Source(SourceState {
                participant: p.clone(),
                kind,
                status,
                host_t: at,
                detail: detail.map(str::to_owned),
            }))
            .await;
    }
}

/// The session clock: seconds since the session started on the host's monotonic clock
/// (tokio's, so `tokio::time::pause()` drives it in tests), running `speed` times real time
/// (1 for live devices; more for simulated sessions, tests and demos).
#[derive(Debug, Clone, Copy)]
pub struct SessionClock {
    start: Instant,
    speed: f64,
}

impl SessionClock {
    /// A clock starting now. `speed` must be finite and > 0 (checked by the caller's config).
    pub fn start(speed: f64) -> Self {
        Self {
            start: Instant::now(),
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// Session time now, s.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * self.speed
    }

    /// The speed factor.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The monotonic instant at which session time reaches `t`.
    pub fn instant_of(&self, t: f64) -> Instant {
        self.start + Duration::from_secs_f64((t / self.speed).max(0.0))
    }

    /// Sleeps until session time reaches `t` (returns at once if it has).
    pub async fn sleep_until(&self, t: f64) {
        tokio::time::sleep_until(self.instant_of(t)).await;
    }
}
