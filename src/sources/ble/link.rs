//! One connection to one strap (edge, btleplug): find, connect, discover, read, subscribe, and
//! stream until the link is lost, the watchdog fires or the session stops ([`super`] has the
//! lifecycle). Every BlueZ call is bounded by a timeout: a call that never returns is a
//! failed connection, never a hung source.

use super::assemble::{Assembler, PROTOCOL};
use super::hub::Hub;
use super::{BleSpec, KINDS, Target};
use crate::engine::input::{Input, SourceState, SourceStatus};
use crate::protocol::hrs;
use crate::recording::Device;
use crate::sources::SessionClock;
use btleplug::api::{
    Central, CentralEvent, Characteristic, Peripheral as _, PeripheralProperties,
    bleuuid::uuid_from_u16,
};
use btleplug::platform::{Adapter, Peripheral};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long one search for the strap lasts before the source reports it not found (and
/// searches again).
pub const SEARCH_S: f64 = 10.0;
/// Bound on reading one characteristic, and on unsubscribing and disconnecting.
const SHORT: Duration = Duration::from_secs(3);
/// A battery level worth a warning, %.
const LOW_BATTERY: u8 = 15;
/// Bound on disconnecting when the session stops (the daemon gives its sources 2 s).
const STOP_DISCONNECT: Duration = Duration::from_millis(1500);
/// How often the link is checked (`is_connected`, the watchdog).
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// How a connection ended.
#[derive(Debug)]
pub enum Ended {
    /// The session is stopping (or the engine is gone).
    Stopped,
    /// Lost, or never came up: retry. `streamed`: notifications arrived on it.
    Retry {
        /// One line for people.
        why: String,
        /// Whether the connection delivered notifications.
        streamed: bool,
    },
}

fn retry(why: impl Into<String>) -> Ended {
    Ended::Retry {
        why: why.into(),
        streamed: false,
    }
}

/// The device description of a strap for its streams' declarations.
pub fn device_of(props: Option<&PeripheralProperties>, target: &Target) -> Device {
    let name = props
        .and_then(|p| p.local_name.clone())
        .unwrap_or_else(|| match target {
            Target::Address(a) => a.clone(),
            Target::Name(n) => n.clone(),
        });
    let address = props.map(|p| p.address.to_string().to_ascii_uppercase());
    Device {
        name: match address {
            Some(a) if !name.contains(&a) => format!("{name} ({a})"),
            _ => name,
        },
        protocol: PROTOCOL.into(),
        firmware: None,
        conversion: None,
    }
}

/// Whether `props` is the strap `target` names: `Some(rank)` (0 exact, 1 name prefix).
pub fn matches(props: &PeripheralProperties, target: &Target) -> Option<u8> {
    match target {
        Target::Address(a) => props
            .address
            .to_string()
            .eq_ignore_ascii_case(a)
            .then_some(0),
        Target::Name(n) => {
            let name = props.local_name.as_deref()?;
            if name == n {
                Some(0)
            } else {
                name.to_lowercase()
                    .starts_with(&n.to_lowercase())
                    .then_some(1)
            }
        }
    }
}

/// One connection's job.
pub struct Connection<'a> {
    /// The strap.
    pub spec: &'a BleSpec,
    /// The strap to look for: the spec's, or the address it was pinned to.
    pub target: Target,
    /// Set to the strap's address at the first notification.
    pub pinned: &'a mut Option<Target>,
    /// The session clock.
    pub clock: SessionClock,
    /// The engine's input.
    pub tx: &'a mpsc::Sender<Input>,
    /// The session's stop.
    pub stop: &'a CancellationToken,
    /// The strap's assembler (kept across connections).
    pub asm: &'a mut Assembler,
    /// The streams' current source state (this sets `streaming`).
    pub status: &'a mut SourceStatus,
}

impl Connection<'_> {
    /// Finds, connects and streams (module doc).
    pub async fn run(&mut self, hub: &Hub, adapter: &Adapter) -> Ended {
        let Ok(events) = bounded(adapter.events()).await else {
            hub.reset().await;
            return retry("BlueZ gave no event stream");
        };
        if let Err(why) = hub.scan(adapter, false).await {
            hub.reset().await;
            return retry(why);
        }
        let mut events = events;
        let stop = self.stop;
        let found = tokio::select! {
            () = stop.cancelled() => return Ended::Stopped,
            f = find(hub, adapter, &mut events, &self.target) => f,
        };
        let (peripheral, props) = match found {
            Ok(p) => p,
            Err(why) => return retry(why),
        };
        let address = props.address.to_string().to_ascii_uppercase();
        if !hub.claim(&address).await {
            return retry(format!(
                "{address} is held by another source of this daemon"
            ));
        }
        // Stop is honoured in every step, connecting included (each step is bounded, but
        // together they can take half a minute).
        let ended = tokio::select! {
            biased;
            e = self.connected(&peripheral, &props, events) => e,
            () = stop.cancelled() => Ended::Stopped,
        };
        let bound = match ended {
            Ended::Stopped => STOP_DISCONNECT,
            Ended::Retry { .. } => SHORT,
        };
        let _ = tokio::time::timeout(bound, peripheral.disconnect()).await;
        hub.release(&address).await;
        ended
    }

    async fn connected(
        &mut self,
        peripheral: &Peripheral,
        props: &PeripheralProperties,
        mut events: std::pin::Pin<Box<dyn futures_util::Stream<Item = CentralEvent> + Send>>,
    ) -> Ended {
        let connect_timeout = Duration::from_secs_f64(self.spec.connect_timeout_s.max(0.1));
        let address = props.address.to_string().to_ascii_uppercase();
        match tokio::time::timeout(connect_timeout, peripheral.connect()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return retry(format!("{address}: connect failed: {}", one_line(&e))),
            Err(_) => {
                return retry(format!(
                    "{address}: connect timed out after {} s",
                    self.spec.connect_timeout_s
                ));
            }
        }
        match tokio::time::timeout(connect_timeout, peripheral.discover_services()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return retry(format!(
                    "{address}: service discovery failed: {}",
                    one_line(&e)
                ));
            }
            Err(_) => {
                return retry(format!(
                    "{address}: service discovery timed out after {} s",
                    self.spec.connect_timeout_s
                ));
            }
        }
        let chars = peripheral.characteristics();
        let find_char = |short: u16| -> Option<Characteristic> {
            let uuid = uuid_from_u16(short);
            chars.iter().find(|c| c.uuid == uuid).cloned()
        };
        let Some(hrm) = find_char(hrs::HEART_RATE_MEASUREMENT) else {
            return retry(format!(
                "{address}: no Heart Rate Measurement characteristic (0x2A37): not a heart-rate strap?"
            ));
        };
        let mut about = Vec::new();
        if let Some(c) = find_char(hrs::BATTERY_LEVEL) {
            match read(peripheral, &c).await.map(|v| hrs::battery_percent(&v)) {
                Ok(Ok(p)) => {
                    if p <= LOW_BATTERY {
                        warn!(source = %self.spec.name(), "{address}: battery low ({p} %): charge or replace it before the session");
                    }
                    about.push(format!("battery {p} %"));
                }
                Ok(Err(e)) => about.push(format!("battery unreadable ({e})")),
                Err(e) => about.push(format!("battery unreadable ({e})")),
            }
        }
        if let Some(c) = find_char(hrs::BODY_SENSOR_LOCATION)
            && let Ok(Ok(loc)) = read(peripheral, &c).await.map(|v| hrs::body_location(&v))
        {
            about.push(format!("worn on the {}", loc.name().replace('_', " ")));
        }
        let mut device = device_of(Some(props), &self.target);
        if let Some(c) = find_char(0x2A26)
            && let Ok(v) = read(peripheral, &c).await
        {
            let fw = String::from_utf8_lossy(&v)
                .trim_matches('\0')
                .trim()
                .to_owned();
            if !fw.is_empty() && fw.len() <= 64 {
                device.firmware = Some(fw);
            }
        }
        self.asm.describe(device.clone());
        let Ok(Ok(mut notes)) = tokio::time::timeout(SHORT, peripheral.notifications()).await
        else {
            return retry(format!("{address}: no notification stream"));
        };
        match tokio::time::timeout(SHORT, peripheral.subscribe(&hrm)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return retry(format!("{address}: subscribe failed: {}", one_line(&e))),
            Err(_) => return retry(format!("{address}: subscribe timed out")),
        }
        let detail = std::iter::once(device.name.clone())
            .chain(about)
            .collect::<Vec<_>>()
            .join(", ");
        info!(source = %self.spec.name(), device = %detail, "Subscribed to heart rate.");
        let mut streamed = false;
        let mut last_rx = self.clock.now();
        let mut out = Vec::new();
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut polls = 0u32;
        let id = peripheral.id();
        let why = loop {
            tokio::select! {
                () = self.stop.cancelled() => {
                    let _ = tokio::time::timeout(SHORT, peripheral.unsubscribe(&hrm)).await;
                    return Ended::Stopped;
                }
                n = notes.next() => {
                    let Some(n) = n else { break "the notification stream ended".to_owned() };
                    if n.uuid != hrm.uuid {
                        continue;
                    }
                    let now = self.clock.now();
                    last_rx = now;
                    if !streamed {
                        streamed = true;
                        *self.pinned = Some(Target::Address(address.clone()));
                        *self.status = SourceStatus::Streaming;
                        for kind in KINDS {
                            out.push(Input::Source(SourceState {
                                participant: self.spec.participant.clone(),
                                kind,
                                status: SourceStatus::Streaming,
                                host_t: now,
                                detail: Some(detail.clone()),
                            }));
                        }
                    }
                    self.asm.notification(now, &n.value, &mut out);
                    if let Some(e) = self.asm.take_error() {
                        warn!(source = %self.spec.name(), "{e}");
                    }
                    for i in out.drain(..) {
                        if self.tx.send(i).await.is_err() {
                            return Ended::Stopped;
                        }
                    }
                }
                e = events.next() => match e {
                    // Confirmed by asking: a late event of an earlier connection (another
                    // source's, before a reload) must not end this one.
                    Some(CentralEvent::DeviceDisconnected(d))
                        if d == id
                            && !matches!(
                                tokio::time::timeout(SHORT, peripheral.is_connected()).await,
                                Ok(Ok(true))
                            ) =>
                    {
                        break format!("{address}: the strap disconnected");
                    }
                    Some(CentralEvent::StateUpdate(s)) if s != btleplug::api::CentralState::PoweredOn => {
                        break format!("{address}: the Bluetooth adapter went {s:?}");
                    }
                    Some(_) => {}
                    None => break "BlueZ's event stream ended".to_owned(),
                },
                _ = check.tick() => {
                    let now = self.clock.now();
                    if now - last_rx > self.spec.silence_s {
                        break format!(
                            "{address}: no notification for {} s: the strap went silent",
                            self.spec.silence_s
                        );
                    }
                    polls += 1;
                    if polls.is_multiple_of(4) {
                        match tokio::time::timeout(SHORT, peripheral.is_connected()).await {
                            Ok(Ok(false)) => break format!("{address}: the link is down"),
                            // BlueZ forgot the device (`UnknownObject`): it is gone.
                            Ok(Err(e)) => break format!("{address}: the strap is gone ({})", one_line(&e)),
                            _ => {}
                        }
                    }
                }
            }
        };
        Ended::Retry { why, streamed }
    }
}

async fn bounded<T>(
    f: impl std::future::Future<Output = btleplug::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(SHORT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(one_line(&e)),
        Err(_) => Err("timed out".into()),
    }
}

async fn read(p: &Peripheral, c: &Characteristic) -> Result<Vec<u8>, String> {
    bounded(p.read(c)).await
}

fn one_line(e: &btleplug::Error) -> String {
    let s = e.to_string();
    s.lines().next().unwrap_or("").to_owned()
}

/// Looks for the strap for up to [`SEARCH_S`]: among the peripherals BlueZ knows (it keeps
/// devices that are off: they are only taken when the connect works) and as they are discovered.
async fn find(
    hub: &Hub,
    adapter: &Adapter,
    events: &mut std::pin::Pin<Box<dyn futures_util::Stream<Item = CentralEvent> + Send>>,
    target: &Target,
) -> Result<(Peripheral, PeripheralProperties), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(SEARCH_S);
    loop {
        let (found, taken) = best(hub, adapter, target).await;
        if let Some(found) = found {
            return Ok(found);
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {
                return Err(match taken {
                    Some(a) => format!(
                        "{target}: the only matching strap ({a}) belongs to another source of this daemon (name it by its address)"
                    ),
                    None => format!(
                        "{target} not found within {SEARCH_S} s (is it on, worn (most straps sleep without skin contact), in range, and not connected to another app?)"
                    ),
                });
            }
            e = events.next() => {
                if e.is_none() {
                    return Err("BlueZ's event stream ended".into());
                }
            }
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// The best match for `target` that no other source holds or names more exactly: an exact
/// match before a name prefix, then the strongest signal (a strap without an RSSI, e.g. one
/// BlueZ remembers but does not hear, last). Also the address of a match another source holds.
async fn best(
    hub: &Hub,
    adapter: &Adapter,
    target: &Target,
) -> (Option<(Peripheral, PeripheralProperties)>, Option<String>) {
    let Ok(list) = bounded(adapter.peripherals()).await else {
        return (None, None);
    };
    let mut best: Option<(
        (u8, std::cmp::Reverse<i32>),
        Peripheral,
        PeripheralProperties,
    )> = None;
    let mut taken = None;
    for p in list {
        let Ok(Some(props)) = bounded(p.properties()).await else {
            continue;
        };
        let Some(rank) = matches(&props, target) else {
            continue;
        };
        let address = props.address.to_string().to_ascii_uppercase();
        if hub.is_claimed(&address).await
            || hub
                .reserved_for_another(target, &address, props.local_name.as_deref())
                .await
        {
            taken = Some(address);
            continue;
        }
        let key = (
            rank,
            std::cmp::Reverse(props.rssi.map_or(i32::MIN, i32::from)),
        );
        if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
            best = Some((key, p, props));
        }
    }
    (best.map(|(_, p, props)| (p, props)), taken)
}
