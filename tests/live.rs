//! The live daemon (`attune run`): simulated participants on the session clock, a dyad, the
//! clock conditions of config/test-clocks.toml, shutdown with a stalled client, markers and
//! exercises, and bad configurations.

use crate::util::{LiveDaemon, Subscriber, json, median_max, root, run_attune_within};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::{Duration, Instant};

/// Held by the tests that measure features on ticks at high speed. At 40–200x a wall-clock
/// stall of the daemon is 40–200 times longer in session time, and the ticks do not wait for
/// data: with the 5-participant clock run and the 1 h run at 200x side by side on 2 cores,
/// features were missing on 44 % of the ticks from t = 304 s on (every participant, every
/// stream, the same ranges); alone, on none. So these runs take turns.
static SPEED_SENSITIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    SPEED_SENSITIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads `features` lines from `sub` until every participant in `ids` has a frame at or after
/// `until` (session time, s); returns each participant's frames in order.
fn features_until(sub: &mut Subscriber, ids: &[&str], until: f64) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> =
        ids.iter().map(|i| ((*i).to_owned(), Vec::new())).collect();
    let done = |by: &BTreeMap<String, Vec<Value>>| {
        by.values()
            .all(|v| v.last().is_some_and(|f| f["t"].as_f64().unwrap() >= until))
    };
    while !done(&by) {
        let line = sub
            .line()
            .expect("the daemon closed the connection before the run ended");
        let m = json(&line);
        if m["type"] != "features" {
            continue;
        }
        let p = m["participant"].as_str().unwrap().to_owned();
        if let Some(v) = by.get_mut(&p) {
            v.push(m);
        }
    }
    by
}

/// After a host stall ends, the burst of delivered data is processed within this much session
/// time (measured: features back 0.25–1 s after the stall's `to_t` at 20x).
const STALL_RECOVERY_S: f64 = 2.0;

/// The session-time ranges of the host stalls the daemon reported (`session.stalls` of
/// `attune status`), widened by the recovery; panics if the daemon kept fewer than it counted.
fn stalled_ranges(status: &Value) -> Vec<(f64, f64)> {
    let st = &status["session"]["stalls"];
    let recent = st["recent"].as_array().expect("session.stalls.recent");
    assert_eq!(
        st["count"].as_u64(),
        Some(recent.len() as u64),
        "more host stalls than the status keeps: {st}"
    );
    recent
        .iter()
        .map(|r| {
            (
                r["from_t"].as_f64().unwrap(),
                r["to_t"].as_f64().unwrap() + STALL_RECOVERY_S,
            )
        })
        .collect()
}

/// The fraction of `frames` at or after `from` (session time) and outside `stalled` where `key`
/// is a number, and how many ticks that counts.
fn present(frames: &[Value], key: &str, from: f64, stalled: &[(f64, f64)]) -> (f64, usize) {
    let ticks: Vec<&Value> = frames
        .iter()
        .filter(|f| {
            let t = f["t"].as_f64().unwrap();
            t >= from && !stalled.iter().any(|&(a, b)| (a..=b).contains(&t))
        })
        .collect();
    let n = ticks.iter().filter(|f| f[key].is_number()).count();
    #[allow(clippy::cast_precision_loss)]
    let frac = n as f64 / ticks.len().max(1) as f64;
    (frac, ticks.len())
}

/// The session-time ranges after `from` where `key` is missing, as `a–b` (for diagnosis: a host
/// stall shows as the same range for every participant and stream).
fn missing_ranges(frames: &[Value], key: &str, from: f64) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut open: Option<(f64, f64)> = None;
    for f in frames.iter().filter(|f| f["t"].as_f64().unwrap() >= from) {
        let t = f["t"].as_f64().unwrap();
        match (f[key].is_number(), open) {
            (false, None) => open = Some((t, t)),
            (false, Some((a, _))) => open = Some((a, t)),
            (true, Some((a, b))) => {
                out.push(format!("{a}–{b}"));
                open = None;
            }
            (true, None) => {}
        }
    }
    if let Some((a, b)) = open {
        out.push(format!("{a}–{b}"));
    }
    if out.is_empty() {
        "-".to_owned()
    } else {
        out.join(", ")
    }
}

/// The clock object of `participant`'s `stream` in a status object.
fn clock<'a>(status: &'a Value, participant: &str, stream: &str) -> &'a Value {
    let p = status["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == participant)
        .unwrap_or_else(|| panic!("{participant} not in status {status}"));
    let s = p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stream"] == stream)
        .unwrap_or_else(|| panic!("{participant} has no {stream} stream in {p}"));
    &s["clock"]
}

/// Polls `attune status --json` until the session time reaches `t` (20 s wall at most).
fn wait_session_time(d: &LiveDaemon, t: f64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.status();
        if s["session"]["t"].as_f64().is_some_and(|x| x >= t) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "session time still {} after 20 s, waiting for {t}",
            s["session"]["t"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `attune status --json` until it is an object with a session speed (20 s at most).
fn wait_status_object(d: &LiveDaemon) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.status();
        if s["session"]["speed"].is_number() {
            return s;
        }
        assert!(Instant::now() < deadline, "status still {s} after 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `text` to a config file in a new temp dir.
fn temp_config(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attune.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    (dir, path)
}

#[test]
fn live_dyad_publishes_both_participants_and_filters_by_participant() {
    let d = LiveDaemon::start(&["--simulate", "p01", "--simulate", "p02:9", "--speed", "40"]);
    let mut all = d.subscribe_for("*", &["adaptation"]);
    let mut only = d.subscribe_for("p01", &["adaptation"]);
    let mut seen = BTreeSet::new();
    for _ in 0..400 {
        let m = json(&all.line().expect("connection closed"));
        if m["type"] == "adaptation" {
            seen.insert(m["participant"].as_str().unwrap().to_owned());
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["p01".to_owned(), "p02".to_owned()]),
        "participants seen in adaptation lines for `*`"
    );
    let mut p01 = 0;
    for _ in 0..100 {
        let m = json(&only.line().expect("connection closed"));
        if m["type"] == "adaptation" {
            assert_eq!(m["participant"], "p01", "subscribed to p01 only, got {m}");
            p01 += 1;
        }
    }
    assert!(
        p01 >= 90,
        "only {p01} adaptation lines for p01 in 100 lines"
    );
    let s = wait_session_time(&d, 60.0);
    let ids: Vec<&str> = s["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p01", "p02"], "participants in status");
    for p in s["participants"].as_array().unwrap() {
        let streams: BTreeMap<&str, &Value> = p["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["stream"].as_str().unwrap(), s))
            .collect();
        assert_eq!(
            streams.keys().copied().collect::<Vec<_>>(),
            ["eda", "rr"],
            "streams of {}",
            p["id"]
        );
        for (k, st) in streams {
            assert_eq!(st["state"], "streaming", "{} {k}: {st}", p["id"]);
            for key in ["offset_s", "skew_ppm", "latency_s"] {
                assert!(
                    st["clock"][key].is_number(),
                    "{} {k} clock.{key}: {st}",
                    p["id"]
                );
            }
        }
    }
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "exit code after SIGTERM; stderr: {err}");
}

const CLOCK_IDS: [&str; 5] = [
    "eda-behind",
    "rr-late",
    "eda-batched",
    "drift",
    "two-devices",
];
const WARM_UP_S: f64 = 90.0;

/// Asserts ≥ 95 % presence of hr_bpm, rmssd_ms (RR) and scl_us (EDA) after the warm-up, on the
/// ticks outside the host stalls `status` reports, and prints the fractions. A host stall of `w`
/// s is `speed·w` s of session time without data (the ticks do not wait for it: see
/// `daemon::stalls`); on a loaded 2-core CI machine that was 15 s at once at 20x, and a third
/// of the ticks at 200x. Those ticks say nothing about the clock mapping, so they are left out,
/// but a run that was stalled for more than half its ticks fails: it measured nothing.
fn assert_features_on_ticks(label: &str, by: &BTreeMap<String, Vec<Value>>, status: &Value) {
    let stalled = stalled_ranges(status);
    eprintln!(
        "features-on-ticks [{label}] host stalls: {}",
        status["session"]["stalls"]
    );
    let mut failures = Vec::new();
    for (p, frames) in by {
        let (_, all) = present(frames, "t", WARM_UP_S, &[]);
        for key in ["hr_bpm", "rmssd_ms", "scl_us"] {
            let (frac, n) = present(frames, key, WARM_UP_S, &stalled);
            eprintln!(
                "features-on-ticks [{label}] {p:<12} {key:<9} {:6.2} % of {n} ticks ({} in stalls left out), missing at {}",
                frac * 100.0,
                all - n,
                missing_ranges(frames, key, WARM_UP_S)
            );
            if frac < 0.95 || n * 2 < all {
                failures.push(format!(
                    "{p} {key}: {:.2} % of {n} ticks outside stalls (of {all})",
                    frac * 100.0
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "features present on < 95 % of the ticks outside host stalls after {WARM_UP_S} s, or \
         stalls over half the run: {failures:?}"
    );
}

#[test]
fn live_clock_conditions_keep_features_on_ticks_and_are_measured() {
    // 640 s of session time (32 s wall at 20x): long enough for the 300 s skew window. The
    // ticks do not wait for data, so a host stall of w seconds is 20·w s of session time
    // without new samples; past the 10 s feature windows that shows as missing features (at
    // 40x with other builds on the machine: 89–91 % once, every participant and stream losing
    // the same ranges). Faster runs also read stalls as latency (eda-batched's latency_s was
    // 17.9 s once at 60x).
    let _turn = take_turn();
    let end = 640.0;
    let d = LiveDaemon::start(&["--config", "config/test-clocks.toml", "--speed", "20"]);
    let mut sub = d.subscribe_for("*", &["features", "state"]);
    let by = features_until(&mut sub, &CLOCK_IDS, end);
    // The status is refreshed every 0.5 s: this one holds every stall up to `end`.
    std::thread::sleep(Duration::from_millis(700));
    let s = d.status();
    assert_eq!(
        s["session"]["speed"], 20.0,
        "--speed overrides the config's 10"
    );
    assert_features_on_ticks("test-clocks 20x", &by, &s);
    let c = |p, k, key: &str| clock(&s, p, k)[key].as_f64().unwrap_or(f64::NAN);
    let behind = c("eda-behind", "eda", "offset_s");
    let late = c("rr-late", "rr", "offset_s");
    let batched = c("eda-batched", "eda", "latency_s");
    let skew_rr = c("drift", "rr", "skew_ppm");
    let skew_eda = c("drift", "eda", "skew_ppm");
    let drift_off = c("drift", "rr", "offset_s");
    eprintln!(
        "clocks at t = {}: eda-behind eda offset {behind:.3} s; rr-late rr offset {late:.3} s; \
         eda-batched eda latency {batched:.3} s; drift rr skew {skew_rr:.1} ppm, eda skew {skew_eda:.1} ppm, rr offset {drift_off:.3} s",
        s["session"]["t"]
    );
    assert!(
        (behind - 10.0).abs() <= 0.2,
        "eda-behind eda offset_s {behind}, expected 10 ± 0.2"
    );
    assert!(
        (late - 6.0).abs() <= 0.2,
        "rr-late rr offset_s {late}, expected 6 ± 0.2"
    );
    assert!(
        (9.0..=11.5).contains(&batched),
        "eda-batched eda latency_s {batched}, expected 9–11.5"
    );
    assert!(
        (skew_rr - 100.0).abs() <= 30.0,
        "drift rr skew_ppm {skew_rr}, expected 100 ± 30"
    );
    // Contrast: the same participants' other streams, without a condition, map near zero
    // offset and about 1 s of latency, so the figures above come from the conditions.
    let plain_offsets = [
        c("eda-behind", "rr", "offset_s"),
        c("rr-late", "eda", "offset_s"),
        c("eda-batched", "eda", "offset_s"),
    ];
    let plain_latency = c("eda-batched", "rr", "latency_s");
    eprintln!(
        "contrast: unconditioned offsets {plain_offsets:?} s, eda-batched rr latency {plain_latency:.3} s"
    );
    assert!(
        plain_offsets.iter().all(|x| x.abs() <= 0.2),
        "offsets of unconditioned streams {plain_offsets:?}, expected |x| <= 0.2"
    );
    assert!(
        plain_latency < 3.0,
        "eda-batched rr latency_s {plain_latency}, expected < 3 (not batched)"
    );
    // The clock is also carried by `state` messages once estimated.
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "exit code after SIGTERM; stderr: {err}");
    let rest = sub.all_lines();
    let with_clock = rest
        .iter()
        .map(|l| json(l))
        .filter(|m| m["type"] == "state" && m["clock"].is_object())
        .count();
    eprintln!("state messages with a clock after the run: {with_clock}");
}

#[test]
fn live_drift_of_100_ppm_over_an_hour_keeps_features_on_ticks() {
    let _turn = take_turn();
    let (_dir, cfg) = temp_config(
        "[[participant]]\nid = \"drift\"\n  [[participant.source]]\n  type = \"simulate\"\n  seed = 104\n  scenario = \"rest\"\n    [participant.source.rr]\n    offset_s = 2.0\n    drift_ppm = 100.0\n    [participant.source.eda]\n    drift_ppm = 100.0\n",
    );
    let t0 = Instant::now();
    let d = LiveDaemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--speed",
        "100",
        "--no-record",
    ]);
    let mut sub = d.subscribe_for("drift", &["features"]);
    let by = features_until(&mut sub, &["drift"], 3600.0);
    std::thread::sleep(Duration::from_millis(700));
    let s = d.status();
    eprintln!(
        "1 h at 100x took {:.1} s wall; drift rr skew {} ppm, eda skew {} ppm, rr offset {} s",
        t0.elapsed().as_secs_f64(),
        clock(&s, "drift", "rr")["skew_ppm"],
        clock(&s, "drift", "eda")["skew_ppm"],
        clock(&s, "drift", "rr")["offset_s"]
    );
    assert_features_on_ticks("drift 1 h 100x", &by, &s);
    let skew = clock(&s, "drift", "rr")["skew_ppm"].as_f64().unwrap();
    assert!(
        (skew - 100.0).abs() <= 30.0,
        "drift rr skew_ppm after 1 h {skew}, expected 100 ± 30"
    );
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "exit code after SIGTERM; stderr: {err}");
}

#[test]
fn live_batched_eda_does_not_flap_between_blocks() {
    let _turn = take_turn();
    let (_dir, cfg) = temp_config(
        "[[participant]]\nid = \"p01\"\n  [[participant.source]]\n  type = \"simulate\"\n    [participant.source.rr]\n    latency_s = 0.0\n    [participant.source.eda]\n    block_s = 30.0\n",
    );
    let d = LiveDaemon::start(&[
        "--config",
        cfg.to_str().unwrap(),
        "--speed",
        "40",
        "--no-record",
    ]);
    let mut sub = d.subscribe_for("p01", &["features", "state"]);
    let mut states: Vec<Value> = Vec::new();
    loop {
        let m = json(&sub.line().expect("connection closed"));
        if m["type"] == "state" {
            states.push(m);
        } else if m["type"] == "features" && m["t"].as_f64().unwrap() >= 300.0 {
            break;
        }
    }
    let eda: Vec<String> = states
        .iter()
        .filter(|m| m["stream"] == "eda")
        .map(|m| format!("{}@{}", m["state"], m["since"]))
        .collect();
    eprintln!(
        "eda state messages over 300 s with 30 s blocks: {} {eda:?}",
        eda.len()
    );
    assert!(
        eda.len() <= 4,
        "eda state flapped: {} state messages {eda:?}",
        eda.len()
    );
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "exit code after SIGTERM; stderr: {err}");
}

/// Starts `attune run --simulate p01` with a client that subscribes to everything and never
/// reads, stops it with `signal` 5 times; asserts exit 0 within `bound` each time and prints the
/// times.
fn shutdown_times(signal: Signal, bound: Duration) {
    let mut times = Vec::new();
    for _ in 0..5 {
        let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "60", "--no-record"]);
        let _stalled = d.subscribe_for("*", &["adaptation", "features", "state"]);
        // 60 s of session time: far more than the socket buffers hold.
        wait_session_time(&d, 60.0);
        let (code, err, elapsed) = d.stop_with(signal);
        assert_eq!(
            code,
            Some(0),
            "exit code after {signal:?} with a stalled client; stderr: {err}"
        );
        times.push(elapsed);
    }
    let (median, max) = median_max(&times);
    eprintln!(
        "shutdown on {signal:?} with a stalled client, 5 trials: median {median:?}, max {max:?} ({times:?})"
    );
    assert!(
        max < bound,
        "{signal:?} with a stalled client: exit took up to {max:?} (median {median:?}), bound {bound:?}"
    );
}

/// A looser bound than the 2 s target, so the tight tests below are the ones that fail first.
const DRAIN_BOUND: Duration = Duration::from_secs(3);

#[test]
fn live_sigterm_with_a_stalled_client_exits_0_within_the_drain_bound() {
    shutdown_times(Signal::SIGTERM, DRAIN_BOUND);
}

#[test]
fn live_sigint_with_a_stalled_client_exits_0_within_the_drain_bound() {
    shutdown_times(Signal::SIGINT, DRAIN_BOUND);
}

#[test]
fn live_sigterm_with_a_stalled_client_exits_0_within_2_s() {
    shutdown_times(Signal::SIGTERM, Duration::from_secs(2));
}

#[test]
fn live_sigint_with_a_stalled_client_exits_0_within_2_s() {
    shutdown_times(Signal::SIGINT, Duration::from_secs(2));
}

#[test]
fn live_mark_and_exercise_messages() {
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "20", "--no-record"]);
    let (code, out, err) = d.cli(&[
        "mark",
        "--participant",
        "p01",
        "LABEL",
        "--data",
        r#"{"n":1}"#,
    ]);
    assert_eq!(code, Some(0), "attune mark p01: stderr {err}");
    assert!(
        out.starts_with("marked p01 at t = "),
        "attune mark printed {out:?}"
    );
    let (code, _, err) = d.cli(&["mark", "--participant", "nobody", "LABEL"]);
    assert_eq!(
        code,
        Some(1),
        "attune mark for an unknown participant: stderr {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one stderr line, got {err:?}"
    );
    assert!(
        err.contains("nobody"),
        "the line names the participant: {err:?}"
    );

    let mut sub = d.subscribe_for("p01", &["state"]);
    writeln!(
        sub.writer,
        r#"{{"type":"exercise","participant":"p01","event":"start","exercise":"breathing-2","target":"calm"}}"#
    )
    .unwrap();
    writeln!(
        sub.writer,
        r#"{{"type":"exercise","participant":"nobody","event":"start"}}"#
    )
    .unwrap();
    writeln!(
        sub.writer,
        r#"{{"type":"exercise","participant":"p01","event":"sideways"}}"#
    )
    .unwrap();
    writeln!(
        sub.writer,
        r#"{{"type":"exercise","participant":"p01","event":"start","target":{{"low":0.7,"high":0.2}}}}"#
    )
    .unwrap();
    let mut errors = Vec::new();
    while errors.len() < 3 {
        let m = json(&sub.line().expect("connection closed"));
        if m["type"] == "error" {
            errors.push(m);
        }
    }
    // Replies come in order: the valid exercise produced none, so the first error is for "nobody".
    assert_eq!(
        errors[0]["code"], "unknown_participant",
        "first error {}",
        errors[0]
    );
    assert_eq!(
        errors[1]["code"], "bad_request",
        "second error {}",
        errors[1]
    );
    // Bounds outside 0 <= low < high <= 1: refused, with the rule in the message.
    assert_eq!(
        errors[2]["code"], "bad_request",
        "third error {}",
        errors[2]
    );
    assert!(
        errors[2]["message"]
            .as_str()
            .is_some_and(|m| m.contains("0 <= low < high <= 1")),
        "{}",
        errors[2]
    );

    // Human oversight: `attune override` pins the decision, `auto` releases it; feedback moves
    // the participant's target band, and the decisions show both.
    let (code, out, err) = d.cli(&["override", "--participant", "p01", "ease_off"]);
    assert_eq!(code, Some(0), "attune override: stderr {err}");
    assert!(out.contains("pinned to ease_off"), "{out:?}");
    let (code, _, err) = d.cli(&["override", "--participant", "nobody", "hold"]);
    assert_eq!(code, Some(1), "override for an unknown participant: {err}");
    let mut ad = d.subscribe_for("p01", &["adaptation"]);
    writeln!(
        ad.writer,
        r#"{{"type":"feedback","participant":"p01","rating":"too_intense"}}"#
    )
    .unwrap();
    let (mut pinned, mut shifted) = (false, false);
    for _ in 0..400 {
        let m = json(&ad.line().expect("connection closed"));
        if m["type"] != "adaptation" {
            continue;
        }
        pinned |= m["reason"]["rule"] == "override" && m["action"] == "ease_off";
        shifted |= m["reason"]["target"]["feedback_shift_z"] == -0.25;
        if pinned && shifted {
            break;
        }
    }
    assert!(
        pinned && shifted,
        "pinned {pinned}, feedback shift seen {shifted}"
    );
    let (code, out, err) = d.cli(&["override", "--participant", "p01", "auto"]);
    assert_eq!(code, Some(0), "attune override auto: stderr {err}");
    assert!(out.contains("automatic again"), "{out:?}");
    let mut released = false;
    for _ in 0..400 {
        let m = json(&ad.line().expect("connection closed"));
        if m["type"] == "adaptation" && m["reason"]["rule"] != "override" {
            released = true;
            break;
        }
    }
    assert!(released, "decisions stayed pinned after auto");
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "exit code after SIGTERM; stderr: {err}");
}

#[test]
fn live_mark_and_status_without_a_daemon_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("attune.sock");
    let data = dir.path().join("data");
    for args in [
        vec!["mark", "--participant", "p01", "LABEL"],
        vec!["status"],
        vec!["status", "--json"],
    ] {
        let mut all = args.clone();
        all.extend([
            "--socket",
            socket.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let (code, out, err) = run_attune_within(&all, 20);
        assert_eq!(
            code,
            Some(1),
            "attune {args:?} without a daemon: stdout {out:?} stderr {err:?}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "attune {args:?}: one stderr line, got {err:?}"
        );
        assert!(
            err.contains("no attune daemon is running"),
            "attune {args:?}: {err:?}"
        );
    }
}

#[test]
fn live_bad_configs_fail_with_one_line_naming_file_line_and_key() {
    let base = "[[participant]]\nid = \"p01\"\n  [[participant.source]]\n  type = \"simulate\"\n";
    let cases = [
        (
            format!("[daemon]\nspeed = 10.0\nbogus = 1\n\n{base}"),
            "line 3",
            "bogus",
        ),
        (
            format!("[daemon]\nspeed = \"fast\"\n\n{base}"),
            "line 2",
            "speed",
        ),
        (format!("{base}\n{base}"), "line 7", "id"),
    ];
    for (text, line, key) in cases {
        let (dir, cfg) = temp_config(&text);
        let cfg = cfg.to_str().unwrap();
        let socket = dir.path().join("s.sock");
        let (code, _, err) = run_attune_within(
            &[
                "run",
                "--config",
                cfg,
                "--socket",
                socket.to_str().unwrap(),
                "--data-dir",
                dir.path().join("d").to_str().unwrap(),
            ],
            20,
        );
        assert!(
            matches!(code, Some(1 | 2)),
            "exit code {code:?} for a bad config; stderr {err:?}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one stderr line, got {err:?}"
        );
        for part in [cfg, line, key] {
            assert!(err.contains(part), "stderr {err:?} should name {part:?}");
        }
    }
    let (code, _, err) = run_attune_within(&["run"], 20);
    assert_eq!(code, Some(1), "attune run with nothing to run: {err:?}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one stderr line, got {err:?}"
    );
    assert!(
        err.contains("--simulate") && err.contains("--config"),
        "{err:?}"
    );
    let both = root().join("config/one-participant.toml");
    let (code, _, err) = run_attune_within(
        &[
            "run",
            "--config",
            both.to_str().unwrap(),
            "--simulate",
            "p01",
        ],
        20,
    );
    assert_eq!(code, Some(1), "attune run --config --simulate: {err:?}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one stderr line, got {err:?}"
    );
    assert!(err.contains("not both"), "{err:?}");
}

#[test]
fn live_every_example_config_starts_and_stops_cleanly() {
    let mut names: Vec<_> = std::fs::read_dir(root().join("config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "example configs: {names:?}");
    for path in names {
        let d = LiveDaemon::start(&["--config", path.to_str().unwrap(), "--no-record"]);
        // Polled: until the session loop's first update, status is `null` (see
        // `live_status_before_the_first_tick_describes_the_session`).
        let speed = wait_status_object(&d)["session"]["speed"].as_f64().unwrap();
        // About 1 s of wall time at the example's own speed.
        let s = wait_session_time(&d, speed);
        let (code, err, elapsed) = d.stop();
        eprintln!(
            "{}: ran to t = {} at {speed}x, stopped in {elapsed:?}",
            path.display(),
            s["session"]["t"]
        );
        assert_eq!(
            code,
            Some(0),
            "{} exit code after SIGTERM; stderr: {err}",
            path.display()
        );
    }
}

#[test]
fn live_status_before_the_first_tick_describes_the_session() {
    let d = LiveDaemon::start(&[
        "--simulate",
        "p01",
        "--wait-subscribers",
        "1",
        "--no-record",
    ]);
    let s = d.status();
    assert!(
        s["session"]["live"] == true && s["session"]["speed"] == 1.0,
        "status of a live session held for its subscriber: {s}"
    );
    let ids: Vec<&Value> = s["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| &p["id"])
        .collect();
    assert_eq!(ids, ["p01"], "participants in status {s}");
}

#[test]
fn live_state_since_is_kept_when_only_the_clock_moves() {
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "40", "--no-record"]);
    let mut sub = d.subscribe_for("p01", &["features", "state"]);
    let mut last: BTreeMap<String, (Value, Value)> = BTreeMap::new();
    let mut moved = Vec::new();
    loop {
        let m = json(&sub.line().expect("connection closed"));
        if m["type"] == "features" && m["t"].as_f64().unwrap() >= 120.0 {
            break;
        }
        if m["type"] != "state" {
            continue;
        }
        let stream = m["stream"].as_str().unwrap().to_owned();
        let now = (m["state"].clone(), m["since"].clone());
        if let Some(prev) = last.get(&stream)
            && prev.0 == now.0
            && prev.1 != now.1
        {
            moved.push(format!(
                "{stream} {} since {} then {}",
                now.0, prev.1, now.1
            ));
        }
        last.insert(stream, now);
    }
    eprintln!("state messages repeating a state with a new since: {moved:?}");
    assert!(
        moved.is_empty(),
        "`since` moved without a state change: {moved:?}"
    );
}

#[test]
fn live_a_host_stall_is_reported_in_status_with_its_session_times() {
    let d = LiveDaemon::start(&["--simulate", "p01", "--speed", "20", "--no-record"]);
    let before = wait_session_time(&d, 30.0);
    assert_eq!(before["session"]["stalls"]["count"], 0, "{before}");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(d.child.id()).unwrap());
    nix::sys::signal::kill(pid, Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    nix::sys::signal::kill(pid, Signal::SIGCONT).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let s = d.status();
    let t_now = s["session"]["t"].as_f64().unwrap();
    let st = &s["session"]["stalls"];
    assert!(st["count"].as_u64().unwrap() >= 1, "{st}");
    let max = st["max_s"].as_f64().unwrap();
    assert!(
        (0.5..5.0).contains(&max),
        "the longest stall {max} s, stopped for 0.6 s: {st}"
    );
    // The stopped 0.6 s are about 12 s of session time at 20x, ending near the resume.
    let longest = st["recent"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["late_s"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["late_s"].as_f64().unwrap())
        })
        .unwrap();
    let (from, to) = (
        longest["from_t"].as_f64().unwrap(),
        longest["to_t"].as_f64().unwrap(),
    );
    assert!(from >= 30.0 && to - from >= 9.0, "{longest}");
    assert!(
        to <= t_now,
        "stall ends at {to}, after the session time {t_now}"
    );
    let (code, err, _) = d.stop();
    assert_eq!(code, Some(0), "exit code after SIGTERM; stderr: {err}");
}
