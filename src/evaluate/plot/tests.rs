use super::*;
use crate::engine::EngineConfig;
use crate::evaluate::run_simulated;
use crate::model::ParticipantId;
use crate::simulate::cohort::CohortScenario;
use std::collections::HashSet;

fn tsst() -> PersonRun {
    run_simulated(
        CohortScenario::Tsst,
        1,
        0,
        Some(600.0),
        &EngineConfig::default(),
    )
}

fn empty() -> PersonRun {
    PersonRun {
        participant: ParticipantId::new("empty").unwrap(),
        scenario: "nothing".into(),
        seed: None,
        segments: Vec::new(),
        duration_s: 0.0,
        features: Vec::new(),
        decisions: Vec::new(),
        generator: None,
    }
}

/// Width and height from a PNG's signature and IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 24, "{} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn colours(rgb: &[u8]) -> HashSet<(u8, u8, u8)> {
    rgb.chunks_exact(3).map(|p| (p[0], p[1], p[2])).collect()
}

#[test]
fn a_real_run_becomes_a_png_of_the_right_size() {
    let run = tsst();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim-001.png");
    plot_person(&run, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(png_size(&bytes), SIZE);
    assert!(bytes.len() > 20_000, "{} bytes", bytes.len());
}

#[test]
fn the_picture_has_data_and_the_action_colours() {
    let run = tsst();
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    render_rgb(&run, &mut rgb).unwrap();
    let seen = colours(&rgb);
    assert!(seen.len() > 50, "{} colours", seen.len());
    let has = |c: RGBColor| seen.contains(&(c.0, c.1, c.2));
    for c in [HR_COLOUR, RMSSD_COLOUR, SCL_COLOUR, AROUSAL_COLOUR, HOLD] {
        assert!(has(c), "{c:?} missing");
    }
    // The engine calibrates first, then decides.
    assert!(has(action_colour(Action::Hold, true)));
    let acted = [Action::EaseOff, Action::Escalate]
        .into_iter()
        .filter(|&a| {
            run.decisions
                .iter()
                .any(|d| d.action == a && !is_preliminary(d.rule))
        });
    for a in acted {
        assert!(has(action_colour(a, false)), "{a:?} band missing");
    }
    let white = rgb
        .chunks_exact(3)
        .filter(|p| p == &[255, 255, 255])
        .count();
    let share = white as f64 / f64::from(SIZE.0 * SIZE.1);
    assert!((0.1..0.98).contains(&share), "white share {share}");
}

#[test]
fn an_unwritable_path_is_an_error_not_a_panic() {
    let run = empty();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("p.png");
    assert!(matches!(
        plot_person(&run, &missing),
        Err(PlotError::Draw { .. })
    ));
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("p.png");
    let err = plot_person(&run, &under_file).unwrap_err();
    assert!(matches!(err, PlotError::Draw { .. }), "{err}");
    assert!(!err.to_string().contains('\n'));
    let not_png = dir.path().join("p.jpg");
    assert!(matches!(
        plot_person(&run, &not_png),
        Err(PlotError::NotPng { .. })
    ));
}

#[test]
fn an_empty_run_still_draws_axes() {
    let run = empty();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.png");
    plot_person(&run, &path).unwrap();
    assert_eq!(png_size(&std::fs::read(&path).unwrap()), SIZE);
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    render_rgb(&run, &mut rgb).unwrap();
    // Text and axes, but nothing else.
    assert!(colours(&rgb).len() > 5);
}

#[test]
fn gaps_break_lines_and_decimation_keeps_the_envelope() {
    let pts = [
        (0.0, Some(1.0)),
        (0.25, Some(2.0)),
        (0.5, None),
        (0.75, Some(3.0)),
        (10.0, Some(4.0)),
    ];
    let r = runs(pts.into_iter());
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(r[0].len(), 2);

    let many: Vec<(f64, f64)> = (0..10_000)
        .map(|i| (f64::from(i) / 100.0, f64::from(i % 7)))
        .collect();
    let d = decimate(&many, &(0.0..100.0), 100);
    assert!(d.len() <= 400, "{}", d.len());
    assert!(d.iter().any(|p| p.1 == 0.0) && d.iter().any(|p| p.1 == 6.0));
    assert_eq!(d.first(), many.first());
    assert_eq!(d.last(), many.last());
    assert!(d.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn action_bands_merge_and_stop_at_gaps() {
    let d = |t: f64, action| DecisionPoint {
        t,
        action,
        arousal: None,
        rule: Rule::BaselineArousal,
    };
    let bands = action_bands(&[
        d(0.0, Action::Hold),
        d(0.25, Action::Hold),
        d(0.5, Action::EaseOff),
        d(30.0, Action::EaseOff),
    ]);
    assert_eq!(bands.len(), 3, "{bands:?}");
    assert_eq!(bands[0].2, HOLD);
    assert!((bands[1].1 - (0.5 + MAX_GAP_S) / 60.0).abs() < 1e-9);
}

/// Writes a sample picture and the time per plot: `cargo test --release -- --ignored --nocapture
/// sample_plot` (`ATTUNE_PLOT_SAMPLE` names the file, `/tmp/attune-plot-sample.png` otherwise).
#[test]
#[ignore]
fn sample_plot() {
    let run = run_simulated(
        CohortScenario::Tsst,
        1,
        0,
        Some(2400.0),
        &EngineConfig::default(),
    );
    let path = std::env::var("ATTUNE_PLOT_SAMPLE")
        .unwrap_or_else(|_| "/tmp/attune-plot-sample.png".into());
    let n = 10;
    let start = std::time::Instant::now();
    for _ in 0..n {
        plot_person(&run, Path::new(&path)).unwrap();
    }
    let per = start.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "{} features, {} decisions: {per:.1} ms per plot, {} KB, {path}",
        run.features.len(),
        run.decisions.len(),
        size / 1024
    );
}

/// Writes one picture per scenario (their default lengths), a run with gaps and an empty run
/// to `/tmp/attune-plot-<name>.png`, to look at: `cargo test -- --ignored scenario_gallery`.
#[test]
#[ignore]
fn scenario_gallery() {
    for scenario in crate::simulate::cohort::ALL_SCENARIOS {
        let run = run_simulated(scenario, 1, 3, None, &EngineConfig::default());
        let path = format!("/tmp/attune-plot-{}.png", scenario.name());
        plot_person(&run, Path::new(&path)).unwrap();
    }
    let mut gappy = tsst();
    for f in gappy
        .features
        .iter_mut()
        .filter(|f| (120.0..200.0).contains(&f.t))
    {
        f.values = [None; 4];
    }
    gappy.features.retain(|f| !(300.0..330.0).contains(&f.t));
    gappy.decisions.retain(|d| !(300.0..330.0).contains(&d.t));
    plot_person(&gappy, Path::new("/tmp/attune-plot-gaps.png")).unwrap();
    plot_person(&empty(), Path::new("/tmp/attune-plot-empty.png")).unwrap();
}
