//! `attune simulate`: write a synthetic recording.

use super::Common;
use crate::model::ParticipantId;
use crate::recording::{Record, Writer};
use crate::simulate::cohort::{CohortConfig, CohortScenario, simulate_person_with};
use crate::simulate::{ECG_RATE_HZ, PPG_RATE_HZ, Scenario, SimConfig, WaveConfig, simulate_with};
use anyhow::Context;
use std::io::BufWriter;
use std::io::Write;
use std::path::PathBuf;

/// Scenario names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioArg {
    /// Rest for the first half, a stressor for the second.
    RestThenStress,
    /// Rest throughout.
    Rest,
    /// Trier Social Stress Test: baseline, anticipation, speech, arithmetic, recovery.
    Tsst,
    /// Rest, paced breathing at 6 breaths/min, rest.
    PacedBreathing,
    /// Rest, light walking, cool-down.
    Movement,
    /// Rest with acoustic startle probes.
    Startle,
    /// Aroused during the first minutes (calibration), then recovery and rest.
    StressedStart,
}

impl ScenarioArg {
    /// The cohort scenario.
    pub fn cohort(self) -> CohortScenario {
        match self {
            Self::RestThenStress => CohortScenario::RestThenStress,
            Self::Rest => CohortScenario::Rest,
            Self::Tsst => CohortScenario::Tsst,
            Self::PacedBreathing => CohortScenario::PacedBreathing,
            Self::Movement => CohortScenario::Movement,
            Self::Startle => CohortScenario::Startle,
            Self::StressedStart => CohortScenario::StressedStart,
        }
    }
}

/// Simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelArg {
    /// People calibrated to published norms and real recordings, with artefacts (the
    /// evaluation cohort; docs/evaluation.md).
    Cohort,
    /// The first, simple model: clean signals and a strong, fast stress response (kept for the
    /// committed fixture; rest and rest-then-stress only).
    Basic,
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
    after_help = "Examples:\n  attune simulate --out /tmp/t.attune.ndjson --scenario tsst --seed 3\n  attune simulate --out /tmp/p.attune.ndjson --model basic --minutes 10 --scenario rest-then-stress --seed 7\n  attune simulate --out /tmp/w.attune.ndjson --minutes 5 --ecg-rate 1000 --ppg-rate 100\n  attune simulate device --protocol bitalino --pty      (a simulated serial device)"
)]
pub struct SimulateArgs {
    /// A simulated device instead of a recording.
    #[command(subcommand)]
    pub command: Option<SimulateCommand>,
    /// Output file (replaced atomically). Required for a recording.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Length in minutes (1..=240) [default: the scenario's own length with the cohort model
    /// (tsst 40, startle 15, others 20); 10 with the basic model].
    #[arg(long, allow_hyphen_values = true)]
    pub minutes: Option<f64>,
    /// Scenario (each labels its phases as segments in the header).
    #[arg(long, value_enum, default_value_t = ScenarioArg::RestThenStress)]
    pub scenario: ScenarioArg,
    /// Simulator model.
    #[arg(long, value_enum, default_value_t = ModelArg::Cohort)]
    pub model: ModelArg,
    /// Seed: picks the simulated person and the noise.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub seed: u64,
    /// Participant id in the header [default: sim-NNNN, the seed in four digits].
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
    if let Some(m) = a.minutes {
        anyhow::ensure!(
            m.is_finite() && (1.0..=240.0).contains(&m),
            "--minutes must be between 1 and 240, not {m}"
        );
    }
    anyhow::ensure!(
        a.model == ModelArg::Cohort
            || matches!(a.scenario, ScenarioArg::Rest | ScenarioArg::RestThenStress),
        "--model basic has only the rest and rest-then-stress scenarios; use --model cohort"
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
    let sim = match a.model {
        ModelArg::Basic => simulate_with(
            &SimConfig {
                scenario: match a.scenario {
                    ScenarioArg::Rest => Scenario::Rest,
                    _ => Scenario::RestThenStress,
                },
                duration_s: a.minutes.unwrap_or(10.0) * 60.0,
                seed: a.seed,
                participant,
                eda_rate_hz: a.eda_rate,
            },
            &wave,
        ),
        ModelArg::Cohort => simulate_person_with(
            &CohortConfig {
                scenario: a.scenario.cohort(),
                duration_s: a.minutes.map(|m| m * 60.0),
                seed: a.seed,
                participant,
                eda_rate_hz: a.eda_rate,
                ectopic_frac: None,
            },
            &wave,
        ),
    };
    let minutes = sim
        .header
        .provenance
        .generator
        .as_ref()
        .and_then(|g| g["duration_s"].as_f64())
        .unwrap_or(0.0)
        / 60.0;
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
        minutes,
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
