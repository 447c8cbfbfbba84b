//! Recording format tests: round trips and every way a file can be broken.

use super::*;
use crate::model::{Chunk, Gap, StreamKind, Timing};
use std::io::Cursor;

const HEADER: &str = r#"{"format":"attune-recording","version":1,"participant":"p01","streams":[{"id":"eda","kind":"eda","unit":"uS","rate_hz":4.0,"device":{"name":"x","protocol":"synthetic"}},{"id":"rr","kind":"rr","unit":"ms","device":{"name":"x","protocol":"synthetic"}}],"consent":{"grants":[{"stream":"all","purposes":["process"]}]},"provenance":{"source":"test","licence":"CC0-1.0"}}"#;

fn read_all(text: &str) -> Result<Vec<Record>, RecordingError> {
    let mut r = Reader::open(Cursor::new(text.as_bytes().to_vec()))?;
    let mut v = Vec::new();
    while let Some(rec) = r.next_record()? {
        v.push(rec);
    }
    Ok(v)
}

fn err(text: &str) -> String {
    read_all(text).expect_err("should fail").to_string()
}

#[test]
fn round_trip_through_writer_and_reader() {
    let header: Header = serde_json::from_str(HEADER).unwrap();
    let p = header.participant.clone();
    let chunk = Chunk {
        raw: None,
        meta: None,
        participant: p.clone(),
        kind: StreamKind::Eda,
        seq: 0,
        host_t: 1.0,
        timing: Timing::Uniform {
            t0: 0.0,
            rate_hz: 4.0,
        },
        samples: vec![1.5, 1.25, 0.1 + 0.2, 1e-9],
    };
    let rr = Chunk {
        raw: None,
        meta: None,
        participant: p.clone(),
        kind: StreamKind::Rr,
        seq: 0,
        host_t: 1.1,
        timing: Timing::Events(vec![0.9765625]),
        samples: vec![976.5625],
    };
    let gap = Gap {
        participant: p.clone(),
        kind: StreamKind::Eda,
        start: 0.75,
        end: 3.0,
        host_t: 3.0,
        reason: "disconnect".into(),
    };
    let marker = Marker {
        host_t: 3.5,
        t: 3.5,
        label: "stress_onset".into(),
        data: Some(serde_json::json!({"note": "x"})),
    };
    let mut w = Writer::new(Vec::new(), &header).unwrap();
    w.chunk("eda", &chunk).unwrap();
    w.chunk("rr", &rr).unwrap();
    w.gap("eda", &gap).unwrap();
    w.marker(&marker).unwrap();
    let bytes = w.finish().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let recs = read_all(&text).unwrap();
    assert_eq!(
        recs,
        vec![
            Record::Chunk(chunk),
            Record::Chunk(rr),
            Record::Gap(gap),
            Record::Marker(marker)
        ],
        "floats must come back bit-exact"
    );
    let mut r = Reader::open(Cursor::new(text.into_bytes())).unwrap();
    assert_eq!(r.header(), &header);
    assert!(r.next_record().unwrap().is_some());
}

#[test]
fn empty_file() {
    assert!(matches!(read_all(""), Err(RecordingError::Empty)));
    assert!(matches!(read_all("\n  \n"), Err(RecordingError::Empty)));
}

#[test]
fn truncated_last_line_is_named() {
    let text = format!(
        "{HEADER}\n{{\"type\":\"chunk\",\"stream\":\"eda\",\"seq\":0,\"host_t\":1.0,\"t0\":0.0,\"samples\":[1.0,2"
    );
    assert_eq!(
        err(&text),
        "line 2: the file is truncated (the last record is incomplete)"
    );
    assert!(matches!(
        read_all(&HEADER[..40]),
        Err(RecordingError::Truncated { line: 1 })
    ));
}

#[test]
fn a_last_line_without_newline_but_complete_is_fine() {
    let text = format!(
        "{HEADER}\n{{\"type\":\"chunk\",\"stream\":\"eda\",\"seq\":0,\"host_t\":1.0,\"t0\":0.0,\"samples\":[1.0]}}\n{{\"type\":\"end\",\"records\":1}}"
    );
    assert_eq!(read_all(&text).unwrap().len(), 1);
}

#[test]
fn header_problems_are_one_clear_line() {
    let cases = [
        (
            HEADER.replace("\"version\":1", "\"version\":2"),
            "unsupported recording format version 2",
        ),
        (
            HEADER.replace("attune-recording", "csv"),
            "not an attune recording",
        ),
        (
            HEADER.replace("\"kind\":\"eda\"", "\"kind\":\"temp\""),
            "unknown stream kind \"temp\"",
        ),
        (
            HEADER.replace("\"unit\":\"uS\"", "\"unit\":\"mV\""),
            "unit \"mV\" does not match kind eda",
        ),
        (
            HEADER.replace("\"rate_hz\":4.0,", ""),
            "kind eda needs rate_hz",
        ),
        (
            HEADER.replace("\"rate_hz\":4.0", "\"rate_hz\":-4.0"),
            "not a plausible rate",
        ),
        (
            HEADER.replace("\"process\"", "\"sell\""),
            "line 1: bad header",
        ),
        ("not json".to_owned(), "line 1: bad header"),
    ];
    for (text, want) in cases {
        let e = err(&text);
        assert!(e.starts_with("line 1: "), "{e}");
        assert!(e.contains(want), "{e:?} should contain {want:?}");
        assert!(!e.contains('\n'));
    }
}

#[test]
fn record_problems_name_their_line() {
    let ok = r#"{"type":"chunk","stream":"eda","seq":0,"host_t":1.0,"t0":0.0,"samples":[1.0]}"#;
    let cases = [
        (
            r#"{"type":"chunk","stream":"ppg","seq":1,"host_t":2.0,"t0":1.0,"samples":[1.0]}"#,
            "undeclared stream \"ppg\"",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":1,"host_t":0.5,"t0":1.0,"samples":[1.0]}"#,
            "host_t 0.5 goes backwards",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":1,"host_t":2.0,"t0":0.0,"samples":[1.0]}"#,
            "not after the previous sample",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":0,"host_t":2.0,"t0":1.0,"samples":[1.0]}"#,
            "sequence number goes backwards",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":1,"host_t":2.0,"t0":1.0,"samples":[]}"#,
            "has no samples",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":1,"host_t":2.0,"times":[1.0],"samples":[1.0]}"#,
            "needs a finite t0",
        ),
        (
            r#"{"type":"chunk","stream":"rr","seq":0,"host_t":2.0,"t0":1.0,"samples":[800.0]}"#,
            "needs times",
        ),
        (
            r#"{"type":"chunk","stream":"rr","seq":0,"host_t":2.0,"times":[1.0,0.5],"samples":[800.0,700.0]}"#,
            "strictly increase",
        ),
        (
            r#"{"type":"chunk","stream":"rr","seq":0,"host_t":2.0,"times":[1.0],"samples":[800.0,700.0]}"#,
            "1 times for 2 samples",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":1,"host_t":2.0,"t0":1.0,"samples":["a"]}"#,
            "invalid type",
        ),
        (r#"{"type":"blob"}"#, "unknown variant `blob`"),
        (
            r#"{"type":"gap","stream":"eda","start":5.0,"end":4.0,"host_t":5.0,"reason":"x"}"#,
            "end before start",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":1,"host_t":2.0,"t0":1.0,"samples":[1.0],"extra":1}"#,
            "unknown field",
        ),
    ];
    for (line, want) in cases {
        let e = err(&format!("{HEADER}\n{ok}\n{line}\n"));
        assert!(e.starts_with("line 3: "), "{e}");
        assert!(e.contains(want), "{e:?} should contain {want:?}");
    }
}

#[test]
fn a_sequence_jump_becomes_an_explicit_gap() {
    let text = format!(
        "{HEADER}\n{}\n{}\n",
        r#"{"type":"chunk","stream":"eda","seq":0,"host_t":1.0,"t0":0.0,"samples":[1.0,1.0,1.0,1.0]}"#,
        r#"{"type":"chunk","stream":"eda","seq":3,"host_t":4.0,"t0":3.0,"samples":[1.0]}"#
    ) + r#"{"type":"end","records":2}"#;
    let recs = read_all(&text).unwrap();
    assert_eq!(recs.len(), 3);
    match &recs[1] {
        Record::Gap(g) => {
            assert_eq!(
                (g.start, g.end, g.reason.as_str()),
                (0.75, 3.0, "sequence_jump")
            );
        }
        other => panic!("expected a gap, got {other:?}"),
    }
}

#[test]
fn an_overlong_line_is_refused_without_reading_it_all() {
    let mut text = format!("{HEADER}\n");
    text.push_str(&"1".repeat(MAX_LINE_BYTES + 10));
    assert!(matches!(
        read_all(&text),
        Err(RecordingError::LineTooLong { line: 2 })
    ));
}

#[test]
fn every_proper_prefix_of_a_valid_file_is_an_error() {
    let text = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        r#"{"type":"chunk","stream":"eda","seq":0,"host_t":1.0,"t0":0.0,"samples":[1.0,2.0]}"#,
        r#"{"type":"marker","host_t":2.0,"t":2.0,"label":"x"}"#,
        r#"{"type":"end","records":2}"#
    );
    assert_eq!(read_all(&text).unwrap().len(), 2);
    for cut in 0..text.len() - 1 {
        // Cut anywhere, at a line boundary too: never a panic, never a silently short read.
        assert!(
            read_all(&text[..cut]).is_err(),
            "prefix of {cut} bytes read as complete"
        );
    }
}

#[test]
fn end_record_count_and_position_are_checked() {
    let chunk = r#"{"type":"chunk","stream":"eda","seq":0,"host_t":1.0,"t0":0.0,"samples":[1.0]}"#;
    let e = err(&format!(
        "{HEADER}\n{chunk}\n{}\n",
        r#"{"type":"end","records":5}"#
    ));
    assert!(e.contains("counts 5 records, but the file has 1"), "{e}");
    let e = err(&format!(
        "{HEADER}\n{}\n{chunk}\n",
        r#"{"type":"end","records":0}"#
    ));
    assert!(e.contains("data after the end record"), "{e}");
    let e = err(&format!("{HEADER}\n{chunk}\n"));
    assert!(e.contains("ends without its end record"), "{e}");
}

#[test]
fn numeric_edge_cases_are_errors_not_panics() {
    // Regressions (issue 2 review): these overflowed or panicked downstream.
    let cases = [
        (
            r#"{"type":"chunk","stream":"rr","seq":18446744073709551615,"host_t":1.0,"times":[1.0],"samples":[900.0]}"#,
            "at its maximum",
        ),
        (
            r#"{"type":"marker","host_t":1e19,"t":0.0,"label":"x"}"#,
            "not a plausible time",
        ),
        (
            r#"{"type":"marker","host_t":1.0,"t":-1e30,"label":"x"}"#,
            "not a plausible time",
        ),
        (
            r#"{"type":"chunk","stream":"eda","seq":0,"host_t":1.0,"t0":1e300,"samples":[1.0]}"#,
            "not a plausible time",
        ),
        (
            r#"{"type":"gap","stream":"eda","start":0.0,"end":1e12,"host_t":1.0,"reason":"x"}"#,
            "not a plausible time",
        ),
    ];
    for (line, want) in cases {
        let e = err(&format!("{HEADER}\n{line}\n"));
        assert!(e.starts_with("line 2: ") && e.contains(want), "{e}");
    }
}

#[test]
fn an_explicit_gap_is_not_counted_again_at_the_sequence_jump() {
    let text = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        r#"{"type":"chunk","stream":"eda","seq":0,"host_t":1.0,"t0":0.0,"samples":[1.0]}"#,
        r#"{"type":"gap","stream":"eda","start":0.0,"end":3.0,"host_t":3.0,"reason":"disconnect"}"#,
        r#"{"type":"chunk","stream":"eda","seq":5,"host_t":4.0,"t0":3.0,"samples":[1.0]}"#
    ) + r#"{"type":"end","records":3}"#;
    let gaps = read_all(&text)
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r, Record::Gap(_)))
        .count();
    assert_eq!(gaps, 1);
}

#[test]
fn a_header_with_too_many_streams_is_refused_at_once() {
    let streams: Vec<String> = (0..100_000)
        .map(|i| {
            format!(
                r#"{{"id":"s{i}","kind":"rr","unit":"ms","device":{{"name":"x","protocol":"y"}}}}"#
            )
        })
        .collect();
    let header = format!(
        r#"{{"format":"attune-recording","version":1,"participant":"p1","streams":[{}],"consent":{{"grants":[]}},"provenance":{{"source":"test","licence":"CC0-1.0"}}}}"#,
        streams.join(",")
    );
    // Before the fix the duplicate-id check was quadratic: almost two minutes for this header
    // before any answer; now the count is refused before the streams are looked at.
    let e = Reader::open(header.as_bytes()).err().unwrap();
    assert!(e.to_string().contains("at most 256"), "{e}");
}

#[test]
fn session_header_state_records_and_a_recovered_end_round_trip() {
    let header: Header = serde_json::from_str(HEADER).unwrap();
    let session = SessionInfo {
        name: "20261201T122000Z".into(),
        started_unix_ms: 1_796_127_600_000,
        live: true,
    };
    let state = StateRecord {
        kind: StreamKind::Eda,
        host_t: 2.5,
        state: "reconnecting".into(),
        detail: Some("link dropped".into()),
    };
    let mut w = Writer::new_session(Vec::new(), &header, &session).unwrap();
    w.state("eda", &state).unwrap();
    let bytes = w.finish().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(r#""session":{"name":"20261201T122000Z""#),
        "{text}"
    );
    assert!(text.contains(r#"{"type":"state","stream":"eda","host_t":2.5,"state":"reconnecting","detail":"link dropped"}"#), "{text}");
    let mut r = Reader::open(Cursor::new(text.clone().into_bytes())).unwrap();
    assert_eq!(
        r.header(),
        &header,
        "the session object is not part of Header"
    );
    assert_eq!(r.session(), Some(&session));
    assert_eq!(r.next_record().unwrap(), Some(Record::State(state)));
    assert_eq!(r.next_record().unwrap(), None);
    assert_eq!(
        r.end(),
        Some(&EndInfo {
            records: 1,
            recovered: false,
            reason: None
        })
    );
    // A repaired file's end, and unknown header fields, are accepted.
    let repaired = format!(
        "{}\n{}",
        HEADER.replacen('{', r#"{"later_field":[1,2],"#, 1),
        String::from_utf8(end_line(0, true, Some("crash"))).unwrap()
    );
    let mut r = Reader::open(Cursor::new(repaired.into_bytes())).unwrap();
    assert_eq!(r.session(), None);
    assert_eq!(r.next_record().unwrap(), None);
    let end = r.end().unwrap();
    assert!(end.recovered && end.reason.as_deref() == Some("crash"));
}

#[test]
fn state_records_are_checked() {
    let bad = [
        (
            r#"{"type":"state","stream":"temp","host_t":1.0,"state":"lost"}"#,
            "undeclared",
        ),
        (
            r#"{"type":"state","stream":"eda","host_t":1.0,"state":""}"#,
            "empty",
        ),
        (
            r#"{"type":"state","stream":"eda","host_t":1.0,"state":"lost","x":1}"#,
            "unknown field",
        ),
    ];
    for (line, want) in bad {
        let e = err(&format!(
            "{HEADER}\n{line}\n{{\"type\":\"end\",\"records\":1}}\n"
        ));
        assert!(e.contains(want) && e.starts_with("line 2"), "{line}: {e}");
    }
}
