//! The simulated BITalino (r)evolution: answers the host's commands as firmware 5.1 does
//! (`firmware-protocols/bitalino/SPEC.md` §2) and encodes samples as its frames. Pure.

use super::frame::{self, MAX_CHANNELS};
use super::{Conversion, RATES_HZ, Settings, cmd};
use crate::protocol::{DeviceModel, Physical};

/// The version line the simulated device sends (firmware 5.1's `versionStr`).
pub const VERSION_LINE: &[u8] = b"BITalino_v5.1\n";
/// The battery reading the state reply reports: about 3.7 V on the firmware's threshold scale
/// (527 = 3.4 V, 590 = 3.8 V).
pub const BATTERY_ADC: u16 = 574;
/// What an input with no sensor of a simulated kind reads: mid-scale.
pub const MID_SCALE: u16 = 512;
/// The rate code at power-on (1000 Hz, the firmware's default).
const DEFAULT_RATE_CODE: u8 = 3;

/// The 16-byte state reply to `0x0B` (firmware 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// A1..A6, 10-bit.
    pub analog: [u16; MAX_CHANNELS],
    /// The battery input (ABAT), 10-bit.
    pub battery: u16,
    /// The battery threshold, 0..=63 (3.4 V + threshold · 0.4 V / 63).
    pub battery_threshold: u8,
    /// Digital ports, bit 3..0 = I1 I2 O1 O2.
    pub digital: u8,
}

impl State {
    /// The 16 bytes: A1..A6 and ABAT as u16 LE, the threshold, then `digital << 4 | crc4`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        for v in self.analog.iter().chain([&self.battery]) {
            out.extend_from_slice(&(v & 0x3FF).to_le_bytes());
        }
        out.push(self.battery_threshold & 0x3F);
        out.push((self.digital & 0x0F) << 4);
        let crc = frame::crc4(&out[start..]);
        if let Some(last) = out.last_mut() {
            *last |= crc;
        }
    }
}

/// Parses a 16-byte state reply; `None` if the length or the CRC is wrong.
pub fn parse_state(bytes: &[u8]) -> Option<State> {
    if bytes.len() != 16 || !frame::crc_ok(bytes) {
        return None;
    }
    let word = |i: usize| u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    Some(State {
        analog: std::array::from_fn(word),
        battery: word(6),
        battery_threshold: bytes[14],
        digital: bytes[15] >> 4,
    })
}

/// A simulated BITalino (r)evolution whose inputs carry what a [`Settings`]' wiring says.
#[derive(Debug, Clone)]
pub struct BitalinoDevice {
    /// What each input A1..A6 encodes (`None`: a constant [`MID_SCALE`]).
    wiring: [Option<Conversion>; MAX_CHANNELS],
    live: bool,
    /// The rate code set by the last rate command; applied at the next start.
    rate_code: u8,
    /// The rate code of the current acquisition.
    live_rate_code: u8,
    mask: u8,
    seq: u8,
    battery_threshold: u8,
    /// `0xA3` was received: the next byte is the PWM value.
    pending_pwm: bool,
    /// The last value encoded on each input (for the state reply).
    last_adc: [u16; MAX_CHANNELS],
}

impl BitalinoDevice {
    /// A device, powered on and idle.
    pub fn new(settings: &Settings) -> Self {
        let mut wiring = [None; MAX_CHANNELS];
        for w in &settings.channels {
            wiring[usize::from(w.input.number() - 1)] =
                Some(Conversion::of(w.kind, settings.eda_formula));
        }
        Self::with_wiring(wiring)
    }

    /// Powered on and idle, with this wiring.
    fn with_wiring(wiring: [Option<Conversion>; MAX_CHANNELS]) -> Self {
        Self {
            wiring,
            live: false,
            rate_code: DEFAULT_RATE_CODE,
            live_rate_code: DEFAULT_RATE_CODE,
            mask: 0,
            seq: 0,
            battery_threshold: 0,
            pending_pwm: false,
            last_adc: [MID_SCALE; MAX_CHANNELS],
        }
    }

    /// The channel mask of the current (or last) acquisition.
    pub fn mask(&self) -> u8 {
        self.mask
    }

    fn state(&self) -> State {
        State {
            analog: self.last_adc,
            battery: BATTERY_ADC,
            battery_threshold: self.battery_threshold,
            digital: 0,
        }
    }

    fn on_idle_byte(&mut self, b: u8, reply: &mut Vec<u8>) {
        match b & 0x03 {
            0 => self.battery_threshold = b >> 2,
            // Live (1) and simulated (2) mode frame alike; this model encodes what it is given.
            1 | 2 => {
                self.mask = b >> 2;
                self.seq = 0;
                self.live_rate_code = self.rate_code;
                self.live = true;
            }
            _ => match b {
                cmd::VERSION | 0x0F => reply.extend_from_slice(VERSION_LINE),
                cmd::STATE => self.state().encode(reply),
                0x03 | 0x43 | 0x83 | 0xC3 => self.rate_code = b >> 6,
                _ => {}
            },
        }
    }
}

impl DeviceModel for BitalinoDevice {
    fn on_host_bytes(&mut self, bytes: &[u8], reply: &mut Vec<u8>) {
        for &b in bytes {
            if self.pending_pwm {
                self.pending_pwm = false; // the PWM duty cycle: no effect on what is sent
                continue;
            }
            // Commands of any mode: 0xA3 (PWM, one value byte follows), 0xB3 | O2 O1 (outputs).
            if b & 0xA3 == 0xA3 && b != 0xFF {
                self.pending_pwm = b == 0xA3;
                continue;
            }
            if !self.live {
                self.on_idle_byte(b, reply);
            } else if b == cmd::STOP || b == 0xFF {
                self.live = false;
            }
            // Other bytes while live (digital outputs) change nothing that is simulated.
        }
    }

    fn streaming_rate(&self) -> Option<f64> {
        self.live
            .then(|| RATES_HZ[usize::from(self.live_rate_code)])
    }

    fn encode(&mut self, sample: &Physical, out: &mut Vec<u8>) {
        if !self.live {
            return;
        }
        let mut adc = [0u16; MAX_CHANNELS];
        let mut n = 0;
        for input in (0..MAX_CHANNELS).filter(|i| self.mask & (1 << i) != 0) {
            let v = match self.wiring[input] {
                Some(c @ Conversion::Ecg) => c.to_adc10(sample.ecg_mv),
                Some(c @ Conversion::Eda(_)) => c.to_adc10(sample.eda_us),
                None => MID_SCALE,
            };
            self.last_adc[input] = v;
            adc[n] = v;
            n += 1;
        }
        frame::pack(&adc[..n], 0, self.seq, out);
        self.seq = (self.seq + 1) & 0x0F;
    }

    fn power_cycle(&mut self) {
        *self = Self::with_wiring(self.wiring);
    }
}
