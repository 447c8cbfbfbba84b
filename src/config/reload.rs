//! SIGHUP: what a running daemon can apply of a changed configuration (pure).
//!
//! Participants and their sources can come and go, and the recorder's settings change in
//! place. The socket, the data directory, the queue bounds and the session speed are fixed
//! when the daemon starts: a change to them is listed in [`Reload::refused`] and stays as it
//! was until a restart, while the rest of the plan can still be applied.

use super::{Config, ParticipantConfig, RecorderConfig, SourceConfig, SourceId};
use crate::model::ParticipantId;

/// A reload plan: the difference between the running and the new configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reload {
    /// Participants in the new configuration only, with their sources.
    pub participants_added: Vec<ParticipantConfig>,
    /// Participants in the running configuration only: stop their sources.
    pub participants_removed: Vec<ParticipantId>,
    /// Source changes of participants in both, by [`SourceId`].
    pub sources: Vec<SourceChange>,
    /// The new recorder settings, if they changed (applicable in place).
    pub recorder: Option<RecorderConfig>,
    /// What needs a restart, one line each; these settings keep their running values.
    pub refused: Vec<String>,
}

impl Reload {
    /// Nothing to apply and nothing refused.
    pub fn is_empty(&self) -> bool {
        self == &Reload::default()
    }
}

/// One source change of a participant present before and after.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceChange {
    /// A new source: start it.
    Added(SourceId, SourceConfig),
    /// A source gone: stop it.
    Removed(SourceId),
    /// The same source id with other settings: restart it with these.
    Changed(SourceId, SourceConfig),
}

/// The plan that turns `old` (running) into `new`.
pub fn reload(old: &Config, new: &Config) -> Reload {
    let mut plan = Reload::default();
    let mut refuse = |what: &str, was: String, now: String| {
        plan.refused.push(format!(
            "{what} changed from {was} to {now}: needs a restart"
        ));
    };
    let show = |p: &Option<std::path::PathBuf>| match p {
        Some(p) => p.display().to_string(),
        None => "the default".to_owned(),
    };
    if old.socket != new.socket {
        refuse("daemon.socket", show(&old.socket), show(&new.socket));
    }
    if old.data_dir != new.data_dir {
        refuse("daemon.data_dir", show(&old.data_dir), show(&new.data_dir));
    }
    if old.queue != new.queue {
        refuse("daemon.queue", old.queue.to_string(), new.queue.to_string());
    }
    if old.input_queue != new.input_queue {
        refuse(
            "daemon.input_queue",
            old.input_queue.to_string(),
            new.input_queue.to_string(),
        );
    }
    if old.speed != new.speed {
        refuse("daemon.speed", old.speed.to_string(), new.speed.to_string());
    }
    if old.recorder != new.recorder {
        plan.recorder = Some(new.recorder);
    }
    for p in &new.participants {
        match old.participants.iter().find(|q| q.id == p.id) {
            None => plan.participants_added.push(p.clone()),
            Some(q) => plan.sources.extend(source_changes(q, p)),
        }
    }
    plan.participants_removed = old
        .participants
        .iter()
        .filter(|q| !new.participants.iter().any(|p| p.id == q.id))
        .map(|q| q.id.clone())
        .collect();
    plan
}

fn source_changes(old: &ParticipantConfig, new: &ParticipantConfig) -> Vec<SourceChange> {
    let before: Vec<(SourceId, &SourceConfig)> = old.sources_with_ids().collect();
    let after: Vec<(SourceId, &SourceConfig)> = new.sources_with_ids().collect();
    let mut out = Vec::new();
    for (id, s) in &before {
        match after.iter().find(|(a, _)| a == id) {
            None => out.push(SourceChange::Removed(id.clone())),
            Some((_, t)) if t != s => out.push(SourceChange::Changed(id.clone(), (*t).clone())),
            Some(_) => {}
        }
    }
    for (id, s) in &after {
        if !before.iter().any(|(b, _)| b == id) {
            out.push(SourceChange::Added(id.clone(), (*s).clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;
    use std::path::Path;
    use std::time::Duration;

    fn pid(s: &str) -> ParticipantId {
        ParticipantId::new(s).unwrap()
    }

    fn dyad() -> Config {
        Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dyad.toml")).unwrap()
    }

    #[test]
    fn reload_of_the_same_is_empty() {
        assert!(reload(&dyad(), &dyad()).is_empty());
    }

    #[test]
    fn reload_adds_and_removes_participants() {
        let old = dyad();
        let mut new = old.clone();
        let p02 = new.participants.remove(1);
        let mut p03 = p02.clone();
        p03.id = pid("p03");
        new.participants.push(p03.clone());
        let plan = reload(&old, &new);
        assert_eq!(plan.participants_added, vec![p03]);
        assert_eq!(plan.participants_removed, vec![pid("p02")]);
        assert!(plan.sources.is_empty() && plan.refused.is_empty() && plan.recorder.is_none());
    }

    #[test]
    fn reload_diffs_sources_by_id() {
        let old = dyad();
        let mut new = old.clone();
        let SourceConfig::Simulate(spec) = &mut new.participants[0].sources[0] else {
            panic!()
        };
        spec.seed = 99;
        let changed = new.participants[0].sources[0].clone();
        let replay = SourceConfig::Replay { file: "r".into() };
        new.participants[0].sources.push(replay.clone());
        new.participants[1].sources.clear();
        let plan = reload(&old, &new);
        let id = |p: &str, kind, n| SourceId {
            participant: pid(p),
            kind,
            n,
        };
        assert_eq!(
            plan.sources,
            vec![
                SourceChange::Changed(id("p01", "simulate", 1), changed),
                SourceChange::Added(id("p01", "replay", 1), replay),
                SourceChange::Removed(id("p02", "simulate", 1)),
            ]
        );
        assert_eq!(id("p01", "replay", 1).to_string(), "p01/replay#1");
    }

    #[test]
    fn reload_applies_recorder_and_refuses_daemon_settings() {
        let old = dyad();
        let mut new = old.clone();
        new.recorder.flush_every = Duration::from_millis(500);
        new.recorder.enabled = false;
        new.socket = Some("/tmp/other.sock".into());
        new.data_dir = Some("/tmp/data".into());
        new.queue = NonZeroUsize::new(8).unwrap();
        new.input_queue = NonZeroUsize::new(16).unwrap();
        new.speed = 2.0;
        let plan = reload(&old, &new);
        assert_eq!(plan.recorder, Some(new.recorder));
        assert_eq!(
            plan.refused,
            [
                "daemon.socket changed from the default to /tmp/other.sock: needs a restart",
                "daemon.data_dir changed from the default to /tmp/data: needs a restart",
                "daemon.queue changed from 4096 to 8: needs a restart",
                "daemon.input_queue changed from 1024 to 16: needs a restart",
                "daemon.speed changed from 1 to 2: needs a restart",
            ]
        );
        assert!(plan.participants_added.is_empty() && plan.sources.is_empty());
    }
}
