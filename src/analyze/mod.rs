//! Offline analysis of one signal: the core of `attune analyze`. Pure: samples in, one JSON
//! object out.
//!
//! `Method::NeuroKit` mirrors NeuroKit2 0.2.13 (SIGNALS.md §2–4):
//! - ecg: `ecg_clean` + `ecg_peaks(correct_artifacts=False)` + `hrv_time` + `hrv_frequency
//!   (normalize=False)`;
//! - ppg: `ppg_clean` + `ppg_peaks` (Elgendi) + the same HRV;
//! - rr: `intervals_to_peaks(rr, sampling_rate=1000)` (so intervals are rounded to whole ms, as
//!   NeuroKit2 does) + the same HRV;
//! - eda: `eda_process` defaults; `scl_mean_us` is the mean of `EDA_Tonic`.
//!
//! `Method::Streaming` uses what the daemon can do causally: ECG filtered by the primed causal
//! cascade (then NeuroKit2's detector, whose look-ahead is ≈ 0.4 s, SIGNALS.md §2.2), RR with
//! the streaming acceptance rule (no difference across a rejected beat), and the Task Force
//! spectrum by default. A value that cannot be computed is `null` with a `warnings` entry.

pub mod sliding;

use crate::dsp::ecg;
use crate::dsp::eda_nk;
use crate::dsp::filter::{Pass, Sos, moving_average_filtfilt};
use crate::dsp::hrv::{self, FreqDomain, PsdMethod, TimeDomain};
use crate::dsp::ppg;
use serde_json::{Map, Value, json};

/// Signal kinds `analyze` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ECG, mV.
    Ecg,
    /// PPG, a.u.
    Ppg,
    /// EDA, µS.
    Eda,
    /// RR intervals, ms (no rate).
    Rr,
}

impl Kind {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ecg => "ecg",
            Self::Ppg => "ppg",
            Self::Eda => "eda",
            Self::Rr => "rr",
        }
    }
}

/// Which algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// NeuroKit2 0.2.13, offline, whole record.
    NeuroKit,
    /// attune's causal streaming algorithms.
    Streaming,
}

impl Method {
    /// Name.
    pub fn name(self) -> &'static str {
        match self {
            Self::NeuroKit => "neurokit",
            Self::Streaming => "streaming",
        }
    }
}

/// Why a signal could not be analysed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// A rate is needed and missing.
    #[error("{0} needs a sampling rate (--rate HZ)")]
    NoRate(&'static str),
    /// The rate is absurd for the kind.
    #[error(
        "a sampling rate of {} Hz is not plausible for {kind} (expected {min}-100000 Hz)",
        short_number(*rate)
    )]
    BadRate {
        /// Kind.
        kind: &'static str,
        /// Given.
        rate: f64,
        /// Lowest accepted.
        min: f64,
    },
    /// No usable sample.
    #[error("the signal has no finite value")]
    NoData,
    /// RR values outside a physiological range.
    #[error(
        "RR interval {} at row {index} is not plausible in ms (expected 200-3000); are the values in seconds?",
        short_number(*value)
    )]
    RrUnits {
        /// Value.
        value: f64,
        /// 0-based index.
        index: usize,
    },
    /// The record is too short for the filters.
    #[error("the record is too short: {0}")]
    TooShort(String),
}

/// A number for a one-line message: plain when short, in exponent form when huge or tiny
/// (`1e300` must not print as 301 digits).
pub fn short_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e7).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Refuses RR intervals outside 200–3000 ms (NaN means missing and is allowed); the index is
/// the value's position in `x` (0-based data row).
pub fn check_rr(x: &[f64]) -> Result<(), AnalyzeError> {
    match x
        .iter()
        .enumerate()
        .find(|(_, v)| !v.is_nan() && !(200.0..=3000.0).contains(*v))
    {
        Some((index, value)) => Err(AnalyzeError::RrUnits {
            value: *value,
            index,
        }),
        None => Ok(()),
    }
}

/// The sampling rate of a uniformly sampled kind, refused when missing or implausible
/// (1–100000 Hz for EDA, 10–100000 Hz for ECG and PPG).
pub fn check_rate(kind: Kind, rate: Option<f64>) -> Result<f64, AnalyzeError> {
    let name = kind.name();
    let fs = rate.ok_or(AnalyzeError::NoRate(name))?;
    let min = if kind == Kind::Eda { 1.0 } else { 10.0 };
    if !(fs.is_finite() && (min..=100_000.0).contains(&fs)) {
        return Err(AnalyzeError::BadRate {
            kind: name,
            rate: fs,
            min,
        });
    }
    Ok(fs)
}

/// Analyses `x` (in the kind's unit) sampled at `rate` Hz (ignored for RR).
pub fn analyze(
    kind: Kind,
    x: &[f64],
    rate: Option<f64>,
    method: Method,
    psd: PsdMethod,
) -> Result<Map<String, Value>, AnalyzeError> {
    analyze_with_head(kind, x, rate, method, psd, None)
}

/// The forward high-pass pass of NeuroKit2's `ecg_clean` run over the first part of a record,
/// so that a caller can do it while the rest is still being read ([`EcgHead::start`]); then
/// [`analyze_with_head`] goes on from there. Only a speed-up: the result is bit-identical to
/// [`ecg::clean`], because the cascade sees the same samples in the same order (a block of a
/// DF2T cascade run in place gives the same numbers whatever the block boundaries).
#[derive(Debug, Clone)]
pub struct EcgHead {
    fs: f64,
    cascade: crate::dsp::filter::Cascade,
    /// The odd-extended record so far, filtered forward: `padlen` samples of extension, then
    /// `taken` samples of the record (NaNs filled forward).
    fwd: Vec<f64>,
    padlen: usize,
    taken: usize,
    last: f64,
}

impl EcgHead {
    /// Starts on `head`, the first samples of an ECG at `fs` Hz (`capacity`: the expected
    /// record length, to reserve). `None` when this shortcut does not apply (the first sample
    /// is missing, `head` is not longer than the padding, the design fails); the caller then
    /// analyses as usual.
    pub fn start(head: &[f64], fs: f64, capacity: usize) -> Option<Self> {
        let sos = Sos::butterworth(Pass::High, 5, fs, 0.5).ok()?;
        let padlen = sos.padlen();
        let first = *head.first()?;
        if head.len() <= padlen + 1 || !first.is_finite() {
            return None;
        }
        // ffill of head[..=padlen]: head[0] is finite, so no backward fill is needed.
        let mut filled = Vec::with_capacity(padlen + 1);
        let mut last = first;
        for &v in &head[..=padlen] {
            if !v.is_nan() {
                last = v;
            }
            filled.push(last);
        }
        let mut fwd = Vec::with_capacity(capacity + 2 * padlen);
        fwd.extend((1..=padlen).rev().map(|i| 2.0 * first - filled[i]));
        let mut h = Self {
            fs,
            cascade: sos.cascade(),
            fwd,
            padlen,
            taken: 0,
            last: first,
        };
        h.cascade.prime(h.fwd[0]);
        h.cascade.run_in_place(&mut h.fwd);
        h.push(head);
        Some(h)
    }

    /// Filters the next samples of the record forward.
    fn push(&mut self, x: &[f64]) {
        let from = self.fwd.len();
        let mut last = self.last;
        self.fwd.extend(x.iter().map(|&v| {
            if !v.is_nan() {
                last = v;
            }
            last
        }));
        self.last = last;
        self.taken += x.len();
        self.cascade.run_in_place(&mut self.fwd[from..]);
    }

    /// `ecg::clean(x, fs, 50.0)`, given that `self` started on a prefix of `x`.
    fn finish(mut self, x: &[f64]) -> Result<Vec<f64>, ecg::EcgError> {
        let (n, padlen) = (x.len(), self.padlen);
        self.push(&x[self.taken..]);
        // The end extension uses the filled record: x[j] or the last finite value before it.
        let filled_at = |j: usize| {
            x[..=j]
                .iter()
                .rev()
                .copied()
                .find(|v| !v.is_nan())
                .unwrap_or(f64::NAN)
        };
        let last = filled_at(n - 1);
        let tail: Vec<f64> = (1..=padlen)
            .map(|i| 2.0 * last - filled_at(n - 1 - i))
            .collect();
        let from = self.fwd.len();
        self.fwd.extend_from_slice(&tail);
        self.cascade.run_in_place(&mut self.fwd[from..]);
        // The rest of `Sos::filtfilt`, then the powerline stage of `ecg::clean`.
        let ext = &mut self.fwd;
        ext.reverse();
        self.cascade.prime(ext[0]);
        self.cascade.run_in_place(ext);
        ext.reverse();
        Ok(moving_average_filtfilt(
            &ext[padlen..padlen + n],
            ecg::powerline_taps(self.fs, 50.0),
        )?)
    }
}

/// [`analyze`], for an ECG with the NeuroKit2 method going on from `head` (see [`EcgHead`]);
/// `head` is ignored otherwise, and when it did not start on a prefix of `x` at `rate`.
pub fn analyze_with_head(
    kind: Kind,
    x: &[f64],
    rate: Option<f64>,
    method: Method,
    psd: PsdMethod,
    head: Option<EcgHead>,
) -> Result<Map<String, Value>, AnalyzeError> {
    let mut out = Map::new();
    let mut warnings: Vec<String> = Vec::new();
    out.insert("kind".into(), json!(kind.name()));
    out.insert("method".into(), json!(method.name()));
    if !x.iter().any(|v| v.is_finite()) {
        return Err(AnalyzeError::NoData);
    }
    let missing = x.iter().filter(|v| v.is_nan()).count();
    if missing > 0 {
        warnings.push(match kind {
            Kind::Ecg | Kind::Ppg => format!(
                "{missing} missing samples were filled as NeuroKit2 does (forward, then backward)"
            ),
            Kind::Rr => format!("{missing} missing intervals were left out"),
            // eda_nk reports its own filling (forward only, as NeuroKit2's eda_clean).
            Kind::Eda => String::new(),
        });
        warnings.retain(|w| !w.is_empty());
    }
    match kind {
        Kind::Rr => {
            out.insert("rate_hz".into(), Value::Null);
            check_rr(x)?;
            let rr: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
            out.insert("duration_s".into(), json!(rr.iter().sum::<f64>() / 1000.0));
            match method {
                Method::NeuroKit => {
                    let mut acc = 0.0;
                    let mut peaks = vec![0usize];
                    for r in &rr {
                        acc += r / 1000.0;
                        peaks.push((acc * 1000.0).round_ties_even() as usize);
                    }
                    if rr.iter().any(|r| r.fract() != 0.0) {
                        warnings.push(
                            "intervals were rounded to whole ms, as NeuroKit2's intervals_to_peaks(sampling_rate=1000) does"
                                .into(),
                        );
                    }
                    cardiac(&mut out, &mut warnings, &peaks, 1000.0, psd);
                }
                Method::Streaming => streaming_rr(&mut out, &mut warnings, &rr, psd),
            }
        }
        _ => {
            let fs = check_rate(kind, rate)?;
            out.insert("rate_hz".into(), json!(fs));
            out.insert("samples".into(), json!(x.len()));
            out.insert("duration_s".into(), json!(x.len() as f64 / fs));
            let short = |e: &dyn std::fmt::Display| AnalyzeError::TooShort(e.to_string());
            match kind {
                Kind::Ecg => {
                    if fs < 100.0 {
                        warnings.push(format!(
                            "ECG at {fs} Hz: below 100 Hz R-peak times are coarse and NeuroKit2's powerline stage is a 2-sample mean"
                        ));
                    }
                    let head =
                        head.filter(|h| h.fs == fs && h.taken <= x.len() && x.len() > h.padlen);
                    let clean = match (method, head) {
                        (Method::NeuroKit, Some(h)) => h.finish(x).map_err(|e| short(&e))?,
                        (Method::NeuroKit, None) => {
                            ecg::clean(x, fs, 50.0).map_err(|e| short(&e))?
                        }
                        (Method::Streaming, _) => causal_ecg(x, fs).map_err(|e| short(&e))?,
                    };
                    let peaks = ecg::peaks_neurokit(&clean, fs);
                    cardiac(&mut out, &mut warnings, &peaks, fs, psd);
                }
                Kind::Ppg => {
                    let clean = ppg::clean_elgendi(x, fs).map_err(|e| short(&e))?;
                    let peaks = ppg::peaks_elgendi(&clean, fs).map_err(|e| short(&e))?;
                    if method == Method::Streaming {
                        warnings.push(
                            "PPG has no streaming method yet; these are the NeuroKit2 (offline) results"
                                .into(),
                        );
                    }
                    warnings.push(
                        "PPG-derived HRV is inflated by pulse-timing artifacts (SIGNALS.md §2.3); no artifact correction was applied, as in NeuroKit2's defaults"
                            .into(),
                    );
                    cardiac(&mut out, &mut warnings, &peaks, fs, psd);
                }
                Kind::Eda => {
                    if method == Method::Streaming {
                        eda_streaming(&mut out, x, fs);
                    } else {
                        let s = eda_nk::process(x, fs).map_err(|e| short(&e))?;
                        out.insert("scr_count".into(), json!(s.scr_count));
                        out.insert("scl_mean_us".into(), json!(s.scl_mean_us));
                        out.insert("scr_amp_mean_us".into(), json!(s.scr_amp_mean_us));
                        out.insert("scr_per_min".into(), json!(s.scr_per_min));
                        warnings.extend(s.warnings);
                    }
                }
                Kind::Rr => {}
            }
        }
    }
    out.insert("warnings".into(), json!(warnings));
    Ok(out)
}

/// The causal ECG chain: primed 0.5 Hz order-5 high-pass, then a causal moving mean of one
/// 50 Hz period (SIGNALS.md §4.5: this shifts every beat by a constant ≈ 8 ms at 1000 Hz).
fn causal_ecg(x: &[f64], fs: f64) -> Result<Vec<f64>, String> {
    let mut v = ecg::fill_forward_backward(x).ok_or("no finite sample")?;
    Sos::butterworth(Pass::High, 5, fs, 0.5)
        .map_err(|e| e.to_string())?
        .cascade()
        .run_in_place(&mut v);
    let n = ecg::powerline_taps(fs, 50.0);
    let first = v.first().copied().unwrap_or(0.0);
    let mut ring = vec![first; n];
    let mut sum = first * n as f64;
    for (i, s) in v.iter_mut().enumerate() {
        sum += *s - ring[i % n];
        ring[i % n] = *s;
        *s = sum / n as f64;
    }
    Ok(v)
}

fn put(out: &mut Map<String, Value>, key: &str, v: Option<f64>) {
    out.insert(
        key.into(),
        v.filter(|x| x.is_finite())
            .map_or(Value::Null, |x| json!(x)),
    );
}

fn time_fields(out: &mut Map<String, Value>, t: Option<&TimeDomain>) {
    put(out, "hr_mean_bpm", t.map(|t| t.hr_mean_bpm));
    put(out, "mean_nn_ms", t.map(|t| t.mean_nn));
    put(out, "sdnn_ms", t.map(|t| t.sdnn));
    put(out, "rmssd_ms", t.map(|t| t.rmssd));
    put(out, "sdsd_ms", t.map(|t| t.sdsd));
    put(out, "pnn50_pct", t.map(|t| t.pnn50));
    put(out, "pnn20_pct", t.map(|t| t.pnn20));
    put(out, "median_nn_ms", t.map(|t| t.median_nn));
    put(out, "mad_nn_ms", t.map(|t| t.mad_nn));
    put(out, "iqr_nn_ms", t.map(|t| t.iqr_nn));
    put(out, "min_nn_ms", t.map(|t| t.min_nn));
    put(out, "max_nn_ms", t.map(|t| t.max_nn));
    put(out, "hti", t.map(|t| t.hti));
}

fn freq_fields(
    out: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    f: Option<&FreqDomain>,
    duration_s: f64,
    psd: PsdMethod,
) {
    out.insert("psd_method".into(), json!(psd.name()));
    put(out, "vlf_ms2", f.and_then(|f| f.vlf));
    put(out, "lf_ms2", f.and_then(|f| f.lf));
    put(out, "hf_ms2", f.and_then(|f| f.hf));
    put(out, "lf_hf", f.and_then(|f| f.lf_hf));
    put(out, "tp_ms2", f.and_then(|f| f.tp));
    match f {
        None => warnings.push("frequency domain: too few beats for a spectrum".into()),
        Some(f) => {
            for (name, v, lo) in [
                ("vlf_ms2", f.vlf, 0.0033),
                ("lf_ms2", f.lf, 0.04),
                ("hf_ms2", f.hf, 0.15),
            ] {
                if v.is_none() {
                    warnings.push(format!(
                        "{name} is null: the {duration_s:.1} s record gives a spectrum from {:.3} Hz, which leaves no bin in the band (from {lo} Hz)",
                        f.fmin_hz
                    ));
                }
            }
            if f.lf.is_some() && duration_s < 120.0 {
                warnings.push(format!(
                    "lf_ms2 from {duration_s:.1} s: the Task Force minimum for LF is 2 min (SIGNALS.md §5); NeuroKit2 reports it anyway"
                ));
            }
        }
    }
}

fn cardiac(
    out: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    peaks: &[usize],
    fs: f64,
    psd: PsdMethod,
) {
    out.insert("beats".into(), json!(peaks.len()));
    let rri = hrv::intervals_ms(peaks, fs);
    let t = hrv::time_domain(&rri);
    if t.is_none() {
        warnings.push(format!(
            "{} beats: at least 4 are needed for HRV",
            peaks.len()
        ));
    }
    time_fields(out, t.as_ref());
    let f = match psd {
        PsdMethod::NeuroKit => hrv::frequency_neurokit(&rri),
        PsdMethod::TaskForce => hrv::frequency_taskforce(&rri),
    };
    let duration = rri.iter().sum::<f64>() / 1000.0;
    freq_fields(out, warnings, f.as_ref(), duration, psd);
}

/// RR with the streaming acceptance rule: rejected intervals are left out and never
/// differenced across.
fn streaming_rr(
    out: &mut Map<String, Value>,
    warnings: &mut Vec<String>,
    rr: &[f64],
    psd: PsdMethod,
) {
    // The daemon's RR path: plausibility bounds and the streaming Lipponen & Tarvainen (2019)
    // artefact step; successive differences only between original, adjacent beats.
    let w = sliding::daemon_rr(rr);
    let mut accepted = Vec::new();
    let mut diffs = Vec::new();
    let mut prev: Option<f64> = None;
    for b in w.beats() {
        if let (true, Some(p)) = (b.follows, prev) {
            diffs.push(b.rr_ms - p);
        }
        prev = Some(b.rr_ms);
        accepted.push(b.rr_ms);
    }
    out.insert("beats".into(), json!(rr.len() + 1));
    out.insert("rejected_intervals".into(), json!(w.rejected));
    out.insert("corrected_intervals".into(), json!(w.corrected));
    if w.corrected > 0 {
        warnings.push(format!(
            "{} of {} intervals were corrected or left out by the streaming artefact step (implausible, ectopic, missed, extra, long or short beats; Lipponen & Tarvainen 2019)",
            w.corrected,
            rr.len()
        ));
    }
    let mut td = hrv::time_domain(&accepted);
    if let Some(td) = td.as_mut()
        && !diffs.is_empty()
    {
        td.rmssd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
        let over = |thr: f64| diffs.iter().filter(|d| d.abs() > thr).count() as f64;
        td.pnn50 = over(50.0) / (diffs.len() + 1) as f64 * 100.0;
        td.pnn20 = over(20.0) / (diffs.len() + 1) as f64 * 100.0;
    }
    time_fields(out, td.as_ref());
    let f = match psd {
        PsdMethod::NeuroKit => hrv::frequency_neurokit(&accepted),
        PsdMethod::TaskForce => hrv::frequency_taskforce(&accepted),
    };
    let duration = rr.iter().sum::<f64>() / 1000.0;
    freq_fields(out, warnings, f.as_ref(), duration, psd);
}

/// EDA with the daemon's causal chain (SIGNALS.md §4.4).
fn eda_streaming(out: &mut Map<String, Value>, x: &[f64], fs: f64) {
    use crate::dsp::eda::{EdaChain, EdaConfig};
    let mut chain = match EdaChain::new(fs, EdaConfig::default()) {
        Ok(c) => c,
        Err(e) => {
            out.insert("error".into(), json!(e.to_string()));
            return;
        }
    };
    let mut scrs = Vec::new();
    let (mut sum, mut n) = (0.0, 0usize);
    let mut last = f64::NAN;
    for (i, &v) in x.iter().enumerate() {
        let v = if v.is_nan() { last } else { v };
        if v.is_nan() {
            continue;
        }
        last = v;
        if let Some(c) = chain.push(i as f64 / fs, v, &mut scrs) {
            sum += c;
            n += 1;
        }
    }
    let minutes = x.len() as f64 / fs / 60.0;
    out.insert("scr_count".into(), json!(scrs.len()));
    put(out, "scl_mean_us", (n > 0).then(|| sum / n as f64));
    put(
        out,
        "scr_amp_mean_us",
        (!scrs.is_empty())
            .then(|| scrs.iter().map(|s| s.amplitude_us).sum::<f64>() / scrs.len() as f64),
    );
    out.insert("scr_per_min".into(), json!(scrs.len() as f64 / minutes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ecg_head_gives_the_bits_of_ecg_clean() {
        let fs = 500.0;
        let mut x: Vec<f64> = (0..20_000)
            .map(|i| {
                let t = f64::from(i) / fs;
                (t * 7.0).sin().powi(15) + 0.2 * (t * 0.9).sin() + 1e-3 * f64::from(i % 13)
            })
            .collect();
        for i in [5, 6, 900, 19_990, 19_999] {
            x[i] = f64::NAN;
        }
        let want = ecg::clean(&x, fs, 50.0).unwrap();
        for head_len in [40, 41, 1000, 12_345, 20_000] {
            let h = EcgHead::start(&x[..head_len], fs, 0).unwrap();
            let got = h.finish(&x).unwrap();
            assert_eq!(got.len(), want.len());
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "head {head_len}"
            );
        }
        assert!(EcgHead::start(&x[..3], fs, 0).is_none());
        x[0] = f64::NAN;
        assert!(EcgHead::start(&x[..1000], fs, 0).is_none());
    }
}
