//! Fuzz target: the Shimmer3 LogAndStream host, at start-up and while streaming, whole and split.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attune::protocol::shimmer::fuzz(data));
