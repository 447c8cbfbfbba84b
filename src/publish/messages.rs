//! Subscriber protocol v1 messages (NDJSON), pure: values in, one JSON line out, and the parser
//! for client lines. Specification: `docs/protocol.md`; schema: `docs/protocol.schema.json`.
//!
//! Numbers are rounded for the wire (features and z-scores to 3 decimals, arousal and confidence
//! to 3) so that lines stay short and byte-identical across runs of the same input. No message
//! carries wall-clock time; `t` and `since` are stream time in seconds.

use crate::baseline::score::{DIRECTIONS, SCALES, from_scale};
use crate::engine::event::{Adaptation, State};
use crate::features::{FEATURE_NAMES, FeatureFrame};
use crate::model::ParticipantId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 1;

/// Subscription topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Adaptation decisions.
    Adaptation,
    /// Stream states.
    State,
    /// Feature values.
    Features,
}

/// All topics.
pub const ALL_TOPICS: [Topic; 3] = [Topic::Adaptation, Topic::State, Topic::Features];

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Greeting.
    Hello {
        /// Protocol version the client speaks.
        protocol: u32,
        /// Client name.
        #[serde(default)]
        client: Option<String>,
    },
    /// (Re)subscribe.
    Subscribe {
        /// Participant, or `*`/absent for all.
        #[serde(default)]
        participant: Option<String>,
        /// Topics; absent = all.
        #[serde(default)]
        topics: Option<Vec<Topic>>,
    },
    /// Exercise start/end: becomes a marker in the engine and the recording.
    Exercise {
        /// Participant.
        participant: String,
        /// `start` or `end`.
        event: ExerciseEvent,
        /// The exercise's name, as the app calls it.
        #[serde(default)]
        exercise: Option<String>,
        /// What the exercise aims at (`calm`, `engaged`, `challenge`, or arousal bounds).
        #[serde(default)]
        target: Option<TargetSpec>,
    },
    /// Participant feedback: moves that participant's target band (`policy::target`).
    Feedback {
        /// Participant.
        participant: String,
        /// How the exercise felt.
        rating: FeedbackRating,
    },
    /// Read a participant's consent in force (`consent_query`).
    ConsentQuery {
        /// Participant.
        participant: String,
    },
    /// Change consent (a consent kiosk inside an app); refused unless the daemon's configuration
    /// names the client, which this version cannot do yet.
    ConsentChange {
        /// Participant.
        participant: String,
    },
}

/// An exercise's `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseEvent {
    /// The exercise starts.
    Start,
    /// The exercise ends.
    End,
}

/// A `feedback` message's `rating`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackRating {
    /// Too intense.
    TooIntense,
    /// About right.
    Right,
    /// Too easy.
    TooEasy,
}

/// An exercise's `target`: a name, or explicit arousal bounds `{"low": …, "high": …}` (0..1).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TargetSpec {
    /// `calm`, `engaged` or `challenge`.
    Named(ExerciseTarget),
    /// An arousal band.
    Bounds {
        /// Bottom, 0..1.
        low: f64,
        /// Top, 0..1.
        high: f64,
    },
}

/// An exercise's named `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExerciseTarget {
    /// Calm the person down.
    Calm,
    /// Keep them engaged.
    Engaged,
    /// Challenge them.
    Challenge,
}

/// Why a client line was refused: `(code, message)` for an `error` reply.
pub fn parse_client_line(line: &str) -> Result<ClientMessage, (&'static str, String)> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| ("bad_request", format!("not a JSON object: {e}")))?;
    let ty = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or(("bad_request", "message has no string \"type\"".to_owned()))?
        .to_owned();
    if !matches!(
        ty.as_str(),
        "hello" | "subscribe" | "exercise" | "feedback" | "consent_query" | "consent_change"
    ) {
        return Err(("unknown_type", format!("unknown message type {ty:?}")));
    }
    serde_json::from_value(v).map_err(|e| ("bad_request", format!("bad {ty} message: {e}")))
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `welcome`.
pub fn welcome() -> String {
    json!({"type": "welcome", "protocol": PROTOCOL_VERSION,
           "daemon": concat!("attune ", env!("CARGO_PKG_VERSION"))})
    .to_string()
}

/// `lagged`.
pub fn lagged(skipped: u64) -> String {
    json!({"type": "lagged", "skipped": skipped}).to_string()
}

/// `error`.
pub fn error(code: &str, message: &str) -> String {
    json!({"type": "error", "code": code, "message": message}).to_string()
}

/// `consent`: the purposes in force per stream kind (kinds without any are left out).
pub fn consent(p: &ParticipantId, snap: &crate::consent::ConsentSnapshot) -> String {
    let mut streams = serde_json::Map::new();
    for k in crate::model::ALL_KINDS {
        let purposes: Vec<&str> = crate::consent::ALL_PURPOSES
            .iter()
            .filter(|pu| snap.allows(p, k, **pu))
            .map(|pu| pu.name())
            .collect();
        if !purposes.is_empty() {
            streams.insert(k.name().into(), json!(purposes));
        }
    }
    json!({"type": "consent", "participant": p, "epoch": snap.epoch, "streams": streams})
        .to_string()
}

/// `state`, with the stream's clock mapping (`clock`: offset, skew, latency) once estimated
/// and the source's explanation (`detail`) where there is one.
pub fn state(st: &State) -> String {
    let s = &st.change;
    let mut v = json!({"type": "state", "participant": s.participant, "stream": s.kind.name(),
           "state": s.state.name(), "since": r3(s.since)});
    if let Some(c) = st.clock {
        v["clock"] = json!({"offset_s": r3(c.offset_s), "skew_ppm": (c.skew_ppm * 10.0).round() / 10.0,
                            "latency_s": r3(c.latency_s)});
    }
    if let Some(d) = &st.detail {
        v["detail"] = json!(d);
    }
    v.to_string()
}

/// `x` to 4 significant digits (spectral powers span 1e-4 µS² to 1e4 ms²); non-finite is None.
fn sig4(x: Option<f64>) -> Option<f64> {
    match x {
        Some(v) if v.is_finite() && v != 0.0 => {
            let digits = 3 - v.abs().log10().floor() as i32;
            let scale = 10f64.powi(digits);
            Some((v * scale).round() / scale)
        }
        Some(0.0) => Some(0.0),
        _ => None,
    }
}

/// `features`.
pub fn features(p: &ParticipantId, f: &FeatureFrame) -> String {
    // Serialized straight from a borrowed struct (no `Value` tree): four lines a second per
    // participant. The field order is the protocol's.
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        participant: &'a ParticipantId,
        t: f64,
        hr_bpm: Option<f64>,
        rmssd_ms: Option<f64>,
        scl_us: Option<f64>,
        scr_per_min: Option<f64>,
        heart_source: Option<&'static str>,
        beats_corrected: Option<f64>,
        lf_ms2: Option<f64>,
        hf_ms2: Option<f64>,
        lf_hf: Option<f64>,
        lf_nu: Option<f64>,
        hf_nu: Option<f64>,
        hf_peak_hz: Option<f64>,
        hrv_spectrum: Option<&'static str>,
        eda_symp_us2: Option<f64>,
        eda_sympn: Option<f64>,
        eda_spectrum: Option<&'static str>,
    }
    let o3 = |x: Option<f64>| x.map(r3).filter(|v| v.is_finite());
    let sp = &f.spectral;
    let hrv = sp.hrv.and_then(|r| r.ok());
    let eda = sp.eda.and_then(|r| r.ok());
    let line = Line {
        kind: "features",
        participant: p,
        t: f.t,
        hr_bpm: o3(f.values[0]),
        rmssd_ms: o3(f.values[1]),
        scl_us: o3(f.values[2]),
        scr_per_min: o3(f.values[3]),
        heart_source: heart_source(f),
        beats_corrected: o3(f.beats_corrected),
        lf_ms2: sig4(hrv.map(|h| h.lf_ms2)),
        hf_ms2: sig4(hrv.map(|h| h.hf_ms2)),
        lf_hf: sig4(hrv.map(|h| h.lf_hf)),
        lf_nu: o3(hrv.map(|h| h.lf_nu)),
        hf_nu: o3(hrv.map(|h| h.hf_nu)),
        hf_peak_hz: o3(hrv.map(|h| h.hf_peak_hz)),
        hrv_spectrum: sp.hrv.map(|r| r.map_or_else(|e| e.name(), |_| "ok")),
        eda_symp_us2: sig4(eda.map(|e| e.symp_us2)),
        eda_sympn: o3(eda.map(|e| e.sympn)),
        eda_spectrum: sp.eda.map(|r| r.map_or_else(|e| e.name(), |_| "ok")),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// The stream the heart features came from (`rr`, `ecg`, `ppg`, `hr`), if any.
fn heart_source(f: &FeatureFrame) -> Option<&'static str> {
    (0..2)
        .find(|&i| f.values[i].is_some())
        .map(|i| f.sources[i].name())
}

/// `adaptation`, with its reason. Feature values and baseline statistics are feature data:
/// they appear only where `shared(source stream)` says `share_features` is consented; the
/// z-scores (relative to the participant's own baseline) are part of the decision.
pub fn adaptation(a: &Adaptation) -> String {
    // Serialized straight from borrowed structs (no `Value` tree): this line is written four
    // times a second per participant. The field order is the protocol's.
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        participant: &'a ParticipantId,
        t: f64,
        action: &'static str,
        arousal: Option<f64>,
        confidence: f64,
        arousal_state: &'static str,
        reason: Reason<'a>,
    }
    #[derive(Serialize)]
    struct Reason<'a> {
        rule: &'static str,
        summary: &'a str,
        composite_z: Option<f64>,
        features: Vec<Term>,
        quality: &'a std::collections::BTreeMap<&'static str, &'static str>,
        baseline: Option<BaselineRef<'a>>,
        target: TargetRef,
        blocked: Option<&'static str>,
        dwell_s: f64,
    }
    #[derive(Serialize)]
    struct Term {
        name: &'static str,
        value: Option<f64>,
        z: Option<f64>,
        direction: i8,
        weight: f64,
        scale: &'static str,
        baseline_median: Option<f64>,
        baseline_scale: Option<f64>,
        dropped: Option<&'static str>,
    }
    #[derive(Serialize)]
    struct BaselineRef<'a> {
        kind: &'static str,
        from_s: f64,
        to_s: f64,
        windows: usize,
        frames: usize,
        suspect: Option<&'static str>,
        clusters: Option<&'a crate::baseline::score::ClusterSummary>,
        rebased: u32,
    }
    #[derive(Serialize)]
    struct TargetRef {
        name: &'static str,
        z_low: Option<f64>,
        z_high: Option<f64>,
        feedback_shift_z: f64,
    }
    let (p, d) = (&a.participant, &a.decision);
    // Rounded to 3 decimals; a non-finite value is `null`.
    let o3 = |x: Option<f64>| x.map(r3).filter(|v| v.is_finite());
    let features = d
        .terms
        .iter()
        .map(|t| {
            let show = a.shared.get(t.index).copied().unwrap_or(false);
            let hide = |v: Option<f64>| if show { o3(v) } else { None };
            Term {
                name: FEATURE_NAMES[t.index],
                value: hide(t.value),
                z: o3(t.z),
                direction: DIRECTIONS[t.index] as i8,
                weight: r3(t.weight),
                scale: SCALES[t.index].name(),
                baseline_median: hide(t.stat.map(|s| from_scale(t.index, s.center))),
                baseline_scale: hide(t.stat.map(|s| s.scale)),
                dropped: t.dropped,
            }
        })
        .collect();
    let line = Line {
        kind: "adaptation",
        participant: p,
        t: d.t,
        action: d.action.name(),
        arousal: o3(d.arousal),
        confidence: r3(d.confidence),
        arousal_state: d.state.name(),
        reason: Reason {
            rule: d.rule.name(),
            summary: &a.summary,
            composite_z: o3(d.composite_z),
            features,
            quality: &a.quality,
            baseline: d.baseline.as_ref().map(|b| BaselineRef {
                kind: b.kind.name(),
                from_s: r3(b.from_s),
                to_s: r3(b.to_s),
                windows: b.windows,
                frames: b.frames,
                suspect: b.suspect,
                clusters: b.clusters.as_ref(),
                rebased: b.rebased,
            }),
            target: TargetRef {
                name: d.target.target.name(),
                z_low: o3(Some(d.target.z_low)),
                z_high: o3(Some(d.target.z_high)),
                feedback_shift_z: r3(d.target.shift_z),
            },
            blocked: d.blocked,
            dwell_s: r3(d.dwell_s),
        },
    };
    serde_json::to_string(&line).unwrap_or_else(|e| error("internal", &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exercise_targets_are_names_or_bounds() {
        let m = parse_client_line(
            r#"{"type":"exercise","participant":"p01","event":"start","target":{"low":0.2,"high":0.6}}"#,
        );
        assert!(
            matches!(
                m,
                Ok(ClientMessage::Exercise {
                    target: Some(TargetSpec::Bounds { low, high }),
                    ..
                }) if low == 0.2 && high == 0.6
            ),
            "{m:?}"
        );
        let m = parse_client_line(
            r#"{"type":"exercise","participant":"p01","event":"start","target":"calm"}"#,
        );
        assert!(
            matches!(
                m,
                Ok(ClientMessage::Exercise {
                    target: Some(TargetSpec::Named(ExerciseTarget::Calm)),
                    ..
                })
            ),
            "{m:?}"
        );
        let bad = parse_client_line(
            r#"{"type":"exercise","participant":"p01","event":"start","target":"frantic"}"#,
        );
        assert_eq!(bad.map_err(|e| e.0), Err("bad_request"));
    }

    #[test]
    fn client_lines_parse_or_explain() {
        assert_eq!(
            parse_client_line(r#"{"type":"hello","protocol":1,"client":"x"}"#),
            Ok(ClientMessage::Hello {
                protocol: 1,
                client: Some("x".into())
            })
        );
        assert!(matches!(
            parse_client_line(r#"{"type":"subscribe","topics":["adaptation"]}"#),
            Ok(ClientMessage::Subscribe { participant: None, topics: Some(t) }) if t == [Topic::Adaptation]
        ));
        assert_eq!(parse_client_line("{").unwrap_err().0, "bad_request");
        assert_eq!(
            parse_client_line(r#"{"type":"dance"}"#).unwrap_err().0,
            "unknown_type"
        );
        assert_eq!(
            parse_client_line(r#"{"type":"subscribe","topics":["gossip"]}"#)
                .unwrap_err()
                .0,
            "bad_request"
        );
        assert_eq!(parse_client_line("[1]").unwrap_err().0, "bad_request");
    }

    #[test]
    fn server_lines_are_single_line_json_with_a_type() {
        for line in [welcome(), lagged(3), error("bad_request", "x\ny")] {
            assert!(!line.contains('\n'));
            let v: Value = serde_json::from_str(&line).unwrap();
            assert!(v["type"].is_string());
        }
    }
}
