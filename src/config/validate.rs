//! Raw → validated: checks ranges, ids, paths and stream ownership, and computes the typed
//! [`Config`]. No file opens, no device discovery.

use super::raw::{
    RawConfig, RawParticipant, RawScenario, RawSimulate, RawSource, RawStream, RawTiming,
    key_path_at, lift_source_tags,
};
use super::{
    Config, ConfigError, DEFAULT_EDA_TIMING, DEFAULT_FLUSH_EVERY_MS, DEFAULT_INPUT_QUEUE,
    DEFAULT_QUEUE, DEFAULT_RR_TIMING, ParticipantConfig, RecorderConfig, SourceConfig,
    live_spec_with_defaults,
};
use crate::model::ParticipantId;
use crate::simulate::Scenario;
use crate::simulate::live::{LiveSpec, StreamTiming};
use serde::Deserialize;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::DeTable;

/// Where errors point: the file's name and text.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    /// 1-based line and column of byte `at`.
    fn line_col(&self, at: usize) -> (usize, usize) {
        let at = at.min(self.text.len());
        let before = self.text.get(..at).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// The line of byte `at`.
    fn line(&self, at: usize) -> usize {
        self.line_col(at).0
    }

    /// A validation error at `span`.
    fn at(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: Some(self.line(span.start)),
            column: None,
            key: key.into(),
            message: message.into(),
        }
    }

    /// An error with no place in the file (something missing at the top level).
    fn nowhere(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: None,
            column: None,
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// A TOML syntax or type error; `doc` (the document as written) names the key.
    fn toml(&self, e: &toml::de::Error, doc: Option<&DeTable<'_>>) -> ConfigError {
        let (line, column, key) = match e.span() {
            Some(span) => {
                let (l, c) = self.line_col(span.start);
                let key = doc.map(|d| key_path_at(d, span.start)).unwrap_or_default();
                (Some(l), Some(c), key)
            }
            None => (None, None, String::new()),
        };
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            key,
            message: e.message().trim().to_owned(),
        }
    }

    /// A path from the file: not empty, no `~`, relative ones against the file's directory.
    fn path(&self, v: &Spanned<String>, key: &str) -> Result<PathBuf, ConfigError> {
        let s = v.get_ref();
        if s.is_empty() {
            return Err(self.at(v.span(), key, "must not be empty"));
        }
        if s.starts_with('~') {
            return Err(self.at(
                v.span(),
                key,
                format!(
                    "\"{s}\": `~` is not expanded; write an absolute path or one relative to the config file's directory"
                ),
            ));
        }
        let p = Path::new(s);
        Ok(if p.is_absolute() {
            p.to_owned()
        } else {
            self.file.parent().unwrap_or(Path::new("")).join(p)
        })
    }

    /// An integer key in `lo..=hi`, or `default`.
    fn int(
        &self,
        v: Option<&Spanned<i64>>,
        key: &str,
        default: u64,
        lo: i64,
        hi: i64,
    ) -> Result<u64, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if !(lo..=hi).contains(&x) {
            return Err(self.at(v.span(), key, format!("{x} is out of range {lo}..={hi}")));
        }
        u64::try_from(x)
            .map_err(|_| self.at(v.span(), key, format!("{x} is out of range {lo}..={hi}")))
    }

    /// A float key passing `check`, or `default`.
    fn real(
        &self,
        v: Option<&Spanned<f64>>,
        key: &str,
        default: f64,
        check: fn(f64) -> Result<(), String>,
    ) -> Result<f64, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        check(x).map_err(|m| self.at(v.span(), key, m))?;
        Ok(x)
    }
}

/// `x` finite and in the interval; `lo_open`: the lower bound excluded.
fn within(x: f64, lo: f64, lo_open: bool, hi: f64, unit: &str) -> Result<(), String> {
    let above = if lo_open { x > lo } else { x >= lo };
    if x.is_finite() && above && x <= hi {
        Ok(())
    } else {
        let open = if lo_open { "(" } else { "[" };
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        Err(format!("{x} is out of range {open}{lo}, {hi}]{unit}"))
    }
}

/// The session speed range.
pub(super) fn check_speed(x: f64) -> Result<(), String> {
    within(x, 0.01, false, 1e6, "")
}

fn check_offset(x: f64) -> Result<(), String> {
    within(x, -1e6, false, 1e6, "s")
}

fn check_drift(x: f64) -> Result<(), String> {
    within(x, -1000.0, false, 1000.0, "ppm")
}

fn check_delay(x: f64) -> Result<(), String> {
    within(x, 0.0, false, 1e6, "s")
}

fn check_block(x: f64) -> Result<(), String> {
    within(x, 0.0, true, 60.0, "s")
}

fn check_onset(x: f64) -> Result<(), String> {
    within(x, 0.0, false, 1e6, "s")
}

fn check_rate(x: f64) -> Result<(), String> {
    within(x, 0.0, true, 1000.0, "Hz")
}

/// Parses and validates a configuration file's text.
pub(super) fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx { file, text };
    let written = DeTable::parse(text).map_err(|e| ctx.toml(&e, None))?;
    let mut doc = written.clone();
    lift_source_tags(doc.get_mut()).map_err(|(span, key, m)| ctx.at(span, key, m))?;
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| ctx.toml(&e, Some(written.get_ref())))?;
    validate(&ctx, &raw)
}

fn validate(ctx: &Ctx<'_>, raw: &RawConfig) -> Result<Config, ConfigError> {
    let d = &raw.daemon;
    let socket = d
        .socket
        .as_ref()
        .map(|s| ctx.path(s, "daemon.socket"))
        .transpose()?;
    let data_dir = d
        .data_dir
        .as_ref()
        .map(|s| ctx.path(s, "daemon.data_dir"))
        .transpose()?;
    let queue = ctx.int(
        d.queue.as_ref(),
        "daemon.queue",
        DEFAULT_QUEUE as u64,
        1,
        1_000_000,
    )?;
    let input_queue = ctx.int(
        d.input_queue.as_ref(),
        "daemon.input_queue",
        DEFAULT_INPUT_QUEUE as u64,
        1,
        1_000_000,
    )?;
    let speed = ctx.real(d.speed.as_ref(), "daemon.speed", 1.0, check_speed)?;
    let flush_ms = ctx.int(
        raw.recorder.flush_every_ms.as_ref(),
        "recorder.flush_every_ms",
        DEFAULT_FLUSH_EVERY_MS,
        10,
        1000,
    )?;
    let recorder = RecorderConfig {
        enabled: raw.recorder.enabled.unwrap_or(true),
        flush_every: Duration::from_millis(flush_ms),
    };
    if raw.participant.is_empty() {
        return Err(ctx.nowhere(
            "participant",
            "no participant: add a [[participant]] with an id and at least one [[participant.source]]",
        ));
    }
    let mut participants: Vec<ParticipantConfig> = Vec::new();
    for (i, p) in raw.participant.iter().enumerate() {
        let id = participant_id(ctx, i, p.get_ref(), &raw.participant[..i])?;
        if p.get_ref().source.is_empty() {
            return Err(ctx.at(
                p.span(),
                format!("participant[{i}].source"),
                format!("participant \"{id}\" has no source: add a [[participant.source]]"),
            ));
        }
        let mut sources: Vec<SourceConfig> = Vec::new();
        for (j, s) in p.get_ref().source.iter().enumerate() {
            let key = format!("participant[{i}].source[{j}]");
            let source = source(ctx, &key, &id, s)?;
            check_streams(ctx, i, j, s.span(), &source, &sources, &p.get_ref().source)?;
            sources.push(source);
        }
        participants.push(ParticipantConfig { id, sources });
    }
    check_serial_paths(ctx, &participants, raw)?;
    check_ble_targets(ctx, &participants, raw)?;
    if speed != 1.0 {
        let hardware = participants
            .iter()
            .flat_map(|p| p.sources_with_ids())
            .find(|(_, s)| s.is_hardware());
        if let (Some((sid, _)), Some(v)) = (hardware, d.speed.as_ref()) {
            return Err(ctx.at(
                v.span(),
                "daemon.speed",
                format!("must be 1 with a hardware source ({sid}): a device cannot be sped up"),
            ));
        }
    }
    let section = |t: &Option<toml::Spanned<toml::Table>>| {
        t.as_ref().map(|t| super::TransportSection {
            table: t.get_ref().clone(),
            at: format!("{} line {}", ctx.file.display(), ctx.line(t.span().start)),
        })
    };
    let transports = super::TransportSections {
        ws: section(&raw.ws),
        osc: section(&raw.osc),
        mqtt: section(&raw.mqtt),
        lsl: section(&raw.lsl),
    };
    Ok(Config {
        socket,
        data_dir,
        queue: nonzero(queue),
        input_queue: nonzero(input_queue),
        speed,
        recorder,
        participants,
        transports,
    })
}

/// Refuses two serial sources on one port, or one raw capture file for two sources (the second
/// would never open the port; the two captures would race for the file).
fn check_serial_paths(
    ctx: &Ctx<'_>,
    participants: &[ParticipantConfig],
    raw: &RawConfig,
) -> Result<(), ConfigError> {
    let mut ports: Vec<(&Path, String)> = Vec::new();
    let mut captures: Vec<(&Path, String)> = Vec::new();
    for (i, p) in participants.iter().enumerate() {
        for (j, s) in p.sources.iter().enumerate() {
            let SourceConfig::Serial(spec) = s else {
                continue;
            };
            let key = format!("participant[{i}].source[{j}]");
            let span = raw
                .participant
                .get(i)
                .and_then(|q| q.get_ref().source.get(j))
                .map_or(0..0, |r| r.span());
            if let Some((_, first)) = ports.iter().find(|(q, _)| *q == spec.path.as_path()) {
                return Err(ctx.at(
                    span,
                    format!("{key}.path"),
                    format!(
                        "{} is already the port of {first}: one source per port",
                        spec.path.display()
                    ),
                ));
            }
            ports.push((spec.path.as_path(), key.clone()));
            if let Some(c) = &spec.record_raw {
                if let Some((_, first)) = captures.iter().find(|(q, _)| *q == c.as_path()) {
                    return Err(ctx.at(
                        span,
                        format!("{key}.record_raw"),
                        format!("{} is already the raw capture of {first}", c.display()),
                    ));
                }
                captures.push((c.as_path(), key));
            }
        }
    }
    Ok(())
}

/// Refuses one strap (the same address or name) for two sources: only one can hold the link.
fn check_ble_targets(
    ctx: &Ctx<'_>,
    participants: &[ParticipantConfig],
    raw: &RawConfig,
) -> Result<(), ConfigError> {
    let mut seen: Vec<(&crate::sources::ble::Target, String)> = Vec::new();
    for (i, p) in participants.iter().enumerate() {
        for (j, s) in p.sources.iter().enumerate() {
            let SourceConfig::Ble(spec) = s else {
                continue;
            };
            let key = format!("participant[{i}].source[{j}]");
            if let Some((_, first)) = seen.iter().find(|(t, _)| **t == spec.target) {
                let span = raw
                    .participant
                    .get(i)
                    .and_then(|q| q.get_ref().source.get(j))
                    .map_or(0..0, |r| r.span());
                return Err(ctx.at(
                    span,
                    format!("{key}.device"),
                    format!(
                        "{} is already the strap of {first}: one source per strap",
                        spec.target
                    ),
                ));
            }
            seen.push((&spec.target, key));
        }
    }
    Ok(())
}

fn nonzero(n: u64) -> NonZeroUsize {
    usize::try_from(n)
        .ok()
        .and_then(NonZeroUsize::new)
        .unwrap_or(NonZeroUsize::MIN)
}

/// A valid id, not used by an earlier participant.
fn participant_id(
    ctx: &Ctx<'_>,
    i: usize,
    p: &RawParticipant,
    earlier: &[Spanned<RawParticipant>],
) -> Result<ParticipantId, ConfigError> {
    let key = format!("participant[{i}].id");
    let id =
        ParticipantId::new(p.id.get_ref()).map_err(|e| ctx.at(p.id.span(), &key, e.to_string()))?;
    if let Some(first) = earlier
        .iter()
        .find(|q| q.get_ref().id.get_ref() == p.id.get_ref())
    {
        return Err(ctx.at(
            p.id.span(),
            key,
            format!(
                "duplicate participant \"{id}\" (first at line {})",
                ctx.line(first.get_ref().id.span().start)
            ),
        ));
    }
    Ok(id)
}

/// Refuses a source that feeds a stream kind an earlier source of the participant feeds.
/// Replay sources are skipped: their streams are known once the file is opened (start time).
fn check_streams(
    ctx: &Ctx<'_>,
    i: usize,
    j: usize,
    span: Range<usize>,
    source: &SourceConfig,
    earlier: &[SourceConfig],
    raw: &[Spanned<RawSource>],
) -> Result<(), ConfigError> {
    let Some(kinds) = source.streams() else {
        return Ok(());
    };
    for (k, e) in earlier.iter().enumerate() {
        let Some(theirs) = e.streams() else { continue };
        if let Some(kind) = kinds.iter().find(|x| theirs.contains(x)) {
            let line = raw.get(k).map_or(0, |r| ctx.line(r.span().start));
            return Err(ctx.at(
                span,
                format!("participant[{i}].source[{j}]"),
                format!(
                    "feeds {kind}, as participant[{i}].source[{k}] (line {line}) does: one source per stream kind and participant"
                ),
            ));
        }
    }
    Ok(())
}

fn source(
    ctx: &Ctx<'_>,
    key: &str,
    id: &ParticipantId,
    s: &Spanned<RawSource>,
) -> Result<SourceConfig, ConfigError> {
    match s.get_ref() {
        RawSource::Simulate(sim) => {
            simulate(ctx, key, s.span(), id, sim).map(SourceConfig::Simulate)
        }
        RawSource::Replay(r) => Ok(SourceConfig::Replay {
            file: ctx.path(&r.file, &format!("{key}.file"))?,
        }),
        RawSource::Serial(r) => serial(ctx, key, id, r).map(SourceConfig::Serial),
        RawSource::Ble(r) => ble(ctx, key, id, r).map(SourceConfig::Ble),
    }
}

fn ble(
    ctx: &Ctx<'_>,
    key: &str,
    id: &ParticipantId,
    r: &super::raw::RawBle,
) -> Result<crate::sources::ble::BleSpec, ConfigError> {
    use crate::sources::ble::{self, BleSpec, Target};
    let target = Target::parse(r.device.get_ref())
        .map_err(|m| ctx.at(r.device.span(), format!("{key}.device"), m))?;
    let k = |name: &str| format!("{key}.{name}");
    Ok(BleSpec {
        silence_s: ctx.real(
            r.silence_s.as_ref(),
            &k("silence_s"),
            ble::DEFAULT_SILENCE_S,
            |x| within(x, 2.0, false, 60.0, "s"),
        )?,
        connect_timeout_s: ctx.real(
            r.connect_timeout_s.as_ref(),
            &k("connect_timeout_s"),
            ble::DEFAULT_CONNECT_TIMEOUT_S,
            |x| within(x, 1.0, false, 60.0, "s"),
        )?,
        lost_after_s: ctx.real(
            r.lost_after_s.as_ref(),
            &k("lost_after_s"),
            ble::DEFAULT_LOST_AFTER_S,
            |x| within(x, 5.0, false, 3600.0, "s"),
        )?,
        ..BleSpec::new(id.clone(), target)
    })
}

fn serial(
    ctx: &Ctx<'_>,
    key: &str,
    id: &ParticipantId,
    r: &super::raw::RawSerial,
) -> Result<crate::sources::serial::SerialSpec, ConfigError> {
    use crate::protocol::{ProtocolId, Settings};
    let path = ctx.path(&r.path, &format!("{key}.path"))?;
    let protocol: ProtocolId = r
        .protocol
        .get_ref()
        .parse()
        .map_err(|m: String| ctx.at(r.protocol.span(), format!("{key}.protocol"), m))?;
    let mut settings = match &r.settings {
        None => Settings::defaults(protocol),
        Some(t) => {
            let json = serde_json::to_value(t.get_ref())
                .map_err(|e| ctx.at(t.span(), format!("{key}.settings"), e.to_string()))?;
            Settings::from_json(protocol, json)
                .map_err(|m| ctx.at(t.span(), format!("{key}.settings"), m))?
        }
    };
    if let Some(v) = &r.rate_hz {
        settings
            .set_rate(*v.get_ref())
            .map_err(|m| ctx.at(v.span(), format!("{key}.rate_hz"), m))?;
    }
    if let Err(m) = settings.check() {
        let span = r.settings.as_ref().map_or(r.protocol.span(), |t| t.span());
        return Err(ctx.at(span, format!("{key}.settings"), m));
    }
    let baud = ctx.int(
        r.baud.as_ref(),
        &format!("{key}.baud"),
        115_200,
        300,
        4_000_000,
    )?;
    let silence_s = ctx.real(
        r.silence_s.as_ref(),
        &format!("{key}.silence_s"),
        crate::sources::serial::DEFAULT_SILENCE_S,
        |x| within(x, 0.2, false, 60.0, "s"),
    )?;
    let record_raw = match &r.record_raw {
        Some(v) => Some(ctx.path(v, &format!("{key}.record_raw"))?),
        None => None,
    };
    Ok(crate::sources::serial::SerialSpec {
        participant: id.clone(),
        path,
        baud: u32::try_from(baud).unwrap_or(115_200),
        settings,
        silence_s,
        record_raw,
    })
}

fn simulate(
    ctx: &Ctx<'_>,
    key: &str,
    span: Range<usize>,
    id: &ParticipantId,
    s: &RawSimulate,
) -> Result<LiveSpec, ConfigError> {
    let mut spec = live_spec_with_defaults(id.clone(), s.seed);
    if let Some(sc) = s.scenario {
        spec.scenario = match sc {
            RawScenario::Rest => Scenario::Rest,
            RawScenario::RestThenStress => Scenario::RestThenStress,
        };
    }
    if let Some(on) = &s.stress_onset_s
        && spec.scenario == Scenario::Rest
    {
        return Err(ctx.at(
            on.span(),
            format!("{key}.stress_onset_s"),
            "applies only to scenario \"rest-then-stress\"",
        ));
    }
    spec.stress_onset_s = ctx.real(
        s.stress_onset_s.as_ref(),
        &format!("{key}.stress_onset_s"),
        spec.stress_onset_s,
        check_onset,
    )?;
    spec.eda_rate_hz = ctx.real(
        s.eda_rate_hz.as_ref(),
        &format!("{key}.eda_rate_hz"),
        spec.eda_rate_hz,
        check_rate,
    )?;
    spec.rr = stream(ctx, &format!("{key}.rr"), s.rr.as_ref(), DEFAULT_RR_TIMING)?;
    spec.eda = stream(
        ctx,
        &format!("{key}.eda"),
        s.eda.as_ref(),
        DEFAULT_EDA_TIMING,
    )?;
    if spec.rr.is_none() && spec.eda.is_none() {
        return Err(ctx.at(span, key, "feeds no stream: rr and eda are both false"));
    }
    Ok(spec)
}

fn stream(
    ctx: &Ctx<'_>,
    key: &str,
    raw: Option<&Spanned<RawStream>>,
    default: StreamTiming,
) -> Result<Option<StreamTiming>, ConfigError> {
    match raw.map(Spanned::get_ref) {
        None => Ok(Some(default)),
        Some(RawStream::Off) => Ok(None),
        Some(RawStream::On(t)) => timing(ctx, key, t, default).map(Some),
    }
}

fn timing(
    ctx: &Ctx<'_>,
    key: &str,
    t: &RawTiming,
    d: StreamTiming,
) -> Result<StreamTiming, ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    Ok(StreamTiming {
        offset_s: ctx.real(
            t.offset_s.as_ref(),
            &k("offset_s"),
            d.offset_s,
            check_offset,
        )?,
        drift_ppm: ctx.real(
            t.drift_ppm.as_ref(),
            &k("drift_ppm"),
            d.drift_ppm,
            check_drift,
        )?,
        latency_s: ctx.real(
            t.latency_s.as_ref(),
            &k("latency_s"),
            d.latency_s,
            check_delay,
        )?,
        jitter_s: ctx.real(t.jitter_s.as_ref(), &k("jitter_s"), d.jitter_s, check_delay)?,
        block_s: ctx.real(t.block_s.as_ref(), &k("block_s"), d.block_s, check_block)?,
    })
}
