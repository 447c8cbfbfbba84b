//! The client side of a daemon's control socket: one consent request per connection, one
//! JSON answer line, sent only to a daemon that passes the [`trust`] checks.

use crate::consent::control::{ControlLine, Request, Response};
use crate::publish::trust;
use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends `req` to a running daemon, if one answers at `control`: `None` when no daemon is
/// there (no socket directory, or nothing listening), so the caller may open the ledger itself.
///
/// Before a byte is sent, the socket's directory must be private and ours and the daemon must
/// run as our uid ([`trust`]); a refusal is an error, never a silent fallback, because the
/// real daemon may be running elsewhere while an impostor answers here.
pub fn via_daemon(
    control: &Path,
    data_dir: &Path,
    req: &Request,
) -> Option<anyhow::Result<Response>> {
    match trust::check_socket_dir(control) {
        Ok(()) => {}
        Err(e) if e.is_absent() => return None,
        Err(e) => return Some(Err(e.into())),
    }
    // Nothing listening (refused, or no socket file): no daemon.
    let mut s = UnixStream::connect(control).ok()?;
    if let Err(e) = trust::check_peer(&s, control) {
        return Some(Err(e.into()));
    }
    Some((|| {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let line = serde_json::to_string(&ControlLine {
            data_dir: std::path::absolute(data_dir)?,
            request: req.clone(),
        })?;
        s.write_all(format!("{line}\n").as_bytes())?;
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer)?;
        if answer.is_empty() {
            anyhow::bail!(
                "the daemon closed the control connection without answering (shutting down?); check with `attune consent history`"
            );
        }
        serde_json::from_str(&answer).context("the daemon's answer is not a consent response")
    })())
}
