//! `attune sessions`: the live sessions the recorder wrote (`store::recorder`): name,
//! participant, path, start (UTC), duration, streams, size, whether it was repaired after a
//! crash, and whether a running daemon is still recording it.
//!
//! Without a daemon, the data directory is opened (and so recovered: unfinished session files
//! are repaired) for the length of the listing; while a daemon holds it, nothing is repaired
//! and a file without its `end` record is shown as `recording`. Each file is read from its
//! header and its tail only, however long the session.

use super::Common;
use super::consent::now_ms;
use crate::model::ParticipantId;
use crate::store::datadir::{DataDir, DataDirError, LOCK_WAIT, Role};
use crate::store::recorder::{SessionEntry, list_sessions};
use anyhow::Context;

/// Arguments of `sessions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  attune sessions\n  attune sessions --participant p01 --json")]
pub struct SessionsArgs {
    /// Only this participant's sessions.
    #[arg(long, value_name = "ID")]
    pub participant: Option<ParticipantId>,
    /// One JSON array (keys: id, participant, path, start, duration_s, streams, bytes,
    /// recovered, open).
    #[arg(long)]
    pub json: bool,
}

/// Runs `sessions`.
pub fn run(common: &Common, a: &SessionsArgs) -> anyhow::Result<()> {
    let data_dir = common.data_dir();
    let (held, daemon) = match DataDir::open_waiting(&data_dir, Role::Command, now_ms(), LOCK_WAIT)
    {
        Ok(dd) => (Some(dd), false),
        Err(DataDirError::Busy {
            holder: Some(h), ..
        }) if h.role == Role::Daemon => (None, true),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot list sessions in {}", data_dir.display()));
        }
    };
    let list = list_sessions(&data_dir, a.participant.as_ref(), daemon)
        .with_context(|| format!("cannot list sessions in {}", data_dir.display()))?;
    drop(held);
    if a.json {
        let rows: Vec<serde_json::Value> = list.iter().map(json_row).collect();
        say!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if list.is_empty() {
        say!("no recorded sessions in {}", data_dir.display());
        return Ok(());
    }
    let rows: Vec<[String; 8]> = list.iter().map(text_row).collect();
    let head = [
        "SESSION",
        "PARTICIPANT",
        "START (UTC)",
        "DURATION",
        "STREAMS",
        "BYTES",
        "STATE",
        "PATH",
    ];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    say!("{}", line(&head.map(str::to_owned)));
    for r in &rows {
        say!("{}", line(r));
    }
    Ok(())
}

fn start(e: &SessionEntry) -> Option<String> {
    let ms = e.started_unix_ms?;
    let t = jiff::Timestamp::from_millisecond(ms).ok()?;
    Some(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn state(e: &SessionEntry) -> String {
    match (&e.problem, e.open, e.recovered) {
        (Some(p), _, _) => format!("unreadable: {p}"),
        (None, true, _) => "recording".into(),
        (None, false, true) => "recovered".into(),
        (None, false, false) => "complete".into(),
    }
}

fn text_row(e: &SessionEntry) -> [String; 8] {
    [
        e.id.clone(),
        e.participant.clone(),
        start(e).unwrap_or_else(|| "-".into()),
        e.duration_s
            .map_or_else(|| "-".into(), |d| format!("{d:.1} s")),
        if e.streams.is_empty() {
            "-".into()
        } else {
            e.streams.join(",")
        },
        e.bytes.to_string(),
        state(e),
        e.path.display().to_string(),
    ]
}

fn json_row(e: &SessionEntry) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "participant": e.participant,
        "path": e.path.display().to_string(),
        "start": start(e),
        "duration_s": e.duration_s,
        "streams": e.streams,
        "bytes": e.bytes,
        "recovered": e.recovered,
        "open": e.open,
        "problem": e.problem,
    })
}
