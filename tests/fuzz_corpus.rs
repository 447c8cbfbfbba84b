//! Replays the fuzz corpus and every committed crash artifact (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the fuzz targets' bodies, so that past findings stay
//! regression tests on machines where the fuzzer does not run (RELIABILITY.md, fuzzing).

use crate::util::root;
use attune::recording::fuzzing;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root().join("fuzz").join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_file() && path.file_name().is_some_and(|n| n != ".gitkeep") {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn replay(target: &str, body: fn(&[u8])) {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no corpus for {target}");
    for (name, bytes) in &inputs {
        let r = std::panic::catch_unwind(|| body(bytes));
        assert!(r.is_ok(), "{target}: {name} panics");
    }
}

#[test]
fn recording_reader_corpus_and_crashes_replay_cleanly() {
    replay("recording_reader", fuzzing::recording_bytes);
}

#[test]
fn csv_reader_corpus_and_crashes_replay_cleanly() {
    replay("csv_reader", fuzzing::csv_bytes);
}

#[test]
fn serial_decoder_corpora_and_crashes_replay_cleanly() {
    replay("bitalino", attune::protocol::bitalino::fuzz);
    replay("shimmer", attune::protocol::shimmer::fuzz);
    replay("textline", attune::protocol::textline::fuzz);
}

#[test]
fn ble_decoder_corpus_and_crashes_replay_cleanly() {
    replay("hrs", attune::protocol::hrs::fuzz);
}
