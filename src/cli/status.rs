//! `attune status` and `attune mark`: questions and markers for a running daemon, over its
//! control socket (checked with `publish::trust` before a byte is sent).

use super::Common;
use crate::consent::control::{Request, Response};
use crate::model::ParticipantId;
use anyhow::{Context, bail};
use serde_json::Value;
use std::io::Write;

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune status\n  attune status --json | jq '.participants[].streams'"
)]
pub struct StatusArgs {
    /// Print the status as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `mark`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune mark --participant p01 stimulus_onset\n  attune mark --participant p01 question --data '{\"n\": 3}'"
)]
pub struct MarkArgs {
    /// The participant of the running session.
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// The marker's label (1–128 printable characters).
    pub label: String,
    /// Details as a JSON value, kept with the marker.
    #[arg(long, value_name = "JSON")]
    pub data: Option<String>,
}

/// Arguments of `override`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune override --participant p01 ease_off\n  attune override --participant p01 auto"
)]
pub struct OverrideArgs {
    /// The participant of the running session.
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// `ease_off`, `hold` or `escalate` pins the decision; `auto` hands it back to the policy.
    #[arg(value_parser = ["ease_off", "hold", "escalate", "auto"])]
    pub action: String,
}

/// Runs `override`: a researcher pins (or releases) a participant's decision. It reaches the
/// engine as an `override` marker, so it is in the session's log and recording like any marker,
/// and every decision shows it (rule `override`) until `auto`.
pub fn run_override(common: &Common, a: &OverrideArgs) -> anyhow::Result<()> {
    let req = Request::Mark {
        participant: a.participant.clone(),
        label: "override".into(),
        data: Some(serde_json::json!({ "action": a.action })),
    };
    match ask(common, &req)? {
        Response::Marked { participant, t } => {
            if !common.quiet {
                let what = if a.action == "auto" {
                    "decisions are automatic again".to_string()
                } else {
                    format!("decisions pinned to {}", a.action)
                };
                writeln!(std::io::stdout(), "{participant}: {what} from t = {t:.2} s")?;
            }
            Ok(())
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

pub(super) fn ask(common: &Common, req: &Request) -> anyhow::Result<Response> {
    let socket = common.socket_path();
    let control = crate::publish::server::control_socket_path(&socket);
    match super::control_client::via_daemon(&control, &common.data_dir(), req) {
        None => bail!(
            "no attune daemon is running on {} (start one with `attune run`)",
            socket.display()
        ),
        Some(r) => r,
    }
}

/// Runs `status`.
pub fn run_status(common: &Common, a: &StatusArgs) -> anyhow::Result<()> {
    let status = match ask(common, &Request::Status)? {
        Response::Status { status } => status,
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{status}")?;
        return Ok(());
    }
    write_text(&mut out, &status)?;
    Ok(())
}

fn num(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.digits$}"))
}

/// The status as aligned text.
fn write_text(out: &mut impl Write, s: &Value) -> std::io::Result<()> {
    let session = &s["session"];
    writeln!(
        out,
        "session t = {} s, {}, speed {}",
        num(&session["t"], 2),
        if session["live"].as_bool() == Some(true) {
            "live"
        } else {
            "replay"
        },
        num(&session["speed"], 2)
    )?;
    let stalls = &session["stalls"];
    if stalls["count"].as_u64().is_some_and(|n| n > 0) {
        // Ticks ran late because the process did not run: features may be missing there.
        writeln!(
            out,
            "host stalls: {} (longest {} s, {} s in all): the machine did not run attune in time",
            stalls["count"],
            num(&stalls["max_s"], 2),
            num(&stalls["total_s"], 2)
        )?;
    }
    writeln!(
        out,
        "{:<16} {:<6} {:<13} {:<18} {:>10} {:>9} {:>9}  drops",
        "participant", "stream", "state", "device", "offset s", "skew ppm", "latency s"
    )?;
    for p in s["participants"].as_array().into_iter().flatten() {
        let id = p["id"].as_str().unwrap_or("?");
        let streams = p["streams"].as_array().cloned().unwrap_or_default();
        if streams.is_empty() {
            writeln!(out, "{id:<16} (no stream yet)")?;
        }
        for st in streams {
            let drops: Vec<String> = st["drops"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(
                out,
                "{:<16} {:<6} {:<13} {:<18} {:>10} {:>9} {:>9}  {}",
                super::escape_controls(id),
                st["stream"].as_str().unwrap_or("?"),
                st["state"].as_str().unwrap_or("-"),
                super::escape_controls(st["device"].as_str().unwrap_or("-")),
                num(&st["clock"]["offset_s"], 3),
                num(&st["clock"]["skew_ppm"], 1),
                num(&st["clock"]["latency_s"], 3),
                if drops.is_empty() {
                    "-".to_owned()
                } else {
                    drops.join(", ")
                }
            )?;
        }
    }
    for p in s["publishers"].as_array().into_iter().flatten() {
        let name = p["name"].as_str().unwrap_or("?");
        let mut rest = p.clone();
        if let Some(o) = rest.as_object_mut() {
            o.remove("name");
        }
        writeln!(
            out,
            "publisher {name}: {}",
            super::escape_controls(&rest.to_string())
        )?;
    }
    Ok(())
}

/// Runs `mark`.
pub fn run_mark(common: &Common, a: &MarkArgs) -> anyhow::Result<()> {
    let data = a
        .data
        .as_deref()
        .map(serde_json::from_str::<Value>)
        .transpose()
        .context("--data is not JSON")?;
    let req = Request::Mark {
        participant: a.participant.clone(),
        label: a.label.clone(),
        data,
    };
    match ask(common, &req)? {
        Response::Marked { participant, t } => {
            if !common.quiet {
                writeln!(std::io::stdout(), "marked {participant} at t = {t:.2} s")?;
            }
            Ok(())
        }
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}
