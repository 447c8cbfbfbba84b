//! The `[mqtt]` section and `--mqtt [mqtts://]HOST:PORT`: broker, TLS, client id, credentials,
//! keepalive, topic prefix, scope.

use super::tls::TlsSpec;
use super::{DEFAULT_ADDR, Scope};
use crate::config::TransportSection;
use crate::publish::messages::Topic;
use crate::publish::transport::section;
use std::path::PathBuf;
use std::time::Duration;

/// The MQTT transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSpec {
    /// Broker (`HOST:PORT`).
    pub addr: String,
    /// TLS to the broker; `None`: plain TCP.
    pub tls: Option<TlsSpec>,
    /// Which participants and topics it carries.
    pub scope: Scope,
    /// The first topic level (default `attune`).
    pub prefix: String,
    /// The client id; `None`: `attune-<daemon-id>`.
    pub client_id: Option<String>,
    /// A user name for the broker.
    pub username: Option<String>,
    /// A file that holds the password (its first line), so that none is written in the config.
    pub password_file: Option<PathBuf>,
    /// The MQTT keepalive: a broker that hears nothing for 1.5 times this publishes the will.
    pub keep_alive: Duration,
    /// Queue bound, messages.
    pub queue: usize,
}

impl Default for MqttSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            tls: None,
            scope: Scope::default(),
            prefix: "attune".into(),
            client_id: None,
            username: None,
            password_file: None,
            keep_alive: Duration::from_secs(10),
            queue: 4096,
        }
    }
}

impl MqttSpec {
    /// The broker's host and port.
    pub fn host_port(&self) -> Result<(String, u16), String> {
        parse_addr(&self.addr)
    }
}

fn parse_addr(s: &str) -> Result<(String, u16), String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(['/', ' ', '@']) => {
            match port.parse::<u16>() {
                Ok(p) if p > 0 => {
                    let host = host.trim_start_matches('[').trim_end_matches(']');
                    Ok((host.to_owned(), p))
                }
                _ => Err(format!(
                    "expected HOST:PORT or mqtts://HOST:PORT (e.g. {DEFAULT_ADDR}), not {s:?}"
                )),
            }
        }
        _ => Err(format!(
            "expected HOST:PORT or mqtts://HOST:PORT (e.g. {DEFAULT_ADDR}), not {s:?}"
        )),
    }
}

impl std::str::FromStr for MqttSpec {
    type Err = String;
    /// `HOST:PORT`, `mqtt://HOST:PORT`, or `mqtts://HOST:PORT` for TLS with the system's roots
    /// (the command line's `--mqtt`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, tls) = match (s.strip_prefix("mqtts://"), s.strip_prefix("mqtt://")) {
            (Some(a), _) => (a, Some(TlsSpec::default())),
            (None, Some(a)) => (a, None),
            (None, None) => (s, None),
        };
        parse_addr(addr)?;
        Ok(Self {
            addr: addr.into(),
            tls,
            ..Self::default()
        })
    }
}

/// The `[mqtt]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    /// `HOST:PORT` (or `mqtts://HOST:PORT`).
    addr: Option<String>,
    /// TLS to the broker (default false, or true with an `mqtts://` address).
    tls: Option<bool>,
    ca_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_key_file: Option<PathBuf>,
    prefix: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
    keep_alive_s: Option<u64>,
    queue: Option<usize>,
    participants: Option<Vec<String>>,
    topics: Option<Vec<Topic>>,
}

/// A topic level: non-empty, no `/`, `+`, `#` or NUL (MQTT 3.1.1 §4.7).
pub fn check_level(what: &str, s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 || s.chars().any(|c| "/+#\0".contains(c) || c.is_control()) {
        return Err(format!(
            "{what} {s:?} is not one MQTT topic level (1 to 128 characters, no / + # or control characters)"
        ));
    }
    Ok(s.to_owned())
}

/// The settings a `[mqtt]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<MqttSpec>, String> {
    let at = |e: String| section::at(section, "mqtt", e);
    let raw: Raw = section::read(section, "mqtt")?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let plain_scheme = raw
        .addr
        .as_deref()
        .is_some_and(|a| a.starts_with("mqtt://"));
    let mut s = match raw.addr {
        Some(a) => a
            .parse::<MqttSpec>()
            .map_err(|e| at(format!("addr: {e}")))?,
        None => MqttSpec::default(),
    };
    if plain_scheme && raw.tls == Some(true) {
        return Err(at(
            "tls = true contradicts an mqtt:// address (use mqtts://)".into(),
        ));
    }
    let files = [&raw.ca_file, &raw.client_cert_file, &raw.client_key_file];
    match raw.tls {
        Some(true) => s.tls = Some(s.tls.take().unwrap_or_default()),
        Some(false) if s.tls.is_some() => {
            return Err(at("tls = false contradicts an mqtts:// address".into()));
        }
        Some(false) => {}
        None => {}
    }
    if files.iter().any(|f| f.is_some()) {
        let Some(t) = s.tls.as_mut() else {
            return Err(at(
                "ca_file, client_cert_file and client_key_file need tls = true (or an mqtts:// address)"
                    .into(),
            ));
        };
        t.ca_file = raw.ca_file;
        t.client_cert_file = raw.client_cert_file;
        t.client_key_file = raw.client_key_file;
        if t.client_cert_file.is_some() != t.client_key_file.is_some() {
            return Err(at("client_cert_file and client_key_file go together".into()));
        }
    }
    if let Some(p) = raw.prefix {
        s.prefix = check_level("prefix", &p).map_err(at)?;
    }
    if let Some(c) = raw.client_id {
        if c.is_empty() || c.len() > 65_535 {
            return Err(at("client_id must not be empty".into()));
        }
        s.client_id = Some(c);
    }
    s.username = raw.username;
    if let Some(f) = raw.password_file {
        if s.username.is_none() {
            return Err(at("password_file needs a username".into()));
        }
        s.password_file = Some(f);
    }
    if let Some(k) = raw.keep_alive_s {
        s.keep_alive =
            Duration::from_secs(section::within("keep_alive_s", k, 1, 3600).map_err(at)?);
    }
    if let Some(q) = raw.queue {
        s.queue = section::within("queue", q, 1, 1_000_000).map_err(at)?;
    }
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
    fn addresses_parse_and_bad_ones_say_what_is_expected() {
        let s: MqttSpec = "broker.lan:1884".parse().unwrap();
        assert_eq!(s.host_port().unwrap(), ("broker.lan".into(), 1884));
        let s: MqttSpec = "[::1]:1883".parse().unwrap();
        assert_eq!(s.host_port().unwrap(), ("::1".into(), 1883));
        for bad in [
            "broker",
            ":1883",
            "h:0",
            "h:99999",
            "h:x",
            "mqtts://",
            "tcp://h:1",
        ] {
            let e = bad.parse::<MqttSpec>().unwrap_err();
            assert!(e.contains("HOST:PORT"), "{bad}: {e}");
        }
        let s: MqttSpec = "mqtts://broker.lan:8883".parse().unwrap();
        assert_eq!(
            (s.addr.as_str(), s.tls),
            ("broker.lan:8883", Some(TlsSpec::default()))
        );
        let s: MqttSpec = "mqtt://broker.lan:1883".parse().unwrap();
        assert_eq!((s.addr.as_str(), s.tls), ("broker.lan:1883", None));
    }

    #[test]
    fn a_section_sets_every_key_and_refuses_nonsense_in_one_line() {
        let s = from_section(&section(
            r#"addr = "10.0.0.2:1883"
prefix = "lab"
client_id = "room-3"
username = "attune"
password_file = "/etc/attune/mqtt.pw"
keep_alive_s = 30
participants = ["p01"]
topics = ["adaptation"]"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(s.prefix, "lab");
        assert_eq!(s.client_id.as_deref(), Some("room-3"));
        assert_eq!(s.keep_alive, Duration::from_secs(30));
        assert_eq!(s.scope.topics, Some(vec![Topic::Adaptation]));
        assert!(s.tls.is_none());
        assert!(from_section(&section("enabled = false")).unwrap().is_none());
        let t = from_section(&section(
            "addr = \"broker:8883\"\ntls = true\nca_file = \"/etc/attune/ca.pem\"",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            t.tls.and_then(|t| t.ca_file),
            Some(PathBuf::from("/etc/attune/ca.pem"))
        );
        for (bad, says) in [
            ("prefix = \"a/b\"", "topic level"),
            ("prefix = \"#\"", "topic level"),
            ("password_file = \"x\"", "needs a username"),
            ("keep_alive_s = 0", "keep_alive_s"),
            ("qos = 2", "unknown field"),
            ("ca_file = \"ca.pem\"", "need tls = true"),
            ("tls = true\nclient_key_file = \"k.pem\"", "go together"),
            ("addr = \"mqtts://h:8883\"\ntls = false", "contradicts"),
            ("addr = \"mqtt://h:1883\"\ntls = true", "contradicts"),
        ] {
            let e = from_section(&section(bad)).unwrap_err();
            assert!(e.contains(says) && !e.contains('\n'), "{bad}: {e}");
            assert!(e.starts_with("attune.toml line 1: [mqtt]"), "{e}");
        }
    }
}
