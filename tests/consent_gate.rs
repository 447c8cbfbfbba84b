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

/// Drops the EDA chunks whose first sample lies in [from, to) s.
fn without_eda(
    records: &[attune::recording::Record],
    from: f64,
    to: f64,
) -> Vec<attune::recording::Record> {
    use attune::recording::Record;
    records
        .iter()
        .filter(|r| match r {
            Record::Chunk(c) if c.kind == StreamKind::Eda => {
                let t = c.time_of(0);
                !(from..to).contains(&t)
            }
            _ => true,
        })
        .cloned()
        .collect()
}

#[test]
fn an_eda_dropout_is_an_explicit_stale_state_then_streaming_again() {
    use attune::recording::{Reader, Record};
    // Write the fixture with 30 s of EDA chunks missing, and let the reader find the sequence
    // jump (no gap record in the file): it must surface as a gap, never be papered over.
    let (header, records) = read_recording(&fixture("sim-rest-stress.attune.ndjson"));
    let cut = without_eda(&records, 400.0, 430.0);
    let mut w = attune::recording::Writer::new(Vec::new(), &header).unwrap();
    for r in &cut {
        match r {
            Record::Chunk(c) => w.chunk(c.kind.name(), c).unwrap(),
            Record::Gap(g) => w.gap(g.kind.name(), g).unwrap(),
            Record::Marker(m) => w.marker(m).unwrap(),
            Record::State(s) => w.state(s.kind.name(), s).unwrap(),
        }
    }
    let bytes = w.finish().unwrap();
    let mut reader = Reader::open(std::io::Cursor::new(bytes)).unwrap();
    let mut reread = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        reread.push(r);
    }
    let gaps: Vec<_> = reread
        .iter()
        .filter_map(|r| match r {
            Record::Gap(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].reason, "sequence_jump");
    assert!(
        (gaps[0].start - 399.96875).abs() < 1e-9 && gaps[0].end == 430.0,
        "{:?}",
        gaps[0]
    );

    let out = run_pipeline(&header, &reread, PipelineConfig::default());
    let eda_states: Vec<(StreamState, f64)> = out
        .iter()
        .filter_map(|o| match o {
            Output::State(s) if s.kind == StreamKind::Eda => Some((s.state, s.since)),
            _ => None,
        })
        .collect();
    let states: Vec<StreamState> = eda_states.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        states,
        [
            StreamState::Streaming,
            StreamState::Stale,
            StreamState::Streaming,
            StreamState::Ended
        ],
        "{eda_states:?}"
    );
    // No EDA feature once the stream is stale (5 s after its last sample on the session
    // timeline: the 1 s chunks put it about 1 s after its device time, the delivery latency the
    // engine allows for), and the SCL window restarts after the hole (10 s of coverage needed).
    let stale_since = eda_states[1].1;
    assert!(
        (405.0..=407.5).contains(&stale_since),
        "stale from {stale_since} s, the last sample was at 399.97 s device time"
    );
    for o in &out {
        if let Output::Features(_, f) = o
            && f.t >= stale_since
            && f.t < 440.0
        {
            assert!(f.values[2].is_none(), "SCL at {} s across a gap", f.t);
        }
    }
}

#[test]
fn hr_consent_does_not_cover_heart_rate_computed_from_rr() {
    // Regression (issue 2 review): hr_bpm computed from RR was shared and used for decisions
    // under the consent of a declared but silent `hr` stream.
    let (mut header, records) = read_recording(&fixture("sim-rest-stress.attune.ndjson"));
    let mut hr = header.streams[0].clone();
    hr.id = "hr".into();
    hr.kind = "hr".into();
    hr.unit = "bpm".into();
    hr.rate_hz = Some(1.0);
    header.streams.push(hr);
    header.consent = serde_json::from_str(
        r#"{"grants":[{"stream":"rr","purposes":["process"]},
                      {"stream":"hr","purposes":["process","share_features","adapt"]}]}"#,
    )
    .unwrap();
    let out = run_pipeline(&header, &records, PipelineConfig::default());
    assert_eq!(count(&out, |o| matches!(o, Output::Decision(..))), 0);
    for o in &out {
        if let Output::Features(_, f) = o {
            assert!(f.values.iter().all(Option::is_none), "{f:?}");
        }
    }
}
