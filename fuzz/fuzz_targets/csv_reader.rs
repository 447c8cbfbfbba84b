//! Fuzz target: the CSV reader of `attune analyze` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attune::recording::fuzzing::csv_bytes(data));
