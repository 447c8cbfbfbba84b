//! `attune run`: the live daemon. Sources come from the config file (`--config`) or from the
//! one-source shortcuts (`--simulate ID[:SEED]`, repeatable); consent from the ledger; every
//! session of a participant who consented to `record` is recorded.

use super::Common;
use crate::config::{Config, SourceConfig};
use crate::daemon::{self, Plan, RecorderPlan, SourcePlan, Timeline};
use crate::model::ParticipantId;
use crate::publish::server::ServerConfig;
use crate::simulate::Scenario;
use anyhow::{Context, bail};
use std::io::Write;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// One `--simulate` value: `ID` or `ID:SEED`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateArg {
    /// The participant.
    pub participant: ParticipantId,
    /// The seed, if given.
    pub seed: Option<u64>,
}

impl std::str::FromStr for SimulateArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (id, seed) = match s.split_once(':') {
            Some((id, seed)) => {
                let seed = seed
                    .parse::<u64>()
                    .map_err(|_| format!("the seed in {s:?} is not a whole number"))?;
                (id, Some(seed))
            }
            None => (s, None),
        };
        let participant = ParticipantId::new(id).map_err(|e| e.to_string())?;
        Ok(Self { participant, seed })
    }
}

/// Scenario names on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioArg {
    /// Rest for the whole session.
    Rest,
    /// Rest, then a stressor from 300 s on.
    RestThenStress,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune run --simulate p01                      a simulated participant, live\n  attune run --simulate p01 --simulate p02:9     a simulated dyad\n  attune run --simulate p01 --scenario rest-then-stress --speed 10\n  attune run --config config/dyad.toml\n  attune run --serial /dev/rfcomm0 --protocol bitalino --participant p01\n  attune listen --topics adaptation              (in another terminal)"
)]
pub struct RunArgs {
    /// The configuration file (TOML; see config/attune.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A simulated participant producing data live, `ID` or `ID:SEED` (repeatable).
    #[arg(long, value_name = "ID[:SEED]")]
    pub simulate: Vec<SimulateArg>,
    /// What simulated participants go through.
    #[arg(long, value_enum, default_value_t = ScenarioArg::RestThenStress)]
    pub scenario: ScenarioArg,
    /// Session clock speed, a multiple of real time (simulated sources only).
    #[arg(long, value_name = "X")]
    pub speed: Option<f64>,
    /// Hold the session until this many clients have subscribed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub wait_subscribers: usize,
    /// Do not record sessions, whatever the consent.
    #[arg(long)]
    pub no_record: bool,
    /// A device on this serial port (`/dev/ttyUSB0`, `/dev/rfcomm0`, or the path
    /// `attune simulate device --pty` printed); needs --protocol and --participant.
    #[arg(long, value_name = "PATH")]
    pub serial: Option<PathBuf>,
    /// The serial device's protocol.
    #[arg(long, value_name = "P", value_parser = ["bitalino", "shimmer", "textline"])]
    pub protocol: Option<String>,
    /// Whose device the serial device is (consent comes from the ledger: `attune consent grant`).
    #[arg(long, value_name = "ID")]
    pub participant: Option<ParticipantId>,
    /// The serial device's sampling rate, Hz (BITalino 1/10/100/1000, Shimmer 1-1024, text
    /// lines: the nominal line rate).
    #[arg(long, value_name = "HZ")]
    pub rate: Option<f64>,
    /// The serial device's protocol settings as JSON, the keys of a config file's
    /// `[participant.source.settings]` (e.g. `{"channels":[{"input":"A1","kind":"eda"}]}`).
    #[arg(long, value_name = "JSON")]
    pub settings: Option<String>,
    /// The serial device's baud rate (default 115200; the Seeed Grove-GSR sketch uses 9600).
    #[arg(long, value_name = "N")]
    pub baud: Option<u32>,
    /// Keep the serial device's raw bytes in FILE (a new file; only with the participant's
    /// `record` consent), replayable with `attune replay --raw FILE --protocol P`.
    #[arg(long, value_name = "FILE")]
    pub record_raw: Option<PathBuf>,
    /// A Bluetooth LE heart-rate strap: its address (`attune devices` lists them) or its
    /// advertised name; needs --participant.
    #[arg(long, value_name = "NAME|ADDRESS")]
    pub ble: Option<String>,
    /// Serve protocol v1 over WebSocket too (default 127.0.0.1:8765; `attune token` prints the
    /// token clients need).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8765")]
    pub ws: Option<String>,
    /// Send OSC over UDP (VRChat heart-rate parameters and /attune/...; default 127.0.0.1:9000).
    #[arg(long, value_name = "HOST:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:9000")]
    pub osc: Option<String>,
    /// Publish to an MQTT broker (default 127.0.0.1:1883; mqtts://HOST:PORT for TLS with the
    /// system's CA roots, [mqtt] in the config for more).
    #[arg(long, value_name = "[mqtts://]HOST:PORT", num_args = 0..=1, default_missing_value = "127.0.0.1:1883")]
    pub mqtt: Option<String>,
    /// Open Lab Streaming Layer outlets (ECG, EDA, RR, markers) for LabRecorder.
    #[arg(long)]
    pub lsl: bool,
}

/// The transports the configuration file's `[ws]`, `[osc]`, `[mqtt]` and `[lsl]` sections and
/// the command line's flags ask for; a flag's address replaces the section's. Each refuses with
/// one line in a build without it.
pub fn transports_of(
    a: &RunArgs,
    sections: &crate::config::TransportSections,
) -> anyhow::Result<Vec<crate::publish::transport::Spec>> {
    #[allow(unused_mut)]
    let mut out = Vec::new();
    let off = |what: &str| anyhow::anyhow!("{what}: this attune was built without that transport");
    macro_rules! transport {
        ($feature:literal, $module:ident, $variant:ident, $flag:expr, $section:expr, $name:ident) => {
            let flag: Option<&str> = $flag;
            let section: Option<&crate::config::TransportSection> = $section.as_ref();
            if flag.is_some() || section.is_some() {
                #[cfg(feature = $feature)]
                {
                    use crate::publish::transport::$module;
                    let from_file = match section {
                        Some(s) => $module::from_section(s).map_err(|e| anyhow::anyhow!(e))?,
                        None => None,
                    };
                    let spec = match (flag, from_file) {
                        (Some(addr), Some(mut spec)) => {
                            let given: $module::$variant = addr
                                .parse()
                                .map_err(|e| anyhow::anyhow!("--{}: {e}", $feature))?;
                            spec.addr = given.addr;
                            Some(spec)
                        }
                        (Some(addr), None) if section.is_none() => Some(
                            addr.parse()
                                .map_err(|e| anyhow::anyhow!("--{}: {e}", $feature))?,
                        ),
                        (_, spec) => spec,
                    };
                    if let Some(spec) = spec {
                        out.push(crate::publish::transport::Spec::$name(spec));
                    }
                }
                #[cfg(not(feature = $feature))]
                return Err(off(&format!("--{} / [{}]", $feature, $feature)));
            }
        };
    }
    transport!("ws", ws, WsSpec, a.ws.as_deref(), sections.ws, Ws);
    transport!("osc", osc, OscSpec, a.osc.as_deref(), sections.osc, Osc);
    transport!(
        "mqtt",
        mqtt,
        MqttSpec,
        a.mqtt.as_deref(),
        sections.mqtt,
        Mqtt
    );
    transport!(
        "lsl",
        lsl,
        LslSpec,
        a.lsl.then_some(lsl_default()),
        sections.lsl,
        Lsl
    );
    let _ = off;
    Ok(out)
}

/// `--lsl` takes no address (LSL picks its own ports).
fn lsl_default() -> &'static str {
    "lsl"
}

/// The configuration `run` starts from.
pub fn config_of(a: &RunArgs) -> anyhow::Result<Config> {
    if let Some(cfg) = serial_config_of(a)? {
        return Ok(cfg);
    }
    if let Some(cfg) = ble_config_of(a)? {
        return Ok(cfg);
    }
    anyhow::ensure!(
        a.protocol.is_none()
            && a.participant.is_none()
            && a.rate.is_none()
            && a.baud.is_none()
            && a.record_raw.is_none(),
        "--protocol, --participant, --rate, --baud and --record-raw go with --serial PATH (--participant also with --ble)"
    );
    let mut cfg = match (&a.config, a.simulate.is_empty()) {
        (Some(_), false) => bail!("give either --config or --simulate, not both"),
        (None, true) => bail!(
            "nothing to run: give --simulate ID (a simulated participant) or --config FILE (see config/attune.toml)"
        ),
        (Some(path), true) => Config::load(path)?,
        (None, false) => {
            let ids: Vec<(ParticipantId, Option<u64>)> = a
                .simulate
                .iter()
                .map(|s| (s.participant.clone(), s.seed))
                .collect();
            let scenario = match a.scenario {
                ScenarioArg::Rest => Scenario::Rest,
                ScenarioArg::RestThenStress => Scenario::RestThenStress,
            };
            Config::for_simulated(&ids, scenario, a.speed.unwrap_or(1.0))?
        }
    };
    if let Some(x) = a.speed {
        anyhow::ensure!(
            x.is_finite() && (0.01..=1e6).contains(&x),
            "--speed must be between 0.01 and 1000000, not {x}"
        );
        cfg.speed = x;
    }
    if a.no_record {
        cfg.recorder.enabled = false;
    }
    Ok(cfg)
}

/// The configuration of `run --serial PATH --protocol P --participant ID [--rate HZ]`, if
/// `--serial` is given.
fn serial_config_of(a: &RunArgs) -> anyhow::Result<Option<Config>> {
    use crate::protocol::ProtocolId;
    let Some(path) = &a.serial else {
        return Ok(None);
    };
    anyhow::ensure!(
        a.ble.is_none(),
        "give --serial or --ble, not both (several devices go in a config file)"
    );
    anyhow::ensure!(
        a.config.is_none() && a.simulate.is_empty(),
        "give --serial without --config or --simulate (several devices go in a config file)"
    );
    let Some(protocol) = &a.protocol else {
        bail!("--serial needs --protocol bitalino|shimmer|textline");
    };
    let Some(participant) = &a.participant else {
        bail!("--serial needs --participant ID (whose device it is)");
    };
    anyhow::ensure!(
        a.speed.is_none_or(|x| x == 1.0),
        "--speed must be 1 with a serial device: a device cannot be sped up"
    );
    let protocol: ProtocolId = protocol.parse().map_err(anyhow::Error::msg)?;
    let mut settings = settings_of(protocol, a.settings.as_deref())?;
    if let Some(hz) = a.rate {
        settings
            .set_rate(hz)
            .map_err(|m| anyhow::anyhow!("--rate: {m}"))?;
    }
    settings.check().map_err(anyhow::Error::msg)?;
    let spec = crate::sources::serial::SerialSpec {
        participant: participant.clone(),
        path: path.clone(),
        baud: match a.baud {
            Some(b) if !(300..=4_000_000).contains(&b) => {
                bail!("--baud must be between 300 and 4000000, not {b}")
            }
            Some(b) => b,
            None => 115_200,
        },
        settings,
        silence_s: crate::sources::serial::DEFAULT_SILENCE_S,
        record_raw: a.record_raw.clone(),
    };
    let mut cfg = Config::for_sources(vec![crate::config::ParticipantConfig {
        id: participant.clone(),
        sources: vec![SourceConfig::Serial(spec)],
    }])?;
    if a.no_record {
        cfg.recorder.enabled = false;
    }
    Ok(Some(cfg))
}

/// The configuration of `run --ble NAME|ADDRESS --participant ID`, if `--ble` is given.
fn ble_config_of(a: &RunArgs) -> anyhow::Result<Option<Config>> {
    let Some(target) = &a.ble else {
        return Ok(None);
    };
    anyhow::ensure!(
        a.config.is_none() && a.simulate.is_empty(),
        "give --ble without --config or --simulate (several devices go in a config file)"
    );
    anyhow::ensure!(
        a.protocol.is_none()
            && a.rate.is_none()
            && a.baud.is_none()
            && a.settings.is_none()
            && a.record_raw.is_none(),
        "--protocol, --rate, --baud, --settings and --record-raw are for --serial devices"
    );
    let Some(participant) = &a.participant else {
        bail!("--ble needs --participant ID (whose strap it is)");
    };
    anyhow::ensure!(
        a.speed.is_none_or(|x| x == 1.0),
        "--speed must be 1 with a BLE strap: a device cannot be sped up"
    );
    let target = crate::sources::ble::Target::parse(target).map_err(anyhow::Error::msg)?;
    let spec = crate::sources::ble::BleSpec::new(participant.clone(), target);
    let mut cfg = Config::for_sources(vec![crate::config::ParticipantConfig {
        id: participant.clone(),
        sources: vec![SourceConfig::Ble(spec)],
    }])?;
    if a.no_record {
        cfg.recorder.enabled = false;
    }
    Ok(Some(cfg))
}

/// A raw capture is refused at start, in one line, where it could not be written: the file
/// exists (a capture is never overwritten) or its directory does not.
fn check_capture_path(path: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        std::fs::symlink_metadata(path).is_err(),
        "raw capture {}: the file exists (a capture is never overwritten; pick a new name)",
        path.display()
    );
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    anyhow::ensure!(
        dir.is_dir(),
        "raw capture {}: the directory {} does not exist",
        path.display(),
        dir.display()
    );
    Ok(())
}

/// A protocol's settings: its defaults, or `json` (`--settings`) over them.
pub(crate) fn settings_of(
    protocol: crate::protocol::ProtocolId,
    json: Option<&str>,
) -> anyhow::Result<crate::protocol::Settings> {
    let Some(json) = json else {
        return Ok(crate::protocol::Settings::defaults(protocol));
    };
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| anyhow::anyhow!("--settings is not JSON: {e}"))?;
    crate::protocol::Settings::from_json(protocol, v)
        .map_err(|e| anyhow::anyhow!("--settings for {protocol}: {e}"))
}

/// The sources of one participant's configuration, opened (replayed files are validated).
async fn plans_of(
    p: &crate::config::ParticipantConfig,
    stop: &CancellationToken,
) -> anyhow::Result<Vec<SourcePlan>> {
    let mut out = Vec::new();
    for s in &p.sources {
        match s {
            SourceConfig::Simulate(spec) => out.push(SourcePlan::Simulate(spec.clone())),
            SourceConfig::Serial(spec) => {
                if let Some(path) = &spec.record_raw {
                    check_capture_path(path)?;
                }
                out.push(SourcePlan::Serial(spec.clone()));
            }
            SourceConfig::Ble(spec) => out.push(SourcePlan::Ble(spec.clone())),
            SourceConfig::Replay { file } => {
                let Some(files) = daemon::open_recordings(std::slice::from_ref(file), stop).await?
                else {
                    bail!("stopped");
                };
                out.push(SourcePlan::Replay {
                    files,
                    rename: Some(p.id.clone()),
                });
            }
        }
    }
    Ok(out)
}

/// SIGHUP: re-reads the configuration file and applies what a running session can take:
/// participants added (their sources start) and removed (their sources stop, their streams
/// end), and a participant whose sources changed has them restarted (its features and baseline
/// carry on). Daemon settings (socket, data directory, queues, speed) and recorder settings
/// need a restart: each is reported in one line and keeps its running value. A file that no
/// longer parses is reported in one line and changes nothing.
async fn reload_on_hup(
    path: PathBuf,
    mut running: Config,
    mut hup: tokio::sync::mpsc::Receiver<()>,
    tx: tokio::sync::mpsc::Sender<daemon::Reconfigure>,
    stop: CancellationToken,
) {
    while hup.recv().await.is_some() {
        let new = match Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "Configuration not reloaded; the running one stays in force.");
                continue;
            }
        };
        let plan = crate::config::reload(&running, &new);
        if plan.is_empty() {
            tracing::info!(file = %path.display(), "SIGHUP: configuration re-read; nothing changed.");
            continue;
        }
        for what in &plan.refused {
            tracing::warn!(file = %path.display(), change = %super::escape_controls(what),
                "SIGHUP: not applied (restart attune run to apply it).");
        }
        if plan.recorder.is_some() {
            tracing::warn!(file = %path.display(),
                "SIGHUP: recorder settings not applied (restart attune run to apply them).");
        }
        let mut remove = plan.participants_removed.clone();
        let mut touched: Vec<crate::model::ParticipantId> = plan
            .sources
            .iter()
            .map(|c| match c {
                crate::config::SourceChange::Added(id, _)
                | crate::config::SourceChange::Removed(id)
                | crate::config::SourceChange::Changed(id, _) => id.participant.clone(),
            })
            .collect();
        touched.sort();
        touched.dedup();
        remove.extend(touched.iter().cloned());
        let mut add = Vec::new();
        let mut failed = None;
        for p in new.participants.iter().filter(|p| {
            touched.contains(&p.id) || plan.participants_added.iter().any(|a| a.id == p.id)
        }) {
            match plans_of(p, &stop).await {
                Ok(mut v) => add.append(&mut v),
                Err(e) => failed = Some(format!("participant {}: {e:#}", p.id)),
            }
        }
        if let Some(e) = failed {
            tracing::error!(error = %super::escape_controls(&e), "Configuration not reloaded; the running one stays in force.");
            continue;
        }
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        if tx
            .send(daemon::Reconfigure {
                remove: remove.clone(),
                add,
                done: done_tx,
            })
            .await
            .is_err()
        {
            return;
        }
        match done_rx.await {
            Ok(Ok(())) => {
                for p in &plan.participants_added {
                    tracing::info!(participant = %p.id, "SIGHUP: participant added.");
                }
                for p in &plan.participants_removed {
                    tracing::info!(participant = %p, "SIGHUP: participant removed.");
                }
                for p in &touched {
                    tracing::info!(participant = %p, "SIGHUP: sources restarted with the new settings.");
                }
                running.participants = new.participants;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %super::escape_controls(&e),
                    "SIGHUP: the new participants could not join; the removed ones are gone, nothing was added.");
                running.participants.retain(|p| !remove.contains(&p.id));
            }
            Err(_) => return,
        }
    }
}

/// Runs `run`.
pub async fn run(common: &Common, a: &RunArgs) -> anyhow::Result<()> {
    let cfg = config_of(a)?;
    let transports = transports_of(a, &cfg.transports)?;
    let stop = CancellationToken::new();
    let (hup_tx, hup_rx) = tokio::sync::mpsc::channel::<()>(1);
    let (reconf_tx, reconf_rx) = tokio::sync::mpsc::channel(4);
    let on_hup = a.config.as_ref().map(|_| {
        Box::new(move || {
            // One pending reload is enough: a second SIGHUP meanwhile reads the same file.
            let _ = hup_tx.try_send(());
        }) as Box<dyn FnMut() + Send>
    });
    let reloading = a.config.clone().map(|path| {
        tokio::spawn(reload_on_hup(
            path,
            cfg.clone(),
            hup_rx,
            reconf_tx,
            stop.clone(),
        ))
    });
    super::cancel_on_signals_with(stop.clone(), on_hup)
        .context("cannot install signal handlers")?;
    let socket = common
        .socket
        .clone()
        .or_else(|| cfg.socket.clone())
        .unwrap_or_else(crate::publish::server::default_socket_path);
    let data_dir = common
        .data_dir
        .clone()
        .or_else(|| cfg.data_dir.clone())
        .unwrap_or_else(|| common.data_dir());
    let server = ServerConfig::new(socket);
    anyhow::ensure!(
        a.wait_subscribers <= server.max_clients,
        "--wait-subscribers {} exceeds the limit of {} clients",
        a.wait_subscribers,
        server.max_clients
    );
    let mut sources = Vec::new();
    let mut names = Vec::new();
    for p in &cfg.participants {
        for s in &p.sources {
            names.push(match s {
                SourceConfig::Simulate(_) => format!("{} (simulated)", p.id),
                SourceConfig::Replay { file } => format!("{} (from {})", p.id, file.display()),
                SourceConfig::Serial(spec) => format!(
                    "{} ({} on {})",
                    p.id,
                    spec.settings.protocol(),
                    spec.path.display()
                ),
                SourceConfig::Ble(spec) => format!("{} (BLE strap {})", p.id, spec.target),
            });
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        sources.append(&mut plans_of(p, &stop).await?);
    }
    let plan = Plan {
        sources,
        timeline: Timeline::Live { speed: cfg.speed },
        server,
        data_dir,
        wait_subscribers: a.wait_subscribers,
        queue: cfg.queue.get(),
        input_queue: cfg.input_queue.get(),
        engine: crate::engine::EngineConfig::default(),
        recorder: cfg.recorder.enabled.then_some(RecorderPlan {
            flush_every: cfg.recorder.flush_every,
        }),
        reconfigure: reloading.as_ref().map(|_| reconf_rx),
        transports,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let speed = cfg.speed;
    let task = tokio::spawn(daemon::run(plan, stop, Some(tx)));
    if let Ok(socket) = rx.await
        && !common.quiet
    {
        let speed = if speed == 1.0 {
            String::new()
        } else {
            format!(" at {speed}x real time")
        };
        let _ = writeln!(
            std::io::stderr(),
            "attune: live session{speed} with {} on {} (Ctrl-C stops; `attune listen` shows decisions)",
            names.join(", "),
            socket.display()
        );
    }
    let summary = task.await.context("the daemon task failed")??;
    if let Some(r) = reloading {
        r.abort();
    }
    if !common.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "attune: session stopped at t = {:.2} s: {} inputs, {} chunks passed the consent gate, {} dropped; published {}",
            summary.end_t,
            summary.records,
            summary.chunks_passed,
            summary.chunks_dropped,
            summary.published_text()
        );
    }
    Ok(())
}
