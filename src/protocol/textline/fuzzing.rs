//! The body of the cargo-fuzz target `fuzz/fuzz_targets/textline.rs`, kept in the library so
//! that `cargo test` runs exactly what the fuzzer runs. It panics only on a finding.

use super::{ChecksumMode, Settings, TextlineHost, ValueKind};
use crate::protocol::{Decoded, Host, HostOut, Phase, Stats};

/// Everything a session produced.
type Run = (Vec<Decoded>, Vec<String>, Stats, Phase, Option<String>);

/// Feeds `data` to text-line hosts and checks that nothing panics and that the output does not
/// depend on how the stream is split.
///
/// Byte 0 picks the settings (time column, checksum mode, prefix, value kind, settle run,
/// rate); bytes 1..5 pick the chunk sizes (1..=32, cycled). The whole of `data` (those bytes
/// included) goes, whole and split, to a host already past the start-up junk and to hosts at
/// the start (every byte at `now` 0 s, and at 3 s, past `settle_s`), each then ticked long after
/// its deadline. Both feeds must give the same frames, gaps, notes, counters and phase, and the
/// output must be consistent: frame indexes count frames and lost frames, device times never go
/// back, no frame before settling.
pub fn fuzz(data: &[u8]) {
    let sel = data.first().copied().unwrap_or(0);
    let s = settings(sel);
    let sizes: Vec<usize> = data
        .iter()
        .skip(1)
        .take(4)
        .map(|&b| usize::from(b % 32) + 1)
        .collect();
    for (settled, now) in [(true, 0.0), (false, 0.0), (false, 3.0)] {
        let whole = run(&s, settled, now, data, &[]);
        let split = run(&s, settled, now, data, &sizes);
        assert_eq!(
            whole, split,
            "split changed the output (settled {settled}, now {now})"
        );
        check(&whole, data.len());
    }
}

/// The settings byte 0 selects (doc of [`fuzz`]).
fn settings(sel: u8) -> Settings {
    let bit = |i: u8| sel >> i & 1 == 1;
    let mut s = Settings::default();
    if bit(0) {
        (s.time_column, s.value_column) = (Some(0), 1);
    }
    s.checksum = match sel >> 1 & 3 {
        1 => ChecksumMode::Required,
        2 => ChecksumMode::Off,
        _ => ChecksumMode::Auto,
    };
    if bit(3) {
        s.prefix = Some("GSR:".into());
    }
    match sel >> 4 & 3 {
        1 => s.value = ValueKind::Ohm,
        2 => s.value = ValueKind::Us,
        3 => s.cal = 480.0,
        _ => {}
    }
    if bit(6) {
        s.settle_lines = 1;
    }
    if bit(7) {
        s.rate_hz = 1000.0;
    }
    s
}

/// One session: `data` in chunks of `sizes` (cycled; all at once if empty), then a late tick.
fn run(s: &Settings, settled: bool, now: f64, data: &[u8], sizes: &[usize]) -> Run {
    let mut out = HostOut::default();
    let mut host = if settled {
        TextlineHost::settled(s)
    } else {
        TextlineHost::new(s)
    };
    host.start(0.0, &mut out);
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        host.on_bytes(now, chunk, &mut out);
        rest = tail;
        i += 1;
    }
    host.on_tick(now + 100.0, &mut out);
    assert!(out.write.is_empty(), "a text-line host never writes");
    let device = host.device().map(str::to_owned);
    (
        out.decoded,
        out.notes,
        host.stats(),
        host.phase().clone(),
        device,
    )
}

/// The output's own consistency.
fn check((decoded, _, stats, phase, _): &Run, bytes: usize) {
    assert_eq!(stats.bytes, bytes as u64, "bytes counted");
    let (mut frames, mut lost, mut last_t) = (0u64, 0u64, f64::NEG_INFINITY);
    for d in decoded {
        match d {
            Decoded::Frame(f) => {
                assert_eq!(
                    f.index,
                    frames + lost,
                    "index = frames + lost frames before"
                );
                assert!(
                    f.values.iter().all(|v| v.raw.is_finite()),
                    "finite raw values"
                );
                if let Some(t) = f.device_t {
                    assert!(t >= last_t, "device time went back: {t} after {last_t}");
                    last_t = t;
                }
                frames += 1;
            }
            Decoded::Gap { frames: n, .. } => lost += n,
        }
    }
    assert_eq!(
        (stats.frames, stats.frames_lost),
        (frames, lost),
        "stats match the output"
    );
    if *phase != Phase::Streaming {
        assert_eq!(frames + lost, 0, "output without settling");
    }
}
