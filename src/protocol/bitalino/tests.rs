//! BITalino tests: the golden vectors, the start-up exchange, the decoder's loss rules, every
//! chunking, and the simulated device talking to the host.

use super::frame::{self, crc4, pack, unpack};
use super::*;
use crate::protocol::{DeviceModel, Frame, LossReason, Physical, Value};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::Value as Json;

const VECTORS: &str = include_str!("../../../firmware-protocols/bitalino/vectors.json");

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn ints(v: &Json) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn reason(word: &str) -> LossReason {
    [
        LossReason::Crc,
        LossReason::SequenceJump,
        LossReason::Resync,
        LossReason::BadLine,
    ]
    .into_iter()
    .find(|r| r.as_str() == word)
    .unwrap()
}

/// Settings acquiring A1..An, all EDA (the vectors' values are raw ADC).
fn raw_settings(n: usize) -> Settings {
    let channels = (1..=n as u8)
        .map(|i| Wiring {
            input: Input::new(i).unwrap(),
            kind: Signal::Eda,
        })
        .collect();
    Settings {
        channels,
        ..Settings::default()
    }
}

fn frames(decoded: &[Decoded]) -> Vec<&Frame> {
    decoded
        .iter()
        .filter_map(|d| match d {
            Decoded::Frame(f) => Some(f),
            Decoded::Gap { .. } => None,
        })
        .collect()
}

fn raws(f: &Frame) -> Vec<u64> {
    f.values.iter().map(|v| v.raw as u64).collect()
}

#[test]
fn golden_vectors() {
    let doc: Json = serde_json::from_str(VECTORS).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 18);
    for v in vectors {
        let (id, bytes, expect) = (
            v["id"].as_str().unwrap(),
            hex(v["hex"].as_str().unwrap()),
            &v["expect"],
        );
        assert!(
            !v["provenance"].as_array().unwrap().is_empty(),
            "{id}: no provenance"
        );
        match v["kind"].as_str().unwrap() {
            "frame" => {
                let n = v["params"]["channels"].as_u64().unwrap() as usize;
                if expect["error"] == "crc" {
                    assert!(!frame::crc_ok(&bytes), "{id}");
                    let (decoded, stats) = decode_capture(&raw_settings(n), &bytes);
                    assert!(decoded.is_empty(), "{id}");
                    assert_eq!(stats.bytes_skipped, 1, "{id}: slid one byte, then waits");
                    continue;
                }
                assert!(frame::crc_ok(&bytes), "{id}: CRC");
                let r = unpack(&bytes, n);
                let digital: Vec<u64> = (0..4)
                    .map(|b| u64::from(r.digital >> (3 - b) & 1))
                    .collect();
                assert_eq!(u64::from(r.seq), expect["seq"].as_u64().unwrap(), "{id}");
                assert_eq!(digital, ints(&expect["digital"]), "{id}");
                let analog: Vec<u64> = r.analog[..n].iter().map(|&a| u64::from(a)).collect();
                assert_eq!(analog, ints(&expect["analog"]), "{id}");
                // The encoder makes the same bytes (6-bit values given as ADC10 = v << 4 | 15).
                let adc10: Vec<u16> = (0..n)
                    .map(|i| {
                        if frame::bits_at(i) == 6 {
                            r.analog[i] << 4 | 15
                        } else {
                            r.analog[i]
                        }
                    })
                    .collect();
                let mut packed = Vec::new();
                pack(&adc10, r.digital, r.seq, &mut packed);
                assert_eq!(packed, bytes, "{id}: pack");
            }
            "state" => {
                let s = parse_state(&bytes).unwrap_or_else(|| panic!("{id}: parse"));
                assert_eq!(
                    s.analog.map(u64::from).to_vec(),
                    ints(&expect["analog"]),
                    "{id}"
                );
                assert_eq!(
                    u64::from(s.battery),
                    expect["battery"].as_u64().unwrap(),
                    "{id}"
                );
                assert_eq!(
                    u64::from(s.battery_threshold),
                    expect["battery_threshold"].as_u64().unwrap(),
                    "{id}"
                );
                let digital: Vec<u64> = (0..4)
                    .map(|b| u64::from(s.digital >> (3 - b) & 1))
                    .collect();
                assert_eq!(digital, ints(&expect["digital"]), "{id}");
                let mut again = Vec::new();
                s.encode(&mut again);
                assert_eq!(again, bytes, "{id}: encode");
            }
            "stream" => {
                let n = v["params"]["channels"].as_u64().unwrap() as usize;
                let (decoded, stats) = decode_capture(&raw_settings(n), &bytes);
                let want = expect["decoded"].as_array().unwrap();
                assert_eq!(decoded.len(), want.len(), "{id}: {decoded:?}");
                for (got, want) in decoded.iter().zip(want) {
                    match got {
                        Decoded::Frame(f) => {
                            assert_eq!(f.index, want["frame"].as_u64().unwrap(), "{id}");
                            assert_eq!(raws(f), ints(&want["analog"]), "{id}");
                            assert_eq!(f.device_t, None);
                        }
                        Decoded::Gap {
                            frames,
                            ambiguous,
                            reason: r,
                        } => {
                            assert_eq!(*frames, want["gap"].as_u64().unwrap(), "{id}");
                            assert_eq!(*ambiguous, want["ambiguous"].as_bool().unwrap(), "{id}");
                            assert_eq!(*r, reason(want["reason"].as_str().unwrap()), "{id}");
                        }
                    }
                }
                let s = &expect["stats"];
                assert_eq!(
                    stats.bytes_skipped,
                    s["bytes_skipped"].as_u64().unwrap(),
                    "{id}"
                );
                assert_eq!(stats.crc_errors, s["crc_errors"].as_u64().unwrap(), "{id}");
            }
            other => panic!("{id}: unknown kind {other}"),
        }
    }
}

// ---------------------------------------------------------------- start-up exchange

/// Runs `host` with ticks every 10 ms from `t` to `until`, feeding each write to `on_write`.
fn tick_until(host: &mut BitalinoHost, t: &mut f64, until: f64, writes: &mut Vec<(f64, u8)>) {
    let mut out = HostOut::default();
    while *t < until - 1e-9 {
        *t += 0.01;
        host.on_tick(*t, &mut out);
        writes.extend(out.write.drain(..).map(|b| (*t, b)));
    }
}

#[test]
fn start_up_stops_drains_identifies_then_paces_rate_and_start() {
    let mut host = Settings::default().host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    assert_eq!(out.write, [cmd::STOP]);
    // A device left streaming: its frames during the drain are discarded.
    host.on_bytes(0.05, &[0x00, 0x08, 0x0E, 0xFF], &mut out);
    let (mut t, mut writes) = (0.0, Vec::new());
    tick_until(&mut host, &mut t, 0.14, &mut writes);
    assert!(writes.is_empty(), "nothing before 150 ms: {writes:?}");
    tick_until(&mut host, &mut t, 0.16, &mut writes);
    assert_eq!(
        writes.iter().map(|w| w.1).collect::<Vec<_>>(),
        [cmd::VERSION]
    );
    let sent = writes[0].0;
    // Late stale bytes, then the line split across reads.
    out.clear();
    host.on_bytes(0.17, b"\x12\x34Bita", &mut out);
    host.on_bytes(0.18, b"BITali", &mut out);
    host.on_bytes(0.19, b"no_v5.1\r\n", &mut out);
    assert_eq!(host.device(), Some("BITalino_v5.1"));
    assert_eq!(out.notes, ["device: BITalino_v5.1"]);
    assert_eq!(host.phase(), &Phase::Starting);
    assert!(host.channels().is_empty());
    writes.clear();
    tick_until(&mut host, &mut t, 1.0, &mut writes);
    // Rate 1000 Hz (0xC3), then start A2 + A3 (mask 0b000110 → 0x19), ≥ 150 ms apart.
    assert_eq!(writes.iter().map(|w| w.1).collect::<Vec<_>>(), [0xC3, 0x19]);
    assert!(writes[0].0 >= sent + COMMAND_GAP_S - 1e-9);
    assert!(writes[1].0 >= writes[0].0 + COMMAND_GAP_S - 1e-9);
    assert_eq!(host.phase(), &Phase::Streaming);
    let ch = host.channels();
    assert_eq!(ch.len(), 2);
    assert_eq!(
        (ch[0].input.as_str(), ch[0].kind, ch[0].bits),
        ("A2", StreamKind::Ecg, Some(10))
    );
    assert_eq!(ch[0].conversion, "bitalino-ecg");
    assert_eq!((ch[1].input.as_str(), ch[1].kind), ("A3", StreamKind::Eda));
    assert_eq!(ch[1].conversion, "bitalino-eda-rev-2020");
    assert_eq!(ch[1].rate_hz, 1000.0);
    out.clear();
    host.stop(&mut out);
    assert_eq!(out.write, [cmd::STOP]);
    // After stop, bytes are drained and discarded.
    host.on_bytes(5.0, &[0x00, 0x08, 0x0E], &mut out);
    assert!(out.decoded.is_empty());
}

fn fail_after(reply: &[u8]) -> String {
    let mut host = Settings::default().host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let (mut t, mut writes) = (0.0, Vec::new());
    tick_until(&mut host, &mut t, 0.2, &mut writes);
    host.on_bytes(0.3, reply, &mut out);
    tick_until(&mut host, &mut t, 2.1, &mut writes);
    assert_eq!(host.phase(), &Phase::Starting, "not before 2 s");
    tick_until(&mut host, &mut t, 2.3, &mut writes);
    match host.phase() {
        Phase::Failed(why) => why.clone(),
        p => panic!("{p:?}"),
    }
}

#[test]
fn silent_device_fails_with_the_pairing_hint() {
    assert_eq!(
        fail_after(b""),
        "no answer to the version request (0x07) within 2 s: is it a BITalino, switched on and \
         paired?"
    );
}

#[test]
fn a_device_that_is_not_a_bitalino_fails_saying_so() {
    let why = fail_after(b"OK\r\nAT+VERSION?\r\n");
    assert!(
        why.starts_with("the device answered the version request (0x07), but not as a BITalino")
    );
    assert!(why.contains("17 bytes") && why.contains("4F 4B"), "{why}");
    // A header without a newline in 64 bytes is not a version line either.
    let long = [b"BITalino".as_slice(), &[b'x'; 80]].concat();
    assert!(fail_after(&long).contains("not as a BITalino"));
}

#[test]
fn original_bitalino_firmware_is_refused() {
    let mut host = Settings::default().host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let (mut t, mut writes) = (0.0, Vec::new());
    tick_until(&mut host, &mut t, 0.2, &mut writes);
    host.on_bytes(0.3, b"BITalino_v4.2\n", &mut out);
    let Phase::Failed(why) = host.phase() else {
        panic!("{:?}", host.phase())
    };
    assert!(
        why.contains("supports only the BITalino (r)evolution"),
        "{why}"
    );
    assert!(why.contains("BITalino_v4.2"), "{why}");
    writes.clear();
    tick_until(&mut host, &mut t, 1.0, &mut writes);
    assert!(writes.is_empty(), "nothing written after failing");
}

#[test]
fn firmware_major_reads_the_integer_after_v() {
    assert_eq!(firmware_major("BITalino_v5.1"), Some(5));
    assert_eq!(firmware_major("BITalino_v5.2"), Some(5));
    assert_eq!(firmware_major("BITalino_v12"), Some(12));
    assert_eq!(firmware_major("BITalino V3.1"), None);
}

// ---------------------------------------------------------------- settings and conversions

#[test]
fn settings_defaults_parse_and_check() {
    let d = Settings::default();
    assert_eq!(d.rate_hz(), 1000.0);
    assert_eq!(d.kinds(), [StreamKind::Ecg, StreamKind::Eda]);
    assert_eq!(d.mask(), 0b0000_0110);
    assert!(d.check().is_ok());
    let toml: Settings = toml::from_str(
        "rate_hz = 100\nchannels = [{input = \"A5\", kind = \"eda\"}, {input = \"A1\", kind = \"ecg\"}]\n\
         eda_formula = \"rev-legacy\"",
    )
    .unwrap();
    assert_eq!(toml.rate_hz, 100.0);
    assert_eq!(toml.eda_formula, EdaFormula::RevLegacy);
    assert_eq!(
        toml.kinds(),
        [StreamKind::Ecg, StreamKind::Eda],
        "acquisition order"
    );
    let infos = toml.channel_infos();
    assert_eq!(infos[1].conversion, "bitalino-eda-rev-legacy");
    let json = crate::protocol::Settings::Bitalino(toml.clone()).to_json();
    assert_eq!(
        crate::protocol::Settings::from_json(crate::protocol::ProtocolId::Bitalino, json).unwrap(),
        crate::protocol::Settings::Bitalino(toml)
    );
    let bad = |s: &str| toml::from_str::<Settings>(s).unwrap_err().to_string();
    assert!(bad("channels = [{input = \"A7\", kind = \"eda\"}]").contains("A1 to A6"));
    assert!(bad("channels = [{input = \"A3\", kind = \"ppg\"}]").contains("ppg"));
    assert!(bad("vcc = 5.0").contains("vcc"));
    assert!(bad("eda_formula = \"rev-2019\"").contains("rev-2019"));
}

#[test]
fn check_names_the_key() {
    let mut s = Settings::default();
    assert!(
        s.set_rate(250.0)
            .unwrap_err()
            .contains("1, 10, 100 or 1000")
    );
    assert!(s.set_rate(10.0).is_ok());
    s.rate_hz = 500.0;
    assert!(s.check().unwrap_err().starts_with("bitalino rate_hz"));
    s.rate_hz = 10.0;
    s.channels.clear();
    assert!(
        s.check()
            .unwrap_err()
            .starts_with("bitalino channels: 0 listed")
    );
    s.channels = Settings::default().channels;
    s.channels.push(s.channels[0]);
    assert_eq!(
        s.check().unwrap_err(),
        "bitalino channels: A2 is listed twice"
    );
    s.channels = raw_settings(6).channels;
    assert!(s.check().is_ok());
    let bits: Vec<_> = s.channel_infos().iter().map(|c| c.bits).collect();
    assert_eq!(bits, [10, 10, 10, 10, 6, 6].map(Some));
    s.channels.push(s.channels[0]);
    assert!(s.check().unwrap_err().contains("7 listed"));
}

#[test]
fn eda_and_ecg_conversions_match_the_spec_table() {
    let close = |a: f64, b: f64| (a - b).abs() < 0.005;
    let eda = |f, adc| Conversion::Eda(f).to_unit(adc, 10).unwrap();
    assert!(close(eda(EdaFormula::Rev2020, 512.0), 12.50));
    assert!(close(eda(EdaFormula::Rev2020, 1023.0), 24.98));
    assert!(close(eda(EdaFormula::RevLegacy, 512.0), 8.15));
    assert!(close(eda(EdaFormula::RevLegacy, 1023.0), 20.63));
    assert!(close(eda(EdaFormula::BitalinoV1, 512.0), 2.00));
    assert!(close(eda(EdaFormula::BitalinoV1, 1023.0), 1024.0));
    assert_eq!(
        Conversion::Eda(EdaFormula::RevLegacy).to_unit(100.0, 10),
        Err(Invalid::OutOfRange)
    );
    assert_eq!(Conversion::Ecg.to_unit(512.0, 10), Ok(0.0));
    assert!(close(Conversion::Ecg.to_unit(1023.0, 10).unwrap(), 1.4985));
    // 6-bit: the same formulas with n = 6.
    assert!(close(
        eda(EdaFormula::Rev2020, 512.0),
        Conversion::Eda(EdaFormula::Rev2020)
            .to_unit(32.0, 6)
            .unwrap()
    ));
    for f in [
        EdaFormula::Rev2020,
        EdaFormula::RevLegacy,
        EdaFormula::BitalinoV1,
    ] {
        let c = Conversion::Eda(f);
        assert_eq!(c.id(), format!("bitalino-eda-{}", f.id()));
        for adc in [200u16, 511, 900, 1022] {
            assert_eq!(
                c.to_adc10(c.to_unit(f64::from(adc), 10).unwrap()),
                adc,
                "{f:?} {adc}"
            );
        }
    }
    for adc in [0u16, 1, 512, 1023] {
        assert_eq!(
            Conversion::Ecg.to_adc10(Conversion::Ecg.to_unit(f64::from(adc), 10).unwrap()),
            adc
        );
    }
    assert_eq!(Conversion::Ecg.to_adc10(f64::NAN), 0);
    assert_eq!(Conversion::Ecg.to_adc10(99.0), 1023);
}

// ---------------------------------------------------------------- the simulated device

fn physical(i: usize) -> Physical {
    let t = i as f64 / 1000.0;
    Physical {
        ecg_mv: 0.8 * (t * 7.0).sin(),
        eda_us: 6.0 + 2.0 * (t * 0.5).cos(),
        ppg: 0.0,
    }
}

/// Host and device on a perfect link: returns the decoded output and the device.
fn session(settings: &Settings, samples: usize) -> (BitalinoHost, BitalinoDevice, Vec<Decoded>) {
    let mut host = settings.host();
    let mut device = settings.device();
    let mut out = HostOut::default();
    let mut decoded = Vec::new();
    let mut reply = Vec::new();
    let mut t = 0.0;
    host.start(t, &mut out);
    let mut sent = 0;
    while sent < samples {
        device.on_host_bytes(&out.write, &mut reply);
        out.write.clear();
        if device.streaming_rate().is_some() {
            for _ in 0..10 {
                device.encode(&physical(sent), &mut reply);
                sent += 1;
            }
        }
        host.on_bytes(t, &reply, &mut out);
        reply.clear();
        decoded.append(&mut out.decoded);
        t += 0.01;
        host.on_tick(t, &mut out);
        assert!(t < 60.0, "never streamed: {:?}", host.phase());
    }
    host.stop(&mut out);
    decoded.append(&mut out.decoded);
    device.on_host_bytes(&out.write, &mut reply);
    (host, device, decoded)
}

#[test]
fn host_and_simulated_device_round_trip_physical_values() {
    for formula in [
        EdaFormula::Rev2020,
        EdaFormula::RevLegacy,
        EdaFormula::BitalinoV1,
    ] {
        let settings = Settings {
            eda_formula: formula,
            ..Settings::default()
        };
        let (host, device, out) = session(&settings, 2000);
        assert_eq!(device.streaming_rate(), None, "stopped");
        assert_eq!(device.mask(), 0b110);
        let got = frames(&out);
        assert_eq!(got.len(), 2000);
        assert_eq!(host.stats().frames, 2000);
        assert_eq!(host.stats().frames_lost, 0);
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.index, i as u64);
            let p = physical(i);
            let ecg = f.values[0].value.unwrap();
            let eda = f.values[1].value.unwrap();
            // Within one ADC step: 3.3/1100/1024 V → 0.0029 mV; EDA rev-2020 0.024 µS.
            assert!(
                (ecg - p.ecg_mv).abs() < 0.0016,
                "{formula:?} {i}: {ecg} vs {}",
                p.ecg_mv
            );
            let step = match formula {
                EdaFormula::BitalinoV1 => 0.4, // 1/(1−x)² / 1024 at ~8 µS
                _ => 0.0125,
            };
            assert!(
                (eda - p.eda_us).abs() < step,
                "{formula:?} {i}: {eda} vs {}",
                p.eda_us
            );
        }
    }
}

#[test]
fn six_inputs_stream_with_two_six_bit_channels() {
    let mut settings = raw_settings(6);
    settings.channels[0].kind = Signal::Ecg;
    settings.rate_hz = 100.0;
    let (host, _, out) = session(&settings, 100);
    assert_eq!(host.stats().frames, 100);
    let f = frames(&out)[50];
    // A5 and A6 carry EDA on 6 bits: the device truncates (adc10 >> 4).
    let eda = physical(50).eda_us;
    let adc10 = Conversion::Eda(EdaFormula::Rev2020).to_adc10(eda);
    assert_eq!(f.values[4].raw, f64::from(adc10 >> 4));
    let v: Value = f.values[5];
    assert!((v.value.unwrap() - eda).abs() < 3.3 / 0.132 / 64.0);
}

#[test]
fn device_answers_version_state_and_rates_like_firmware_5_1() {
    let settings = Settings::default();
    let mut d = settings.device();
    let mut reply = Vec::new();
    d.on_host_bytes(&[cmd::VERSION], &mut reply);
    assert_eq!(reply, b"BITalino_v5.1\n");
    reply.clear();
    d.on_host_bytes(&[0x02 << 2, cmd::STATE], &mut reply); // battery threshold 2, then state
    let s = parse_state(&reply).unwrap();
    assert_eq!(
        (s.battery, s.battery_threshold, s.digital),
        (device::BATTERY_ADC, 2, 0)
    );
    assert_eq!(s.analog, [device::MID_SCALE; 6]);
    assert_eq!(reply[15] & 0x0F, crc4(&reply));
    reply.clear();
    assert_eq!(d.streaming_rate(), None);
    d.on_host_bytes(&[0x43, 0x3D], &mut reply); // 10 Hz, start A1..A4 (mask 0x0F)
    assert_eq!(d.streaming_rate(), Some(10.0));
    d.on_host_bytes(&[cmd::VERSION, cmd::STATE, 0x83], &mut reply);
    assert!(
        reply.is_empty(),
        "live: version, state and rate are ignored"
    );
    d.on_host_bytes(&[0xA3, 0x00], &mut reply); // PWM value 0 is not a stop
    assert_eq!(d.streaming_rate(), Some(10.0));
    let mut frames_out = Vec::new();
    for _ in 0..17 {
        d.encode(&physical(0), &mut frames_out);
    }
    assert_eq!(frames_out.len(), 17 * 7);
    assert_eq!(unpack(&frames_out[16 * 7..], 4).seq, 0, "seq wraps at 16");
    // A1 carries nothing (mid-scale), A2 ECG at 0 mV (also 512).
    assert_eq!(
        unpack(&frames_out[..7], 4).analog[..2],
        [device::MID_SCALE, 512]
    );
    d.on_host_bytes(&[0xFF], &mut reply);
    assert_eq!(d.streaming_rate(), None, "0xFF stops too");
    d.on_host_bytes(&[0x3D], &mut reply);
    assert_eq!(
        d.streaming_rate(),
        Some(10.0),
        "the rate persists across starts"
    );
    d.encode(&physical(0), &mut frames_out);
    d.power_cycle();
    assert_eq!(d.streaming_rate(), None);
    frames_out.clear();
    d.encode(&physical(0), &mut frames_out);
    assert!(frames_out.is_empty(), "idle: nothing sent");
    d.on_host_bytes(&[0x3D], &mut reply);
    assert_eq!(d.streaming_rate(), Some(1000.0), "power-on rate");
    d.encode(&physical(0), &mut frames_out);
    assert_eq!(unpack(&frames_out, 4).seq, 0);
}

mod decoder;
