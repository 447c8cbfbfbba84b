//! OSC over UDP (edge). VRChat heart-rate parameters and attune's own `/attune/<participant>/...` addresses.
//!
//! Not built yet: [`start`] refuses with one line.

use super::{Context, Scope};
use crate::config::TransportSection;
use crate::publish::Publisher;

/// The default OSC target.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9000";

/// The OSC transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OscSpec {
    /// OSC target (`HOST:PORT`).
    pub addr: String,
    /// Which participants and topics it carries.
    pub scope: Scope,
}

impl Default for OscSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            scope: Scope::default(),
        }
    }
}

impl std::str::FromStr for OscSpec {
    type Err = String;
    /// `HOST:PORT` (the command line's `--osc HOST:PORT`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Self {
                    addr: s.into(),
                    ..Self::default()
                })
            }
            _ => Err(format!(
                "expected HOST:PORT (e.g. 127.0.0.1:9000), not {s:?}"
            )),
        }
    }
}

/// The `[osc]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    /// `HOST:PORT`.
    addr: Option<String>,
}

/// The settings a `[osc]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<OscSpec>, String> {
    let raw: Raw = section
        .table
        .clone()
        .try_into()
        .map_err(|e| format!("{}: [osc]: {e}", section.at))?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    match raw.addr {
        Some(a) => a
            .parse()
            .map(Some)
            .map_err(|e| format!("{}: [osc] addr: {e}", section.at)),
        None => Ok(Some(OscSpec::default())),
    }
}

/// Starts the OSC transport.
pub async fn start(spec: OscSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let _ = (spec, ctx);
    Err("this transport is not built yet".into())
}
