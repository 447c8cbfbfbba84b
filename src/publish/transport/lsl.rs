//! Lab Streaming Layer outlet (edge). ECG, EDA (`GSR`), RR and a `Markers` stream for LabRecorder.
//!
//! Not built yet: [`start`] refuses with one line.

use super::{Context, Scope};
use crate::config::TransportSection;
use crate::publish::Publisher;

/// The default address (unused: LSL discovers outlets by multicast).
pub const DEFAULT_ADDR: &str = "0.0.0.0:16571";

/// The LSL transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LslSpec {
    /// Address (unused: LSL discovers outlets by multicast) (`HOST:PORT`).
    pub addr: String,
    /// Which participants and topics it carries.
    pub scope: Scope,
}

impl Default for LslSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            scope: Scope::default(),
        }
    }
}

impl std::str::FromStr for LslSpec {
    type Err = String;
    /// `HOST:PORT` (the command line's `--lsl HOST:PORT`).
    fn from_str(s: &str) -> Result<Self, String> {
        super::section::host_port(s, "0.0.0.0:16571")?;
        Ok(Self {
            addr: s.into(),
            ..Self::default()
        })
    }
}

/// The `[lsl]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    /// `HOST:PORT`.
    addr: Option<String>,
}

/// The settings a `[lsl]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<LslSpec>, String> {
    let raw: Raw = section
        .table
        .clone()
        .try_into()
        .map_err(|e| format!("{}: [lsl]: {e}", section.at))?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    match raw.addr {
        Some(a) => a
            .parse()
            .map(Some)
            .map_err(|e| format!("{}: [lsl] addr: {e}", section.at)),
        None => Ok(Some(LslSpec::default())),
    }
}

/// Starts the LSL transport.
pub async fn start(spec: LslSpec, ctx: &Context) -> Result<Box<dyn Publisher>, String> {
    let _ = (spec, ctx);
    Err("this transport is not built yet".into())
}
