//! `attune demo`: replay the bundled fixture through the real socket and print the decisions as
//! a person would want to read them.

use super::Common;
use crate::daemon::{self, Plan, SourcePlan, Speed, Timeline};
use crate::publish::server::ServerConfig;
use crate::sources::replay;
use anyhow::Context;
use serde_json::Value;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  attune demo --speed max")]
pub struct DemoArgs {
    /// The recording to replay.
    #[arg(long, default_value = "fixtures/sim-rest-stress.attune.ndjson")]
    pub file: PathBuf,
    /// Pacing: a multiple of real time, or "max".
    #[arg(long, default_value = "60", allow_hyphen_values = true)]
    pub speed: Speed,
    /// Print every decision (4 per second of stream time), not just changes.
    #[arg(long)]
    pub all: bool,
}

fn f(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

fn feature<'a>(msg: &'a Value, name: &str) -> &'a Value {
    msg["reason"]["features"]
        .as_array()
        .and_then(|fs| fs.iter().find(|x| x["name"] == name))
        .map_or(&Value::Null, |x| &x["value"])
}

/// Runs `demo`.
pub async fn run(_common: &Common, a: &DemoArgs) -> anyhow::Result<()> {
    let opened = replay::open(&a.file).with_context(|| {
        "the demo replays a bundled fixture; run it from the repository's top directory or pass --file"
    })?;
    let header = opened.header.clone();
    let onset = header.segment_start("stress");
    let dir = std::env::temp_dir().join(format!("attune-demo-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let stop = CancellationToken::new();
    super::cancel_on_signals(stop.clone())?;
    let plan = Plan {
        sources: vec![SourcePlan::Replay {
            files: vec![opened],
            rename: None,
        }],
        timeline: Timeline::Replay(a.speed),
        server: ServerConfig::new(dir.join("attune.sock")),
        data_dir: dir.join("data"),
        wait_subscribers: 1,
        queue: 1 << 16,
        input_queue: 1024,
        engine: crate::engine::EngineConfig::default(),
        recorder: None,
        reconfigure: None,
        transports: Vec::new(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let daemon = tokio::spawn(daemon::run(plan, stop.clone(), Some(tx)));
    let result = async {
        let Ok(socket) = rx.await else {
            // The daemon failed before binding; its error is reported below.
            return Ok(None);
        };
        let mut lines = super::client::subscribe(
            &socket,
            "attune-demo",
            "*",
            &["adaptation".into(), "state".into()],
        )
        .await?;
        say!(
            "attune demo: {} (participant {}), {}",
            a.file.display(),
            header.participant,
            match onset {
                Some(o) => format!("stress onset at {o:.0} s"),
                None => "no stress segment".into(),
            }
        );
        say!("decisions over the socket; a line per change of action or rule, and every 30 s:");
        say!(
            "{:>8}  {:<9} {:>7}  {:<8} {:<17} {:>6} {:>7} {:>6} {:>7}",
            "t (s)",
            "action",
            "arousal",
            "state",
            "rule",
            "HR",
            "RMSSD",
            "SCL",
            "SCR/min"
        );
        let mut last: Option<(String, String)> = None;
        let mut last_print = f64::NEG_INFINITY;
        let mut onset_shown = false;
        let mut first_ease_off: Option<f64> = None;
        while let Some(line) = lines.next_line().await? {
            let msg: Value = serde_json::from_str(&line)?;
            match msg["type"].as_str() {
                Some("state") => {
                    say!(
                        "          [{} stream: {} at {} s]",
                        msg["stream"].as_str().unwrap_or("?"),
                        msg["state"].as_str().unwrap_or("?"),
                        f(&msg["since"], 2)
                    );
                }
                Some("lagged") => {
                    say!("          [lagged: {} messages skipped]", msg["skipped"])
                }
                Some("adaptation") => {
                    let t = msg["t"].as_f64().unwrap_or(0.0);
                    let action = msg["action"].as_str().unwrap_or("?").to_owned();
                    let rule = msg["reason"]["rule"].as_str().unwrap_or("?").to_owned();
                    if let (Some(o), false) = (onset, onset_shown)
                        && t >= o
                    {
                        say!("  ------  stress onset at {o:.0} s (from the recording's segments)");
                        onset_shown = true;
                    }
                    if action == "ease_off"
                        && first_ease_off.is_none()
                        && onset.is_some_and(|o| t >= o)
                    {
                        first_ease_off = Some(t);
                    }
                    let changed = last.as_ref() != Some(&(action.clone(), rule.clone()));
                    if a.all || changed || t - last_print >= 30.0 {
                        say!(
                            "{:>8.2}  {:<9} {:>7}  {:<8} {:<17} {:>6} {:>7} {:>6} {:>7}",
                            t,
                            action,
                            f(&msg["arousal"], 2),
                            msg["arousal_state"].as_str().unwrap_or("?"),
                            rule,
                            f(feature(&msg, "hr_bpm"), 1),
                            f(feature(&msg, "rmssd_ms"), 1),
                            f(feature(&msg, "scl_us"), 2),
                            f(feature(&msg, "scr_per_min"), 1)
                        );
                        last_print = t;
                    }
                    last = Some((action, rule));
                }
                _ => {}
            }
        }
        Ok::<_, anyhow::Error>(Some((onset, first_ease_off)))
    }
    .await;
    stop.cancel();
    let daemon_result = daemon.await.context("the replay task failed")?;
    let _ = std::fs::remove_dir_all(&dir);
    daemon_result?;
    if let Some((Some(o), first)) = result? {
        match first {
            Some(t) => say!(
                "first ease_off after the onset at {t:.2} s: {:.2} s after the stress onset",
                t - o
            ),
            None => say!("no ease_off after the stress onset"),
        }
    }
    Ok(())
}
