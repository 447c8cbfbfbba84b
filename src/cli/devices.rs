//! `attune devices`: the serial ports this machine has, with USB vendor/product where the kernel
//! knows them, and the protocol attune expects there.
//!
//! Ports come from `serialport::available_ports` (built without libudev: it scans
//! `/sys/class/tty`, so USB ids come from sysfs). Pseudo-terminals (simulators) are never listed:
//! give their path to `attune run --serial` directly. The expectation is a hint from the USB
//! vendor id, never a check: BITalino and Shimmer3 are Bluetooth-serial devices (`/dev/rfcommN`
//! after pairing and `rfcomm bind`), and the USB-serial chips below are what Arduino-style
//! text-line GSR boards use.
//!
//! Nearby BLE heart-rate straps come from a short scan ([`crate::sources::ble::scan`]; `--scan`
//! seconds, 0 skips it) with their signal strength and battery level. Without Bluetooth (no
//! system bus, no BlueZ, no adapter, powered off) the listing says why in one line and the
//! command still succeeds: the serial ports are listed whatever Bluetooth does.

use super::Common;
use serde::Serialize;

/// Arguments of `devices`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  attune devices\n  attune devices --json")]
pub struct DevicesArgs {
    /// One JSON object per port instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds to scan for BLE heart-rate straps (0: do not scan).
    #[arg(long, value_name = "S", default_value_t = 4.0)]
    pub scan: f64,
}

/// One port, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortRow {
    /// The path.
    pub port: String,
    /// `usb`, `bluetooth`, `pci` or `unknown`.
    pub connection: &'static str,
    /// USB vendor id, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vid: Option<String>,
    /// USB product id, hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    /// What the device says it is (manufacturer and product).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// USB serial number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The protocol attune expects (`textline`, `bitalino or shimmer`), if it has a guess.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<&'static str>,
    /// Why (the vendor's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<&'static str>,
}

/// USB vendor ids of the USB-serial bridges and boards text-line GSR rigs are built on.
const KNOWN_USB: [(u16, &str); 7] = [
    (0x2341, "Arduino SA board"),
    (0x2a03, "Arduino.org board"),
    (0x1a86, "WCH CH340/CH341 bridge (Arduino clones)"),
    (0x10c4, "Silicon Labs CP210x bridge (ESP32 boards)"),
    (0x303a, "Espressif native USB (ESP32-S2/S3/C3)"),
    (0x239a, "Adafruit board"),
    (0x0403, "FTDI bridge (generic)"),
];

/// The row of one port.
pub fn row(p: &serialport::SerialPortInfo) -> PortRow {
    use serialport::SerialPortType as T;
    let mut r = PortRow {
        port: p.port_name.clone(),
        connection: "unknown",
        vid: None,
        pid: None,
        description: None,
        serial_number: None,
        expect: None,
        why: None,
    };
    match &p.port_type {
        T::UsbPort(u) => {
            r.connection = "usb";
            r.vid = Some(format!("{:04x}", u.vid));
            r.pid = Some(format!("{:04x}", u.pid));
            let d: Vec<&str> = [u.manufacturer.as_deref(), u.product.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            r.description = (!d.is_empty()).then(|| d.join(" "));
            r.serial_number = u.serial_number.clone();
            if let Some((_, why)) = KNOWN_USB.iter().find(|(v, _)| *v == u.vid) {
                r.expect = Some("textline");
                r.why = Some(why);
            }
        }
        T::BluetoothPort => {
            r.connection = "bluetooth";
            r.expect = Some("bitalino or shimmer");
            r.why =
                Some("a Bluetooth-serial (RFCOMM) device: BITalino and Shimmer3 stream this way");
        }
        T::PciPort => r.connection = "pci",
        T::Unknown => {
            if p.port_name.contains("rfcomm") {
                r.connection = "bluetooth";
                r.expect = Some("bitalino or shimmer");
                r.why = Some("an RFCOMM port");
            }
        }
    }
    r
}

/// Runs `devices`.
pub fn run(_common: &Common, a: &DevicesArgs) -> anyhow::Result<()> {
    // serialport expects /sys/class/tty; a container without sysfs has no ports to list.
    let ports = if std::path::Path::new("/sys/class/tty").is_dir() {
        serialport::available_ports()
            .map_err(|e| anyhow::anyhow!("cannot list serial ports: {e}"))?
    } else {
        Vec::new()
    };
    let rows: Vec<PortRow> = ports.iter().map(row).collect();
    anyhow::ensure!(
        a.scan.is_finite() && (0.0..=60.0).contains(&a.scan),
        "--scan must be between 0 and 60 s"
    );
    let ble = (a.scan > 0.0).then(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the BLE scan: {e}"))
            .map(|rt| rt.block_on(crate::sources::ble::scan::nearby(a.scan)))
    });
    let ble = ble.transpose()?;
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
        match &ble {
            Some(Ok(straps)) => {
                for s in straps {
                    println!("{}", serde_json::to_string(s)?);
                }
            }
            Some(Err(why)) => println!(
                "{}",
                serde_json::json!({"connection": "ble", "unavailable": why.0})
            ),
            None => {}
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("No serial ports found.");
    } else {
        println!(
            "{:<20} {:<10} {:<10} {:<22} DESCRIPTION",
            "PORT", "CONNECTION", "USB ID", "EXPECT"
        );
        for r in &rows {
            let id = match (&r.vid, &r.pid) {
                (Some(v), Some(p)) => format!("{v}:{p}"),
                _ => "-".into(),
            };
            let desc = [r.description.as_deref(), r.why]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
            println!(
                "{:<20} {:<10} {:<10} {:<22} {}",
                r.port,
                r.connection,
                id,
                r.expect.unwrap_or("-"),
                if desc.is_empty() { "-" } else { &desc }
            );
        }
    }
    println!(
        "Pseudo-terminals (simulated devices) are not listed: pass their path to `attune run --serial`."
    );
    match &ble {
        None => {}
        Some(Err(why)) => println!("{why}: no BLE straps listed."),
        Some(Ok(straps)) if straps.is_empty() => println!(
            "No BLE heart-rate straps found in {} s (most straps sleep until worn: wet the electrodes and put it on).",
            a.scan
        ),
        Some(Ok(straps)) => {
            println!(
                "\n{:<18} {:<8} {:<8} NAME",
                "BLE ADDRESS", "RSSI", "BATTERY"
            );
            for s in straps {
                println!(
                    "{:<18} {:<8} {:<8} {}",
                    s.address,
                    s.rssi.map_or("-".into(), |r| format!("{r} dBm")),
                    s.battery_percent.map_or("-".into(), |b| format!("{b} %")),
                    s.name.as_deref().unwrap_or("-")
                );
            }
            println!("Use one with `attune run --ble ADDRESS --participant ID`.");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serialport::{SerialPortInfo, SerialPortType, UsbPortInfo};

    #[test]
    fn known_vendors_and_rfcomm_get_an_expected_protocol_and_others_none() {
        let usb = |vid| SerialPortInfo {
            port_name: "/dev/ttyUSB0".into(),
            port_type: SerialPortType::UsbPort(UsbPortInfo {
                vid,
                pid: 0x7523,
                serial_number: None,
                manufacturer: Some("QinHeng".into()),
                product: Some("USB Serial".into()),
            }),
        };
        let r = row(&usb(0x1a86));
        assert_eq!(r.expect, Some("textline"));
        assert_eq!(r.vid.as_deref(), Some("1a86"));
        assert_eq!(r.description.as_deref(), Some("QinHeng USB Serial"));
        assert_eq!(row(&usb(0x1234)).expect, None);
        let bt = SerialPortInfo {
            port_name: "/dev/rfcomm0".into(),
            port_type: SerialPortType::Unknown,
        };
        assert_eq!(row(&bt).expect, Some("bitalino or shimmer"));
        let s = SerialPortInfo {
            port_name: "/dev/ttyS0".into(),
            port_type: SerialPortType::PciPort,
        };
        assert_eq!(row(&s).expect, None);
    }
}
