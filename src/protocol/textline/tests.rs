//! Unit tests: settings, the conversion, the line splitter, the host's rules and the host↔device
//! loop (`SPEC.md` §7). Golden vectors: `vectors.rs`; properties: `proptests.rs`; the wrong
//! device and corruption: `corruption.rs`.

use super::line::Fields;
use super::*;
use crate::protocol::{
    self, Decoded, DeviceModel, Frame, Host, HostOut, LossReason, Phase, Physical,
};

pub(super) fn phys(eda_us: f64) -> Physical {
    Physical {
        ecg_mv: 0.0,
        eda_us,
        ppg: 0.0,
    }
}

pub(super) fn frames(d: &[Decoded]) -> Vec<&Frame> {
    d.iter()
        .filter_map(|d| match d {
            Decoded::Frame(f) => Some(f),
            Decoded::Gap { .. } => None,
        })
        .collect()
}

pub(super) fn timed() -> Settings {
    Settings {
        time_column: Some(0),
        value_column: 1,
        ..Settings::default()
    }
}

/// A slowly varying conductance, µS.
pub(super) fn eda(i: usize) -> f64 {
    8.0 + 5.0 * (i as f64 * 0.01).sin()
}

#[test]
fn settings_json_keys_and_defaults_are_stable() {
    let json = serde_json::to_value(Settings::default()).expect("serialises");
    let want = serde_json::json!({
        "rate_hz": 20.0, "value_column": 0, "value": "adc", "cal": 512.0, "full_scale": 1024.0,
        "checksum": "auto", "settle_lines": 3, "settle_s": 2.0, "fail_after_s": 10.0,
    });
    assert_eq!(json, want);
    let empty: Settings = serde_json::from_value(serde_json::json!({})).expect("all keys optional");
    assert_eq!(empty, Settings::default());
    let full = Settings {
        time_column: Some(0),
        value_column: 1,
        prefix: Some("GSR:".into()),
        value: ValueKind::Us,
        checksum: ChecksumMode::Required,
        ..Settings::default()
    };
    let back: Settings =
        serde_json::from_value(serde_json::to_value(&full).expect("json")).expect("round trip");
    assert_eq!(back, full);
    let unknown = serde_json::from_value::<Settings>(serde_json::json!({"baud": 9600}));
    assert!(unknown.is_err(), "unknown keys are errors");
    let kinds =
        serde_json::from_value::<Settings>(serde_json::json!({"value": "ohm", "checksum": "off"}))
            .expect("snake_case enums");
    assert_eq!(
        (kinds.value, kinds.checksum),
        (ValueKind::Ohm, ChecksumMode::Off)
    );
}

#[test]
fn check_names_the_key() {
    let cases: Vec<(&str, Settings)> = vec![
        (
            "rate_hz",
            Settings {
                rate_hz: 0.0,
                ..Settings::default()
            },
        ),
        (
            "rate_hz",
            Settings {
                rate_hz: f64::NAN,
                ..Settings::default()
            },
        ),
        (
            "value_column",
            Settings {
                value_column: 500,
                ..Settings::default()
            },
        ),
        (
            "time_column",
            Settings {
                time_column: Some(0),
                ..Settings::default()
            },
        ),
        (
            "time_column",
            Settings {
                time_column: Some(200),
                ..Settings::default()
            },
        ),
        (
            "prefix",
            Settings {
                prefix: Some(String::new()),
                ..Settings::default()
            },
        ),
        (
            "prefix",
            Settings {
                prefix: Some("GSR*".into()),
                ..Settings::default()
            },
        ),
        (
            "prefix",
            Settings {
                prefix: Some("# x".into()),
                ..Settings::default()
            },
        ),
        (
            "prefix",
            Settings {
                prefix: Some("G\u{e9}".into()),
                ..Settings::default()
            },
        ),
        (
            "cal",
            Settings {
                cal: 2000.0,
                ..Settings::default()
            },
        ),
        (
            "cal",
            Settings {
                cal: 0.0,
                ..Settings::default()
            },
        ),
        (
            "full_scale",
            Settings {
                full_scale: -1.0,
                ..Settings::default()
            },
        ),
        (
            "settle_lines",
            Settings {
                settle_lines: 0,
                ..Settings::default()
            },
        ),
        (
            "settle_lines",
            Settings {
                settle_lines: 17,
                ..Settings::default()
            },
        ),
        (
            "settle_s",
            Settings {
                settle_s: -1.0,
                ..Settings::default()
            },
        ),
        (
            "fail_after_s",
            Settings {
                fail_after_s: 0.0,
                ..Settings::default()
            },
        ),
    ];
    for (key, s) in cases {
        let e = s.check().expect_err(key);
        assert!(e.contains(key) && !e.contains('\n'), "{key}: {e}");
    }
    assert_eq!(Settings::default().check(), Ok(()));
    assert_eq!(timed().check(), Ok(()));
    let mut s = Settings::default();
    assert!(s.set_rate(50.0).is_ok() && s.rate_hz() == 50.0);
    assert!(s.set_rate(0.0).unwrap_err().contains("Hz"));
    assert!(s.set_rate(1e6).is_err() && s.rate_hz() == 50.0);
    assert_eq!(s.kinds(), vec![crate::model::StreamKind::Eda]);
}

#[test]
fn the_dispatch_in_mod_rs_reaches_this_module() {
    let mut s = protocol::Settings::defaults(protocol::ProtocolId::Textline);
    assert_eq!(s.rate_hz(), 20.0);
    s.set_rate(18.0).expect("rate");
    assert_eq!(s.check(), Ok(()));
    let back =
        protocol::Settings::from_json(protocol::ProtocolId::Textline, s.to_json()).expect("json");
    assert_eq!(back, s);
    assert_eq!(*s.host().phase(), Phase::Starting);
    assert_eq!(s.device().streaming_rate(), Some(18.0));
}

#[test]
fn grove_gsr_and_its_inverse_agree() {
    for x in 0..512 {
        let us = 1e6 / grove_gsr_ohm(f64::from(x), 512.0, 1024.0).expect("in range");
        let back = grove_gsr_adc(us, 512.0, 1024.0);
        assert!((back - f64::from(x)).abs() < 1e-9, "{x} -> {us} -> {back}");
    }
    assert_eq!(
        grove_gsr_ohm(512.0, 512.0, 1024.0),
        Err(protocol::Invalid::OutOfRange)
    );
    assert_eq!(
        grove_gsr_ohm(-0.5, 512.0, 1024.0),
        Err(protocol::Invalid::OutOfRange)
    );
    assert_eq!(grove_gsr_adc(0.0, 512.0, 1024.0), 512.0);
    assert_eq!(grove_gsr_adc(f64::NAN, 512.0, 1024.0), 512.0);
    // The 12-bit reading of the same voltage gives the same resistance (module doc).
    let r10 = grove_gsr_ohm(300.0, 512.0, 1024.0).expect("10-bit");
    let r12 = grove_gsr_ohm(1200.0, 2048.0, 4096.0).expect("12-bit");
    assert!((r10 - r12).abs() < 1e-6);
    let s = |full_scale, value| Settings {
        full_scale,
        value,
        cal: 100.0,
        ..Settings::default()
    };
    assert_eq!(s(1024.0, ValueKind::Adc).adc_bits(), Some(10));
    assert_eq!(s(4096.0, ValueKind::Adc).adc_bits(), Some(12));
    assert_eq!(s(1000.0, ValueKind::Adc).adc_bits(), None);
    assert_eq!(s(1024.0, ValueKind::Ohm).adc_bits(), None);
}

#[test]
fn fields_split_like_the_spec_says() {
    let split = |s: &str| -> Vec<String> {
        Fields::new(s.as_bytes())
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect()
    };
    assert_eq!(split("a,b;c d\te"), ["a", "b", "c", "d", "e"]);
    assert_eq!(split("  a ,  b  ;c  "), ["a", "b", "c"]);
    assert_eq!(split("a,,b"), ["a", "", "b"]);
    assert_eq!(split("a, ,b"), ["a", "", "b"]);
    assert_eq!(split("a,"), ["a", ""]);
    assert_eq!(split(",a"), ["", "a"]);
    assert_eq!(split("a   b"), ["a", "b"]);
    assert_eq!(split(""), [""]);
}

#[test]
fn host_writes_nothing_and_reports_one_eda_channel_once_streaming() {
    let mut host = timed().host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    assert!(host.channels().is_empty());
    host.on_bytes(0.0, b"x\n100,300\n150,301\n200,302\n", &mut out);
    host.on_tick(0.1, &mut out);
    host.stop(&mut out);
    assert!(out.write.is_empty());
    assert_eq!(*host.phase(), Phase::Streaming);
    let [ch] = host.channels() else {
        panic!("one channel")
    };
    assert_eq!(
        (
            ch.input.as_str(),
            ch.kind,
            ch.rate_hz,
            ch.conversion.as_str(),
            ch.bits
        ),
        (
            "col1",
            crate::model::StreamKind::Eda,
            20.0,
            "grove-gsr",
            Some(10)
        )
    );
}

#[test]
fn failed_is_final_and_slow_sketches_get_time_to_settle() {
    let mut host = Settings::default().host();
    let mut out = HostOut::default();
    host.start(5.0, &mut out);
    host.on_tick(14.9, &mut out);
    assert_eq!(*host.phase(), Phase::Starting);
    host.on_tick(15.0, &mut out);
    let Phase::Failed(msg) = host.phase().clone() else {
        panic!("failed")
    };
    assert!(msg.starts_with("no text lines parsed in 10 s"), "{msg}");
    host.on_bytes(16.0, b"\n300\n301\n302\n303\n", &mut out);
    assert!(out.decoded.is_empty(), "no samples after failing");
    assert_eq!(host.stats().bytes_skipped, 17);
    let slow = Settings {
        rate_hz: 0.2,
        ..Settings::default()
    };
    assert_eq!(slow.fail_deadline_s(), 40.0);
}

/// Runs the reference-sketch model into a host, one encode output per line period.
fn looped(
    s: &Settings,
    device: &mut TextlineDevice,
    n: usize,
    t0: f64,
    host: &mut TextlineHost,
) -> HostOut {
    let mut out = HostOut::default();
    let mut wire = Vec::new();
    for i in 0..n {
        wire.clear();
        device.encode(&phys(eda(i)), &mut wire);
        host.on_bytes(t0 + i as f64 / s.rate_hz, &wire, &mut out);
    }
    out
}

#[test]
fn host_device_loop_with_the_boot_banner() {
    for s in [
        timed(),
        Settings::default(),
        Settings {
            checksum: ChecksumMode::Off,
            ..timed()
        },
        Settings {
            prefix: Some("GSR:".into()),
            value: ValueKind::Ohm,
            ..timed()
        },
        Settings {
            value: ValueKind::Us,
            time_column: Some(2),
            ..Settings::default()
        },
    ] {
        let mut device = s.device();
        let mut reply = Vec::new();
        device.on_host_bytes(b"anything", &mut reply);
        assert!(reply.is_empty(), "the sketch never answers");
        let mut host = s.host();
        host.start(0.0, &mut HostOut::default());
        let out = looped(&s, &mut device, 200, 0.0, &mut host);
        assert_eq!(host.device(), Some("attune_gsr v1 20 Hz"), "{s:?}");
        assert_eq!(*host.phase(), Phase::Streaming);
        let got = frames(&out.decoded);
        assert_eq!(got.len(), 200, "every sample after the banner: {s:?}");
        assert_eq!(out.decoded.len(), 200, "no gaps");
        for (i, f) in got.iter().enumerate() {
            assert_eq!(f.index, i as u64);
            let want_t = s
                .time_column
                .map(|_| (device::BOOT_MS as f64 + i as f64 * 50.0) / 1000.0);
            assert_eq!(
                f.device_t.map(|t| (t * 1000.0).round()),
                want_t.map(|t| (t * 1000.0).round())
            );
        }
        let st = host.stats();
        assert_eq!(
            (st.bad_lines, st.crc_errors, st.frames_lost, st.frames),
            (0, 0, 0, 200)
        );
    }
}

#[test]
fn a_power_cycle_mid_stream_is_a_reset_with_an_ambiguous_gap() {
    let s = timed();
    let mut device = s.device();
    let mut host = s.host();
    host.start(0.0, &mut HostOut::default());
    let mut out = looped(&s, &mut device, 100, 0.0, &mut host);
    device.power_cycle();
    let after = looped(&s, &mut device, 50, 100.0 / 20.0 + 1.0, &mut host);
    let tail: Vec<_> = after.decoded.iter().take(2).collect();
    assert!(
        matches!(
            tail.first(),
            Some(Decoded::Gap {
                frames: 20,
                ambiguous: true,
                reason: LossReason::Resync
            })
        ),
        "{tail:?}"
    );
    assert!(
        after.notes.iter().any(|n| n.contains("board reset")),
        "{:?}",
        after.notes
    );
    assert!(
        after
            .notes
            .iter()
            .any(|n| n.contains("device comment: attune_gsr v1")),
        "banner seen again"
    );
    out.decoded.extend(after.decoded);
    let f = frames(&out.decoded);
    assert_eq!(f.len(), 150);
    assert!(
        f.windows(2).all(|w| w[0].device_t < w[1].device_t),
        "device time never goes back"
    );
    assert_eq!(host.stats().frames_lost, 20);
}

#[test]
fn millis_wrap_in_the_loop_is_seamless() {
    let s = timed();
    let mut device = s.device().with_start_ms((1u64 << 32) - 1_000);
    let mut host = s.host();
    host.start(0.0, &mut HostOut::default());
    let out = looped(&s, &mut device, 100, 0.0, &mut host);
    let f = frames(&out.decoded);
    assert_eq!(
        (f.len(), out.decoded.len()),
        (100, 100),
        "no gaps across the wrap"
    );
    for w in f.windows(2) {
        let dt = w[1].device_t.unwrap_or(0.0) - w[0].device_t.unwrap_or(0.0);
        assert!((dt - 0.05).abs() < 1e-6, "{dt}");
    }
}

#[test]
fn absurd_host_times_do_not_panic() {
    for now in [1e300, f64::NAN, -1e300, f64::INFINITY] {
        let s = Settings {
            rate_hz: 1000.0,
            ..timed()
        };
        let mut host = s.host();
        let mut out = HostOut::default();
        host.start(0.0, &mut out);
        host.on_bytes(
            0.0,
            b"x\n4000000000,1\n4000000001,2\n4000000002,3\n",
            &mut out,
        );
        host.on_bytes(now, b"5,4\n4000000000,5\n", &mut out);
        host.on_tick(now, &mut out);
        assert_eq!(frames(&out.decoded).len(), 5, "{now}");
    }
}
