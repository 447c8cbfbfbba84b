//! `attune bench`: what the daemon costs, measured on the real engine.
//!
//! The bench runs the daemon itself (`crate::daemon::run`: consent gate, clocks, DSP, beat
//! detection, features, policy, the Unix socket publisher) on a synthetic source of many
//! participants ([`crate::sources::synthetic`]), with one subscriber connected to the socket
//! that reads every `adaptation` line. This module holds the pure parts: the signal bank
//! ([`bank`]) and the figures ([`Report`]); `crate::cli::bench` runs it and measures.
//!
//! Figures:
//! - `samples_per_sec_per_core`: samples fed to the engine ÷ CPU seconds the whole process used
//!   (user + system, every thread: engine, publisher, source, subscriber), so the source and
//!   the subscriber count against attune (they are small; the bank is copied, not computed).
//! - decision latency: for each `adaptation` line read by the subscriber, the time from the
//!   moment its tick could be computed to the moment the line was read from the socket. Paced:
//!   the tick's due time on the session clock (every chunk the tick uses has arrived by then).
//!   Unpaced: when the source sent the first chunk arriving at or after the tick (the input
//!   that lets the engine run the tick).
//! - `dropped`: messages lost anywhere on the way: `lagged` lines' counts and `dropped` events
//!   the subscriber saw, plus adaptation lines missing at the end (expected: one per
//!   participant per tick).
//! - `rss_peak_bytes` (VmHWM) and `rss_per_participant_bytes` = (peak − RSS before the session
//!   started) ÷ participants; `cpu_frac` = CPU seconds ÷ (wall seconds × cores).

pub mod bank;

use serde::Serialize;

/// The figures of one run (`--json` prints this object).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Participants.
    pub participants: usize,
    /// Session seconds.
    pub seconds: f64,
    /// ECG rate, Hz (0 without ECG).
    pub ecg_rate_hz: f64,
    /// EDA rate, Hz (0 without EDA).
    pub eda_rate_hz: f64,
    /// Whether the run was paced in real time.
    pub paced: bool,
    /// Samples fed to the engine.
    pub samples: u64,
    /// Samples the session should have fed; fewer means the engine could not keep up (the
    /// source waits on a full queue: nothing is dropped, the data arrive late).
    pub samples_expected: u64,
    /// Samples per CPU second (the whole process).
    pub samples_per_sec_per_core: f64,
    /// Decision latency, median, µs.
    pub latency_p50_us: f64,
    /// Decision latency, 99th percentile, µs.
    pub latency_p99_us: f64,
    /// Decision latency, maximum, µs.
    pub latency_max_us: f64,
    /// Adaptation lines read by the subscriber.
    pub decisions: u64,
    /// Messages lost (lagged, dropped, or missing adaptation lines).
    pub dropped: u64,
    /// Peak resident memory, bytes.
    pub rss_peak_bytes: u64,
    /// (Peak − before the session) ÷ participants, bytes.
    pub rss_per_participant_bytes: u64,
    /// CPU seconds ÷ (wall seconds × cores).
    pub cpu_frac: f64,
    /// CPU seconds used.
    pub cpu_s: f64,
    /// Wall seconds of the session.
    pub wall_s: f64,
    /// Cores of the machine.
    pub cores: usize,
    /// From the start of the daemon to its socket accepting connections, ms.
    pub socket_ready_ms: f64,
}

impl Report {
    /// The human summary, a few lines.
    pub fn text(&self) -> String {
        format!(
            "attune bench: {} participants × {:.0} s ({}), ECG {} Hz + EDA {} Hz\n\
             throughput   {:.3e} samples/s per core ({} samples, {:.2} CPU s, {:.2} wall s, {} cores, CPU {:.1} %)\n\
             kept up      {}\n\
             latency      p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs over {} decisions\n\
             dropped      {}\n\
             memory       peak RSS {:.1} MiB, {:.1} KiB per participant\n\
             socket ready {:.1} ms after start",
            self.participants,
            self.seconds,
            if self.paced { "real time" } else { "unpaced" },
            self.ecg_rate_hz,
            self.eda_rate_hz,
            self.samples_per_sec_per_core,
            self.samples,
            self.cpu_s,
            self.wall_s,
            self.cores,
            100.0 * self.cpu_frac,
            if self.samples as f64 >= 0.999 * self.samples_expected as f64 {
                "yes: every sample was fed in time".to_owned()
            } else {
                format!(
                    "NO: only {} of {} samples ({:.1} %) were fed by the end; the engine is the bottleneck",
                    self.samples,
                    self.samples_expected,
                    100.0 * self.samples as f64 / self.samples_expected.max(1) as f64
                )
            },
            self.latency_p50_us,
            self.latency_p99_us,
            self.latency_max_us,
            self.decisions,
            self.dropped,
            self.rss_peak_bytes as f64 / 1048576.0,
            self.rss_per_participant_bytes as f64 / 1024.0,
            self.socket_ready_ms,
        )
    }
}

/// The `q`-quantile (0..=1) of `v` by the nearest-rank method; 0 for no data. Sorts `v`.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_unstable_by(f64::total_cmp);
    let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut v, 1.0), 100.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }
}
