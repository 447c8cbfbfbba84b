use super::*;
use crate::protocol::{Invalid, LossReason, Value};

fn channels() -> Vec<ChannelInfo> {
    [("A2", StreamKind::Ecg), ("A3", StreamKind::Eda)]
        .into_iter()
        .map(|(input, kind)| ChannelInfo {
            input: input.into(),
            kind,
            rate_hz: 100.0,
            conversion: "test".into(),
            bits: Some(10),
        })
        .collect()
}

fn frame(index: u64, ecg: f64, eda: Result<f64, Invalid>) -> Decoded {
    Decoded::Frame(Frame {
        index,
        device_t: None,
        values: vec![
            Value {
                raw: index as f64,
                value: Ok(ecg),
            },
            Value {
                raw: 7.0,
                value: eda,
            },
        ],
    })
}

fn chunks(inputs: &[Input], kind: StreamKind) -> Vec<&Chunk> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Chunk(c) if c.kind == kind => Some(c),
            _ => None,
        })
        .collect()
}

fn gaps(inputs: &[Input], kind: StreamKind) -> Vec<&Gap> {
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Gap(g) if g.kind == kind => Some(g),
            _ => None,
        })
        .collect()
}

fn times(cs: &[&Chunk]) -> Vec<f64> {
    cs.iter()
        .flat_map(|c| (0..c.samples.len()).map(|i| c.time_of(i)))
        .collect()
}

#[test]
fn frames_become_uniform_chunks_anchored_at_arrival_with_raw_values_kept() {
    let p = ParticipantId::new("p01").unwrap();
    let mut a = Assembler::new(p);
    a.connected(&channels());
    let mut out = Vec::new();
    // 50 frames per delivery, every 0.5 s; the first delivery's last frame arrived at 10.0.
    for d in 0..4u64 {
        let batch: Vec<Decoded> = (d * 50..(d + 1) * 50)
            .map(|i| frame(i, i as f64, Ok(2.0)))
            .collect();
        a.decoded(10.0 + d as f64 * 0.5, &batch, &mut out);
    }
    a.flush(12.0, &mut out);
    let ecg = chunks(&out, StreamKind::Ecg);
    let t = times(&ecg);
    assert_eq!(t.len(), 200);
    assert!((t[49] - 10.0).abs() < 1e-9, "anchored: {}", t[49]);
    assert!(t.windows(2).all(|w| (w[1] - w[0] - 0.01).abs() < 1e-9));
    let seqs: Vec<u64> = ecg.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(
        ecg.iter()
            .all(|c| c.samples.len() as f64 / 100.0 <= CHUNK_S + 1e-9)
    );
    let raw: Vec<f64> = ecg.iter().flat_map(|c| c.raw.clone().unwrap()).collect();
    assert_eq!(raw, (0..200).map(|i| i as f64).collect::<Vec<_>>());
    assert!(gaps(&out, StreamKind::Ecg).is_empty());
}

#[test]
fn lost_frames_and_invalid_samples_are_one_gap_each_never_values() {
    let p = ParticipantId::new("p01").unwrap();
    let mut a = Assembler::new(p);
    a.connected(&channels());
    let mut out = Vec::new();
    let mut batch: Vec<Decoded> = (0..10).map(|i| frame(i, 1.0, Ok(2.0))).collect();
    batch.push(Decoded::Gap {
        frames: 3,
        ambiguous: false,
        reason: LossReason::Crc,
    });
    batch.extend((13..20).map(|i| frame(i, 1.0, Err(Invalid::ElectrodesOpen))));
    batch.extend((20..30).map(|i| frame(i, 1.0, Ok(2.0))));
    a.decoded(1.0, &batch, &mut out);
    a.flush(1.0, &mut out);
    let g = gaps(&out, StreamKind::Ecg);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].reason, "crc");
    assert!((g[0].end - g[0].start - 0.04).abs() < 1e-9, "{:?}", g[0]);
    // EDA: the crc gap and the open electrodes are one stretch without values: one gap, from
    // sample 9 to sample 20.
    let g = gaps(&out, StreamKind::Eda);
    assert_eq!(g.len(), 1, "{g:?}");
    assert!((g[0].end - g[0].start - 0.11).abs() < 1e-9, "{:?}", g[0]);
    assert_eq!(times(&chunks(&out, StreamKind::Eda)).len(), 20);
    assert_eq!(times(&chunks(&out, StreamKind::Ecg)).len(), 27);
}

#[test]
fn a_reconnect_is_exactly_one_disconnect_gap_per_stream_and_time_keeps_increasing() {
    let p = ParticipantId::new("p01").unwrap();
    let mut a = Assembler::new(p);
    a.connected(&channels());
    let mut out = Vec::new();
    let batch: Vec<Decoded> = (0..100).map(|i| frame(i, 1.0, Ok(2.0))).collect();
    a.decoded(5.0, &batch, &mut out);
    a.disconnected(5.5, &mut out);
    // The device restarts its counter; a delivery arrives 3 s later.
    a.connected(&channels());
    let batch: Vec<Decoded> = (0..100).map(|i| frame(i, 1.0, Ok(2.0))).collect();
    a.decoded(8.5, &batch, &mut out);
    a.decoded(9.0, &[], &mut out);
    a.flush(9.0, &mut out);
    for kind in [StreamKind::Ecg, StreamKind::Eda] {
        let g = gaps(&out, kind);
        assert_eq!(g.len(), 1, "{kind:?}: {g:?}");
        assert_eq!(g[0].reason, "disconnect");
        assert!((g[0].start - 5.0).abs() < 1e-9);
        assert!((g[0].end - 7.51).abs() < 1e-9, "{:?}", g[0]);
        let t = times(&chunks(&out, kind));
        assert_eq!(t.len(), 200);
        assert!(t.windows(2).all(|w| w[1] > w[0]));
        let seqs: Vec<u64> = chunks(&out, kind).iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn a_reconnect_sooner_than_the_anchor_error_never_maps_backwards() {
    let p = ParticipantId::new("p01").unwrap();
    let mut a = Assembler::new(p);
    a.connected(&channels());
    let mut out = Vec::new();
    let batch: Vec<Decoded> = (0..100).map(|i| frame(i, 1.0, Ok(2.0))).collect();
    a.decoded(5.0, &batch, &mut out);
    a.disconnected(5.0, &mut out);
    a.connected(&channels());
    // 200 frames arrive at once 0.1 s later: anchoring the last at 5.1 would put the first
    // before 5.0.
    let batch: Vec<Decoded> = (0..200).map(|i| frame(i, 1.0, Ok(2.0))).collect();
    a.decoded(5.1, &batch, &mut out);
    a.flush(5.1, &mut out);
    let t = times(&chunks(&out, StreamKind::Ecg));
    assert_eq!(t.len(), 300);
    assert!(t.windows(2).all(|w| w[1] > w[0]));
}
