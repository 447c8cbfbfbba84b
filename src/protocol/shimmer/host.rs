//! The host session: the start-up exchange (module doc of [`super`], "Start-up"), then the
//! [`Stream`] decoder.

use super::packet::{CH_ADC13, CH_GSR, Layout, channel_size};
use super::replies::{Inquiry, Parse, parse_fw_version, scan_version, strict};
use super::stream::{ACK, Stream};
use super::{CrcMode, FwVersion, Settings};
use crate::protocol::{ChannelInfo, Host, HostOut, Phase, Stats};

/// Seconds to wait for each command's ACK / reply.
pub const TIMEOUT_S: f64 = 2.0;
/// NACK byte.
pub const NACK: u8 = 0xFE;
/// `fw_type` of LogAndStream.
pub const FW_LOGANDSTREAM: u16 = 3;
/// Hardware version of a Shimmer3 (`HW_ID_SHIMMER3`; a Shimmer3R is 10).
pub const HW_SHIMMER3: u8 = 3;
/// Oldest LogAndStream with 3-byte timestamps (web SDK `shimmer3UsesThreeByteTimestamp`).
pub const MIN_FW: FwVersion = FwVersion {
    major: 0,
    minor: 5,
    rel: 4,
};
/// Oldest LogAndStream whose CRC framing attune knows (Java API `isBtCrcModeSupported`).
pub const MIN_FW_CRC: FwVersion = FwVersion {
    major: 0,
    minor: 13,
    rel: 7,
};

/// The start-up steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Stop,
    FwVersion,
    HwVersion,
    SetCrc,
    SetRate,
    SetSensors,
    SetGsrRange,
    Inquiry,
    Start,
}

impl Step {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Stop => "stop streaming",
            Self::FwVersion => "get firmware version",
            Self::HwVersion => "get device version",
            Self::SetCrc => "set CRC mode",
            Self::SetRate => "set sampling rate",
            Self::SetSensors => "set sensors",
            Self::SetGsrRange => "set GSR range",
            Self::Inquiry => "inquiry",
            Self::Start => "start streaming",
        }
    }

    pub(super) fn opcode(self) -> u8 {
        match self {
            Self::Stop => 0x20,
            Self::FwVersion => 0x2E,
            Self::HwVersion => 0x3F,
            Self::SetCrc => 0x8B,
            Self::SetRate => 0x05,
            Self::SetSensors => 0x08,
            Self::SetGsrRange => 0x21,
            Self::Inquiry => 0x01,
            Self::Start => 0x07,
        }
    }

    /// The reply code after the ACK, for commands that have one.
    pub(super) fn reply(self) -> Option<u8> {
        match self {
            Self::FwVersion => Some(0x2F),
            Self::HwVersion => Some(0x25),
            Self::Inquiry => Some(0x02),
            _ => None,
        }
    }

    pub(super) fn label(self) -> String {
        format!("{} (0x{:02X})", self.name(), self.opcode())
    }
}

/// A Shimmer3 LogAndStream host session.
#[derive(Debug, Clone)]
pub struct ShimmerHost {
    settings: Settings,
    phase: Phase,
    step: Step,
    sent_at: f64,
    buf: Vec<u8>,
    crc_len: usize,
    fw: Option<FwVersion>,
    device: Option<String>,
    channels: Vec<ChannelInfo>,
    stream: Option<Stream>,
    stats: Stats,
    /// Bytes dropped in this step without being understood (for the timeout message) and the
    /// first few of them.
    unexplained: u64,
    first_unexplained: Vec<u8>,
}

impl ShimmerHost {
    /// A session for `settings` (after [`Settings::check`]); [`Host::start`] begins it.
    pub fn new(settings: &Settings) -> Self {
        Self {
            settings: settings.clone(),
            phase: Phase::Starting,
            step: Step::Stop,
            sent_at: 0.0,
            buf: Vec::with_capacity(64),
            crc_len: 0,
            fw: None,
            device: None,
            channels: Vec::new(),
            stream: None,
            stats: Stats::default(),
            unexplained: 0,
            first_unexplained: Vec::new(),
        }
    }

    /// The firmware version, once known.
    pub fn firmware(&self) -> Option<FwVersion> {
        self.fw
    }

    fn command(&self, step: Step) -> Vec<u8> {
        let s = &self.settings;
        match step {
            Step::SetCrc => vec![step.opcode(), s.crc.code()],
            Step::SetRate => {
                let [lo, hi] = s.ticks().to_le_bytes();
                vec![step.opcode(), lo, hi]
            }
            Step::SetSensors => vec![step.opcode(), 0x04, u8::from(s.ppg), 0x00],
            Step::SetGsrRange => vec![step.opcode(), s.gsr_range.code()],
            _ => vec![step.opcode()],
        }
    }

    fn send(&mut self, now: f64, step: Step, out: &mut HostOut) {
        self.step = step;
        self.sent_at = now;
        self.unexplained = 0;
        self.first_unexplained.clear();
        if step == Step::SetCrc {
            // The ACK to 8B already carries the CRC in the new mode (the firmware sets the mode
            // before it sends the response).
            self.crc_len = self.settings.crc.len();
        }
        out.write.extend(self.command(step));
    }

    fn fail(&mut self, why: String) {
        self.phase = Phase::Failed(why);
        self.buf = Vec::new();
    }

    fn drop_unexplained(&mut self, n: usize) {
        let take = n.min(self.buf.len());
        let room = 8usize.saturating_sub(self.first_unexplained.len());
        self.first_unexplained
            .extend(self.buf.iter().take(take.min(room)));
        self.buf.drain(..take);
        self.unexplained += take as u64;
        self.stats.bytes_skipped += take as u64;
    }

    /// Runs the start-up on what is buffered, as far as complete data allows.
    fn advance(&mut self, now: f64, out: &mut HostOut) {
        while self.phase == Phase::Starting {
            let parse = match self.step {
                Step::Stop => match self.buf.iter().position(|&b| b == ACK) {
                    None => {
                        self.drop_unexplained(self.buf.len());
                        return;
                    }
                    Some(i) => {
                        self.drop_unexplained(i);
                        Parse::Done(1)
                    }
                },
                Step::FwVersion => match scan_version(&self.buf) {
                    (skip, _) if skip > 0 => Parse::Skip(skip, None),
                    (_, None) => Parse::Need,
                    (_, Some(len)) => Parse::Done(len),
                },
                step => strict(step, &self.buf, self.crc_len, self.settings.ppg),
            };
            match parse {
                Parse::Need => return,
                Parse::Skip(n, note) => {
                    if note.is_none() {
                        self.drop_unexplained(n);
                    } else {
                        self.buf.drain(..n.min(self.buf.len()));
                    }
                    out.notes.extend(note);
                }
                Parse::Fail(why) => self.fail(why),
                Parse::Done(len) => {
                    let reply: Vec<u8> = self.buf.drain(..len.min(self.buf.len())).collect();
                    self.on_reply(now, &reply, out);
                }
            }
        }
    }

    /// A complete reply (ACK and CRC included) to the current step.
    fn on_reply(&mut self, now: f64, reply: &[u8], out: &mut HostOut) {
        let body = reply
            .get(2..reply.len().saturating_sub(self.crc_len))
            .unwrap_or(&[]);
        let s = self.settings.clone();
        let next = match self.step {
            Step::Stop => Step::FwVersion,
            Step::FwVersion => {
                let (fw_type, fw) =
                    parse_fw_version(reply.get(1..).unwrap_or(&[])).unwrap_or((0, MIN_FW));
                if fw_type != FW_LOGANDSTREAM {
                    let name = match fw_type {
                        1 => " (BtStream)",
                        2 => " (SDLog)",
                        _ => "",
                    };
                    return self.fail(format!(
                        "firmware type {fw_type}{name} {fw} is not LogAndStream (3): flash LogAndStream"
                    ));
                }
                if fw < MIN_FW {
                    return self.fail(format!(
                        "LogAndStream {fw} is older than {MIN_FW} (2-byte timestamps)"
                    ));
                }
                if s.crc != CrcMode::Off && fw < MIN_FW_CRC {
                    return self.fail(format!(
                        "crc = \"{}\" needs LogAndStream {MIN_FW_CRC} or later (older firmware frames the \
                         CRC differently); this device runs {fw}: set crc = \"off\"",
                        s.crc.name()
                    ));
                }
                self.fw = Some(fw);
                self.device = Some(format!("LogAndStream {fw}"));
                Step::HwVersion
            }
            Step::HwVersion => {
                let hw = body.first().copied().unwrap_or(0);
                if hw != HW_SHIMMER3 {
                    let name = if hw == 10 { " (Shimmer3R)" } else { "" };
                    return self.fail(format!(
                        "device version {hw}{name} is not a Shimmer3 (3): attune decodes only the Shimmer3 \
                         inquiry (4 config bytes)"
                    ));
                }
                let fw = self.fw.unwrap_or(MIN_FW);
                self.device = Some(format!("Shimmer3 LogAndStream {fw}"));
                out.notes
                    .push(format!("device: Shimmer3 LogAndStream {fw}"));
                if s.crc == CrcMode::Off {
                    Step::SetRate
                } else {
                    Step::SetCrc
                }
            }
            Step::SetCrc => Step::SetRate,
            Step::SetRate => Step::SetSensors,
            Step::SetSensors => Step::SetGsrRange,
            Step::SetGsrRange => Step::Inquiry,
            Step::Inquiry => match self.inquiry(reply.get(1..).unwrap_or(&[])) {
                Ok(stream) => {
                    self.stream = Some(stream);
                    Step::Start
                }
                Err(why) => return self.fail(format!("inquiry: {why}")),
            },
            Step::Start => {
                self.phase = Phase::Streaming;
                let rate = s.actual_rate();
                if let Some(stream) = &self.stream {
                    self.channels = stream.layout().channels(rate);
                    let names: Vec<&str> = self.channels.iter().map(|c| c.input.as_str()).collect();
                    out.notes.push(format!(
                        "streaming {rate} Hz: {}; GSR range {}; CRC {}",
                        names.join(", "),
                        s.gsr_range.name(),
                        s.crc.name()
                    ));
                }
                let rest = std::mem::take(&mut self.buf);
                if let Some(stream) = &mut self.stream {
                    stream.push(now, &rest, out, &mut self.stats);
                }
                return;
            }
        };
        self.send(now, next, out);
    }

    /// Checks the inquiry reply against the settings.
    fn inquiry(&self, reply: &[u8]) -> Result<Stream, String> {
        let s = &self.settings;
        let inq = Inquiry::parse(reply).ok_or("incomplete")?;
        if inq.ticks != s.ticks() {
            return Err(format!(
                "the device samples every {} ticks, attune asked for {}",
                inq.ticks,
                s.ticks()
            ));
        }
        if inq.gsr_range() != s.gsr_range.code() {
            let (got, want) = (inq.gsr_range(), s.gsr_range.code());
            return Err(format!(
                "GSR range {got} in config byte 3, attune asked for {want}"
            ));
        }
        let ids = inq.ids.as_slice();
        if let Some(id) = ids.iter().find(|&&id| channel_size(id).is_none()) {
            return Err(format!("channel id 0x{id:02X} has no known size"));
        }
        let mut want = vec![CH_GSR];
        if s.ppg {
            want.push(CH_ADC13);
        }
        let mut got = ids.to_vec();
        got.sort_unstable();
        want.sort_unstable();
        if got != want {
            return Err(format!(
                "channels {} where attune asked for {}",
                hex_ids(ids),
                hex_ids(&want)
            ));
        }
        let layout = Layout::new(ids, s.gsr_range, self.crc_len)?;
        Ok(Stream::new(layout, s.ticks()))
    }
}

fn hex_ids(ids: &[u8]) -> String {
    let v: Vec<String> = ids.iter().map(|id| format!("0x{id:02X}")).collect();
    format!("[{}]", v.join(", "))
}

impl Host for ShimmerHost {
    fn start(&mut self, now: f64, out: &mut HostOut) {
        *self = Self::new(&self.settings);
        self.send(now, Step::Stop, out);
    }

    fn on_bytes(&mut self, now: f64, bytes: &[u8], out: &mut HostOut) {
        self.stats.bytes += bytes.len() as u64;
        match self.phase {
            Phase::Failed(_) => {}
            Phase::Streaming => {
                if let Some(stream) = &mut self.stream {
                    stream.push(now, bytes, out, &mut self.stats);
                }
            }
            Phase::Starting => {
                self.buf.extend_from_slice(bytes);
                self.advance(now, out);
            }
        }
    }

    fn on_tick(&mut self, now: f64, _out: &mut HostOut) {
        if self.phase != Phase::Starting || now - self.sent_at < TIMEOUT_S {
            return;
        }
        let what = if self.buf.first() == Some(&ACK) {
            "no complete reply to"
        } else {
            "no ACK to"
        };
        let mut why = format!(
            "{what} {} within {TIMEOUT_S} s: is it a Shimmer3 running LogAndStream, switched on and paired?",
            self.step.label()
        );
        if self.unexplained > 0 {
            why.push_str(&format!(
                " ({} other bytes, first {:02X?})",
                self.unexplained, self.first_unexplained
            ));
        }
        self.fail(why);
    }

    fn stop(&mut self, out: &mut HostOut) {
        out.write.push(Step::Stop.opcode());
    }

    fn phase(&self) -> &Phase {
        &self.phase
    }

    fn channels(&self) -> &[ChannelInfo] {
        &self.channels
    }

    fn stats(&self) -> Stats {
        self.stats
    }

    fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }
}
