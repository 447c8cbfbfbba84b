//! Start-up replies: pure parsers for what the device answers to the commands of
//! [`super::host`] (module doc of [`super`], "Start-up"; byte layouts in `SPEC.md`).

use super::FwVersion;
use super::crc;
use super::host::{NACK, Step};
use super::stream::{ACK, INSTREAM, STATUS, describe};

/// What the head of the start-up buffer holds.
pub(super) enum Parse {
    /// Not complete yet.
    Need,
    /// Drop this many bytes (a status the device sent on its own, a stray ACK); a note, if the
    /// bytes were understood.
    Skip(usize, Option<String>),
    /// The reply, ACK and CRC included, is this long.
    Done(usize),
    /// The session cannot go on.
    Fail(String),
}

/// An inquiry reply: `02 <ticks u16 LE> <config 4 B> <nCh> <buffer> <nCh ids>` (Shimmer3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    /// Sampling period, device ticks.
    pub ticks: u16,
    /// The four config setup bytes.
    pub config: [u8; 4],
    /// The buffer size byte.
    pub buffer: u8,
    /// Channel ids in packet order.
    pub ids: Vec<u8>,
}

impl Inquiry {
    /// Parses a complete reply starting at its `02` (no ACK, no CRC).
    pub fn parse(reply: &[u8]) -> Option<Self> {
        let (&code, rest) = reply.split_first()?;
        if code != 0x02 {
            return None;
        }
        let head = rest.get(..8)?;
        let n = usize::from(*head.get(6)?);
        Some(Self {
            ticks: u16::from_le_bytes([*head.first()?, *head.get(1)?]),
            config: [*head.get(2)?, *head.get(3)?, *head.get(4)?, *head.get(5)?],
            buffer: *head.get(7)?,
            ids: rest.get(8..8 + n)?.to_vec(),
        })
    }

    /// The GSR range in config byte 3, bits 1..3 (0..3, 4 = auto).
    pub fn gsr_range(&self) -> u8 {
        (self.config[3] & 0x0E) >> 1
    }
}

/// Parses `2F <fw_type u16 LE> <major u16 LE> <minor> <rel>`: (fw_type, version).
pub fn parse_fw_version(reply: &[u8]) -> Option<(u16, FwVersion)> {
    match reply {
        [0x2F, t0, t1, m0, m1, minor, rel, ..] => Some((
            u16::from_le_bytes([*t0, *t1]),
            FwVersion {
                major: u16::from_le_bytes([*m0, *m1]),
                minor: *minor,
                rel: *rel,
            },
        )),
        _ => None,
    }
}

/// Parses `04 <ticks u16 LE>` (the reply to `03`): the sampling period in ticks.
pub fn parse_rate(reply: &[u8]) -> Option<u16> {
    match reply {
        [0x04, lo, hi, ..] => Some(u16::from_le_bytes([*lo, *hi])),
        _ => None,
    }
}

/// Finds `FF 2F <6 bytes>`: (bytes to skip before it, its length once complete). A trailing
/// `FF` is kept until the byte after it shows whether it starts the reply.
pub(super) fn scan_version(buf: &[u8]) -> (usize, Option<usize>) {
    let mut i = 0;
    loop {
        match buf.get(i..).and_then(|r| r.iter().position(|&b| b == ACK)) {
            None => return (buf.len(), None),
            Some(j) => i += j,
        }
        match buf.get(i + 1) {
            None => return (i, None),
            Some(0x2F) if i > 0 => return (i, None),
            Some(0x2F) => return (0, (buf.len() >= 8).then_some(8)),
            Some(_) => i += 1,
        }
    }
}

/// The reply to a step that must answer at once (everything after the version).
pub(super) fn strict(step: Step, buf: &[u8], crc_len: usize, ppg: bool) -> Parse {
    let Some(&head) = buf.first() else {
        return Parse::Need;
    };
    let ack_len = 1 + crc_len;
    match head {
        INSTREAM => status(buf, 0, crc_len),
        NACK => Parse::Fail(format!("{} was refused (NACK 0xFE)", step.label())),
        ACK => match step.reply() {
            None => match buf.get(..ack_len) {
                None => Parse::Need,
                Some(ack) if crc::crc_ok(ack, crc_len) => Parse::Done(ack_len),
                Some(_) if buf.get(1) == Some(&INSTREAM) => status(buf, 1, crc_len),
                Some(_) => Parse::Fail(format!("the ACK to {} failed its CRC", step.label())),
            },
            Some(code) => {
                let Some(&second) = buf.get(1) else {
                    return Parse::Need;
                };
                match second {
                    c if c == code => reply(step, buf, crc_len, ppg),
                    INSTREAM => status(buf, 1, crc_len),
                    _ => stray_ack(step, buf, crc_len),
                }
            }
        },
        other => Parse::Fail(format!(
            "unexpected byte 0x{other:02X} where the ACK (0xFF) to {} was expected",
            step.label()
        )),
    }
}

/// A reply-bearing step whose head is `FF` but not `FF <code>`: an extra ACK frame (`FF` + its
/// CRC) followed by another `FF` is skipped; bytes that may still become one wait.
fn stray_ack(step: Step, buf: &[u8], crc_len: usize) -> Parse {
    let mut ack = vec![ACK];
    crc::append_crc(&mut ack, 0, crc_len);
    let head = buf.get(..ack.len()).unwrap_or(buf);
    let unexpected = |at: usize| {
        let byte = buf.get(at).copied().unwrap_or(0);
        let code = step.reply().unwrap_or(0);
        Parse::Fail(format!(
            "unexpected byte 0x{byte:02X} after the ACK to {} (expected 0x{code:02X})",
            step.label()
        ))
    };
    if !ack.starts_with(head) {
        return unexpected(1);
    }
    match buf.get(ack.len()) {
        None => Parse::Need,
        Some(&ACK) => Parse::Skip(ack.len(), Some("skipped a stray ACK".into())),
        Some(_) => unexpected(ack.len()),
    }
}

/// A status the device sent on its own: `[FF] 8A 71 <bits>` + CRC, `8A` at `buf[at]`.
fn status(buf: &[u8], at: usize, crc_len: usize) -> Parse {
    let Some(&code) = buf.get(at + 1) else {
        return Parse::Need;
    };
    if code != STATUS {
        return Parse::Fail(format!(
            "unexpected in-stream response 0x8A 0x{code:02X} during start-up"
        ));
    }
    let len = at + 3 + crc_len;
    match buf.get(..len) {
        None => Parse::Need,
        Some(f) if crc::crc_ok(f, crc_len) => {
            Parse::Skip(len, Some(describe(f.get(at + 1..at + 3).unwrap_or(&[]))))
        }
        Some(_) => Parse::Fail("an in-stream status during start-up failed its CRC".into()),
    }
}

/// `FF <code> …` for a reply-bearing step, once complete.
fn reply(step: Step, buf: &[u8], crc_len: usize, ppg: bool) -> Parse {
    let body_len = match step {
        Step::FwVersion => 6,
        Step::HwVersion => 1,
        Step::Inquiry => match buf.get(8) {
            None => return Parse::Need,
            Some(&n) if usize::from(n) != 1 + usize::from(ppg) => {
                return Parse::Fail(format!(
                    "inquiry: {n} channels where attune asked for {} (a Shimmer3R sends 7 config bytes \
                     and is not supported)",
                    1 + usize::from(ppg)
                ));
            }
            Some(&n) => 8 + usize::from(n),
        },
        _ => 0,
    };
    let len = 2 + body_len + crc_len;
    match buf.get(..len) {
        None => Parse::Need,
        Some(f) if crc::crc_ok(f, crc_len) => Parse::Done(len),
        Some(_) => Parse::Fail(format!("the reply to {} failed its CRC", step.label())),
    }
}
