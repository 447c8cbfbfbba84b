//! One picture per person: a PNG of the session on one time axis.
//!
//! Stacked panels share the x axis (minutes): heart rate, RMSSD, skin conductance level with
//! the SCR rate on a twin axis, arousal, and a thin band of the action the policy took at each
//! tick. The recording's labelled segments are shaded in every panel (coloured by
//! [`SegmentClass`]) and named above the top panel. Missing values break the lines.
//!
//! Text is drawn with an embedded font (DejaVu Sans, its licence next to this file), so nothing
//! from the system is needed at run time. Long series are decimated to the first, minimum,
//! maximum and last value per pixel column, which keeps the envelope and makes a plot cost the
//! same for a 10 minute and a 2 hour session.

use super::{DecisionPoint, PersonRun};
use crate::policy::{Action, Rule};
use crate::simulate::cohort::{SegmentClass, class_of};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

#[cfg(test)]
mod tests;

/// Why a picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing or encoding failed.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The file name does not end in `.png`.
    #[error("cannot draw {path}: the file name must end in .png")]
    NotPng {
        /// The file.
        path: String,
    },
    /// The embedded font could not be loaded.
    #[error("cannot load the embedded plot font")]
    Font,
}

/// Whether this build can draw.
pub const AVAILABLE: bool = true;

/// Picture size, px.
pub const SIZE: (u32, u32) = (1600, 1000);

/// The embedded font (DejaVu Sans; see `DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("DejaVuSans.ttf");
/// The family every text in the picture uses (plotters' default family, so that nothing can
/// fall back to a font that is not registered).
const FAMILY: &str = "sans-serif";

/// Registers the embedded font once per process.
fn ensure_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// Writes `run` as a PNG at `path`: features, arousal, actions and segments on one time axis.
pub fn plot_person(run: &PersonRun, path: &Path) -> Result<(), PlotError> {
    let shown = path.display().to_string();
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        return Err(PlotError::NotPng { path: shown });
    }
    ensure_font()?;
    let fail = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: shown.clone(),
        message: e.to_string(),
    };
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(&root, run).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// Draws `run` into an RGB buffer of [`SIZE`] (`SIZE.0 * SIZE.1 * 3` bytes), for tests and
/// callers that encode the picture themselves.
pub fn render_rgb(run: &PersonRun, buffer: &mut [u8]) -> Result<(), PlotError> {
    ensure_font()?;
    let fail = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: "<buffer>".into(),
        message: e.to_string(),
    };
    let expected = (SIZE.0 * SIZE.1 * 3) as usize;
    if buffer.len() != expected {
        return Err(fail(&format!(
            "buffer has {} bytes, not {expected}",
            buffer.len()
        )));
    }
    let root = BitMapBackend::with_buffer(buffer, SIZE).into_drawing_area();
    draw(&root, run).map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

// Layout, px.
const TITLE_H: u32 = 46;
const SEGMENT_STRIP_H: u32 = 44;
const HR_H: u32 = 230 + SEGMENT_STRIP_H;
const RMSSD_H: u32 = 190;
const EDA_H: u32 = 210;
const AROUSAL_H: u32 = 170;
const Y_LABEL_W: u32 = 92;
const MARGIN_X: u32 = 14;
const X_LABEL_H: u32 = 48;

// Colours.
const HR_COLOUR: RGBColor = RGBColor(200, 40, 60);
const RMSSD_COLOUR: RGBColor = RGBColor(30, 110, 190);
const SCL_COLOUR: RGBColor = RGBColor(20, 140, 130);
const SCR_COLOUR: RGBColor = RGBColor(200, 110, 0);
const AROUSAL_COLOUR: RGBColor = RGBColor(110, 60, 170);
const EASE_OFF: RGBColor = RGBColor(214, 45, 40);
const HOLD: RGBColor = RGBColor(185, 185, 185);
const ESCALATE: RGBColor = RGBColor(40, 160, 60);
const GRID: RGBColor = RGBColor(232, 232, 232);
const TEXT: RGBColor = RGBColor(40, 40, 40);

/// The shading colour of a segment class.
fn class_colour(class: SegmentClass) -> RGBColor {
    match class {
        SegmentClass::Calm => RGBColor(70, 130, 220),
        SegmentClass::Stress => RGBColor(240, 130, 20),
        SegmentClass::Recovery => RGBColor(160, 90, 200),
        SegmentClass::Other => RGBColor(120, 120, 120),
    }
}

/// `c` mixed with white (`amount` 0 = `c`, 1 = white).
fn lighter(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// `c` mixed with black.
fn darker(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) * (1.0 - amount)).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// Whether the engine was still warming up or calibrating at this decision.
fn is_preliminary(rule: Rule) -> bool {
    matches!(rule, Rule::WarmingUp | Rule::Calibrating)
}

/// The band colour of a decision.
fn action_colour(action: Action, preliminary: bool) -> RGBColor {
    let c = match action {
        Action::EaseOff => EASE_OFF,
        Action::Hold => HOLD,
        Action::Escalate => ESCALATE,
    };
    if preliminary { lighter(c, 0.6) } else { c }
}

/// A time gap longer than this (s) between two samples breaks a line.
const MAX_GAP_S: f64 = 2.0;

/// Splits `(t_s, value)` samples into runs without gaps, converted to minutes.
fn runs(points: impl Iterator<Item = (f64, Option<f64>)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut last_t: Option<f64> = None;
    for (t, v) in points {
        let gap = last_t.is_some_and(|l| t - l > MAX_GAP_S);
        last_t = Some(t);
        match v.filter(|v| v.is_finite()) {
            Some(v) if !gap => current.push((t / 60.0, v)),
            Some(v) => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.push((t / 60.0, v));
            }
            None => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Keeps the first, minimum, maximum and last point of each of `columns` pixel columns over
/// `x` (in time order), so that a line through the result looks like one through all points.
fn decimate(points: &[(f64, f64)], x: &Range<f64>, columns: usize) -> Vec<(f64, f64)> {
    let columns = columns.max(1);
    if points.len() <= 4 * columns {
        return points.to_vec();
    }
    let span = (x.end - x.start).max(f64::EPSILON);
    let column_of = |t: f64| ((t - x.start) / span * columns as f64).floor() as i64;
    let mut out = Vec::with_capacity(4 * columns);
    let mut i = 0;
    while i < points.len() {
        let col = column_of(points[i].0);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < points.len() && column_of(points[j].0) == col {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut keep = [i, lo, hi, j - 1];
        keep.sort_unstable();
        let mut prev = None;
        for k in keep {
            if prev != Some(k) {
                out.push(points[k]);
            }
            prev = Some(k);
        }
        i = j;
    }
    out
}

/// A y range around the values of `series`, `fallback` without values; `floor` bounds it below.
fn y_range(series: &[Vec<(f64, f64)>], fallback: Range<f64>, floor: Option<f64>) -> Range<f64> {
    let (lo, hi) = series
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return fallback;
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(1.0) * 0.02);
    let mut start = lo - pad;
    if let Some(f) = floor {
        start = start.max(f);
    }
    let end = (hi + pad).max(start + 1e-6);
    start..end
}

/// Tick labels without a needless fraction.
fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The x range (minutes) of the picture.
fn x_range(run: &PersonRun) -> Range<f64> {
    let end_s = run
        .features
        .iter()
        .map(|f| f.t)
        .chain(run.decisions.iter().map(|d| d.t))
        .chain(run.segments.iter().map(|s| s.end_s))
        .chain(std::iter::once(run.duration_s))
        .filter(|t| t.is_finite())
        .fold(0.0_f64, f64::max);
    0.0..(end_s / 60.0).max(1.0)
}

/// The shared look of a panel.
struct Panel<'a> {
    y: Range<f64>,
    y_desc: &'a str,
    top_margin: u32,
    x_labels: bool,
    y_labels: usize,
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Builds a panel's chart (with a label area on the right for a twin axis if `right_label_w`
/// is not 0; the same margin otherwise, so that all panels line up).
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    x: &Range<f64>,
    p: &Panel<'_>,
    right_label_w: u32,
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    ChartBuilder::on(area)
        .margin_left(MARGIN_X)
        .margin_right(MARGIN_X + Y_LABEL_W - right_label_w)
        .margin_top(p.top_margin)
        .margin_bottom(6)
        .x_label_area_size(if p.x_labels { X_LABEL_H } else { 0 })
        .y_label_area_size(Y_LABEL_W)
        .right_y_label_area_size(right_label_w)
        .build_cartesian_2d(x.clone(), p.y.clone())
}

/// Draws a panel's mesh and its segment shading.
fn mesh<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    run: &PersonRun,
    p: &Panel<'_>,
) -> DrawResult<DB> {
    let label_font = (FAMILY, 15).into_font().color(&TEXT);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(16)
        .y_labels(p.y_labels)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(GRID)
        .bold_line_style(GRID)
        .axis_style(RGBColor(150, 150, 150))
        .label_style(label_font)
        .axis_desc_style((FAMILY, 16).into_font().color(&TEXT))
        .y_desc(p.y_desc)
        .max_light_lines(1);
    if p.x_labels {
        mesh.x_desc("time (min)");
    }
    if p.y_labels == 0 {
        mesh.disable_y_mesh();
    }
    mesh.draw()?;
    chart.draw_series(run.segments.iter().map(|s| {
        let c = class_colour(class_of(&s.label));
        Rectangle::new(
            [(s.start_s / 60.0, p.y.start), (s.end_s / 60.0, p.y.end)],
            c.mix(0.13).filled(),
        )
    }))?;
    Ok(())
}

/// A single-axis panel with its mesh and shading.
fn simple_panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    run: &PersonRun,
    x: &Range<f64>,
    p: &Panel<'_>,
) -> Result<Chart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = panel(area, x, p, 0)?;
    mesh(&mut chart, run, p)?;
    Ok(chart)
}

/// Draws `series` (already split at gaps) in `colour`, decimated to the chart's width.
fn lines<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    series: &[Vec<(f64, f64)>],
    colour: RGBColor,
    x: &Range<f64>,
) -> DrawResult<DB> {
    let columns = chart.plotting_area().dim_in_pixel().0 as usize;
    for s in series {
        let pts = decimate(s, x, columns);
        if pts.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(pts[0], 1, colour.filled())))?;
        } else {
            chart.draw_series(LineSeries::new(pts, colour.stroke_width(2)))?;
        }
    }
    Ok(())
}

/// A small legend (`(colour, name)` entries, a line each) at the top right of a chart.
fn legend<DB: DrawingBackend>(
    chart: &Chart<'_, DB>,
    entries: &[(RGBColor, &str)],
) -> DrawResult<DB> {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, _) = area.dim_in_pixel();
    let font = (FAMILY, 14).into_font().color(&TEXT);
    let widths: Vec<u32> = entries
        .iter()
        .map(|(_, name)| area.estimate_text_size(name, &font).map(|s| s.0))
        .collect::<Result<_, _>>()?;
    let box_w = widths.iter().max().copied().unwrap_or(0) + 40;
    let box_h = 20 * entries.len() as u32 + 8;
    let x0 = w as i32 - box_w as i32 - 8;
    area.draw(&Rectangle::new(
        [(x0, 6), (x0 + box_w as i32, 6 + box_h as i32)],
        WHITE.mix(0.85).filled(),
    ))?;
    for (i, (c, name)) in entries.iter().enumerate() {
        let y = 16 + 20 * i as i32;
        area.draw(&PathElement::new(
            vec![(x0 + 6, y), (x0 + 28, y)],
            c.stroke_width(3),
        ))?;
        area.draw(&Text::new(
            *name,
            (x0 + 34, y),
            font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Names the segments in the strip above the top panel, in up to two rows.
fn segment_labels<DB: DrawingBackend>(
    hr_area: &DrawingArea<DB, Shift>,
    chart: &Chart<'_, DB>,
    run: &PersonRun,
) -> DrawResult<DB> {
    let font: TextStyle<'_> = (FAMILY, 14).into_font().into();
    let mut row_end = [i32::MIN; 2];
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    let (area_x, area_y) = hr_area.get_base_pixel();
    let mut segments: Vec<_> = run.segments.iter().collect();
    segments.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    for s in segments {
        let c = darker(class_colour(class_of(&s.label)), 0.25);
        let (x_start, _) = chart.backend_coord(&(s.start_s / 60.0, 0.0));
        let (x_end, _) = chart.backend_coord(&(s.end_s / 60.0, 0.0));
        let x_start = x_start.max(x_px.start);
        let x_end = x_end.min(x_px.end);
        let (text_w, _) = hr_area.estimate_text_size(&s.label, &font)?;
        // Centred over a wide band, from its start over a narrow one; kept inside the panel.
        let width = x_end - x_start;
        let mut x = if width > text_w as i32 + 8 {
            x_start + (width - text_w as i32) / 2
        } else {
            x_start + 2
        };
        x = x.min(x_px.end - text_w as i32).max(x_px.start);
        let Some(row) = row_end.iter().position(|&end| x > end + 6) else {
            continue;
        };
        row_end[row] = x + text_w as i32;
        let y = y_px.start - SEGMENT_STRIP_H as i32 + 2 + 18 * row as i32;
        // Coordinates relative to the panel's area; a bar under all rows marks the extent.
        let (rx, ry) = (x - area_x, y - area_y);
        let bar_y = y_px.start - area_y - 6;
        hr_area.draw(&Rectangle::new(
            [
                (x_start - area_x + 1, bar_y),
                (x_end - area_x - 1, bar_y + 2),
            ],
            c.filled(),
        ))?;
        hr_area.draw(&Text::new(
            s.label.clone(),
            (rx, ry),
            font.clone().color(&c),
        ))?;
    }
    Ok(())
}

/// Merges consecutive decisions of the same colour into `(start_min, end_min, colour)` bands;
/// a decision lasts until the next one, at most [`MAX_GAP_S`].
fn action_bands(decisions: &[DecisionPoint]) -> Vec<(f64, f64, RGBColor)> {
    let mut bands: Vec<(f64, f64, RGBColor)> = Vec::new();
    for (i, d) in decisions.iter().enumerate() {
        let next = decisions.get(i + 1).map_or(d.t + 0.25, |n| n.t);
        let end = next.min(d.t + MAX_GAP_S).max(d.t);
        let colour = action_colour(d.action, is_preliminary(d.rule));
        match bands.last_mut() {
            Some(b) if b.2 == colour && (b.1 - d.t / 60.0).abs() < 1e-9 => b.1 = end / 60.0,
            _ => bands.push((d.t / 60.0, end / 60.0, colour)),
        }
    }
    bands
}

/// The title line and the action legend.
fn title<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, run: &PersonRun) -> DrawResult<DB> {
    let seed = run
        .seed
        .map(|s| format!("  ·  seed {s}"))
        .unwrap_or_default();
    let text = format!(
        "{}  ·  {}{seed}  ·  {:.1} min",
        run.participant.as_str(),
        run.scenario,
        run.duration_s / 60.0
    );
    let font = (FAMILY, 24).into_font().color(&TEXT);
    area.draw(&Text::new(
        text,
        (MARGIN_X as i32 + 8, TITLE_H as i32 / 2),
        font.pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    // Action legend, right aligned.
    let font = (FAMILY, 15).into_font().color(&TEXT);
    let entries = [
        (EASE_OFF, "ease_off"),
        (HOLD, "hold"),
        (ESCALATE, "escalate"),
        (lighter(HOLD, 0.6), "calibrating / warming up (lighter)"),
    ];
    let mut x = SIZE.0 as i32 - MARGIN_X as i32 - 8;
    let y = TITLE_H as i32 / 2;
    for (c, name) in entries.iter().rev() {
        let (w, _) = area.estimate_text_size(name, &font)?;
        x -= w as i32;
        area.draw(&Text::new(
            *name,
            (x, y),
            font.clone().pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        x -= 24;
        area.draw(&Rectangle::new([(x, y - 8), (x + 18, y + 8)], c.filled()))?;
        if *c == lighter(HOLD, 0.6) {
            // Show the lighter tones of all three actions.
            area.draw(&Rectangle::new(
                [(x - 40, y - 8), (x - 22, y + 8)],
                lighter(EASE_OFF, 0.6).filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x - 20, y - 8), (x - 2, y + 8)],
                lighter(ESCALATE, 0.6).filled(),
            ))?;
            x -= 42;
        }
        x -= 22;
    }
    Ok(())
}

/// Draws the whole picture on `root`.
fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, run: &PersonRun) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let x = x_range(run);
    let feature = |i: usize| runs(run.features.iter().map(|f| (f.t, f.values[i])));
    let hr = feature(0);
    let rmssd = feature(1);
    let scl = feature(2);
    let scr = feature(3);
    let arousal = runs(run.decisions.iter().map(|d| (d.t, d.arousal)));

    let (title_area, rest) = root.split_vertically(TITLE_H);
    title(&title_area, run)?;
    let (hr_area, rest) = rest.split_vertically(HR_H);
    let (rmssd_area, rest) = rest.split_vertically(RMSSD_H);
    let (eda_area, rest) = rest.split_vertically(EDA_H);
    let (arousal_area, band_area) = rest.split_vertically(AROUSAL_H);

    let mut chart = simple_panel(
        &hr_area,
        run,
        &x,
        &Panel {
            y: y_range(&hr, 50.0..110.0, Some(0.0)),
            y_desc: "HR (bpm)",
            top_margin: SEGMENT_STRIP_H,
            x_labels: false,
            y_labels: 6,
        },
    )?;
    lines(&mut chart, &hr, HR_COLOUR, &x)?;
    segment_labels(&hr_area, &chart, run)?;
    if run.features.is_empty() && run.decisions.is_empty() {
        let area = chart.plotting_area().strip_coord_spec();
        let (w, h) = area.dim_in_pixel();
        area.draw(&Text::new(
            "no features and no decisions",
            (w as i32 / 2, h as i32 / 2),
            (FAMILY, 22)
                .into_font()
                .color(&TEXT)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
    }

    let mut chart = simple_panel(
        &rmssd_area,
        run,
        &x,
        &Panel {
            y: y_range(&rmssd, 0.0..80.0, Some(0.0)),
            y_desc: "RMSSD (ms)",
            top_margin: 6,
            x_labels: false,
            y_labels: 5,
        },
    )?;
    lines(&mut chart, &rmssd, RMSSD_COLOUR, &x)?;

    let eda = Panel {
        y: y_range(&scl, 0.0..10.0, Some(0.0)),
        y_desc: "SCL (µS)",
        top_margin: 6,
        x_labels: false,
        y_labels: 5,
    };
    let chart = panel(&eda_area, &x, &eda, Y_LABEL_W)?;
    let scr_y = y_range(&scr, 0.0..10.0, Some(0.0));
    let scr_y = 0.0..scr_y.end.max(1.0);
    // The twin axis takes the right label area, so the primary mesh comes after it.
    let mut chart = chart.set_secondary_coord(x.clone(), scr_y);
    mesh(&mut chart, run, &eda)?;
    chart
        .configure_secondary_axes()
        .y_labels(5)
        .y_label_formatter(&tick)
        .label_style((FAMILY, 15).into_font().color(&TEXT))
        .axis_desc_style((FAMILY, 16).into_font().color(&TEXT))
        .axis_style(RGBColor(150, 150, 150))
        .y_desc("SCR rate (/min)")
        .draw()?;
    let columns = chart.plotting_area().dim_in_pixel().0 as usize;
    for s in &scr {
        chart.draw_secondary_series(LineSeries::new(
            decimate(s, &x, columns),
            SCR_COLOUR.stroke_width(2),
        ))?;
    }
    for s in &scl {
        chart.draw_series(LineSeries::new(
            decimate(s, &x, columns),
            SCL_COLOUR.stroke_width(2),
        ))?;
    }
    let chart: &Chart<'_, DB> = &chart;
    legend(
        chart,
        &[
            (SCL_COLOUR, "SCL (left, µS)"),
            (SCR_COLOUR, "SCR rate (right, /min)"),
        ],
    )?;

    let mut chart = simple_panel(
        &arousal_area,
        run,
        &x,
        &Panel {
            y: 0.0..1.0,
            y_desc: "arousal (0..1)",
            top_margin: 6,
            x_labels: false,
            y_labels: 5,
        },
    )?;
    lines(&mut chart, &arousal, AROUSAL_COLOUR, &x)?;

    let mut chart = simple_panel(
        &band_area,
        run,
        &x,
        &Panel {
            y: 0.0..1.0,
            y_desc: "action",
            top_margin: 6,
            x_labels: true,
            y_labels: 0,
        },
    )?;
    chart.draw_series(
        action_bands(&run.decisions)
            .into_iter()
            .map(|(a, b, c)| Rectangle::new([(a, 0.0), (b, 1.0)], c.filled())),
    )?;
    Ok(())
}
