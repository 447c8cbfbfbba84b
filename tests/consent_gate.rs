//! The consent manifest of a recording gates the replay: default deny, per stream and purpose.

use crate::util::{Daemon, fixture, json, read_recording, run_pipeline};
use attune::consent::ConsentManifest;
use attune::model::{StreamKind, StreamState};
use attune::pipeline::{Output, PipelineConfig};

fn run_with(manifest: &str) -> Vec<Output> {
    let (mut header, records) = read_recording(&fixture("sim-rest-stress.attune.ndjson"));
    header.consent = serde_json::from_str::<ConsentManifest>(manifest).unwrap();
    run_pipeline(&header, &records, PipelineConfig::default())
}

fn count(out: &[Output], f: impl Fn(&Output) -> bool) -> usize {
    out.iter().filter(|o| f(o)).count()
}

#[test]
fn an_empty_manifest_denies_everything() {
    let out = run_with(r#"{"grants":[]}"#);
    assert_eq!(
        count(&out, |o| matches!(
            o,
            Output::Decision(..) | Output::Features(..)
        )),
        0
    );
    // Both streams say why they are silent, once.
    let states: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::State(s) => Some((s.kind, s.state)),
            _ => None,
        })
        .collect();
    assert!(states.contains(&(StreamKind::Rr, StreamState::NoConsent)));
    assert!(states.contains(&(StreamKind::Eda, StreamState::NoConsent)));
    assert!(!states.iter().any(|(_, s)| *s == StreamState::Streaming));
}

#[test]
fn eda_without_process_consent_contributes_nothing() {
    let out = run_with(
        r#"{"grants":[{"stream":"rr","purposes":["process","adapt","share_features"]},
                      {"stream":"eda","purposes":["adapt","share_features"]}]}"#,
    );
    let mut decisions = 0;
    for o in &out {
        match o {
            Output::Features(_, f) => assert!(f.values[2].is_none() && f.values[3].is_none()),
            Output::Decision(_, d) => {
                decisions += 1;
                for t in &d.terms {
                    if t.index >= 2 {
                        assert!(
                            t.value.is_none(),
                            "an EDA feature was computed without consent"
                        );
                    }
                }
            }
            Output::State(s) if s.kind == StreamKind::Eda => {
                assert!(
                    matches!(s.state, StreamState::NoConsent | StreamState::Ended),
                    "{s:?}"
                )
            }
            _ => {}
        }
    }
    assert!(decisions > 2000);
}

#[test]
fn without_adapt_no_decisions_and_without_share_features_no_features() {
    let out = run_with(r#"{"grants":[{"stream":"all","purposes":["process","share_features"]}]}"#);
    assert_eq!(count(&out, |o| matches!(o, Output::Decision(..))), 0);
    assert!(count(&out, |o| matches!(o, Output::Features(..))) > 2000);
    let out = run_with(r#"{"grants":[{"stream":"all","purposes":["process","adapt"]}]}"#);
    assert_eq!(count(&out, |o| matches!(o, Output::Features(..))), 0);
    assert!(count(&out, |o| matches!(o, Output::Decision(..))) > 2000);
    // Features shared for rr only: EDA values are withheld from the message.
    let out = run_with(
        r#"{"grants":[{"stream":"all","purposes":["process","adapt"]},
                      {"stream":"rr","purposes":["share_features"]}]}"#,
    );
    let mut hr_seen = false;
    for o in &out {
        if let Output::Features(_, f) = o {
            assert!(f.values[2].is_none() && f.values[3].is_none());
            hr_seen |= f.values[0].is_some();
        }
    }
    assert!(hr_seen);
}

#[test]
fn replay_under_another_participant_id_and_subscriber_filters() {
    let d = Daemon::replay(
        &fixture("sim-rest-stress.attune.ndjson"),
        &[
            "--speed",
            "max",
            "--participant",
            "p01",
            "--wait-subscribers",
            "2",
        ],
    );
    let mut mine = crate::util::Subscriber::connect_for(&d.socket, "p01", &["adaptation"]);
    let mut other =
        crate::util::Subscriber::connect_for(&d.socket, "p02", &["adaptation", "state"]);
    let lines = mine.all_lines();
    assert!(lines.len() > 2000);
    assert!(lines[1..].iter().all(|l| json(l)["participant"] == "p01"));
    let other_lines = other.all_lines();
    assert_eq!(other_lines.len(), 1, "p02 got messages: {other_lines:?}");
    assert_eq!(d.wait().0, Some(0));
}
