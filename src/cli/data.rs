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
//! `import` restores the data from an export, whole or not at all, and only with the data
//! directory itself held (no daemon running: it is refused with "stop the daemon, then import"),
//! so that no revocation can be acknowledged between its consent check and the rename of the
//! new store into place. The export is read once (`store::export::VerifiedExport`); what it
//! stores needs the consent `store::export` lists under "Consent an import needs" (`record` for
//! every stream kind the recordings and feature rows hold, `profile` for all streams for profile
//! entries, `process` for feedback), granted in the ledger now; otherwise the import is refused
//! in one line naming what is not covered. The consent history in an export is not replayed
//! into the ledger: the ledger keeps its own record, including the erasure receipt.

use super::Common;
use super::consent::{execute_keep, now_ms, print, short_text};
use crate::consent::control::{Request, Response};
use crate::model::{ALL_KINDS, ParticipantId, StreamKind};
use crate::store::datadir::{DataDir, DataDirError, LOCK_WAIT, Role};
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
#[command(
    long_about = "Restores a participant's data from a directory written by `attune export`.\n\nThe export is stored whole or not at all, and only under consent the ledger grants now: recordings and feature rows need `record` for every stream kind they hold, profile entries need `profile` for all streams, feedback needs `process` for a stream. What is not covered is named and nothing is imported. The consent history in the export is not replayed. No daemon may hold the data directory: stop it, then import.",
    after_help = "Example:\n  attune consent grant --participant p01 --stream all --purpose record,profile\n  attune import /media/usb/p01-export"
)]
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
    say!(
        "exported {p} to {}: {} consent events, {} recordings, {} feature rows, {} profile entries, {} feedback entries",
        s.dir.display(),
        c.consent_events,
        c.recordings,
        c.feature_rows,
        c.profile_entries,
        c.feedback_entries
    );
    say!("the export is not encrypted: keep it as carefully as the data directory");
    Ok(())
}

/// Runs `import` (module doc): reads and verifies the export once, then, holding the data
/// directory itself (no daemon may run: a revocation acknowledged while the import runs could
/// not otherwise erase what it stores), checks that the ledger grants every consent the export's
/// parts need and stores them, or refuses and stores nothing.
pub fn run_import(common: &Common, a: &ImportArgs) -> anyhow::Result<()> {
    let export = export::VerifiedExport::read(&a.dir)
        .with_context(|| format!("cannot import {}", a.dir.display()))?;
    let p = export.participant().clone();
    let now = now_ms();
    let dd = open_held(common, now, "import")?;
    if let Some(why) = dd.stuck() {
        bail!("{why}; nothing was imported");
    }
    let state = dd.state();
    let mut missing = Vec::new();
    let mut grants = Vec::new();
    for need in export.needs() {
        let lacking: Vec<StreamKind> = need
            .kinds
            .iter()
            .copied()
            .filter(|k| !state.allows(&p, *k, need.purpose, now))
            .collect();
        let ok = if need.any {
            lacking.len() < need.kinds.len()
        } else {
            lacking.is_empty()
        };
        if ok {
            continue;
        }
        let streams = if need.any || lacking.len() == ALL_KINDS.len() {
            "all".to_owned()
        } else {
            lacking
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let scope = if need.any {
            "any stream".to_owned()
        } else if streams == "all" {
            "all streams".to_owned()
        } else {
            streams.clone()
        };
        missing.push(format!(
            "no live `{}` consent for {scope} (needed by its {})",
            need.purpose, need.what
        ));
        grants.push(format!(
            "attune consent grant --participant {p} --stream {streams} --purpose {}",
            need.purpose
        ));
    }
    if !missing.is_empty() {
        bail!(
            "{p} has {}; nothing was imported; grant it first ({})",
            missing.join(" and "),
            grants.join("; ")
        );
    }
    let s = export
        .store(dd.path())
        .with_context(|| format!("cannot import {}", a.dir.display()))?;
    drop(dd);
    let c = &s.counts;
    say!(
        "imported {}: {} recordings, {} feature rows, {} profile entries, {} feedback entries",
        s.participant,
        c.recordings,
        c.feature_rows,
        c.profile_entries,
        c.feedback_entries
    );
    if !s.consent_history.is_empty() {
        say!(
            "its {} consent events were not replayed into the ledger; record consent again with `attune consent grant`",
            s.consent_history.len()
        );
    }
    Ok(())
}

/// Opens the data directory itself for `verb` (`import`, `calibrate`), waiting up to
/// [`LOCK_WAIT`] for another command; a running daemon is refused at once.
pub(super) fn open_held(common: &Common, now: i64, verb: &str) -> anyhow::Result<DataDir> {
    let data_dir = common.data_dir();
    match DataDir::open_waiting(&data_dir, Role::Command, now, LOCK_WAIT) {
        Ok(dd) => Ok(dd),
        Err(DataDirError::Busy {
            holder: Some(h), ..
        }) if h.role == Role::Daemon => {
            let control = h.control.clone().unwrap_or_else(|| {
                crate::publish::server::control_socket_path(&common.socket_path())
            });
            bail!(
                "the data directory {} is held by a running daemon, {h}, listening on {}; stop the daemon, then {verb}",
                data_dir.display(),
                control.display()
            )
        }
        Err(DataDirError::Busy { holder, .. }) => bail!(
            "the data directory {} has been held by {} for more than {} s; try again when it has finished (a running daemon must be stopped before you {verb})",
            data_dir.display(),
            holder.map_or_else(|| "another process".to_owned(), |h| h.to_string()),
            LOCK_WAIT.as_secs()
        ),
        Err(e) => Err(e.into()),
    }
}
