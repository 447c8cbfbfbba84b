//! Stored baseline profiles in a live session (edge): load when a participant joins, refine
//! when they leave or the session ends ([`crate::baseline::profile`]).
//!
//! Both run with the data directory's mutex held (the one every consent request runs on end
//! to end), so no revocation is acknowledged between the consent check and the flushed write,
//! and only when `profile` is allowed for every stream kind both by the ledger now and by the
//! session's consent (for a replayed recording: what its manifest granted, minus withdrawals;
//! replay never grants more than the recording carried). Without it nothing is read or written.
//!
//! - **Join**: a readable profile of the participant's (`profile` tree, entry
//!   [`PROFILE_ENTRY`]) becomes their reference (`personal`) and restores their feedback shift
//!   ([`Engine::set_personal`]). A participant without a store or profile starts as before; an
//!   unreadable profile (another format, a bad number) is logged and not used.
//! - **Leave / end**: the session's calibration, if one was built, refines the stored profile
//!   or starts one ([`Profile::refine`]; a suspect first calibration starts none); the
//!   policy's feedback shift is stored with it. A refusal is logged and kept in the profile's
//!   history. A participant with neither a calibration nor a stored profile leaves nothing.
//!
//! Store errors are logged, never fatal: the session goes on without the profile.

use super::control::{Consent, now_ms, snapshot_of};
use crate::baseline::profile::{PROFILE_ENTRY, Profile};
use crate::consent::Purpose;
use crate::engine::Engine;
use crate::model::{ALL_KINDS, ParticipantId};
use crate::store::participant::{ParticipantStore, StoreError, participant_dir};
use tracing::{info, warn};

/// Runs blocking store I/O: through `block_in_place` on a multi-threaded runtime (the daemon's),
/// directly otherwise.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether `p` may keep a profile now (module doc). Called with the data directory held.
fn allowed(consent: &Consent, dd: &crate::store::datadir::DataDir, p: &ParticipantId) -> bool {
    let now = now_ms();
    if !ALL_KINDS
        .iter()
        .all(|&k| dd.state().allows(p, k, Purpose::Profile, now))
    {
        return false;
    }
    // Only `p`'s own scopes: the session snapshot of everyone made each join quadratic (1,000
    // participants spent their first 24 s in this check, feeding nothing).
    let session = snapshot_of(dd.state(), &consent.scopes_of(p), now);
    ALL_KINDS
        .iter()
        .all(|&k| session.allows(p, k, Purpose::Profile))
}

/// Loads `p`'s stored profile into `engine` if allowed and present (module doc).
pub(super) fn load(consent: &Consent, engine: &mut Engine, p: &ParticipantId) {
    let dd = consent.store.lock().unwrap_or_else(|e| e.into_inner());
    if !allowed(consent, &dd, p) || !participant_dir(dd.path(), p).join("db").is_file() {
        return;
    }
    let read = || -> Result<Option<serde_json::Value>, StoreError> {
        let store = ParticipantStore::open_existing(dd.path(), p)?;
        let v = store.profile(PROFILE_ENTRY)?;
        store.close()?;
        Ok(v)
    };
    let value = match blocking(read) {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(e) => {
            warn!(participant = %p, error = %e, "The stored profile could not be read; calibrating afresh.");
            return;
        }
    };
    match Profile::from_value(value, p) {
        Ok(prof) => {
            info!(participant = %p, sessions = prof.sessions, "Stored profile in use (baseline personal).");
            engine.set_personal(p, prof.reference_at(now_ms()), prof.feedback_shift_z);
        }
        Err(e) => {
            warn!(participant = %p, error = %e, "The stored profile is not used.");
        }
    }
}

/// Refines `p`'s stored profile with the session's calibration and feedback shift, if allowed
/// (module doc). Call before `p` leaves the engine, and when a requested calibration is done.
/// A session reference already stored is not taken twice. Returns what happened, one line.
pub(super) fn save(consent: &Consent, engine: &mut Engine, p: &ParticipantId) -> Option<String> {
    let outcome = save_once(consent, engine, p);
    if let (Some(o), Some(t)) = (&outcome, engine.pipeline_mut().baseline_mut(p)) {
        if o.starts_with("stored") {
            t.mark_stored();
        }
        t.note_profile(o.clone());
    }
    outcome
}

fn save_once(consent: &Consent, engine: &Engine, p: &ParticipantId) -> Option<String> {
    let tracker = engine.pipeline().baseline(p)?;
    let session = tracker.unstored_session().cloned();
    let shift = engine.pipeline().feedback_shift(p);
    let dd = consent.store.lock().unwrap_or_else(|e| e.into_inner());
    if !allowed(consent, &dd, p) {
        return Some("session_only: no profile consent for every stream".into());
    }
    let has_store = participant_dir(dd.path(), p).join("db").is_file();
    if session.is_none() && !has_store {
        return None;
    }
    let now = now_ms();
    let write = || -> Result<(Option<String>, Option<u32>), StoreError> {
        let store = ParticipantStore::open(dd.path(), p)?;
        let stored = match store.profile(PROFILE_ENTRY)? {
            Some(v) => match Profile::from_value(v, p) {
                Ok(prof) => Some(prof),
                Err(e) => {
                    warn!(participant = %p, error = %e, "The stored profile is unreadable; this session's calibration replaces it.");
                    None
                }
            },
            None => None,
        };
        let (profile, note) = match (stored, &session) {
            (Some(mut prof), Some(s)) => {
                let note = prof.refine(s, now).err().map(|e| e.to_string());
                (Some(prof), note)
            }
            (Some(prof), None) => (Some(prof), None),
            (None, Some(s)) if s.suspect.is_none() => (Some(Profile::new(p.clone(), s, now)), None),
            (None, Some(s)) => (
                None,
                Some(format!(
                    "the calibration may not have been calm ({}): no profile was created",
                    s.suspect.unwrap_or("suspect")
                )),
            ),
            (None, None) => (None, None),
        };
        let mut sessions = None;
        if let Some(mut prof) = profile {
            if let Some(z) = shift.filter(|z| z.is_finite()) {
                prof.feedback_shift_z = z;
            }
            match prof.to_value() {
                Ok(v) => {
                    store.put_profile(PROFILE_ENTRY, &v)?;
                    store.flush()?;
                    info!(participant = %p, sessions = prof.sessions, "Profile stored.");
                    sessions = Some(prof.sessions);
                }
                Err(e) => warn!(participant = %p, error = %e, "The profile was not stored."),
            }
        }
        store.close()?;
        Ok((note, sessions))
    };
    match blocking(write) {
        Ok((Some(note), _)) => {
            info!(participant = %p, reason = %note, "Session not taken into the profile.");
            Some(format!("refused: {note}"))
        }
        Ok((None, Some(n))) if session.is_some() => {
            Some(format!("stored: the profile now holds {n} session(s)"))
        }
        Ok((None, _)) => None,
        Err(e) => {
            warn!(participant = %p, error = %e, "The profile could not be stored.");
            Some(format!("failed: {e}"))
        }
    }
}
