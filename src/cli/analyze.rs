//! `attune analyze FILE --kind K`: offline features of one signal as JSON.
//!
//! With `ATTUNE_TIMINGS=1` in the environment, one more JSON line goes to stderr: the
//! wall time of each step in seconds (`read`: the file into memory, `parse`: UTF-8 check and
//! CSV, `ecg_head_within_parse`: the part of `parse` spent on the ECG forward high-pass over
//! the first part of the file while the rest was parsed, `analyze`: the rest of the features,
//! `total`), and for ECG with the NeuroKit2 method the split of
//! `analyze` into `clean`, `peaks`, `hrv_time` and `hrv_frequency`, measured by running those
//! stages once more after the output is written (docs/performance.md uses it). stdout is
//! unchanged.

use super::Common;
use crate::analyze::{EcgHead, Kind, Method, analyze, analyze_with_head};
use crate::dsp::hrv::PsdMethod;
use crate::recording::csv::{CsvError, read_column_bytes_with};
use crate::recording::{Reader, Record};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// Wall times of the steps, for `ATTUNE_TIMINGS=1`.
#[derive(Default)]
struct Timings {
    on: bool,
    steps: Vec<(&'static str, f64)>,
}

impl Timings {
    fn from_env() -> Self {
        Self {
            on: std::env::var_os("ATTUNE_TIMINGS").is_some_and(|v| v == "1"),
            steps: Vec::new(),
        }
    }

    /// Records the time since `*t0` under `name` and restarts the clock.
    fn lap(&mut self, name: &'static str, t0: &mut Instant) {
        if self.on {
            self.steps.push((name, t0.elapsed().as_secs_f64()));
            *t0 = Instant::now();
        }
    }

    /// Times the NeuroKit2 ECG stages one by one (after the real run; results discarded).
    fn ecg_stages(&mut self, x: &[f64], fs: f64) {
        use crate::dsp::{ecg, hrv};
        let mut t = Instant::now();
        let Ok(clean) = ecg::clean(x, fs, 50.0) else {
            return;
        };
        self.lap("clean", &mut t);
        let peaks = ecg::peaks_neurokit(&clean, fs);
        self.lap("peaks", &mut t);
        let rri = hrv::intervals_ms(&peaks, fs);
        std::hint::black_box(hrv::time_domain(&rri));
        self.lap("hrv_time", &mut t);
        std::hint::black_box(hrv::frequency_neurokit(&rri));
        self.lap("hrv_frequency", &mut t);
    }

    fn report(&self) {
        if self.on {
            let m: serde_json::Map<String, Value> = self
                .steps
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            eprintln!("{}", Value::Object(m));
        }
    }
}

/// Files at least this large are read in two halves on two threads.
const PARALLEL_READ_MIN: u64 = 4 << 20;

/// `std::fs::read`, with a large file read in two halves at once (`pread` on two threads: the
/// kernel's copy and the page faults of the fresh buffer are shared by both cores).
fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let Ok(n) = usize::try_from(len) else {
        return std::fs::read(path);
    };
    if len < PARALLEL_READ_MIN {
        return std::fs::read(path);
    }
    let mut buf = vec![0u8; n];
    let (a, b) = buf.split_at_mut(n / 2);
    let f2 = f.try_clone()?;
    let halves = std::thread::scope(|s| {
        let hb = s.spawn(|| f2.read_exact_at(b, (n / 2) as u64));
        let ra = f.read_exact_at(a, 0);
        let rb = hb
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        ra.and(rb)
    });
    match halves {
        // The file shrank while being read: read it again as `fs::read` would.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => std::fs::read(path),
        Err(e) => Err(e),
        Ok(()) => {
            // Or it grew: read the rest.
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(len))?;
            f.read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

/// What [`load`] read.
struct Loaded {
    values: Vec<f64>,
    /// The rate found in the file (recordings only).
    rate: Option<f64>,
    /// The ECG forward high-pass over the first part of a CSV, run while the rest was parsed.
    head: Option<EcgHead>,
}

/// Reads the signal. `ecg_head_rate`: start the NeuroKit2 ECG filter at this rate while a CSV
/// is parsed (see [`EcgHead`]).
fn load(
    path: &Path,
    k: Kind,
    column: Option<&str>,
    ecg_head_rate: Option<f64>,
    timings: &mut Timings,
) -> anyhow::Result<Loaded> {
    let mut t0 = Instant::now();
    let bytes = read_file(path).with_context(|| format!("cannot read {}", path.display()))?;
    timings.lap("read", &mut t0);
    let is_recording = bytes.starts_with(b"{")
        && bytes
            .windows(16)
            .take(4096)
            .any(|w| w == b"attune-recording");
    if !is_recording {
        let capacity = bytes.len() / 8;
        let mut head_s = None;
        let start = |v: &[f64]| {
            let t = Instant::now();
            let h = ecg_head_rate.and_then(|fs| EcgHead::start(v, fs, capacity));
            head_s = h.as_ref().map(|_| t.elapsed().as_secs_f64());
            h
        };
        let (col, head) = read_column_bytes_with(&bytes, column, start).or_else(|e| {
            if e == CsvError::NotUtf8 {
                // The message names the first bad byte of the whole file.
                std::str::from_utf8(&bytes)
                    .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
            }
            Err(anyhow::Error::new(e).context(path.display().to_string()))
        })?;
        // Unmapping a large buffer takes milliseconds: let the other core do it while the
        // features are computed (the process does not wait for that thread).
        if bytes.len() >= PARALLEL_READ_MIN as usize {
            std::thread::spawn(move || drop(bytes));
        }
        timings.lap("parse", &mut t0);
        if let (true, Some(s)) = (timings.on, head_s) {
            timings.steps.push(("ecg_head_within_parse", s));
        }
        return Ok(Loaded {
            values: col.values,
            rate: None,
            head,
        });
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
    Ok(Loaded {
        values,
        rate: spec.rate_hz,
        head: None,
    })
}

/// Runs `analyze`.
pub fn run(_common: &Common, a: &AnalyzeArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    // glibc serves blocks of 128 KiB and more with fresh mmaps, each page faulted in on first
    // touch, until a freed mmapped block raises that threshold to the block's size (32 MiB at
    // most). Raising it now lets the record-sized vectors of the analysis (12 MB each for 25 min
    // at 1000 Hz) come from the heap and reuse each other's pages once freed, which saves
    // thousands of page faults. Elsewhere this costs one untouched allocation.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(31 << 20)));
    let mut timings = Timings::from_env();
    let k = kind(a.kind);
    // The NeuroKit2 ECG filter can start while the CSV is parsed (one record, rate given).
    let ecg_head_rate = match (k, a.method, a.windows) {
        (Kind::Ecg, MethodArg::Neurokit, false) => a.rate,
        _ => None,
    };
    let Loaded {
        values,
        rate: file_rate,
        head,
    } = load(&a.file, k, a.column.as_deref(), ecg_head_rate, &mut timings)?;
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
        let mut t0 = Instant::now();
        let mut m =
            analyze_with_head(k, &values, rate, method, psd, head).with_context(|| file.clone())?;
        m.insert("file".into(), json!(file));
        writeln!(out, "{}", Value::Object(m))?;
        timings.lap("analyze", &mut t0);
        if timings.on {
            timings.steps.push(("total", start.elapsed().as_secs_f64()));
            if let (Kind::Ecg, Method::NeuroKit, Some(fs)) = (k, method, rate) {
                timings.ecg_stages(&values, fs);
            }
        }
        timings.report();
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
    let mut eda_windows = match (k, rate) {
        (Kind::Eda, Some(fs)) => Some(crate::analyze::sliding::EdaWindows::new(
            &values, fs, a.window_s,
        )),
        _ => None,
    };
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
        if !m.contains_key("error") {
            match (k, psd) {
                (Kind::Rr, PsdMethod::TaskForce) => {
                    crate::analyze::sliding::hrv_window(&mut m, &values[lo..hi]);
                }
                (Kind::Eda, _) => {
                    if let Some(w) = eda_windows.as_mut() {
                        w.window(&mut m, start, start + a.window_s);
                    }
                }
                _ => {}
            }
        }
        m.insert("t_start_s".into(), json!(start));
        m.insert("t_end_s".into(), json!(start + a.window_s));
        writeln!(out, "{}", Value::Object(m))?;
    }
    Ok(())
}
