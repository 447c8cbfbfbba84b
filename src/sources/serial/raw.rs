//! Raw captures: the bytes a serial device sent and received, with their session times, so a
//! session can be decoded again (`attune replay --raw FILE --protocol P`) and a real device's
//! capture can become a regression fixture.
//!
//! # Format (`attune-raw`, version 1)
//!
//! NDJSON, like recordings. Line 1 is the header:
//!
//! ```json
//! {"format":"attune-raw","version":1,"protocol":"bitalino","settings":{…},"baud":115200,
//!  "port":"/dev/rfcomm0","participant":"p01","attune":"0.1.0","started_unix_ms":1796132400000,
//!  "consent":{"by":"attune run","grants":[{"stream":"ecg","purposes":["process","record"]}]}}
//! ```
//!
//! then one event per line, in time order, `t` in session seconds:
//! `{"t":0.012,"open":true}` (the port was opened), `{"t":0.013,"tx":"07"}` (bytes written,
//! hex), `{"t":0.030,"rx":"4249…"}` (bytes read, hex, as one `read` returned them),
//! `{"t":9.5,"close":"read failed: …"}` (the connection ended, and why). The `settings` are the
//! protocol settings in force (`crate::protocol::Settings::to_json`); `consent` is the consent
//! in force for the device's streams when the capture started (a replay grants no more).
//!
//! # Consent
//!
//! A capture holds the participant's signals, so it is written only while the participant has
//! `process` and `record` for every stream the device feeds ([`super::may_capture`]). Without
//! it at the start nothing is written (one warning); a withdrawal during the session stops the
//! capture and deletes the file, as revoking `record` erases what it covered. The file is
//! created new (never overwritten), mode 0600.

use super::SerialSpec;
use crate::consent::{ConsentManifest, ConsentSnapshot};
use crate::model::{ParticipantId, StreamKind};
use crate::protocol::{ProtocolId, Settings};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::warn;

/// The format name in the header.
pub const RAW_FORMAT: &str = "attune-raw";
/// The version this build reads and writes.
pub const RAW_VERSION: u32 = 1;

/// The captures this process created (a source restarted by a reload appends to its own).
static OURS: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A capture's header line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    /// Always [`RAW_FORMAT`].
    pub format: String,
    /// [`RAW_VERSION`].
    pub version: u32,
    /// The protocol name.
    pub protocol: String,
    /// The protocol settings in force.
    pub settings: serde_json::Value,
    /// Baud rate.
    pub baud: u32,
    /// The port.
    pub port: String,
    /// Whose device.
    pub participant: ParticipantId,
    /// The attune version that captured it.
    pub attune: String,
    /// Wall-clock start, Unix ms.
    pub started_unix_ms: i64,
    /// Consent in force for the device's streams when the capture started.
    pub consent: ConsentManifest,
}

/// One capture event (module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    /// Session time, s.
    pub t: f64,
    /// The port was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<bool>,
    /// Bytes written, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx: Option<String>,
    /// Bytes read, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx: Option<String>,
    /// The connection ended, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<String>,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes of a hex string; `None` if it is not hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// The consent-gated capture writer of one serial source (module doc).
#[derive(Debug)]
pub struct Gate {
    path: PathBuf,
    participant: ParticipantId,
    kinds: Vec<StreamKind>,
    protocol: ProtocolId,
    settings: serde_json::Value,
    baud: u32,
    port: String,
    consent: Option<watch::Receiver<Arc<ConsentSnapshot>>>,
    file: Option<BufWriter<File>>,
    /// The capture has ended for good (refused, withdrawn, or failed).
    done: bool,
    last_flush: f64,
}

impl Gate {
    /// A capture of `spec`'s device into `path`, gated by `consent` (no consent channel: never
    /// written).
    pub fn new(
        path: PathBuf,
        spec: &SerialSpec,
        consent: Option<watch::Receiver<Arc<ConsentSnapshot>>>,
    ) -> Self {
        Self {
            path,
            participant: spec.participant.clone(),
            kinds: spec.settings.kinds(),
            protocol: spec.settings.protocol(),
            settings: spec.settings.to_json(),
            baud: spec.baud,
            port: spec.path.display().to_string(),
            consent,
            file: None,
            done: false,
            last_flush: f64::NEG_INFINITY,
        }
    }

    fn snapshot(&self) -> Option<Arc<ConsentSnapshot>> {
        self.consent.as_ref().map(|rx| rx.borrow().clone())
    }

    /// Whether writing may go on; opens the file at the first allowed event, and deletes it on a
    /// withdrawal.
    fn ready(&mut self) -> bool {
        if self.done {
            return false;
        }
        let snap = self.snapshot();
        let allowed = snap
            .as_ref()
            .is_some_and(|s| super::may_capture(s, &self.participant, &self.kinds));
        if !allowed {
            if self.file.take().is_some() {
                let _ = std::fs::remove_file(&self.path);
                warn!(path = %self.path.display(), participant = %self.participant,
                    "Raw capture stopped and deleted: the participant withdrew record consent.");
            } else {
                warn!(path = %self.path.display(), participant = %self.participant,
                    "Raw capture not written: the participant has not consented to record every stream of this device.");
            }
            self.done = true;
            return false;
        }
        if self.file.is_none() {
            match self.create(snap.as_deref()) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    warn!(path = %self.path.display(), "Raw capture not written: {e}.");
                    self.done = true;
                    return false;
                }
            }
        }
        true
    }

    fn create(&self, snap: Option<&ConsentSnapshot>) -> std::io::Result<BufWriter<File>> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
        {
            Ok(f) => f,
            // This session's own capture, reopened by a source restarted on a reload: go on.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && self.is_ours() => {
                let f = std::fs::OpenOptions::new().append(true).open(&self.path)?;
                return Ok(BufWriter::with_capacity(1 << 16, f));
            }
            Err(e) => return Err(e),
        };
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let header = RawHeader {
            format: RAW_FORMAT.into(),
            version: RAW_VERSION,
            protocol: self.protocol.name().into(),
            settings: self.settings.clone(),
            baud: self.baud,
            port: self.port.clone(),
            participant: self.participant.clone(),
            attune: env!("CARGO_PKG_VERSION").into(),
            started_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            consent: snap
                .map(|s| s.manifest_of(&self.participant, self.kinds.iter().copied(), "attune run"))
                .unwrap_or(ConsentManifest {
                    text_version: None,
                    by: None,
                    grants: Vec::new(),
                }),
        };
        serde_json::to_writer(&mut w, &header)?;
        w.write_all(b"\n")?;
        if let Ok(mut o) = OURS.lock() {
            o.insert(self.path.clone());
        }
        Ok(w)
    }

    /// Whether the file at the path is a capture this process started for this device.
    fn is_ours(&self) -> bool {
        let Ok(f) = File::open(&self.path) else {
            return false;
        };
        let mut first = String::new();
        if std::io::BufRead::read_line(&mut std::io::BufReader::new(f), &mut first).is_err() {
            return false;
        }
        serde_json::from_str::<RawHeader>(&first).is_ok_and(|h| {
            h.participant == self.participant
                && h.port == self.port
                && h.protocol == self.protocol.name()
                && OURS.lock().is_ok_and(|o| o.contains(&self.path))
        })
    }

    fn event(&mut self, e: &RawEvent) {
        if !self.ready() {
            return;
        }
        let Some(w) = &mut self.file else {
            return;
        };
        let r = serde_json::to_writer(&mut *w, e)
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"));
        if let Err(err) = r {
            warn!(path = %self.path.display(), "Raw capture stopped: {err}.");
            self.file = None;
            self.done = true;
        }
    }

    /// The port was opened.
    pub fn open(&mut self, t: f64) {
        self.event(&RawEvent {
            t,
            open: Some(true),
            tx: None,
            rx: None,
            close: None,
        });
    }

    /// Bytes read.
    pub fn rx(&mut self, t: f64, bytes: &[u8]) {
        self.event(&RawEvent {
            t,
            open: None,
            tx: None,
            rx: Some(hex(bytes)),
            close: None,
        });
    }

    /// Bytes written.
    pub fn tx(&mut self, t: f64, bytes: &[u8]) {
        self.event(&RawEvent {
            t,
            open: None,
            tx: Some(hex(bytes)),
            rx: None,
            close: None,
        });
    }

    /// The connection ended; flushed at once.
    pub fn close(&mut self, t: f64, why: &str) {
        self.event(&RawEvent {
            t,
            open: None,
            tx: None,
            rx: None,
            close: Some(why.to_owned()),
        });
        self.flush();
    }

    /// Flushes at most every 100 ms.
    pub fn flush_if_due(&mut self, t: f64) {
        if t - self.last_flush >= 0.1 {
            self.last_flush = t;
            // A withdrawal is noticed here too, between events.
            if self.file.is_some() {
                let _ = self.ready();
            }
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(w) = &mut self.file
            && let Err(e) = w.flush()
        {
            warn!(path = %self.path.display(), "Raw capture stopped: {e}.");
            self.file = None;
            self.done = true;
        }
    }
}

/// A capture that cannot be read: one line naming the line.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Bad content.
    #[error("{path}: line {line}: {message}")]
    Bad {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A capture read into memory: its header, settings and events.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The header.
    pub header: RawHeader,
    /// The settings it was made with.
    pub settings: Settings,
    /// The events, in order.
    pub events: Vec<RawEvent>,
    /// The last line was cut short (a crash or a full disk) and was dropped.
    pub torn: bool,
}

/// Reads a capture and checks it was made with `protocol` (pure over `text`; `path` names the
/// file in errors).
pub fn parse_capture(text: &str, path: &str, protocol: ProtocolId) -> Result<Capture, RawError> {
    let bad = |line: usize, message: String| RawError::Bad {
        path: path.to_owned(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate();
    let Some((_, first)) = lines.next() else {
        return Err(bad(1, "empty file: not an attune raw capture".into()));
    };
    let header: RawHeader = serde_json::from_str(first)
        .map_err(|e| bad(1, format!("not an attune raw capture header: {e}")))?;
    if header.format != RAW_FORMAT {
        return Err(bad(
            1,
            format!("format is {:?}, expected {RAW_FORMAT:?}", header.format),
        ));
    }
    if header.version != RAW_VERSION {
        return Err(bad(
            1,
            format!(
                "unsupported version {} (this build reads {RAW_VERSION})",
                header.version
            ),
        ));
    }
    if header.protocol != protocol.name() {
        return Err(bad(
            1,
            format!(
                "the capture was made with protocol {}, not {protocol}",
                header.protocol
            ),
        ));
    }
    let settings = Settings::from_json(protocol, header.settings.clone())
        .map_err(|e| bad(1, format!("settings: {e}")))?;
    settings
        .check()
        .map_err(|e| bad(1, format!("settings: {e}")))?;
    let mut events = Vec::new();
    let mut last_t = f64::NEG_INFINITY;
    let mut torn = false;
    let lines: Vec<(usize, &str)> = lines.collect();
    let n_lines = lines.len();
    for (k, (i, line)) in lines.into_iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e: RawEvent = match serde_json::from_str(line) {
            Ok(e) => e,
            // A last line without its newline was cut by a crash or a full disk: dropped.
            Err(_) if k + 1 == n_lines && !text.ends_with('\n') => {
                torn = true;
                break;
            }
            Err(e) => return Err(bad(i + 1, e.to_string())),
        };
        if !e.t.is_finite() || e.t < last_t || !(0.0..=crate::recording::MAX_TIME_S).contains(&e.t)
        {
            return Err(bad(
                i + 1,
                format!(
                    "time {} goes backwards, is not finite or lies beyond 10^7 s",
                    e.t
                ),
            ));
        }
        if e.open == Some(false) {
            return Err(bad(i + 1, "\"open\" is only ever true".into()));
        }
        last_t = e.t;
        let n = [
            e.open.is_some(),
            e.tx.is_some(),
            e.rx.is_some(),
            e.close.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if n != 1 {
            return Err(bad(
                i + 1,
                "an event has exactly one of open, tx, rx, close".into(),
            ));
        }
        for h in [&e.tx, &e.rx].into_iter().flatten() {
            if unhex(h).is_none() {
                return Err(bad(i + 1, "bytes must be hex".into()));
            }
        }
        events.push(e);
    }
    Ok(Capture {
        header,
        settings,
        events,
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: PathBuf) -> SerialSpec {
        SerialSpec {
            participant: ParticipantId::new("p01").unwrap(),
            path: PathBuf::from("/dev/ttyX"),
            baud: 115_200,
            settings: Settings::defaults(ProtocolId::Textline),
            silence_s: 2.0,
            record_raw: Some(path),
        }
    }

    fn snap(epoch: u64, purposes: &[crate::consent::Purpose]) -> Arc<ConsentSnapshot> {
        let p = ParticipantId::new("p01").unwrap();
        let kinds = Settings::defaults(ProtocolId::Textline).kinds();
        let mut triples = Vec::new();
        for k in &kinds {
            for pu in purposes {
                triples.push((p.clone(), *k, *pu));
            }
        }
        Arc::new(ConsentSnapshot::from_triples(epoch, triples))
    }

    #[test]
    fn a_capture_is_written_only_under_record_consent_and_deleted_on_withdrawal() {
        use crate::consent::Purpose::{Process, Record};
        let dir = tempfile::tempdir().unwrap();
        // Without record consent: nothing is written, ever.
        let path = dir.path().join("a.ndjson");
        let (_tx, rx) = watch::channel(snap(1, &[Process]));
        let mut g = Gate::new(path.clone(), &spec(path.clone()), Some(rx));
        g.open(0.0);
        g.rx(0.1, b"300\r\n");
        g.close(0.2, "x");
        assert!(!path.exists());
        // With it: header, events, mode 0600; the header carries the consent in force.
        let path = dir.path().join("b.ndjson");
        let (tx, rx) = watch::channel(snap(1, &[Process, Record]));
        let mut g = Gate::new(path.clone(), &spec(path.clone()), Some(rx));
        g.open(0.0);
        g.rx(0.1, b"300\r\n");
        g.flush_if_due(0.2);
        let text = std::fs::read_to_string(&path).unwrap();
        let cap = parse_capture(&text, "b", ProtocolId::Textline).unwrap();
        assert_eq!(cap.events.len(), 2);
        assert_eq!(cap.events[1].rx.as_deref(), Some("3330300d0a"));
        assert!(
            cap.header
                .consent
                .grants
                .iter()
                .all(|g| g.purposes.contains(&Record))
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Withdrawn: the capture is deleted and nothing more is written.
        tx.send(snap(2, &[Process])).unwrap();
        g.rx(0.3, b"301\r\n");
        assert!(!path.exists());
        g.rx(0.4, b"302\r\n");
        assert!(!path.exists());
        // An existing file is never overwritten.
        let path = dir.path().join("c.ndjson");
        std::fs::write(&path, "mine").unwrap();
        let (_tx, rx) = watch::channel(snap(1, &[Process, Record]));
        let mut g = Gate::new(path.clone(), &spec(path.clone()), Some(rx));
        g.open(0.0);
        g.close(0.1, "x");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
    }

    #[test]
    fn hex_round_trips_and_refuses_non_hex() {
        let b = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(hex(&b), "00017f80ff");
        assert_eq!(unhex("00017f80ff"), Some(b.to_vec()));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex("+4"), None);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_implausible_times_name_their_line() {
        let h = r#"{"format":"attune-raw","version":1,"protocol":"textline","settings":{},"baud":115200,"port":"/dev/x","participant":"p01","attune":"0","started_unix_ms":0,"consent":{"grants":[]}}"#;
        let text = format!(
            "{h}\n{{\"t\":0.1,\"open\":true}}\n{{\"t\":0.2,\"rx\":\"33\"}}\n{{\"t\":0.3,\"rx\":\"3"
        );
        let cap = parse_capture(&text, "f", ProtocolId::Textline).unwrap();
        assert!(cap.torn);
        assert_eq!(cap.events.len(), 2);
        // A torn line that is not the last is an error.
        let text = format!("{h}\n{{\"t\":0.1,\"open\":tr\n{{\"t\":0.2,\"rx\":\"33\"}}\n");
        assert!(parse_capture(&text, "f", ProtocolId::Textline).is_err());
        let text = format!("{h}\n{{\"t\":0.1,\"open\":true}}\n{{\"t\":1e9,\"rx\":\"33\"}}\n");
        let e = parse_capture(&text, "f", ProtocolId::Textline).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        let text = format!("{h}\n{{\"t\":0.1,\"open\":false}}\n");
        let e = parse_capture(&text, "f", ProtocolId::Textline).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn a_capture_of_another_protocol_or_version_is_refused_with_its_line() {
        let h = |proto: &str, v: u32| {
            format!(
                r#"{{"format":"attune-raw","version":{v},"protocol":"{proto}","settings":{{}},"baud":115200,"port":"/dev/x","participant":"p01","attune":"0","started_unix_ms":0,"consent":{{"grants":[]}}}}"#
            )
        };
        let e = parse_capture(&h("shimmer", 1), "f", ProtocolId::Bitalino).unwrap_err();
        assert!(e.to_string().contains("made with protocol shimmer"), "{e}");
        let e = parse_capture(&h("bitalino", 2), "f", ProtocolId::Bitalino).unwrap_err();
        assert!(e.to_string().contains("unsupported version 2"), "{e}");
        let text = format!("{}\n{{\"t\":1.0,\"rx\":\"0g\"}}\n", h("bitalino", 1));
        let e = parse_capture(&text, "f", ProtocolId::Bitalino).unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("hex"),
            "{e}"
        );
        let text = format!(
            "{}\n{{\"t\":1.0,\"rx\":\"00\",\"tx\":\"00\"}}\n",
            h("bitalino", 1)
        );
        assert!(parse_capture(&text, "f", ProtocolId::Bitalino).is_err());
        let text = format!(
            "{}\n{{\"t\":1.0,\"open\":true}}\n{{\"t\":0.5,\"rx\":\"00\"}}\n",
            h("bitalino", 1)
        );
        let e = parse_capture(&text, "f", ProtocolId::Bitalino).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
    }
}
