//! Log output on stderr: plain text (no ANSI colour codes, which would reach files and pipes)
//! or JSON, with every control character from logged input escaped.
//!
//! Log fields quote what the outside world sends (a marker label from a recording, a client's
//! name from the socket). A raw ESC or CR in them could rewrite the reader's terminal or forge
//! a log line, so the writer escapes C0 controls (except the newline that ends each event and
//! tab), DEL and the two-byte UTF-8 C1 controls, as `\x1b`. JSON logs are escaped by the
//! encoder already and pass through unchanged.

use super::{Common, LogFormat};
use std::io::{self, Write};
use tracing_subscriber::EnvFilter;

/// Sets up logging for the process (`-v`, `-q`, `ATTUNE_LOG`, `--log-format`).
pub fn init(c: &Common) {
    let default = match (c.quiet, c.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("ATTUNE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| EscapingWriter(io::stderr()))
        .with_ansi(false)
        .with_target(false);
    let _ = match c.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Escapes control characters on their way to the inner writer (module doc).
pub struct EscapingWriter<W>(pub W);

/// `buf` with control bytes escaped; `\n` and `\t` kept.
pub fn escape_bytes(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut i = 0;
    while let Some(&b) = buf.get(i) {
        let c1 = b == 0xc2 && buf.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
        if c1 {
            let n = buf.get(i + 1).copied().unwrap_or(0);
            out.extend_from_slice(format!("\\u{{{n:x}}}").as_bytes());
            i += 2;
            continue;
        }
        if (b < 0x20 && b != b'\n' && b != b'\t') || b == 0x7f {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf
            .iter()
            .any(|&b| (b < 0x20 && b != b'\n' && b != b'\t') || b >= 0x7f)
        {
            self.0.write_all(&escape_bytes(buf))?;
        } else {
            self.0.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_text_is_kept() {
        let s = "label=a\u{1b}[31mRED\rX \u{9b}2J é ü\tok\n";
        let out = String::from_utf8(escape_bytes(s.as_bytes())).unwrap();
        assert_eq!(out, "label=a\\x1b[31mRED\\x0dX \\u{9b}2J é ü\tok\n");
        let mut w = EscapingWriter(Vec::new());
        w.write_all(s.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(w.0).unwrap(), out);
    }
}
