//! A minimal protocol v1 client shared by `listen` and `demo`. It sends nothing to a socket
//! whose directory is not private and ours, or whose daemon runs as another uid
//! ([`trust`](crate::publish::trust)).

use crate::publish::trust;
use anyhow::Context;
use serde_json::json;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::OwnedReadHalf;

/// Connects, says hello and subscribes. Returns the line reader.
pub async fn subscribe(
    socket: &Path,
    client: &str,
    participant: &str,
    topics: &[String],
) -> anyhow::Result<Lines<BufReader<OwnedReadHalf>>> {
    // The directory and the daemon's uid are checked before a byte is sent (`trust`).
    let stream = match trust::connect_async(socket).await {
        Ok(s) => s,
        Err(e) if e.is_absent() => {
            return Err(e).with_context(|| {
                format!(
                    "no daemon is listening on {} (start one with `attune replay FILE`)",
                    socket.display()
                )
            });
        }
        Err(e) => return Err(e.into()),
    };
    let (r, mut w) = stream.into_split();
    let hello = json!({"type": "hello", "protocol": 1, "client": client});
    let sub = json!({"type": "subscribe", "participant": participant, "topics": topics});
    w.write_all(format!("{hello}\n{sub}\n").as_bytes())
        .await
        .context("cannot send to the daemon")?;
    // Keep the write half open for the lifetime of the process: closing it would look like a
    // client that left.
    std::mem::forget(w);
    Ok(BufReader::new(r).lines())
}
