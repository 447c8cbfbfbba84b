//! `attune calibrate --participant ID --live [--minutes M]`: a new calibration inside the
//! running session (edge).
//!
//! The command sends a `calibrate` marker (`{"minutes": M}`) over the control socket, so the
//! request is in the session's log and recording like any marker, and a replay of the recording
//! calibrates at the same moment. From the marker on, the participant's tracker collects a new
//! calibration of `M` minutes of complete features (the reference in use stays until it is
//! done, `Tracker::recalibrate`). When it completes, the daemon stores it in the profile at once
//! (only with `profile` consent for every stream; otherwise it serves this session only) and
//! does not take the same calibration again at the session's end.
//!
//! The command waits, reading `attune status` every half second, until the participant's
//! completed calibrations go up, then prints one JSON object: `participant`, `live` (true),
//! `minutes`, `requested_t` (session time of the marker), `kind` (the reference now in use),
//! `suspect`, `centres` (of the reference in use, in each feature's unit) and `profile` (what
//! the daemon did with the stored profile: `stored: …`, `refused: …`, `session_only: …`,
//! `failed: …`). It gives up (the calibration carries on in the daemon) if the session ends, or
//! after twice the calibration's length plus two minutes of session time without a result,
//! which means the participant's features were incomplete: `attune status` shows which stream.

use super::super::Common;
use super::super::status::ask;
use crate::consent::control::{Request, Response};
use crate::model::ParticipantId;
use crate::pipeline::CALIBRATE_MINUTES;
use anyhow::bail;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{Duration, Instant};

/// The participant's entry in a status object.
fn entry<'a>(status: &'a Value, p: &ParticipantId) -> Option<&'a Value> {
    status["participants"]
        .as_array()?
        .iter()
        .find(|e| e["id"].as_str() == Some(p.as_str()))
}

fn status(common: &Common) -> anyhow::Result<Value> {
    match ask(common, &Request::Status)? {
        Response::Status { status } => Ok(status),
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// Runs `calibrate --live` (module doc).
pub fn run(common: &Common, p: &ParticipantId, minutes: Option<f64>) -> anyhow::Result<()> {
    let minutes = minutes.unwrap_or(3.0);
    let (lo, hi) = CALIBRATE_MINUTES;
    if !(lo..=hi).contains(&minutes) {
        bail!("--minutes must be between {lo} and {hi}, not {minutes}");
    }
    let before = status(common)?;
    let Some(e) = entry(&before, p) else {
        bail!("participant {p} is not in this session; nothing was calibrated");
    };
    let completed = e["baseline"]["calibration"]["completed"]
        .as_u64()
        .unwrap_or(0);
    let speed = before["session"]["speed"]
        .as_f64()
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0);
    let req = Request::Mark {
        participant: p.clone(),
        label: "calibrate".into(),
        data: Some(json!({ "minutes": minutes })),
    };
    let requested_t = match ask(common, &req)? {
        Response::Marked { t, .. } => t,
        Response::Error { message } => bail!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    };
    if !common.quiet {
        eprintln!(
            "attune: calibrating {p} for {minutes} min of complete features from t = {requested_t:.1} s; stay at rest"
        );
    }
    let limit = Duration::from_secs_f64(((2.0 * minutes * 60.0 + 120.0) / speed).max(5.0));
    let began = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = match status(common) {
            Ok(s) => s,
            Err(_) => bail!(
                "the session ended before the calibration of {p} completed; nothing was stored"
            ),
        };
        let Some(e) = entry(&now, p) else {
            bail!("{p} left the session before the calibration completed; nothing was stored");
        };
        let b = &e["baseline"];
        if b["calibration"]["completed"].as_u64().unwrap_or(0) > completed {
            let summary = json!({
                "participant": p.as_str(),
                "live": true,
                "minutes": minutes,
                "requested_t": requested_t,
                "kind": b["kind"],
                "suspect": b["suspect"],
                "centres": b["centres"],
                "profile": b["profile"],
            });
            writeln!(std::io::stdout(), "{summary}")?;
            return Ok(());
        }
        if began.elapsed() > limit {
            bail!(
                "the calibration of {p} has not completed after {:.0} s of session time: its features were incomplete (see `attune status`); it carries on in the daemon",
                began.elapsed().as_secs_f64() * speed
            );
        }
    }
}
