//! Fuzz target: the BITalino host and decoder on arbitrary bytes (split invariance, index
//! accounting, start-up), and the frame round trip.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attune::protocol::bitalino::fuzz(data));
