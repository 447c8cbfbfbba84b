//! Fuzz target bodies (`fuzz/fuzz_targets/bitalino.rs`), also run by `cargo test` on a seeded
//! corpus. Each panics if a property fails.

use super::frame::{self, pack, unpack};
use super::{BitalinoHost, Decoder, Input, Settings, Signal, Wiring};
use crate::protocol::{Decoded, Host, HostOut};

fn settings(n: usize) -> Settings {
    let channels = (1..=n as u8)
        .filter_map(Input::new)
        .map(|input| Wiring {
            input,
            kind: if input.number() == 2 {
                Signal::Ecg
            } else {
                Signal::Eda
            },
        })
        .collect();
    Settings {
        channels,
        ..Settings::default()
    }
}

/// Any bytes, as a stream of `n` channels (`n` from the first byte): decoding never panics,
/// gives the same output for one chunk and for chunks cut where the second byte says, every
/// index is accounted for by frames and gaps, and no frame fails its CRC. Then the same bytes
/// through a whole host session after its start-up.
pub fn stream_bytes(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(head % 6) + 1;
    let s = settings(n);
    let decode = |cut: usize| {
        let mut d = Decoder::new(s.conversions());
        let mut out = Vec::new();
        for chunk in rest.chunks(cut.max(1)) {
            d.feed(chunk, &mut out);
        }
        d.finish(&mut out);
        (out, d.stats())
    };
    let (whole, stats) = decode(rest.len());
    let cut = usize::from(head >> 3) + 1;
    assert_eq!(decode(cut), (whole.clone(), stats), "chunks of {cut}");
    let mut next = 0;
    for d in &whole {
        match d {
            Decoded::Frame(f) => {
                assert_eq!(f.index, next);
                assert_eq!(f.values.len(), n);
                next += 1;
            }
            Decoded::Gap { frames, .. } => {
                assert!(*frames > 0);
                next += frames;
            }
        }
    }
    assert_eq!(stats.frames + stats.frames_lost, next);
    assert!(stats.bytes_skipped <= rest.len() as u64);

    let mut host = BitalinoHost::new(&s);
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let mut t = 0.0;
    for _ in 0..20 {
        t += 0.1;
        host.on_tick(t, &mut out);
        if host.device().is_none() {
            host.on_bytes(t, b"BITalino_v5.1\n", &mut out);
        }
    }
    out.clear();
    host.on_bytes(t, rest, &mut out);
    host.stop(&mut out);
    assert_eq!(out.decoded, whole, "the host decodes as the decoder");
}

/// Any bytes into a host at the start of its session (during the drain and the version wait):
/// never panics, and whole or in chunks (arriving at the same times) it ends in the same phase
/// with the same device.
pub fn start_bytes(data: &[u8]) {
    let run = |cut: usize| {
        let mut host = BitalinoHost::new(&Settings::default());
        let mut out = HostOut::default();
        host.start(0.0, &mut out);
        // Half the bytes during the drain, half after the version request, at the same
        // times however they are chunked.
        let (early, late) = data.split_at(data.len() / 2);
        for chunk in early.chunks(cut.max(1)) {
            host.on_bytes(0.05, chunk, &mut out);
        }
        host.on_tick(0.2, &mut out);
        for chunk in late.chunks(cut.max(1)) {
            host.on_bytes(0.25, chunk, &mut out);
        }
        let mut t = 0.25;
        for _ in 0..50 {
            t += 0.1;
            host.on_tick(t, &mut out);
        }
        (
            host.phase().clone(),
            host.device().map(str::to_owned),
            out.write.len(),
        )
    };
    let whole = run(data.len() + 1);
    let cut = data.first().map_or(1, |&b| usize::from(b % 16) + 1);
    let split = run(cut);
    assert_eq!((whole.0, whole.1), (split.0, split.1), "chunks of {cut}");
}

/// Frames packed from any values decode to those values (6-bit channels truncated), in order,
/// with no gap and no byte skipped (a lone frame locks nothing: locking takes two).
pub fn round_trip(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(head % 6) + 1;
    let mut bytes = Vec::new();
    let mut sent = Vec::new();
    for (i, c) in rest.chunks_exact(2 * n).enumerate() {
        let adc: Vec<u16> = c
            .chunks_exact(2)
            .map(|w| u16::from_le_bytes([w[0], w[1]]) & 0x3FF)
            .collect();
        pack(&adc, c[0] >> 4, i as u8, &mut bytes);
        sent.push(adc);
    }
    let mut d = Decoder::new(settings(n).conversions());
    let mut out = Vec::new();
    d.feed(&bytes, &mut out);
    d.finish(&mut out);
    assert_eq!(out.len(), if sent.len() >= 2 { sent.len() } else { 0 });
    assert_eq!(d.stats().bytes_skipped, 0);
    for (i, (got, adc)) in out.iter().zip(&sent).enumerate() {
        let Decoded::Frame(f) = got else {
            panic!("gap in a clean stream: {got:?}")
        };
        assert_eq!(f.index, i as u64);
        for (k, (v, &a)) in f.values.iter().zip(adc).enumerate() {
            let want = if frame::bits_at(k) == 6 { a >> 4 } else { a };
            assert_eq!(v.raw, f64::from(want));
        }
    }
    if let Some(first) = bytes.get(..frame::frame_len(n)) {
        assert!(frame::crc_ok(first));
        assert_eq!(unpack(first, n).seq, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn fuzz_bodies_hold_on_seeded_inputs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for len in [0, 1, 2, 3, 7, 64, 500, 4000] {
            for _ in 0..20 {
                let data: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                crate::protocol::bitalino::fuzz(&data);
            }
        }
        // A real stream, whole and damaged.
        let mut clean = vec![0u8];
        for i in 0..300u16 {
            pack(&[i % 1024], 0, i as u8, &mut clean);
        }
        stream_bytes(&clean);
        start_bytes(b"\x00\x08BITalino_v5.1\n\x00\x08\x0e");
        clean[100] ^= 0x10;
        clean.remove(200);
        stream_bytes(&clean);
    }
}
