#![allow(clippy::unwrap_used)]

use super::*;

fn asm() -> Assembler {
    Assembler::new(
        ParticipantId::new("p01").unwrap(),
        Device {
            name: "Polar H10 0000TEST (C0:FF:EE:00:00:01)".into(),
            protocol: PROTOCOL.into(),
            firmware: None,
            conversion: None,
        },
    )
}

/// A u8-HR notification with contact supported and present, and these RR counts.
fn note(hr: u8, rr: &[u16]) -> Vec<u8> {
    let mut v = vec![0x16, hr];
    for r in rr {
        v.extend_from_slice(&r.to_le_bytes());
    }
    v
}

fn chunks(out: &[Input], kind: StreamKind) -> Vec<&Chunk> {
    out.iter()
        .filter_map(|i| match i {
            Input::Chunk(c) if c.kind == kind => Some(c),
            _ => None,
        })
        .collect()
}

fn gaps(out: &[Input]) -> Vec<&Gap> {
    out.iter()
        .filter_map(|i| match i {
            Input::Gap(g) => Some(g),
            _ => None,
        })
        .collect()
}

fn states(out: &[Input]) -> Vec<&SourceState> {
    out.iter()
        .filter_map(|i| match i {
            Input::Source(s) => Some(s),
            _ => None,
        })
        .collect()
}

#[test]
fn first_notification_declares_both_streams_then_hr_and_rr_flow() {
    let mut a = asm();
    let mut out = Vec::new();
    a.notification(10.0, &note(60, &[1024]), &mut out);
    let declared: Vec<_> = out
        .iter()
        .filter_map(|i| match i {
            Input::Stream(s) => Some((s.kind, s.rate_hz)),
            _ => None,
        })
        .collect();
    assert_eq!(
        declared,
        vec![(StreamKind::Hr, Some(1.0)), (StreamKind::Rr, None)]
    );
    let hr = chunks(&out, StreamKind::Hr);
    assert_eq!(hr.len(), 1);
    assert_eq!(hr[0].samples, vec![60.0]);
    assert_eq!(
        hr[0].timing,
        Timing::Uniform {
            t0: 10.0,
            rate_hz: 1.0
        }
    );
    let rr = chunks(&out, StreamKind::Rr);
    assert_eq!(rr[0].samples, vec![1000.0]);
    assert_eq!(rr[0].raw, Some(vec![1024.0]));
    assert_eq!(rr[0].timing, Timing::Events(vec![10.0]));
    out.clear();
    a.notification(11.0, &note(61, &[512, 512]), &mut out);
    assert!(!out.iter().any(|i| matches!(i, Input::Stream(_))));
    let rr = chunks(&out, StreamKind::Rr);
    assert_eq!(rr[0].seq, 1);
    assert_eq!(rr[0].timing, Timing::Events(vec![10.5, 11.0]));
    assert_eq!(a.counters().beats, 3);
    assert_eq!(a.counters().notifications, 2);
}

#[test]
fn an_outage_gives_one_disconnect_gap_per_stream_with_the_first_data_after_it() {
    let mut a = asm();
    let mut out = Vec::new();
    for k in 0..5 {
        a.notification(10.0 + f64::from(k), &note(60, &[1024]), &mut out);
    }
    out.clear();
    a.outage();
    a.outage(); // twice: still one gap
    a.notification(30.0, &note(62, &[]), &mut out);
    let g = gaps(&out);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(
        (g[0].kind, g[0].reason.as_str()),
        (StreamKind::Hr, "disconnect")
    );
    assert_eq!((g[0].start, g[0].end), (14.0, 30.0));
    out.clear();
    a.notification(31.0, &note(62, &[1000]), &mut out);
    let g = gaps(&out);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(
        (g[0].kind, g[0].reason.as_str()),
        (StreamKind::Rr, "disconnect")
    );
    assert_eq!(g[0].start, 14.0);
    let rr = chunks(&out, StreamKind::Rr);
    let meta = rr[0].meta.as_deref().unwrap();
    assert_eq!(
        meta.suspect,
        vec![0],
        "the first RR after an outage is suspect"
    );
    out.clear();
    a.notification(32.0, &note(62, &[1000]), &mut out);
    assert!(gaps(&out).is_empty());
}

#[test]
fn a_strap_without_rr_is_rr_unavailable_once_and_hr_flows() {
    let mut a = asm();
    let mut out = Vec::new();
    for k in 0..20 {
        a.notification(f64::from(k), &[0x06, 70], &mut out);
    }
    let s: Vec<_> = states(&out)
        .into_iter()
        .filter(|s| s.kind == StreamKind::Rr)
        .collect();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].status, SourceStatus::LowQuality);
    assert!(
        s[0].detail
            .as_deref()
            .unwrap()
            .starts_with("rr_unavailable")
    );
    assert_eq!(s[0].host_t, f64::from(RR_UNAVAILABLE_AFTER as u32 - 1));
    assert_eq!(chunks(&out, StreamKind::Hr).len(), 20);
    assert!(chunks(&out, StreamKind::Rr).is_empty());
}

#[test]
fn empty_rr_lists_are_no_beats_not_rr_unavailable() {
    let mut a = asm();
    let mut out = Vec::new();
    for k in 0..20 {
        a.notification(f64::from(k), &[0x16, 40], &mut out);
    }
    assert!(states(&out).is_empty());
    assert_eq!(a.counters().empty, 20);
}

#[test]
fn lost_contact_drops_values_says_low_quality_and_closes_one_contact_gap() {
    let mut a = asm();
    let mut out = Vec::new();
    a.notification(1.0, &note(60, &[1024]), &mut out);
    a.notification(2.0, &note(60, &[1024]), &mut out);
    out.clear();
    for k in 3..8 {
        a.notification(f64::from(k), &[0x14, 0], &mut out);
    }
    assert!(chunks(&out, StreamKind::Hr).is_empty() && chunks(&out, StreamKind::Rr).is_empty());
    let s = states(&out);
    assert_eq!(
        s.len(),
        2,
        "one low_quality per stream, not per notification"
    );
    assert!(s.iter().all(|s| s.status == SourceStatus::LowQuality
        && s.detail.as_deref().unwrap().starts_with("no_contact")));
    out.clear();
    a.notification(8.0, &note(61, &[1024]), &mut out);
    let g = gaps(&out);
    assert_eq!(g.len(), 2);
    assert!(g.iter().all(|g| g.reason == "contact_lost"));
    assert_eq!(a.counters().no_contact, 5);
}

#[test]
fn contact_is_not_judged_when_the_strap_cannot_tell() {
    // Polar H10 style flags 0x10: contact bits 00 (not supported), RR present.
    let mut a = asm();
    let mut out = Vec::new();
    a.notification(1.0, &[0x10, 60, 0x00, 0x04], &mut out);
    assert_eq!(chunks(&out, StreamKind::Rr).len(), 1);
    assert!(states(&out).is_empty());
}

#[test]
fn malformed_notifications_are_counted_and_give_nothing() {
    let mut a = asm();
    let mut out = Vec::new();
    a.notification(1.0, &[], &mut out);
    a.notification(1.5, &[0x01, 0x48], &mut out);
    assert!(out.is_empty());
    assert_eq!(a.counters().malformed, 2);
    assert!(a.take_error().is_some());
    // An odd trailing byte keeps the RR before it.
    a.notification(2.0, &[0x10, 0x48, 0xDA, 0x03, 0xE4], &mut out);
    assert_eq!(chunks(&out, StreamKind::Rr)[0].raw, Some(vec![986.0]));
    assert_eq!(a.counters().trailing_bytes, 1);
}

#[test]
fn hr_times_strictly_increase_even_for_notifications_in_the_same_instant() {
    let mut a = asm();
    let mut out = Vec::new();
    a.notification(5.0, &note(60, &[]), &mut out);
    a.notification(5.0, &note(60, &[]), &mut out);
    a.notification(4.0, &note(60, &[]), &mut out);
    let ts: Vec<f64> = chunks(&out, StreamKind::Hr)
        .iter()
        .map(|c| c.time_of(0))
        .collect();
    assert!(ts.windows(2).all(|w| w[1] > w[0]), "{ts:?}");
}
