//! Unit tests of the OSC transport.

use super::*;
use crate::config::TransportSection;

fn section(text: &str) -> TransportSection {
    TransportSection {
        table: toml::from_str(text).unwrap(),
        at: "attune.toml line 1".into(),
    }
}

#[test]
fn the_documented_section_is_read_and_bad_keys_are_refused_in_one_line() {
    let s = from_section(&section(
        "addr = \"127.0.0.1:9001\"\nprefix = \"/avatar/parameters\"\nhr = \"Heartrate\"\navatar_participant = \"p01\"\nhr_timeout_s = 3\ntopics = [\"adaptation\"]",
    ))
    .unwrap()
    .unwrap();
    assert_eq!(s.addr, "127.0.0.1:9001");
    assert_eq!(s.names.hr, "Heartrate");
    assert_eq!(s.avatar_participant.unwrap().as_str(), "p01");
    assert_eq!(s.scope.topics, Some(vec![Topic::Adaptation]));
    assert!(from_section(&section("enabled = false")).unwrap().is_none());
    for bad in [
        "colour = 1",
        "prefix = \"avatar\"",
        "hr = \"a b\"",
        "hr_timeout_s = 0",
        "addr = \"nowhere\"",
    ] {
        let e = from_section(&section(bad)).unwrap_err();
        assert!(
            e.starts_with("attune.toml line 1: [osc]") && !e.contains('\n'),
            "{e}"
        );
    }
}

#[test]
fn heart_rate_maps_like_the_vrchat_tools() {
    assert_eq!(hr_int(300.0), 255);
    assert_eq!(hr_int(61.6), 62);
    assert!((float_hr(0.0) + 1.0).abs() < 1e-6);
    assert!((float_hr(255.0) - 1.0).abs() < 1e-6);
    assert!(float_hr(127.5).abs() < 1e-6);
}

/// The publisher without a writer: what it enqueues, read from the queue.
fn publisher(share_raw: bool) -> (OscPublisher, mpsc::Receiver<Item>) {
    let p = ParticipantId::new("p01").unwrap();
    let mut m = crate::simulate::synthetic_consent();
    if share_raw {
        m.grants[0].purposes.push(crate::consent::Purpose::ShareRaw);
    }
    let (out, rx) = Outbox::new(64);
    let publisher = OscPublisher {
        spec: OscSpec::default(),
        out,
        avatar: Avatar {
            who: None,
            toggle: false,
            raw_heart_t: None,
        },
        snapshot: Some(Arc::new(crate::consent::ConsentSnapshot::from_manifest(
            &p, &m,
        ))),
    };
    (publisher, rx)
}

fn rr_event(rr: &[f64]) -> Arc<Event> {
    let mut t = 0.0;
    let times = rr
        .iter()
        .map(|r| {
            t += r / 1000.0;
            t
        })
        .collect();
    Event::new(EventBody::Samples(crate::model::Chunk {
        participant: ParticipantId::new("p01").unwrap(),
        kind: StreamKind::Rr,
        seq: 0,
        host_t: t,
        timing: crate::model::Timing::Events(times),
        samples: rr.to_vec(),
        raw: None,
        meta: None,
    }))
}

fn sent(rx: &mut mpsc::Receiver<Item>) -> Vec<(String, Vec<OscType>, Vec<Need>)> {
    let mut v = Vec::new();
    while let Ok(Item::Send(o)) = rx.try_recv() {
        v.push((o.addr, o.args, o.needs));
    }
    v
}

#[test]
fn each_beat_flips_the_toggle_and_carries_its_interval_under_share_raw() {
    let (mut p, mut rx) = publisher(true);
    p.publish(&rr_event(&[1000.0, 750.0, 800.0]));
    let got = sent(&mut rx);
    let toggles: Vec<_> = got
        .iter()
        .filter(|(a, _, _)| a == "/avatar/parameters/HeartBeatToggle")
        .map(|(_, v, _)| v.clone())
        .collect();
    assert_eq!(
        toggles,
        [true, false, true].map(|b| vec![OscType::Bool(b)]).to_vec()
    );
    let rr: Vec<_> = got
        .iter()
        .filter(|(a, _, _)| a == "/avatar/parameters/RRInterval")
        .map(|(_, v, _)| v.clone())
        .collect();
    assert_eq!(rr, [1000, 750, 800].map(|r| vec![OscType::Int(r)]).to_vec());
    let hr: Vec<_> = got
        .iter()
        .filter(|(a, _, _)| a == "/avatar/parameters/HR")
        .map(|(_, v, _)| v.clone())
        .collect();
    assert_eq!(hr, [60, 80, 75].map(|r| vec![OscType::Int(r)]).to_vec());
    // Each rests on the RR stream's process and share_raw consent, not on record.
    assert!(
        got.iter()
            .all(|(_, _, n)| n[..] == super::super::raw_needs(StreamKind::Rr))
    );
}

#[test]
fn without_share_raw_no_beat_is_sent() {
    let (mut p, mut rx) = publisher(false);
    p.publish(&rr_event(&[1000.0, 750.0]));
    assert!(sent(&mut rx).is_empty());
}
