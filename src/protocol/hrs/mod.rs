//! Bluetooth Heart Rate Service (SIG): the 0x2A37 Heart Rate Measurement decoder, Body Sensor
//! Location (0x2A38) and Battery Level (0x2A19). Pure: no I/O, no clock, no BLE stack; the BLE
//! source hands each notification's or read's value bytes to these functions.
//!
//! Spec, sources, provenance tags and golden vectors: `firmware-protocols/ble-heart-rate/SPEC.md`
//! and `vectors.json`; manual check for the first real strap: `HARDWARE_CHECK.md` there.
//! **Nothing here has been checked against a real strap**: the vectors are `SIG`/`DERIVED`
//! (H1 and H2 also `MOCK`: delivered through real btleplug + libdbus + dbus-daemon from a mocked
//! BlueZ), none is `HW`.
//!
//! # Sources
//!
//! - `SIG` Bluetooth SIG, *Heart Rate Service* 1.0 (HRS_SPEC_V10) and the *GATT Specification
//!   Supplement* (characteristic definitions of Heart Rate Measurement `0x2A37`, Body Sensor
//!   Location `0x2A38`, Battery Level `0x2A19`; *Battery Service* 1.0 for `0x180F`).
//! - `../shared/DEVICES.md` §1 (the team's reference): the table below, the decoder rules and the
//!   golden vectors H1–H10; the note that a third-party Polar H10 log shows RR flowing while
//!   contact reads "not supported" (`3P`), so contact is information, not a quality gate.
//!
//! # 0x2A37 Heart Rate Measurement
//!
//! Little-endian fields in fixed order; the flags byte says which are present:
//!
//! ```text
//! [flags u8] [HR u8 | u16] [EE u16]? [RR u16]*        RR = all remaining bytes, in pairs
//! ```
//!
//! | flags bit | meaning | [`Measurement`] |
//! |---|---|---|
//! | 0 | HR format: 0 = u8, 1 = u16, bpm | `hr_bpm`, `hr_u16` |
//! | 1–2 | contact: `00`/`01` not supported, `10` supported and no contact, `11` contact | `contact`: `None` unless bit 2, then `Some(bit 1)` |
//! | 3 | Energy Expended present, u16, **kJ** (not kcal) | `energy_kj` |
//! | 4 | RR intervals present, u16 each, **1/1024 s**, oldest first | `rr_present`, `rr_raw` |
//! | 5–7 | reserved | ignored, never a reason to reject the frame |
//!
//! RR values stay raw 1/1024 s counts; [`rr_ms`] converts at the edge (`raw · 1000 / 1024`, exact
//! in f64: 800 → 781.25 ms). A notification carries whatever fits: with the default ATT MTU of 23
//! the value is at most 20 bytes, so at most 9 RR (u8 HR), 8 (u8 HR + EE, or u16 HR) or 7 (u16
//! HR + EE). The decoder takes any number. Bit 4 with no RR bytes is an empty list ("no beat in
//! this notification"), not an error.
//!
//! The RR values carry no timestamps: the source anchors the newest at the host receive time and
//! walks back by cumulative sum; RR is never derived from HR. Straps report the first RR after a
//! notification with an empty RR list (a beat that ended in the previous interval, or the first
//! after contact returns) as too long: that interval spans the gap. It is the source that flags
//! such a beat as suspect (it knows the notification history); the decoder keeps every value
//! exactly as sent.
//!
//! Decoder rules (DEVICES.md §1.1): empty → [`HrsError::Empty`]; shorter than the flags require
//! (HR, then EE) → [`HrsError::Truncated`]; an odd trailing byte after the RR pairs is dropped
//! with the RR before it kept, and sets [`Measurement::trailing_byte`] (the caller counts it as
//! an error). attune's reading where DEVICES.md is silent: with bit 4 clear, bytes after the
//! header are ignored (no field holds them; they are not RR).
//!
//! # Layout
//!
//! - [`decode`] / [`encode`]: 0x2A37 bytes ↔ [`Measurement`] (encode is for tests and
//!   simulators).
//! - [`body_location`]: 0x2A38 → [`BodyLocation`]; [`battery_percent`]: 0x2A19 → %.
//! - [`fuzz`]: the body of the cargo-fuzz target `fuzz/fuzz_targets/hrs.rs`.

mod fuzzing;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use fuzzing::fuzz;

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

/// Flags bit 0: the HR field is u16.
pub const FLAG_HR_U16: u8 = 0x01;
/// Flags bit 1: sensor contact detected (meaningful only with [`FLAG_CONTACT_SUPPORTED`]).
pub const FLAG_CONTACT: u8 = 0x02;
/// Flags bit 2: sensor contact detection supported.
pub const FLAG_CONTACT_SUPPORTED: u8 = 0x04;
/// Flags bit 3: Energy Expended (u16, kJ) present.
pub const FLAG_ENERGY: u8 = 0x08;
/// Flags bit 4: RR intervals (u16, 1/1024 s) present.
pub const FLAG_RR: u8 = 0x10;

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

/// [`HrsError::Truncated::field`] when the HR field does not fit.
pub const FIELD_HEART_RATE: &str = "heart_rate";
/// [`HrsError::Truncated::field`] when the Energy Expended field does not fit.
pub const FIELD_ENERGY: &str = "energy_expended";
/// [`HrsError::Truncated::field`] when a Body Sensor Location value is empty.
pub const FIELD_BODY_LOCATION: &str = "body_sensor_location";

/// Bytes before the RR intervals that `flags` announce: flags, HR (1 or 2), EE (0 or 2).
/// Reserved bits and the contact bits do not change it.
pub fn header_len(flags: u8) -> usize {
    let hr = if flags & FLAG_HR_U16 != 0 { 2 } else { 1 };
    let ee = if flags & FLAG_ENERGY != 0 { 2 } else { 0 };
    1 + hr + ee
}

/// Decodes one 0x2A37 notification (module doc: the layout and the rules). Never panics.
pub fn decode(bytes: &[u8]) -> Result<Measurement, HrsError> {
    let (&flags, rest) = bytes.split_first().ok_or(HrsError::Empty)?;
    let got = bytes.len();
    let hr_u16 = flags & FLAG_HR_U16 != 0;
    let (hr_bpm, rest) = if hr_u16 {
        match rest {
            [lo, hi, rest @ ..] => (u16::from_le_bytes([*lo, *hi]), rest),
            _ => return Err(truncated(FIELD_HEART_RATE, 3, got)),
        }
    } else {
        match rest {
            [hr, rest @ ..] => (u16::from(*hr), rest),
            _ => return Err(truncated(FIELD_HEART_RATE, 2, got)),
        }
    };
    let (energy_kj, rest) = if flags & FLAG_ENERGY != 0 {
        match rest {
            [lo, hi, rest @ ..] => (Some(u16::from_le_bytes([*lo, *hi])), rest),
            _ => return Err(truncated(FIELD_ENERGY, header_len(flags), got)),
        }
    } else {
        (None, rest)
    };
    let contact = (flags & FLAG_CONTACT_SUPPORTED != 0).then_some(flags & FLAG_CONTACT != 0);
    let rr_present = flags & FLAG_RR != 0;
    let (rr_raw, trailing_byte) = if rr_present {
        let mut rr = Vec::with_capacity(rest.len() / 2);
        let mut tail = rest;
        while let [lo, hi, more @ ..] = tail {
            rr.push(u16::from_le_bytes([*lo, *hi]));
            tail = more;
        }
        (rr, !tail.is_empty())
    } else {
        (Vec::new(), false)
    };
    Ok(Measurement {
        hr_bpm,
        hr_u16,
        contact,
        energy_kj,
        rr_present,
        rr_raw,
        trailing_byte,
    })
}

fn truncated(field: &'static str, need: usize, got: usize) -> HrsError {
    HrsError::Truncated { field, need, got }
}

/// Encodes a measurement as a 0x2A37 value, the inverse of [`decode`] for well-formed
/// measurements (for tests and simulators).
///
/// - HR is u16 (bit 0) when `hr_u16` is set **or** `hr_bpm > 255` (a u8 field cannot hold it),
///   so `decode(encode(m))` has `hr_u16` set for such an `m` even if `m.hr_u16` was clear.
/// - Contact `None` → bits 1–2 `00` (not supported); `Some(false)` → `10`; `Some(true)` → `11`.
/// - Bit 3 and the EE field when `energy_kj` is `Some`.
/// - Bit 4 when `rr_present` is set or `rr_raw` is not empty (RR values are never dropped), then
///   every RR in order. A notification holds at most 20 bytes with the default ATT MTU: keeping
///   within it is the caller's business (the decoder takes any length).
/// - `trailing_byte` is not encoded: the output is always well formed. Reserved bits are 0.
pub fn encode(m: &Measurement) -> Vec<u8> {
    let hr_u16 = m.hr_u16 || m.hr_bpm > 255;
    let mut flags = 0u8;
    if hr_u16 {
        flags |= FLAG_HR_U16;
    }
    match m.contact {
        None => {}
        Some(false) => flags |= FLAG_CONTACT_SUPPORTED,
        Some(true) => flags |= FLAG_CONTACT_SUPPORTED | FLAG_CONTACT,
    }
    if m.energy_kj.is_some() {
        flags |= FLAG_ENERGY;
    }
    let rr = m.rr_present || !m.rr_raw.is_empty();
    if rr {
        flags |= FLAG_RR;
    }
    let mut out = Vec::with_capacity(header_len(flags) + 2 * m.rr_raw.len());
    out.push(flags);
    if hr_u16 {
        out.extend(m.hr_bpm.to_le_bytes());
    } else {
        out.extend(u8::try_from(m.hr_bpm).ok());
    }
    if let Some(ee) = m.energy_kj {
        out.extend(ee.to_le_bytes());
    }
    for r in &m.rr_raw {
        out.extend(r.to_le_bytes());
    }
    out
}

/// RR raw (1/1024 s) to ms, exact in f64.
pub fn rr_ms(raw: u16) -> f64 {
    f64::from(raw) * 1000.0 / 1024.0
}

/// Where the strap sits (0x2A38 Body Sensor Location).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyLocation {
    /// 0: other.
    Other,
    /// 1: chest.
    Chest,
    /// 2: wrist.
    Wrist,
    /// 3: finger.
    Finger,
    /// 4: hand.
    Hand,
    /// 5: ear lobe.
    EarLobe,
    /// 6: foot.
    Foot,
    /// 7–255: reserved for future use by the SIG; kept, not rejected.
    Unknown(u8),
}

impl BodyLocation {
    /// The value byte's meaning (7–255 are [`BodyLocation::Unknown`]).
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Other,
            1 => Self::Chest,
            2 => Self::Wrist,
            3 => Self::Finger,
            4 => Self::Hand,
            5 => Self::EarLobe,
            6 => Self::Foot,
            other => Self::Unknown(other),
        }
    }

    /// The value byte (the inverse of [`BodyLocation::from_code`]).
    pub fn code(&self) -> u8 {
        match self {
            Self::Other => 0,
            Self::Chest => 1,
            Self::Wrist => 2,
            Self::Finger => 3,
            Self::Hand => 4,
            Self::EarLobe => 5,
            Self::Foot => 6,
            Self::Unknown(c) => *c,
        }
    }

    /// The name for logs and metadata: `other`, `chest`, `wrist`, `finger`, `hand`, `ear_lobe`,
    /// `foot`, or `unknown` (any reserved value).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Other => "other",
            Self::Chest => "chest",
            Self::Wrist => "wrist",
            Self::Finger => "finger",
            Self::Hand => "hand",
            Self::EarLobe => "ear_lobe",
            Self::Foot => "foot",
            Self::Unknown(_) => "unknown",
        }
    }
}

/// Decodes a 0x2A38 Body Sensor Location value: one u8. Reserved values (7–255) are
/// [`BodyLocation::Unknown`], not errors. Extra bytes are ignored (the first is the value). An
/// empty value is [`HrsError::Truncated`] with field [`FIELD_BODY_LOCATION`], need 1, got 0.
pub fn body_location(bytes: &[u8]) -> Result<BodyLocation, HrsError> {
    bytes
        .first()
        .map(|&c| BodyLocation::from_code(c))
        .ok_or(truncated(FIELD_BODY_LOCATION, 1, 0))
}

/// Why a Battery Level value was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatteryError {
    /// The value has no byte.
    #[error("empty battery level")]
    Empty,
    /// Above 100 % (the characteristic is 0–100; 101–255 are reserved).
    #[error("battery level {value} % is above 100")]
    OutOfRange {
        /// The byte sent.
        value: u8,
    },
}

/// Decodes a 0x2A19 Battery Level value: one u8, percent, 0–100. Extra bytes are ignored (the
/// first is the value); above 100 is an error, never clamped.
pub fn battery_percent(bytes: &[u8]) -> Result<u8, BatteryError> {
    match bytes.first() {
        None => Err(BatteryError::Empty),
        Some(&v) if v > 100 => Err(BatteryError::OutOfRange { value: v }),
        Some(&v) => Ok(v),
    }
}
