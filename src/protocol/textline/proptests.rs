//! Property tests (`SPEC.md` §7): split invariance, random bytes, garbage lines, the
//! encode→decode round trip and the host↔device loop with power cycles. Failing seeds are kept
//! in `src/protocol/textline/proptests.regressions` (committed; replayed first on every run).

use super::tests::{eda, frames, phys, timed};
use super::*;
use crate::protocol::{Decoded, DeviceModel, Host, HostOut, LossReason, Phase, Stats};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// A few settings that change the decoding paths.
fn settings() -> impl Strategy<Value = Settings> {
    prop_oneof![
        Just(Settings::default()),
        Just(timed()),
        Just(Settings {
            checksum: ChecksumMode::Required,
            ..timed()
        }),
        Just(Settings {
            checksum: ChecksumMode::Off,
            prefix: Some("GSR:".into()),
            ..Settings::default()
        }),
        Just(Settings {
            value: ValueKind::Ohm,
            settle_lines: 1,
            ..timed()
        }),
    ]
}

/// A piece of a text-line stream.
#[derive(Debug, Clone)]
enum Piece {
    Sample { x: u16, ms: u32, checksum: bool },
    Noise(Vec<u8>),
    Text(String),
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => (0u16..1100, any::<u32>(), any::<bool>()).prop_map(|(x, ms, checksum)| Piece::Sample { x, ms, checksum }),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Piece::Noise),
        1 => "[ -~\t\r\n]{0,20}".prop_map(Piece::Text),
    ]
}

fn line(body: String, checksum: bool) -> Vec<u8> {
    let mut l = body.into_bytes();
    if checksum {
        let sum = super::checksum(&l);
        l.extend(format!("*{sum:02X}").bytes());
    }
    l.extend(b"\r\n");
    l
}

fn render(pieces: &[Piece]) -> Vec<u8> {
    pieces
        .iter()
        .flat_map(|p| match p {
            Piece::Sample { x, ms, checksum } => line(format!("{ms},{x}"), *checksum),
            Piece::Noise(b) => b.clone(),
            Piece::Text(t) => t.clone().into_bytes(),
        })
        .collect()
}

/// Everything a session gives, with `data` cut at `cuts` (all bytes at time `now`).
fn session(
    s: &Settings,
    settled: bool,
    now: f64,
    data: &[u8],
    cuts: &[usize],
) -> (HostOut, Stats, Phase) {
    let mut host = if settled {
        TextlineHost::settled(s)
    } else {
        s.host()
    };
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let mut from = 0;
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    for c in cuts.into_iter().chain([data.len()]) {
        host.on_bytes(now, data.get(from..c).unwrap_or_default(), &mut out);
        from = from.max(c);
    }
    host.on_tick(now + 0.05, &mut out);
    (out, host.stats(), host.phase().clone())
}

proptest! {
    #![proptest_config(config(256))]

    /// Whole, byte by byte and cut anywhere: the same frames, gaps, notes, counters and phase.
    #[test]
    fn every_split_gives_the_same_output(
        s in settings(),
        pieces in proptest::collection::vec(piece(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        settled in any::<bool>(),
        late in any::<bool>(),
    ) {
        let data = render(&pieces);
        let now = if late { 2.5 } else { 0.0 };
        let whole = session(&s, settled, now, &data, &[]);
        let cut = session(&s, settled, now, &data, &cuts);
        let bytewise: Vec<usize> = (1..data.len()).collect();
        let bytes = session(&s, settled, now, &data, &bytewise);
        prop_assert_eq!(&whole, &cut);
        prop_assert_eq!(&whole, &bytes);
    }

    /// Random bytes never panic, and the fuzz body's own checks hold.
    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        super::fuzz(&data);
    }

    /// Garbage at the start and bad lines between valid ones: the valid lines after the start
    /// are delivered exactly, in order; bad lines cost a sample only without a time column.
    #[test]
    fn garbage_lines_are_skipped_and_valid_lines_delivered_exactly(
        s in settings(),
        junk in proptest::collection::vec(any::<u8>(), 0..300),
        garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..60),
        xs in proptest::collection::vec(0u16..1100, 3..60),
        between in proptest::collection::vec(0usize..3, 60),
        checksum in any::<bool>(),
    ) {
        // 0xFF makes the line bad under every setting (not ASCII; or a checksum failure).
        let bad = |g: &Vec<u8>| {
            let mut l = vec![0xFF];
            l.extend(g.iter().filter(|&&b| b != b'\n'));
            l.push(b'\n');
            l
        };
        let checksum = checksum || s.checksum == ChecksumMode::Required;
        let sample = |i: usize, x: u16| {
            let body = match (&s.prefix, s.time_column) {
                (Some(p), _) => format!("{p} {x}"),
                (None, Some(_)) => format!("{},{x}", 1000 + 50 * i),
                (None, None) => format!("{x}"),
            };
            line(body, checksum && s.checksum != ChecksumMode::Off)
        };
        let mut data: Vec<u8> = junk.iter().copied().filter(|&b| b != b'\n').collect();
        data.push(b'\n');
        let mut g = garbage.iter().cycle();
        for gl in garbage.iter().take(5) {
            data.extend(bad(gl));
        }
        let mut bad_after = 0u64;
        for (i, &x) in xs.iter().enumerate() {
            if i >= s.settle_lines as usize {
                for _ in 0..between[i] {
                    if let Some(gl) = g.next() {
                        data.extend(bad(gl));
                        bad_after += 1;
                    }
                }
            }
            data.extend(sample(i, x));
        }
        let (out, stats, phase) = session(&s, false, 0.0, &data, &[]);
        prop_assert_eq!(phase, Phase::Streaming);
        let got: Vec<f64> = frames(&out.decoded).iter().map(|f| f.values[0].raw).collect();
        let want: Vec<f64> = xs.iter().map(|&x| f64::from(x)).collect();
        prop_assert_eq!(got, want);
        let lost: u64 = out.decoded.iter().map(|d| match d {
            Decoded::Gap { frames, reason, .. } => {
                assert!(matches!(reason, LossReason::BadLine | LossReason::Crc));
                *frames
            }
            Decoded::Frame(_) => 0,
        }).sum();
        let expect_lost = if s.time_column.is_some() { 0 } else { bad_after };
        prop_assert_eq!(lost, expect_lost);
        prop_assert_eq!(stats.frames_lost, expect_lost);
    }

    /// The simulated device's lines decode to its values within the ADC quantisation.
    #[test]
    fn encode_then_decode_round_trips(
        us in proptest::collection::vec(0.0f64..80.0, 1..80),
        kind in prop_oneof![Just(ValueKind::Adc), Just(ValueKind::Ohm), Just(ValueKind::Us)],
        with_time in any::<bool>(),
        checksum in prop_oneof![Just(ChecksumMode::Auto), Just(ChecksumMode::Required), Just(ChecksumMode::Off)],
        cal in 300.0f64..700.0,
        twelve_bit in any::<bool>(),
    ) {
        let scale = if twelve_bit { 4.0 } else { 1.0 };
        let (cal, full_scale) = ((cal * scale).round(), 1024.0 * scale);
        let base = if with_time { timed() } else { Settings::default() };
        let s = Settings { value: kind, checksum, cal, full_scale, ..base };
        prop_assert_eq!(s.check(), Ok(()));
        let mut device = s.device();
        let mut host = s.host();
        let mut out = HostOut::default();
        host.start(0.0, &mut out);
        let mut wire = Vec::new();
        for (i, &g) in us.iter().enumerate() {
            wire.clear();
            device.encode(&phys(g), &mut wire);
            host.on_bytes(i as f64 * 0.05, &wire, &mut out);
        }
        let got = frames(&out.decoded);
        // The first three lines are held until the settling run is complete.
        let settled = us.len() >= 3;
        prop_assert_eq!(got.len(), if settled { us.len() } else { 0 });
        let max = cal - 1.0;
        for (f, &g) in got.iter().zip(&us) {
            let exact = grove_gsr_adc(g, cal, full_scale);
            let decoded = grove_gsr_adc(f.values[0].value.expect("in range"), cal, full_scale);
            let want = exact.clamp(0.0, max);
            prop_assert!((decoded - want).abs() <= 0.5 + 0.01, "{g} µS: x {exact} decoded as {decoded}");
        }
    }

    /// The host↔device loop with power cycles: every sample after the first settling is
    /// delivered, resets are ambiguous gaps, and device time never goes back.
    #[test]
    fn host_device_loop_with_power_cycles(
        runs in proptest::collection::vec(1usize..40, 1..6),
        pause in 0.0f64..3.0,
    ) {
        let s = timed();
        let mut device = s.device();
        let mut host = s.host();
        let mut out = HostOut::default();
        host.start(0.0, &mut out);
        let (mut now, mut wire, mut i) = (0.0, Vec::new(), 0);
        for (r, &n) in runs.iter().enumerate() {
            if r > 0 {
                device.power_cycle();
                now += pause;
            }
            for _ in 0..n {
                wire.clear();
                device.encode(&phys(eda(i)), &mut wire);
                host.on_bytes(now, &wire, &mut out);
                now += 0.05;
                i += 1;
            }
        }
        let f = frames(&out.decoded);
        let total: usize = runs.iter().sum();
        if !f.is_empty() {
            prop_assert_eq!(f.len(), total, "all samples once the first run settled");
        }
        prop_assert!(f.windows(2).all(|w| w[0].device_t <= w[1].device_t));
        for d in &out.decoded {
            if let Decoded::Gap { ambiguous, reason, .. } = d {
                prop_assert!(*ambiguous && *reason == LossReason::Resync);
            }
        }
    }
}
