//! Nearby heart-rate straps, for `attune devices` (edge, btleplug): a short scan filtered by the
//! Heart Rate service and post-filtered (BlueZ merges scan filters across applications, so other
//! devices show up), then, for each strap, a brief connection to read its battery level.

use super::Unavailable;
#[cfg(feature = "ble")]
use super::hub::Hub;
#[cfg(feature = "ble")]
use crate::protocol::hrs;
#[cfg(feature = "ble")]
use btleplug::api::{Central, Peripheral as _, bleuuid::uuid_from_u16};
use serde::Serialize;
#[cfg(feature = "ble")]
use std::time::Duration;

/// One strap, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Strap {
    /// Always `ble`.
    pub connection: &'static str,
    /// Its address: what `attune run --ble` and a config's `device` take.
    pub address: String,
    /// Its advertised name, if any.
    pub name: Option<String>,
    /// Signal strength at the scan, dBm.
    pub rssi: Option<i16>,
    /// Battery level, %, if it could be read.
    pub battery_percent: Option<u8>,
    /// Why the battery could not be read, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_error: Option<String>,
}

/// Without the `ble` feature there is nothing to scan with.
#[cfg(not(feature = "ble"))]
pub async fn nearby(_seconds: f64) -> Result<Vec<Strap>, Unavailable> {
    Err(Unavailable(super::NOT_BUILT.into()))
}

/// Scans for `seconds` and lists the straps found, strongest first.
#[cfg(feature = "ble")]
pub async fn nearby(seconds: f64) -> Result<Vec<Strap>, Unavailable> {
    let hub = Hub::global();
    let adapter = hub.adapter().await?;
    hub.scan(&adapter, true).await.map_err(Unavailable)?;
    tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.5, 60.0))).await;
    let hr = uuid_from_u16(hrs::HEART_RATE_SERVICE);
    let list = tokio::time::timeout(Duration::from_secs(5), adapter.peripherals())
        .await
        .map_err(|_| Unavailable("BlueZ did not list devices within 5 s".into()))?
        .map_err(|e| Unavailable(super::hub::explain(&e)))?;
    let mut out = Vec::new();
    for p in list {
        let Ok(Ok(Some(props))) =
            tokio::time::timeout(Duration::from_secs(3), p.properties()).await
        else {
            continue;
        };
        if !props.services.contains(&hr) {
            continue;
        }
        let (battery_percent, battery_error) = match battery(&p).await {
            Ok(b) => (Some(b), None),
            Err(e) => (None, Some(e)),
        };
        out.push(Strap {
            connection: "ble",
            address: props.address.to_string().to_ascii_uppercase(),
            name: props.local_name.clone(),
            rssi: props.rssi,
            battery_percent,
            battery_error,
        });
    }
    let _ = adapter.stop_scan().await;
    out.sort_by_key(|s| std::cmp::Reverse(s.rssi.unwrap_or(i16::MIN)));
    Ok(out)
}

#[cfg(feature = "ble")]
async fn battery(p: &btleplug::platform::Peripheral) -> Result<u8, String> {
    let t = Duration::from_secs(5);
    let step = |what: &str, r: Result<btleplug::Result<()>, tokio::time::error::Elapsed>| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{what} failed: {e}")),
        Err(_) => Err(format!("{what} timed out")),
    };
    let was = matches!(p.is_connected().await, Ok(true));
    let result = async {
        if !was {
            step("connect", tokio::time::timeout(t, p.connect()).await)?;
        }
        step(
            "service discovery",
            tokio::time::timeout(t, p.discover_services()).await,
        )?;
        let uuid = uuid_from_u16(hrs::BATTERY_LEVEL);
        let c = p
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == uuid)
            .ok_or_else(|| "no battery service".to_owned())?;
        let v = tokio::time::timeout(t, p.read(&c))
            .await
            .map_err(|_| "read timed out".to_owned())?
            .map_err(|e| format!("read failed: {e}"))?;
        hrs::battery_percent(&v).map_err(|e| e.to_string())
    }
    .await;
    if !was {
        let _ = tokio::time::timeout(t, p.disconnect()).await;
    }
    result
}
