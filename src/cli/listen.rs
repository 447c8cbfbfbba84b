//! `attune listen`: subscribe to a running daemon and print one message per line.

use super::Common;
use anyhow::Context;
use std::io::Write;

/// Arguments of `listen`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  attune listen --topics adaptation --count 10")]
pub struct ListenArgs {
    /// Topics, comma-separated: adaptation, state, features.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "adaptation,state,features"
    )]
    pub topics: Vec<String>,
    /// Only this participant ("*" = all).
    #[arg(long, value_name = "ID", default_value = "*")]
    pub participant: String,
    /// Exit after this many messages (the daemon's welcome line is not counted).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

/// Runs `listen`.
pub async fn run(common: &Common, a: &ListenArgs) -> anyhow::Result<()> {
    for t in &a.topics {
        anyhow::ensure!(
            matches!(t.as_str(), "adaptation" | "state" | "features"),
            "unknown topic {t:?} (expected adaptation, state or features)"
        );
    }
    let socket = common.socket_path();
    let mut lines =
        super::client::subscribe(&socket, "attune-listen", &a.participant, &a.topics).await?;
    let mut seen = 0u64;
    let stdout = std::io::stdout();
    while let Some(line) = lines
        .next_line()
        .await
        .context("reading from the daemon failed")?
    {
        let msg: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("the daemon sent a line that is not JSON: {line}"))?;
        let welcome = msg["type"] == "welcome";
        if msg["type"] == "error" {
            anyhow::bail!(
                "the daemon refused: {} ({})",
                msg["message"].as_str().unwrap_or("?"),
                msg["code"].as_str().unwrap_or("?")
            );
        }
        let mut out = stdout.lock();
        if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            // A closed pipe (e.g. `| head`) is a normal way to stop listening.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        if !welcome {
            seen += 1;
            if a.count.is_some_and(|n| seen >= n) {
                return Ok(());
            }
        }
    }
    if let Some(n) = a.count {
        anyhow::ensure!(
            seen >= n,
            "the daemon closed the connection after {seen} of {n} messages"
        );
    }
    Ok(())
}
