//! `attune analyze FILE --kind K`: offline features of one signal as JSON.

use super::Common;
use crate::analyze::{Kind, Method, analyze};
use crate::dsp::hrv::PsdMethod;
use crate::recording::csv::read_column;
use crate::recording::{Reader, Record};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Kind argument.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    /// ECG (mV).
    Ecg,
    /// PPG (a.u.).
    Ppg,
    /// EDA (µS).
    Eda,
    /// RR intervals (ms), one per row; no rate.
    Rr,
}

/// Method argument.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MethodArg {
    /// NeuroKit2 0.2.13 defaults, whole record.
    Neurokit,
    /// The daemon's causal algorithms.
    Streaming,
}

/// PSD method argument.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PsdArg {
    /// NeuroKit2 `hrv_frequency(normalize=False)`.
    Neurokit,
    /// Task Force: 4 Hz cubic spline, Welch 256.
    Taskforce,
}

/// Arguments of `analyze`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune analyze fixtures/signals/mitbih208_ecg_360hz.csv --kind ecg --rate 360\n  attune analyze fixtures/signals/pyhrv_nn_short.csv --kind rr\n  attune analyze fixtures/sim-rest-stress.attune.ndjson --kind eda --windows"
)]
pub struct AnalyzeArgs {
    /// A CSV with a header row, or an attune recording.
    pub file: PathBuf,
    /// What the signal is.
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Sampling rate, Hz (CSV input; recordings carry their own).
    #[arg(long, value_name = "HZ", allow_hyphen_values = true)]
    pub rate: Option<f64>,
    /// CSV column name [default: the first column].
    #[arg(long, value_name = "NAME")]
    pub column: Option<String>,
    /// Algorithms.
    #[arg(long, value_enum, default_value_t = MethodArg::Neurokit)]
    pub method: MethodArg,
    /// HRV spectrum method [default: neurokit with --method neurokit, taskforce with streaming].
    #[arg(long, value_enum)]
    pub psd: Option<PsdArg>,
    /// NDJSON, one object per window, with the streaming method.
    #[arg(long)]
    pub windows: bool,
    /// Window length for --windows, s.
    #[arg(
        long,
        default_value_t = 60.0,
        value_name = "S",
        allow_hyphen_values = true
    )]
    pub window_s: f64,
    /// Window step for --windows, s.
    #[arg(
        long,
        default_value_t = 15.0,
        value_name = "S",
        allow_hyphen_values = true
    )]
    pub hop_s: f64,
}

fn kind(k: KindArg) -> Kind {
    match k {
        KindArg::Ecg => Kind::Ecg,
        KindArg::Ppg => Kind::Ppg,
        KindArg::Eda => Kind::Eda,
        KindArg::Rr => Kind::Rr,
    }
}

/// Reads the signal: values and the rate found in the file (recordings only).
fn load(path: &Path, k: Kind, column: Option<&str>) -> anyhow::Result<(Vec<f64>, Option<f64>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let is_recording = bytes.starts_with(b"{")
        && bytes
            .windows(16)
            .take(4096)
            .any(|w| w == b"attune-recording");
    if !is_recording {
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        let col = read_column(text, column).with_context(|| path.display().to_string())?;
        return Ok((col.values, None));
    }
    let mut r =
        Reader::open(std::io::Cursor::new(bytes)).with_context(|| path.display().to_string())?;
    let spec = r
        .header()
        .streams
        .iter()
        .find(|s| s.kind == k.name())
        .cloned()
        .with_context(|| {
            format!(
                "{}: the recording has no {} stream",
                path.display(),
                k.name()
            )
        })?;
    // A recording carries its participant's consent: analysing a stream is processing it.
    let h = r.header();
    let kind: crate::model::StreamKind = k.name().parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if !crate::consent::ConsentSnapshot::from_manifest(&h.participant, &h.consent).allows(
        &h.participant,
        kind,
        crate::consent::Purpose::Process,
    ) {
        bail!(
            "{}: the recording's consent manifest does not allow processing its {} stream",
            path.display(),
            k.name()
        );
    }
    let mut values = Vec::new();
    let mut gaps = 0;
    while let Some(rec) = r
        .next_record()
        .with_context(|| path.display().to_string())?
    {
        match rec {
            Record::Chunk(c) if c.kind.name() == k.name() => values.extend(c.samples),
            Record::Gap(g) if g.kind.name() == k.name() => gaps += 1,
            _ => {}
        }
    }
    if gaps > 0 {
        bail!(
            "{}: the {} stream has {gaps} gap(s); analyze does not join data across gaps",
            path.display(),
            k.name()
        );
    }
    Ok((values, spec.rate_hz))
}

/// Runs `analyze`.
pub fn run(_common: &Common, a: &AnalyzeArgs) -> anyhow::Result<()> {
    let k = kind(a.kind);
    let (values, file_rate) = load(&a.file, k, a.column.as_deref())?;
    let rate = match (a.rate, file_rate) {
        (Some(r), Some(f)) if r != f => {
            bail!("--rate {r} contradicts the recording's rate of {f} Hz")
        }
        (r, f) => r.or(f),
    };
    if k == Kind::Rr && a.rate.is_some() {
        bail!("rr input holds intervals in ms and takes no --rate");
    }
    let method = match (a.windows, a.method) {
        (true, _) | (false, MethodArg::Streaming) => Method::Streaming,
        (false, MethodArg::Neurokit) => Method::NeuroKit,
    };
    let psd = match (a.psd, method) {
        (Some(PsdArg::Neurokit), _) | (None, Method::NeuroKit) => PsdMethod::NeuroKit,
        (Some(PsdArg::Taskforce), _) | (None, Method::Streaming) => PsdMethod::TaskForce,
    };
    let file = a.file.display().to_string();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if !a.windows {
        let mut m = analyze(k, &values, rate, method, psd).with_context(|| file.clone())?;
        m.insert("file".into(), json!(file));
        writeln!(out, "{}", Value::Object(m))?;
        return Ok(());
    }
    if !(a.window_s.is_finite() && a.window_s > 0.0 && a.hop_s.is_finite() && a.hop_s > 0.0) {
        bail!("--window-s and --hop-s must be positive");
    }
    // Window boundaries in samples (uniform kinds) or in cumulative time (RR). Implausible
    // intervals are refused first: one 1e300 ms "interval" would otherwise put the end of the
    // record out of reach and the window loop would never finish.
    let values: Vec<f64> = if k == Kind::Rr {
        crate::analyze::check_rr(&values).with_context(|| file.clone())?;
        values.into_iter().filter(|v| !v.is_nan()).collect()
    } else {
        values
    };
    let times: Vec<f64> = match (k, rate) {
        (Kind::Rr, _) => {
            let mut acc = 0.0;
            values
                .iter()
                .map(|r| {
                    acc += r / 1000.0;
                    acc
                })
                .collect()
        }
        _ => {
            let fs = crate::analyze::check_rate(k, rate).with_context(|| file.clone())?;
            (0..values.len()).map(|i| i as f64 / fs).collect()
        }
    };
    // The record ends one sample period after its last sample (RR: at its last beat).
    let end = match (k, rate) {
        (Kind::Rr, _) | (_, None) => times.last().copied().unwrap_or(0.0),
        (_, Some(fs)) => values.len() as f64 / fs,
    };
    if a.window_s > end + 1e-9 {
        bail!(
            "{file}: the record ({end:.1} s) is shorter than one window of {} s (--window-s)",
            a.window_s
        );
    }
    let mut k_win = 0u64;
    loop {
        // Window starts as multiples of the hop, so they do not drift by rounding.
        let start = k_win as f64 * a.hop_s;
        if start + a.window_s > end + 1e-9 {
            break;
        }
        k_win += 1;
        let lo = times.partition_point(|t| *t < start);
        let hi = times.partition_point(|t| *t < start + a.window_s);
        let mut m = match analyze(k, &values[lo..hi], rate, Method::Streaming, psd) {
            Ok(m) => m,
            Err(e) => {
                let mut m = serde_json::Map::new();
                m.insert("error".into(), json!(e.to_string()));
                m
            }
        };
        m.insert("t_start_s".into(), json!(start));
        m.insert("t_end_s".into(), json!(start + a.window_s));
        writeln!(out, "{}", Value::Object(m))?;
    }
    Ok(())
}
