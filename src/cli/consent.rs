//! `attune consent grant|revoke|show|history|verify`: the consent ledger from the command line.
//!
//! With a daemon running, the command goes to its control socket (`control.sock` next to the
//! subscriber socket) and the daemon carries it out; otherwise the command opens the data
//! directory itself (`store::datadir::DataDir`: lock, recovery, ledger) and carries it out the
//! same way, erasure included. The output is the same either way.
//!
//! While another command holds the data directory, a command waits for it (polling, up to
//! [`LOCK_WAIT`]) and retries the control socket meanwhile; only then does it give up, saying
//! what holds it. A daemon that answers on another control socket is named at once.

use super::Common;
use crate::consent::control::{Request, Response, action_name};
use crate::consent::ledger::check_text;
use crate::consent::{AllStreams, Purpose, StreamSelector};
use crate::model::ParticipantId;
use crate::store::datadir::{DataDir, DataDirError, LOCK_WAIT, Role, poll_interval};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConsentCommand {
    /// Give consent.
    #[command(
        after_help = "Example:\n  attune consent grant --participant p01 --stream all --purpose process,adapt --by researcher1"
    )]
    Grant(GrantArgs),
    /// Withdraw consent (takes effect from the next chunk in a running daemon).
    #[command(
        after_help = "Example:\n  attune consent revoke --participant p01 --stream eda --purpose process"
    )]
    Revoke(RevokeArgs),
    /// Current consent of a participant.
    #[command(after_help = "Example:\n  attune consent show --participant p01 --json")]
    Show(WhoArgs),
    /// Every consent event of a participant.
    #[command(after_help = "Example:\n  attune consent history --participant p01")]
    History(WhoArgs),
    /// Check the ledger's hash chain.
    #[command(after_help = "Example:\n  attune consent verify")]
    Verify(JsonArg),
}

/// Selectors shared by grant and revoke.
#[derive(Debug, clap::Args)]
pub struct Selectors {
    /// Participant id (pseudonymous, e.g. p01).
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// Stream kinds, comma-separated: eda, ecg, ppg, hr, rr, or all.
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_stream)]
    pub stream: Vec<StreamSelector>,
    /// Purposes, comma-separated: process, adapt, share_features, share_raw, record, profile.
    #[arg(long, value_delimiter = ',', required = true, value_parser = parse_purpose)]
    pub purpose: Vec<Purpose>,
    /// Who records this (researcher id, kiosk).
    #[arg(long, value_name = "ACTOR", default_value = "cli", value_parser = short_text)]
    pub by: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `grant`.
#[derive(Debug, clap::Args)]
pub struct GrantArgs {
    /// Who, which streams, which purposes.
    #[command(flatten)]
    pub sel: Selectors,
    /// Until when: a date (valid through that day, UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE")]
    pub expires: Option<String>,
    /// Version of the consent text the participant agreed to.
    #[arg(long, value_name = "V", value_parser = short_text)]
    pub text_version: Option<String>,
}

/// `revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Who, which streams, which purposes.
    #[command(flatten)]
    pub sel: Selectors,
}

/// `show`, `history`.
#[derive(Debug, clap::Args)]
pub struct WhoArgs {
    /// Participant id.
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `verify`.
#[derive(Debug, clap::Args)]
pub struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// An actor or consent-text version: 1-200 printable characters (`consent::ledger::check_text`).
pub fn short_text(s: &str) -> Result<String, String> {
    check_text(s).map_err(str::to_owned)?;
    Ok(s.to_owned())
}

fn parse_stream(s: &str) -> Result<StreamSelector, String> {
    if s == "all" {
        return Ok(StreamSelector::All(AllStreams::All));
    }
    s.parse()
        .map(StreamSelector::Kind)
        .map_err(|e| format!("{e} or all"))
}

fn parse_purpose(s: &str) -> Result<Purpose, String> {
    s.parse()
        .map_err(|e: crate::consent::UnknownPurpose| e.to_string())
}

/// Parses `--expires`: `YYYY-MM-DD` means through the end of that day (UTC); otherwise an
/// RFC 3339 time. Returns unix ms.
pub fn parse_expiry(s: &str) -> anyhow::Result<i64> {
    // A bare date first (exactly YYYY-MM-DD): through the end of that day, UTC.
    if s.len() == 10
        && let Ok(d) = s.parse::<jiff::civil::Date>()
    {
        let end = d
            .tomorrow()
            .and_then(|t| t.to_zoned(jiff::tz::TimeZone::UTC))
            .with_context(|| format!("--expires {s}: not a usable date"))?;
        return Ok(end.timestamp().as_millisecond());
    }
    // Otherwise an instant: RFC 3339 with `Z` or a numeric offset; a time without one is
    // ambiguous and refused.
    let t: jiff::Timestamp = s.parse().map_err(|_| {
        anyhow::anyhow!(
            "--expires {s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time with Z or an offset (2027-01-31T17:00:00Z)"
        )
    })?;
    Ok(t.as_millisecond())
}

/// Now, unix ms.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Carries out a request: through a running daemon's control socket, or on the data directory
/// directly when no daemon answers.
pub fn execute(common: &Common, req: Request, now: i64) -> anyhow::Result<Response> {
    execute_keep(common, req, now).map(|(r, _)| r)
}

/// Like [`execute`], but when the command opened the data directory itself, it stays open (and
/// locked) in the returned [`DataDir`] so that the caller can go on working in it.
pub fn execute_keep(
    common: &Common,
    req: Request,
    now: i64,
) -> anyhow::Result<(Response, Option<DataDir>)> {
    let control = crate::publish::server::control_socket_path(&common.socket_path());
    let data_dir = common.data_dir();
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        if let Some(r) = super::control_client::via_daemon(&control, &data_dir, &req) {
            return Ok((r?, None));
        }
        let timed_out = Instant::now() >= deadline;
        match DataDir::open(&data_dir, Role::Command, now) {
            Ok(mut dd) => {
                let resp = dd.execute(req, now, &[]);
                return Ok((resp, Some(dd)));
            }
            Err(DataDirError::Busy { holder, .. }) => {
                if let Some(h) = &holder
                    && h.role == Role::Daemon
                    && let Some(theirs) = &h.control
                    && !same_path(theirs, &control)
                {
                    bail!(
                        "the data directory {} is held by a running daemon, {h}, whose control socket is {}, not {}; pass --socket {}",
                        data_dir.display(),
                        theirs.display(),
                        control.display(),
                        h.socket.as_deref().unwrap_or(theirs).display()
                    );
                }
                if timed_out {
                    match holder {
                        Some(h) if h.role == Role::Daemon => bail!(
                            "the data directory {} is held by a running daemon, {h}, but its control socket {} did not answer within {} s",
                            data_dir.display(),
                            control.display(),
                            LOCK_WAIT.as_secs()
                        ),
                        Some(h) => bail!(
                            "the data directory {} has been held by {h} for more than {} s; try again when it has finished",
                            data_dir.display(),
                            LOCK_WAIT.as_secs()
                        ),
                        None => bail!(
                            "the data directory {} has been locked by another process for more than {} s ({} names no holder); no daemon answers on {}",
                            data_dir.display(),
                            LOCK_WAIT.as_secs(),
                            data_dir.join(crate::store::datadir::LOCK_FILE).display(),
                            control.display()
                        ),
                    }
                }
            }
            Err(e @ DataDirError::LedgerLocked { .. }) => {
                if timed_out {
                    return Err(e).context(format!("waited {} s", LOCK_WAIT.as_secs()));
                }
            }
            Err(e) => return Err(e.into()),
        }
        std::thread::sleep(poll_interval());
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    std::path::absolute(a).ok() == std::path::absolute(b).ok()
}

/// Runs `consent`.
pub fn run(common: &Common, cmd: &ConsentCommand) -> anyhow::Result<()> {
    let now = now_ms();
    let (req, json) = match cmd {
        ConsentCommand::Grant(a) => (
            Request::Grant {
                participant: a.sel.participant.clone(),
                streams: a.sel.stream.clone(),
                purposes: a.sel.purpose.clone(),
                expires_ms: a.expires.as_deref().map(parse_expiry).transpose()?,
                text_version: a.text_version.clone(),
                by: a.sel.by.clone(),
            },
            a.sel.json,
        ),
        ConsentCommand::Revoke(a) => (
            Request::Revoke {
                participant: a.sel.participant.clone(),
                streams: a.sel.stream.clone(),
                purposes: a.sel.purpose.clone(),
                by: a.sel.by.clone(),
            },
            a.sel.json,
        ),
        ConsentCommand::Show(a) => (
            Request::Show {
                participant: a.participant.clone(),
            },
            a.json,
        ),
        ConsentCommand::History(a) => (
            Request::History {
                participant: a.participant.clone(),
            },
            a.json,
        ),
        ConsentCommand::Verify(a) => (Request::Verify, a.json),
    };
    let resp = execute(common, req, now)?;
    print(&resp, json, now)
}

/// Prints a response (or fails with its error message).
pub fn print(resp: &Response, json: bool, now: i64) -> anyhow::Result<()> {
    if let Response::Error { message } = resp {
        bail!("{message}");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(resp)?)?;
        return Ok(());
    }
    match resp {
        Response::Status { status } => writeln!(out, "{status}")?,
        Response::Marked { participant, t } => {
            writeln!(out, "marked {participant} at t = {t:.2} s")?;
        }
        Response::Appended {
            events,
            epoch,
            erased,
        } => {
            for e in events {
                writeln!(
                    out,
                    "{} {} {} for {} (event {}, by {})",
                    action_name(e.action),
                    e.participant,
                    e.purpose,
                    selector(e.stream),
                    e.seq,
                    e.by
                )?;
            }
            if let Some(x) = erased {
                writeln!(
                    out,
                    "erased {} of {}: {} files, {} bytes removed",
                    x.parts.join(", "),
                    x.participant,
                    x.files_removed,
                    x.bytes_removed
                )?;
            }
            writeln!(out, "ledger epoch {epoch}; flushed to disk")?;
        }
        Response::Forgotten {
            erasure, receipt, ..
        } => {
            if erasure.files_removed == 0 {
                writeln!(
                    out,
                    "{} had no stored data; consent revoked; erasure receipt is ledger event {}",
                    erasure.participant, receipt.seq
                )?;
            } else {
                writeln!(
                    out,
                    "forgot {}: {} files, {} bytes removed; erasure receipt is ledger event {}",
                    erasure.participant, erasure.files_removed, erasure.bytes_removed, receipt.seq
                )?;
            }
        }
        Response::Consent {
            participant,
            lines,
            epoch,
        } => {
            writeln!(
                out,
                "participant {participant} (ledger epoch {epoch}, {})",
                iso(now)
            )?;
            for l in lines {
                let until = l
                    .expires_ms
                    .map(|x| format!(" until {}", iso(x)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  {:<4} {:<15} {}{until}",
                    l.stream,
                    l.purpose.name(),
                    l.status
                )?;
            }
        }
        Response::History { events } => {
            for e in events {
                let exp = e
                    .expires_ms
                    .map(|x| format!(", until {}", iso(x)))
                    .unwrap_or_default();
                let tv = e
                    .text_version
                    .as_deref()
                    .map(|v| format!(", text {v}"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "#{} {} {} {} for {} by {}{exp}{tv}",
                    e.seq,
                    iso(e.at_ms),
                    action_name(e.action),
                    e.purpose,
                    selector(e.stream),
                    e.by
                )?;
            }
        }
        Response::Verified { events } => {
            writeln!(out, "ledger verified: {events} events, hash chain intact")?
        }
        Response::Error { .. } => {}
    }
    Ok(())
}

fn selector(s: StreamSelector) -> &'static str {
    match s {
        StreamSelector::All(_) => "all streams",
        StreamSelector::Kind(k) => k.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_expiry;

    #[test]
    fn expiry_dates_and_times() {
        // A date means through that day (UTC).
        assert_eq!(parse_expiry("2027-01-31").unwrap(), 1_801_440_000_000);
        // Offsets are honoured, not dropped.
        assert_eq!(
            parse_expiry("2027-06-01T12:00:00+02:00").unwrap(),
            parse_expiry("2027-06-01T10:00:00Z").unwrap()
        );
        assert!(
            parse_expiry("2027-06-01T12:00:00").is_err(),
            "no offset: ambiguous"
        );
        assert!(parse_expiry("2027-02-30").is_err());
        assert!(parse_expiry("tomorrow").is_err());
    }
}
