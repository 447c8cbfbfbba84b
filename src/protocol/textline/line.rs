//! One complete line (the bytes before its `\n`) → what it is. Pure and allocation-free.
//!
//! Order of the checks (`SPEC.md` §3): strip one trailing `\r`; a blank line is ignored; then
//! the `*HH` suffix (checksums come first, so any corruption of a checked line is a checksum
//! failure, whatever it broke); then ASCII (printable or tab); a line starting with `#` is a
//! comment; the prefix; the fields.

use super::{ChecksumMode, MAX_LINE, Settings, checksum};
use crate::protocol::LossReason;

/// What one line is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Class<'a> {
    /// A sample: the value column's number and, with a time column, the device ms.
    Sample {
        /// The number in the value column (finite).
        value: f64,
        /// The time column's ms (`None` without a time column).
        time_ms: Option<u32>,
    },
    /// A `#` line (a banner or a note from the sketch): the text after the `#`, trimmed.
    Comment(&'a [u8]),
    /// Spaces and tabs only (nothing at all included).
    Blank,
    /// A prefix is set and the line lacks it: another stream's line.
    Foreign,
    /// Not a sample: why (`Crc`: checksum wrong or missing where required; `BadLine`: anything
    /// else).
    Bad(LossReason),
}

/// A classified line, and whether it carried a correct checksum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classified<'a> {
    /// What the line is.
    pub class: Class<'a>,
    /// It ended in a `*HH` that matched (and checksums are not `off`).
    pub verified: bool,
}

/// Classifies `raw`, a line without its `\n`. `seen`: a verified checksum was seen earlier in
/// the session (for [`ChecksumMode::Auto`]).
pub fn classify<'a>(raw: &'a [u8], s: &Settings, seen: bool) -> Classified<'a> {
    let class = |class| Classified {
        class,
        verified: false,
    };
    if raw.len() > MAX_LINE {
        return class(Class::Bad(LossReason::BadLine));
    }
    let line = raw.strip_suffix(b"\r").unwrap_or(raw);
    if line.iter().all(|&b| is_space(b)) {
        return class(Class::Blank);
    }
    let (body, verified) = match (split_checksum(line), s.checksum) {
        (Some((body, _)), ChecksumMode::Off) => (body, false),
        (Some((body, want)), _) if checksum(body) == want => (body, true),
        (Some(_), _) => return class(Class::Bad(LossReason::Crc)),
        (None, ChecksumMode::Required) => return class(Class::Bad(LossReason::Crc)),
        (None, ChecksumMode::Auto) if seen => return class(Class::Bad(LossReason::Crc)),
        (None, _) => (line, false),
    };
    let done = |class| Classified { class, verified };
    if !body
        .iter()
        .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b))
    {
        return done(Class::Bad(LossReason::BadLine));
    }
    let body = trim(body);
    if let Some(text) = body.strip_prefix(b"#") {
        return done(Class::Comment(trim(text)));
    }
    let rest = match &s.prefix {
        Some(p) => match body.strip_prefix(p.as_bytes()) {
            Some(rest) => trim(rest),
            None => return done(Class::Foreign),
        },
        None => body,
    };
    done(sample(rest, s))
}

/// The value (and time) columns of `fields`, or a bad line.
fn sample(fields: &[u8], s: &Settings) -> Class<'static> {
    let (mut value, mut time) = (None, None);
    let last = s
        .time_column
        .map_or(s.value_column, |t| t.max(s.value_column));
    for (i, field) in Fields::new(fields).enumerate().take(last + 1) {
        if i == s.value_column {
            value = parse_value(field);
        }
        if Some(i) == s.time_column {
            time = parse_ms(field);
        }
    }
    match (value, s.time_column, time) {
        (Some(value), None, _) => Class::Sample {
            value,
            time_ms: None,
        },
        (Some(value), Some(_), Some(ms)) => Class::Sample {
            value,
            time_ms: Some(ms),
        },
        _ => Class::Bad(LossReason::BadLine),
    }
}

/// `(body, HH)` if `line` ends in `*` and two hex digits (either case).
pub fn split_checksum(line: &[u8]) -> Option<(&[u8], u8)> {
    let (body, [b'*', hi, lo]) = line.split_last_chunk::<3>()? else {
        return None;
    };
    Some((body, hex(*hi)? << 4 | hex(*lo)?))
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_space(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_space(*last) {
            break;
        }
        b = rest;
    }
    b
}

/// A decimal number: digits, sign, point and exponent only (so no `inf`, `nan`, `ovf`), finite.
pub fn parse_value(field: &[u8]) -> Option<f64> {
    let ok = !field.is_empty()
        && field
            .iter()
            .all(|&b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    let v: f64 = std::str::from_utf8(field)
        .ok()
        .filter(|_| ok)?
        .parse()
        .ok()?;
    v.is_finite().then_some(v)
}

/// Device ms: 1–10 decimal digits, at most `u32::MAX`.
pub fn parse_ms(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 10 || !field.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The fields of a trimmed line. A field ends at `,`, `;`, a space or a tab; a run of spaces
/// and tabs is one separator, and so is one `,` or `;` with spaces around it. `a,,b` has an
/// empty middle field and `a,` an empty last one.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    /// The fields of `line` (trimmed here).
    pub fn new(line: &'a [u8]) -> Self {
        Self {
            rest: Some(trim(line)),
        }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let end = rest
            .iter()
            .position(|&b| matches!(b, b',' | b';' | b' ' | b'\t'))
            .unwrap_or(rest.len());
        let (field, tail) = rest.split_at(end);
        if tail.is_empty() {
            self.rest = None;
            return Some(field);
        }
        let mut tail = trim(tail);
        if let [b',' | b';', after @ ..] = tail {
            tail = trim(after);
        }
        self.rest = Some(tail);
        Some(field)
    }
}
