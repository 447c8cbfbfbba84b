//! The host side of a BITalino session: the paced start-up exchange, then the stream decoder
//! (module doc of [`super`]).

use super::*;

/// Where the start-up exchange is.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `start` not called yet.
    New,
    /// `0x00` written; discarding until `until`.
    Draining { until: f64 },
    /// `0x07` written at `sent`; waiting for the version line.
    AwaitVersion { sent: f64 },
    /// Writing the rate and start commands; `next` is the index of the next, `last` the time of
    /// the previous write.
    Configure { next: usize, last: f64 },
    /// Decoding.
    Streaming,
    /// `stop` was called, or the session failed: bytes are discarded.
    Done,
}

/// The host side of a BITalino session (module doc).
#[derive(Debug, Clone)]
pub struct BitalinoHost {
    settings: Settings,
    commands: [u8; 2],
    step: Step,
    phase: Phase,
    channels: Vec<ChannelInfo>,
    device: Option<String>,
    decoder: Decoder,
    /// The version reply so far (bounded: see `on_version_bytes`).
    reply: Vec<u8>,
    /// The first bytes of the version reply and how many came, for the failure message.
    reply_head: Vec<u8>,
    reply_len: u64,
    bytes: u64,
}

/// A version line longer than this after `BITalino` is not one.
const MAX_VERSION_LINE: usize = 64;

impl BitalinoHost {
    /// A session for `settings` (checked).
    pub fn new(settings: &Settings) -> Self {
        let rate = rate_code(settings.rate_hz).unwrap_or(3);
        Self {
            settings: settings.clone(),
            commands: [
                rate << 6 | cmd::RATE,
                settings.mask() << 2 | cmd::START_LIVE,
            ],
            step: Step::New,
            phase: Phase::Starting,
            channels: Vec::new(),
            device: None,
            decoder: Decoder::new(settings.conversions()),
            reply: Vec::new(),
            reply_head: Vec::new(),
            reply_len: 0,
            bytes: 0,
        }
    }

    /// The decoder's counters.
    pub fn decode_stats(&self) -> DecodeStats {
        self.decoder.stats()
    }

    fn fail(&mut self, why: String) {
        self.phase = Phase::Failed(why);
        self.step = Step::Done;
    }

    fn on_version_bytes(&mut self, bytes: &[u8], sent: f64, out: &mut HostOut) {
        self.reply_len += bytes.len() as u64;
        let room = 16usize.saturating_sub(self.reply_head.len());
        self.reply_head.extend(bytes.iter().take(room));
        self.reply.extend_from_slice(bytes);
        const HEADER: &[u8] = b"BITalino";
        loop {
            let Some(at) = find(&self.reply, HEADER) else {
                // Keep what could be the start of a header split across reads.
                let keep = self.reply.len().min(HEADER.len() - 1);
                self.reply.drain(..self.reply.len() - keep);
                return;
            };
            match self.reply[at..].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let line = self.reply[at..at + nl].to_vec();
                    self.reply.clear();
                    return self.on_version_line(&line, sent, out);
                }
                None if self.reply.len() - at > MAX_VERSION_LINE => {
                    self.reply.drain(..at + 1);
                }
                None => {
                    self.reply.drain(..at);
                    return;
                }
            }
        }
    }

    fn on_version_line(&mut self, line: &[u8], sent: f64, out: &mut HostOut) {
        let text = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_owned();
        match firmware_major(&text) {
            Some(major) if major >= 5 => {
                out.notes.push(format!("device: {text}"));
                self.device = Some(text);
                self.step = Step::Configure {
                    next: 0,
                    last: sent,
                };
            }
            Some(major) => self.fail(format!(
                "the device is an original BITalino (\"{text}\", firmware {major}); attune \
                 supports only the BITalino (r)evolution (firmware 5 or later)"
            )),
            None => self.fail(format!(
                "the device answered \"{text}\", which names no firmware version; attune \
                 supports only the BITalino (r)evolution (BITalino_v5 or later)"
            )),
        }
    }

    fn start_streaming(&mut self, out: &mut HostOut) {
        self.channels = self.settings.channel_infos();
        let list: Vec<String> = self
            .channels
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({}, {}-bit)",
                    c.input,
                    c.kind.name(),
                    c.conversion,
                    c.bits.unwrap_or(10)
                )
            })
            .collect();
        out.notes.push(format!(
            "streaming {} at {} Hz, {}-byte frames",
            list.join(", "),
            self.settings.rate_hz,
            self.decoder.frame_len()
        ));
        self.phase = Phase::Streaming;
        self.step = Step::Streaming;
    }
}

/// The integer after `_v` in a version line (`BITalino_v5.1` → 5), as cpp-api reads it.
pub(super) fn firmware_major(line: &str) -> Option<u32> {
    let rest = &line[line.find("_v")? + 2..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Host for BitalinoHost {
    fn start(&mut self, now: f64, out: &mut HostOut) {
        *self = Self::new(&self.settings);
        out.write.push(cmd::STOP);
        self.step = Step::Draining {
            until: now + COMMAND_GAP_S,
        };
    }

    fn on_bytes(&mut self, _now: f64, bytes: &[u8], out: &mut HostOut) {
        self.bytes += bytes.len() as u64;
        match self.step {
            Step::AwaitVersion { sent } => self.on_version_bytes(bytes, sent, out),
            Step::Streaming => self.decoder.feed(bytes, &mut out.decoded),
            // Stale frames, stray replies, bytes after stop: discarded.
            Step::New | Step::Draining { .. } | Step::Configure { .. } | Step::Done => {}
        }
    }

    fn on_tick(&mut self, now: f64, out: &mut HostOut) {
        match self.step {
            Step::Draining { until } if now >= until => {
                out.write.push(cmd::VERSION);
                self.step = Step::AwaitVersion { sent: now };
            }
            Step::AwaitVersion { sent } if now >= sent + VERSION_TIMEOUT_S => {
                if self.reply_len == 0 {
                    self.fail(
                        "no answer to the version request (0x07) within 2 s: is it a BITalino, \
                         switched on and paired?"
                            .to_owned(),
                    );
                } else {
                    let more = if self.reply_len > self.reply_head.len() as u64 {
                        " …"
                    } else {
                        ""
                    };
                    self.fail(format!(
                        "the device answered the version request (0x07), but not as a BITalino: \
                         {} bytes and no \"BITalino_v…\" line ({}{more})",
                        self.reply_len,
                        hex(&self.reply_head)
                    ));
                }
            }
            Step::Configure { next, last } if now >= last + COMMAND_GAP_S => {
                out.write.push(self.commands[next]);
                if next + 1 == self.commands.len() {
                    self.start_streaming(out);
                } else {
                    self.step = Step::Configure {
                        next: next + 1,
                        last: now,
                    };
                }
            }
            _ => {}
        }
    }

    fn stop(&mut self, out: &mut HostOut) {
        if self.step == Step::Streaming {
            self.decoder.finish(&mut out.decoded);
        }
        if self.step != Step::New {
            out.write.push(cmd::STOP);
        }
        self.step = Step::Done;
    }

    fn phase(&self) -> &Phase {
        &self.phase
    }

    fn channels(&self) -> &[ChannelInfo] {
        &self.channels
    }

    fn stats(&self) -> Stats {
        let d = self.decoder.stats();
        Stats {
            bytes: self.bytes,
            frames: d.frames,
            crc_errors: d.crc_errors,
            frames_lost: d.frames_lost,
            bytes_skipped: d.bytes_skipped,
            bad_lines: 0,
        }
    }

    fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }
}
