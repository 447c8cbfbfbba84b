//! Property tests: the encode→decode round trip, an odd byte appended, and random bytes through
//! the fuzz body (never a panic, every invariant of `fuzzing.rs`). Failing seeds are kept in
//! `src/protocol/hrs/proptests.regressions` (committed; replayed first on every run).

use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// A well-formed measurement: u8 HR only up to 255, RR only with the RR bit, no trailing byte.
fn measurement() -> impl Strategy<Value = Measurement> {
    (
        any::<u16>(),
        any::<bool>(),
        prop_oneof![Just(None), Just(Some(false)), Just(Some(true))],
        proptest::option::of(any::<u16>()),
        any::<bool>(),
        proptest::collection::vec(any::<u16>(), 0..12),
    )
        .prop_map(|(hr, wide, contact, energy_kj, rr_bit, rr_raw)| {
            let hr_u16 = wide || hr > 255;
            let hr_bpm = if hr_u16 { hr } else { hr & 0xFF };
            Measurement {
                hr_bpm,
                hr_u16,
                contact,
                energy_kj,
                rr_present: rr_bit || !rr_raw.is_empty(),
                rr_raw,
                trailing_byte: false,
            }
        })
}

proptest! {
    #![proptest_config(config(2000))]

    /// decode(encode(m)) == m, and the frame length is the header plus two bytes per RR.
    #[test]
    fn encode_then_decode_round_trips(m in measurement()) {
        let bytes = encode(&m);
        let hr = if m.hr_u16 { 2 } else { 1 };
        let ee = if m.energy_kj.is_some() { 2 } else { 0 };
        prop_assert_eq!(bytes.len(), 1 + hr + ee + 2 * m.rr_raw.len());
        prop_assert_eq!(decode(&bytes), Ok(m));
    }

    /// One more byte after an RR frame is a trailing byte; the RR before it stay.
    #[test]
    fn an_odd_byte_after_the_rr_is_dropped(m in measurement(), extra in any::<u8>()) {
        let mut bytes = encode(&m);
        bytes.push(extra);
        let got = decode(&bytes).expect("decodes");
        if m.rr_present {
            prop_assert_eq!(got, Measurement { trailing_byte: true, ..m });
        } else {
            prop_assert_eq!(got, m);
        }
    }

    /// Random bytes: never a panic, and every invariant of the fuzz body holds.
    #[test]
    fn random_bytes_hold_the_fuzz_invariants(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        fuzz(&bytes);
    }

    /// Any prefix of a well-formed frame: Ok with a prefix of the RR, or Truncated.
    #[test]
    fn every_prefix_decodes_or_is_truncated(m in measurement()) {
        let bytes = encode(&m);
        let header = bytes.len() - 2 * m.rr_raw.len();
        for len in 0..=bytes.len() {
            match decode(&bytes[..len]) {
                Ok(p) => {
                    prop_assert!(len >= header);
                    let n = (len - header) / 2;
                    prop_assert_eq!(&p.rr_raw[..], &m.rr_raw[..n]);
                    prop_assert_eq!(p.trailing_byte, (len - header) % 2 == 1);
                    prop_assert_eq!((p.hr_bpm, p.energy_kj, p.contact), (m.hr_bpm, m.energy_kj, m.contact));
                }
                Err(HrsError::Empty) => prop_assert_eq!(len, 0),
                Err(HrsError::Truncated { got, .. }) => {
                    prop_assert!(len > 0 && len < header);
                    prop_assert_eq!(got, len);
                }
            }
        }
    }
}
