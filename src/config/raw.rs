//! The raw configuration: the TOML file's shape, as serde reads it. Runtime code never sees
//! these types; [`super::validate`] turns them into [`super::Config`].
//!
//! The doc comments here are the reference for `config/*.toml` (`config/attune.toml` shows
//! every key with its default and range).
//!
//! Sources are a closed enum tagged by their `type` key (`#[serde(tag = "type")]` semantics).
//! serde's internally tagged enums buffer their content and lose the positions `toml::Spanned`
//! needs, so `lift_source_tags` moves each source's `type` into an outer key on the parsed
//! (spanned) document first and [`RawSource`] is read externally tagged from there: errors
//! inside a source keep their exact line. Adding a source kind is one variant here, one struct,
//! and one arm in validation.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The whole file. Read it through [`super::Config::parse`], which lifts the source tags first.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Daemon-wide settings.
    #[serde(default)]
    pub daemon: RawDaemon,
    /// The session recorder.
    #[serde(default)]
    pub recorder: RawRecorder,
    /// The participants (`[[participant]]`), at least one.
    #[serde(default)]
    pub participant: Vec<Spanned<RawParticipant>>,
    /// `[ws]`: the WebSocket transport (its keys: `publish::transport::ws`).
    pub ws: Option<Spanned<toml::Table>>,
    /// `[osc]`: the OSC transport (its keys: `publish::transport::osc`).
    pub osc: Option<Spanned<toml::Table>>,
    /// `[mqtt]`: the MQTT transport (its keys: `publish::transport::mqtt`).
    pub mqtt: Option<Spanned<toml::Table>>,
    /// `[lsl]`: the LSL outlet (its keys: `publish::transport::lsl`).
    pub lsl: Option<Spanned<toml::Table>>,
}

/// `[daemon]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    /// Subscriber socket path. Default: `$XDG_RUNTIME_DIR/attune/attune.sock` (or
    /// `/tmp/attune-UID/attune.sock`), as `--socket`. A relative path resolves against the
    /// config file's directory; `~` is not expanded.
    pub socket: Option<Spanned<String>>,
    /// Data directory (consent ledger, recordings, profiles). Default: `$XDG_DATA_HOME/attune`
    /// (or `~/.local/share/attune`), as `--data-dir`. Relative: against the config file's
    /// directory; `~` is not expanded.
    pub data_dir: Option<Spanned<String>>,
    /// Per-subscriber queue bound, messages; a slower subscriber loses its oldest messages and
    /// is told how many (`lagged`). Default 4096, range 1..=1000000.
    pub queue: Option<Spanned<i64>>,
    /// Bound of the one channel from the sources to the engine, inputs (policy Block: a full
    /// channel makes the sources wait, nothing is dropped). Default 1024, range 1..=1000000.
    pub input_queue: Option<Spanned<i64>>,
    /// Session clock speed, a multiple of real time. Default 1, range 0.01..=1000000; other than
    /// 1 only when every source is `simulate` or `replay` (a device cannot be sped up).
    pub speed: Option<Spanned<f64>>,
}

/// `[recorder]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecorder {
    /// Record the sessions of participants who consented to `record`. Default true.
    pub enabled: Option<bool>,
    /// How often the recorder flushes to disk, ms. Default 100, range 10..=1000.
    pub flush_every_ms: Option<Spanned<i64>>,
}

/// `[[participant]]`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawParticipant {
    /// Pseudonymous id (`p01`): 1-64 ASCII letters, digits, `-`, `_` or `.`, not starting with
    /// `.`; unique in the file. Required.
    pub id: Spanned<String>,
    /// The participant's sources (`[[participant.source]]`), at least one.
    #[serde(default)]
    pub source: Vec<Spanned<RawSource>>,
}

/// `[[participant.source]]`: one device (or stand-in) of a participant, chosen by `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawSource {
    /// `type = "simulate"`: a simulated participant producing data live.
    Simulate(Box<RawSimulate>),
    /// `type = "replay"`: a recording replayed as this participant.
    Replay(RawReplay),
    /// `type = "serial"`: a device on a serial port (USB-serial, Bluetooth RFCOMM, a
    /// simulator's pseudo-terminal).
    Serial(Box<RawSerial>),
    /// `type = "ble"`: a Bluetooth LE heart-rate strap.
    Ble(RawBle),
}

impl RawSource {
    /// The `type` value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Simulate(_) => "simulate",
            Self::Replay(_) => "replay",
            Self::Serial(_) => "serial",
            Self::Ble(_) => "ble",
        }
    }
}

impl Serialize for RawSource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let table = match self {
            Self::Simulate(x) => toml::Table::try_from(x.as_ref()),
            Self::Replay(x) => toml::Table::try_from(x),
            Self::Serial(x) => toml::Table::try_from(x.as_ref()),
            Self::Ble(x) => toml::Table::try_from(x),
        };
        let mut table = table.map_err(S::Error::custom)?;
        table.insert("type".to_owned(), self.type_name().into());
        table.serialize(s)
    }
}

/// `type = "simulate"`: every key optional.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimulate {
    /// Picks the simulated person and every random draw. Default: a stable hash of the
    /// participant id (`LiveSpec::default_seed`), the same person on every run and machine.
    pub seed: Option<u64>,
    /// What happens: `"rest"` or `"rest-then-stress"`. Default `"rest-then-stress"`.
    pub scenario: Option<RawScenario>,
    /// With `rest-then-stress`: session time of the stress onset, s. Default 300, range
    /// 0..=1000000; refused with `rest`.
    pub stress_onset_s: Option<Spanned<f64>>,
    /// EDA sampling rate, Hz. Default 32, range (0, 1000].
    pub eda_rate_hz: Option<Spanned<f64>>,
    /// The RR stream (a BLE chest strap): a table of timing keys (each optional), `true`
    /// (defaults) or `false` (no RR stream). Default: present with the defaults.
    pub rr: Option<Spanned<RawStream>>,
    /// The EDA stream (a wristband): as `rr`. Default: present with the defaults.
    pub eda: Option<Spanned<RawStream>>,
}

/// `scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawScenario {
    /// Rest for the whole session.
    Rest,
    /// Rest, then a stressor from `stress_onset_s`.
    RestThenStress,
}

/// `rr` / `eda` of a simulate source: `false`, `true` or a timing table.
#[derive(Debug, Clone, PartialEq)]
pub enum RawStream {
    /// `false`: the stream does not exist.
    Off,
    /// `true` or a table: the stream exists with these timings.
    On(RawTiming),
}

impl Serialize for RawStream {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Off => s.serialize_bool(false),
            Self::On(t) => t.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for RawStream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawStream;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or a table of timing keys")
            }
            fn visit_bool<E: de::Error>(self, on: bool) -> Result<RawStream, E> {
                Ok(if on {
                    RawStream::On(RawTiming::default())
                } else {
                    RawStream::Off
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawStream, A::Error> {
                // Straight on toml's map: values keep their spans.
                RawTiming::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawStream::On)
            }
        }
        d.deserialize_any(V)
    }
}

/// One simulated stream's device clock and delivery. Every key optional; the defaults depend on
/// the stream (see `config/attune.toml`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTiming {
    /// Device clock minus session time at the session start, s (-10: the device clock is 10 s
    /// behind). Default 0, range -1000000..=1000000.
    pub offset_s: Option<Spanned<f64>>,
    /// Device clock rate error, ppm (+: runs fast). Default 0, range -1000..=1000.
    pub drift_ppm: Option<Spanned<f64>>,
    /// Steady transport latency added to every arrival, s. Default RR 0.03, EDA 0.03; range
    /// 0..=1000000.
    pub latency_s: Option<Spanned<f64>>,
    /// Extra arrival delay, uniform in 0..jitter_s per delivery, s. Default RR 0.03, EDA 0.02;
    /// range 0..=1000000.
    pub jitter_s: Option<Spanned<f64>>,
    /// Delivery period, s: EDA arrives in blocks this long, RR values are batched into one
    /// notification per period. Default RR 1, EDA 0.5; range (0, 60].
    pub block_s: Option<Spanned<f64>>,
}

/// `type = "replay"`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplay {
    /// The recording (attune recording format v1). Relative paths resolve against the config
    /// file's directory; `~` is not expanded. Its streams are published as this participant
    /// (consent stays the recording's). Required.
    pub file: Spanned<String>,
}

/// `type = "serial"`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSerial {
    /// The port: `/dev/ttyUSB0`, `/dev/rfcomm0` (a paired Bluetooth-serial device bound with
    /// `rfcomm bind`), or the path `attune simulate device --pty` printed. Relative paths
    /// resolve against the config file's directory. Required.
    pub path: Spanned<String>,
    /// `"bitalino"` (BITalino (r)evolution), `"shimmer"` (Shimmer3 GSR+ LogAndStream) or
    /// `"textline"` (one ASCII sample per line, Arduino / Grove style). Required. The specs are
    /// in `firmware-protocols/`.
    pub protocol: Spanned<String>,
    /// Baud rate. Default 115200 (BITalino, Shimmer and attune's reference text-line sketch;
    /// the Seeed Grove-GSR sketch uses 9600). Range 300..=4000000.
    pub baud: Option<Spanned<i64>>,
    /// Sampling rate, Hz: BITalino 1, 10, 100 or 1000 (default 1000); Shimmer 1..=1024 (the
    /// device takes 32768/Hz ticks; default 128); text lines: the nominal line rate (default
    /// 20). Overrides `settings.rate_hz`.
    pub rate_hz: Option<Spanned<f64>>,
    /// Silence while streaming that counts as a lost device, s. Default 2, range 0.2..=60.
    pub silence_s: Option<Spanned<f64>>,
    /// Keep the raw bytes of this device in this file (an attune raw capture, replayable with
    /// `attune replay --raw FILE --protocol P`), only while the participant consents to
    /// `record` every stream of the device. Relative: against the config file's directory. The
    /// file must not exist yet.
    pub record_raw: Option<Spanned<String>>,
    /// The protocol's own settings (`[participant.source.settings]`): channel wiring, EDA
    /// formula, GSR range, text-line columns... (each protocol's `Settings` in
    /// `src/protocol/`; every key optional).
    pub settings: Option<Spanned<toml::Table>>,
}

/// `type = "ble"`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBle {
    /// The strap: its address `AA:BB:CC:DD:EE:FF` (what `attune devices` lists; unique, so
    /// preferred), or its advertised name (exact, else the strongest strap whose name starts
    /// with it). Required.
    pub device: Spanned<String>,
    /// No notification for this long counts as a lost link (the watchdog), s. Default 6, range
    /// 2..=60 (straps notify about once a second).
    pub silence_s: Option<Spanned<f64>>,
    /// Bound on connecting and on service discovery, s. Default 10, range 1..=60.
    pub connect_timeout_s: Option<Spanned<f64>>,
    /// Time without a connection before the streams are `lost` (the source keeps looking), s.
    /// Default 60, range 5..=3600.
    pub lost_after_s: Option<Spanned<f64>>,
}

/// Where and what went wrong while lifting tags: a byte span, the key path, the message.
pub(super) type TagError = (Range<usize>, String, String);

/// Moves every `participant[i].source[j].type` out of its table, so that the table becomes
/// `{ <type> = { ...the other keys } }` with the spans of the original text.
pub(super) fn lift_source_tags(root: &mut DeTable<'_>) -> Result<(), TagError> {
    let Some(DeValue::Array(participants)) = root.get_mut("participant").map(|v| v.get_mut())
    else {
        return Ok(());
    };
    for (i, p) in participants.iter_mut().enumerate() {
        let DeValue::Table(p) = p.get_mut() else {
            continue;
        };
        let Some(DeValue::Array(sources)) = p.get_mut("source").map(|v| v.get_mut()) else {
            continue;
        };
        for (j, s) in sources.iter_mut().enumerate() {
            let span = s.span();
            let DeValue::Table(table) = s.get_mut() else {
                continue;
            };
            let path = format!("participant[{i}].source[{j}]");
            let Some(ty) = table.remove("type") else {
                return Err((
                    span,
                    path,
                    "missing key `type` (\"simulate\" or \"replay\")".to_owned(),
                ));
            };
            let ty_span = ty.span();
            let DeValue::String(name) = ty.into_inner() else {
                return Err((
                    ty_span,
                    format!("{path}.type"),
                    "must be a string: \"simulate\" or \"replay\"".to_owned(),
                ));
            };
            let rest = std::mem::take(table);
            let mut outer = DeTable::new();
            outer.insert(
                Spanned::new(ty_span, name),
                Spanned::new(span.clone(), DeValue::Table(rest)),
            );
            *s = Spanned::new(span, DeValue::Table(outer));
        }
    }
    Ok(())
}

/// The key path (`participant[0].source[1].seed`) of the deepest key or value whose span holds
/// byte `at`, in the document as written; empty if none does.
pub(super) fn key_path_at(root: &DeTable<'_>, at: usize) -> String {
    let mut best = (0, String::new());
    search_table(root, at, "", 0, &mut best);
    best.1
}

fn search_table(t: &DeTable<'_>, at: usize, path: &str, depth: usize, best: &mut (usize, String)) {
    for (k, v) in t.iter() {
        let p = if path.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{path}.{}", k.get_ref())
        };
        if (k.span().contains(&at) || v.span().contains(&at)) && depth + 1 > best.0 {
            *best = (depth + 1, p.clone());
        }
        search_value(v, at, &p, depth + 1, best);
    }
}

fn search_value(
    v: &Spanned<DeValue<'_>>,
    at: usize,
    path: &str,
    depth: usize,
    best: &mut (usize, String),
) {
    match v.get_ref() {
        DeValue::Table(t) => search_table(t, at, path, depth, best),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if e.span().contains(&at) && depth + 1 > best.0 {
                    *best = (depth + 1, p.clone());
                }
                search_value(e, at, &p, depth + 1, best);
            }
        }
        _ => {}
    }
}
