//! `attune simulate`: write a synthetic recording.

use super::Common;
use crate::model::ParticipantId;
use crate::recording::{Record, Writer};
use crate::simulate::{ECG_RATE_HZ, PPG_RATE_HZ, Scenario, SimConfig, WaveConfig, simulate_with};
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

/// `simulate` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SimulateCommand {
    /// A simulated serial device (BITalino, Shimmer3 GSR+, text-line GSR) on a pseudo-terminal.
    Device(super::simulate_device::DeviceArgs),
}

/// Arguments of `simulate`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  attune simulate --out /tmp/p.attune.ndjson --minutes 10 --scenario rest-then-stress --seed 7\n  attune simulate --out /tmp/w.attune.ndjson --minutes 5 --ecg-rate 1000 --ppg-rate 100\n  attune simulate device --protocol bitalino --pty      (a simulated serial device)"
)]
pub struct SimulateArgs {
    /// A simulated device instead of a recording.
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// Output file (replaced atomically). Required for a recording.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
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
    /// Also write an ECG stream (mV) at this rate, Hz (50..=4096), R peaks at the RR beats.
    #[arg(long, value_name = "HZ", allow_hyphen_values = true)]
    pub ecg_rate: Option<f64>,
    /// Also write a PPG stream (a.u.) at this rate, Hz (25..=2048), a pulse per beat.
    #[arg(long, value_name = "HZ", allow_hyphen_values = true)]
    pub ppg_rate: Option<f64>,
    /// Add mains hum at this frequency to the ECG, Hz (40..=70, e.g. 50 or 60) [default: none].
    #[arg(
        long,
        value_name = "HZ",
        allow_hyphen_values = true,
        requires = "ecg_rate"
    )]
    pub ecg_mains: Option<f64>,
}

/// Runs `simulate`.
pub fn run(_common: &Common, a: &SimulateArgs) -> anyhow::Result<()> {
    let Some(out) = &a.out else {
        anyhow::bail!("give --out FILE (the recording to write), or `attune simulate device ...`");
    };
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
    let in_range = |x: Option<f64>, r: &std::ops::RangeInclusive<f64>| {
        x.is_none_or(|v| v.is_finite() && r.contains(&v))
    };
    anyhow::ensure!(
        in_range(a.ecg_rate, &ECG_RATE_HZ),
        "--ecg-rate must be between {} and {} Hz, not {}",
        ECG_RATE_HZ.start(),
        ECG_RATE_HZ.end(),
        a.ecg_rate.unwrap_or_default()
    );
    anyhow::ensure!(
        in_range(a.ppg_rate, &PPG_RATE_HZ),
        "--ppg-rate must be between {} and {} Hz, not {}",
        PPG_RATE_HZ.start(),
        PPG_RATE_HZ.end(),
        a.ppg_rate.unwrap_or_default()
    );
    anyhow::ensure!(
        in_range(a.ecg_mains, &(40.0..=70.0)),
        "--ecg-mains must be between 40 and 70 Hz, not {}",
        a.ecg_mains.unwrap_or_default()
    );
    if let (Some(fs), Some(hz)) = (a.ecg_rate, a.ecg_mains) {
        anyhow::ensure!(
            fs > 2.0 * hz,
            "--ecg-mains {hz} Hz needs an --ecg-rate above {} Hz, not {fs}",
            2.0 * hz
        );
    }
    let participant = match &a.participant {
        Some(p) => p.clone(),
        None => ParticipantId::new(&format!("sim-{:04}", a.seed))?,
    };
    let wave = WaveConfig {
        ecg_rate_hz: a.ecg_rate,
        ppg_rate_hz: a.ppg_rate,
        mains_hz: a.ecg_mains,
    };
    let sim = simulate_with(
        &SimConfig {
            scenario: match a.scenario {
                ScenarioArg::RestThenStress => Scenario::RestThenStress,
                ScenarioArg::Rest => Scenario::Rest,
            },
            duration_s: a.minutes * 60.0,
            seed: a.seed,
            participant,
            eda_rate_hz: a.eda_rate,
        },
        &wave,
    );
    let tmp = out.with_extension("partial");
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
        std::fs::rename(&tmp, out)
    };
    write().with_context(|| format!("cannot write {}", out.display()))?;
    let _ = writeln!(
        std::io::stderr(),
        "wrote {} ({} records, {} min, scenario {}, seed {})",
        out.display(),
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
