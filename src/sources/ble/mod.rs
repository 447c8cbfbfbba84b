//! The BLE heart-rate source. PLACEHOLDER.
pub mod beats;
