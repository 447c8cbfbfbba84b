//! MQTT client (edge). Topics `attune/<daemon-id>/<participant>/{decision,features,state}` and a retained status.
//!
//! Not built yet: [`start`] refuses with one line.

use super::{Context, Scope};
use crate::config::TransportSection;
use crate::publish::Publisher;

/// The default broker.
pub const DEFAULT_ADDR: &str = "127.0.0.1:1883";

/// The MQTT transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSpec {
    /// Broker (`HOST:PORT`).
    pub addr: String,
    /// Which participants and topics it carries.
    pub scope: Scope,
}

impl Default for MqttSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            scope: Scope::default(),
        }
    }
}

impl std::str::FromStr for MqttSpec {
    type Err = String;
    /// `HOST:PORT` (the command line's `--mqtt HOST:PORT`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
                Ok(Self {
                    addr: s.into(),
                    ..Self::default()
                })
            }
            _ => Err(format!(
                "expected HOST:PORT (e.g. 127.0.0.1:1883), not {s:?}"
            )),
        }
    }
}

/// The `[mqtt]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    /// `HOST:PORT`.
    addr: Option<String>,
}

/// The settings a `[mqtt]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<MqttSpec>, String> {
    let raw: Raw = section
        .table
        .clone()
        .try_into()
        .map_err(|e| format!("{}: [mqtt]: {e}", section.at))?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    match raw.addr {
        Some(a) => a
            .parse()
            .map(Some)
            .map_err(|e| format!("{}: [mqtt] addr: {e}", section.at)),
        None => Ok(Some(MqttSpec::default())),
    }
}

/// Starts the MQTT transport.
pub async fn start(spec: MqttSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let _ = (spec, ctx);
    Err("this transport is not built yet".into())
}
