//! The client side of a daemon's control socket: one consent request per connection, one
//! JSON answer line.

use crate::consent::control::{ControlLine, Request, Response};
use anyhow::Context;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Sends `req` to a running daemon, if one answers at `control`.
pub fn via_daemon(
    control: &Path,
    data_dir: &Path,
    req: &Request,
) -> Option<anyhow::Result<Response>> {
    let mut s = UnixStream::connect(control).ok()?;
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
