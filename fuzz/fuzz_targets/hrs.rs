//! Fuzz target: the BLE Heart Rate Measurement decoder (and Body Sensor Location, Battery Level)
//! on arbitrary bytes, with the encode → decode round trip.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| attune::protocol::hrs::fuzz(data));
