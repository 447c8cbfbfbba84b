//! The body of the cargo-fuzz target `fuzz/fuzz_targets/hrs.rs`, kept in the library so that
//! `cargo test` runs exactly what the fuzzer runs. It panics only on a finding.

use super::{
    BatteryError, BodyLocation, FLAG_CONTACT, FLAG_CONTACT_SUPPORTED, FLAG_ENERGY, FLAG_HR_U16,
    FLAG_RR, HrsError, battery_percent, body_location, decode, encode, header_len,
};

/// Decodes `data` as a 0x2A37 value (and as 0x2A38 and 0x2A19 values) and checks the result
/// against the layout, never by calling the decoder's own helpers for the answer:
///
/// - `Err(Empty)` exactly for no bytes; `Err(Truncated)` exactly when `data` is shorter than the
///   flags' header, with `got` = the length and `need` > `got`.
/// - On `Ok`: every field matches its flag bit and bytes; with bit 4 the RR count is
///   `(len − header) / 2` and `trailing_byte` is whether that difference is odd; without it, no
///   RR and no trailing byte.
/// - `encode` gives back the canonical frame (reserved bits and a lone bit 1 cleared, any odd or
///   un-announced tail dropped), and decoding that gives the same measurement without the
///   trailing byte.
/// - Body location and battery take the first byte only.
pub fn fuzz(data: &[u8]) {
    check_measurement(data);
    check_location(data);
    check_battery(data);
}

fn check_measurement(data: &[u8]) {
    let Some(&flags) = data.first() else {
        assert_eq!(decode(data), Err(HrsError::Empty), "empty input");
        return;
    };
    let hr_len = if flags & FLAG_HR_U16 != 0 { 2 } else { 1 };
    let header = 1 + hr_len + 2 * usize::from(flags & FLAG_ENERGY != 0);
    assert_eq!(
        header_len(flags),
        header,
        "header length of flags {flags:#04x}"
    );
    let m = match decode(data) {
        Err(HrsError::Truncated { need, got, .. }) => {
            assert!(
                data.len() < header,
                "truncated but {} ≥ {header}",
                data.len()
            );
            assert_eq!(got, data.len(), "got is the length");
            assert!(need > got && need <= header, "need {need}, got {got}");
            return;
        }
        Err(e) => panic!("{e:?} for {} bytes", data.len()),
        Ok(m) => m,
    };
    assert!(
        data.len() >= header,
        "decoded a frame shorter than its header"
    );
    let byte = |i: usize| data.get(i).copied().map(u16::from).unwrap_or_default();
    let hr_u16 = flags & FLAG_HR_U16 != 0;
    let hr = if hr_u16 {
        byte(1) | byte(2) << 8
    } else {
        byte(1)
    };
    assert_eq!((m.hr_bpm, m.hr_u16), (hr, hr_u16), "heart rate");
    let contact = match flags >> 1 & 3 {
        0b10 => Some(false),
        0b11 => Some(true),
        _ => None,
    };
    assert_eq!(m.contact, contact, "contact of flags {flags:#04x}");
    let at = if hr_u16 { 3 } else { 2 };
    let ee = (flags & FLAG_ENERGY != 0).then(|| byte(at) | byte(at + 1) << 8);
    assert_eq!(m.energy_kj, ee, "energy expended");
    let tail = data.len() - header;
    assert_eq!(m.rr_present, flags & FLAG_RR != 0, "rr_present");
    if m.rr_present {
        assert_eq!(m.rr_raw.len(), tail / 2, "RR count");
        assert_eq!(m.trailing_byte, tail % 2 == 1, "trailing byte");
        for (k, r) in m.rr_raw.iter().enumerate() {
            let i = header + 2 * k;
            assert_eq!(*r, byte(i) | byte(i + 1) << 8, "RR {k}");
        }
    } else {
        assert!(m.rr_raw.is_empty() && !m.trailing_byte, "RR without bit 4");
    }

    let mut canonical = data
        .get(..header + 2 * m.rr_raw.len())
        .unwrap_or_default()
        .to_vec();
    if let Some(f) = canonical.first_mut() {
        *f &= FLAG_HR_U16 | FLAG_CONTACT | FLAG_CONTACT_SUPPORTED | FLAG_ENERGY | FLAG_RR;
        if *f & FLAG_CONTACT_SUPPORTED == 0 {
            *f &= !FLAG_CONTACT;
        }
    }
    let bytes = encode(&m);
    assert_eq!(bytes, canonical, "encode gives the canonical frame");
    let again = decode(&bytes).unwrap_or_else(|e| panic!("re-encoded frame fails: {e}"));
    let mut want = m;
    want.trailing_byte = false;
    assert_eq!(again, want, "encode → decode round trip");
}

fn check_location(data: &[u8]) {
    match (body_location(data), data.first()) {
        (Ok(loc), Some(&c)) => {
            assert_eq!(loc.code(), c, "body location code");
            assert_eq!(loc, BodyLocation::from_code(c), "from_code");
            assert_eq!(matches!(loc, BodyLocation::Unknown(_)), c > 6, "reserved");
            assert!(!loc.name().is_empty(), "name");
        }
        (
            Err(HrsError::Truncated {
                need: 1, got: 0, ..
            }),
            None,
        ) => {}
        other => panic!("body location {other:?}"),
    }
}

fn check_battery(data: &[u8]) {
    match (battery_percent(data), data.first()) {
        (Ok(p), Some(&v)) => assert!(p == v && v <= 100, "battery {p} from {v}"),
        (Err(BatteryError::OutOfRange { value }), Some(&v)) => {
            assert!(value == v && v > 100, "battery error {value} from {v}")
        }
        (Err(BatteryError::Empty), None) => {}
        other => panic!("battery {other:?}"),
    }
}
