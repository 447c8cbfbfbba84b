//! Fuzz target: the recording reader (and the write→read round trip) on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attune::recording::fuzzing::recording_bytes(data));
