//! `attune bench`: runs the daemon on many synthetic participants with one subscriber and
//! reports throughput, decision latency, drops, memory and CPU (figures defined in
//! [`crate::bench`]).

use super::Common;
use crate::bench::{Report, bank, quantile};
use crate::daemon::{self, Plan, SourcePlan, Speed, Timeline};
use crate::model::{ParticipantId, StreamKind};
use crate::pipeline::TICKS_PER_S;
use crate::publish::server::ServerConfig;
use crate::sources::synthetic::{Dating, SynthStream, SyntheticSpec};
use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Arguments of `attune bench`.
#[derive(Debug, ClapArgs)]
pub struct BenchArgs {
    /// Synthetic participants.
    #[arg(long, default_value_t = 100)]
    pub participants: usize,
    /// Session seconds to run (≥ 5).
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// ECG rate, Hz (0: no ECG).
    #[arg(long, default_value_t = 250.0)]
    pub ecg_rate: f64,
    /// EDA rate, Hz (0: no EDA).
    #[arg(long, default_value_t = 32.0)]
    pub eda_rate: f64,
    /// Send as fast as the engine takes it instead of in real time.
    #[arg(long)]
    pub unpaced: bool,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// Runs the bench.
pub async fn run(common: &Common, a: &BenchArgs) -> anyhow::Result<()> {
    if a.participants == 0 || a.participants > 100_000 {
        bail!("--participants must be 1–100000, not {}", a.participants);
    }
    if !(a.seconds.is_finite() && (5.0..=86_400.0).contains(&a.seconds)) {
        bail!("--seconds must be 5–86400, not {}", a.seconds);
    }
    for (name, r) in [("--ecg-rate", a.ecg_rate), ("--eda-rate", a.eda_rate)] {
        if !(r == 0.0 || (r.is_finite() && (4.0..=4096.0).contains(&r))) {
            bail!("{name} must be 0 (off) or 4–4096 Hz, not {r}");
        }
    }
    let spec = spec(a)?;
    let dating = spec.dating.clone();
    let samples_expected = spec.expected_samples();
    let ids = spec.participants.clone();
    let dir = scratch_dir()?;
    let _cleanup = RemoveDir(dir.clone());
    let mut server = ServerConfig::new(dir.join("attune.sock"));
    server.max_clients = 4;
    let plan = Plan {
        sources: vec![SourcePlan::Synthetic(spec)],
        timeline: if a.unpaced {
            Timeline::Replay(Speed::Max)
        } else {
            Timeline::Live { speed: 1.0 }
        },
        server,
        data_dir: dir.join("data"),
        wait_subscribers: 1,
        // Every decision of a tick, for every participant, fits in the subscriber's queue.
        queue: (4 * a.participants).max(1024),
        input_queue: (4 * a.participants).max(1024),
        engine: crate::engine::EngineConfig::default(),
        recorder: None,
        reconfigure: None,
        transports: Vec::new(),
    };
    let rss_before = rss_bytes("VmRSS:");
    let cpu0 = cpu_seconds();
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = Instant::now();
    let daemon = tokio::spawn(daemon::run(plan, stop.clone(), Some(tx)));
    let socket = rx.await.context("the daemon did not start")?;
    let socket_ready_ms = started.elapsed().as_secs_f64() * 1e3;
    let lines =
        super::client::subscribe(&socket, "attune-bench", "*", &["adaptation".into()]).await?;
    let reader = tokio::spawn(read_decisions(lines, dating.clone(), !a.unpaced, ids.len()));
    let progress = std::io::stderr().is_terminal() && !common.quiet && !a.json;
    let ticker = tokio::spawn(watch_memory(progress, a.seconds, a.unpaced, dating.clone()));
    // A live timeline does not end with its sources: stop it once the last chunk is due.
    let ender = (!a.unpaced).then(|| {
        let (stop, dating, seconds) = (stop.clone(), dating.clone(), a.seconds);
        tokio::spawn(async move {
            loop {
                if let Some(e) = dating.epoch.get() {
                    tokio::time::sleep_until(*e + Duration::from_secs_f64(seconds + 0.3)).await;
                    stop.cancel();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    });
    let summary = match daemon.await {
        Ok(r) => r?,
        Err(e) => bail!("the daemon task failed: {e}"),
    };
    let wall = dating
        .epoch
        .get()
        .map_or(started.elapsed(), |e| e.elapsed())
        .as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    stop.cancel();
    ticker.abort();
    if let Some(e) = ender {
        e.abort();
    }
    let seen = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .context("the subscriber did not finish")?
        .context("the subscriber failed")?;
    if progress {
        eprint!("\r\x1b[K");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rss_peak = rss_bytes("VmHWM:");
    let samples = summary.samples;
    let mut lat = seen.latencies_us;
    let report = Report {
        participants: a.participants,
        seconds: a.seconds,
        ecg_rate_hz: a.ecg_rate,
        eda_rate_hz: a.eda_rate,
        paced: !a.unpaced,
        samples,
        samples_expected,
        samples_per_sec_per_core: if cpu > 0.0 { samples as f64 / cpu } else { 0.0 },
        latency_p50_us: quantile(&mut lat, 0.5),
        latency_p99_us: quantile(&mut lat, 0.99),
        latency_max_us: quantile(&mut lat, 1.0),
        decisions: seen.decisions,
        dropped: seen.lagged + seen.missing,
        rss_peak_bytes: rss_peak,
        rss_per_participant_bytes: rss_peak.saturating_sub(rss_before) / a.participants as u64,
        cpu_frac: if wall > 0.0 {
            cpu / (wall * cores as f64)
        } else {
            0.0
        },
        cpu_s: cpu,
        wall_s: wall,
        cores,
        socket_ready_ms,
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(out, "{}", report.text())?;
    }
    Ok(())
}

/// The synthetic source's spec: ECG in 0.1 s chunks, EDA in 0.25 s chunks.
fn spec(a: &BenchArgs) -> anyhow::Result<SyntheticSpec> {
    let bank_s = 120.0;
    let mut streams = Vec::new();
    if a.ecg_rate > 0.0 {
        let b = (0..bank::ENTRIES as u64)
            .map(|s| bank::ecg(s, a.ecg_rate, bank_s))
            .collect();
        streams.push(SynthStream {
            kind: StreamKind::Ecg,
            rate_hz: a.ecg_rate,
            chunk: chunk_len(a.ecg_rate, 0.1),
            bank: Arc::new(b),
        });
    }
    if a.eda_rate > 0.0 {
        let b = (0..bank::ENTRIES as u64)
            .map(|s| bank::eda(s, a.eda_rate, bank_s))
            .collect();
        streams.push(SynthStream {
            kind: StreamKind::Eda,
            rate_hz: a.eda_rate,
            chunk: chunk_len(a.eda_rate, 0.25),
            bank: Arc::new(b),
        });
    }
    if streams.is_empty() {
        bail!("nothing to send: --ecg-rate and --eda-rate are both 0");
    }
    let participants = (0..a.participants)
        .map(|i| ParticipantId::new(&format!("b{i:05}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(SyntheticSpec {
        participants,
        streams,
        seconds: a.seconds,
        dating: Arc::new(Dating::default()),
    })
}

fn chunk_len(rate: f64, seconds: f64) -> usize {
    ((rate * seconds).round() as usize).max(1)
}

/// What the subscriber saw.
#[derive(Debug, Default)]
struct Seen {
    decisions: u64,
    lagged: u64,
    missing: u64,
    latencies_us: Vec<f64>,
}

/// Reads adaptation lines until the daemon closes the socket.
async fn read_decisions(
    mut lines: tokio::io::Lines<tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>>,
    dating: Arc<Dating>,
    paced: bool,
    participants: usize,
) -> Seen {
    let mut seen = Seen::default();
    // Per participant: (first tick, last tick, count).
    let mut ticks: Vec<Option<(u64, u64, u64)>> = vec![None; participants];
    while let Ok(Some(line)) = lines.next_line().await {
        let now = Instant::now();
        if let Some(rest) = line.strip_prefix("{\"type\":\"lagged\",\"skipped\":") {
            seen.lagged += rest.trim_end_matches('}').parse::<u64>().unwrap_or(0);
            continue;
        }
        let Some((p, t)) = head(&line) else {
            continue;
        };
        seen.decisions += 1;
        let k = (t * TICKS_PER_S).round() as u64;
        if let Some(slot) = ticks.get_mut(p) {
            *slot = Some(match *slot {
                None => (k, k, 1),
                Some((a, b, n)) => (a.min(k), b.max(k), n + 1),
            });
        }
        let due = if paced {
            dating.epoch.get().map(|e| *e + Duration::from_secs_f64(t))
        } else {
            let ticks = dating.ticks.lock().unwrap_or_else(|e| e.into_inner());
            ticks.get(k as usize).copied()
        };
        if let Some(due) = due {
            seen.latencies_us
                .push(now.saturating_duration_since(due).as_secs_f64() * 1e6);
        }
    }
    seen.missing = ticks
        .iter()
        .flatten()
        .map(|(a, b, n)| (b - a + 1).saturating_sub(*n))
        .sum();
    seen
}

/// The participant index and tick time of an adaptation line
/// (`{"type":"adaptation","participant":"b00042","t":12.25,...`).
fn head(line: &str) -> Option<(usize, f64)> {
    let rest = line.strip_prefix("{\"type\":\"adaptation\",\"participant\":\"b")?;
    let (num, rest) = rest.split_once('"')?;
    let rest = rest.strip_prefix(",\"t\":")?;
    let end = rest.find([',', '}'])?;
    Some((num.parse().ok()?, rest[..end].parse().ok()?))
}

/// Keeps VmHWM honest (it is read at the end) and draws a progress line on a terminal.
async fn watch_memory(progress: bool, seconds: f64, unpaced: bool, dating: Arc<Dating>) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        if progress {
            let t = if unpaced {
                let n = dating.ticks.lock().map_or(0, |t| t.len());
                n as f64 / TICKS_PER_S
            } else {
                dating
                    .epoch
                    .get()
                    .map_or(0.0, |e| e.elapsed().as_secs_f64())
            };
            eprint!(
                "\rattune bench: {:.0} / {:.0} s, RSS {:.1} MiB\x1b[K",
                t.min(seconds),
                seconds,
                rss_bytes("VmRSS:") as f64 / 1048576.0
            );
        }
    }
}

/// A `/proc/self/status` memory line (`VmRSS:`, `VmHWM:`), bytes; 0 where unavailable.
fn rss_bytes(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// User + system CPU seconds of the whole process.
fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |u| {
        let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 * 1e-6;
        tv(u.user_time()) + tv(u.system_time())
    })
}

/// A private scratch directory for the bench's socket and data.
fn scratch_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("attune-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_of_an_adaptation_line() {
        let l = r#"{"type":"adaptation","participant":"b00042","t":12.25,"action":"hold"}"#;
        assert_eq!(head(l), Some((42, 12.25)));
        assert_eq!(head(r#"{"type":"state"}"#), None);
        assert_eq!(
            head(r#"{"type":"adaptation","participant":"p01","t":1}"#),
            None
        );
    }
}
