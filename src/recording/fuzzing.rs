//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz), kept in the library so that an
//! ordinary `cargo test` replays the committed corpus and every past crash through exactly
//! the code the fuzzer ran (`tests/fuzz_corpus.rs`). Each function panics only on a finding.

use super::{Reader, Record, Writer, csv::read_column};
use std::collections::HashSet;

/// The recording reader on arbitrary bytes: it must return records or a typed error, never
/// panic, hang or allocate without bound. A recording it accepts must survive a write→read
/// round trip unchanged (when each stream kind appears once, so a record's kind names its
/// stream).
pub fn recording_bytes(data: &[u8]) {
    let Ok(mut reader) = Reader::open(data) else {
        return;
    };
    let mut records = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    let header = reader.header().clone();
    let kinds: Vec<_> = header.streams.iter().filter_map(|s| s.kind()).collect();
    if kinds.iter().collect::<HashSet<_>>().len() != kinds.len() {
        return;
    }
    let id = |k| {
        header
            .streams
            .iter()
            .find(|s| s.kind() == Some(k))
            .map(|s| s.id.clone())
            .unwrap_or_default()
    };
    let mut w = Writer::new(Vec::new(), &header).expect("a header the reader accepted is valid");
    for r in &records {
        match r {
            Record::Chunk(c) => w.chunk(&id(c.kind), c),
            Record::Gap(g) => w.gap(&id(g.kind), g),
            Record::Marker(m) => w.marker(m),
            Record::State(s) => w.state(&id(s.kind), s),
        }
        .expect("writing to memory");
    }
    let bytes = w.finish().expect("writing to memory");
    let mut again = Reader::open(bytes.as_slice()).expect("re-reading the written header");
    let mut back = Vec::new();
    while let Some(r) = again.next_record().expect("re-reading a written record") {
        back.push(r);
    }
    assert_eq!(records, back, "a write→read round trip changed the records");
}

/// The CSV reader on arbitrary bytes (as UTF-8 text, as `analyze` reads it), with the first
/// column and with a column named by the first line of the input.
pub fn csv_bytes(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(col) = read_column(text, None) {
        assert!(!col.values.is_empty(), "a column without rows was accepted");
    }
    let wanted = text.lines().next().and_then(|l| l.split(',').nth(1));
    let _ = read_column(text, wanted);
}
