//! The `[ws]` section and `--ws ADDR`: listening address, allowed hosts and origins, limits,
//! scope.

use super::DEFAULT_ADDR;
use crate::config::TransportSection;
use crate::publish::messages::Topic;
use crate::publish::transport::{Scope, section};

/// The WebSocket transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct WsSpec {
    /// The listening address (`HOST:PORT`; an IP address, or `localhost`).
    pub addr: String,
    /// Which participants and topics it carries (a client's `subscribe` chooses within it).
    pub scope: Scope,
    /// `Host` header values accepted besides the loopback names with the port (DNS rebinding:
    /// a page on a name that resolves to 127.0.0.1 sends its own name here).
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to connect (`scheme://host[:port]`); a request without `Origin`
    /// (a native client) is allowed. Empty by default: no web page may connect.
    pub allowed_origins: Vec<String>,
    /// Subscribed connections, at most.
    pub max_clients: usize,
    /// Serve the live page to requests that are not WebSocket handshakes (default true).
    pub page: bool,
}

impl Default for WsSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            scope: Scope::default(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_clients: 64,
            page: true,
        }
    }
}

impl std::str::FromStr for WsSpec {
    type Err = String;
    /// `HOST:PORT` (the command line's `--ws ADDR`).
    fn from_str(s: &str) -> Result<Self, String> {
        section::host_port(s, DEFAULT_ADDR)?;
        Ok(Self {
            addr: s.into(),
            ..Self::default()
        })
    }
}

/// The `[ws]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    addr: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    max_clients: Option<usize>,
    page: Option<bool>,
    participants: Option<Vec<String>>,
    topics: Option<Vec<Topic>>,
}

/// An origin as browsers send it: `scheme://host[:port]`, lower case, no path.
fn check_origin(o: &str) -> Result<String, String> {
    let lower = o.to_ascii_lowercase();
    let ok = ["http://", "https://"].iter().any(|s| {
        lower
            .strip_prefix(s)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/') && !rest.contains(' '))
    });
    if !ok || o == "*" {
        return Err(format!(
            "{o:?} is not an origin (scheme://host[:port], e.g. http://localhost:5173; no wildcard)"
        ));
    }
    Ok(lower)
}

/// The settings a `[ws]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<WsSpec>, String> {
    let at = |e: String| section::at(section, "ws", e);
    let raw: Raw = section::read(section, "ws")?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let mut s = match raw.addr {
        Some(a) => a.parse::<WsSpec>().map_err(|e| at(format!("addr: {e}")))?,
        None => WsSpec::default(),
    };
    if let Some(hs) = raw.allowed_hosts {
        for h in &hs {
            if h.is_empty() || h.contains(['/', ' ', '@']) {
                return Err(at(format!("allowed_hosts: {h:?} is not a host[:port]")));
            }
        }
        s.allowed_hosts = hs.iter().map(|h| h.to_ascii_lowercase()).collect();
    }
    if let Some(os) = raw.allowed_origins {
        s.allowed_origins = os
            .iter()
            .map(|o| check_origin(o))
            .collect::<Result<_, _>>()
            .map_err(|e| at(format!("allowed_origins: {e}")))?;
    }
    if let Some(m) = raw.max_clients {
        s.max_clients = section::within("max_clients", m, 1, 4096).map_err(at)?;
    }
    s.page = raw.page.unwrap_or(true);
    s.scope = section::scope(raw.participants, raw.topics).map_err(at)?;
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml: &str) -> TransportSection {
        section::for_test(toml)
    }

    #[test]
    fn a_section_reads_its_keys_and_refuses_wildcards_and_paths() {
        let s = from_section(&section(
            r#"addr = "127.0.0.1:9911"
allowed_hosts = ["Attune.Local:9911"]
allowed_origins = ["http://localhost:5173"]
max_clients = 8
page = false"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(s.addr, "127.0.0.1:9911");
        assert!(!s.page && WsSpec::default().page);
        assert_eq!(s.allowed_hosts, ["attune.local:9911"]);
        assert_eq!(s.allowed_origins, ["http://localhost:5173"]);
        for (bad, says) in [
            ("allowed_origins = [\"*\"]", "not an origin"),
            ("allowed_origins = [\"http://x/page\"]", "not an origin"),
            ("allowed_origins = [\"localhost:5173\"]", "not an origin"),
            ("max_clients = 0", "max_clients"),
            ("addr = \"8765\"", "HOST:PORT"),
            ("token = \"abc\"", "unknown field"),
        ] {
            let e = from_section(&section(bad)).unwrap_err();
            assert!(e.contains(says) && !e.contains('\n'), "{bad}: {e}");
        }
    }
}
