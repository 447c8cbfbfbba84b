//! Corruption as the simulator makes it: one random bit of one packet flipped. With the CRC
//! every flip is caught; without it, the structural checks catch a measured fraction.

use super::tests::{feed, frames, packets, pair};
use super::*;
use crate::protocol::{Decoded, Frame, LossReason};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

/// The frames of a clean stream of `n` packets, by index.
fn reference(s: &Settings, n: u64) -> (ShimmerHost, Vec<Vec<u8>>, BTreeMap<u64, Frame>) {
    let (host, mut dev) = pair(s);
    let sent = packets(&mut dev, 0, n);
    let (decoded, _) = feed(&mut host.clone(), &sent.concat(), &[]);
    let by_index: BTreeMap<u64, Frame> = frames(&decoded)
        .into_iter()
        .map(|f| (f.index, f.clone()))
        .collect();
    assert_eq!(by_index.len() as u64, n, "clean stream");
    (host, sent, by_index)
}

fn flip(p: &mut [u8], bit: usize) {
    if let Some(b) = p.get_mut(bit / 8) {
        *b ^= 1 << (bit % 8);
    }
}

fn gaps(d: &[Decoded]) -> Vec<(u64, LossReason)> {
    d.iter()
        .filter_map(|d| {
            if let Decoded::Gap { frames, reason, .. } = d {
                Some((*frames, *reason))
            } else {
                None
            }
        })
        .collect()
}

const CRC_SETTINGS: [Settings; 4] = [
    Settings {
        rate_hz: 128.0,
        gsr_range: GsrRange::Auto,
        ppg: true,
        crc: CrcMode::One,
    },
    Settings {
        rate_hz: 128.0,
        gsr_range: GsrRange::Auto,
        ppg: true,
        crc: CrcMode::Two,
    },
    Settings {
        rate_hz: 128.0,
        gsr_range: GsrRange::R1,
        ppg: false,
        crc: CrcMode::One,
    },
    Settings {
        rate_hz: 256.0,
        gsr_range: GsrRange::Auto,
        ppg: false,
        crc: CrcMode::Two,
    },
];

#[test]
fn with_the_crc_every_single_bit_flip_is_caught() {
    for s in &CRC_SETTINGS {
        let (host, sent, want) = reference(s, 9);
        for bit in 0..sent[4].len() * 8 {
            let mut bad = sent.clone();
            flip(&mut bad[4], bit);
            let (decoded, stats) = feed(&mut host.clone(), &bad.concat(), &[]);
            let got: Vec<&Frame> = frames(&decoded);
            let idx: Vec<u64> = got.iter().map(|f| f.index).collect();
            assert_eq!(idx, vec![0, 1, 2, 3, 5, 6, 7, 8], "{s:?} bit {bit}");
            assert!(
                got.iter().all(|f| want.get(&f.index) == Some(*f)),
                "{s:?} bit {bit}"
            );
            let reason = if bit < 8 {
                LossReason::Resync
            } else {
                LossReason::Crc
            };
            assert_eq!(gaps(&decoded), vec![(1, reason)], "{s:?} bit {bit}");
            assert_eq!(stats.crc_errors, u64::from(bit >= 8), "{s:?} bit {bit}");
        }
    }
}

/// Flips one random bit in `pct` % of the packets (seeded); returns the bytes and which
/// packets were hit. The first two and last two are left intact, so that the first delivered
/// frame is index 0 and the last one is not waiting for a confirmation.
fn corrupt(sent: &[Vec<u8>], pct: f64, seed: u64) -> (Vec<u8>, Vec<bool>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut hit = Vec::new();
    let mut bytes = Vec::new();
    for (i, p) in sent.iter().enumerate() {
        let mut p = p.clone();
        let h = rng.random_bool(pct / 100.0) && i >= 2 && i + 2 < sent.len();
        if h {
            let bit = rng.random_range(0..p.len() * 8);
            flip(&mut p, bit);
        }
        hit.push(h);
        bytes.extend(p);
    }
    (bytes, hit)
}

#[test]
fn with_the_crc_one_percent_flipped_loses_exactly_the_flipped_packets() {
    for (k, s) in CRC_SETTINGS.iter().enumerate() {
        let n = 5000;
        let (host, sent, want) = reference(s, n);
        let (bytes, hit) = corrupt(&sent, 1.0, 42 + k as u64);
        let (decoded, stats) = feed(&mut host.clone(), &bytes, &[13, 1, 64]);
        let got = frames(&decoded);
        let n_hit = hit.iter().filter(|&&h| h).count() as u64;
        assert!(n_hit > 20, "{n_hit} hit");
        // every good packet, exactly; no flipped one
        let delivered: Vec<u64> = got.iter().map(|f| f.index).collect();
        let expected: Vec<u64> = (0..n).filter(|&i| !hit[i as usize]).collect();
        assert_eq!(delivered, expected, "{s:?}");
        assert!(got.iter().all(|f| want.get(&f.index) == Some(*f)), "{s:?}");
        // one gap per run of flipped packets, as long as the run
        let mut runs = Vec::new();
        let mut run = 0;
        for &h in &hit {
            if h {
                run += 1;
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        let got_runs: Vec<u64> = gaps(&decoded).iter().map(|g| g.0).collect();
        assert_eq!(got_runs, runs, "{s:?}");
        assert_eq!(stats.frames_lost, n_hit);
        assert!(decoded.iter().all(|d| !matches!(
            d,
            Decoded::Gap {
                ambiguous: true,
                ..
            }
        )));
    }
}

/// Without the CRC: of the flips of one packet in the middle of a clean stream, how many are
/// caught (the packet is not delivered), and are the others delivered with the right index?
fn structural_detection(s: &Settings) -> (usize, usize) {
    let (host, sent, want) = reference(s, 9);
    let bits = sent[4].len() * 8;
    let mut caught = 0;
    for bit in 0..bits {
        let mut bad = sent.clone();
        flip(&mut bad[4], bit);
        let (decoded, _) = feed(&mut host.clone(), &bad.concat(), &[]);
        let got = frames(&decoded);
        let idx: Vec<u64> = got.iter().map(|f| f.index).collect();
        // the good packets always come out exactly, with their indices
        assert!(
            got.iter()
                .filter(|f| f.index != 4)
                .all(|f| want.get(&f.index) == Some(*f)),
            "bit {bit}"
        );
        if idx.contains(&4) {
            assert_eq!(idx, (0..9).collect::<Vec<_>>(), "{s:?} bit {bit}");
        } else {
            caught += 1;
            assert_eq!(idx, vec![0, 1, 2, 3, 5, 6, 7, 8], "{s:?} bit {bit}");
            assert_eq!(
                gaps(&decoded),
                vec![(1, LossReason::Resync)],
                "{s:?} bit {bit}"
            );
        }
    }
    (caught, bits)
}

#[test]
fn without_the_crc_the_structural_checks_catch_what_they_can() {
    let cases = [
        // ppg, range: (caught, of) — see the module doc
        (true, GsrRange::Auto, 33, 64), // header 8 + ts 19 (all but the 5 lowest) + 4 + 2 high bits
        (true, GsrRange::R1, 35, 64),   // + the 2 range bits
        (false, GsrRange::Auto, 29, 48), // header 8 + ts 19 + 2 high bits
        (false, GsrRange::R3, 31, 48),
    ];
    for (ppg, gsr_range, caught, of) in cases {
        let s = Settings {
            ppg,
            gsr_range,
            ..Settings::default()
        };
        assert_eq!(structural_detection(&s), (caught, of), "{s:?}");
    }
}

#[test]
fn without_the_crc_one_percent_flipped_measured() {
    let s = Settings::default();
    let n = 20_000;
    let (host, sent, want) = reference(&s, n);
    let (bytes, hit) = corrupt(&sent, 1.0, 7);
    let (decoded, stats) = feed(&mut host.clone(), &bytes, &[29, 3]);
    let got = frames(&decoded);
    let n_hit = hit.iter().filter(|&&h| h).count();
    let delivered_hit = got.iter().filter(|f| hit[f.index as usize]).count();
    let good_lost = (0..n as usize).filter(|&i| !hit[i]).count() - (got.len() - delivered_hit);
    // every delivered frame sits at its true index; the good ones carry their exact values
    assert!(
        got.iter()
            .all(|f| hit[f.index as usize] || want.get(&f.index) == Some(*f))
    );
    assert!(got.windows(2).all(|w| w[0].index < w[1].index));
    assert_eq!(stats.frames + stats.frames_lost, n);
    let caught = n_hit - delivered_hit;
    let rate = caught as f64 / n_hit as f64;
    println!(
        "no CRC, 1 % flipped: {n_hit} hit, {caught} caught ({:.1} %), {good_lost} good lost",
        rate * 100.0
    );
    assert!((0.40..0.70).contains(&rate), "caught {rate}");
    assert!(
        good_lost * 20 <= n_hit,
        "{good_lost} good packets lost for {n_hit} flips"
    );
}
