//! The Shimmer link CRC: CRC-16 with the CCITT polynomial x¹⁶+x¹²+x⁵+1, processed MSB first,
//! seeded with 0xB0CA, and one zero byte appended when the message length is odd.
//!
//! Sources (`VENDOR`): `log-and-stream-common` `CRC/shimmer_swCrc.c` (`ShimSwCrc_byte`,
//! `ShimSwCrc_calc`), `CRC/shimmer_crc.h` (`CRC_INIT 0xB0CA`), `CRC/shimmer_crc.c`
//! (`calculateCrcAndInsert`: the low byte goes first, the high byte only in 2-byte mode;
//! `testCrcDriver`: the four self-test vectors checked below). On a Shimmer3 the firmware uses
//! the MSP430's CRC16 peripheral instead (`shimmer3` `LogAndStream_Shimmer3/Shimmer_Driver/
//! 5xx_HAL/hal_CRC.c`: 16-bit words written to `CRCDIRB`, the odd last byte as a word with a
//! zero high byte), which is where the zero pad comes from; Shimmer's own comments say the two
//! agree ("same conventions"). Not checked against a device.

/// The seed (`CRC_INIT`).
pub const CRC_INIT: u16 = 0xB0CA;

/// Folds one byte into the running CRC (`ShimSwCrc_byte`).
fn crc_byte(crc: u16, b: u8) -> u16 {
    let mut crc = crc.rotate_left(8);
    crc ^= u16::from(b);
    crc ^= (crc & 0xFF) >> 4;
    crc ^= crc << 12;
    crc ^= (crc & 0xFF) << 5;
    crc
}

/// The CRC of `data` (`ShimSwCrc_calc` / `platform_crcData16`).
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = data.iter().fold(CRC_INIT, |c, &b| crc_byte(c, b));
    if data.len() % 2 == 1 {
        crc = crc_byte(crc, 0);
    }
    crc
}

/// The `n` (0, 1 or 2) CRC bytes the firmware appends to `data`: low byte, then high byte.
pub fn crc_bytes(data: &[u8], n: usize) -> ([u8; 2], usize) {
    let [lo, hi] = crc16(data).to_le_bytes();
    ([lo, hi], n.min(2))
}

/// Appends the `n` CRC bytes of `out[from..]` to `out`.
pub fn append_crc(out: &mut Vec<u8>, from: usize, n: usize) {
    if n == 0 {
        return;
    }
    let (bytes, n) = crc_bytes(out.get(from..).unwrap_or(&[]), n);
    out.extend_from_slice(bytes.get(..n).unwrap_or(&[]));
}

/// Whether `frame` is `payload` followed by its `n` CRC bytes (`checkCrc`). `n == 0` is
/// always true.
pub fn crc_ok(frame: &[u8], n: usize) -> bool {
    if n == 0 {
        return true;
    }
    let Some(split) = frame.len().checked_sub(n) else {
        return false;
    };
    let (payload, tail) = frame.split_at(split);
    let (bytes, n) = crc_bytes(payload, n);
    bytes.get(..n) == Some(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `testCrcDriver` in `CRC/shimmer_crc.c`: 1..8, 1..9, 1..10, 1..11 → these two bytes.
    #[test]
    fn firmware_self_test_vectors() {
        let cases: [(usize, [u8; 2]); 4] = [
            (8, [0xAA, 0x48]),
            (9, [0x5D, 0x2A]),
            (10, [0x17, 0x8B]),
            (11, [0x4E, 0x79]),
        ];
        for (n, want) in cases {
            let msg: Vec<u8> = (1..=n as u8).collect();
            assert_eq!(crc16(&msg).to_le_bytes(), want, "1..={n}");
            let mut framed = msg.clone();
            append_crc(&mut framed, 0, 2);
            assert!(crc_ok(&framed, 2));
            assert!(crc_ok(&framed[..framed.len() - 1], 1));
        }
    }

    #[test]
    fn crc_ok_rejects_short_frames_and_flips() {
        assert!(!crc_ok(&[], 1));
        assert!(!crc_ok(&[0xFF], 2));
        assert!(crc_ok(&[0xFF], 0));
        let mut f = vec![0x00, 0x00, 0x80, 0x00, 0x26, 0x07, 0x24, 0x43];
        append_crc(&mut f, 0, 2);
        for bit in 0..f.len() * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            assert!(!crc_ok(&g, 2), "bit {bit}");
        }
    }
}
