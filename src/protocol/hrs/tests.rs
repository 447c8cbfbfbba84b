//! Unit tests: every flags value, the golden vectors H1–H10 of DEVICES.md §1.2, the RR edge
//! cases, the encoder, Body Sensor Location and Battery Level. Expected values are built from the
//! fields by hand here, never by calling the decoder's helpers. `vectors.json`: `vectors.rs`;
//! properties: `proptests.rs`.

use super::*;

/// u8 HR of [`frame`]: 171 bpm. Its u16 HR is `23 01` = 0x0123 = 291 bpm (does not fit a u8),
/// its EE `56 04` = 0x0456 = 1110 kJ, its RR `21 03 00 04` = 0x0321, 0x0400 = 801, 1024.
const HR8: u8 = 0xAB;

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
        .collect()
}

/// The frame for `flags` with the fields above, laid out by hand: flags, HR (u8 or u16 LE), EE
/// if bit 3, both RR if bit 4.
fn frame(flags: u8) -> Vec<u8> {
    let mut b = vec![flags];
    if flags & 0x01 != 0 {
        b.extend([0x23, 0x01]);
    } else {
        b.push(HR8);
    }
    if flags & 0x08 != 0 {
        b.extend([0x56, 0x04]);
    }
    if flags & 0x10 != 0 {
        b.extend([0x21, 0x03, 0x00, 0x04]);
    }
    b
}

/// What DEVICES.md §1.1's contact table says for bits 1–2.
fn contact_of(flags: u8) -> Option<bool> {
    match (flags & 0x04 != 0, flags & 0x02 != 0) {
        (false, _) => None,           // 00, 01: not supported
        (true, false) => Some(false), // 10: supported, no contact
        (true, true) => Some(true),   // 11: supported, contact
    }
}

#[test]
fn every_flags_value_decodes_each_field() {
    // All 256 values: the 32 combinations of bits 0–4, each with every pattern of reserved bits.
    for flags in 0..=255u8 {
        let b = frame(flags);
        let want_len = 1
            + [1, 2][usize::from(flags & 1)]
            + [0, 2][usize::from(flags >> 3 & 1)]
            + [0, 4][usize::from(flags >> 4 & 1)];
        assert_eq!(b.len(), want_len, "frame length for {flags:#04x}");
        let m = decode(&b).unwrap_or_else(|e| panic!("{flags:#04x}: {e}"));
        let low = flags & 0x1F;
        assert_eq!(m.hr_u16, low & 1 == 1, "{flags:#04x} hr_u16");
        let hr = if low & 1 == 1 { 291 } else { 171 };
        assert_eq!(m.hr_bpm, hr, "{flags:#04x} hr");
        assert_eq!(m.contact, contact_of(flags), "{flags:#04x} contact");
        let ee = (low & 0x08 != 0).then_some(1110);
        assert_eq!(m.energy_kj, ee, "{flags:#04x} EE");
        assert_eq!(m.rr_present, low & 0x10 != 0, "{flags:#04x} rr_present");
        let rr: &[u16] = if low & 0x10 != 0 { &[801, 1024] } else { &[] };
        assert_eq!(m.rr_raw, rr, "{flags:#04x} RR");
        assert!(!m.trailing_byte, "{flags:#04x} trailing");
        // Reserved bits change nothing.
        assert_eq!(decode(&frame(low)), Ok(m), "{flags:#04x} vs {low:#04x}");
    }
}

#[test]
fn every_flags_value_truncated_at_every_length_is_an_error() {
    for flags in 0..=255u8 {
        let full = frame(flags);
        let hr_end = if flags & 1 == 1 { 3 } else { 2 };
        let header = hr_end + if flags & 0x08 != 0 { 2 } else { 0 };
        for len in 1..header {
            let (field, need) = if len < hr_end {
                ("heart_rate", hr_end)
            } else {
                ("energy_expended", header)
            };
            assert_eq!(
                decode(&full[..len]),
                Err(HrsError::Truncated {
                    field,
                    need,
                    got: len
                }),
                "{flags:#04x} cut to {len}"
            );
        }
        assert!(decode(&full[..header]).is_ok(), "{flags:#04x} header only");
    }
}

#[test]
fn h1_u8_hr_contact_one_rr() {
    let m = decode(&hex("16 3C 20 03")).expect("H1");
    assert_eq!(
        m,
        Measurement {
            hr_bpm: 60,
            hr_u16: false,
            contact: Some(true),
            energy_kj: None,
            rr_present: true,
            rr_raw: vec![800],
            trailing_byte: false,
        }
    );
    assert_eq!(rr_ms(800), 781.25);
}

#[test]
fn h2_u16_hr_contact_energy_two_rr() {
    let m = decode(&hex("1F 2C 01 10 00 00 04 00 02")).expect("H2");
    assert_eq!(
        m,
        Measurement {
            hr_bpm: 300,
            hr_u16: true,
            contact: Some(true),
            energy_kj: Some(16),
            rr_present: true,
            rr_raw: vec![1024, 512],
            trailing_byte: false,
        }
    );
    assert_eq!((rr_ms(1024), rr_ms(512)), (1000.0, 500.0));
}

fn hr72(contact: Option<bool>) -> Measurement {
    Measurement {
        hr_bpm: 72,
        contact,
        ..Measurement::default()
    }
}

#[test]
fn h3_h4_h5_contact_variants() {
    assert_eq!(decode(&hex("00 48")), Ok(hr72(None)), "H3 unsupported");
    assert_eq!(
        decode(&hex("04 48")),
        Ok(hr72(Some(false))),
        "H4 no contact"
    );
    assert_eq!(
        decode(&hex("02 48")),
        Ok(hr72(None)),
        "H5 bit 1 without bit 2"
    );
    assert_eq!(decode(&hex("06 48")), Ok(hr72(Some(true))), "11: contact");
}

#[test]
fn h6_two_rr() {
    let m = decode(&hex("10 48 DA 03 E4 03")).expect("H6");
    assert_eq!((m.hr_bpm, m.contact, m.energy_kj), (72, None, None));
    assert_eq!(m.rr_raw, [986, 996]);
    assert!(m.rr_present && !m.trailing_byte);
    assert_eq!((rr_ms(986), rr_ms(996)), (962.890625, 972.65625));
}

#[test]
fn h7_odd_trailing_byte_keeps_the_rr_before_it() {
    let m = decode(&hex("10 48 DA 03 E4")).expect("H7");
    assert_eq!(m.hr_bpm, 72);
    assert_eq!(m.rr_raw, [986]);
    assert!(m.rr_present && m.trailing_byte);
}

#[test]
fn h8_reserved_bits_are_ignored() {
    assert_eq!(decode(&hex("E0 48")), Ok(hr72(None)));
}

#[test]
fn h9_u16_hr_with_one_byte_is_truncated() {
    assert_eq!(
        decode(&hex("01 48")),
        Err(HrsError::Truncated {
            field: "heart_rate",
            need: 3,
            got: 2
        })
    );
}

#[test]
fn h10_empty_is_an_error() {
    assert_eq!(decode(&[]), Err(HrsError::Empty));
}

#[test]
fn flags_alone_is_truncated() {
    assert_eq!(
        decode(&[0x10]),
        Err(HrsError::Truncated {
            field: "heart_rate",
            need: 2,
            got: 1
        })
    );
}

#[test]
fn polar_h10_and_h7_style_flags() {
    // DEVICES.md via the brief: an H10 sends flags 0x10 (contact not supported), an H7 0x16.
    let h10 = decode(&hex("10 40 00 03")).expect("0x10");
    assert_eq!((h10.contact, h10.rr_raw.as_slice()), (None, &[768][..]));
    let h7 = decode(&hex("16 40 00 03")).expect("0x16");
    assert_eq!((h7.contact, h7.rr_raw.as_slice()), (Some(true), &[768][..]));
}

#[test]
fn nine_rr_with_u8_hr_fill_20_bytes() {
    let rr: Vec<u16> = (0..9).map(|i| 700 + 10 * i).collect();
    let mut b = vec![0x10, 80];
    for r in &rr {
        b.extend(r.to_le_bytes());
    }
    assert_eq!(b.len(), 20, "the default-MTU payload");
    let m = decode(&b).expect("9 RR");
    assert_eq!(m.rr_raw, rr);
    assert!(!m.trailing_byte);
}

#[test]
fn eight_and_seven_rr_are_the_most_that_fit_20_bytes_with_longer_headers() {
    // u16 HR: 8 RR; u8 HR + EE: 8 RR; u16 HR + EE: 7 RR (DEVICES.md §1.1).
    for (flags, header, n) in [(0x11u8, 3usize, 8usize), (0x18, 4, 8), (0x19, 5, 7)] {
        let mut b = vec![flags];
        b.resize(header, 0x01);
        for i in 0..n {
            b.extend((900 + i as u16).to_le_bytes());
        }
        assert!(
            b.len() <= 20 && b.len() + 2 > 20,
            "{flags:#04x}: {} bytes",
            b.len()
        );
        let m = decode(&b).expect("full frame");
        assert_eq!(m.rr_raw, (0..n).map(|i| 900 + i as u16).collect::<Vec<_>>());
    }
}

#[test]
fn any_number_of_rr_is_kept() {
    // Longer than any default-MTU notification: the decoder does not cap the count.
    let mut b = vec![0x10, 60];
    for i in 0..100u16 {
        b.extend((1000 + i).to_le_bytes());
    }
    b.push(0x7F);
    let m = decode(&b).expect("100 RR");
    assert_eq!(m.rr_raw.len(), 100);
    assert_eq!(
        (m.rr_raw.first(), m.rr_raw.last()),
        (Some(&1000), Some(&1099))
    );
    assert!(m.trailing_byte);
}

#[test]
fn rr_bit_without_rr_bytes_is_an_empty_list() {
    let m = decode(&hex("10 48")).expect("bit 4, no RR");
    assert!(m.rr_present && m.rr_raw.is_empty() && !m.trailing_byte);
    let m = decode(&hex("19 48 00 10 00")).expect("u16 + EE, bit 4, no RR");
    assert!(m.rr_present && m.rr_raw.is_empty());
    assert_eq!((m.hr_bpm, m.energy_kj), (72, Some(16)));
    let m = decode(&hex("10 48 07")).expect("bit 4, one odd byte");
    assert!(m.rr_present && m.rr_raw.is_empty() && m.trailing_byte);
}

#[test]
fn u16_hr_energy_and_rr_together() {
    let m = decode(&hex("19 2C 01 E8 03 00 03 20 03")).expect("u16 + EE + RR");
    assert_eq!((m.hr_bpm, m.energy_kj), (300, Some(1000)));
    assert_eq!(m.rr_raw, [768, 800]);
    assert_eq!(m.contact, None);
}

#[test]
fn bytes_after_the_header_without_rr_bit_are_ignored() {
    let m = decode(&hex("00 48 DA 03 E4")).expect("no bit 4, tail");
    assert_eq!(m, hr72(None));
}

#[test]
fn energy_is_little_endian_kj() {
    let m = decode(&hex("08 48 34 12")).expect("EE");
    assert_eq!(m.energy_kj, Some(0x1234));
}

#[test]
fn encode_golden_frames() {
    assert_eq!(
        encode(&decode(&hex("16 3C 20 03")).expect("H1")),
        hex("16 3C 20 03")
    );
    assert_eq!(
        encode(&decode(&hex("1F 2C 01 10 00 00 04 00 02")).expect("H2")),
        hex("1F 2C 01 10 00 00 04 00 02")
    );
    assert_eq!(encode(&hr72(None)), hex("00 48"));
    assert_eq!(encode(&hr72(Some(false))), hex("04 48"));
    assert_eq!(encode(&hr72(Some(true))), hex("06 48"));
}

#[test]
fn encode_widens_hr_above_255_and_keeps_rr() {
    let m = Measurement {
        hr_bpm: 256,
        hr_u16: false,
        rr_present: false,
        rr_raw: vec![1024],
        trailing_byte: true,
        ..Measurement::default()
    };
    // u16 HR, bit 4 set because RR are there, no trailing byte written.
    assert_eq!(encode(&m), hex("11 00 01 00 04"));
    let back = decode(&encode(&m)).expect("re-decode");
    assert!(back.hr_u16 && back.rr_present && !back.trailing_byte);
    assert_eq!((back.hr_bpm, back.rr_raw), (256, vec![1024]));
}

#[test]
fn encode_empty_rr_list_with_bit_4() {
    let m = Measurement {
        hr_bpm: 72,
        rr_present: true,
        ..Measurement::default()
    };
    assert_eq!(encode(&m), hex("10 48"));
}

#[test]
fn rr_to_ms_is_exact() {
    assert_eq!(rr_ms(0), 0.0);
    assert_eq!(rr_ms(1), 0.9765625);
    assert_eq!(rr_ms(u16::MAX), 63999.0234375);
}

#[test]
fn body_location_every_code() {
    let named = [
        (0, BodyLocation::Other, "other"),
        (1, BodyLocation::Chest, "chest"),
        (2, BodyLocation::Wrist, "wrist"),
        (3, BodyLocation::Finger, "finger"),
        (4, BodyLocation::Hand, "hand"),
        (5, BodyLocation::EarLobe, "ear_lobe"),
        (6, BodyLocation::Foot, "foot"),
    ];
    for (code, loc, name) in named {
        assert_eq!(body_location(&[code]), Ok(loc), "{code}");
        assert_eq!((loc.name(), loc.code()), (name, code));
    }
    for code in 7..=255u8 {
        let loc = body_location(&[code]).expect("reserved is not an error");
        assert_eq!(loc, BodyLocation::Unknown(code));
        assert_eq!((loc.name(), loc.code()), ("unknown", code));
    }
    assert_eq!(
        body_location(&[1, 0xFF]),
        Ok(BodyLocation::Chest),
        "first byte"
    );
    assert_eq!(
        body_location(&[]),
        Err(HrsError::Truncated {
            field: "body_sensor_location",
            need: 1,
            got: 0
        })
    );
}

#[test]
fn battery_level() {
    assert_eq!(battery_percent(&[0]), Ok(0));
    assert_eq!(battery_percent(&[87]), Ok(87));
    assert_eq!(battery_percent(&[100]), Ok(100));
    assert_eq!(
        battery_percent(&[101]),
        Err(BatteryError::OutOfRange { value: 101 })
    );
    assert_eq!(
        battery_percent(&[255]),
        Err(BatteryError::OutOfRange { value: 255 })
    );
    assert_eq!(battery_percent(&[]), Err(BatteryError::Empty));
    assert_eq!(battery_percent(&[42, 200]), Ok(42), "first byte");
}

#[test]
fn fuzz_body_accepts_every_input_up_to_two_bytes() {
    fuzz(&[]);
    for a in 0..=255u8 {
        fuzz(&[a]);
        for b in 0..=255u8 {
            fuzz(&[a, b]);
        }
    }
}

#[test]
fn fuzz_body_accepts_every_flags_value_with_long_tails() {
    for flags in 0..=255u8 {
        for len in 0..24 {
            let mut b = vec![flags];
            b.extend((0..len).map(|i| (i * 37 + 11) as u8));
            fuzz(&b);
        }
    }
}
