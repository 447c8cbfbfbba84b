//! Start-up exchange and in-memory host ↔ device loops: the happy path, a device that never
//! answers, a NACK, wrong devices and wrong firmware, replies in odd chunks, interleaved status.

use super::tests::{feed, frames, packets, pair, sample};
use super::*;
use crate::protocol::{Decoded, DeviceModel, LossReason};

/// The commands the host writes in a full start-up against the model, one per round trip.
pub(super) fn handshake_writes(s: &Settings) -> Vec<Vec<u8>> {
    let mut dev = s.device();
    let mut host = s.host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let mut writes = Vec::new();
    while !out.write.is_empty() && writes.len() < 20 {
        writes.push(out.write.clone());
        let mut reply = Vec::new();
        dev.on_host_bytes(&out.write, &mut reply);
        out.clear();
        host.on_bytes(0.1, &reply, &mut out);
    }
    assert_eq!(*host.phase(), Phase::Streaming, "{s:?}");
    writes
}

/// Runs a start-up where `device` maps each host write to the bytes it answers; returns the
/// host after `ticks` more seconds of `on_tick`.
fn scripted(s: &Settings, mut device: impl FnMut(&[u8]) -> Vec<u8>, wait_s: f64) -> ShimmerHost {
    let mut host = s.host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let mut now = 0.0;
    for _ in 0..20 {
        let reply = device(&out.write);
        out.clear();
        host.on_bytes(now, &reply, &mut out);
        if *host.phase() != Phase::Starting || out.write.is_empty() {
            break;
        }
    }
    while now < wait_s && *host.phase() == Phase::Starting {
        now += 0.1;
        host.on_tick(now, &mut out);
    }
    host
}

fn failed(host: &ShimmerHost) -> String {
    match host.phase() {
        Phase::Failed(why) => why.clone(),
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn start_up_reaches_streaming_and_names_the_device() {
    for s in [
        Settings::default(),
        Settings {
            crc: CrcMode::Two,
            gsr_range: GsrRange::R2,
            ppg: false,
            rate_hz: 1.0,
        },
        Settings {
            crc: CrcMode::One,
            ..Settings::default()
        },
    ] {
        let (mut host, mut dev) = pair(&s);
        let fw = if s.crc == CrcMode::Off {
            "v0.11.0"
        } else {
            "v0.15.0"
        };
        assert_eq!(
            host.device(),
            Some(format!("Shimmer3 LogAndStream {fw}").as_str())
        );
        assert_eq!(dev.streaming_rate(), Some(s.rate_hz()));
        assert_eq!(host.channels().len(), 1 + usize::from(s.ppg));
        assert!(
            host.channels()
                .iter()
                .all(|c| c.rate_hz == s.rate_hz() && c.bits == Some(12))
        );
        let (decoded, stats) = feed(&mut host, &packets(&mut dev, 0, 50).concat(), &[3]);
        assert_eq!(frames(&decoded).len(), 50, "{s:?}");
        assert_eq!(
            (stats.frames_lost, stats.bytes_skipped, stats.crc_errors),
            (0, 0, 0)
        );
        let mut out = HostOut::default();
        host.stop(&mut out);
        assert_eq!(out.write, vec![0x20]);
        dev.on_host_bytes(&out.write, &mut Vec::new());
        assert_eq!(dev.streaming_rate(), None);
    }
}

#[test]
fn replies_split_byte_by_byte_and_merged_give_the_same_start_up() {
    let s = Settings {
        crc: CrcMode::Two,
        ..Settings::default()
    };
    for chunk in [1usize, 2, 3, 1000] {
        let mut dev = s.device();
        let mut host = s.host();
        let mut out = HostOut::default();
        host.start(0.0, &mut out);
        let mut reply = Vec::new();
        for _ in 0..20 {
            dev.on_host_bytes(&out.write, &mut reply);
            out.clear();
            let pending = std::mem::take(&mut reply);
            for c in pending.chunks(chunk) {
                host.on_bytes(0.0, c, &mut out);
            }
        }
        assert_eq!(*host.phase(), Phase::Streaming, "chunk {chunk}");
    }
}

#[test]
fn leftover_stream_before_the_stop_ack_is_discarded() {
    // The device was left streaming by an earlier session: packets (some with FF bytes) come
    // before the ACK of 20, and one trails it.
    let s = Settings::default();
    let mut dev = s.device();
    dev.on_host_bytes(&[0x08, 0x04, 0x01, 0x00, 0x07], &mut Vec::new());
    let mut old = Vec::new();
    for i in 0..5 {
        dev.encode(
            &crate::protocol::Physical {
                eda_us: 100.0,
                ppg: 2.0 + f64::from(i),
                ecg_mv: 0.0,
            },
            &mut old,
        );
    }
    let trailing = old[..8].to_vec();
    let mut first = true;
    let host = scripted(
        &s,
        |w| {
            let mut r = Vec::new();
            if std::mem::take(&mut first) {
                r.extend_from_slice(&old[3..]);
            }
            dev.on_host_bytes(w, &mut r);
            if w == [0x20] {
                r.extend_from_slice(&trailing);
            }
            r
        },
        0.0,
    );
    assert_eq!(*host.phase(), Phase::Streaming);
    assert!(host.stats().bytes_skipped >= 8);
}

#[test]
fn a_device_that_never_answers_fails_after_the_timeout() {
    let host = scripted(&Settings::default(), |_| Vec::new(), 2.5);
    let why = failed(&host);
    assert!(
        why.starts_with("no ACK to stop streaming (0x20) within 2 s"),
        "{why}"
    );
    assert!(why.contains("Shimmer3 running LogAndStream"), "{why}");
    // still waiting just before the timeout
    let host = scripted(&Settings::default(), |_| Vec::new(), 1.85);
    assert_eq!(*host.phase(), Phase::Starting);
}

#[test]
fn a_nack_fails_at_once_naming_the_command() {
    let s = Settings::default();
    let mut dev = s.device();
    let host = scripted(
        &s,
        |w| {
            let mut r = Vec::new();
            if w.first() == Some(&0x05) {
                r.push(0xFE)
            } else {
                dev.on_host_bytes(w, &mut r)
            }
            r
        },
        0.0,
    );
    assert_eq!(
        failed(&host),
        "set sampling rate (0x05) was refused (NACK 0xFE)"
    );
}

#[test]
fn a_bitalino_or_a_text_line_device_is_not_taken_for_a_shimmer() {
    // BITalino: ignores 0x20 (a battery threshold) and 0x2E; idle, it sends nothing.
    let why = failed(&scripted(&Settings::default(), |_| Vec::new(), 3.0));
    assert!(why.contains("0x20"), "{why}");
    // BITalino streaming its frames (they contain FF): the version reply never comes.
    let frames: Vec<u8> = [[0xFC, 0x8F, 0x57], [0x00, 0x08, 0x0E], [0xFF, 0x4F, 0x06]].concat();
    let why = failed(&scripted(&Settings::default(), |_| frames.repeat(20), 3.0));
    assert!(
        why.starts_with("no ACK to get firmware version (0x2E) within 2 s"),
        "{why}"
    );
    assert!(
        why.contains("other bytes, first [4F, 06, FC, 8F, 57"),
        "{why}"
    );
    // An Arduino printing GSR lines: no FF ever.
    let why = failed(&scripted(
        &Settings::default(),
        |_| b"512\r\n498\r\n".to_vec(),
        3.0,
    ));
    assert!(
        why.contains("0x20") && why.contains("[35, 31, 32, 0D, 0A"),
        "{why}"
    );
    // A text line where the ACK to a set command should be.
    let s = Settings::default();
    let mut dev = s.device();
    let host = scripted(
        &s,
        |w| {
            let mut r = Vec::new();
            if w.first() == Some(&0x08) {
                r.extend_from_slice(b"OK\r\n")
            } else {
                dev.on_host_bytes(w, &mut r)
            }
            r
        },
        0.0,
    );
    assert_eq!(
        failed(&host),
        "unexpected byte 0x4F where the ACK (0xFF) to set sensors (0x08) was expected"
    );
}

/// A model whose replies to one command are replaced.
fn with_reply(s: &Settings, cmd: u8, reply: Vec<u8>) -> ShimmerHost {
    let mut dev = s.device();
    scripted(
        s,
        move |w| {
            let mut r = Vec::new();
            if w.first() == Some(&cmd) {
                r.extend_from_slice(&reply)
            } else {
                dev.on_host_bytes(w, &mut r)
            }
            r
        },
        0.0,
    )
}

#[test]
fn wrong_firmware_hardware_or_channels_fail_naming_them() {
    let s = Settings::default();
    let why = failed(&with_reply(
        &s,
        0x2E,
        vec![0xFF, 0x2F, 0x01, 0x00, 0x00, 0x00, 0x08, 0x00],
    ));
    assert_eq!(
        why,
        "firmware type 1 (BtStream) v0.8.0 is not LogAndStream (3): flash LogAndStream"
    );
    let why = failed(&with_reply(
        &s,
        0x2E,
        vec![0xFF, 0x2F, 0x03, 0x00, 0x00, 0x00, 0x05, 0x03],
    ));
    assert!(why.contains("older than v0.5.4"), "{why}");
    let crc = Settings {
        crc: CrcMode::Two,
        ..s.clone()
    };
    let mut dev = ShimmerDevice::new(device::V0_11_0);
    let why = failed(&scripted(
        &crc,
        |w| {
            let mut r = Vec::new();
            dev.on_host_bytes(w, &mut r);
            r
        },
        0.0,
    ));
    assert!(
        why.contains("needs LogAndStream v0.13.7")
            && why.contains("v0.11.0")
            && why.contains("crc = \"off\""),
        "{why}"
    );
    let why = failed(&with_reply(&s, 0x3F, vec![0xFF, 0x25, 0x0A]));
    assert!(
        why.starts_with("device version 10 (Shimmer3R) is not a Shimmer3"),
        "{why}"
    );
    // inquiry listing VBATT instead of ADC13
    let inq = vec![
        0xFF, 0x02, 0x00, 0x01, 0x01, 0xFF, 0x01, 0x09, 0x02, 0x01, 0x03, 0x1C,
    ];
    let why = failed(&with_reply(&s, 0x01, inq));
    assert_eq!(
        why,
        "inquiry: channels [0x03, 0x1C] where attune asked for [0x12, 0x1C]"
    );
    let inq = vec![
        0xFF, 0x02, 0x00, 0x01, 0x01, 0xFF, 0x01, 0x09, 0x02, 0x01, 0x14, 0x1C,
    ];
    assert_eq!(
        failed(&with_reply(&s, 0x01, inq)),
        "inquiry: channel id 0x14 has no known size"
    );
    let inq = vec![
        0xFF, 0x02, 0x80, 0x02, 0x01, 0xFF, 0x01, 0x09, 0x02, 0x01, 0x12, 0x1C,
    ];
    assert!(failed(&with_reply(&s, 0x01, inq)).contains("every 640 ticks, attune asked for 256"));
    let inq = vec![
        0xFF, 0x02, 0x00, 0x01, 0x01, 0xFF, 0x01, 0x09, 0x03, 0x01, 0x03, 0x12, 0x1C,
    ];
    assert!(failed(&with_reply(&s, 0x01, inq)).contains("3 channels where attune asked for 2"));
    let inq = vec![
        0xFF, 0x02, 0x00, 0x01, 0x01, 0xFF, 0x01, 0x03, 0x02, 0x01, 0x12, 0x1C,
    ];
    assert!(
        failed(&with_reply(&s, 0x01, inq))
            .contains("GSR range 1 in config byte 3, attune asked for 4")
    );
    let why = failed(&with_reply(&crc, 0x05, vec![0xFF, 0x00, 0x00]));
    assert_eq!(why, "the ACK to set sampling rate (0x05) failed its CRC");
}

#[test]
fn a_status_sent_on_its_own_during_start_up_is_skipped() {
    for s in [
        Settings::default(),
        Settings {
            crc: CrcMode::Two,
            ..Settings::default()
        },
    ] {
        let mut dev = s.device();
        let host = scripted(
            &s,
            |w| {
                let mut r = Vec::new();
                if w.first() == Some(&0x01) || w.first() == Some(&0x3F) {
                    dev.unsolicited_status(&mut r); // docked just now
                }
                dev.on_host_bytes(w, &mut r);
                r
            },
            0.0,
        );
        assert_eq!(*host.phase(), Phase::Streaming, "{s:?}");
    }
}

#[test]
fn streaming_handles_statuses_drops_and_power_cycles() {
    let s = Settings::default();
    let (mut host, mut dev) = pair(&s);
    let mut bytes = packets(&mut dev, 0, 10).concat();
    dev.unsolicited_status(&mut bytes);
    bytes.extend(packets(&mut dev, 10, 5).concat());
    dev.drop_samples(3);
    bytes.extend(packets(&mut dev, 15, 5).concat());
    let mut out = HostOut::default();
    host.on_bytes(1.0, &bytes, &mut out);
    assert_eq!(
        out.notes,
        vec!["status 0x32 (sensing, streaming, SD present)".to_string()]
    );
    let gaps: Vec<&Decoded> = out
        .decoded
        .iter()
        .filter(|d| matches!(d, Decoded::Gap { .. }))
        .collect();
    assert_eq!(
        gaps,
        vec![&Decoded::Gap {
            frames: 3,
            ambiguous: false,
            reason: LossReason::SequenceJump
        }]
    );
    let f = frames(&out.decoded);
    assert_eq!(f.last().map(|f| f.index), Some(22));
    assert_eq!(host.stats().frames_lost, 3);

    dev.power_cycle();
    assert_eq!(dev.streaming_rate(), None);
    let mut p = Vec::new();
    dev.encode(&sample(0), &mut p);
    assert!(p.is_empty());
    let (host2, _) = connected(&s, dev).unwrap_or_else(|| panic!("reconnect"));
    assert_eq!(*host2.phase(), Phase::Streaming);
}

#[test]
fn a_silence_longer_than_half_a_wrap_makes_the_gap_ambiguous() {
    for (silence_s, lost) in [(300u32, 38400u64), (700, 89600)] {
        let s = Settings::default();
        let (mut host, mut dev) = pair(&s);
        let mut out = HostOut::default();
        host.on_bytes(0.0, &packets(&mut dev, 0, 3).concat(), &mut out);
        dev.drop_samples(128 * silence_s);
        out.clear();
        host.on_bytes(
            f64::from(silence_s),
            &packets(&mut dev, 3, 3).concat(),
            &mut out,
        );
        let want = Decoded::Gap {
            frames: lost,
            ambiguous: true,
            reason: LossReason::SequenceJump,
        };
        assert_eq!(out.decoded.first(), Some(&want), "{silence_s} s");
    }
}

/// The device's whole side of a start-up (replies to the commands `handshake_writes` finds), a
/// status in the middle, then `n` packets.
fn transcript(s: &Settings, n: u64) -> Vec<u8> {
    let writes = handshake_writes(s);
    let mut dev = s.device();
    let mut bytes = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        if i == 4 {
            dev.unsolicited_status(&mut bytes);
        }
        dev.on_host_bytes(w, &mut bytes);
    }
    bytes.extend(packets(&mut dev, 0, n).concat());
    bytes
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 64,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("regressions"))),
        ..proptest::test_runner::Config::default()
    })]

    /// The start-up, fed in any split (with leftover packets of an earlier session in front),
    /// gives the same commands, phase, frames and counters.
    #[test]
    fn start_up_transcript_in_any_split(code in 0u8..5, ppg: bool, crc in 0usize..3, junk in 0usize..20,
                                        sizes in proptest::collection::vec(1usize..12, 1..6)) {
        let s = Settings { gsr_range: GsrRange::from_code(code), ppg, crc: [CrcMode::Off, CrcMode::One, CrcMode::Two][crc], ..Settings::default() };
        let mut old = s.device();
        old.on_host_bytes(&[0x08, 0x04, 0x01, 0x00, 0x07], &mut Vec::new());
        let mut bytes = packets(&mut old, 0, 3).concat().split_off(junk.min(20));
        bytes.extend(transcript(&s, 20));
        let run = |sizes: &[usize]| {
            let mut host = s.host();
            let mut out = HostOut::default();
            host.start(0.0, &mut out);
            let (mut writes, mut decoded) = (std::mem::take(&mut out.write), Vec::new());
            let mut chunks = sizes.iter().copied().cycle();
            let mut at = 0;
            while at < bytes.len() {
                let end = at.saturating_add(chunks.next().unwrap_or(usize::MAX)).min(bytes.len());
                host.on_bytes(0.1, &bytes[at..end], &mut out);
                writes.append(&mut out.write);
                decoded.append(&mut out.decoded);
                at = end;
            }
            host.on_tick(0.5, &mut out);
            (decoded, host.stats(), host.phase().clone(), writes)
        };
        let whole = run(&[]);
        proptest::prop_assert_eq!(&whole.2, &Phase::Streaming);
        proptest::prop_assert_eq!(frames(&whole.0).len(), 20);
        proptest::prop_assert_eq!(whole.3.len(), handshake_writes(&s).concat().len());
        proptest::prop_assert_eq!(&run(&[1]), &whole);
        proptest::prop_assert_eq!(&run(&sizes), &whole);
    }
}

#[test]
fn stray_acks_with_a_crc_are_skipped_in_any_split() {
    let s = Settings {
        crc: CrcMode::Two,
        ..Settings::default()
    };
    let mut bytes = transcript(&s, 5);
    // three extra CRC'd ACKs right before the inquiry's reply
    let at = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0x02])
        .unwrap_or(0);
    bytes.splice(at..at, [0xFF, 0xF4, 0x65].repeat(3));
    for sizes in [vec![], vec![1], vec![2], vec![4, 1]] {
        let mut host = s.host();
        host.start(0.0, &mut HostOut::default());
        let mut out = HostOut::default();
        let mut at = 0;
        let mut chunks = sizes.iter().copied().cycle();
        while at < bytes.len() {
            let end = at
                .saturating_add(chunks.next().unwrap_or(usize::MAX))
                .min(bytes.len());
            host.on_bytes(0.0, &bytes[at..end], &mut out);
            at = end;
        }
        assert_eq!(*host.phase(), Phase::Streaming, "{sizes:?}");
    }
}
