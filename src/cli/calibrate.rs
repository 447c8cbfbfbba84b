//! `attune calibrate --participant ID FILE`: build or refine a participant's stored baseline
//! profile ([`crate::baseline::profile`]) from a recording. `--live` calibrates inside the
//! running session instead ([`live`]).
//!
//! The recording (format v1) goes through a fresh engine exactly as `attune replay --speed max`
//! takes it ([`replay_max_speed`]), under the consent its header carries; the participant's
//! session calibration (`Tracker::session`) then creates the profile or refines the stored one
//! ([`Profile::refine`]: an aroused or suspect calibration is refused and only noted in the
//! profile's history). The profile is stored in the participant's `profile` tree under
//! [`PROFILE_ENTRY`] only when the data directory's ledger grants `profile` consent for every
//! stream kind (what an export's profile entries need to be imported again, and what a
//! revocation for any kind erases); without it the command refuses before reading anything
//! into the store. It holds the data directory itself while it runs, so a running daemon is
//! refused ("stop the daemon, then calibrate"): no revocation can be acknowledged between the
//! consent check and the flushed write.
//!
//! A stored profile that cannot be read (another format, a bad number) is replaced by a new one
//! from this calibration, which is what its error message asks for; the summary says so.
//!
//! Prints one JSON object: `participant`, `file`, `windows` (the session's calibration
//! windows), `centres` (the session's calm centre per feature, in the feature's unit: bpm, ms,
//! µS, per minute; `null` where it has none), `suspect`, `taken`, `refused` (why not, or
//! `null`), `created`, `replaced` (why a stored profile was unreadable, or `null`), `sessions`
//! (sessions in the stored profile, 0 when none was stored) and `profile_centres`.

mod live;

use super::Common;
use super::consent::now_ms;
use crate::baseline::profile::{PROFILE_ENTRY, Profile};
use crate::baseline::score::Reference;
use crate::consent::{ConsentSnapshot, Purpose};
use crate::engine::event::EventBody;
use crate::engine::{Engine, EngineConfig};
use crate::model::{ALL_KINDS, ParticipantId};
use crate::recording::{Header, Reader, Record};
use crate::sources::replay_feed::replay_max_speed;
use crate::store::participant::ParticipantStore;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Arguments of `calibrate`.
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Builds or refines a participant's stored baseline profile from a recording.\n\nThe recording runs through the same engine as `attune replay --speed max`, under the consent in its header; the participant's session calibration (180 s of complete features) then creates the profile or is blended into the stored one. A calibration that was aroused against the stored profile (or suspect) is refused and only noted in the profile's history. The profile is kept only with `profile` consent for all streams in the data directory's ledger. With a file, no daemon may hold the data directory. With --live, the running daemon calibrates the participant now (a `calibrate` marker: the reference in use stays until the new one is done) and stores the profile when it completes; the command waits and prints the result.",
    after_help = "Examples:\n  attune consent grant --participant p01 --stream all --purpose process,profile\n  attune calibrate --participant p01 session1.attune.ndjson\n  attune calibrate --participant p01 --live --minutes 5   (in a running session)"
)]
pub struct CalibrateArgs {
    /// Participant id (must be the recording's).
    #[arg(long, value_name = "ID")]
    pub participant: ParticipantId,
    /// A recording (attune recording format v1).
    #[arg(
        value_name = "FILE",
        required_unless_present = "live",
        conflicts_with = "live"
    )]
    pub file: Option<PathBuf>,
    /// Calibrate now, inside the running session (the daemon stores the profile when done).
    #[arg(long)]
    pub live: bool,
    /// Length of a live calibration, minutes of complete features (1 to 30; default 3).
    #[arg(long, value_name = "M", requires = "live")]
    pub minutes: Option<f64>,
}

/// Runs `calibrate` (module doc).
pub fn run(common: &Common, a: &CalibrateArgs) -> anyhow::Result<()> {
    let Some(file) = a.file.as_deref().filter(|_| !a.live) else {
        return live::run(common, &a.participant, a.minutes);
    };
    let p = &a.participant;
    let (header, records) = read_recording(file)?;
    let name = file.display();
    if &header.participant != p {
        bail!(
            "{name}: participant {p} is not in this recording (it holds {})",
            header.participant
        );
    }
    let now = now_ms();
    let dd = super::data::open_held(common, now, "calibrate")?;
    if let Some(why) = dd.stuck() {
        bail!("{why}; nothing was calibrated");
    }
    if !ALL_KINDS
        .iter()
        .all(|&k| dd.state().allows(p, k, Purpose::Profile, now))
    {
        bail!(
            "{p} has no live `profile` consent for all streams in the ledger of {}; no profile was built or stored (grant it first: attune consent grant --participant {p} --stream all --purpose profile)",
            dd.path().display()
        );
    }
    let session = session_calibration(&header, records, p).with_context(|| format!("{name}"))?;

    let store = ParticipantStore::open(dd.path(), p)
        .with_context(|| format!("cannot open the store of {p}"))?;
    let (stored, replaced) = match store
        .profile(PROFILE_ENTRY)
        .with_context(|| format!("cannot read the profile of {p}"))?
    {
        None => (None, None),
        Some(v) => match Profile::from_value(v, p) {
            Ok(prof) => (Some(prof), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    let created = stored.is_none();
    let (profile, refused) = match stored {
        Some(mut prof) => {
            let refused = prof.refine(&session, now).err().map(|e| e.to_string());
            (Some(prof), refused)
        }
        // A first calibration that may not have been calm does not start a profile.
        None => match session.suspect {
            Some(s) => (
                None,
                Some(format!(
                    "the calibration may not have been calm ({s}): no profile was created"
                )),
            ),
            None => (Some(Profile::new(p.clone(), &session, now)), None),
        },
    };
    if let Some(prof) = &profile {
        let value = prof.to_value().context("cannot store the profile")?;
        store
            .put_profile(PROFILE_ENTRY, &value)
            .and_then(|()| store.flush())
            .with_context(|| format!("cannot store the profile of {p}"))?;
    }
    store
        .close()
        .with_context(|| format!("cannot close the store of {p}"))?;
    drop(dd);

    let summary = json!({
        "participant": p.as_str(),
        "file": file.display().to_string(),
        "windows": session.windows,
        "centres": centres(&session),
        "suspect": session.suspect,
        "taken": refused.is_none(),
        "refused": refused,
        "created": created && profile.is_some(),
        "replaced": replaced,
        "sessions": profile.as_ref().map_or(0, |x| x.sessions),
        "profile_centres": profile.as_ref().map_or(Value::Null, |x| centres(&x.reference())),
    });
    say!("{summary}");
    Ok(())
}

/// Per feature, the reference's centre in the feature's unit (`null` where it has none).
fn centres(r: &Reference) -> Value {
    r.centres_json()
}

fn read_recording(path: &Path) -> anyhow::Result<(Header, Vec<Record>)> {
    let name = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    let mut r = Reader::open(BufReader::with_capacity(1 << 16, file))
        .with_context(|| format!("cannot read {name}"))?;
    let mut records = Vec::new();
    while let Some(rec) = r
        .next_record()
        .with_context(|| format!("cannot read {name}"))?
    {
        records.push(rec);
    }
    Ok((r.header().clone(), records))
}

/// Runs the recording through a fresh engine (consent from its header) and returns `p`'s
/// session calibration. Without one the error says how many seconds of complete features
/// (every feature the session had at all, at once) the session had: the calibration needs
/// `duration_s` (180 s) of them.
fn session_calibration(
    header: &Header,
    records: Vec<Record>,
    p: &ParticipantId,
) -> anyhow::Result<Reference> {
    let consent = ConsentSnapshot::from_manifest(p, &header.consent);
    if !consent.allows_any(p, Purpose::Process) {
        bail!("the recording carries no `process` consent for {p}, so nothing can be calibrated");
    }
    let cfg = EngineConfig::default();
    let need_s = cfg.pipeline.baseline.calibration.duration_s;
    let mut engine = Engine::new(cfg, consent);
    let mut frames = Vec::new();
    replay_max_speed(&mut engine, header, p, records, |ev| {
        if let EventBody::Features(_, f) = &ev.body {
            frames.push(f.values);
        }
    });
    if let Some(r) = engine.pipeline().baseline(p).and_then(|t| t.session()) {
        return Ok(r.clone());
    }
    let seen: [bool; 4] = std::array::from_fn(|i| frames.iter().any(|v| v[i].is_some()));
    let complete = frames
        .iter()
        .filter(|v| seen.iter().any(|&s| s) && (0..4).all(|i| !seen[i] || v[i].is_some()))
        .count();
    let found_s = complete as f64 / crate::pipeline::TICKS_PER_S;
    if frames.is_empty() && !consent_shares_features(header, p) {
        bail!(
            "calibration too short: no reference was built ({need_s:.0} s of complete features are needed; the recording's consent does not share features, so how many it had is not shown)"
        );
    }
    bail!(
        "calibration too short: found {found_s:.0} s of complete features, {need_s:.0} s are needed"
    )
}

fn consent_shares_features(header: &Header, p: &ParticipantId) -> bool {
    ConsentSnapshot::from_manifest(p, &header.consent).allows_any(p, Purpose::ShareFeatures)
}
