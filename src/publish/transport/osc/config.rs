//! The `[osc]` section and `--osc HOST:PORT`: target, avatar parameter names, scope.

use super::{DEFAULT_ADDR, Scope};
use crate::config::TransportSection;
use crate::model::ParticipantId;
use crate::publish::messages::Topic;
use crate::publish::transport::section;

/// The OSC transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OscSpec {
    /// The OSC target (`HOST:PORT`).
    pub addr: String,
    /// Which participants and topics it carries (topics gate attune's own addresses).
    pub scope: Scope,
    /// The avatar parameters' prefix.
    pub prefix: String,
    /// Names of the avatar parameters: HR, floatHR, isHRConnected, HeartBeatToggle, RRInterval.
    pub names: AvatarNames,
    /// The prefix of attune's own addresses.
    pub attune_prefix: String,
    /// Who drives the avatar; `None`: the first participant with heart data.
    pub avatar_participant: Option<ParticipantId>,
    /// Without a heart value for this long, `isHRConnected` is false, s.
    pub hr_timeout_s: f64,
    /// Queue bound, messages.
    pub queue: usize,
}

/// The avatar parameters' names.
#[derive(Debug, Clone, PartialEq)]
pub struct AvatarNames {
    /// Heart rate, int.
    pub hr: String,
    /// Heart rate onto −1..1, float.
    pub float_hr: String,
    /// Connected, bool.
    pub connected: String,
    /// Flips on each beat, bool.
    pub beat_toggle: String,
    /// RR interval, int ms.
    pub rr_interval: String,
}

impl Default for OscSpec {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.into(),
            scope: Scope::default(),
            prefix: "/avatar/parameters".into(),
            names: AvatarNames {
                hr: "HR".into(),
                float_hr: "floatHR".into(),
                connected: "isHRConnected".into(),
                beat_toggle: "HeartBeatToggle".into(),
                rr_interval: "RRInterval".into(),
            },
            attune_prefix: "/attune".into(),
            avatar_participant: None,
            hr_timeout_s: 5.0,
            queue: 4096,
        }
    }
}

impl std::str::FromStr for OscSpec {
    type Err = String;
    /// `HOST:PORT` (the command line's `--osc HOST:PORT`).
    fn from_str(s: &str) -> Result<Self, String> {
        section::host_port(s, DEFAULT_ADDR)?;
        Ok(Self {
            addr: s.into(),
            ..Self::default()
        })
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
    prefix: Option<String>,
    attune_prefix: Option<String>,
    hr: Option<String>,
    float_hr: Option<String>,
    connected: Option<String>,
    beat_toggle: Option<String>,
    rr_interval: Option<String>,
    avatar_participant: Option<String>,
    hr_timeout_s: Option<f64>,
    participants: Option<Vec<String>>,
    topics: Option<Vec<Topic>>,
}

/// An OSC address prefix: starts with `/`, no trailing `/`, no spaces or OSC pattern characters.
fn check_prefix(p: &str) -> Result<String, String> {
    let bad = |c: char| c.is_whitespace() || "#*,?[]{}".contains(c);
    if !p.starts_with('/') || p.ends_with('/') || p.chars().any(bad) {
        return Err(format!(
            "{p:?} is not an OSC address prefix (starts with /, no trailing /, no spaces or #*,?[]{{}})"
        ));
    }
    Ok(p.to_owned())
}

/// A parameter name: non-empty, no `/`, spaces or pattern characters.
fn check_name(n: &str) -> Result<String, String> {
    if n.is_empty()
        || n.chars()
            .any(|c| c.is_whitespace() || "/#*,?[]{}".contains(c))
    {
        return Err(format!("{n:?} is not an OSC parameter name"));
    }
    Ok(n.to_owned())
}

/// The settings a `[osc]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(section: &TransportSection) -> Result<Option<OscSpec>, String> {
    let at = |e: String| section::at(section, "osc", e);
    let raw: Raw = section::read(section, "osc")?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let mut s = match raw.addr {
        Some(a) => a.parse::<OscSpec>().map_err(|e| at(format!("addr: {e}")))?,
        None => OscSpec::default(),
    };
    if let Some(p) = raw.prefix {
        s.prefix = check_prefix(&p).map_err(|e| at(format!("prefix: {e}")))?;
    }
    if let Some(p) = raw.attune_prefix {
        s.attune_prefix = check_prefix(&p).map_err(|e| at(format!("attune_prefix: {e}")))?;
    }
    for (v, slot, key) in [
        (raw.hr, &mut s.names.hr, "hr"),
        (raw.float_hr, &mut s.names.float_hr, "float_hr"),
        (raw.connected, &mut s.names.connected, "connected"),
        (raw.beat_toggle, &mut s.names.beat_toggle, "beat_toggle"),
        (raw.rr_interval, &mut s.names.rr_interval, "rr_interval"),
    ] {
        if let Some(v) = v {
            *slot = check_name(&v).map_err(|e| at(format!("{key}: {e}")))?;
        }
    }
    if let Some(p) = raw.avatar_participant {
        s.avatar_participant =
            Some(ParticipantId::new(&p).map_err(|e| at(format!("avatar_participant: {e}")))?);
    }
    if let Some(t) = raw.hr_timeout_s {
        if !(t.is_finite() && (0.5..=600.0).contains(&t)) {
            return Err(at(format!("hr_timeout_s must be 0.5 to 600, not {t}")));
        }
        s.hr_timeout_s = t;
    }
    s.scope = section::scope(raw.participants, raw.topics).map_err(at)?;
    Ok(Some(s))
}
