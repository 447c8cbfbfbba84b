//! [`DataDir::execute`]: one request, end to end (module doc of `store::datadir`).

use super::{DataDir, event};
use crate::consent::control::{Erasure, Request, Response, lines};
use crate::consent::ledger::{
    Action, ConsentState, Event, NewEvent, check_text, erases_data, verify,
};
use crate::consent::{Purpose, StreamSelector};
use crate::model::ParticipantId;
use crate::store::participant;

impl DataDir {
    /// Whether `p` is someone this data directory knows: a ledger history, stored data, or a
    /// participant a running daemon is processing (`live`: consent from a recording's manifest).
    fn known(&self, p: &ParticipantId, live: &[ParticipantId]) -> bool {
        !self.ledger.history(p).is_empty()
            || live.contains(p)
            || participant::has_data(&self.path, p)
    }

    fn unknown(&self, p: &ParticipantId, verb: &str) -> Response {
        Response::Error {
            message: format!(
                "participant {p} has no data and no consent recorded in {}; nothing to {verb}",
                self.path.display()
            ),
        }
    }

    /// Carries out a request at `now_ms`, end to end: changes are durable, and any erasure they
    /// call for is done and receipted, before this returns. `live` lists participants a
    /// running daemon is processing: they may be revoked or forgotten even without a ledger
    /// history (their consent came from a recording's manifest).
    pub fn execute(&mut self, req: Request, now_ms: i64, live: &[ParticipantId]) -> Response {
        self.execute_observed(req, now_ms, live, &mut |_| {})
    }

    /// [`execute`](Self::execute), calling `on_intent` with the new consent state as soon as the
    /// intent of an erasure (a revocation, a forget request) is durable, before the erasure
    /// runs: a daemon publishes its gate's new snapshot there, so that the revocation takes
    /// effect without waiting for the erasure.
    pub fn execute_observed(
        &mut self,
        req: Request,
        now_ms: i64,
        live: &[ParticipantId],
        on_intent: &mut dyn FnMut(&ConsentState),
    ) -> Response {
        let err = |message: String| Response::Error { message };
        if let Err(message) = check_request(&req) {
            return err(message);
        }
        let changes = matches!(
            req,
            Request::Grant { .. } | Request::Revoke { .. } | Request::Forget { .. }
        );
        // Every request first finishes what is owed (a read, too, so that what it shows has
        // converged); a change is refused while that fails.
        if let Err(why) = self.settle(now_ms)
            && changes
        {
            return err(format!("{why}; no change was made"));
        }
        match req {
            Request::Grant {
                participant,
                streams,
                purposes,
                expires_ms,
                text_version,
                by,
            } => {
                if let Some(x) = expires_ms
                    && x <= now_ms
                {
                    return err("the expiry date is in the past".into());
                }
                let template = NewEvent {
                    expires_ms,
                    text_version,
                    ..event(Action::Grant, participant, now_ms, by)
                };
                match self.ledger.append_all(each(&template, &streams, &purposes)) {
                    Ok(events) => self.appended(events, None),
                    Err(e) => err(e.to_string()),
                }
            }
            Request::Revoke {
                participant,
                streams,
                purposes,
                by,
            } => {
                if !self.known(&participant, live) {
                    return self.unknown(&participant, "revoke");
                }
                let template = event(Action::Revoke, participant.clone(), now_ms, by);
                let mut events = match self.ledger.append_all(each(&template, &streams, &purposes))
                {
                    Ok(events) => events,
                    Err(e) => return err(e.to_string()),
                };
                if !purposes.iter().any(|p| erases_data(*p)) {
                    return self.appended(events, None);
                }
                on_intent(self.ledger.state());
                match self.settle(now_ms) {
                    Ok(done) => {
                        let mut erasure = None;
                        for s in done {
                            if s.erasure.participant == participant {
                                erasure = Some(s.erasure);
                            }
                            events.extend(s.receipts);
                        }
                        self.appended(events, erasure)
                    }
                    Err(why) => err(format!(
                        "consent revoked (ledger event {}), but {why}; the next attune command or daemon start finishes it",
                        events.first().map_or(0, |e| e.seq)
                    )),
                }
            }
            Request::Forget { participant, by } => {
                if !self.known(&participant, live) {
                    return self.unknown(&participant, "forget");
                }
                let intent = event(Action::ForgetRequested, participant.clone(), now_ms, by);
                let asked = match self.ledger.append_all(vec![intent]) {
                    Ok(e) => e,
                    Err(e) => return err(e.to_string()),
                };
                let asked_seq = asked.first().map_or(0, |e| e.seq);
                on_intent(self.ledger.state());
                match self.settle(now_ms) {
                    Ok(done) => {
                        let Some(s) = done
                            .into_iter()
                            .find(|s| s.erasure.participant == participant)
                        else {
                            return err(format!("the erasure of {participant} did not run"));
                        };
                        let Some(receipt) = s.receipts.into_iter().next() else {
                            return err(format!("the erasure of {participant} has no receipt"));
                        };
                        Response::Forgotten {
                            erasure: s.erasure,
                            requested: asked_seq,
                            receipt,
                            epoch: self.ledger.state().events,
                        }
                    }
                    Err(why) => err(format!(
                        "consent of {participant} revoked (ledger event {asked_seq}), but {why}; the next attune command or daemon start finishes it"
                    )),
                }
            }
            Request::Show { participant } => {
                if self.ledger.history(&participant).is_empty() {
                    return err(format!("participant {participant} has no consent recorded"));
                }
                Response::Consent {
                    lines: lines(&self.ledger.state().of(&participant), now_ms),
                    participant,
                    epoch: self.ledger.state().events,
                }
            }
            Request::History { participant } => {
                let events: Vec<Event> = self
                    .ledger
                    .history(&participant)
                    .into_iter()
                    .cloned()
                    .collect();
                if events.is_empty() {
                    return err(format!("participant {participant} has no consent recorded"));
                }
                Response::History { events }
            }
            Request::Verify => match verify(self.ledger.events()) {
                Ok(()) => Response::Verified {
                    events: self.ledger.events().len() as u64,
                },
                Err(e) => err(format!("the ledger does not verify: {e}")),
            },
            Request::Status | Request::Mark { .. } => {
                err("no attune daemon is running (start one with `attune run`)".into())
            }
        }
    }

    fn appended(&self, events: Vec<Event>, erased: Option<Erasure>) -> Response {
        Response::Appended {
            events,
            epoch: self.ledger.state().events,
            erased,
        }
    }
}

/// Checks what a request carries before anything is done (a request can arrive over the
/// control socket, not only from the CLI, which checks the same).
pub(crate) fn check_request(req: &Request) -> Result<(), String> {
    let text = |field: &str, v: &str| {
        check_text(v).map_err(|r| format!("--{field}: {r}, not {:?}", truncate(v)))
    };
    match req {
        Request::Grant {
            streams,
            purposes,
            text_version,
            by,
            ..
        } => {
            nonempty(streams, purposes)?;
            text("by", by)?;
            if let Some(v) = text_version {
                text("text-version", v)?;
            }
        }
        Request::Revoke {
            streams,
            purposes,
            by,
            ..
        } => {
            nonempty(streams, purposes)?;
            text("by", by)?;
        }
        Request::Forget { by, .. } => text("by", by)?,
        Request::Mark { label, .. } => {
            if label.is_empty()
                || label.chars().count() > 128
                || label.chars().any(char::is_control)
            {
                return Err(format!(
                    "a marker label is 1-128 printable characters, not {:?}",
                    truncate(label)
                ));
            }
        }
        Request::Show { .. } | Request::History { .. } | Request::Verify | Request::Status => {}
    }
    Ok(())
}

fn nonempty(streams: &[StreamSelector], purposes: &[Purpose]) -> Result<(), String> {
    if streams.is_empty() || purposes.is_empty() {
        return Err("name at least one stream and one purpose".into());
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    let t: String = s.chars().take(40).collect();
    if t.len() < s.len() {
        format!("{t}...")
    } else {
        t
    }
}

/// One event per (stream, purpose), from `template`.
fn each(template: &NewEvent, streams: &[StreamSelector], purposes: &[Purpose]) -> Vec<NewEvent> {
    streams
        .iter()
        .flat_map(|s| {
            purposes.iter().map(move |p| NewEvent {
                stream: *s,
                purpose: *p,
                ..template.clone()
            })
        })
        .collect()
}
