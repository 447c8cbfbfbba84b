//! The daemon's sliding spectral features for `analyze --windows`, so that an offline window
//! gives what the live engine gives on the same data (the methods are in
//! [`crate::dsp::hrv_spectral`] and [`crate::dsp::eda_symp`]).
//!
//! - RR windows with the Task Force spectrum: the window's intervals go through the daemon's RR
//!   path (plausibility bounds, the streaming Lipponen & Tarvainen 2019 artefact step) and the
//!   corrected beats through [`HrvSpectral`]; the spectral keys then hold the sliding method's
//!   values (`psd_method` `"taskforce_sliding"`, no VLF or total power: the live method has
//!   neither) and `lf_nu`, `hf_nu`, `hf_peak_hz` and `hrv_spectrum` are added.
//! - EDA windows: one [`EdaSympathetic`] runs over the whole record (its low-pass is causal and
//!   continuous, as live) and each window is the 2 Hz points in [start, end); `eda_symp_us2`,
//!   `eda_sympn`, `eda_total_us2` and `eda_spectrum` are added. Windows shorter than 128 s give
//!   `short_window`.

use crate::dsp::eda_symp::{EdaSympIssue, EdaSympathetic};
use crate::dsp::hrv_spectral::HrvSpectral;
use crate::dsp::rr::{RrConfig, RrWindow};
use serde_json::{Map, Value, json};

/// Writes `keys` with `values` (non-finite as `null`), or all `null` without values, and the
/// status under `status_key`: `"ok"` or the reason.
fn put_all<const N: usize>(
    out: &mut Map<String, Value>,
    keys: [&str; N],
    values: Result<[f64; N], &'static str>,
    status_key: &str,
) {
    let status = values.map_or_else(|why| why, |_| "ok");
    for (i, k) in keys.iter().enumerate() {
        let v = values.ok().map(|v| v[i]).filter(|x| x.is_finite());
        out.insert((*k).into(), v.map_or(Value::Null, |x| json!(x)));
    }
    out.insert(status_key.into(), json!(status));
}

/// The intervals `rr` (ms) through the daemon's RR path, beat times from their cumulative sum.
pub fn daemon_rr(rr: &[f64]) -> RrWindow {
    let mut w = RrWindow::new(RrConfig::default());
    let mut t = 0.0;
    for &r in rr {
        t += r / 1000.0;
        w.push(t, r);
    }
    w.flush();
    w
}

/// Replaces the spectral keys of an RR window's output `out` with the sliding method's.
pub fn hrv_window(out: &mut Map<String, Value>, rr: &[f64]) {
    let w = daemon_rr(rr);
    let result = HrvSpectral::new().compute(w.beats().map(|b| (b.t, b.rr_ms, b.corrected)));
    out.insert("psd_method".into(), json!("taskforce_sliding"));
    out.insert("vlf_ms2".into(), Value::Null);
    out.insert("tp_ms2".into(), Value::Null);
    put_all(
        out,
        ["lf_ms2", "hf_ms2", "lf_hf", "lf_nu", "hf_nu", "hf_peak_hz"],
        result
            .map(|s| [s.lf_ms2, s.hf_ms2, s.lf_hf, s.lf_nu, s.hf_nu, s.hf_peak_hz])
            .map_err(|e| e.name()),
        "hrv_spectrum",
    );
    // The offline method's notes about its own spectrum no longer apply.
    if let Some(Value::Array(ws)) = out.get_mut("warnings") {
        ws.retain(|w| {
            w.as_str().is_none_or(|s| {
                !(s.starts_with("frequency domain")
                    || s.starts_with("vlf_ms2")
                    || s.starts_with("lf_ms2")
                    || s.starts_with("hf_ms2"))
            })
        });
    }
}

/// EDASymp over the windows of one uniform record.
#[derive(Debug)]
pub struct EdaWindows<'a> {
    x: &'a [f64],
    fs: f64,
    next: usize,
    state: Result<EdaSympathetic, String>,
}

impl<'a> EdaWindows<'a> {
    /// For the samples `x` at `fs` Hz, windows of `window_s`.
    pub fn new(x: &'a [f64], fs: f64, window_s: f64) -> Self {
        let state = EdaSympathetic::new(fs)
            .map(|mut s| {
                s.set_horizon(window_s);
                s
            })
            .map_err(|e| e.to_string());
        Self {
            x,
            fs,
            next: 0,
            state,
        }
    }

    /// Adds the EDASymp keys of the window [start, end) to `out` (windows in increasing order).
    pub fn window(&mut self, out: &mut Map<String, Value>, start: f64, end: f64) {
        let keys = ["eda_symp_us2", "eda_sympn", "eda_total_us2"];
        let s = match &mut self.state {
            Ok(s) => s,
            Err(e) => {
                for k in keys {
                    out.insert(k.into(), Value::Null);
                }
                out.insert("eda_spectrum".into(), json!(e));
                return;
            }
        };
        while self.next < self.x.len() && (self.next as f64 / self.fs) < end {
            s.push(self.next as f64 / self.fs, self.x[self.next]);
            self.next += 1;
        }
        let r = s.window(start, end);
        put_all(
            out,
            keys,
            r.map(|v| [v.symp_us2, v.sympn, v.total_us2])
                .map_err(|e| e.name()),
            "eda_spectrum",
        );
        if r == Err(EdaSympIssue::ShortWindow) && end - start < 128.0 {
            let note = format!(
                "eda_symp_us2 is null: EDASymp needs windows of at least 128 s (--window-s {})",
                end - start
            );
            if let Some(Value::Array(ws)) = out.get_mut("warnings") {
                ws.push(json!(note));
            }
        }
    }
}
