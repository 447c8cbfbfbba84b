//! Tests of the wrong device and of corruption (`SPEC.md` §5, §7): BITalino bytes and noise
//! never become samples; 1 % of lines bit-flipped with checksums costs exactly the hit lines; the
//! share of single-bit flips that plain lines catch, measured.

use super::tests::{eda, frames, phys, timed};
use super::*;
use crate::protocol::{Decoded, DeviceModel, Host, HostOut, LossReason, Phase};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
/// BITalino (r)evolution frames with two channels (DEVICES.md §4 packing and CRC-4).
fn bitalino_frame(seq: u8, ch0: u16, ch1: u16) -> [u8; 4] {
    const T: [u8; 16] = [0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2];
    let mut b = [
        (ch1 & 0xFF) as u8,
        ((ch0 & 0x3F) << 2 | ch1 >> 8) as u8,
        (ch0 >> 6) as u8,
        (seq & 15) << 4,
    ];
    let mut c = 0u8;
    for &x in &b[..3] {
        c = T[c as usize] ^ (x >> 4);
        c = T[c as usize] ^ (x & 15);
    }
    c = T[c as usize] ^ (b[3] >> 4);
    c = T[c as usize];
    b[3] |= c;
    b
}

/// Feeds `bytes_per_s` of `next()` bytes for 15 s with ticks; returns the output and when the
/// host failed.
fn wrong_device(
    s: &Settings,
    bytes_per_s: usize,
    mut next: impl FnMut() -> u8,
) -> (HostOut, TextlineHost, Option<f64>) {
    let mut host = s.host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let mut failed_at = None;
    let mut chunk = Vec::new();
    for step in 1..=150 {
        let now = f64::from(step) * 0.1;
        chunk.clear();
        chunk.extend((0..bytes_per_s / 10).map(|_| next()));
        host.on_bytes(now, &chunk, &mut out);
        host.on_tick(now, &mut out);
        if failed_at.is_none() && matches!(host.phase(), Phase::Failed(_)) {
            failed_at = Some(now);
        }
    }
    (out, host, failed_at)
}

#[test]
fn the_wrong_device_never_becomes_samples() {
    let variants = [
        Settings::default(),
        timed(),
        Settings {
            checksum: ChecksumMode::Off,
            settle_lines: 2,
            ..Settings::default()
        },
        Settings {
            checksum: ChecksumMode::Required,
            ..Settings::default()
        },
    ];
    for seed in 0..8u64 {
        for s in &variants {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut seq = 0u8;
            let mut pending: Vec<u8> = Vec::new();
            let bitalino = || {
                if pending.is_empty() {
                    let f =
                        bitalino_frame(seq, rng.random_range(0..1024), rng.random_range(0..1024));
                    seq = seq.wrapping_add(1);
                    pending.extend(f.iter().rev());
                }
                pending.pop().unwrap_or(0)
            };
            let (out, host, failed_at) = wrong_device(s, 4000, bitalino);
            assert!(
                frames(&out.decoded).is_empty() && out.decoded.is_empty(),
                "BITalino bytes became output"
            );
            let Phase::Failed(msg) = host.phase() else {
                panic!("not failed: {:?}", host.stats())
            };
            assert!(msg.contains("at the right baud"), "{msg}");
            assert!(
                (failed_at.unwrap_or(0.0) - 10.0).abs() < 1e-9,
                "fails at the deadline"
            );
            let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
            let (out, host, failed_at) = wrong_device(s, 11_520, || rng.random());
            assert!(out.decoded.is_empty(), "noise became output (seed {seed})");
            assert!(matches!(host.phase(), Phase::Failed(_)));
            assert!(
                (failed_at.unwrap_or(0.0) - 10.0).abs() < 1e-9,
                "fails at the deadline"
            );
        }
    }
}

/// The device's lines with one random bit flipped in 1 % of the encode outputs (never in the
/// first ten, so start-up is clean). Returns the stream and, per sample, whether it was damaged
/// and whether its terminator was hit. Flipping bit 5 of a checksum letter (`C` ↔ `c`) changes
/// no information (hex digits are read in either case): that line is not damaged.
fn corrupted_stream(
    s: &Settings,
    n: usize,
    seed: u64,
) -> (Vec<(Vec<u8>, bool, bool)>, TextlineDevice) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut device = s.device();
    let mut outputs = Vec::new();
    for i in 0..n {
        let mut w = Vec::new();
        device.encode(&phys(eda(i)), &mut w);
        let (mut hit, mut newline) = (false, false);
        if i >= 10 && rng.random_bool(0.01) {
            let at = rng.random_range(0..w.len());
            newline = at + 1 == w.len();
            let bit = rng.random_range(0..8);
            let star = w.iter().rposition(|&b| b == b'*').unwrap_or(usize::MAX);
            if let Some(b) = w.get_mut(at) {
                hit = !(at > star && bit == 5 && b.is_ascii_alphabetic());
                *b ^= 1 << bit;
            }
        }
        outputs.push((w, hit, newline));
    }
    (outputs, device)
}

#[test]
fn one_percent_bit_flips_with_checksums_cost_exactly_the_hit_lines() {
    let s = timed();
    for seed in 0..4 {
        let (outputs, device) = corrupted_stream(&s, 20_000, seed);
        let mut host = s.host();
        let mut out = HostOut::default();
        host.start(0.0, &mut out);
        // A hit terminator merges the next line into the hit one: both are lost.
        let mut lost = vec![false; outputs.len()];
        for (i, (w, hit, newline)) in outputs.iter().enumerate() {
            host.on_bytes(i as f64 / 20.0, w, &mut out);
            if *hit {
                lost[i] = true;
                if *newline && i + 1 < lost.len() {
                    lost[i + 1] = true;
                }
            }
        }
        let got = frames(&out.decoded);
        let want: Vec<usize> = (0..outputs.len()).filter(|&i| !lost[i]).collect();
        let got_i: Vec<u64> = got.iter().map(|f| f.index).collect();
        let want_i: Vec<u64> = want.iter().map(|&i| i as u64).collect();
        if got_i != want_i {
            let (g, w): (HashSet<_>, HashSet<_>) =
                (got_i.iter().collect(), want_i.iter().collect());
            panic!(
                "seed {seed}: extra {:?}, missing {:?}",
                g.difference(&w),
                w.difference(&g)
            );
        }
        for (f, &i) in got.iter().zip(&want) {
            let x = device.adc_for(eda(i));
            let t = (device::BOOT_MS as f64 + i as f64 * 50.0) / 1000.0;
            assert_eq!(f.values[0].raw, x, "seed {seed} sample {i}");
            assert!((f.device_t.unwrap_or(0.0) - t).abs() < 1e-6 && f.index == i as u64);
        }
        let mut gaps = 0;
        for d in &out.decoded {
            if let Decoded::Gap {
                frames,
                ambiguous,
                reason,
            } = d
            {
                gaps += frames;
                // A merged line whose XOR happens to match fails as a bad line instead.
                let why = matches!(reason, LossReason::Crc | LossReason::BadLine);
                assert!(!ambiguous && why, "seed {seed}: {d:?}");
            }
        }
        assert_eq!(
            gaps,
            lost.iter().filter(|&&l| l).count() as u64,
            "seed {seed}: each hit line is a gap"
        );
    }
}

#[test]
fn bit_flips_with_checksums_and_no_time_column_deliver_no_wrong_value() {
    let s = Settings::default();
    let (outputs, device) = corrupted_stream(&s, 20_000, 7);
    let mut host = s.host();
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let mut clean = Vec::new();
    for (i, (w, hit, _)) in outputs.iter().enumerate() {
        host.on_bytes(0.0, w, &mut out);
        let merged = i > 0 && outputs.get(i - 1).is_some_and(|o| o.2);
        if !hit && !merged {
            clean.push(device.adc_for(eda(i)));
        }
    }
    let got: Vec<f64> = frames(&out.decoded)
        .iter()
        .map(|f| f.values[0].raw)
        .collect();
    assert_eq!(got, clean, "exactly the clean lines, in order");
    let one = |d: &Decoded| match d {
        Decoded::Frame(_) => true,
        Decoded::Gap { frames, reason, .. } => {
            *frames == 1 && matches!(reason, LossReason::Crc | LossReason::BadLine)
        }
    };
    assert!(out.decoded.iter().all(one));
}

/// What one flipped bit of a plain (unchecked) line does.
#[derive(Debug, Default)]
pub(super) struct Flips {
    /// The output is exactly the clean one.
    pub harmless: u64,
    /// The loss shows (a gap, or a bad line) and every delivered frame is right.
    pub caught: u64,
    /// A frame with a wrong value or time, or a sample gone without a trace.
    pub silent: u64,
}

/// Every single-bit flip of `n` sample lines, each between a clean line before and two after
/// (a loss with a time column shows at the next valid line).
pub(super) fn measure_flips(s: &Settings, n: usize) -> Flips {
    let mut device = s.device();
    let mut banner = Vec::new();
    device.encode(&phys(eda(0)), &mut banner);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for i in 0..n + 3 {
        let mut w = Vec::new();
        device.encode(&phys(eda(i * 37)), &mut w);
        lines.push(w);
    }
    let run = |bytes: &[u8]| {
        let mut host = TextlineHost::settled(s);
        let mut out = HostOut::default();
        host.on_bytes(0.0, bytes, &mut out);
        out.decoded
    };
    let mut r = Flips::default();
    for k in 1..=n {
        let (prev, line, next) = (
            &lines[k - 1],
            &lines[k],
            [lines[k + 1].as_slice(), &lines[k + 2]].concat(),
        );
        let clean = run(&[prev.as_slice(), line, &next].concat());
        for at in 0..line.len() * 8 {
            let mut bad = line.clone();
            bad[at / 8] ^= 1 << (at % 8);
            let got = run(&[prev.as_slice(), &bad, &next].concat());
            let clean_frames = frames(&clean);
            let right = frames(&got).iter().all(|f| clean_frames.contains(f));
            let shows = got.iter().any(|d| matches!(d, Decoded::Gap { .. }));
            if got == clean {
                r.harmless += 1;
            } else if right && shows {
                r.caught += 1;
            } else {
                r.silent += 1;
            }
        }
    }
    r
}

#[test]
fn single_bit_flips_of_plain_lines_are_measured() {
    let share =
        |f: &Flips| (f.caught + f.harmless) as f64 / (f.caught + f.harmless + f.silent) as f64;
    let plain = measure_flips(
        &Settings {
            checksum: ChecksumMode::Off,
            ..Settings::default()
        },
        300,
    );
    let checked = measure_flips(&timed(), 100);
    let timed = measure_flips(
        &Settings {
            checksum: ChecksumMode::Off,
            ..timed()
        },
        300,
    );
    eprintln!(
        "single-bit flips: plain {plain:?} {:.3}, timed {timed:?} {:.3}, checked {checked:?}",
        share(&plain),
        share(&timed)
    );
    assert_eq!(
        checked.silent, 0,
        "the checksum catches every single-bit flip"
    );
    // SPEC.md §7 states these measured shares (53.5 % and 68.8 %); keep them in step.
    assert!((share(&plain) - 0.535).abs() < 0.005, "{}", share(&plain));
    assert!((share(&timed) - 0.688).abs() < 0.005, "{}", share(&timed));
}
