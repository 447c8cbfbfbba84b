//! The BLE heart-rate source (edge): one chest strap (or armband) speaking the Bluetooth Heart
//! Rate Service, for one participant, on btleplug over BlueZ ([`hub`]).
//!
//! # Lifecycle
//!
//! `connecting` → find the strap ([`link`]: the shared scan, post-filtered by the saved
//! address or the name in the configuration) → connect (bounded by
//! [`BleSpec::connect_timeout_s`]) → discover services (bounded too) → read Battery Level
//! (0x2A19), Body Sensor Location (0x2A38) and the firmware revision where the strap has them →
//! subscribe to Heart Rate Measurement (0x2A37) → `streaming` at the first notification.
//!
//! A connection ends, and every stream turns `reconnecting` with one line naming the cause, on:
//! - the central's `DeviceDisconnected` for the strap, or `is_connected()` turning false (polled
//!   every second: BlueZ's events do not always come, btleplug's tracker has the reports);
//! - the **watchdog**: no notification for [`BleSpec::silence_s`] while subscribed, whatever the
//!   events say (btleplug's notification stream does not end on a disconnect, and a strap that
//!   lost its link can look connected for a while). The engine has called the streams `stale`
//!   before that (no data for 5 s);
//! - any failure to connect, discover or subscribe.
//!
//! Then the source disconnects (bounded), waits a backoff (0.25 s doubling to 1 s, ±25 %
//! jitter; the first retry after a connection that streamed is immediate, since BlueZ's
//! `le-connection-abort-by-local` is usually cured by trying again) and starts over, for as long
//! as the session runs. Without a connection for [`BleSpec::lost_after_s`], the streams turn
//! `lost` (the strap is off, out of range, or held by another app) and the source keeps looking.
//! The first notification after a reconnect closes exactly one `disconnect` gap per stream
//! ([`assemble`]); nothing is invented for the outage.
//!
//! Bluetooth unavailable ([`Unavailable`]: no system bus, no BlueZ, no adapter, powered
//! off) turns the streams `lost` with the cause as the detail, is logged once (again only when
//! the cause changes), and is checked again every `hub::UNAVAILABLE_RETRY` (5 s); other sources
//! keep running.

pub mod assemble;
pub mod beats;
#[cfg(feature = "ble")]
pub mod hub;
#[cfg(feature = "ble")]
pub mod link;
pub mod scan;

use crate::engine::input::{Input, SourceStatus};
use crate::model::{ParticipantId, StreamKind};
#[cfg(feature = "ble")]
use crate::sources::serial::backoff::Backoff;
use crate::sources::{SessionClock, send_states};
#[cfg(feature = "ble")]
use assemble::Assembler;
use assemble::Counters;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;
#[cfg(feature = "ble")]
use tracing::warn;

/// Why Bluetooth cannot be used now: one line for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Bluetooth unavailable: {0}")]
pub struct Unavailable(pub String);

/// The cause given when attune was built without the `ble` cargo feature.
pub const NOT_BUILT: &str = "this attune was built without Bluetooth support (cargo feature `ble`)";

/// Default watchdog: no notification for this long counts as a lost link, s.
pub const DEFAULT_SILENCE_S: f64 = 6.0;
/// Default bound on connecting, and on discovering services, s.
pub const DEFAULT_CONNECT_TIMEOUT_S: f64 = 10.0;
/// Default time without a connection after which the streams are `lost`, s.
pub const DEFAULT_LOST_AFTER_S: f64 = 60.0;

/// The streams a strap feeds.
pub const KINDS: [StreamKind; 2] = [StreamKind::Hr, StreamKind::Rr];

/// Which strap: its saved address (preferred: unique), or its advertised name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A Bluetooth address `AA:BB:CC:DD:EE:FF` (upper case).
    Address(String),
    /// The advertised name: an exact match, else the strongest strap whose name starts with it
    /// (case-insensitive).
    Name(String),
}

impl Target {
    /// `NAME|ADDRESS` as given on the command line or in the configuration: six hex pairs
    /// separated by colons are an address, anything else a name.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("a BLE strap needs a name or an address (AA:BB:CC:DD:EE:FF)".into());
        }
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() == 6
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        {
            Ok(Target::Address(s.to_ascii_uppercase()))
        } else if s.len() > 248 || s.chars().any(char::is_control) {
            Err(format!(
                "{s:?} is not a BLE name (at most 248 bytes, no control characters)"
            ))
        } else {
            Ok(Target::Name(s.to_owned()))
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Address(a) => f.write_str(a),
            Target::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// One strap of one participant.
#[derive(Debug, Clone, PartialEq)]
pub struct BleSpec {
    /// Whose strap.
    pub participant: ParticipantId,
    /// Which strap.
    pub target: Target,
    /// Watchdog silence, s.
    pub silence_s: f64,
    /// Bound on connecting and on service discovery, s.
    pub connect_timeout_s: f64,
    /// Time without a connection before `lost`, s.
    pub lost_after_s: f64,
}

impl BleSpec {
    /// A spec with the default timings.
    pub fn new(participant: ParticipantId, target: Target) -> Self {
        Self {
            participant,
            target,
            silence_s: DEFAULT_SILENCE_S,
            connect_timeout_s: DEFAULT_CONNECT_TIMEOUT_S,
            lost_after_s: DEFAULT_LOST_AFTER_S,
        }
    }

    /// The source's name in logs: `p01/ble C0:FF:EE:00:00:01`.
    pub fn name(&self) -> String {
        format!("{}/ble {}", self.participant, self.target)
    }
}

/// What a BLE source did, for the session summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BleStats {
    /// Connections that reached a subscription.
    pub connections: u64,
    /// The assembler's counters.
    pub counters: Counters,
}

/// Without the `ble` feature: the streams are `lost` with [`NOT_BUILT`] as the detail until
/// `stop`; other sources carry on.
#[cfg(not(feature = "ble"))]
pub async fn run(
    spec: BleSpec,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
) -> BleStats {
    let now = clock.now();
    send_states(
        &tx,
        &spec.participant,
        &KINDS,
        SourceStatus::Lost,
        now,
        Some(NOT_BUILT),
    )
    .await;
    tokio::select! {
        () = stop.cancelled() => {}
        () = tx.closed() => {}
    }
    info!(source = %spec.name(), "BLE source stopped.");
    BleStats::default()
}

/// Runs the strap until `stop` (module doc). Never fails: every trouble is a state.
#[cfg(feature = "ble")]
pub async fn run(
    spec: BleSpec,
    clock: SessionClock,
    tx: mpsc::Sender<Input>,
    stop: CancellationToken,
) -> BleStats {
    let name = spec.name();
    let mut asm = Assembler::new(
        spec.participant.clone(),
        link::device_of(None, &spec.target),
    );
    let mut stats = BleStats::default();
    let mut backoff = Backoff::new(crate::sources::serial::seed_of(&name));
    let mut last_logged: Option<String> = None;
    let mut status = SourceStatus::Connecting;
    let mut since_connected = clock.now();
    let mut lost_said = false;
    // A strap found by name is pinned to its address at its first connection that streams:
    // after an outage, another strap of the same model must not take its place.
    let mut pinned: Option<Target> = None;
    hub::Hub::global().register(&spec.target).await;
    send_states(&tx, &spec.participant, &KINDS, status, clock.now(), None).await;
    loop {
        let hub = hub::Hub::global();
        let ended = match hub.adapter().await {
            Err(why) => {
                let why = why.to_string();
                if last_logged.as_deref() != Some(why.as_str()) {
                    warn!(source = %name, "{why}; BLE sources wait for it, other sources carry on.");
                    last_logged = Some(why.clone());
                    send_states(
                        &tx,
                        &spec.participant,
                        &KINDS,
                        SourceStatus::Lost,
                        clock.now(),
                        Some(&why),
                    )
                    .await;
                    status = SourceStatus::Lost;
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tx.closed() => break,
                    () = tokio::time::sleep(hub::UNAVAILABLE_RETRY) => {}
                }
                continue;
            }
            Ok(adapter) => {
                let mut conn = link::Connection {
                    spec: &spec,
                    target: pinned.clone().unwrap_or_else(|| spec.target.clone()),
                    pinned: &mut pinned,
                    clock,
                    tx: &tx,
                    stop: &stop,
                    asm: &mut asm,
                    status: &mut status,
                };
                conn.run(hub, &adapter).await
            }
        };
        stats.counters = asm.counters();
        match ended {
            link::Ended::Stopped => break,
            link::Ended::Retry { why, streamed } => {
                if streamed {
                    stats.connections += 1;
                    backoff.reset();
                    since_connected = clock.now();
                    lost_said = false;
                    asm.outage();
                }
                let new_cause = last_logged.as_deref() != Some(why.as_str());
                if new_cause {
                    warn!(source = %name, "{why}; retrying.");
                    last_logged = Some(why.clone());
                }
                let now = clock.now();
                let lost = now - since_connected >= spec.lost_after_s;
                let next = if lost {
                    SourceStatus::Lost
                } else if status == SourceStatus::Connecting && !streamed {
                    SourceStatus::Connecting
                } else {
                    SourceStatus::Reconnecting
                };
                if next != status || streamed || new_cause || (lost && !lost_said) {
                    let detail = if lost {
                        lost_said = true;
                        format!(
                            "no connection for {:.0} s ({why}); still looking for {}",
                            now - since_connected,
                            spec.target
                        )
                    } else {
                        why.clone()
                    };
                    status = next;
                    send_states(&tx, &spec.participant, &KINDS, status, now, Some(&detail)).await;
                }
                if streamed {
                    continue;
                }
                let wait = backoff.next_wait();
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tx.closed() => break,
                    () = tokio::time::sleep(std::time::Duration::from_secs_f64(wait)) => {}
                }
            }
        }
    }
    hub::Hub::global().forget_target(&spec.target).await;
    info!(source = %name, "BLE source stopped.");
    stats
}
