//! Tests of the feature windows.

use super::*;
use crate::model::ParticipantId;

fn eda_chunk(seq: u64, t0: f64, values: Vec<f64>) -> Chunk {
    Chunk {
        raw: None,
        meta: None,
        participant: ParticipantId::new("p").unwrap(),
        kind: StreamKind::Eda,
        seq,
        host_t: t0,
        timing: Timing::Uniform { t0, rate_hz: 32.0 },
        samples: values,
    }
}

#[test]
fn scl_is_the_window_mean_and_needs_coverage() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    // 4 µS with a 0.5 Hz, ±10 nS ripple (a real signal is never exactly flat).
    for s in 0..20u64 {
        let v: Vec<f64> = (0..32)
            .map(|i| 4.0 + 0.01 * (std::f64::consts::PI * (s as f64 + i as f64 / 32.0)).sin())
            .collect();
        f.on_chunk(&eda_chunk(s, s as f64, v)).unwrap();
    }
    assert_eq!(f.frame(5.0).values[2], None, "window not yet covered");
    let v = f.frame(19.9).values[2].unwrap();
    assert!((v - 4.0).abs() < 1e-4, "{v}");
    assert_eq!(f.frame(19.9).values[3], None, "SCR rate needs 60 s");
    // 30 s later nothing new arrived: stale, no features.
    assert_eq!(f.frame(50.0).values[2], None);
    assert_eq!(f.quality(StreamKind::Eda, 50.0), Some(Quality::Stale));
}

#[test]
fn a_flat_eda_line_is_flagged_not_used() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    for s in 0..20u64 {
        f.on_chunk(&eda_chunk(s, s as f64, vec![4.0; 32])).unwrap();
    }
    assert_eq!(f.quality(StreamKind::Eda, 19.9), Some(Quality::Flat));
    assert_eq!(f.frame(19.9).values[2], None);
}

#[test]
fn implausible_eda_is_flagged_not_used() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    for s in 0..20u64 {
        // raw ADC-like units in a stream declared µS
        f.on_chunk(&eda_chunk(s, s as f64, vec![512.0; 32]))
            .unwrap();
    }
    assert_eq!(f.quality(StreamKind::Eda, 19.9), Some(Quality::OutOfRange));
    assert_eq!(f.frame(19.9).values[2], None);
}

#[test]
fn an_rr_stream_of_implausible_intervals_is_low_quality_not_streaming() {
    // RR sent in seconds instead of ms: every interval is rejected.
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    let mut t = 0.0;
    for seq in 0..30u64 {
        t += 0.85;
        f.on_chunk(&Chunk {
            raw: None,
            meta: None,
            participant: ParticipantId::new("p").unwrap(),
            kind: StreamKind::Rr,
            seq,
            host_t: t,
            timing: Timing::Events(vec![t]),
            samples: vec![0.85],
        })
        .unwrap();
    }
    assert_eq!(f.quality(StreamKind::Rr, t), Some(Quality::OutOfRange));
    assert_eq!(f.frame(t).values[0], None);
    assert_eq!(f.quality(StreamKind::Rr, t + 6.0), Some(Quality::Stale));
}

/// A spiky ECG-like waveform with beats every `rr_s`, in chunks of `chunk` samples.
fn ecg_chunks(fs: f64, seconds: f64, rr_s: f64, chunk: usize) -> Vec<Chunk> {
    let n = (seconds * fs) as usize;
    let x: Vec<f64> = (0..n)
        .map(|i| {
            let t = i as f64 / fs;
            let phase = (t % rr_s) - 0.2;
            let r = (1.0 - phase.abs() / 0.015).max(0.0);
            r - 0.2 * (1.0 - (phase - 0.03).abs() / 0.02).max(0.0)
                + 0.05 * (2.0 * std::f64::consts::PI * 0.25 * t).sin()
        })
        .collect();
    x.chunks(chunk)
        .enumerate()
        .map(|(s, v)| Chunk {
            raw: None,
            meta: None,
            participant: ParticipantId::new("p").unwrap(),
            kind: StreamKind::Ecg,
            seq: s as u64,
            host_t: (s * chunk + v.len()) as f64 / fs,
            timing: Timing::Uniform {
                t0: (s * chunk) as f64 / fs,
                rate_hz: fs,
            },
            samples: v.to_vec(),
        })
        .collect()
}

#[test]
fn an_ecg_stream_gives_heart_rate_from_its_detected_beats() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    for c in ecg_chunks(500.0, 70.0, 0.8, 130) {
        f.on_chunk(&c).unwrap();
    }
    assert_eq!(f.quality(StreamKind::Ecg, 69.9), Some(Quality::Good));
    let frame = f.frame(69.9);
    let hr = frame.values[0].expect("HR from the ECG");
    assert!((hr - 75.0).abs() < 0.5, "{hr}");
    assert_eq!(frame.sources[0], StreamKind::Ecg);
    // A metronome: successive differences are ~0.
    let rmssd = frame.values[1].expect("RMSSD from the ECG");
    assert!(rmssd < 3.0, "{rmssd}");
    assert_eq!(frame.sources[1], StreamKind::Ecg);
}

#[test]
fn a_flat_ecg_is_low_quality_with_its_reason_and_gives_no_heart_feature() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    for (s, t0) in (0..30).map(|s| (s, s as f64)) {
        f.on_chunk(&Chunk {
            raw: None,
            meta: None,
            participant: ParticipantId::new("p").unwrap(),
            kind: StreamKind::Ecg,
            seq: s,
            host_t: t0 + 1.0,
            timing: Timing::Uniform { t0, rate_hz: 250.0 },
            samples: vec![0.1; 250],
        })
        .unwrap();
    }
    let q = f.quality(StreamKind::Ecg, 29.9).unwrap();
    assert!(matches!(q, Quality::Signal(_)), "{q:?}");
    assert_eq!(f.frame(29.9).values[0], None);
}

#[test]
fn an_ecg_rate_without_a_detector_is_said_once_and_is_low_quality() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    let chunk = |seq: u64| Chunk {
        raw: None,
        meta: None,
        participant: ParticipantId::new("p").unwrap(),
        kind: StreamKind::Ecg,
        seq,
        host_t: seq as f64 + 1.0,
        timing: Timing::Uniform {
            t0: seq as f64,
            rate_hz: 20.0,
        },
        samples: vec![0.0; 20],
    };
    assert!(matches!(
        f.on_chunk(&chunk(0)),
        Err(FeatureError::BeatRate { .. })
    ));
    assert!(f.on_chunk(&chunk(1)).is_ok(), "said once");
    assert_eq!(
        f.quality(StreamKind::Ecg, 1.5),
        Some(Quality::Signal(SignalIssue::UnsupportedRate))
    );
}

#[test]
fn suspect_rr_samples_are_kept_but_never_differenced() {
    // Chunks of three intervals; the middle one of the second chunk is flagged.
    let rrs = [
        [900.0, 920.0, 880.0],
        [910.0, 1050.0, 890.0],
        [905.0, 915.0, 895.0],
    ];
    let run = |flag: bool| {
        let mut f = ParticipantFeatures::new(FeatureConfig::default());
        let mut t = 0.0;
        for (seq, chunk) in rrs.iter().enumerate() {
            let times: Vec<f64> = chunk
                .iter()
                .map(|rr| {
                    t += rr / 1000.0;
                    t
                })
                .collect();
            let meta = (flag && seq == 1).then(|| {
                Box::new(crate::model::ChunkMeta {
                    suspect: vec![1],
                    time_uncertainty_s: Some(0.05),
                })
            });
            f.on_chunk(&Chunk {
                raw: None,
                meta,
                participant: ParticipantId::new("p").unwrap(),
                kind: StreamKind::Rr,
                seq: seq as u64,
                host_t: t,
                timing: Timing::Events(times),
                samples: chunk.to_vec(),
            })
            .unwrap();
        }
        let w = f.rr.as_mut().expect("an RR window");
        w.flush();
        w.beats().map(|b| (b.rr_ms, b.follows)).collect::<Vec<_>>()
    };
    let plain = run(false);
    let flagged = run(true);
    assert_eq!(plain.len(), 9);
    assert_eq!(flagged.len(), 9, "the suspect beat is kept");
    assert_eq!(flagged[4].0, 1050.0);
    for (i, (p, q)) in plain.iter().zip(&flagged).enumerate() {
        assert_eq!(p.0, q.0);
        let want = if i == 4 || i == 5 { false } else { p.1 };
        assert_eq!(q.1, want, "beat {i}");
    }
    assert!(
        plain[4].1 && plain[5].1,
        "unflagged, both differences count"
    );
}

fn rr_chunk(seq: u64, t: f64, rr: f64) -> Chunk {
    Chunk {
        raw: None,
        meta: None,
        participant: ParticipantId::new("p").unwrap(),
        kind: StreamKind::Rr,
        seq,
        host_t: t,
        timing: Timing::Events(vec![t]),
        samples: vec![rr],
    }
}

/// Feeds `secs` of beats with 20 ms of 0.1 Hz and 30 ms of 0.25 Hz modulation, and EDA at 32 Hz
/// with a 0.1 Hz, 0.2 µS ripple; returns the frames of every tick.
fn spectral_run(secs: f64, gap_at: Option<f64>) -> Vec<FeatureFrame> {
    let tau = 2.0 * std::f64::consts::PI;
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    let (mut t_beat, mut seq, mut eda_i) = (0.0, 0u64, 0usize);
    let mut frames = Vec::new();
    let mut gapped = false;
    for tick in 1..=(secs * 4.0) as usize {
        let t = tick as f64 / 4.0;
        if let Some(g) = gap_at
            && !gapped
            && t >= g
        {
            f.on_gap(StreamKind::Rr);
            f.on_gap(StreamKind::Eda);
            gapped = true;
        }
        loop {
            let rr = 900.0 + 20.0 * (tau * 0.1 * t_beat).sin() + 30.0 * (tau * 0.25 * t_beat).sin();
            if t_beat + rr / 1000.0 > t {
                break;
            }
            t_beat += rr / 1000.0;
            f.on_chunk(&rr_chunk(seq, t_beat, rr)).unwrap();
            seq += 1;
        }
        let v: Vec<f64> = (0..8)
            .map(|j| {
                let ts = (eda_i + j) as f64 / 32.0;
                5.0 + 0.2 * (tau * 0.1 * ts).sin()
            })
            .collect();
        let c = Chunk {
            timing: Timing::Uniform {
                t0: eda_i as f64 / 32.0,
                rate_hz: 32.0,
            },
            ..eda_chunk(seq, t, v)
        };
        eda_i += 8;
        f.on_chunk(&c).unwrap();
        frames.push(f.frame(t));
    }
    frames
}

#[test]
fn spectral_features_appear_after_their_windows_and_update_every_five_seconds() {
    let frames = spectral_run(200.0, None);
    let at = |t: f64| frames[(t * 4.0) as usize - 1];
    // Before 130 s of beats: a reason, no number.
    assert_eq!(
        at(100.0).spectral.hrv,
        Some(Err(HrvSpectrumIssue::ShortWindow))
    );
    assert_eq!(at(100.0).spectral.eda, Some(Err(EdaSympIssue::ShortWindow)));
    let last = at(200.0).spectral;
    let h = last.hrv.unwrap().unwrap();
    // Sines of 20 and 30 ms: 200 and 450 ms².
    assert!((h.lf_ms2 / 200.0 - 1.0).abs() < 0.2, "{h:?}");
    assert!((h.hf_ms2 / 450.0 - 1.0).abs() < 0.2, "{h:?}");
    assert!((h.hf_peak_hz - 0.25).abs() <= 1.0 / 64.0, "{h:?}");
    assert_eq!(last.hrv_source, Some(StreamKind::Rr));
    let e = last.eda.unwrap().unwrap();
    // 0.2 µS at 0.1 Hz: 0.02 µS², times the square of the Chebyshev low-pass's gain at 0.1 Hz
    // (0.9643 at 32 Hz, scipy; its 1 dB ripple lies between 0.891 and 1).
    assert!(
        (e.symp_us2 / (0.02 * 0.9643f64.powi(2)) - 1.0).abs() < 0.03,
        "{e:?}"
    );
    assert!(e.sympn > 0.9, "{e:?}");
    // Computed once per 5 s, carried in between.
    let times: std::collections::BTreeSet<u64> = frames
        .iter()
        .filter_map(|f| f.spectral.computed_t)
        .map(|t| (t * 4.0) as u64)
        .collect();
    // At once when a stream appears (EDA at the first tick, RR at its first beat, tick 4);
    // then every 5 s on the participant's phase (0 here).
    let times: Vec<u64> = times.into_iter().collect();
    assert_eq!(times[..3], [1, 4, 20], "{times:?}");
    assert_eq!(times.len(), 42, "{times:?}");
    assert!(times[2..].windows(2).all(|w| w[1] - w[0] == 20));
}

#[test]
fn a_gap_empties_the_spectral_windows_and_they_refill() {
    let frames = spectral_run(300.0, Some(150.0));
    let at = |t: f64| frames[(t * 4.0) as usize - 1].spectral;
    assert!(matches!(at(149.0).hrv, Some(Ok(_))));
    assert!(matches!(at(149.0).eda, Some(Ok(_))));
    assert_eq!(at(160.0).hrv, Some(Err(HrvSpectrumIssue::ShortWindow)));
    assert_eq!(at(160.0).eda, Some(Err(EdaSympIssue::ShortWindow)));
    assert!(matches!(at(290.0).hrv, Some(Ok(_))));
    assert!(matches!(at(290.0).eda, Some(Ok(_))));
}

#[test]
fn a_stream_that_goes_stale_loses_its_spectral_value_at_once() {
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    let tau = 2.0 * std::f64::consts::PI;
    let mut t_beat = 0.0;
    let mut seq = 0;
    while t_beat < 150.0 {
        let rr = 900.0 + 20.0 * (tau * 0.1 * t_beat).sin() + 30.0 * (tau * 0.25 * t_beat).sin();
        t_beat += rr / 1000.0;
        f.on_chunk(&rr_chunk(seq, t_beat, rr)).unwrap();
        seq += 1;
    }
    assert!(matches!(f.frame(150.0).spectral.hrv, Some(Ok(_))));
    // 6 s without a beat: stale; the spectrum goes with the stream, before its next update.
    let s = f.frame(156.25).spectral;
    assert_eq!(s.hrv, Some(Err(HrvSpectrumIssue::NoSignal)), "{s:?}");
    // A participant without EDA has nothing to say about it.
    assert_eq!(s.eda, None);
}

#[test]
fn a_features_line_with_only_spectral_values_needs_their_streams_consent() {
    use crate::consent::Purpose;
    use crate::consent::needs::{Need, needs};
    use crate::dsp::eda_symp::EdaSymp;
    use crate::engine::event::EventBody;
    let mut f = FeatureFrame::empty(200.0);
    f.spectral.eda = Some(Ok(EdaSymp {
        symp_us2: 0.01,
        sympn: 0.6,
        total_us2: 0.017,
        end_s: 200.0,
    }));
    f.spectral.hrv = Some(Err(HrvSpectrumIssue::NoSignal));
    f.spectral.hrv_source = Some(StreamKind::Ecg);
    let n = needs(&EventBody::Features(ParticipantId::new("p").unwrap(), f));
    for (k, p) in [
        (StreamKind::Eda, Purpose::Process),
        (StreamKind::Eda, Purpose::ShareFeatures),
        (StreamKind::Ecg, Purpose::ShareFeatures),
    ] {
        assert!(n.contains(&Need::Stream(k, p)), "{k:?} {p:?}: {n:?}");
    }
}

#[test]
fn a_gap_clears_the_carried_spectral_values_at_once() {
    let frames = spectral_run(300.0, Some(151.0));
    let at = |t: f64| frames[(t * 4.0) as usize - 1].spectral;
    assert!(matches!(at(150.0).hrv, Some(Ok(_))));
    for t in [151.0, 152.0, 154.75] {
        assert_eq!(at(t).hrv, Some(Err(HrvSpectrumIssue::ShortWindow)), "{t}");
        assert_eq!(at(t).eda, Some(Err(EdaSympIssue::ShortWindow)), "{t}");
    }
}

#[test]
fn the_live_hrv_spectrum_uses_its_full_span() {
    let frames = spectral_run(300.0, None);
    let used: std::collections::BTreeSet<u64> = frames
        .iter()
        .filter_map(|f| f.spectral.hrv.and_then(|r| r.ok()))
        .map(|h| h.used_s as u64)
        .collect();
    assert_eq!(used, [128].into(), "{used:?}");
}

#[test]
fn out_of_range_eda_never_lies_inside_a_reported_window() {
    // 5 µS with a 0.1 Hz ripple, then 0 µS (lost contact) for 200–220 s, then normal again.
    let tau = 2.0 * std::f64::consts::PI;
    let mut f = ParticipantFeatures::new(FeatureConfig::default());
    let mut ok_after = Vec::new();
    for (seq, tick) in (1..=(400 * 4)).enumerate() {
        let t = f64::from(tick) / 4.0;
        let v: Vec<f64> = (0..8)
            .map(|j| {
                let ts = t - 0.25 + f64::from(j) / 32.0;
                if (200.0..220.0).contains(&ts) {
                    0.0
                } else {
                    5.0 + 0.2 * (tau * 0.1 * ts).sin()
                }
            })
            .collect();
        let c = Chunk {
            timing: Timing::Uniform {
                t0: t - 0.25,
                rate_hz: 32.0,
            },
            ..eda_chunk(seq as u64, t, v)
        };
        f.on_chunk(&c).unwrap();
        let fr = f.frame(t);
        if let Some(Ok(e)) = fr.spectral.eda
            && t > 200.0
        {
            ok_after.push((t, e));
        }
    }
    let first = ok_after
        .first()
        .expect("EDASymp again after the contact loss");
    // The window must start after the bad stretch (and the 10 s the quality check looks back).
    assert!(first.0 - 128.0 >= 220.0, "{:?}", first);
    for (t, e) in &ok_after {
        assert!((e.symp_us2 / 0.0186 - 1.0).abs() < 0.1, "at {t}: {e:?}");
    }
}
