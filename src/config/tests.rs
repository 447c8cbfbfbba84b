//! Tests: every file in `config/` parses, `attune.toml` names every key, one test per error
//! class (exact line and key), the command-line builders and the reload plan.

use super::raw::{RawConfig, RawDaemon, RawParticipant, RawRecorder, RawReplay, RawScenario};
use super::raw::{RawSimulate, RawSource, RawStream, RawTiming};
use super::*;
use std::collections::BTreeSet;
use toml::Spanned;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("x.toml"))
}

/// The error of `text`, checked for its line and key; returns its message line.
fn error(text: &str, line: Option<usize>, key: &str) -> String {
    let e = match parse(text) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    };
    let s = e.to_string();
    assert_eq!(e.line(), line, "{s}");
    assert_eq!(e.key(), key, "{s}");
    assert!(!s.contains('\n'), "{s}");
    s
}

const ONE: &str = "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"simulate\"\n";

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

#[test]
fn every_config_file_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(config_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!c.participants.is_empty());
            n += 1;
        }
    }
    assert!(n >= 4, "only {n} config files");
}

#[test]
fn default_file_is_the_defaults() {
    let c = Config::load(&config_dir().join("attune.toml")).unwrap();
    let spec = live_spec_with_defaults(ParticipantId::new("p01").unwrap(), None);
    assert_eq!(
        c.participants[0].sources,
        vec![SourceConfig::Simulate(spec)]
    );
    assert_eq!(c.recorder, RecorderConfig::default());
    assert_eq!(
        (c.queue.get(), c.input_queue.get()),
        (DEFAULT_QUEUE, DEFAULT_INPUT_QUEUE)
    );
    assert_eq!((c.socket, c.data_dir, c.speed), (None, None, 1.0));
    // The shortest file means the same.
    let one = Config::load(&config_dir().join("one-participant.toml")).unwrap();
    assert_eq!(one.participants, c.participants);
}

fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(0..0, v)
}

fn timing() -> Spanned<RawStream> {
    sp(RawStream::On(RawTiming {
        offset_s: Some(sp(0.0)),
        drift_ppm: Some(sp(0.0)),
        latency_s: Some(sp(0.0)),
        jitter_s: Some(sp(0.0)),
        block_s: Some(sp(1.0)),
    }))
}

/// A raw configuration with every key set, both source types.
fn full_raw() -> RawConfig {
    RawConfig {
        daemon: RawDaemon {
            socket: Some(sp("/s".to_owned())),
            data_dir: Some(sp("/d".to_owned())),
            queue: Some(sp(1)),
            input_queue: Some(sp(1)),
            speed: Some(sp(1.0)),
        },
        recorder: RawRecorder {
            enabled: Some(true),
            flush_every_ms: Some(sp(100)),
        },
        participant: vec![sp(RawParticipant {
            id: sp("p01".to_owned()),
            source: vec![
                sp(RawSource::Simulate(Box::new(RawSimulate {
                    seed: Some(1),
                    scenario: Some(RawScenario::RestThenStress),
                    stress_onset_s: Some(sp(1.0)),
                    eda_rate_hz: Some(sp(1.0)),
                    rr: Some(timing()),
                    eda: Some(timing()),
                }))),
                sp(RawSource::Replay(RawReplay {
                    file: sp("f".to_owned()),
                })),
            ],
        })],
        // The transports' keys are read (and checked against config/attune.toml) by their
        // own modules.
        ws: None,
        osc: None,
        mqtt: None,
        lsl: None,
    }
}

/// Dotted key paths of a TOML value, array indices dropped.
fn key_paths(v: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                key_paths(v, &p, out);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|e| key_paths(e, prefix, out)),
        _ => {}
    }
}

/// `attune.toml` with its commented-out settings (`#key`, `#[table]`) enabled.
fn default_file_uncommented() -> String {
    let text = std::fs::read_to_string(config_dir().join("attune.toml")).unwrap();
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            match t.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c == '[' || c.is_ascii_lowercase()) => {
                    rest.to_owned()
                }
                _ => l.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn default_file_names_every_key() {
    let mut known = BTreeSet::new();
    key_paths(&toml::Value::try_from(full_raw()).unwrap(), "", &mut known);
    let text = default_file_uncommented();
    let mut written = BTreeSet::new();
    key_paths(&toml::from_str(&text).unwrap(), "", &mut written);
    let missing: Vec<_> = known.difference(&written).collect();
    assert!(missing.is_empty(), "attune.toml lacks {missing:?}");
    // With everything enabled it is still valid (the replay source is only checked at start).
    let c = Config::parse(&text, &config_dir().join("attune.toml")).unwrap();
    assert_eq!(c.participants[0].sources.len(), 2);
    assert_eq!(
        c.data_dir,
        Some(PathBuf::from("/home/me/.local/share/attune"))
    );
}

#[test]
fn raw_serialises_back_to_a_valid_file() {
    let text = toml::to_string(&full_raw()).unwrap();
    let c = parse(&text).unwrap();
    assert_eq!(
        c.participants[0].sources[1],
        SourceConfig::Replay { file: "f".into() }
    );
}

#[test]
fn values_reach_the_live_spec() {
    let c = Config::load(&config_dir().join("test-clocks.toml")).unwrap();
    assert_eq!(c.speed, 10.0);
    let spec = |i: usize, j: usize| match &c.participants[i].sources[j] {
        SourceConfig::Simulate(s) => s.clone(),
        SourceConfig::Replay { .. } | SourceConfig::Serial(_) | SourceConfig::Ble(_) => {
            panic!("not simulate")
        }
    };
    let behind = spec(0, 0);
    assert_eq!(behind.participant.as_str(), "eda-behind");
    assert_eq!(behind.seed, 101);
    let eda = behind.eda.unwrap();
    assert_eq!(eda.offset_s, -10.0);
    assert_eq!(
        eda.block_s, DEFAULT_EDA_TIMING.block_s,
        "unset keys keep their defaults"
    );
    assert_eq!(behind.rr, Some(DEFAULT_RR_TIMING));
    assert_eq!(spec(1, 0).rr.unwrap().latency_s, 6.0);
    assert_eq!(spec(2, 0).eda.unwrap().block_s, 10.0);
    assert_eq!(spec(3, 0).rr.unwrap().drift_ppm, 100.0);
    let (strap, band) = (spec(4, 0), spec(4, 1));
    assert!(strap.eda.is_none() && band.rr.is_none());
    let ids: Vec<String> = c.participants[4]
        .sources_with_ids()
        .map(|(id, _)| id.to_string())
        .collect();
    assert_eq!(ids, ["two-devices/simulate#1", "two-devices/simulate#2"]);
}

#[test]
fn optional_keys_and_switches() {
    let c = parse(&format!("{ONE}seed = 5\nscenario = \"rest\"\nrr = true\n")).unwrap();
    let SourceConfig::Simulate(s) = &c.participants[0].sources[0] else {
        panic!()
    };
    assert_eq!(
        (s.seed, s.scenario, s.rr),
        (5, Scenario::Rest, Some(DEFAULT_RR_TIMING))
    );
    let c = parse(ONE).unwrap();
    let SourceConfig::Simulate(s) = &c.participants[0].sources[0] else {
        panic!()
    };
    assert_eq!(s.seed, LiveSpec::default_seed(&c.participants[0].id));
}

#[test]
fn relative_paths_resolve_against_the_file() {
    let text = "[daemon]\ndata_dir = \"data\"\n[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"replay\"\nfile = \"../r.ndjson\"\n";
    let c = Config::parse(text, Path::new("/etc/attune/a.toml")).unwrap();
    assert_eq!(c.data_dir, Some(PathBuf::from("/etc/attune/data")));
    assert_eq!(
        c.participants[0].sources[0],
        SourceConfig::Replay {
            file: "/etc/attune/../r.ndjson".into()
        }
    );
    let s = error(
        &text.replace("\"data\"", "\"~/data\""),
        Some(2),
        "daemon.data_dir",
    );
    assert!(s.contains("`~` is not expanded"), "{s}");
}

#[test]
fn syntax_error_has_line_and_column() {
    let s = error("[daemon]\nqueue = = 3\n", Some(2), "");
    assert!(s.starts_with("x.toml: line 2, column "), "{s}");
}

#[test]
fn unknown_key() {
    let s = error("[daemon]\n\nspede = 2\n", Some(3), "daemon.spede");
    assert!(
        s.starts_with(
            "x.toml: line 3, column 1: daemon.spede: unknown field `spede`, expected one of"
        ),
        "{s}"
    );
    // Inside a source (read through the lifted tag) and inside a stream table.
    let key = "participant[0].source[0].sede";
    let s = error(&format!("{ONE}\nsede = 2\n"), Some(6), key);
    assert!(s.contains("unknown field `sede`"), "{s}");
    let key = "participant[0].source[0].rr.offset";
    error(
        &format!("{ONE}[participant.source.rr]\noffset = 2\n"),
        Some(6),
        key,
    );
}

#[test]
fn wrong_type() {
    let s = error("[daemon]\nqueue = \"big\"\n", Some(2), "daemon.queue");
    assert!(s.contains("invalid type: string \"big\""), "{s}");
    error(
        &format!("{ONE}seed = \"x\"\n"),
        Some(5),
        "participant[0].source[0].seed",
    );
    let key = "participant[0].source[0].rr.block_s";
    error(
        &format!("{ONE}[participant.source.rr]\nblock_s = \"1\"\n"),
        Some(6),
        key,
    );
    error(
        &format!("{ONE}eda = 3\n"),
        Some(5),
        "participant[0].source[0].eda",
    );
    let s = error(
        &format!("{ONE}scenario = \"panic\"\n"),
        Some(5),
        "participant[0].source[0].scenario",
    );
    assert!(s.contains("unknown variant `panic`"), "{s}");
}

#[test]
fn missing_required_key() {
    let s = error(
        "[[participant]]\n[[participant.source]]\ntype = \"simulate\"\n",
        Some(1),
        "participant[0]",
    );
    assert!(s.contains("missing field `id`"), "{s}");
    let s = error(
        "[[participant]]\nid = \"p01\"\n\n[[participant.source]]\nseed = 1\n",
        Some(4),
        "participant[0].source[0]",
    );
    assert!(s.contains("missing key `type`"), "{s}");
    let s = error(
        "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"replay\"\n",
        Some(3),
        "participant[0].source[0]",
    );
    assert!(s.contains("missing field `file`"), "{s}");
}

#[test]
fn unknown_source_type() {
    let s = error(
        &ONE.replace("simulate", "bluetooth"),
        Some(4),
        "participant[0].source[0].type",
    );
    assert!(
        s.contains("unknown variant `bluetooth`, expected one of `simulate`, `replay`, `serial`"),
        "{s}"
    );
    error(
        &ONE.replace("\"simulate\"", "1"),
        Some(4),
        "participant[0].source[0].type",
    );
}

#[test]
fn duplicate_participant() {
    let text = format!("{ONE}\n{ONE}");
    let s = error(&text, Some(7), "participant[1].id");
    assert_eq!(
        s,
        "x.toml: line 7: participant[1].id: duplicate participant \"p01\" (first at line 2)"
    );
}

#[test]
fn invalid_participant_id() {
    let s = error(&ONE.replace("p01", "../etc"), Some(2), "participant[0].id");
    assert!(s.contains("participant id \"../etc\" is invalid"), "{s}");
}

#[test]
fn participant_without_source() {
    let s = error(
        &format!("{ONE}[[participant]]\nid = \"p02\"\n"),
        Some(5),
        "participant[1].source",
    );
    assert!(s.contains("participant \"p02\" has no source"), "{s}");
}

#[test]
fn two_sources_feeding_one_stream() {
    let text = format!("{ONE}eda = false\n[[participant.source]]\ntype = \"simulate\"\n");
    let s = error(&text, Some(6), "participant[0].source[1]");
    assert!(
        s.contains("feeds rr, as participant[0].source[0] (line 3) does"),
        "{s}"
    );
    // Split by kind it is fine; a replay source is checked when its file is opened.
    parse(&format!(
        "{ONE}eda = false\n[[participant.source]]\ntype = \"simulate\"\nrr = false\n"
    ))
    .unwrap();
    parse(&format!(
        "{ONE}[[participant.source]]\ntype = \"replay\"\nfile = \"r\"\n"
    ))
    .unwrap();
    let s = error(
        &format!("{ONE}rr = false\neda = false\n"),
        Some(3),
        "participant[0].source[0]",
    );
    assert!(s.contains("feeds no stream"), "{s}");
}

#[test]
fn numbers_out_of_range() {
    let cases: [(&str, &str, usize, &str); 12] = [
        (
            "[daemon]\nqueue = 0\n",
            "daemon.queue",
            2,
            "0 is out of range 1..=1000000",
        ),
        (
            "[daemon]\ninput_queue = 1000001\n",
            "daemon.input_queue",
            2,
            "1000001 is out of range",
        ),
        (
            "[daemon]\nspeed = 0.001\n",
            "daemon.speed",
            2,
            "0.001 is out of range [0.01, 1000000]",
        ),
        (
            "[daemon]\nspeed = nan\n",
            "daemon.speed",
            2,
            "NaN is out of range",
        ),
        (
            "[recorder]\nflush_every_ms = 5\n",
            "recorder.flush_every_ms",
            2,
            "5 is out of range 10..=1000",
        ),
        (
            "eda_rate_hz = 0.0\n",
            "eda_rate_hz",
            5,
            "0 is out of range (0, 1000] Hz",
        ),
        (
            "stress_onset_s = -1.0\n",
            "stress_onset_s",
            5,
            "out of range [0, 1000000] s",
        ),
        (
            "[participant.source.rr]\noffset_s = 1e7\n",
            "rr.offset_s",
            6,
            "out of range [-1000000, 1000000] s",
        ),
        (
            "[participant.source.eda]\ndrift_ppm = -1001\n",
            "eda.drift_ppm",
            6,
            "-1001 is out of range [-1000, 1000] ppm",
        ),
        (
            "[participant.source.rr]\nlatency_s = -0.1\n",
            "rr.latency_s",
            6,
            "-0.1 is out of range [0, 1000000] s",
        ),
        (
            "[participant.source.rr]\njitter_s = inf\n",
            "rr.jitter_s",
            6,
            "inf is out of range",
        ),
        (
            "[participant.source.eda]\n\nblock_s = 0\n",
            "eda.block_s",
            7,
            "0 is out of range (0, 60] s",
        ),
    ];
    for (snippet, key, line, message) in cases {
        let (text, key) = if snippet.starts_with('[') && !snippet.starts_with("[participant") {
            (format!("{snippet}{ONE}"), key.to_owned())
        } else {
            (
                format!("{ONE}{snippet}"),
                format!("participant[0].source[0].{key}"),
            )
        };
        let s = error(&text, Some(line), &key);
        assert!(s.contains(message), "{s}");
    }
    let s = error("[daemon]\nblock_s = 61\n", Some(2), "daemon.block_s");
    assert!(s.contains("unknown field"), "{s}");
    let s = error(
        &format!("{ONE}[participant.source.eda]\nblock_s = 61\n"),
        Some(6),
        "participant[0].source[0].eda.block_s",
    );
    assert!(s.contains("61 is out of range (0, 60] s"), "{s}");
}

#[test]
fn stress_onset_needs_its_scenario() {
    let text = format!("{ONE}scenario = \"rest\"\nstress_onset_s = 10\n");
    let s = error(&text, Some(6), "participant[0].source[0].stress_onset_s");
    assert!(
        s.contains("applies only to scenario \"rest-then-stress\""),
        "{s}"
    );
}

#[test]
fn no_participant() {
    let s = error("[daemon]\nqueue = 8\n", None, "participant");
    assert!(s.starts_with("x.toml: participant: no participant"), "{s}");
    error("", None, "participant");
}

#[test]
fn speed_is_free_without_hardware() {
    // The hardware check (`SourceConfig::is_hardware`) has no source to refuse yet.
    let c = parse(&format!("[daemon]\nspeed = 50\n{ONE}")).unwrap();
    assert_eq!(c.speed, 50.0);
    assert!(
        c.participants
            .iter()
            .flat_map(|p| &p.sources)
            .all(|s| !s.is_hardware())
    );
}

#[test]
fn unreadable_file() {
    let e = Config::load(Path::new("/nonexistent/attune.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/attune.toml: cannot read the configuration: "),
        "{e}"
    );
}

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

#[test]
fn for_simulated_builds_the_cli_shortcut() {
    let c = Config::for_simulated(
        &[(pid("p01"), None), (pid("p02"), Some(9))],
        Scenario::Rest,
        10.0,
    )
    .unwrap();
    assert_eq!(c.speed, 10.0);
    let specs: Vec<&LiveSpec> = c
        .participants
        .iter()
        .map(|p| match &p.sources[..] {
            [SourceConfig::Simulate(s)] => s,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(specs[0].seed, LiveSpec::default_seed(&pid("p01")));
    assert_eq!((specs[1].seed, specs[1].scenario), (9, Scenario::Rest));
    // The same as the file spelling it out.
    let file = "[daemon]\nspeed = 10\n[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"simulate\"\nscenario = \"rest\"\n[[participant]]\nid = \"p02\"\n[[participant.source]]\ntype = \"simulate\"\nscenario = \"rest\"\nseed = 9\n";
    assert_eq!(parse(file).unwrap(), c);
    let e = Config::for_simulated(
        &[(pid("p01"), None), (pid("p01"), Some(2))],
        Scenario::Rest,
        1.0,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: --simulate: participant \"p01\" given twice"
    );
    let e = Config::for_simulated(&[(pid("p01"), None)], Scenario::Rest, 0.0).unwrap_err();
    assert_eq!(e.key(), "--speed");
    assert!(Config::for_simulated(&[], Scenario::Rest, 1.0).is_err());
}

#[test]
fn for_replay_builds_the_cli_shortcut() {
    let c = Config::for_replay(&[(pid("p01"), PathBuf::from("a.ndjson"))], 1.0).unwrap();
    assert_eq!(
        c.participants[0].sources,
        vec![SourceConfig::Replay {
            file: "a.ndjson".into()
        }]
    );
    assert_eq!(c.recorder, RecorderConfig::default());
}

#[test]
fn inline_tables_read_the_same() {
    let inline = "participant = [{ id = \"p01\", source = [{ type = \"simulate\", rr = { latency_s = 6 }, eda = true }] }]\n";
    let long = format!("{ONE}[participant.source.rr]\nlatency_s = 6.0\n");
    assert_eq!(parse(inline).unwrap(), parse(&long).unwrap());
    let bad = inline.replace("latency_s", "latncy_s");
    let s = error(&bad, Some(1), "participant[0].source[0].rr.latncy_s");
    assert!(s.contains("unknown field `latncy_s`"), "{s}");
}

const SERIAL: &str = "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"serial\"\npath = \"/dev/rfcomm0\"\nprotocol = \"bitalino\"\n";

#[test]
fn a_serial_source_gets_its_protocol_defaults_and_is_hardware() {
    let c = parse(SERIAL).unwrap();
    let SourceConfig::Serial(s) = &c.participants[0].sources[0] else {
        panic!("not serial");
    };
    assert_eq!(s.path, Path::new("/dev/rfcomm0"));
    assert_eq!(s.settings.protocol(), crate::protocol::ProtocolId::Bitalino);
    assert_eq!(s.baud, 115_200);
    assert_eq!(s.silence_s, crate::sources::serial::DEFAULT_SILENCE_S);
    assert!(s.record_raw.is_none());
    assert!(c.participants[0].sources[0].is_hardware());
    let relative = SERIAL.replace("/dev/rfcomm0", "tty-link")
        + "record_raw = \"cap.ndjson\"\nbaud = 9600\nsilence_s = 5\n";
    let c = Config::parse(&relative, Path::new("/etc/attune/x.toml")).unwrap();
    let SourceConfig::Serial(s) = &c.participants[0].sources[0] else {
        panic!("not serial");
    };
    assert_eq!(s.path, Path::new("/etc/attune/tty-link"));
    assert_eq!(
        s.record_raw.as_deref(),
        Some(Path::new("/etc/attune/cap.ndjson"))
    );
    assert_eq!((s.baud, s.silence_s), (9600, 5.0));
}

#[test]
fn serial_source_errors_name_their_line_and_key() {
    let s = error(
        &SERIAL.replace("bitalino", "bitalinno"),
        Some(6),
        "participant[0].source[0].protocol",
    );
    assert!(s.contains("unknown protocol \"bitalinno\""), "{s}");
    error(
        &format!("{SERIAL}baud = 12\n"),
        Some(7),
        "participant[0].source[0].baud",
    );
    error(
        &format!("{SERIAL}silence_s = 0\n"),
        Some(7),
        "participant[0].source[0].silence_s",
    );
    error(
        &format!("{SERIAL}colour = \"red\"\n"),
        Some(7),
        "participant[0].source[0].colour",
    );
    // A device cannot be sped up.
    let s = error(
        &format!("[daemon]\nspeed = 10\n{SERIAL}"),
        Some(2),
        "daemon.speed",
    );
    assert!(s.contains("p01/serial#1"), "{s}");
}

#[test]
fn a_serial_device_and_a_simulator_feeding_the_same_stream_are_refused() {
    let text = format!("{SERIAL}[[participant.source]]\ntype = \"simulate\"\nrr = false\n");
    let s = error(&text, Some(7), "participant[0].source[1]");
    assert!(s.contains("feeds eda"), "{s}");
}

#[test]
fn two_serial_sources_on_one_port_or_one_capture_file_are_refused() {
    let second = |extra: &str| {
        format!(
            "{SERIAL}record_raw = \"a.ndjson\"\n[[participant]]\nid = \"p02\"\n[[participant.source]]\ntype = \"serial\"\nprotocol = \"textline\"\n{extra}"
        )
    };
    let s = error(
        &second("path = \"/dev/rfcomm0\"\n"),
        Some(10),
        "participant[1].source[0].path",
    );
    assert!(
        s.contains("already the port of participant[0].source[0]"),
        "{s}"
    );
    let s = error(
        &second("path = \"/dev/rfcomm1\"\nrecord_raw = \"a.ndjson\"\n"),
        Some(10),
        "participant[1].source[0].record_raw",
    );
    assert!(s.contains("already the raw capture"), "{s}");
    parse(&second("path = \"/dev/rfcomm1\"\n")).unwrap();
}

const BLE: &str = "[[participant]]\nid = \"p01\"\n[[participant.source]]\ntype = \"ble\"\ndevice = \"c0:ff:ee:00:00:01\"\n";

#[test]
fn a_ble_strap_is_parsed_with_its_defaults_and_checked() {
    let c = parse(BLE).unwrap();
    let SourceConfig::Ble(s) = &c.participants[0].sources[0] else {
        panic!("not ble");
    };
    assert_eq!(
        s.target,
        crate::sources::ble::Target::Address("C0:FF:EE:00:00:01".into())
    );
    assert_eq!(s.silence_s, crate::sources::ble::DEFAULT_SILENCE_S);
    assert!(c.participants[0].sources[0].is_hardware());
    let named = parse(&BLE.replace("c0:ff:ee:00:00:01", "Polar H10")).unwrap();
    let SourceConfig::Ble(s) = &named.participants[0].sources[0] else {
        panic!("not ble");
    };
    assert_eq!(
        s.target,
        crate::sources::ble::Target::Name("Polar H10".into())
    );
    error(
        &format!("{BLE}silence_s = 1\n"),
        Some(6),
        "participant[0].source[0].silence_s",
    );
    error(
        &BLE.replace("c0:ff:ee:00:00:01", ""),
        Some(5),
        "participant[0].source[0].device",
    );
    error(
        &format!("{BLE}protocol = \"bitalino\"\n"),
        Some(6),
        "participant[0].source[0].protocol",
    );
    let twice = format!(
        "{BLE}[[participant]]\nid = \"p02\"\n[[participant.source]]\ntype = \"ble\"\ndevice = \"C0:FF:EE:00:00:01\"\n"
    );
    let s = error(&twice, Some(8), "participant[1].source[0].device");
    assert!(
        s.contains("already the strap of participant[0].source[0]"),
        "{s}"
    );
    // Two sources of one participant feeding hr/rr clash.
    let both = format!("{BLE}[[participant.source]]\ntype = \"simulate\"\neda = false\n");
    let s = error(&both, Some(6), "participant[0].source[1]");
    assert!(s.contains("feeds rr"), "{s}");
}
