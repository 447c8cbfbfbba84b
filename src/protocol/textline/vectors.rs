//! The golden vectors of `firmware-protocols/text-lines/vectors.json`, every one checked (table
//! driven): fed whole and byte by byte, the output must be exactly the expected sequence.

use super::{Settings, TextlineHost};
use crate::protocol::{Decoded, Host, HostOut, Invalid, Phase};
use serde::Deserialize;
use serde_json::Value as Json;

const VECTORS: &str = include_str!("../../../firmware-protocols/text-lines/vectors.json");

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
    text: Option<String>,
    hex: Option<String>,
    chunks: Option<Vec<Chunk>>,
    params: Params,
    expect: Expect,
    provenance: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Chunk {
    at: f64,
    text: Option<String>,
    hex: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    start: String,
    #[serde(default)]
    settings: Option<Json>,
    tick: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decoded: Vec<Out>,
    #[serde(default)]
    stats: serde_json::Map<String, Json>,
    phase: Option<String>,
    failed_contains: Option<String>,
    device: Option<String>,
    #[serde(default)]
    notes_contain: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Out {
    Frame(FrameExp),
    Gap {
        frames: u64,
        ambiguous: bool,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameExp {
    raw: f64,
    us: Option<f64>,
    ohm: Option<f64>,
    invalid: Option<String>,
    index: Option<u64>,
    /// Absent: not checked; `null`: no device time.
    #[serde(default, deserialize_with = "present")]
    t: Option<Json>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(d).map(Some)
}

fn bytes(text: &Option<String>, hex: &Option<String>, id: &str) -> Vec<u8> {
    match (text, hex) {
        (Some(t), None) => {
            assert!(t.is_ascii(), "{id}: 'text' must be ASCII (use 'hex')");
            t.as_bytes().to_vec()
        }
        (None, Some(h)) => (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
            .collect(),
        _ => panic!("{id}: exactly one of 'text' and 'hex'"),
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()) + 1e-12
}

/// Runs one vector with the chunks split into pieces of `piece` bytes (0 = whole chunks).
fn run(v: &Vector, piece: usize) -> (HostOut, TextlineHost) {
    let s: Settings = match &v.params.settings {
        Some(j) => serde_json::from_value(j.clone()).expect("settings"),
        None => Settings::default(),
    };
    s.check().unwrap_or_else(|e| panic!("{}: {e}", v.id));
    let mut host = match v.params.start.as_str() {
        "settled" => TextlineHost::settled(&s),
        "open" => TextlineHost::new(&s),
        other => panic!("{}: unknown start {other}", v.id),
    };
    let mut out = HostOut::default();
    host.start(0.0, &mut out);
    let chunks: Vec<(f64, Vec<u8>)> = match &v.chunks {
        Some(cs) => {
            assert!(
                v.text.is_none() && v.hex.is_none(),
                "{}: chunks or text/hex",
                v.id
            );
            cs.iter()
                .map(|c| (c.at, bytes(&c.text, &c.hex, &v.id)))
                .collect()
        }
        None => vec![(0.0, bytes(&v.text, &v.hex, &v.id))],
    };
    for (at, b) in &chunks {
        if piece == 0 {
            host.on_bytes(*at, b, &mut out);
        } else {
            for p in b.chunks(piece) {
                host.on_bytes(*at, p, &mut out);
            }
        }
    }
    if let Some(t) = v.params.tick {
        host.on_tick(t, &mut out);
    }
    (out, host)
}

fn check(v: &Vector) {
    let id = &v.id;
    let (out, host) = run(v, 0);
    assert_eq!(
        out.decoded.len(),
        v.expect.decoded.len(),
        "{id}: {:?}",
        out.decoded
    );
    for (i, (got, want)) in out.decoded.iter().zip(&v.expect.decoded).enumerate() {
        match (got, want) {
            (Decoded::Frame(f), Out::Frame(w)) => {
                let [value] = f.values.as_slice() else {
                    panic!("{id}[{i}]: one channel")
                };
                assert_eq!(value.raw, w.raw, "{id}[{i}] raw");
                match (&value.value, w.us, &w.invalid) {
                    (Ok(us), Some(want), None) => {
                        assert!(close(*us, want, 1e-9), "{id}[{i}] µS {us} vs {want}");
                        if let Some(ohm) = w.ohm {
                            assert!(
                                close(1e6 / us, ohm, 1e-9),
                                "{id}[{i}] Ω {} vs {ohm}",
                                1e6 / us
                            );
                        }
                    }
                    (Err(Invalid::OutOfRange), None, Some(why)) => assert_eq!(why, "out_of_range"),
                    other => panic!("{id}[{i}]: value {other:?}"),
                }
                if let Some(index) = w.index {
                    assert_eq!(f.index, index, "{id}[{i}] index");
                }
                match (&w.t, f.device_t) {
                    (None, _) | (Some(Json::Null), None) => {}
                    (Some(Json::Number(n)), Some(t)) => {
                        let n = n.as_f64().expect("t");
                        assert!((t - n).abs() < 1e-6, "{id}[{i}] t {t} vs {n}");
                    }
                    other => panic!("{id}[{i}]: device_t {other:?}"),
                }
            }
            (
                Decoded::Gap {
                    frames,
                    ambiguous,
                    reason,
                },
                Out::Gap {
                    frames: wf,
                    ambiguous: wa,
                    reason: wr,
                },
            ) => {
                assert_eq!(
                    (frames, ambiguous, reason.as_str()),
                    (wf, wa, wr.as_str()),
                    "{id}[{i}]"
                );
            }
            (got, _) => panic!("{id}[{i}]: got {got:?}"),
        }
    }
    let stats = serde_json::json!({
        "bytes": host.stats().bytes, "frames": host.stats().frames,
        "crc_errors": host.stats().crc_errors, "frames_lost": host.stats().frames_lost,
        "bytes_skipped": host.stats().bytes_skipped, "bad_lines": host.stats().bad_lines,
    });
    for (k, want) in &v.expect.stats {
        assert_eq!(stats.get(k), Some(want), "{id}: stats.{k}");
    }
    let phase = match host.phase() {
        Phase::Starting => "starting",
        Phase::Streaming => "streaming",
        Phase::Failed(_) => "failed",
    };
    let want_phase = v
        .expect
        .phase
        .as_deref()
        .unwrap_or(if v.params.start == "settled" {
            "streaming"
        } else {
            phase
        });
    assert_eq!(phase, want_phase, "{id}: phase {:?}", host.phase());
    if let Some(part) = &v.expect.failed_contains {
        let Phase::Failed(msg) = host.phase() else {
            panic!("{id}: not failed")
        };
        assert!(msg.contains(part.as_str()), "{id}: {msg}");
    }
    if let Some(d) = &v.expect.device {
        assert_eq!(host.device(), Some(d.as_str()), "{id}: device");
    }
    for n in &v.expect.notes_contain {
        assert!(
            out.notes.iter().any(|x| x.contains(n.as_str())),
            "{id}: note {n:?} in {:?}",
            out.notes
        );
    }
    for piece in [1, 2, 7] {
        let (split, split_host) = run(v, piece);
        assert_eq!(
            split.decoded, out.decoded,
            "{id}: split into {piece}-byte pieces"
        );
        assert_eq!(split.notes, out.notes, "{id}: notes, {piece}-byte pieces");
        assert_eq!(
            split_host.stats(),
            host.stats(),
            "{id}: stats, {piece}-byte pieces"
        );
        assert_eq!(
            split_host.phase(),
            host.phase(),
            "{id}: phase, {piece}-byte pieces"
        );
    }
}

#[test]
fn every_golden_vector_decodes_as_expected() {
    let file: File = serde_json::from_str(VECTORS).expect("vectors.json parses");
    assert_eq!(file.protocol, "textline");
    assert!(file.vectors.len() >= 60, "vectors.json lost vectors");
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
                .all(|p| ["VENDOR", "3P", "DERIVED", "PTY", "HW"].contains(&p.as_str())),
            "{}: unknown provenance tag",
            v.id
        );
        check(v);
    }
}

#[test]
fn the_vectors_cover_devices_md_section_6() {
    let file: File = serde_json::from_str(VECTORS).expect("vectors.json parses");
    for id in [
        "d6-300-crlf",
        "d6-0",
        "d6-450",
        "d6-300-cal480",
        "d6-512-invalid",
        "d6-600-invalid",
        "d6-time-column",
        "d6-prefix",
        "d6-booting",
        "d6-ff00",
    ] {
        assert!(
            file.vectors.iter().any(|v| v.id == id),
            "missing DEVICES.md §6 vector {id}"
        );
    }
}
