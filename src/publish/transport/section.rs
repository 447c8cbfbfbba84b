//! What the transports' configuration sections and addresses share: `HOST:PORT`, one-line
//! errors that name the file, line and section, and the `participants`/`topics` scope.

use super::Scope;
use crate::config::TransportSection;
use crate::model::ParticipantId;
use crate::publish::messages::Topic;

/// Checks `HOST:PORT` (a port of 1–65535); the error shows `example`.
pub fn host_port(s: &str, example: &str) -> Result<(), String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!("expected HOST:PORT (e.g. {example}), not {s:?}")),
    }
}

/// `FILE line N: [name] error`, on one line.
pub fn at(section: &TransportSection, name: &str, e: impl std::fmt::Display) -> String {
    let e = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!("{}: [{name}] {e}", section.at)
}

/// The section's keys as `R` (unknown keys refused by `R`'s `deny_unknown_fields`).
pub fn read<R: serde::de::DeserializeOwned>(
    section: &TransportSection,
    name: &str,
) -> Result<R, String> {
    section
        .table
        .clone()
        .try_into()
        .map_err(|e| at(section, name, e))
}

/// The scope the `participants` and `topics` keys ask for (absent: all).
pub fn scope(
    participants: Option<Vec<String>>,
    topics: Option<Vec<Topic>>,
) -> Result<Scope, String> {
    let participants = match participants {
        Some(ps) => Some(
            ps.iter()
                .map(|p| ParticipantId::new(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("participants: {e}"))?,
        ),
        None => None,
    };
    Ok(Scope {
        participants,
        topics,
    })
}

/// `key` within `lo..=hi`, or a one-line error naming it.
pub fn within<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, String> {
    if v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(format!("{key} must be {lo} to {hi}, not {v}"))
    }
}

/// A section parsed from `toml`, as if at `attune.toml line 1` (for tests).
#[cfg(test)]
pub fn for_test(toml: &str) -> TransportSection {
    TransportSection {
        table: toml.parse().unwrap_or_default(),
        at: "attune.toml line 1".into(),
    }
}
