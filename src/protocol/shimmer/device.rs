//! The simulated Shimmer3 GSR+ (module doc of [`super`], "Device model").

use super::crc;
use super::gsr::{model_ppg_adc, model_raw};
use super::packet::{self, CH_ADC13, CH_GSR, TICK_HZ, TS_MOD};
use super::{FwVersion, GsrRange, Settings};
use crate::protocol::{DeviceModel, Physical};

/// LogAndStream v0.11.0, the release pyshimmer's tests use (`2F 03 00 00 00 0B 00`).
pub const V0_11_0: FwVersion = FwVersion {
    major: 0,
    minor: 11,
    rel: 0,
};
/// LogAndStream v0.15.0, the first release whose source frames the CRC as attune decodes it.
pub const V0_15_0: FwVersion = FwVersion {
    major: 0,
    minor: 15,
    rel: 0,
};
/// VBATT channel id (sent with a fixed value).
pub const CH_VBATT: u8 = 0x03;
/// The VBATT ADC count the model sends.
pub const MODEL_VBATT: u16 = 2600;
/// Where the model's timestamp counter starts: 2 s at 128 Hz before the first wrap, so every
/// simulation exercises the unwrap.
pub const MODEL_CLOCK_START: u32 = TS_MOD - 65536;

/// A simulated Shimmer3 GSR+ running LogAndStream.
#[derive(Debug, Clone)]
pub struct ShimmerDevice {
    fw: FwVersion,
    ticks: u16,
    sensors: [u8; 3],
    gsr_range: u8,
    crc: usize,
    streaming: bool,
    clock: u32,
    rx: Vec<u8>,
}

impl ShimmerDevice {
    /// A device as it leaves the factory (51.2 Hz, VBATT only, GSR auto-range: `SetDefaultConfiguration`
    /// in v0.11.0 `main.c`, without the accelerometer, gyro and magnetometer the model lacks).
    pub fn new(fw: FwVersion) -> Self {
        Self {
            fw,
            ticks: 640,
            sensors: [0x00, 0x20, 0x00],
            gsr_range: 4,
            crc: 0,
            streaming: false,
            clock: MODEL_CLOCK_START,
            rx: Vec::new(),
        }
    }

    /// The device [`Settings::device`] makes: v0.11.0, or v0.15.0 when the settings ask for a
    /// CRC (v0.11.0 frames it in a way attune does not decode).
    pub fn for_settings(settings: &Settings) -> Self {
        let crc_on = settings.crc != super::CrcMode::Off;
        Self::new(if crc_on { V0_15_0 } else { V0_11_0 })
    }

    /// Sets the next timestamp (low 24 bits).
    pub fn set_clock(&mut self, ticks: u32) {
        self.clock = ticks & (TS_MOD - 1);
    }

    /// The firmware drops `n` samples (its sampling interrupt found the previous one still
    /// being processed): the clock moves on without packets.
    pub fn drop_samples(&mut self, n: u32) {
        self.clock = self
            .clock
            .wrapping_add(n.wrapping_mul(u32::from(self.ticks)))
            & (TS_MOD - 1);
    }

    /// The CRC bytes now appended to replies and packets.
    pub fn crc_len(&self) -> usize {
        self.crc
    }

    fn legacy_crc(&self) -> bool {
        self.fw < super::host::MIN_FW_CRC
    }

    /// The channels of a packet, in firmware order (`ConfigureChannels`: VBATT, ADC13, GSR).
    pub fn channel_ids(&self) -> Vec<u8> {
        let mut ids = Vec::new();
        if self.sensors[1] & 0x20 != 0 {
            ids.push(CH_VBATT);
        }
        if self.sensors[1] & 0x01 != 0 {
            ids.push(CH_ADC13);
        }
        if self.sensors[0] & 0x04 != 0 {
            ids.push(CH_GSR);
        }
        ids
    }

    fn status_bits(&self) -> u8 {
        let s = u8::from(self.streaming);
        s << 4 | s << 1 | 1 << 5 // streaming, sensing, SD present
    }

    /// The status the firmware sends on its own (dock, undock, button): `FF 8A 71 <bits>`, with
    /// the CRC only on firmware that frames it the new way (v0.11.0 `BtsdSelfcmd` sends none).
    pub fn unsolicited_status(&self, out: &mut Vec<u8>) {
        let from = out.len();
        out.extend_from_slice(&[0xFF, 0x8A, 0x71, self.status_bits()]);
        if !self.legacy_crc() {
            crc::append_crc(out, from, self.crc);
        }
    }

    /// `FF <payload>` + CRC, as `ShimBt_sendRsp` / v0.11.0 `SendResponse` build it.
    fn respond(&self, payload: &[u8], reply: &mut Vec<u8>) {
        let from = reply.len();
        reply.push(0xFF);
        reply.extend_from_slice(payload);
        crc::append_crc(reply, from, self.crc);
    }

    fn command(&mut self, cmd: &[u8], reply: &mut Vec<u8>) {
        let arg = |i: usize| cmd.get(i).copied().unwrap_or(0);
        let mut payload = Vec::new();
        match arg(0) {
            0x20 => self.streaming = false,
            0x07 => self.streaming = true,
            0x05 => {
                let t = u16::from_le_bytes([arg(1), arg(2)]);
                if t > 0 {
                    self.ticks = t;
                }
            }
            0x08 => self.sensors = [arg(1), arg(2), arg(3)],
            0x21 => self.gsr_range = arg(1).min(4),
            0x8B => {
                let n = usize::from(arg(1));
                // setCrcMode: modes past 2 fall back to off; v0.11.0 sends 2 bytes for any non-zero.
                self.crc = match (self.legacy_crc(), n) {
                    (true, 0) => 0,
                    (true, _) => 2,
                    (false, n) if n <= 2 => n,
                    (false, _) => 0,
                };
            }
            0x2E => {
                let [lo, hi] = self.fw.major.to_le_bytes();
                payload = vec![0x2F, 0x03, 0x00, lo, hi, self.fw.minor, self.fw.rel];
            }
            0x3F => payload = vec![0x25, 0x03],
            0x03 => {
                let [lo, hi] = self.ticks.to_le_bytes();
                payload = vec![0x04, lo, hi];
            }
            0x23 => payload = vec![0x22, self.gsr_range],
            0x72 => payload = vec![0x8A, 0x71, self.status_bits()],
            0x95 => {
                let [lo, hi] = MODEL_VBATT.to_le_bytes();
                payload = vec![0x8A, 0x94, lo, hi, 0x40];
            }
            0x01 => {
                let [lo, hi] = self.ticks.to_le_bytes();
                let ids = self.channel_ids();
                // Config bytes 0..2 as in pyshimmer's inquiry test; byte 3 bits 1..3 = GSR range.
                payload = vec![0x02, lo, hi, 0x01, 0xFF, 0x01, 0x01 | self.gsr_range << 1];
                payload.extend_from_slice(&[ids.len() as u8, 1]);
                payload.extend_from_slice(&ids);
            }
            _ => return, // unknown: ignored without an ACK, as v0.11.0 does
        }
        self.respond(&payload, reply);
    }
}

impl DeviceModel for ShimmerDevice {
    fn on_host_bytes(&mut self, bytes: &[u8], reply: &mut Vec<u8>) {
        self.rx.extend_from_slice(bytes);
        while let Some(&op) = self.rx.first() {
            let args = match op {
                0x05 => 2,
                0x08 => 3,
                0x21 | 0x8B => 1,
                _ => 0,
            };
            if self.rx.len() < 1 + args {
                break;
            }
            let cmd: Vec<u8> = self.rx.drain(..1 + args).collect();
            self.command(&cmd, reply);
        }
    }

    fn streaming_rate(&self) -> Option<f64> {
        self.streaming.then(|| TICK_HZ / f64::from(self.ticks))
    }

    fn encode(&mut self, sample: &Physical, out: &mut Vec<u8>) {
        if !self.streaming {
            return;
        }
        let range = GsrRange::from_code(self.gsr_range);
        let words: Vec<u16> = self
            .channel_ids()
            .iter()
            .map(|&id| match id {
                CH_ADC13 => model_ppg_adc(sample.ppg),
                CH_GSR => model_raw(sample.eda_us, range),
                _ => MODEL_VBATT,
            })
            .collect();
        let from = out.len();
        if self.legacy_crc() && self.crc > 0 {
            // v0.11.0 StreamData: CRC over the packet after its header byte, 2 bytes.
            packet::encode(self.clock, &words, 0, out);
            crc::append_crc(out, from + 1, 2);
        } else {
            packet::encode(self.clock, &words, self.crc, out);
        }
        self.drop_samples(1);
    }

    fn power_cycle(&mut self) {
        // Rate, sensors and range live in InfoMem and survive; the CRC mode and streaming do not.
        self.streaming = false;
        self.crc = 0;
        self.rx.clear();
    }
}
