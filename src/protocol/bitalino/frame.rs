//! One BITalino (r)evolution frame: its length, its CRC-4, packing and unpacking. Pure.
//!
//! Layout and CRC: `firmware-protocols/bitalino/SPEC.md` §3–§4 (from the firmware's `live.c` and
//! `uart.c`; the same table and bit order as both vendor decoders).

/// Most analog channels a frame carries.
pub const MAX_CHANNELS: usize = 6;

/// The CRC-4 table of x⁴ + x + 1: `T[i] = i·x⁴ mod P`.
const CRC_TABLE: [u8; 16] = [0, 3, 6, 5, 12, 15, 10, 9, 11, 8, 13, 14, 7, 4, 1, 2];

/// Bytes in a frame that carries `n` analog channels (0..=6; 0 is what the firmware sends for an
/// empty start mask, which attune never asks for).
///
/// # Panics
/// If `n > 6`.
pub const fn frame_len(n: usize) -> usize {
    [2, 3, 4, 6, 7, 8, 8][n]
}

/// The CRC-4 of a frame (or of the 16-byte state reply): every byte but the last, nibble by
/// nibble, high nibble first, then the last byte's high nibble (the sequence number, or the
/// state's digital ports), then one round with a zero nibble. The result belongs in the last
/// byte's low nibble.
pub fn crc4(bytes: &[u8]) -> u8 {
    let Some((&last, body)) = bytes.split_last() else {
        return 0;
    };
    let mut c = 0u8;
    for &b in body {
        c = CRC_TABLE[usize::from(c)] ^ (b >> 4);
        c = CRC_TABLE[usize::from(c)] ^ (b & 0x0F);
    }
    c = CRC_TABLE[usize::from(c)] ^ (last >> 4);
    CRC_TABLE[usize::from(c)]
}

/// Whether the last byte's low nibble is the CRC-4 of the rest.
pub fn crc_ok(bytes: &[u8]) -> bool {
    bytes.last().is_some_and(|&last| last & 0x0F == crc4(bytes))
}

/// A frame's contents as the wire carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    /// Sequence number, 0..=15 (wraps).
    pub seq: u8,
    /// Digital ports, bit 3..0 = I1 I2 O1 O2.
    pub digital: u8,
    /// Analog values in acquisition order: 10-bit for the first four, 6-bit for the 5th and 6th
    /// (`adc10 >> 4`); only the first `n` are meaningful.
    pub analog: [u16; MAX_CHANNELS],
}

/// The bit depth of the `i`-th acquired channel (0-based): 10, or 6 for the 5th and 6th.
pub const fn bits_at(i: usize) -> u8 {
    if i < 4 { 10 } else { 6 }
}

/// Unpacks a frame of `n` channels (`frame.len() == frame_len(n)`; the CRC is not checked).
///
/// # Panics
/// If the length does not match `n`.
pub fn unpack(frame: &[u8], n: usize) -> RawFrame {
    let len = frame_len(n);
    assert_eq!(frame.len(), len, "a {n}-channel frame has {len} bytes");
    // b(k) = B[N-k], counted from the end of the frame as SPEC.md writes it.
    let b = |k: usize| u16::from(frame[len - k]);
    let mut analog = [0u16; MAX_CHANNELS];
    if n > 0 {
        analog[0] = (b(2) & 0x0F) << 6 | b(3) >> 2;
    }
    if n > 1 {
        analog[1] = (b(3) & 0x03) << 8 | b(4);
    }
    if n > 2 {
        analog[2] = b(5) << 2 | b(6) >> 6;
    }
    if n > 3 {
        analog[3] = (b(6) & 0x3F) << 4 | b(7) >> 4;
    }
    if n > 4 {
        analog[4] = (b(7) & 0x0F) << 2 | b(8) >> 6;
    }
    if n > 5 {
        analog[5] = b(8) & 0x3F;
    }
    RawFrame {
        seq: frame[len - 1] >> 4,
        digital: frame[len - 2] >> 4,
        analog,
    }
}

/// Packs a frame as the firmware does and appends it to `out`: `adc10` holds one 10-bit value
/// per acquired channel (0..=6 of them, values above 1023 are masked), of which the 5th and 6th
/// travel as `adc10 >> 4`; `digital` is I1 I2 O1 O2 in bits 3..0; `seq` is taken mod 16. The CRC
/// is computed.
pub fn pack(adc10: &[u16], digital: u8, seq: u8, out: &mut Vec<u8>) {
    let n = adc10.len().min(MAX_CHANNELS);
    let mut a = [0u16; MAX_CHANNELS];
    for (dst, &v) in a.iter_mut().zip(adc10) {
        *dst = v & 0x3FF;
    }
    let (a4, a5) = (a[4] >> 4, a[5] >> 4);
    // The firmware's 8-byte frame, [0] first on the wire; a shorter frame is its tail.
    let lo = |v: u16| (v & 0xFF) as u8;
    let full = [
        lo(a4 << 6 | a5),
        lo(a[3] << 4 | a4 >> 2),
        lo(a[2] << 6 | a[3] >> 4),
        lo(a[2] >> 2),
        lo(a[1]),
        lo(a[0] << 2 | a[1] >> 8),
        (digital & 0x0F) << 4 | lo(a[0] >> 6),
        (seq & 0x0F) << 4,
    ];
    let start = out.len();
    out.extend_from_slice(&full[8 - frame_len(n)..]);
    let crc = crc4(&out[start..]);
    if let Some(last) = out.last_mut() {
        *last |= crc;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The python-api's bit-serial CRC (`revolution-python-api` `bitalino.py`, `read()`): shift
    /// every bit of every byte, the CRC nibble zeroed, through x⁴ + x + 1.
    fn crc4_bit_serial(frame: &[u8]) -> u8 {
        let mut x = 0u8;
        for (i, &byte) in frame.iter().enumerate() {
            let byte = if i + 1 == frame.len() {
                byte & 0xF0
            } else {
                byte
            };
            for bit in (0..8).rev() {
                x <<= 1;
                if x & 0x10 != 0 {
                    x ^= 0x03;
                }
                x ^= (byte >> bit) & 1;
            }
        }
        x & 0x0F
    }

    #[test]
    fn table_crc_equals_the_python_api_bit_serial_crc_on_random_frames() {
        let mut rng = ChaCha8Rng::seed_from_u64(0xB17A);
        for _ in 0..20_000 {
            let len = [2, 3, 4, 6, 7, 8, 8, 16][rng.random_range(0..8)];
            let frame: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            assert_eq!(crc4(&frame), crc4_bit_serial(&frame), "{frame:02x?}");
        }
    }

    #[test]
    fn worked_example_from_the_spec() {
        // Nibbles 0,0,0,8 give c = 0,0,0,8; seq 0 gives T[8] = 11; the zero round T[11] = 14.
        assert_eq!(crc4(&[0x00, 0x08, 0x0E]), 0x0E);
        assert!(crc_ok(&[0x00, 0x08, 0x0E]));
        assert!(!crc_ok(&[0x01, 0x08, 0x0E]));
    }

    #[test]
    fn every_single_bit_flip_fails_the_crc() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in 0..=6 {
            for _ in 0..200 {
                let adc: Vec<u16> = (0..n).map(|_| rng.random_range(0..1024)).collect();
                let mut f = Vec::new();
                pack(
                    &adc,
                    rng.random_range(0..16),
                    rng.random_range(0..16),
                    &mut f,
                );
                assert!(crc_ok(&f));
                for bit in 0..f.len() * 8 {
                    let mut g = f.clone();
                    g[bit / 8] ^= 1 << (bit % 8);
                    assert!(!crc_ok(&g), "n {n}, bit {bit}: {g:02x?}");
                }
            }
        }
    }

    #[test]
    fn frame_lengths_follow_the_closed_form() {
        for n in 1..=6usize {
            let bits = if n <= 4 {
                12 + 10 * n
            } else {
                52 + 6 * (n - 4)
            };
            assert_eq!(frame_len(n), bits.div_ceil(8), "n {n}");
        }
    }

    #[test]
    fn pack_then_unpack_round_trips_with_six_bit_truncation() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for n in 0..=6 {
            for _ in 0..500 {
                let adc: Vec<u16> = (0..n).map(|_| rng.random_range(0..1024)).collect();
                let (digital, seq) = (rng.random_range(0..16), rng.random_range(0..16));
                let mut f = Vec::new();
                pack(&adc, digital, seq, &mut f);
                assert_eq!(f.len(), frame_len(n));
                let r = unpack(&f, n);
                assert_eq!((r.seq, r.digital), (seq, digital));
                for (i, &v) in adc.iter().enumerate() {
                    let want = if bits_at(i) == 6 { v >> 4 } else { v };
                    assert_eq!(r.analog[i], want, "n {n} channel {i}");
                }
            }
        }
    }
}
