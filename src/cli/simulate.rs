//! `attune simulate`: write a synthetic recording.

use super::Common;
use crate::model::ParticipantId;
use crate::recording::{Record, Writer};
use crate::simulate::{Scenario, SimConfig, simulate};
use anyhow::Context;
use std::io::BufWriter;
use std::io::Write;
use std::path::PathBuf;

/// Scenario names.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScenarioArg {
    /// Rest for the first half, a stressor for the second.
    RestThenStress,
    /// Rest throughout.
    Rest,
}

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  attune simulate --out /tmp/p.attune.ndjson --minutes 10 --scenario rest-then-stress --seed 7"
)]
pub struct SimulateArgs {
    /// Output file (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Length in minutes (1..=240).
    #[arg(long, default_value_t = 10.0, allow_hyphen_values = true)]
    pub minutes: f64,
    /// Scenario.
    #[arg(long, value_enum, default_value_t = ScenarioArg::RestThenStress)]
    pub scenario: ScenarioArg,
    /// Seed: picks the simulated person and the noise.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,
    /// Participant id in the header [default: sim-SEED].
    #[arg(long, value_name = "ID")]
    pub participant: Option<ParticipantId>,
    /// EDA sampling rate, Hz.
    #[arg(long, default_value_t = 32.0, allow_hyphen_values = true)]
    pub eda_rate: f64,
}

/// Runs `simulate`.
pub fn run(_common: &Common, a: &SimulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.minutes.is_finite() && (1.0..=240.0).contains(&a.minutes),
        "--minutes must be between 1 and 240, not {}",
        a.minutes
    );
    anyhow::ensure!(
        a.eda_rate.is_finite() && (4.0..=2000.0).contains(&a.eda_rate),
        "--eda-rate must be between 4 and 2000 Hz, not {}",
        a.eda_rate
    );
    let participant = match &a.participant {
        Some(p) => p.clone(),
        None => ParticipantId::new(&format!("sim-{:04}", a.seed))?,
    };
    let sim = simulate(&SimConfig {
        scenario: match a.scenario {
            ScenarioArg::RestThenStress => Scenario::RestThenStress,
            ScenarioArg::Rest => Scenario::Rest,
        },
        duration_s: a.minutes * 60.0,
        seed: a.seed,
        participant,
        eda_rate_hz: a.eda_rate,
    });
    let tmp = a.out.with_extension("partial");
    let write = || -> std::io::Result<()> {
        let file = std::fs::File::create(&tmp)?;
        let mut w = Writer::new(BufWriter::new(file), &sim.header)?;
        for r in &sim.records {
            match r {
                Record::Chunk(c) => w.chunk(c.kind.name(), c)?,
                Record::Gap(g) => w.gap(g.kind.name(), g)?,
                Record::Marker(m) => w.marker(m)?,
                Record::State(s) => w.state(s.kind.name(), s)?,
            }
        }
        w.finish()?
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        std::fs::rename(&tmp, &a.out)
    };
    write().with_context(|| format!("cannot write {}", a.out.display()))?;
    let _ = writeln!(
        std::io::stderr(),
        "wrote {} ({} records, {} min, scenario {}, seed {})",
        a.out.display(),
        sim.records.len(),
        a.minutes,
        sim.header
            .provenance
            .generator
            .as_ref()
            .and_then(|g| g["scenario"].as_str())
            .unwrap_or("?"),
        a.seed
    );
    Ok(())
}
