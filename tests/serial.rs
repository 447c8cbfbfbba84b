//! Serial devices end to end: the real binary's simulated devices (`attune simulate device
//! --pty`) on kernel pseudo-terminals, read by the real daemon (`attune run --serial`), through
//! the socket and the recorder. Faults: corrupt frames, unplug and replug, a port that does not
//! exist, the wrong protocol.

use crate::util::{
    Served, daemon_with_consent, grant, json, read_recording, read_until, recording_of, run_attune,
};
use attune::recording::Record;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A running `attune simulate device`.
pub(crate) struct SimDevice {
    child: Child,
    /// The pseudo-terminal it serves.
    pub(crate) path: PathBuf,
    events: Arc<Mutex<Vec<serde_json::Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl SimDevice {
    pub(crate) fn start(protocol: &str, args: &[&str]) -> SimDevice {
        let mut child = Command::new(env!("CARGO_BIN_EXE_attune"))
            .current_dir(crate::util::root())
            .args(["simulate", "device", "--protocol", protocol, "--pty"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let path = PathBuf::from(first.trim());
        assert!(path.exists(), "the simulator printed {first:?}");
        let events = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let ev = events.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                    ev.lock().unwrap().push(v);
                }
            }
        });
        SimDevice {
            child,
            path,
            events,
            reader: Some(reader),
        }
    }

    fn events(&self, name: &str) -> Vec<serde_json::Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == name)
            .cloned()
            .collect()
    }

    /// Waits for the simulator to end by itself (`--seconds`), returns its stats event.
    fn wait_stats(mut self, secs: u64) -> serde_json::Value {
        crate::util::wait_within(&mut self.child, secs, "the simulated device");
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        self.events("stats").pop().expect("a stats event")
    }
}

impl Drop for SimDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn serial_args<'a>(path: &'a Path, protocol: &'a str) -> Vec<&'a str> {
    vec![
        "--serial",
        path.to_str().unwrap(),
        "--protocol",
        protocol,
        "--participant",
        "p01",
    ]
}

fn e2e(protocol: &str, heart: Option<&str>) {
    let sim = SimDevice::start(protocol, &[]);
    let Served { d, data: _, _keep } = daemon_with_consent(
        "process,adapt,share_features",
        &serial_args(&sim.path, protocol),
    );
    let mut s = d.subscribe_for("p01", &["adaptation", "features", "state"]);
    let (ok, seen) = read_until(&mut s, 60, |v| {
        v["type"] == "features"
            && v["scl_us"].is_number()
            && heart.is_none_or(|h| v["heart_source"] == h && v["hr_bpm"].is_number())
    });
    assert!(
        ok,
        "{protocol}: no features with EDA{} in 60 s: {:?}",
        heart
            .map(|h| format!(" and heart rate from {h}"))
            .unwrap_or_default(),
        seen.iter().rev().take(5).collect::<Vec<_>>()
    );
    let f = seen.last().unwrap();
    let scl = f["scl_us"].as_f64().unwrap();
    assert!((0.5..40.0).contains(&scl), "{protocol}: SCL {scl} µS");
    if heart.is_some() {
        let hr = f["hr_bpm"].as_f64().unwrap();
        assert!((40.0..150.0).contains(&hr), "{protocol}: HR {hr}");
    }
    assert!(
        seen.iter().any(|v| v["type"] == "adaptation"),
        "{protocol}: no decision arrived"
    );
    assert!(
        seen.iter()
            .any(|v| v["type"] == "state" && v["state"] == "streaming"),
        "{protocol}: no streaming state"
    );
}

#[test]
fn a_bitalino_on_a_pty_gives_ecg_heart_rate_eda_and_decisions() {
    e2e("bitalino", Some("ecg"));
}

#[test]
fn a_shimmer_on_a_pty_gives_ppg_heart_rate_eda_and_decisions() {
    e2e("shimmer", Some("ppg"));
}

#[test]
fn a_text_line_gsr_on_a_pty_gives_eda_and_decisions() {
    e2e("textline", None);
}

/// What a recording holds: samples per stream, gaps (stream, reason) → count, and the sample
/// instants those gaps stand for, from each stream's rate.
struct Census {
    samples: std::collections::BTreeMap<String, usize>,
    gaps: std::collections::BTreeMap<(String, String), usize>,
    lost: std::collections::BTreeMap<(String, String), usize>,
}

fn census(path: &Path) -> Census {
    let (header, records) = read_recording(path);
    let rate = |kind: &str| {
        header
            .streams
            .iter()
            .find(|s| s.kind == kind)
            .and_then(|s| s.rate_hz)
            .unwrap_or(1.0)
    };
    let mut c = Census {
        samples: Default::default(),
        gaps: Default::default(),
        lost: Default::default(),
    };
    for r in records {
        match r {
            Record::Chunk(ch) => {
                *c.samples.entry(ch.kind.name().to_owned()).or_insert(0) += ch.samples.len()
            }
            Record::Gap(g) => {
                let key = (g.kind.name().to_owned(), g.reason.clone());
                *c.gaps.entry(key.clone()).or_insert(0) += 1;
                let n = ((g.end - g.start) * rate(g.kind.name())).round() as usize;
                *c.lost.entry(key).or_insert(0) += n.saturating_sub(1);
            }
            _ => {}
        }
    }
    c
}

/// With 1 % of frames corrupted (one bit flipped): every corrupted frame is lost in a `crc` gap,
/// every other frame is a sample, in the recording; the raw capture decodes again to the same
/// samples.
fn corrupt(protocol: &str, stream: &str, settings: Option<&str>) {
    let mut sim_args = vec!["--corrupt", "1", "--seconds", "15", "--seed", "11"];
    if let Some(s) = settings {
        sim_args.extend(["--settings", s]);
    }
    // A text line at 100 lines/s: enough corrupted lines in 15 s.
    if protocol == "textline" {
        sim_args.extend(["--rate", "100"]);
    }
    let sim = SimDevice::start(protocol, &sim_args);
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.attune-raw.ndjson");
    let mut args = serial_args(&sim.path, protocol);
    args.extend(["--record-raw", capture.to_str().unwrap()]);
    if let Some(s) = settings {
        args.extend(["--settings", s]);
    }
    if protocol == "textline" {
        args.extend(["--rate", "100"]);
    }
    let Served { d, data, _keep } =
        daemon_with_consent("process,adapt,share_features,record", &args);
    let stats = sim.wait_stats(60);
    std::thread::sleep(Duration::from_millis(500));
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let c = census(&recording_of(&data));
    let sent = stats["frames"].as_u64().unwrap() as usize;
    let corrupted = stats["corrupted"].as_u64().unwrap() as usize;
    assert!(corrupted > 0, "{stats}");
    let got = c.samples[stream];
    // The integrity gaps: `crc`, or `resync` where the flipped bit was in a packet's header
    // byte (the decoder could not even tell a packet began there).
    let integrity = |(s, r): &(String, String)| s == stream && (r == "crc" || r == "resync");
    let gaps: usize = c
        .gaps
        .iter()
        .filter(|(k, _)| integrity(k))
        .map(|(_, n)| n)
        .sum();
    // Frames the gaps stand for, from their length; a text line without a clock is timed on
    // receipt, so there each gap is counted as one line.
    let lost: usize = if protocol == "textline" {
        gaps
    } else {
        c.lost
            .iter()
            .filter(|(k, _)| integrity(k))
            .map(|(_, n)| n)
            .sum()
    };
    let decoded = attune::sources::serial::raw::parse_capture(
        &std::fs::read_to_string(&capture).unwrap(),
        "capture",
        protocol.parse().unwrap(),
    )
    .unwrap();
    // What reached the host: a BITalino or a Shimmer streams only once the host has opened the
    // port and started it, so everything it sent; a text-line device talks from power-on, so
    // the lines it sent before the port was opened never reach anyone (the open flushes them):
    // count the received ones, less the first (possibly partial, always dropped).
    let (good, bad) = if protocol == "textline" {
        let rx: Vec<u8> = decoded
            .events
            .iter()
            .filter_map(|e| e.rx.as_deref())
            .flat_map(|h| attune::sources::serial::raw::unhex(h).unwrap())
            .collect();
        let mut lines: Vec<&[u8]> = rx.split(|b| *b == b'\n').collect();
        lines.pop();
        let (mut good, mut bad) = (0, 0);
        for line in lines.iter().skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b"#") {
                continue;
            }
            let ok = match line.iter().rposition(|b| *b == b'*') {
                Some(star) => {
                    let want = std::str::from_utf8(&line[star + 1..])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    want == Some(attune::protocol::textline::checksum(&line[..star]))
                }
                None => false,
            };
            if ok { good += 1 } else { bad += 1 }
        }
        (good, bad)
    } else {
        (sent - corrupted, corrupted)
    };
    eprintln!(
        "{protocol}: sent {sent} frames, {corrupted} corrupted; received {good} good and {bad} corrupted; recorded {got} samples, {gaps} integrity gaps standing for {lost} frames; gaps {:?}",
        c.gaps
    );
    assert_eq!(lost, bad, "{protocol}: every corrupted frame is in a gap");
    let others: usize = c
        .gaps
        .iter()
        .filter(|(k, _)| k.0 == stream && !integrity(k))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(others, 0, "{protocol}: only integrity gaps: {:?}", c.gaps);
    // Every uncorrupted frame is a sample, but for the frames before the decoder locked on.
    assert!(
        got <= good && good - got <= 4,
        "{protocol}: {got} samples from {good} good frames"
    );
    // The raw capture replays through the same decoder to the same samples.
    let rdata = dir.path().join("rd");
    let (code, out, err) = run_attune(&[
        "replay",
        "--raw",
        capture.to_str().unwrap(),
        "--protocol",
        protocol,
        "--speed",
        "max",
        "--socket",
        dir.path().join("run").join("r.sock").to_str().unwrap(),
        "--data-dir",
        rdata.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (inputs, _) = attune::sources::serial::replay::decode(&decoded);
    let replayed: usize = inputs
        .iter()
        .filter_map(|i| match i {
            attune::engine::input::Input::Chunk(ch) if ch.kind.name() == stream => {
                Some(ch.samples.len())
            }
            _ => None,
        })
        .sum();
    assert_eq!(
        replayed, got,
        "{protocol}: the capture decodes to the recorded samples"
    );
}

#[test]
fn bitalino_with_one_percent_corrupt_frames_delivers_every_good_frame_and_no_bad_one() {
    corrupt("bitalino", "eda", None);
}

#[test]
fn shimmer_with_one_percent_corrupt_packets_delivers_every_good_packet_and_no_bad_one() {
    // With the firmware's CRC (command 8B): without it a Shimmer's values have no check.
    corrupt("shimmer", "eda", Some(r#"{"crc":"2"}"#));
}

#[test]
fn textline_with_one_percent_corrupt_lines_delivers_every_good_line_and_no_bad_one() {
    // The simulated device prints attune's optional `*HH` checksum, which the host verifies.
    corrupt("textline", "eda", None);
}

/// 20 unplugs: each replug is streaming again within 2 s, with exactly one `disconnect` gap per
/// stream per unplug in the recording; the median and worst reconnect times are printed.
#[test]
fn unplug_and_replug_resume_within_two_seconds_with_one_gap_each_time() {
    let cycles = 20;
    let sim = SimDevice::start(
        "bitalino",
        &[
            "--unplug-after",
            "2",
            "--replug-after",
            "0.5",
            "--cycles",
            "20",
        ],
    );
    let Served { d, data, _keep } = daemon_with_consent(
        "process,adapt,share_features,record",
        &serial_args(&sim.path, "bitalino"),
    );
    let mut s = d.subscribe_for("p01", &["state"]);
    let mut resumed: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut reconnecting = false;
    while resumed.len() < cycles && Instant::now() < deadline {
        let Some(line) = s.line() else { break };
        let v = json(&line);
        if v["stream"] != "eda" {
            continue;
        }
        match v["state"].as_str() {
            Some("reconnecting") => reconnecting = true,
            Some("streaming") if reconnecting => {
                resumed.push(unix_ms());
                reconnecting = false;
            }
            _ => {}
        }
    }
    let replugs: Vec<u64> = sim
        .events("replug")
        .iter()
        .map(|e| e["unix_ms"].as_u64().unwrap())
        .collect();
    assert!(
        resumed.len() >= cycles,
        "resumed {} times in 180 s",
        resumed.len()
    );
    let mut waits: Vec<Duration> = Vec::new();
    for (i, r) in resumed.iter().enumerate() {
        let replug = replugs
            .get(i)
            .copied()
            .expect("a replug before each resume");
        assert!(*r >= replug, "resumed before the replug");
        waits.push(Duration::from_millis(r - replug));
    }
    let (median, worst) = crate::util::median_max(&waits);
    eprintln!(
        "reconnect after replug over {} unplugs: median {median:?}, worst {worst:?}",
        waits.len()
    );
    assert!(
        worst <= Duration::from_secs(2),
        "worst reconnect {worst:?}: {waits:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
    let gaps = census(&recording_of(&data)).gaps;
    for stream in ["ecg", "eda"] {
        let n = gaps
            .get(&(stream.to_owned(), "disconnect".to_owned()))
            .copied()
            .unwrap_or(0);
        assert!(
            n >= cycles && n <= cycles + 1,
            "{stream}: {n} disconnect gaps for {cycles} unplugs: {gaps:?}"
        );
        let others: usize = gaps
            .iter()
            .filter(|((s, r), _)| s == stream && r != "disconnect")
            .map(|(_, n)| n)
            .sum();
        assert_eq!(others, 0, "{stream}: other gaps {gaps:?}");
    }
}

/// A port that does not exist is a `reconnecting` state naming it, and the daemon keeps running
/// its other sources.
#[test]
fn a_missing_port_is_a_state_naming_it_and_other_sources_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("two.toml");
    std::fs::write(
        &cfg,
        "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"serial\"\npath = \"/dev/attune-no-such-port\"\nprotocol = \"shimmer\"\n\n[[participant]]\nid = \"sim1\"\n[[participant.source]]\ntype = \"simulate\"\n",
    )
    .unwrap();
    let Served { d, data: _, _keep } =
        daemon_with_consent("process,adapt", &["--config", cfg.to_str().unwrap()]);
    let mut s = d.subscribe_for("*", &["state", "adaptation"]);
    let (ok, seen) = read_until(&mut s, 20, |v| {
        v["type"] == "state"
            && v["participant"] == "p01"
            && v["state"] == "reconnecting"
            && v["detail"].as_str().is_some_and(|d| {
                d.contains("/dev/attune-no-such-port") && d.contains("no such port")
            })
    });
    assert!(ok, "{seen:?}");
    let (ok, _) = read_until(&mut s, 20, |v| {
        v["type"] == "adaptation" && v["participant"] == "sim1"
    });
    assert!(ok, "the simulated participant goes on");
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// A device that speaks another protocol: a clear state naming the port, no samples invented.
#[test]
fn the_wrong_protocol_is_a_clear_state_and_no_samples() {
    let sim = SimDevice::start("textline", &[]);
    let Served { d, data: _, _keep } = daemon_with_consent(
        "process,adapt,share_features",
        &serial_args(&sim.path, "bitalino"),
    );
    let mut s = d.subscribe_for("p01", &["state", "features"]);
    let (ok, seen) = read_until(&mut s, 20, |v| {
        v["type"] == "state"
            && v["state"] == "reconnecting"
            && v["detail"]
                .as_str()
                .is_some_and(|d| d.contains(sim.path.to_str().unwrap()))
    });
    assert!(ok, "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|v| v["type"] == "features" && v["scl_us"].is_number()),
        "features from a device that never spoke the protocol: {seen:?}"
    );
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// A port another program holds is a `reconnecting` state saying it is busy (serialport's
/// exclusive lock), not "unplugged"; the first daemon keeps its device.
#[test]
fn a_busy_port_says_so_and_the_holder_keeps_streaming() {
    let sim = SimDevice::start("textline", &[]);
    let Served {
        d: first,
        data: _,
        _keep,
    } = daemon_with_consent(
        "process,adapt,share_features",
        &serial_args(&sim.path, "textline"),
    );
    let mut s1 = first.subscribe_for("p01", &["state", "features"]);
    let (ok, _) = read_until(&mut s1, 30, |v| {
        v["type"] == "features" && v["scl_us"].is_number()
    });
    assert!(ok, "the first daemon streams");
    let Served {
        d: second,
        data: _,
        _keep: _k2,
    } = daemon_with_consent("process", &serial_args(&sim.path, "textline"));
    let mut s2 = second.subscribe_for("p01", &["state"]);
    let (ok, seen) = read_until(&mut s2, 20, |v| {
        v["state"] == "reconnecting" && v["detail"].as_str().is_some_and(|d| d.contains("busy"))
    });
    assert!(ok, "{seen:?}");
    let (ok, _) = read_until(&mut s1, 10, |v| {
        v["type"] == "features" && v["scl_us"].is_number()
    });
    assert!(ok, "the first daemon still streams");
    let (code, err, _) = second.stop();
    assert_eq!(code, Some(0), "{err}");
}

/// Two devices for two participants from one config file: a BITalino streaming a recording's
/// person (`--from`: ECG synthesised from its beats) for p01 and a text-line board for p02.
#[test]
fn two_devices_for_two_participants_from_a_config_file() {
    let a = SimDevice::start(
        "bitalino",
        &["--from", "fixtures/sim-rest-stress.attune.ndjson"],
    );
    let b = SimDevice::start("textline", &[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("two.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"serial\"\npath = \"{}\"\nprotocol = \"bitalino\"\n\n[[participant]]\nid = \"p02\"\n[[participant.source]]\ntype = \"serial\"\npath = \"{}\"\nprotocol = \"textline\"\n",
            a.path.display(),
            b.path.display()
        ),
    )
    .unwrap();
    let Served { d, data, _keep } = daemon_with_consent(
        "process,adapt,share_features",
        &["--config", cfg.to_str().unwrap()],
    );
    let mut g: Vec<&str> = grant("p02", "all", "process,adapt,share_features").to_vec();
    let data_s = data.to_str().unwrap().to_owned();
    let sock = d.socket.to_str().unwrap().to_owned();
    g.extend(["--data-dir", &data_s, "--socket", &sock]);
    let (code, _, err) = run_attune(&g);
    assert_eq!(code, Some(0), "{err}");
    let mut s = d.subscribe_for("*", &["features"]);
    let mut heart_p01 = false;
    let mut eda_p02 = false;
    let (ok, seen) = read_until(&mut s, 60, |v| {
        heart_p01 |= v["participant"] == "p01"
            && v["heart_source"] == "ecg"
            && v["hr_bpm"].is_number()
            && v["scl_us"].is_number();
        eda_p02 |= v["participant"] == "p02" && v["scl_us"].is_number() && v["hr_bpm"].is_null();
        heart_p01 && eda_p02
    });
    assert!(
        ok,
        "p01 ECG heart rate and EDA: {heart_p01}, p02 EDA: {eda_p02}; last {:?}",
        seen.iter().rev().take(4).collect::<Vec<_>>()
    );
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn devices_lists_ports_or_says_there_are_none() {
    let (code, out, err) = run_attune(&["devices"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("PORT") || out.contains("No serial ports found"),
        "{out}"
    );
    assert!(out.contains("Pseudo-terminals"), "{out}");
    let (code, out, err) = run_attune(&["devices", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    for line in out.lines() {
        let v = json(line);
        // Serial ports, then BLE straps (or one line saying why Bluetooth is unavailable).
        let port = v["port"].is_string() && v["connection"].is_string();
        let ble =
            v["connection"] == "ble" && (v["address"].is_string() || v["unavailable"].is_string());
        assert!(port || ble, "{v}");
    }
}

#[test]
fn a_raw_capture_that_cannot_be_written_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("cap.ndjson");
    std::fs::write(&existing, "mine").unwrap();
    let missing = dir.path().join("no-such-dir").join("cap.ndjson");
    for (path, says) in [(&existing, "the file exists"), (&missing, "does not exist")] {
        let (code, _, err) = crate::util::run_attune_within(
            &[
                "run",
                "--serial",
                "/dev/attune-no-such-port",
                "--protocol",
                "bitalino",
                "--participant",
                "p01",
                "--record-raw",
                path.to_str().unwrap(),
                "--socket",
                dir.path().join("run").join("s.sock").to_str().unwrap(),
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
            ],
            20,
        );
        assert_ne!(code, Some(0));
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains(says) && err.contains(path.to_str().unwrap()),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "mine");
}
