//! Fuzz target: the text-line host on arbitrary bytes, split and whole, settled and at start.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attune::protocol::textline::fuzz(data));
