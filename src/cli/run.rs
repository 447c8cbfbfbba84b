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
    after_help = "Examples:\n  attune run --simulate p01                      a simulated participant, live\n  attune run --simulate p01 --simulate p02:9     a simulated dyad\n  attune run --simulate p01 --scenario rest-then-stress --speed 10\n  attune run --config config/dyad.toml\n  attune listen --topics adaptation              (in another terminal)"
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
}

/// The configuration `run` starts from.
pub fn config_of(a: &RunArgs) -> anyhow::Result<Config> {
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

/// SIGHUP: re-reads the configuration file and says, one line each, what differs from the
/// running one. In this version a running session applies none of it: participants, sources
/// and recorder settings are fixed at start, so every difference is reported as needing a
/// restart (the running configuration stays in force). A file that no longer parses is
/// reported in one line and changes nothing.
fn reload(path: &std::path::Path, running: &Config) {
    let new = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "Configuration not reloaded; the running one stays in force.");
            return;
        }
    };
    let plan = crate::config::reload(running, &new);
    if plan.is_empty() {
        tracing::info!(file = %path.display(), "SIGHUP: configuration re-read; nothing changed.");
        return;
    }
    let mut not_applied: Vec<String> = plan.refused.clone();
    for p in &plan.participants_added {
        not_applied.push(format!("participant {} added", p.id));
    }
    for p in &plan.participants_removed {
        not_applied.push(format!("participant {p} removed"));
    }
    for c in &plan.sources {
        not_applied.push(format!("{c:?}"));
    }
    if plan.recorder.is_some() {
        not_applied.push("recorder settings changed".into());
    }
    for what in not_applied {
        tracing::warn!(file = %path.display(), change = %super::escape_controls(&what),
            "SIGHUP: not applied to the running session (restart attune run to apply it).");
    }
}

/// Runs `run`.
pub async fn run(common: &Common, a: &RunArgs) -> anyhow::Result<()> {
    let cfg = config_of(a)?;
    let stop = CancellationToken::new();
    let on_hup = a.config.clone().map(|path| {
        let running = cfg.clone();
        Box::new(move || reload(&path, &running)) as Box<dyn FnMut() + Send>
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
            match s {
                SourceConfig::Simulate(spec) => {
                    names.push(format!("{} (simulated)", p.id));
                    sources.push(SourcePlan::Simulate(spec.clone()));
                }
                SourceConfig::Replay { file } => {
                    let Some(files) = daemon::open_recordings(std::slice::from_ref(file), &stop).await?
                    else {
                        return Ok(());
                    };
                    names.push(format!("{} (from {})", p.id, file.display()));
                    sources.push(SourcePlan::Replay {
                        files,
                        rename: Some(p.id.clone()),
                    });
                }
            }
        }
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
    if !common.quiet {
        let published: Vec<String> = summary
            .published
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let _ = writeln!(
            std::io::stderr(),
            "attune: session stopped at t = {:.2} s: {} inputs, {} chunks passed the consent gate, {} dropped; published {}",
            summary.end_t,
            summary.records,
            summary.chunks_passed,
            summary.chunks_dropped,
            if published.is_empty() {
                "nothing".to_owned()
            } else {
                published.join(", ")
            }
        );
    }
    Ok(())
}
