//! GSR+ conversions: the GSR channel (0x1C) to µS (conversion id `shimmer-gsr-sdk`), the internal
//! ADC13 (0x12) to mV (`shimmer-adc-mv`), and their inverses for the simulated device.
//!
//! Sources: the host-side amplifier equation of Shimmer's SDKs as `../../../shared/DEVICES.md` §5
//! states it (`VENDOR` Shimmer SDKs, `3P` pyshimmer tests); the range bits in the top two bits of
//! every GSR sample (`VENDOR` `shimmer3` v0.11.0 `LogAndStream/main.c` `GsrRange()`); the on-device
//! auto-range thresholds we do not use (`gsr.c`). Not checked against hardware.
//!
//! ```text
//! raw     u16 LE; bits 15..14 = range the firmware used, 13..12 = 0, 11..0 = adc
//! range   configured range 0..3, or raw >> 14 when configured "auto"
//! adc < 683 (below the amplifier's 0.5 V reference)  ->  Invalid::ElectrodesOpen, no value
//! volts   = adc * 3.0 / 4095
//! r_kohm  = RF[range] / (volts / 0.5 - 1)        RF = 40.2, 287, 1000, 3300 kOhm
//! fixed range: r_kohm clamped to LIMIT[range]    [8,63] [63,220] [220,680] [680,4700] kOhm
//! g_us    = 1000 / r_kohm
//! ```
//!
//! Without the clamp, `g_us = 1000 · (6·adc/4095 − 1) / RF` is linear in `adc`, so one ADC count
//! is 1.4652/RF µS (0.0364 µS on range 0, 0.00044 µS on range 3): the round-trip tolerance.

use super::GsrRange;
use crate::protocol::Invalid;

/// Feedback resistor per range, kΩ.
pub const RF_KOHM: [f64; 4] = [40.2, 287.0, 1000.0, 3300.0];
/// Measurable skin resistance per range, kΩ (the fixed-range clamp).
pub const LIMIT_KOHM: [(f64, f64); 4] =
    [(8.0, 63.0), (63.0, 220.0), (220.0, 680.0), (680.0, 4700.0)];
/// ADC counts below this are under the 0.5 V reference: electrodes open.
pub const OPEN_ADC: u16 = 683;
/// Full-scale volts of the 12-bit ADC.
pub const ADC_VREF: f64 = 3.0;
/// Largest 12-bit ADC count.
pub const ADC_MAX: u16 = 4095;

/// One decoded GSR sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gsr {
    /// The range used (0..3).
    pub range: u8,
    /// The 12-bit ADC count.
    pub adc: u16,
    /// Skin resistance, kΩ, or why not.
    pub r_kohm: Result<f64, Invalid>,
}

impl Gsr {
    /// Skin conductance, µS, or why not.
    pub fn g_us(&self) -> Result<f64, Invalid> {
        self.r_kohm.map(|r| 1000.0 / r)
    }
}

/// The GSR sample of `raw` under the configured range.
pub fn gsr(raw: u16, configured: GsrRange) -> Gsr {
    let range = configured.fixed().unwrap_or((raw >> 14) as u8);
    let adc = raw & 0x0FFF;
    if adc < OPEN_ADC {
        return Gsr {
            range,
            adc,
            r_kohm: Err(Invalid::ElectrodesOpen),
        };
    }
    let idx = usize::from(range & 3);
    let rf = RF_KOHM.get(idx).copied().unwrap_or(RF_KOHM[0]);
    let volts = f64::from(adc) * ADC_VREF / f64::from(ADC_MAX);
    let mut r = rf / (volts / 0.5 - 1.0);
    if configured.fixed().is_some() {
        let (lo, hi) = LIMIT_KOHM.get(idx).copied().unwrap_or(LIMIT_KOHM[0]);
        r = r.clamp(lo, hi);
    }
    Gsr {
        range,
        adc,
        r_kohm: Ok(r),
    }
}

/// ADC13 (or any 12-bit internal ADC) counts to mV.
pub fn adc_mv(adc: u16) -> f64 {
    f64::from(adc) * ADC_VREF * 1000.0 / f64::from(ADC_MAX)
}

/// What the simulated device sends for open electrodes (any count below [`OPEN_ADC`] would do).
pub const MODEL_OPEN_ADC: u16 = 500;

/// The range the simulated device uses in auto-range for `g_us`: the one whose measurable band
/// contains the resistance. The firmware's hysteresis thresholds (`gsr.c` `GSR_controlRange`)
/// and its ~80 ms hold after a switch (`GSR_smoothTransition`) are not modelled.
pub fn model_range(g_us: f64) -> u8 {
    let r = 1000.0 / g_us;
    match r {
        r if r < LIMIT_KOHM[0].1 => 0,
        r if r < LIMIT_KOHM[1].1 => 1,
        r if r < LIMIT_KOHM[2].1 => 2,
        _ => 3,
    }
}

/// The raw GSR word (range bits included) the simulated device sends for `g_us` µS: the
/// inverse of [`gsr`], rounded to the nearest count and clipped to 0..4095. Non-positive or
/// non-finite conductance reads as open electrodes.
pub fn model_raw(g_us: f64, configured: GsrRange) -> u16 {
    let range = configured
        .fixed()
        .unwrap_or_else(|| if g_us > 0.0 { model_range(g_us) } else { 3 });
    let adc = if g_us.is_finite() && g_us > 0.0 {
        let rf = RF_KOHM
            .get(usize::from(range))
            .copied()
            .unwrap_or(RF_KOHM[0]);
        // g = 1000 (2v - 1) / rf  <=>  v = (g rf / 1000 + 1) / 2
        let volts = (g_us * rf / 1000.0 + 1.0) / 2.0;
        (volts * f64::from(ADC_MAX) / ADC_VREF)
            .round()
            .clamp(0.0, f64::from(ADC_MAX)) as u16
    } else {
        MODEL_OPEN_ADC
    };
    (u16::from(range) << 14) | adc
}

/// The ADC13 count the simulated device sends for a PPG value (attune's simulator makes 0..1):
/// 1000 + 1000·ppg counts (0.73..1.47 V), clipped to 0..4095.
pub fn model_ppg_adc(ppg: f64) -> u16 {
    let x = if ppg.is_finite() {
        1000.0 + 1000.0 * ppg
    } else {
        1000.0
    };
    x.round().clamp(0.0, f64::from(ADC_MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// DEVICES.md §5 (`3P` pyshimmer test): raw, range, adc, kΩ, µS in auto-range.
    #[test]
    fn pyshimmer_auto_range_vectors() {
        let cases = [
            (697u16, 0u8, 697u16, 1892.1724, 0.52849),
            (17188, 1, 804, 1612.1605, 0.62029),
            (33869, 2, 1101, 1630.8244, 0.61319),
            (50567, 3, 1415, 3074.7440, 0.32523),
        ];
        for (raw, range, adc, r, g) in cases {
            let s = gsr(raw, GsrRange::Auto);
            assert_eq!((s.range, s.adc), (range, adc), "raw {raw}");
            assert!(
                close(s.r_kohm.unwrap_or(f64::NAN), r, 5e-4),
                "raw {raw}: {s:?}"
            );
            assert!(
                close(s.g_us().unwrap_or(f64::NAN), g, 5e-6),
                "raw {raw}: {s:?}"
            );
        }
    }

    #[test]
    fn open_electrodes_and_clamp() {
        for range in [GsrRange::Auto, GsrRange::R0, GsrRange::R3] {
            assert_eq!(
                gsr(682 | 0xC000, range).r_kohm,
                Err(Invalid::ElectrodesOpen)
            );
        }
        assert!(gsr(683, GsrRange::Auto).r_kohm.is_ok());
        // range 0 at adc 4095: 40.2 / (6 - 1) = 8.04 kΩ, inside [8, 63]; adc 1000 clamps to 63.
        assert_eq!(gsr(1000, GsrRange::R0).r_kohm, Ok(63.0));
        assert!(close(
            gsr(4095, GsrRange::R0).r_kohm.unwrap_or(0.0),
            8.04,
            1e-9
        ));
    }

    #[test]
    fn model_inverts_within_one_count() {
        for g in [0.3, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0] {
            let raw = model_raw(g, GsrRange::Auto);
            let s = gsr(raw, GsrRange::Auto);
            let quantum = 6000.0 / 4095.0 / RF_KOHM[usize::from(s.range)];
            assert!(
                close(s.g_us().unwrap_or(f64::NAN), g, quantum / 2.0 + 1e-12),
                "{g}: {s:?}"
            );
        }
        assert_eq!(
            gsr(model_raw(0.0, GsrRange::Auto), GsrRange::Auto).r_kohm,
            Err(Invalid::ElectrodesOpen)
        );
        assert_eq!(model_ppg_adc(0.5), 1500);
        assert!(close(adc_mv(1830), 1340.6593, 1e-4));
    }
}
