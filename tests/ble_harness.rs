//! The BLE mock harness itself (tests/ble_mock.rs), driven by plain D-Bus clients (dbus-send,
//! dbus-monitor, a few lines of dbus-python): no attune BLE code involved. These fail if the
//! mock misbehaves; they skip (saying why) only where dbus/dbusmock are missing, and never
//! when ATTUNE_REQUIRE_BLE_MOCK=1.

use crate::ble_mock::{MockBluez, PYTHON, dbus_send, start_or_skip};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const DEV: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_01";
const HRM: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_01/service0010/char0011";
const T: Duration = Duration::from_secs(5);

/// Runs a dbus-python snippet on the mock's bus (with `bus`, `call`, `get` predefined).
fn py(m: &MockBluez, code: &str) -> Result<String, String> {
    let prelude = "import dbus\nbus = dbus.SystemBus()\n\
        def call(path, iface, method, *a):\n    \
            return getattr(dbus.Interface(bus.get_object('org.bluez', path), iface), method)(*a)\n\
        def get(path, iface, prop):\n    \
            return call(path, dbus.PROPERTIES_IFACE, 'Get', iface, prop)\n";
    let out = Command::new(PYTHON)
        .args(["-c", &format!("{prelude}{code}")])
        .env("DBUS_SYSTEM_BUS_ADDRESS", m.address())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn method(m: &MockBluez, path: &str, iface_method: &str) -> Result<String, String> {
    dbus_send(m.address(), &["--dest=org.bluez", path, iface_method])
}

fn prop(m: &MockBluez, path: &str, iface: &str, name: &str) -> String {
    dbus_send(
        m.address(),
        &[
            "--dest=org.bluez",
            path,
            "org.freedesktop.DBus.Properties.Get",
            &format!("string:{iface}"),
            &format!("string:{name}"),
        ],
    )
    .unwrap()
}

fn connected(m: &MockBluez, dev: &str) -> bool {
    prop(m, dev, "org.bluez.Device1", "Connected").contains("boolean true")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// DEVICES.md §1.1: (HR, contact, EE, RR raw); panics on a malformed frame.
fn decode_hrm(b: &[u8]) -> (u16, Option<bool>, Option<u16>, Vec<u16>) {
    let flags = b[0];
    let mut i = 1;
    let hr = if flags & 1 == 0 {
        i += 1;
        u16::from(b[1])
    } else {
        i += 2;
        u16::from_le_bytes([b[1], b[2]])
    };
    let contact = (flags & 0x04 != 0).then_some(flags & 0x02 != 0);
    let ee = (flags & 0x08 != 0).then(|| {
        i += 2;
        u16::from_le_bytes([b[i - 2], b[i - 1]])
    });
    let rest = &b[i..];
    let rr = if flags & 0x10 != 0 {
        assert_eq!(rest.len() % 2, 0, "odd RR bytes in {b:02x?}");
        rest.chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    } else {
        assert!(
            rest.is_empty(),
            "trailing bytes without RR flag in {b:02x?}"
        );
        Vec::new()
    };
    (hr, contact, ee, rr)
}

fn rr_of(ev: &Value) -> Vec<u16> {
    ev["rr_raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| u16::try_from(v.as_u64().unwrap()).unwrap())
        .collect()
}

/// dbus-monitor's rendering of the byte arrays in PropertiesChanged signals from `path`.
fn monitored_values(out: &str) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    let mut rest = out;
    while let Some(at) = rest.find("array of bytes [") {
        let tail = &rest[at + "array of bytes [".len()..];
        let end = tail.find(']').unwrap();
        values.push(
            tail[..end]
                .split_whitespace()
                .map(|t| u8::from_str_radix(t, 16).unwrap())
                .collect(),
        );
        rest = &tail[end..];
    }
    values
}

#[test]
fn scan_connect_subscribe_delivers_hrs_frames() {
    let Some(m) = start_or_skip(&[]) else { return };
    // Without a scan the strap is not exported yet (it appears when Discovering turns true).
    let objects = "print(sorted(str(p) for p in call('/', \
        'org.freedesktop.DBus.ObjectManager', 'GetManagedObjects')))";
    assert!(!py(&m, objects).unwrap().contains("dev_C0_FF_EE"));
    // As bluez-async does: a discovery filter, then StartDiscovery.
    py(
        &m,
        "call('/org/bluez/hci0', 'org.bluez.Adapter1', 'SetDiscoveryFilter', \
         dbus.Dictionary({}, signature='sv'))\n\
         call('/org/bluez/hci0', 'org.bluez.Adapter1', 'StartDiscovery')",
    )
    .unwrap();
    assert_eq!(m.next_event("discovering", T).unwrap()["value"], true);
    let added = m.next_event("device_added", T).unwrap();
    assert_eq!(added["addr"], "C0:FF:EE:00:00:01");
    assert!(py(&m, objects).unwrap().contains(&format!("'{HRM}'")));
    assert!(prop(&m, DEV, "org.bluez.Device1", "Name").contains("Polar H10 0000TEST"));

    method(&m, DEV, "org.bluez.Device1.Connect").unwrap();
    assert!(connected(&m, DEV));
    assert!(prop(&m, DEV, "org.bluez.Device1", "ServicesResolved").contains("boolean true"));
    assert_eq!(m.next_event("connected", T).unwrap()["by"], "client");

    // A real client's view: the PropertiesChanged signals on the characteristic.
    let monitor = Command::new("dbus-monitor")
        .env("DBUS_SYSTEM_BUS_ADDRESS", m.address())
        .args([
            "--system",
            &format!("type='signal',interface='org.freedesktop.DBus.Properties',path='{HRM}'"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    method(&m, HRM, "org.bluez.GattCharacteristic1.StartNotify").unwrap();
    m.next_event("subscribed", T).unwrap();
    let notes: Vec<Value> = (0..6)
        .map(|_| m.next_event("notify", Duration::from_secs(3)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut monitor = monitor;
    monitor.kill().unwrap();
    let out = String::from_utf8_lossy(&monitor.wait_with_output().unwrap().stdout).into_owned();
    let on_bus = monitored_values(&out);

    let mut all_rr = Vec::new();
    for (k, n) in notes.iter().enumerate() {
        let bytes = hex(n["hex"].as_str().unwrap());
        assert!(
            on_bus.contains(&bytes),
            "notify {n} not seen on the bus: {out}"
        );
        let (hr, contact, ee, rr) = decode_hrm(&bytes);
        assert_eq!(
            bytes[0], 0x16,
            "u8 HR, contact supported and detected, RR present"
        );
        assert_eq!((contact, ee), (Some(true), None));
        assert_eq!(rr, rr_of(n), "event rr_raw matches the bytes");
        assert!(rr.len() <= 2, "1 s at ~60 bpm: 0..2 RR, got {rr:?}");
        assert_eq!(u64::from(hr), n["hr"].as_u64().unwrap());
        assert!((30..=120).contains(&hr), "HR {hr}");
        if let Some(&last) = rr.last() {
            let ms = f64::from(last) * 1000.0 / 1024.0;
            assert!(
                (f64::from(hr) - 60000.0 / ms).abs() <= 1.0,
                "HR from the latest RR"
            );
        }
        if k > 0 {
            let dt = n["t"].as_f64().unwrap() - notes[k - 1]["t"].as_f64().unwrap();
            assert!(
                (0.85..1.15).contains(&dt),
                "notifications ~1 s apart, got {dt}"
            );
        }
        all_rr.extend(rr);
    }
    // 6 s at 60 bpm: about 6 beats (the first window may be partial).
    assert!((4..=8).contains(&all_rr.len()), "RR {all_rr:?}");
    for raw in &all_rr {
        let ms = f64::from(*raw) * 1000.0 / 1024.0;
        assert!((300.0..=2000.0).contains(&ms), "RR {ms} ms");
    }
    assert!(
        all_rr.windows(2).any(|w| w[0] != w[1]),
        "RR varies: {all_rr:?}"
    );
}

#[test]
fn link_loss_away_and_reconnect() {
    let Some(mut m) = start_or_skip(&["--devices-at-start"]) else {
        return;
    };
    // --devices-at-start: the strap is there (before `ready`) without any scan.
    assert!(m.events_seen().iter().any(|e| e["event"] == "device_added"));
    method(&m, DEV, "org.bluez.Device1.Connect").unwrap();
    method(&m, HRM, "org.bluez.GattCharacteristic1.StartNotify").unwrap();
    m.next_event("subscribed", T).unwrap();
    m.next_event("notify", Duration::from_secs(3)).unwrap();

    // Device-initiated link loss.
    m.send("disconnect");
    let d = m.next_event("disconnected", T).unwrap();
    assert_eq!(
        (d["by"].as_str(), d["reason"].as_str()),
        (Some("device"), Some("link_loss"))
    );
    assert!(!connected(&m, DEV));
    assert!(prop(&m, DEV, "org.bluez.Device1", "ServicesResolved").contains("boolean false"));
    assert!(prop(&m, HRM, "org.bluez.GattCharacteristic1", "Notifying").contains("boolean false"));
    assert!(
        m.next_event("notify", Duration::from_millis(1500))
            .is_none(),
        "no notifications while disconnected"
    );

    // Reconnect and resubscribe: notifications flow again.
    method(&m, DEV, "org.bluez.Device1.Connect").unwrap();
    assert!(connected(&m, DEV));
    m.next_event("connected", T).unwrap();
    method(&m, HRM, "org.bluez.GattCharacteristic1.StartNotify").unwrap();
    m.next_event("subscribed", T).unwrap();
    let n = m.next_event("notify", Duration::from_secs(3)).unwrap();
    decode_hrm(&hex(n["hex"].as_str().unwrap()));

    // Out of range: link loss, and Connect fails until `back`.
    m.send("away");
    assert_eq!(m.next_event("disconnected", T).unwrap()["reason"], "away");
    let err = method(&m, DEV, "org.bluez.Device1.Connect").unwrap_err();
    assert!(err.contains("org.bluez.Error.Failed"), "{err}");
    assert!(!connected(&m, DEV));
    m.next_event("connect_refused", T).unwrap();
    m.send("back");
    // The echo comes once the command is in effect.
    assert_eq!(m.next_event("command", T).unwrap()["line"], "back");
    method(&m, DEV, "org.bluez.Device1.Connect").unwrap();
    assert!(connected(&m, DEV));

    // Client-side StopNotify stops the flow while staying connected.
    method(&m, HRM, "org.bluez.GattCharacteristic1.StartNotify").unwrap();
    m.next_event("notify", Duration::from_secs(3)).unwrap();
    method(&m, HRM, "org.bluez.GattCharacteristic1.StopNotify").unwrap();
    assert_eq!(m.next_event("unsubscribed", T).unwrap()["by"], "client");
    assert!(
        m.next_event("notify", Duration::from_millis(1500))
            .is_none()
    );
    assert!(connected(&m, DEV));
    let errors: Vec<Value> = m
        .events_seen()
        .into_iter()
        .filter(|e| e["event"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn hr_only_strap_without_contact_support() {
    let straps = r#"[{"address":"C0:FF:EE:00:00:01"},
        {"address":"C0:FF:EE:00:00:02","name":"Generic HR","hr_only":true,
         "no_contact_support":true,"hr":90,"battery":40,"body_location":2,"pmd":false}]"#;
    let Some(m) = start_or_skip(&["--devices-at-start", "--straps", straps]) else {
        return;
    };
    let dev2 = "/org/bluez/hci0/dev_C0_FF_EE_00_00_02";
    method(&m, dev2, "org.bluez.Device1.Connect").unwrap();
    let battery = py(
        &m,
        &format!(
            "print(list(get('{dev2}/service0020/char0021', \
            'org.bluez.GattCharacteristic1', 'Value')))"
        ),
    )
    .unwrap();
    assert_eq!(battery, "[dbus.Byte(40)]");
    method(
        &m,
        &format!("{dev2}/service0010/char0011"),
        "org.bluez.GattCharacteristic1.StartNotify",
    )
    .unwrap();
    for _ in 0..3 {
        let n = m.next_event("notify", Duration::from_secs(3)).unwrap();
        assert_eq!(
            n["addr"], "C0:FF:EE:00:00:02",
            "only the connected strap notifies"
        );
        let bytes = hex(n["hex"].as_str().unwrap());
        assert_eq!(bytes.len(), 2, "{bytes:02x?}");
        assert_eq!(bytes[0], 0x00, "no RR bit, contact not supported");
        assert_eq!(decode_hrm(&bytes).1, None);
        assert!((60..=120).contains(&bytes[1]), "HR {}", bytes[1]);
        assert!(rr_of(&n).is_empty());
    }
    assert!(!connected(&m, DEV), "the first strap was never connected");
}
