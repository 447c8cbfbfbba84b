//! The LSL outlets end to end with a real pylsl inlet (PyPI pylsl 1.18.6, which bundles liblsl),
//! fed by a simulated BITalino on a pseudo-terminal (`attune simulate device`): stream metadata
//! (type, rate, source_id, channel label/unit/type), values and timestamps of the ECG and EDA
//! streams, the decisions on the markers stream, no sample stream without `share_raw`, and the
//! sample outlets closed when it is revoked. They skip (saying why) without pylsl, and fail instead when
//! ATTUNE_REQUIRE_TRANSPORTS=1.
#![cfg(feature = "lsl")]

use crate::util::{Served, daemon_with_consents, grant, json, revoke};
use std::process::Command;
use std::time::{Duration, Instant};

/// Reads every `attune-*` stream of participant `p` for `secs` seconds with pylsl and prints
/// one JSON object: per source_id, the info, channels and samples.
const READER: &str = r#"
import json, sys, time, xml.etree.ElementTree as ET
import pylsl
p, secs, want = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.time() + 20
found = {}
while time.time() < deadline and len(found) < want:
    for s in pylsl.resolve_streams(wait_time=1.0):
        sid = s.source_id()
        if sid.startswith("attune-") and sid.endswith(tuple("-" + k for k in ("eda", "rr", "ecg", "ppg", "markers"))) and ("-" + p + "-") in sid:
            found.setdefault(sid, s)
out = {}
inlets = {}
for sid, s in found.items():
    inlet = pylsl.StreamInlet(s, max_buflen=60)
    info = inlet.info(timeout=5)
    root = ET.fromstring(info.as_xml())
    chans = [{k: (c.findtext(k) or "") for k in ("label", "unit", "type")} for c in root.iter("channel")]
    out[sid] = {"name": info.name(), "type": info.type(), "rate": info.nominal_srate(),
                "channels": info.channel_count(), "format": info.channel_format(),
                "desc": chans, "samples": [], "clock": pylsl.local_clock()}
    inlets[sid] = inlet
end = time.time() + secs
while time.time() < end:
    for sid, inlet in inlets.items():
        chunk, ts = inlet.pull_chunk(timeout=0.05)
        out[sid]["samples"] += [[t, v[0]] for t, v in zip(ts, chunk)]
print(json.dumps(out))
"#;

fn pylsl_or_skip() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import pylsl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("ATTUNE_REQUIRE_TRANSPORTS").as_deref() == Ok("1") {
            panic!(
                "pylsl required (ATTUNE_REQUIRE_TRANSPORTS=1): python3 -m pip install pylsl==1.18.6"
            );
        }
        eprintln!("SKIPPED: pylsl is not installed (python3 -m pip install pylsl==1.18.6)");
    }
    ok
}

/// The streams of `p` as pylsl reads them for `secs` (waiting for at least `want` of them).
fn read(p: &str, secs: f64, want: usize) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", READER, p, &secs.to_string(), &want.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the pylsl reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(String::from_utf8_lossy(&out.stdout).trim())
}

fn stream<'a>(all: &'a serde_json::Value, suffix: &str) -> &'a serde_json::Value {
    all.as_object()
        .and_then(|m| m.iter().find(|(k, _)| k.ends_with(suffix)).map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no *{suffix} stream in {}", all))
}

#[test]
fn lsl_outlets_carry_metadata_values_timestamps_and_decisions_to_a_pylsl_inlet() {
    if !pylsl_or_skip() {
        return;
    }
    // A participant id of this test's own, so streams of other runs on the network differ.
    let p = format!("lsl{}", std::process::id());
    let sim = crate::serial::SimDevice::start("bitalino", &[]);
    let port = sim.path.to_str().unwrap().to_owned();
    let Served { d, data, _keep } = daemon_with_consents(
        &[&p],
        "process,adapt,share_features,record",
        &[
            "--serial",
            &port,
            "--protocol",
            "bitalino",
            "--participant",
            &p,
            "--lsl",
            "--no-record",
        ],
        &[],
    );
    let outlets_of = |d: &crate::util::LiveDaemon| -> Vec<String> {
        let (code, out, err) = crate::util::run_attune_in(&d.socket, &data, &["status", "--json"]);
        assert_eq!(code, Some(0), "{err}");
        let st = json(out.trim());
        let lsl =
            crate::util::publisher(&st, "lsl").unwrap_or_else(|| panic!("no lsl publisher: {st}"));
        serde_json::from_value(lsl["outlets"].clone()).unwrap()
    };
    // Without share_raw no sample stream is opened (the markers may be).
    std::thread::sleep(Duration::from_secs(3));
    let before = outlets_of(&d);
    assert!(
        before.iter().all(|o| o.ends_with("-markers")),
        "a sample outlet without share_raw: {before:?}"
    );
    let cli = |args: &[&str]| crate::util::run_attune_in(&d.socket, &data, args);
    let (code, _, err) = cli(&grant(&p, "all", "share_raw"));
    assert_eq!(code, Some(0), "{err}");
    let t0 = Instant::now();
    let all = read(&p, 5.0, 3);

    let eda = stream(&all, "-eda");
    assert_eq!(eda["type"], "GSR");
    assert_eq!(eda["name"], format!("attune {p} EDA"));
    assert_eq!(eda["desc"][0]["label"], "EDA");
    assert_eq!(eda["desc"][0]["unit"], "microsiemens");
    assert_eq!(eda["desc"][0]["type"], "GSR");
    let rate = eda["rate"].as_f64().unwrap();
    assert!(rate > 0.0, "{eda}");
    let samples: Vec<(f64, f64)> = serde_json::from_value(eda["samples"].clone()).unwrap();
    assert!(
        samples.len() as f64 > rate * 2.0,
        "{} EDA samples at {rate} Hz",
        samples.len()
    );
    assert!(
        samples.iter().all(|s| (0.05..100.0).contains(&s.1)),
        "EDA in µS"
    );
    let off = samples
        .windows(2)
        .filter(|w| ((w[1].0 - w[0].0) * rate - 1.0).abs() > 0.01)
        .count();
    assert_eq!(off, 0, "EDA stamps 1/rate apart ({rate} Hz)");
    // Stamped on this host's LSL clock: close to the reader's clock.
    let clock = eda["clock"].as_f64().unwrap();
    let first = samples[0].0;
    assert!(
        (first - clock).abs() < 5.0,
        "first stamp {first}, clock {clock}"
    );

    let ecg = stream(&all, "-ecg");
    assert_eq!(ecg["type"], "ECG");
    assert_eq!(ecg["desc"][0]["unit"], "microvolts");
    let ecg_rate = ecg["rate"].as_f64().unwrap();
    let ecg_s: Vec<(f64, f64)> = serde_json::from_value(ecg["samples"].clone()).unwrap();
    assert!(
        ecg_s.len() as f64 > ecg_rate * 2.0,
        "{} ECG samples at {ecg_rate} Hz",
        ecg_s.len()
    );
    let peak = ecg_s.iter().map(|s| s.1.abs()).fold(0.0, f64::max);
    assert!(
        (100.0..20_000.0).contains(&peak),
        "ECG peak {peak} µV (mV × 1000)"
    );
    assert!(ecg_s.windows(2).all(|w| w[1].0 > w[0].0));

    let markers = stream(&all, "-markers");
    assert_eq!(markers["type"], "Markers");
    assert_eq!(markers["format"], 3, "cf_string");
    let texts: Vec<(f64, String)> = serde_json::from_value(markers["samples"].clone()).unwrap();
    assert!(!texts.is_empty());
    for (_, t) in &texts {
        let m = json(t);
        assert_eq!(m["type"], "adaptation", "{t}");
        assert_eq!(m["participant"], p.as_str());
    }
    assert!(t0.elapsed() < Duration::from_secs(40));
    let open = outlets_of(&d);
    for k in ["ecg", "eda", "markers"] {
        let suffix = format!("-{p}-{k}");
        assert!(
            open.iter()
                .any(|o| o.starts_with("attune-") && o.ends_with(&suffix)),
            "{open:?}"
        );
    }

    // Revoking share_raw closes the sample outlets.
    let (code, _, err) = cli(&revoke(&p, "all", "share_raw"));
    assert_eq!(code, Some(0), "{err}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let outlets = outlets_of(&d);
        if outlets.iter().all(|o| o.ends_with("-markers")) {
            break;
        }
        assert!(Instant::now() < deadline, "outlets still open: {outlets:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// The RR outlet, fed by a BLE heart-rate strap (the mocked BlueZ of tests/ble_mock.rs): each
/// beat the strap notified arrives as one sample in milliseconds, in order, on an irregular
/// stream, stamped so that consecutive stamps are the intervals apart.
#[cfg(feature = "ble")]
#[test]
fn lsl_rr_outlet_carries_each_beat_of_a_strap_in_milliseconds() {
    if !pylsl_or_skip() {
        return;
    }
    let Some(mock) = crate::ble_mock::start_or_skip(&[]) else {
        return;
    };
    let p = format!("lslrr{}", std::process::id());
    // share_raw without record: the samples are shared, not recorded.
    let Served { d, data, _keep } = daemon_with_consents(
        &[&p],
        "process,adapt,share_features,share_raw",
        &["--ble", "C0:FF:EE:00:00:01", "--participant", &p, "--lsl"],
        &[("DBUS_SYSTEM_BUS_ADDRESS", mock.address())],
    );
    let all = read(&p, 8.0, 2);
    let rr = stream(&all, "-rr");
    assert_eq!(rr["type"], "RR");
    assert_eq!(rr["rate"], 0.0, "irregular");
    assert_eq!(rr["desc"][0]["unit"], "milliseconds");
    let samples: Vec<(f64, f64)> = serde_json::from_value(rr["samples"].clone()).unwrap();
    assert!(samples.len() >= 4, "{} RR samples in 8 s", samples.len());
    // What the strap sent, in its 1/1024 s units.
    let sent: Vec<f64> = mock
        .events_seen()
        .iter()
        .filter(|e| e["event"] == "notify")
        .flat_map(|e| {
            e["rr_raw"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.as_f64())
        })
        .map(|raw| raw * 1000.0 / 1024.0)
        .collect();
    let got: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let start = sent
        .windows(got.len())
        .position(|w| w.iter().zip(&got).all(|(a, b)| (a - b).abs() < 0.01));
    assert!(
        start.is_some(),
        "the RR samples are not a run of the strap's beats:\n got {got:?}\nsent {sent:?}"
    );
    let spacing: Vec<(f64, f64)> = samples
        .windows(2)
        .map(|w| (w[1].0 - w[0].0, w[1].1 / 1000.0))
        .collect();
    assert!(
        spacing.iter().all(|(dt, rr)| (dt - rr).abs() < 1e-3),
        "stamps apart vs intervals (s): {spacing:?}"
    );
    // Without `record` nothing of it was recorded, and nothing counted as withdrawn.
    let (code, out, err) = crate::util::run_attune_in(&d.socket, &data, &["status", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let st = json(out.trim());
    let rec =
        crate::util::publisher(&st, "recorder").unwrap_or_else(|| panic!("no recorder: {st}"));
    assert_eq!(rec["files"], serde_json::json!([]), "{rec}");
    assert_eq!(rec["dropped"]["withdrawn_at_egress"], 0, "{rec}");
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !data.join("sessions").exists(),
        "a session file without record consent: {:?}",
        walk(&data)
    );
}

fn walk(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push((p.display().to_string(), e.metadata().map_or(0, |m| m.len())));
        }
    }
    out
}
