//! The recorder's writer thread and the state it shares with the publisher and the handle
//! (module doc of `store::recorder`).

use super::file::SessionFile;
use super::{RecorderError, RecorderFailure, lock};
use crate::consent::{ConsentManifest, ConsentSnapshot, Purpose, all_met};
use crate::engine::event::{DropReason, Event, EventBody};
use crate::engine::input::StreamInfo;
use crate::model::{Chunk, Gap, ParticipantId, StreamKind, Timing};
use crate::recording::{
    Device, FORMAT_NAME, FORMAT_VERSION, Header, Provenance, StateRecord, StreamSpec,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the publisher sends the writer thread.
pub(super) enum Msg {
    /// An event to write, and the stretch of its stream lost to a full queue just before it.
    Event(Arc<Event>, Option<Lost>),
    /// Finish every file and stop.
    Stop,
}

/// A stretch of one stream lost to a full queue.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lost {
    first_t: f64,
    last_t: f64,
    host_t: f64,
}

impl Lost {
    fn merge(self, o: Lost) -> Lost {
        Lost {
            first_t: self.first_t.min(o.first_t),
            last_t: self.last_t.max(o.last_t),
            host_t: self.host_t.max(o.host_t),
        }
    }
}

/// The stream and the stretch of a sample or gap event.
fn lost_span(e: &Event) -> Option<((ParticipantId, StreamKind), Lost)> {
    match &e.body {
        EventBody::Samples(c) => Some((
            (c.participant.clone(), c.kind),
            Lost {
                first_t: c.time_of(0),
                last_t: c.last_time(),
                host_t: c.host_t,
            },
        )),
        EventBody::Gap(g) => Some((
            (g.participant.clone(), g.kind),
            Lost {
                first_t: g.start,
                last_t: g.end,
                host_t: g.host_t,
            },
        )),
        _ => None,
    }
}

struct State {
    snap: Arc<ConsentSnapshot>,
    files: BTreeMap<ParticipantId, SessionFile>,
    failed: BTreeSet<ParticipantId>,
    closed: bool,
    last_flush: Instant,
}

type OnFailure = Box<dyn Fn(RecorderFailure) + Send + Sync>;

/// Shared by the publisher, the handles and the writer thread.
pub(super) struct Shared {
    data_dir: PathBuf,
    flush_every: Duration,
    on_failure: OnFailure,
    state: Mutex<State>,
    /// The consent in force, as in `state`, for [`Shared::enqueue`] on the engine's thread:
    /// `state` is held through writes and fsyncs, this only while an `Arc` is cloned.
    consent: RwLock<Arc<ConsentSnapshot>>,
    declared: Mutex<BTreeMap<(ParticipantId, StreamKind), Arc<StreamInfo>>>,
    lost: Mutex<BTreeMap<(ParticipantId, StreamKind), Lost>>,
    drops: [AtomicU64; DropReason::ALL.len()],
}

fn drop_index(reason: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|r| *r == reason)
        .unwrap_or(0)
}

fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The writer thread: events as they come, and a flush every `flush_every` even without any.
pub(super) fn run(shared: &Shared, rx: &Receiver<Msg>) {
    loop {
        let since = lock(&shared.state).last_flush.elapsed();
        let wait = shared.flush_every.saturating_sub(since);
        match rx.recv_timeout(wait) {
            Ok(Msg::Event(e, lost)) => shared.write_event(&e, lost),
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => {
                shared.close_all_now();
                return;
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        if lock(&shared.state).last_flush.elapsed() >= shared.flush_every {
            shared.tick();
        }
    }
}

impl Shared {
    pub(super) fn new(data_dir: PathBuf, flush_every: Duration, on_failure: OnFailure) -> Self {
        Self {
            data_dir,
            flush_every,
            on_failure,
            consent: RwLock::new(Arc::new(ConsentSnapshot::deny_all())),
            state: Mutex::new(State {
                snap: Arc::new(ConsentSnapshot::deny_all()),
                files: BTreeMap::new(),
                failed: BTreeSet::new(),
                closed: false,
                last_flush: Instant::now(),
            }),
            declared: Mutex::new(BTreeMap::new()),
            lost: Mutex::new(BTreeMap::new()),
            drops: Default::default(),
        }
    }

    fn count(&self, reason: DropReason) {
        self.drops[drop_index(reason)].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[drop_index(reason)].load(Ordering::Relaxed)
    }

    pub(super) fn declare(&self, info: &Arc<StreamInfo>) {
        lock(&self.declared).insert((info.participant.clone(), info.kind), Arc::clone(info));
    }

    /// Queues `e` for the writer thread without blocking. A sample or gap carries the stretch
    /// of its stream lost since its previous queued event; one the full queue cannot take is
    /// counted `lagged` and its stretch remembered for the next (module doc). Returns false if
    /// the writer thread is gone.
    pub(super) fn enqueue(&self, tx: &SyncSender<Msg>, e: &Arc<Event>) -> bool {
        // Samples reach publishers when a transport may share them although they may not be
        // recorded: those are not this recorder's, nor a withdrawal to count. (Others that
        // fail the check go on, to be counted as withdrawn where they would be written.)
        if let EventBody::Samples(c) = &e.body {
            let snap = Arc::clone(&self.consent.read().unwrap_or_else(|e| e.into_inner()));
            let p = &c.participant;
            if !all_met(e.needs(), &snap, p)
                && all_met(&crate::consent::raw_share(c.kind), &snap, p)
            {
                return true;
            }
        }
        let span = lost_span(e);
        let before = span.as_ref().and_then(|(k, _)| lock(&self.lost).remove(k));
        match tx.try_send(Msg::Event(Arc::clone(e), before)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.count(DropReason::Lagged);
                if let Some((key, span)) = span {
                    let mut lost = lock(&self.lost);
                    let merged = before.map_or(span, |b| b.merge(span));
                    let entry = lost.entry(key).or_insert(merged);
                    *entry = entry.merge(merged);
                }
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    fn report(&self, failures: Vec<RecorderFailure>) {
        for f in failures {
            tracing::error!(participant = %f.participant, path = %f.path.display(), error = %f.error,
                "The session file could not be written; recording of this participant stopped.");
            (self.on_failure)(f);
        }
    }

    pub(super) fn write_event(&self, e: &Event, lost: Option<Lost>) {
        let mut failures = Vec::new();
        {
            let mut st = lock(&self.state);
            if let Err((p, err)) = self.write_locked(&mut st, e, lost) {
                let host_t = match &e.body {
                    EventBody::Samples(c) => c.host_t,
                    EventBody::Gap(g) => g.host_t,
                    EventBody::Marker(_, m) => m.host_t,
                    _ => 0.0,
                };
                failures.push(self.fail(&mut st, &p, err, host_t));
            }
        }
        self.report(failures);
    }

    fn write_locked(
        &self,
        st: &mut State,
        e: &Event,
        lost: Option<Lost>,
    ) -> Result<(), (ParticipantId, RecorderError)> {
        let Some(p) = e.participant().cloned() else {
            return Ok(());
        };
        if st.closed {
            return Ok(());
        }
        if !all_met(e.needs(), &st.snap, &p) {
            self.count(DropReason::WithdrawnAtEgress);
            return Ok(());
        }
        if st.failed.contains(&p) {
            if !matches!(e.body, EventBody::State(_)) {
                self.count(DropReason::WriteFailed);
            }
            return Ok(());
        }
        let io = |f: &SessionFile, err| RecorderError::io(&p, "write", &f.path, err);
        match &e.body {
            EventBody::Samples(c) => {
                let Some(f) = self
                    .file_for(st, &p, Some(c.kind), Some(c))
                    .map_err(|x| (p.clone(), x))?
                else {
                    return Ok(());
                };
                write_lag_gap(f, &p, c.kind, lost, c.host_t).map_err(|x| (p.clone(), io(f, x)))?;
                f.chunk(c).map_err(|x| (p.clone(), io(f, x)))
            }
            EventBody::Gap(g) => {
                let Some(f) = self
                    .file_for(st, &p, Some(g.kind), None)
                    .map_err(|x| (p.clone(), x))?
                else {
                    return Ok(());
                };
                write_lag_gap(f, &p, g.kind, lost, g.host_t).map_err(|x| (p.clone(), io(f, x)))?;
                f.gap(g).map_err(|x| (p.clone(), io(f, x)))
            }
            EventBody::Marker(_, m) => {
                let Some(f) = self
                    .file_for(st, &p, None, None)
                    .map_err(|x| (p.clone(), x))?
                else {
                    return Ok(());
                };
                f.marker(m).map_err(|x| (p.clone(), io(f, x)))
            }
            EventBody::State(s) => {
                let Some(f) = st.files.get_mut(&p) else {
                    return Ok(());
                };
                if !f.ids.contains_key(&s.change.kind) {
                    return Ok(());
                }
                let rec = StateRecord {
                    kind: s.change.kind,
                    host_t: s.at,
                    state: s.change.state.name().to_owned(),
                    detail: s.detail.clone(),
                };
                f.state(&rec).map_err(|x| (p.clone(), io(f, x)))
            }
            _ => Ok(()),
        }
    }

    /// The participant's file for data of `kind` (`None`: a marker, any stream): the open one,
    /// or a new one (rotating if `kind` is not in the open file's header). `None` if nothing
    /// of the participant can be recorded.
    fn file_for<'a>(
        &self,
        st: &'a mut State,
        p: &ParticipantId,
        kind: Option<StreamKind>,
        chunk: Option<&Chunk>,
    ) -> Result<Option<&'a mut SessionFile>, RecorderError> {
        let fits = st
            .files
            .get(p)
            .map(|f| kind.is_none_or(|k| f.ids.contains_key(&k)));
        if fits != Some(true) {
            let specs = self.specs(&st.snap, p, kind, chunk);
            if specs.is_empty() || kind.is_some_and(|k| !specs.iter().any(|s| s.kind() == Some(k)))
            {
                return Ok(None);
            }
            if let Some(old) = st.files.remove(p) {
                let path = old.path.clone();
                old.close(Some("rotated"))
                    .map_err(|e| RecorderError::io(p, "close", &path, e))?;
            }
            let header = Header {
                format: FORMAT_NAME.to_owned(),
                version: FORMAT_VERSION,
                participant: p.clone(),
                consent: manifest(&st.snap, p, &specs),
                streams: specs,
                provenance: Provenance {
                    source: "attune run (live)".into(),
                    licence: "(participant data; not licensed)".into(),
                    attribution: None,
                    generator: None,
                },
                segments: Vec::new(),
            };
            let f = SessionFile::create(&self.data_dir, &header, now_unix_ms())?;
            tracing::info!(participant = %p, path = %f.path.display(), "Recording a session.");
            st.files.insert(p.clone(), f);
        }
        Ok(st.files.get_mut(p))
    }

    /// The header streams of a new file of `p`: every declared stream with `process` and
    /// `record`, and `kind` declared from `chunk` if its source never declared it.
    fn specs(
        &self,
        snap: &ConsentSnapshot,
        p: &ParticipantId,
        kind: Option<StreamKind>,
        chunk: Option<&Chunk>,
    ) -> Vec<StreamSpec> {
        let ok = |k| snap.allows(p, k, Purpose::Process) && snap.allows(p, k, Purpose::Record);
        let declared = lock(&self.declared);
        let mut out: Vec<StreamSpec> = declared
            .iter()
            .filter(|((q, k), _)| q == p && ok(*k))
            .filter_map(|((_, k), info)| spec(*k, info.rate_hz, info.device.clone()))
            .collect();
        if let (Some(k), Some(c)) = (kind, chunk)
            && ok(k)
            && !out.iter().any(|s| s.kind() == Some(k))
        {
            let rate = match c.timing {
                Timing::Uniform { rate_hz, .. } => Some(rate_hz),
                Timing::Events(_) => None,
            };
            let unknown = Device {
                conversion: None,
                name: "unknown".into(),
                protocol: "unknown".into(),
                firmware: None,
            };
            out.extend(spec(k, rate, unknown));
        }
        out
    }

    /// Stops `p`'s file after `err`; returns what to report.
    fn fail(
        &self,
        st: &mut State,
        p: &ParticipantId,
        err: RecorderError,
        host_t: f64,
    ) -> RecorderFailure {
        self.count(DropReason::WriteFailed);
        st.failed.insert(p.clone());
        let path = match st.files.remove(p) {
            Some(f) => f.abandon(host_t),
            None => match &err {
                RecorderError::Io { path, .. } => path.clone(),
                _ => super::session_dir(&self.data_dir, p),
            },
        };
        RecorderFailure {
            participant: p.clone(),
            path,
            error: err.to_string(),
        }
    }

    /// The timer: `write(2)` of every buffer, fsync where due. (A stretch lost with no later
    /// event queued is written at the stream's next event, or at close: writing it here could
    /// put it before events still queued.)
    pub(super) fn tick(&self) {
        let mut failures = Vec::new();
        {
            let mut st = lock(&self.state);
            for (p, f) in &mut st.files {
                if let Err(e) = f.flush() {
                    failures.push((p.clone(), RecorderError::io(p, "write", &f.path, e)));
                }
            }
            st.last_flush = Instant::now();
            let mut out = Vec::new();
            for (p, err) in failures {
                if let Some(t) = st.files.get(&p).map(|f| f.last_host_t) {
                    out.push(self.fail(&mut st, &p, err, t.max(0.0)));
                }
            }
            drop(st);
            self.report(out);
        }
    }

    /// At close, after the queue is drained: the `lagged` gap of every open file's stream whose
    /// last events were lost.
    fn lag_gaps(&self, st: &mut State, failures: &mut Vec<(ParticipantId, RecorderError)>) {
        {
            let keys: Vec<(ParticipantId, StreamKind)> = lock(&self.lost).keys().cloned().collect();
            for (p, k) in keys {
                if let Some(f) = st.files.get_mut(&p)
                    && f.ids.contains_key(&k)
                {
                    let lost = lock(&self.lost).remove(&(p.clone(), k));
                    if let Err(e) = write_lag_gap(f, &p, k, lost, f64::INFINITY) {
                        let err = RecorderError::io(&p, "write", &f.path, e);
                        failures.push((p.clone(), err));
                    }
                }
            }
        }
    }

    pub(super) fn consent(&self, snap: &Arc<ConsentSnapshot>) {
        let mut failures = Vec::new();
        {
            let mut st = lock(&self.state);
            st.snap = Arc::clone(snap);
            *self.consent.write().unwrap_or_else(|e| e.into_inner()) = Arc::clone(snap);
            let lost: Vec<ParticipantId> = st
                .files
                .iter()
                .filter(|(p, f)| {
                    f.ids.keys().any(|k| {
                        !(snap.allows(p, *k, Purpose::Process)
                            && snap.allows(p, *k, Purpose::Record))
                    })
                })
                .map(|(p, _)| p.clone())
                .collect();
            for p in lost {
                if let Some(f) = st.files.remove(&p) {
                    let path = f.path.clone();
                    match f.close(Some("consent_withdrawn")) {
                        Ok(_) => {
                            tracing::info!(participant = %p, "Consent to record withdrawn; session file closed.")
                        }
                        Err(e) => failures.push(RecorderFailure {
                            participant: p.clone(),
                            error: RecorderError::io(&p, "close", &path, e).to_string(),
                            path,
                        }),
                    }
                }
            }
        }
        self.report(failures);
    }

    pub(super) fn close_participant(
        &self,
        p: &ParticipantId,
    ) -> Result<Option<PathBuf>, RecorderError> {
        let mut st = lock(&self.state);
        let Some(f) = st.files.remove(p) else {
            return Ok(None);
        };
        let path = f.path.clone();
        f.close(None)
            .map(Some)
            .map_err(|e| RecorderError::io(p, "close", &path, e))
    }

    /// Finishes every file now and refuses further events.
    pub(super) fn close_all_now(&self) {
        let mut failures = Vec::new();
        {
            let mut st = lock(&self.state);
            st.closed = true;
            let mut lagging = Vec::new();
            self.lag_gaps(&mut st, &mut lagging);
            for (p, f) in std::mem::take(&mut st.files) {
                let path = f.path.clone();
                if let Err(e) = f.close(None) {
                    failures.push(RecorderFailure {
                        participant: p.clone(),
                        error: RecorderError::io(&p, "close", &path, e).to_string(),
                        path,
                    });
                }
            }
        }
        self.report(failures);
    }

    pub(super) fn status(&self) -> serde_json::Value {
        let mut st = lock(&self.state);
        let age = st.last_flush.elapsed().as_secs_f64();
        let files: Vec<serde_json::Value> = st
            .files
            .iter_mut()
            .map(|(p, f)| {
                serde_json::json!({
                    "participant": p.as_str(),
                    "path": f.path.display().to_string(),
                    "session": f.name,
                    "bytes": f.bytes(),
                    "records": f.records(),
                })
            })
            .collect();
        let failed: Vec<&str> = st.failed.iter().map(ParticipantId::as_str).collect();
        let dropped: serde_json::Map<String, serde_json::Value> = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_owned(), self.dropped(*r).into()))
            .collect();
        serde_json::json!({
            "files": files,
            "failed": failed,
            "dropped": dropped,
            "last_flush_age_s": age,
        })
    }
}

/// A header stream of `kind`; `None` for a uniform kind without a rate.
fn spec(kind: StreamKind, rate_hz: Option<f64>, device: Device) -> Option<StreamSpec> {
    let rate_hz = if kind.is_event_timed() {
        None
    } else {
        Some(rate_hz?)
    };
    Some(StreamSpec {
        id: kind.name().to_owned(),
        kind: kind.name().to_owned(),
        unit: kind.unit().to_owned(),
        rate_hz,
        device,
    })
}

/// The consent in force for the file's streams, as a recording manifest.
fn manifest(snap: &ConsentSnapshot, p: &ParticipantId, specs: &[StreamSpec]) -> ConsentManifest {
    snap.manifest_of(p, specs.iter().filter_map(StreamSpec::kind), "attune run")
}

/// Writes the `lagged` gap of (`p`, `kind`) for the stretch `lost` before a record at
/// `next_host_t`: from the last sample written to the last one lost.
fn write_lag_gap(
    f: &mut SessionFile,
    p: &ParticipantId,
    kind: StreamKind,
    lost: Option<Lost>,
    next_host_t: f64,
) -> std::io::Result<()> {
    let Some(lost) = lost else {
        return Ok(());
    };
    let start = f.last_time.get(&kind).copied().unwrap_or(lost.first_t);
    let g = Gap {
        participant: p.clone(),
        kind,
        start: start.min(lost.last_t),
        end: lost.last_t,
        host_t: lost.host_t.min(next_host_t),
        reason: "lagged".into(),
    };
    f.gap(&g)
}
