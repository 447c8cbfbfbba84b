//! The daemon configuration of `attune run --config FILE`: raw TOML in, validated [`Config`] out.
//!
//! - [`raw`]: the file's shape (serde, `deny_unknown_fields`); its doc comments are the
//!   reference, and `config/attune.toml` shows every key with its default and range.
//! - [`validate`](mod@validate): raw → [`Config`]. Only checks and computes: no file opens, no
//!   device discovery. Runtime code never reads the raw types.
//! - [`reload`](mod@reload): what a running daemon can apply of a changed file on SIGHUP.
//!
//! [`Config::load`] reads the file (the only I/O here); [`Config::parse`] is pure. Every error
//! is one line naming the file, the line and the key ([`ConfigError`]).
//!
//! Checked at start time, not here: whether a replay file exists and which streams it holds
//! (so a replay source that feeds the same stream kind as another source of its participant is
//! refused when the daemon opens it), and whether devices are present.

pub mod raw;
pub mod reload;
pub mod validate;

#[cfg(test)]
mod tests;

use crate::model::{ParticipantId, StreamKind};
use crate::simulate::Scenario;
use crate::simulate::live::{LiveSpec, StreamTiming};
use std::fmt;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use reload::{Reload, SourceChange, reload};

/// Default per-subscriber queue bound, messages.
pub const DEFAULT_QUEUE: usize = 4096;
/// Default bound of the sources → engine channel, inputs.
pub const DEFAULT_INPUT_QUEUE: usize = 1024;
/// Default recorder flush period, ms.
pub const DEFAULT_FLUSH_EVERY_MS: u64 = 100;
/// Default stress onset of a simulated `rest-then-stress` session, s: five minutes of rest,
/// enough for a provisional baseline before the change.
pub const DEFAULT_STRESS_ONSET_S: f64 = 300.0;
/// Default simulated EDA rate, Hz (the rate `attune simulate` writes).
pub const DEFAULT_EDA_RATE_HZ: f64 = 32.0;

/// Default simulated RR timing: a BLE Heart Rate strap notifies about once a second with the
/// beats since the last notification, ~30 ms after the fact with up to 30 ms of jitter; its
/// clock is taken as ideal (0 offset, 0 ppm: set them to test the clock mapping; real crystals
/// are typically within ±30 ppm).
pub const DEFAULT_RR_TIMING: StreamTiming = StreamTiming {
    offset_s: 0.0,
    drift_ppm: 0.0,
    latency_s: 0.03,
    jitter_s: 0.03,
    block_s: 1.0,
};

/// Default simulated EDA timing: a wristband streaming half-second blocks (wristbands and EDA
/// boxes send 0.25-1 s blocks) ~30 ms after the block's last sample, up to 20 ms of jitter;
/// ideal clock as for RR.
pub const DEFAULT_EDA_TIMING: StreamTiming = StreamTiming {
    offset_s: 0.0,
    drift_ppm: 0.0,
    latency_s: 0.03,
    jitter_s: 0.02,
    block_s: 0.5,
};

/// The simulated source a config gets when it says nothing but the participant (and maybe the
/// seed): `rest-then-stress` with the onset at [`DEFAULT_STRESS_ONSET_S`], both streams with
/// [`DEFAULT_RR_TIMING`] and [`DEFAULT_EDA_TIMING`], EDA at [`DEFAULT_EDA_RATE_HZ`]; the seed
/// defaults to [`LiveSpec::default_seed`].
pub fn live_spec_with_defaults(participant: ParticipantId, seed: Option<u64>) -> LiveSpec {
    let seed = seed.unwrap_or_else(|| LiveSpec::default_seed(&participant));
    LiveSpec {
        participant,
        seed,
        scenario: Scenario::RestThenStress,
        stress_onset_s: DEFAULT_STRESS_ONSET_S,
        rr: Some(DEFAULT_RR_TIMING),
        eda: Some(DEFAULT_EDA_TIMING),
        eda_rate_hz: DEFAULT_EDA_RATE_HZ,
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Subscriber socket; `None`: the default (`Common::socket_path`).
    pub socket: Option<PathBuf>,
    /// Data directory; `None`: the default (`Common::data_dir`).
    pub data_dir: Option<PathBuf>,
    /// Per-subscriber queue bound, messages.
    pub queue: NonZeroUsize,
    /// Sources → engine channel bound, inputs (Block policy).
    pub input_queue: NonZeroUsize,
    /// Session clock speed, a multiple of real time, in [0.01, 1e6]; 1 with any hardware source.
    pub speed: f64,
    /// The session recorder.
    pub recorder: RecorderConfig,
    /// The participants, at least one, ids unique, in file order.
    pub participants: Vec<ParticipantConfig>,
    /// The transports' sections as written (each transport reads its own keys when it starts).
    pub transports: TransportSections,
}

/// The `[ws]`, `[osc]`, `[mqtt]` and `[lsl]` sections of a configuration file, unread: each
/// transport module parses its own keys (`publish::transport`), so a build without a transport
/// still reads the file and refuses only when that transport is enabled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransportSections {
    /// `[ws]`.
    pub ws: Option<TransportSection>,
    /// `[osc]`.
    pub osc: Option<TransportSection>,
    /// `[mqtt]`.
    pub mqtt: Option<TransportSection>,
    /// `[lsl]`.
    pub lsl: Option<TransportSection>,
}

/// One transport's section.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSection {
    /// Its keys.
    pub table: toml::Table,
    /// Where it starts: `FILE line N` (for errors).
    pub at: String,
}

/// The session recorder's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderConfig {
    /// Record sessions of participants who consented to `record`.
    pub enabled: bool,
    /// Flush period, 10 ms..=1 s.
    pub flush_every: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_every: Duration::from_millis(DEFAULT_FLUSH_EVERY_MS),
        }
    }
}

/// One participant and their sources.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantConfig {
    /// The participant.
    pub id: ParticipantId,
    /// At least one source; no two known to feed the same stream kind.
    pub sources: Vec<SourceConfig>,
}

impl ParticipantConfig {
    /// Each source with its id, in file order.
    pub fn sources_with_ids(&self) -> impl Iterator<Item = (SourceId, &SourceConfig)> {
        let mut seen: Vec<&'static str> = Vec::new();
        self.sources.iter().map(move |s| {
            seen.push(s.type_name());
            let n = seen.iter().filter(|t| **t == s.type_name()).count();
            (
                SourceId {
                    participant: self.id.clone(),
                    kind: s.type_name(),
                    n,
                },
                s,
            )
        })
    }
}

/// A source's name in status, logs and errors: `p01/simulate#1` (the participant's first
/// simulate source). Numbered per type, so adding a source of another type renames nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId {
    /// Whose source.
    pub participant: ParticipantId,
    /// The source type (`simulate`).
    pub kind: &'static str,
    /// 1-based among the participant's sources of this type.
    pub n: usize,
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.participant, self.kind, self.n)
    }
}

/// One validated source.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceConfig {
    /// A simulated participant producing data live.
    Simulate(LiveSpec),
    /// A recording replayed as the participant (the file is opened at start time).
    Replay {
        /// The recording, resolved against the config file's directory.
        file: PathBuf,
    },
    /// A device on a serial port.
    Serial(crate::sources::serial::SerialSpec),
    /// A Bluetooth LE heart-rate strap.
    Ble(crate::sources::ble::BleSpec),
}

impl SourceConfig {
    /// The TOML `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Simulate(_) => "simulate",
            Self::Replay { .. } => "replay",
            Self::Serial(_) => "serial",
            Self::Ble(_) => "ble",
        }
    }

    /// The stream kinds this source feeds, if known before it starts (`None` for a replay: its
    /// streams are in the file's header, read at start time).
    pub fn streams(&self) -> Option<Vec<StreamKind>> {
        match self {
            Self::Simulate(spec) => Some(
                [
                    spec.rr.map(|_| StreamKind::Rr),
                    spec.eda.map(|_| StreamKind::Eda),
                ]
                .into_iter()
                .flatten()
                .collect(),
            ),
            Self::Replay { .. } => None,
            Self::Serial(s) => Some(s.settings.kinds()),
            Self::Ble(_) => Some(crate::sources::ble::KINDS.to_vec()),
        }
    }

    /// A real device, whose clock cannot be sped up (`speed` must be 1); the match has no
    /// wildcard so that a new variant has to answer.
    pub fn is_hardware(&self) -> bool {
        match self {
            Self::Simulate(_) | Self::Replay { .. } => false,
            Self::Serial(_) | Self::Ble(_) => true,
        }
    }
}

/// A configuration error: one line naming the file, the line and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read the configuration: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file (or the command line) says something wrong.
    #[error("{}", invalid_line(file, *line, *column, key, message))]
    Invalid {
        /// The file, or `command line` for [`Config::for_simulated`] and [`Config::for_replay`].
        file: PathBuf,
        /// 1-based line, if known.
        line: Option<usize>,
        /// 1-based column (TOML syntax and type errors only).
        column: Option<usize>,
        /// The key path (`participant[1].id`, indices 0-based); empty if none applies.
        key: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid_line(
    file: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: &str,
    message: &str,
) -> String {
    let mut s = file.display().to_string();
    match (line, column) {
        (Some(l), Some(c)) => s.push_str(&format!(": line {l}, column {c}")),
        (Some(l), None) => s.push_str(&format!(": line {l}")),
        _ => {}
    }
    if !key.is_empty() {
        s.push_str(": ");
        s.push_str(key);
    }
    s.push_str(": ");
    // One line, always: a message quoting the file must not break it.
    s.push_str(&message.replace('\n', " "));
    s
}

impl ConfigError {
    /// The 1-based line, if the error has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Invalid { line, .. } => *line,
            Self::Read { .. } => None,
        }
    }

    /// The key path, if the error has one.
    pub fn key(&self) -> &str {
        match self {
            Self::Invalid { key, .. } => key,
            Self::Read { .. } => "",
        }
    }
}

/// The `file` of errors in configurations built from the command line.
const COMMAND_LINE: &str = "command line";

impl Config {
    /// Reads and validates `path` (reading it is the only I/O).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text` (pure). `path` names the file in errors, and relative paths
    /// in it resolve against its directory.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        validate::parse(text, path)
    }

    /// The configuration of `attune run --simulate p01 --simulate p02:9 --scenario S --speed X`:
    /// one simulate source per participant with the defaults of [`live_spec_with_defaults`]
    /// and `scenario`, everything else default.
    pub fn for_simulated(
        participants: &[(ParticipantId, Option<u64>)],
        scenario: Scenario,
        speed: f64,
    ) -> Result<Config, ConfigError> {
        let participants = participants
            .iter()
            .map(|(id, seed)| {
                let mut spec = live_spec_with_defaults(id.clone(), *seed);
                spec.scenario = scenario;
                ParticipantConfig {
                    id: id.clone(),
                    sources: vec![SourceConfig::Simulate(spec)],
                }
            })
            .collect();
        Self::from_command_line(participants, speed, "--simulate")
    }

    /// The configuration of `attune run --replay FILE ...`: one replay source per participant
    /// (the caller names the participant, e.g. from `--participant` or the recording's header),
    /// everything else default.
    pub fn for_replay(
        files: &[(ParticipantId, PathBuf)],
        speed: f64,
    ) -> Result<Config, ConfigError> {
        let participants = files
            .iter()
            .map(|(id, file)| ParticipantConfig {
                id: id.clone(),
                sources: vec![SourceConfig::Replay { file: file.clone() }],
            })
            .collect();
        Self::from_command_line(participants, speed, "--replay")
    }

    /// The configuration of one-source shortcuts for devices (`attune run --serial ...`):
    /// these participants, speed 1, everything else default.
    pub fn for_sources(participants: Vec<ParticipantConfig>) -> Result<Config, ConfigError> {
        Self::from_command_line(participants, 1.0, "--serial")
    }

    fn from_command_line(
        participants: Vec<ParticipantConfig>,
        speed: f64,
        flag: &str,
    ) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError::Invalid {
            file: PathBuf::from(COMMAND_LINE),
            line: None,
            column: None,
            key: key.to_owned(),
            message,
        };
        if participants.is_empty() {
            return Err(err(flag, "no participant given".to_owned()));
        }
        for (i, p) in participants.iter().enumerate() {
            if participants[..i].iter().any(|q| q.id == p.id) {
                return Err(err(flag, format!("participant \"{}\" given twice", p.id)));
            }
        }
        validate::check_speed(speed).map_err(|m| err("--speed", m))?;
        Ok(Config {
            socket: None,
            data_dir: None,
            queue: NonZeroUsize::new(DEFAULT_QUEUE).unwrap_or(NonZeroUsize::MIN),
            input_queue: NonZeroUsize::new(DEFAULT_INPUT_QUEUE).unwrap_or(NonZeroUsize::MIN),
            speed,
            recorder: RecorderConfig::default(),
            participants,
            transports: TransportSections::default(),
        })
    }
}
