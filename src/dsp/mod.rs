//! Signal processing. Pure: plain data in, plain data out; no tokio, no clock, no I/O.
//!
//! - [`filter`]: Butterworth low/high-pass filters as f64 biquad cascades (crate `biquad`),
//!   state primed to the first sample (SIGNALS.md §1.1–1.3).
//! - [`eda`]: the causal EDA chain and SCR detector for streaming (SIGNALS.md §4.4).
//! - [`rr`]: RR-interval acceptance and windowed HR / RMSSD (SIGNALS.md §2.3, §3.1).
//!
//! This is the daemon's streaming DSP; the NeuroKit2-exact offline path is `crate::analyze`.

pub mod beats;
pub mod ecg;
pub mod eda;
pub mod eda_nk;
pub mod eda_symp;
pub mod filter;
pub mod hrv;
pub mod hrv_spectral;
pub mod peaks;
pub mod ppg;
pub mod rr;
pub mod rr_fix;
pub mod spectrum;
pub mod spline;
