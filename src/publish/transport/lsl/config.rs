//! The `[lsl]` section and `--lsl`: which streams, which participants.

use crate::config::TransportSection;
use crate::model::StreamKind;
use crate::publish::transport::{Scope, section};

/// The LSL transport's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LslSpec {
    /// Not an address: LSL picks its own ports (TCP 16572 and up, UDP multicast discovery on
    /// 16571). Kept so the command line treats every transport alike; always `lsl`.
    pub addr: String,
    /// Which participants (topics: `adaptation` gates the markers' decisions).
    pub scope: Scope,
    /// Which sample streams get an outlet (default: ECG, PPG, EDA, RR).
    pub streams: Vec<StreamKind>,
    /// Queue bound, items.
    pub queue: usize,
}

impl Default for LslSpec {
    fn default() -> Self {
        Self {
            addr: "lsl".into(),
            scope: Scope::default(),
            streams: vec![
                StreamKind::Ecg,
                StreamKind::Ppg,
                StreamKind::Eda,
                StreamKind::Rr,
            ],
            queue: 4096,
        }
    }
}

impl std::str::FromStr for LslSpec {
    type Err = String;
    /// `--lsl` takes no value (the command line hands over `lsl`).
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "lsl" {
            Ok(Self::default())
        } else {
            Err(format!("--lsl takes no value, not {s:?}"))
        }
    }
}

/// The `[lsl]` keys of a configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// `false` turns the transport off although the section is there (default true).
    enabled: Option<bool>,
    streams: Option<Vec<String>>,
    participants: Option<Vec<String>>,
    topics: Option<Vec<crate::publish::messages::Topic>>,
    queue: Option<usize>,
}

/// The settings a `[lsl]` section asks for; `None` when it says `enabled = false`.
pub fn from_section(s: &TransportSection) -> Result<Option<LslSpec>, String> {
    let at = |e: String| section::at(s, "lsl", e);
    let raw: Raw = section::read(s, "lsl")?;
    if raw.enabled == Some(false) {
        return Ok(None);
    }
    let mut spec = LslSpec::default();
    if let Some(names) = raw.streams {
        let mut kinds = Vec::new();
        for n in &names {
            let k = match n.as_str() {
                "ecg" => StreamKind::Ecg,
                "ppg" => StreamKind::Ppg,
                "eda" => StreamKind::Eda,
                "rr" => StreamKind::Rr,
                other => {
                    return Err(at(format!(
                        "streams: {other:?} is not one of ecg, ppg, eda, rr"
                    )));
                }
            };
            kinds.push(k);
        }
        spec.streams = kinds;
    }
    if let Some(q) = raw.queue {
        spec.queue = section::within("queue", q, 1, 1_000_000).map_err(at)?;
    }
    spec.scope = section::scope(raw.participants, raw.topics).map_err(at)?;
    Ok(Some(spec))
}
