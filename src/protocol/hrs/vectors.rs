//! The golden vectors of `firmware-protocols/ble-heart-rate/vectors.json`, every one checked
//! (table driven) through the decoder of its characteristic; every well-formed 0x2A37 vector also
//! through `encode` and back.

use super::*;
use serde::Deserialize;

const VECTORS: &str = include_str!("../../../firmware-protocols/ble-heart-rate/vectors.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    protocol: String,
    #[allow(dead_code)]
    format: String,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: String,
    hex: String,
    params: Params,
    expect: Expect,
    provenance: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    characteristic: String,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Expect {
    Measurement(MeasurementExp),
    Location { body_location: String, code: u8 },
    Battery { battery_percent: u8 },
    Error(ErrorExp),
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct MeasurementExp {
    hr_bpm: u16,
    hr_u16: bool,
    contact: Option<bool>,
    energy_kj: Option<u16>,
    rr_present: bool,
    rr_raw: Vec<u16>,
    rr_ms: Vec<f64>,
    trailing_byte: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ErrorExp {
    error: String,
    field: Option<String>,
    need: Option<usize>,
    got: Option<usize>,
    value: Option<u8>,
}

fn bytes(hex: &str, id: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "{id}: odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn check_error_hrs(id: &str, got: &HrsError, want: &ErrorExp) {
    match got {
        HrsError::Empty => assert_eq!(want.error, "empty", "{id}"),
        HrsError::Truncated { field, need, got } => {
            assert_eq!(want.error, "truncated", "{id}");
            assert_eq!(
                (Some(*field), Some(*need), Some(*got)),
                (want.field.as_deref(), want.need, want.got),
                "{id}"
            );
        }
    }
}

fn check(v: &Vector) {
    let id = v.id.as_str();
    let b = bytes(&v.hex, id);
    match (v.params.characteristic.as_str(), &v.expect) {
        ("0x2A37", Expect::Measurement(w)) => {
            let m = decode(&b).unwrap_or_else(|e| panic!("{id}: {e}"));
            let want = Measurement {
                hr_bpm: w.hr_bpm,
                hr_u16: w.hr_u16,
                contact: w.contact,
                energy_kj: w.energy_kj,
                rr_present: w.rr_present,
                rr_raw: w.rr_raw.clone(),
                trailing_byte: w.trailing_byte,
            };
            assert_eq!(m, want, "{id}");
            let ms: Vec<f64> = m.rr_raw.iter().map(|&r| rr_ms(r)).collect();
            assert_eq!(ms, w.rr_ms, "{id}: rr_ms");
            let again = decode(&encode(&m)).unwrap_or_else(|e| panic!("{id}: re-encoded: {e}"));
            assert_eq!(
                again,
                Measurement {
                    trailing_byte: false,
                    ..want
                },
                "{id}: encode → decode"
            );
        }
        ("0x2A37", Expect::Error(w)) => match decode(&b) {
            Err(e) => check_error_hrs(id, &e, w),
            Ok(m) => panic!("{id}: decoded {m:?}"),
        },
        (
            "0x2A38",
            Expect::Location {
                body_location: name,
                code,
            },
        ) => {
            let loc = body_location(&b).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!((loc.name(), loc.code()), (name.as_str(), *code), "{id}");
        }
        ("0x2A38", Expect::Error(w)) => match body_location(&b) {
            Err(e) => check_error_hrs(id, &e, w),
            Ok(l) => panic!("{id}: decoded {l:?}"),
        },
        ("0x2A19", Expect::Battery { battery_percent: p }) => {
            assert_eq!(battery_percent(&b), Ok(*p), "{id}");
        }
        ("0x2A19", Expect::Error(w)) => match (battery_percent(&b), w.error.as_str()) {
            (Err(BatteryError::Empty), "empty") => {}
            (Err(BatteryError::OutOfRange { value }), "out_of_range") => {
                assert_eq!(Some(value), w.value, "{id}")
            }
            other => panic!("{id}: {other:?}"),
        },
        (c, e) => panic!("{id}: characteristic {c} with {e:?}"),
    }
    fuzz(&b);
}

#[test]
fn every_golden_vector_decodes_as_expected() {
    let file: File = serde_json::from_str(VECTORS).expect("vectors.json parses");
    assert_eq!(file.protocol, "ble-heart-rate");
    assert!(file.vectors.len() >= 45, "vectors.json lost vectors");
    let mut ids = std::collections::HashSet::new();
    for v in &file.vectors {
        assert!(ids.insert(v.id.as_str()), "duplicate id {}", v.id);
        assert!(
            !v.provenance.is_empty() && !v.source.is_empty(),
            "{}: provenance and source",
            v.id
        );
        assert!(
            v.provenance
                .iter()
                .all(|p| ["SIG", "3P", "DERIVED", "MOCK", "HW"].contains(&p.as_str())),
            "{}: unknown provenance tag",
            v.id
        );
        check(v);
    }
}

#[test]
fn the_vectors_cover_devices_md_section_1_2() {
    let file: File = serde_json::from_str(VECTORS).expect("vectors.json parses");
    let want = [
        ("H1", "163c2003"),
        ("H2", "1f2c011000000400 02"),
        ("H3", "0048"),
        ("H4", "0448"),
        ("H5", "0248"),
        ("H6", "1048da03e403"),
        ("H7", "1048da03e4"),
        ("H8", "e048"),
        ("H9", "0148"),
        ("H10", ""),
    ];
    for (id, hex) in want {
        let v = file
            .vectors
            .iter()
            .find(|v| v.id == id)
            .unwrap_or_else(|| panic!("missing DEVICES.md §1.2 vector {id}"));
        assert_eq!(v.hex, hex.replace(' ', ""), "{id}: bytes as in DEVICES.md");
        assert_eq!(v.params.characteristic, "0x2A37", "{id}");
        let mock = v.provenance.iter().any(|p| p == "MOCK");
        assert_eq!(mock, id == "H1" || id == "H2", "{id}: MOCK only for H1, H2");
    }
    assert!(
        file.vectors
            .iter()
            .all(|v| !v.provenance.iter().any(|p| p == "HW")),
        "an HW vector: update SPEC.md and README.md's status first"
    );
}
