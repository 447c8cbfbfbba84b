//! WebSocket server for protocol v1 (edge). The same hello/subscribe protocol and JSON lines as the Unix socket, over WebSocket.
//!
//! Not built yet: [`start`] refuses with one line.

use super::{Context, Scope};
use crate::config::TransportSection;
use crate::publish::Publisher;

/// The default the listening address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8765";

/// The WebSocket transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WsSpec {
    /// The listening address (`HOST:PORT`).
    pub addr: String,
    /// Which participants and topics it carries.
    pub scope: Scope,
}

impl Default for WsSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            scope: Scope::default(),
        }
    }
}

impl std::str::FromStr for WsSpec {
    type Err = String;
    /// `HOST:PORT` (the command line's `--ws HOST:PORT`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Self {
                    addr: s.into(),
                    ..Self::default()
                })
            }
            _ => Err(format!(
                "expected HOST:PORT (e.g. 127.0.0.1:8765), not {s:?}"
            )),
        }
    }
}

/// The `[ws]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    /// `HOST:PORT`.
    addr: Option<String>,
}

/// The settings a `[ws]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<WsSpec>, String> {
    let raw: Raw = section
        .table
        .clone()
        .try_into()
        .map_err(|e| format!("{}: [ws]: {e}", section.at))?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    match raw.addr {
        Some(a) => a
            .parse()
            .map(Some)
            .map_err(|e| format!("{}: [ws] addr: {e}", section.at)),
        None => Ok(Some(WsSpec::default())),
    }
}

/// Starts the WebSocket transport.
pub async fn start(spec: WsSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let _ = (spec, ctx);
    Err("this transport is not built yet".into())
}
