//! `attune forget`, `attune export`, `attune import`: erasure and portability of one
//! participant's data (issue 4; GDPR Art. 17 and 20).
//!
//! `forget` is one request to whoever owns the data directory (a running daemon, or
//! `store::datadir::DataDir` opened by the command): the `forget_requested` intent (which
//! revokes everything), the deletion of the participant's store directory whole (sled does not
//! erase deleted keys), then the `erased` receipt; a crash in between is finished by the next
//! command or daemon start. `export` and `import` run with the data directory locked (and
//! recovered) when no daemon runs.
//! `export` writes the documented layout of `store::export` (consent history included);
//! `import` restores the data from an export. The consent history in an export is not replayed
//! into the ledger: the ledger keeps its own record, including the erasure receipt.

use super::Common;
use super::consent::{execute_keep, now_ms, print, short_text};
use crate::consent::control::{Request, Response};
use crate::model::ParticipantId;
use crate::store::export;
use anyhow::{Context, bail};
use std::path::PathBuf;

/// Arguments of `forget`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  attune forget --participant p01 --by researcher1")]
pub struct ForgetArgs {
    /// Participant id.
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// Who asked for the erasure (kept in the receipt).
    #[arg(long, value_name = "ACTOR", default_value = "cli", value_parser = short_text)]
    pub by: String,
}

/// Arguments of `export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  attune export --participant p01 --out /media/usb/p01-export")]
pub struct ExportArgs {
    /// Participant id.
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// Output directory (must not exist; not inside the data directory) [default: ./attune-export-ID].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  attune import /media/usb/p01-export")]
pub struct ImportArgs {
    /// A directory written by `attune export`.
    pub dir: PathBuf,
}

/// Runs `forget`.
pub fn run_forget(common: &Common, a: &ForgetArgs) -> anyhow::Result<()> {
    let now = now_ms();
    let req = Request::Forget {
        participant: a.participant.clone(),
        by: a.by.clone(),
    };
    let (resp, _dir) = execute_keep(common, req, now)?;
    print(&resp, false, now)
}

/// Runs `export`.
pub fn run_export(common: &Common, a: &ExportArgs) -> anyhow::Result<()> {
    let data_dir = common.data_dir();
    let p = &a.participant;
    // Without a daemon, `_dir` keeps the data directory locked (and recovered) while exporting.
    let (history, _dir) = execute_keep(
        common,
        Request::History {
            participant: p.clone(),
        },
        now_ms(),
    )?;
    let history = match history {
        Response::History { events } => events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?,
        _ => Vec::new(),
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("attune-export-{p}")));
    let s = export::export(&data_dir, p, &history, &out)
        .with_context(|| format!("cannot export {p} to {}", out.display()))?;
    let c = &s.counts;
    println!(
        "exported {p} to {}: {} consent events, {} recordings, {} feature rows, {} profile entries, {} feedback entries",
        s.dir.display(),
        c.consent_events,
        c.recordings,
        c.feature_rows,
        c.profile_entries,
        c.feedback_entries
    );
    println!("the export is not encrypted: keep it as carefully as the data directory");
    Ok(())
}

/// Runs `import`. Data is stored again only under a live `record` consent in the ledger:
/// importing after `forget` needs the participant to consent again first.
pub fn run_import(common: &Common, a: &ImportArgs) -> anyhow::Result<()> {
    let data_dir = common.data_dir();
    let manifest = a.dir.join("manifest.json");
    let participant: ParticipantId = std::fs::read(&manifest)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["participant"].as_str().and_then(|p| p.parse().ok()))
        .with_context(|| {
            format!(
                "{} is not an attune export (no readable manifest)",
                a.dir.display()
            )
        })?;
    let (shown, _dir) = execute_keep(
        common,
        Request::Show {
            participant: participant.clone(),
        },
        now_ms(),
    )?;
    let recordable = match shown {
        Response::Consent { lines, .. } => lines
            .iter()
            .any(|l| l.purpose == crate::consent::Purpose::Record && l.status == "granted"),
        _ => false,
    };
    if !recordable {
        bail!(
            "{participant} has no live `record` consent in the ledger; grant it first (attune consent grant --participant {participant} --stream all --purpose record)"
        );
    }
    let s = export::import(&data_dir, &a.dir)
        .with_context(|| format!("cannot import {}", a.dir.display()))?;
    let c = &s.counts;
    println!(
        "imported {}: {} recordings, {} feature rows, {} profile entries, {} feedback entries",
        s.participant, c.recordings, c.feature_rows, c.profile_entries, c.feedback_entries
    );
    if !s.consent_history.is_empty() {
        println!(
            "its {} consent events were not replayed into the ledger; record consent again with `attune consent grant`",
            s.consent_history.len()
        );
    }
    Ok(())
}
