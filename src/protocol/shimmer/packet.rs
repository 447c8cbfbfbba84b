//! Data packets: channel ids and sizes, the packet layout an inquiry announces, and the
//! structural checks that stand in for an integrity check when the CRC is off.
//!
//! ```text
//! 0x00 | timestamp u24 LE (32768 Hz ticks) | channels in inquiry order | CRC (0, 1 or 2 B)
//! ```
//!
//! Sources: `../../../shared/DEVICES.md` §5 (`3P` pyshimmer `dev/channels.py`: ids and sizes);
//! `VENDOR` `log-and-stream-common` `Sensing/shimmer_sensing.h` (`[Header(1)][Timestamp(3)]
//! [Sensor Data(N)][CRC(N)]`) and `Sensing/shimmer_sensing.c` `ShimSens_saveData` (the CRC covers
//! the whole packet, header included).

use super::GsrRange;
use super::crc;
use super::gsr::{self, ADC_MAX};
use crate::model::StreamKind;
use crate::protocol::{ChannelInfo, MAX_CHANNELS, Value};

/// GSR raw channel id.
pub const CH_GSR: u8 = 0x1C;
/// Internal ADC A13 channel id (PPG on a GSR+).
pub const CH_ADC13: u8 = 0x12;
/// The data packet header byte.
pub const DATA_PACKET: u8 = 0x00;
/// Bytes before the channels: header + u24 timestamp.
pub const HEADER_LEN: usize = 4;
/// The timestamp counter's modulus.
pub const TS_MOD: u32 = 1 << 24;
/// Device clock, Hz.
pub const TICK_HZ: f64 = 32768.0;

/// The size in bytes of a channel id's sample (DEVICES.md §5 table), or `None` if unknown.
pub fn channel_size(id: u8) -> Option<usize> {
    match id {
        0x00..=0x13 => Some(2), // accel, VBATT, gyro, mag, external + internal ADC
        0x1A => Some(2),        // BMP temperature
        0x1B => Some(3),        // BMP pressure
        0x1C => Some(2),        // GSR
        0x1D | 0x20 => Some(1), // ExG status
        0x1E | 0x1F | 0x21 | 0x22 => Some(3),
        0x23..=0x26 => Some(2),
        0x27 | 0x28 => Some(2),
        _ => None, // 0x14–0x19 (sizes unknown) and anything else
    }
}

/// What attune does with a channel of the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// GSR (0x1C): 12-bit ADC + range bits.
    Gsr,
    /// A 12-bit ADC in a u16 LE (ADC13 = PPG).
    Adc12,
}

/// The packet layout of a session: channel order, size, CRC length, the GSR range to expect.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    ids: Vec<u8>,
    fields: Vec<Field>,
    gsr_range: GsrRange,
    crc_len: usize,
}

/// Why a complete candidate packet is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bad {
    /// The first byte is not 0x00.
    Header,
    /// The appended CRC does not match.
    Crc,
    /// A 12-bit ADC field has bits 12..15 (GSR: 12..13) set.
    HighBits,
    /// The GSR range bits differ from the configured fixed range.
    Range,
}

/// A structurally valid packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// The u24 timestamp, ticks of 1/32768 s.
    pub ts: u32,
    /// The raw channel words, in layout order (the first `n` are used).
    pub raw: [u16; MAX_CHANNELS],
    /// Channels used.
    pub n: usize,
}

impl Layout {
    /// The layout for channel ids in packet order; `Err` names the first id attune cannot
    /// decode (unknown size, or a known channel attune does not acquire).
    pub fn new(ids: &[u8], gsr_range: GsrRange, crc_len: usize) -> Result<Self, String> {
        if ids.len() > MAX_CHANNELS {
            return Err(format!("{} channels (at most {MAX_CHANNELS})", ids.len()));
        }
        let fields = ids
            .iter()
            .map(|&id| match id {
                CH_GSR => Ok(Field::Gsr),
                CH_ADC13 => Ok(Field::Adc12),
                other => Err(match channel_size(other) {
                    None => format!("channel id 0x{other:02X} has no known size"),
                    Some(_) => format!("channel id 0x{other:02X} is not one attune acquires"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            ids: ids.to_vec(),
            fields,
            gsr_range,
            crc_len: crc_len.min(2),
        })
    }

    /// The channel ids in packet order.
    pub fn ids(&self) -> &[u8] {
        &self.ids
    }

    /// Packet length without the CRC.
    pub fn payload_len(&self) -> usize {
        HEADER_LEN + 2 * self.fields.len()
    }

    /// Packet length on the wire.
    pub fn frame_len(&self) -> usize {
        self.payload_len() + self.crc_len
    }

    /// CRC bytes per packet / reply (0, 1 or 2).
    pub fn crc_len(&self) -> usize {
        self.crc_len
    }

    /// Checks a complete candidate (`bytes` holds at least [`Layout::frame_len`] bytes).
    pub fn check(&self, bytes: &[u8]) -> Result<Packet, Bad> {
        let frame = bytes.get(..self.frame_len()).ok_or(Bad::Header)?;
        if frame.first() != Some(&DATA_PACKET) {
            return Err(Bad::Header);
        }
        if !crc::crc_ok(frame, self.crc_len) {
            return Err(Bad::Crc);
        }
        let b = |i: usize| u32::from(frame.get(i).copied().unwrap_or(0));
        let ts = b(1) | b(2) << 8 | b(3) << 16;
        let mut raw = [0u16; MAX_CHANNELS];
        for (i, (field, slot)) in self.fields.iter().zip(raw.iter_mut()).enumerate() {
            let at = HEADER_LEN + 2 * i;
            let word = (b(at) | b(at + 1) << 8) as u16;
            match field {
                Field::Adc12 if word > ADC_MAX => return Err(Bad::HighBits),
                Field::Gsr if word & 0x3000 != 0 => return Err(Bad::HighBits),
                Field::Gsr
                    if self
                        .gsr_range
                        .fixed()
                        .is_some_and(|r| u16::from(r) != word >> 14) =>
                {
                    return Err(Bad::Range);
                }
                _ => {}
            }
            *slot = word;
        }
        Ok(Packet {
            ts,
            raw,
            n: self.fields.len(),
        })
    }

    /// The values of a packet, in channel order.
    pub fn values(&self, p: &Packet) -> Vec<Value> {
        self.fields
            .iter()
            .zip(p.raw.iter())
            .map(|(field, &word)| match field {
                Field::Gsr => Value {
                    raw: f64::from(word),
                    value: gsr::gsr(word, self.gsr_range).g_us(),
                },
                Field::Adc12 => Value {
                    raw: f64::from(word),
                    value: Ok(gsr::adc_mv(word)),
                },
            })
            .collect()
    }

    /// What each channel is.
    pub fn channels(&self, rate_hz: f64) -> Vec<ChannelInfo> {
        self.fields
            .iter()
            .map(|field| match field {
                Field::Gsr => ChannelInfo {
                    input: "GSR".into(),
                    kind: StreamKind::Eda,
                    rate_hz,
                    conversion: "shimmer-gsr-sdk".into(),
                    bits: Some(12),
                },
                Field::Adc12 => ChannelInfo {
                    input: "ADC13".into(),
                    kind: StreamKind::Ppg,
                    rate_hz,
                    conversion: "shimmer-adc-mv".into(),
                    bits: Some(12),
                },
            })
            .collect()
    }
}

/// Appends one packet: header, `ts` (low 24 bits), the words in order, the CRC.
pub fn encode(ts: u32, words: &[u16], crc_len: usize, out: &mut Vec<u8>) {
    let from = out.len();
    out.push(DATA_PACKET);
    out.extend_from_slice(&ts.to_le_bytes()[..3]);
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
    crc::append_crc(out, from, crc_len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyshimmer_packet_and_derived_two_channel_packet() {
        let l = Layout::new(&[CH_ADC13], GsrRange::Auto, 0).unwrap_or_else(|e| panic!("{e}"));
        let p = l.check(&[0x00, 0xDE, 0xD0, 0xB2, 0x26, 0x07]);
        assert_eq!(p.map(|p| (p.ts, p.raw[0])), Ok((0xB2D0DE, 1830)));
        let l =
            Layout::new(&[CH_ADC13, CH_GSR], GsrRange::Auto, 0).unwrap_or_else(|e| panic!("{e}"));
        let p = l.check(&[0x00, 0x00, 0x80, 0x00, 0x26, 0x07, 0x24, 0x43]);
        assert_eq!(
            p.map(|p| (p.ts, p.raw[0], p.raw[1])),
            Ok((32768, 1830, 0x4324))
        );
    }

    #[test]
    fn structural_checks() {
        let fixed =
            Layout::new(&[CH_ADC13, CH_GSR], GsrRange::R1, 0).unwrap_or_else(|e| panic!("{e}"));
        let ok = [0x00, 0, 0, 0, 0x26, 0x07, 0x24, 0x43];
        assert!(fixed.check(&ok).is_ok());
        assert_eq!(
            fixed.check(&[0x01, 0, 0, 0, 0x26, 0x07, 0x24, 0x43]),
            Err(Bad::Header)
        );
        assert_eq!(
            fixed.check(&[0x00, 0, 0, 0, 0x26, 0x17, 0x24, 0x43]),
            Err(Bad::HighBits)
        );
        assert_eq!(
            fixed.check(&[0x00, 0, 0, 0, 0x26, 0x07, 0x24, 0x53]),
            Err(Bad::HighBits)
        );
        assert_eq!(
            fixed.check(&[0x00, 0, 0, 0, 0x26, 0x07, 0x24, 0x83]),
            Err(Bad::Range)
        );
        assert_eq!(fixed.check(&ok[..7]), Err(Bad::Header));
        assert!(Layout::new(&[0x14], GsrRange::Auto, 0).is_err());
        assert!(Layout::new(&[0x03], GsrRange::Auto, 0).is_err());
    }
}
