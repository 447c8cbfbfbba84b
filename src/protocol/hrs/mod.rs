//! Bluetooth Heart Rate Service (SIG): the 0x2A37 Heart Rate Measurement decoder, Body Sensor
//! Location (0x2A38) and Battery Level (0x2A19). PLACEHOLDER: the API is fixed, the bodies are
//! being written.

/// Heart Rate service, 16-bit UUID.
pub const HEART_RATE_SERVICE: u16 = 0x180D;
/// Heart Rate Measurement characteristic (notify).
pub const HEART_RATE_MEASUREMENT: u16 = 0x2A37;
/// Body Sensor Location characteristic (read).
pub const BODY_SENSOR_LOCATION: u16 = 0x2A38;
/// Battery service.
pub const BATTERY_SERVICE: u16 = 0x180F;
/// Battery Level characteristic (read, notify optional).
pub const BATTERY_LEVEL: u16 = 0x2A19;

/// One decoded Heart Rate Measurement notification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Measurement {
    /// Heart rate, bpm.
    pub hr_bpm: u16,
    /// Whether the HR field was u16 (flags bit 0).
    pub hr_u16: bool,
    /// Sensor contact: `None` when the strap does not support contact detection (bit 2 clear),
    /// else `Some(bit 1)`.
    pub contact: Option<bool>,
    /// Energy expended, kJ, when present (bit 3).
    pub energy_kj: Option<u16>,
    /// Whether the RR-present bit (bit 4) was set (an empty list with the bit set is "no beat in
    /// this notification", not "this strap sends no RR").
    pub rr_present: bool,
    /// RR intervals in 1/1024 s, oldest first.
    pub rr_raw: Vec<u16>,
    /// An odd trailing byte after the RR values was dropped (malformed, but the RR parsed are kept).
    pub trailing_byte: bool,
}

/// Why a notification could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HrsError {
    /// No flags byte.
    #[error("empty heart-rate measurement (no flags byte)")]
    Empty,
    /// Shorter than its flags require.
    #[error("heart-rate measurement too short: {field} needs {need} bytes, {got} present")]
    Truncated {
        /// The field that did not fit.
        field: &'static str,
        /// Bytes needed up to and including it.
        need: usize,
        /// Bytes present.
        got: usize,
    },
}

/// Decodes one 0x2A37 notification.
pub fn decode(bytes: &[u8]) -> Result<Measurement, HrsError> {
    let _ = bytes;
    Err(HrsError::Empty)
}

/// RR raw (1/1024 s) to ms, exact in f64.
pub fn rr_ms(raw: u16) -> f64 {
    f64::from(raw) * 1000.0 / 1024.0
}

/// Body Sensor Location (0x2A38). PLACEHOLDER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLocation {
    /// Other.
    Other,
}
impl BodyLocation {
    /// Name.
    pub fn name(&self) -> &'static str {
        "other"
    }
}
/// PLACEHOLDER.
pub fn body_location(_b: &[u8]) -> Result<BodyLocation, HrsError> {
    Err(HrsError::Empty)
}
/// PLACEHOLDER.
pub fn battery_percent(_b: &[u8]) -> Result<u8, HrsError> {
    Err(HrsError::Empty)
}
