//! Recorder tests: sessions read back, lag gaps, revocation, a full disk, repair at every cut.

use super::*;
use crate::consent::{ALL_PURPOSES, Purpose};
use crate::engine::event::State;
use crate::engine::input::StreamInfo;
use crate::model::{Chunk, Gap, StreamKind, StreamState, Timing};
use crate::pipeline::StateChange;
use crate::recording::{Device, Reader, Record};
use std::io::BufReader;
use std::sync::Mutex;

fn pid(s: &str) -> ParticipantId {
    ParticipantId::new(s).unwrap()
}

fn snap(ps: &[&str], purposes: &[Purpose]) -> Arc<ConsentSnapshot> {
    let triples = ps.iter().flat_map(|p| {
        crate::model::ALL_KINDS
            .into_iter()
            .flat_map(move |k| purposes.iter().map(move |pu| (pid(p), k, *pu)))
    });
    Arc::new(ConsentSnapshot::from_triples(1, triples))
}

fn all() -> Vec<Purpose> {
    ALL_PURPOSES.to_vec()
}

fn declare(r: &mut Recorder, p: &str, kind: StreamKind, rate: Option<f64>) {
    let info = StreamInfo {
        participant: pid(p),
        kind,
        rate_hz: rate,
        device: Device {
            conversion: None,
            name: "sim".into(),
            protocol: "synthetic".into(),
            firmware: None,
        },
    };
    r.publish(&Event::new(EventBody::Stream(Arc::new(info))));
}

fn eda(p: &str, seq: u64, marker: f64) -> Arc<Event> {
    Event::new(EventBody::Samples(Chunk {
        raw: None,
        meta: None,
        participant: pid(p),
        kind: StreamKind::Eda,
        seq,
        host_t: seq as f64 + 0.25,
        timing: Timing::Uniform {
            t0: seq as f64,
            rate_hz: 4.0,
        },
        samples: vec![marker, 1.0, 2.0, 3.0],
    }))
}

fn read(path: &Path) -> (Reader<BufReader<std::fs::File>>, Vec<Record>) {
    let mut r = Reader::open(BufReader::new(std::fs::File::open(path).unwrap())).unwrap();
    let mut v = Vec::new();
    while let Some(x) = r.next_record().unwrap() {
        v.push(x);
    }
    (r, v)
}

fn files(data: &Path, p: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(session_dir(data, &pid(p)))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn recorder(data: &Path) -> (Recorder, Arc<Mutex<Vec<RecorderFailure>>>) {
    let failures = Arc::new(Mutex::new(Vec::new()));
    let f = Arc::clone(&failures);
    let r = Recorder::new(data, Duration::from_millis(20), move |x| {
        f.lock().unwrap().push(x)
    })
    .unwrap();
    (r, failures)
}

#[test]
fn a_session_is_written_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, failures) = recorder(dir.path());
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    declare(&mut r, "p01", StreamKind::Rr, None);
    for i in 0..10 {
        r.publish(&eda("p01", i, 5.0));
    }
    let change = StateChange {
        participant: pid("p01"),
        kind: StreamKind::Eda,
        state: StreamState::Reconnecting,
        since: 10.5,
        reason: None,
    };
    r.publish(&Event::new(EventBody::State(State {
        at: 10.5,
        change,
        clock: None,
        detail: Some("link dropped".into()),
    })));
    r.publish(&Event::new(EventBody::Gap(Gap {
        participant: pid("p01"),
        kind: StreamKind::Eda,
        start: 9.75,
        end: 12.0,
        host_t: 12.0,
        reason: "disconnect".into(),
    })));
    // Flushed to the kernel by the timer, without any further event.
    std::thread::sleep(Duration::from_millis(150));
    let path = files(dir.path(), "p01").pop().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes.iter().filter(|b| **b == b'\n').count(),
        13,
        "header + 12 records"
    );
    let status = r.status();
    assert_eq!(status["files"][0]["records"], 12, "{status}");
    r.close(Duration::from_secs(5)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&session_dir(dir.path(), &pid("p01"))), 0o700);
    let name = path.file_name().unwrap().to_str().unwrap();
    crate::store::participant::check_name(name.trim_end_matches(SESSION_SUFFIX)).unwrap();
    let (reader, recs) = read(&path);
    let h = reader.header();
    assert_eq!(h.participant, pid("p01"));
    let kinds: Vec<_> = h.streams.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        kinds,
        ["eda", "rr"],
        "streams declared before the first data"
    );
    assert!(reader.session().unwrap().live);
    assert_eq!(h.provenance.source, "attune run (live)");
    assert_eq!(recs.len(), 12);
    let Record::Chunk(c) = &recs[3] else { panic!() };
    assert_eq!((c.seq, c.host_t, c.time_of(0)), (3, 3.25, 3.0));
    assert!(matches!(&recs[10], Record::State(s) if s.state == "reconnecting"));
    assert!(!reader.end().unwrap().recovered);
    assert!(failures.lock().unwrap().is_empty());
}

#[test]
fn a_full_queue_becomes_an_explicit_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Recorder::with_queue(dir.path(), Duration::from_millis(20), 1, |_| {}).unwrap();
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    for i in 0..2000 {
        r.publish(&eda("p01", i, 5.0));
    }
    let lagged = r.handle().dropped(DropReason::Lagged);
    assert!(lagged > 0, "a queue of one must overflow");
    r.close(Duration::from_secs(5)).unwrap();
    let (_, recs) = read(&files(dir.path(), "p01")[0]);
    let chunks = recs
        .iter()
        .filter(|x| matches!(x, Record::Chunk(_)))
        .count() as u64;
    assert_eq!(chunks + lagged, 2000);
    let gaps: Vec<_> = recs
        .iter()
        .filter_map(|x| match x {
            Record::Gap(g) => Some(g),
            _ => None,
        })
        .collect();
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| g.reason == "lagged"),
        "lagged {lagged} chunks {chunks} gaps {gaps:?}"
    );
    assert!(
        !recs
            .iter()
            .any(|x| matches!(x, Record::Gap(g) if g.reason == "sequence_jump")),
        "every jump is explained by a written gap"
    );
}

#[test]
fn revoking_record_closes_the_file_before_consent_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, _) = recorder(dir.path());
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    r.publish(&eda("p01", 0, 5.0));
    // Wait for the file to open.
    let start = std::time::Instant::now();
    while r.status()["files"].as_array().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2));
    }
    r.publish(&eda("p01", 1, 5.0));
    r.consent(&snap(&["p01"], &[Purpose::Process]));
    // Closed, with its end record, as consent() returned.
    let path = files(dir.path(), "p01").pop().unwrap();
    let (reader, _) = read(&path);
    assert_eq!(
        reader.end().unwrap().reason.as_deref(),
        Some("consent_withdrawn")
    );
    for i in 2..5 {
        r.publish(&eda("p01", i, 5.0));
    }
    r.close(Duration::from_secs(5)).unwrap();
    assert_eq!(files(dir.path(), "p01").len(), 1, "nothing reopened");
    assert!(r.handle().dropped(DropReason::WithdrawnAtEgress) >= 3);
}

#[test]
fn close_participant_is_synchronous() {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, _) = recorder(dir.path());
    let h = r.handle();
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    r.publish(&eda("p01", 0, 5.0));
    let start = std::time::Instant::now();
    let path = loop {
        if let Some(p) = h.close_participant(&pid("p01")).unwrap() {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2));
    };
    let (reader, recs) = read(&path);
    assert!(reader.end().is_some());
    assert_eq!(recs.len(), 1);
}

#[test]
fn a_full_disk_stops_one_participant_and_not_another() {
    let dir = tempfile::tempdir().unwrap();
    crate::store::failpoint::arm_error("recorder.write", "enospc-p02");
    let (mut r, failures) = recorder(dir.path());
    r.consent(&snap(&["ok-p01", "enospc-p02"], &all()));
    for p in ["ok-p01", "enospc-p02"] {
        declare(&mut r, p, StreamKind::Eda, Some(4.0));
    }
    for i in 0..20 {
        r.publish(&eda("ok-p01", i, 5.0));
        r.publish(&eda("enospc-p02", i, 5.0));
    }
    r.close(Duration::from_secs(5)).unwrap();
    let (_, recs) = read(&files(dir.path(), "ok-p01")[0]);
    assert_eq!(recs.len(), 20);
    let f = failures.lock().unwrap();
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].participant, pid("enospc-p02"));
    assert!(
        f[0].error.contains("No space left") && !f[0].error.contains('\n'),
        "{}",
        f[0].error
    );
    assert!(r.handle().dropped(DropReason::WriteFailed) >= 1);
}

/// A finished session file of a few records, as bytes.
fn sample_file() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, _) = recorder(dir.path());
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    for i in 0..4 {
        r.publish(&eda("p01", i, 0.1 + f64::from(i as u32)));
    }
    r.close(Duration::from_secs(5)).unwrap();
    std::fs::read(&files(dir.path(), "p01")[0]).unwrap()
}

#[test]
fn repair_at_every_cut_gives_a_readable_whole_line_prefix() {
    let full = sample_file();
    let header_end = full.iter().position(|b| *b == b'\n').unwrap() + 1;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.attune.ndjson");
    let (_, all_recs) = read_bytes(&full);
    for cut in header_end..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let outcome = repair_file(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let (end, recs) = read_bytes(&bytes);
        assert_eq!(recs[..], all_recs[..recs.len()], "cut {cut}: a prefix");
        let whole_lines = full[header_end..cut]
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        if cut == full.len() - 1 {
            // Only the final newline is missing: the end record is whole JSON.
            assert_eq!(outcome, RepairOutcome::Complete, "cut {cut}");
            continue;
        }
        assert!(end.recovered, "cut {cut}: {outcome:?}");
        // A line that lost only its newline is whole JSON, and kept.
        let kept_line = usize::from(full[cut] == b'\n');
        assert_eq!(
            recs.len(),
            (whole_lines + kept_line).min(all_recs.len()),
            "cut {cut}"
        );
        // Idempotent: a second repair changes nothing.
        assert_eq!(repair_file(&path).unwrap(), RepairOutcome::Complete);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
    // A cut inside the header: nothing to keep, the file is removed.
    std::fs::write(&path, &full[..header_end / 2]).unwrap();
    assert_eq!(repair_file(&path).unwrap(), RepairOutcome::Removed);
}

fn read_bytes(b: &[u8]) -> (crate::recording::EndInfo, Vec<Record>) {
    let mut r = Reader::open(std::io::Cursor::new(b.to_vec())).unwrap();
    let mut v = Vec::new();
    while let Some(x) = r.next_record().unwrap() {
        v.push(x);
    }
    (r.end().unwrap().clone(), v)
}

#[test]
fn repair_finishes_a_repair_stopped_between_its_steps() {
    let full = sample_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.attune.ndjson");
    // Stopped after the truncation (repair.truncated): a file ending at a line boundary.
    let last_nl = full[..full.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    std::fs::write(&path, &full[..last_nl]).unwrap();
    assert!(matches!(
        repair_file(&path).unwrap(),
        RepairOutcome::Repaired { cut_bytes: 0, .. }
    ));
    let once = std::fs::read(&path).unwrap();
    // Stopped while writing the end line (repair.ended not reached): half an end line.
    let half = &once[..once.len() - 5];
    std::fs::write(&path, half).unwrap();
    repair_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), once);
    let (end, recs) = read_bytes(&once);
    assert!(end.recovered && end.reason.as_deref() == Some("crash"));
    assert_eq!(recs.len(), 4);
}

#[test]
fn repair_walks_the_sessions_tree() {
    let dir = tempfile::tempdir().unwrap();
    let full = sample_file();
    let d = session_dir(dir.path(), &pid("p01"));
    crate::store::trust::create_private_dir(&sessions_dir(dir.path())).unwrap();
    crate::store::trust::create_private_dir(&d).unwrap();
    std::fs::write(d.join("a.attune.ndjson"), &full).unwrap();
    std::fs::write(d.join("b.attune.ndjson"), &full[..full.len() - 30]).unwrap();
    let done = repair(dir.path()).unwrap();
    assert_eq!(done.len(), 1);
    assert!(done[0].0.ends_with("b.attune.ndjson"));
    assert!(repair(dir.path()).unwrap().is_empty());
}

#[test]
fn forget_and_erasing_recordings_remove_the_sessions_directory() {
    use crate::store::participant::{Part, erase_parts, forget, has_data};
    let scan = |root: &Path, needle: &[u8]| -> usize {
        fn walk(p: &Path, needle: &[u8], n: &mut usize) {
            let Ok(meta) = std::fs::symlink_metadata(p) else {
                return;
            };
            if meta.is_dir() {
                for e in std::fs::read_dir(p).unwrap().flatten() {
                    walk(&e.path(), needle, n);
                }
            } else if let Ok(b) = std::fs::read(p) {
                *n += b.windows(needle.len()).filter(|w| *w == needle).count();
            }
        }
        let mut n = 0;
        walk(root, needle, &mut n);
        n
    };
    for forgetting in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (mut r, _) = recorder(dir.path());
        r.consent(&snap(&["p01"], &all()));
        declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
        // A marker value that shows up in the file's bytes.
        r.publish(&eda("p01", 0, 123_456.789_012_345));
        r.close(Duration::from_secs(5)).unwrap();
        let marker = b"123456.789012345";
        assert_eq!(scan(dir.path(), marker), 1, "positive control");
        let p = pid("p01");
        assert!(has_data(dir.path(), &p));
        let receipt = if forgetting {
            forget(dir.path(), &p, 1).unwrap()
        } else {
            erase_parts(dir.path(), &p, &[Part::Recordings], 1).unwrap()
        };
        assert_eq!(receipt.files_removed, 1);
        assert!(receipt.bytes_removed > 0);
        assert_eq!(scan(dir.path(), marker), 0);
        assert!(!has_data(dir.path(), &p));
        assert!(!session_dir(dir.path(), &p).exists());
        // Idempotent: a re-run finds nothing.
        assert!(forget(dir.path(), &p, 2).is_err());
    }
}

#[test]
fn an_interrupted_sessions_erasure_is_finished_by_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let full = sample_file();
    let root = sessions_dir(dir.path());
    crate::store::trust::create_private_dir(&root).unwrap();
    // As left by a kill at `sessions.moved`.
    let staging = root.join(".forget-p01");
    crate::store::trust::create_private_dir(&staging).unwrap();
    std::fs::write(staging.join("x.attune.ndjson"), &full).unwrap();
    assert!(crate::store::participant::has_data(dir.path(), &pid("p01")));
    let touched = crate::store::participant::recover(dir.path()).unwrap();
    assert_eq!(touched, vec![pid("p01")]);
    assert!(!staging.exists());
}

#[test]
fn sessions_are_listed_from_header_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut r, _) = recorder(dir.path());
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    for i in 0..10 {
        r.publish(&eda("p01", i, 5.0));
    }
    let start = std::time::Instant::now();
    while r.status()["files"][0]["records"] != 10 {
        assert!(start.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    // Open and being written: shown as open while a daemon runs, as a problem otherwise.
    let open = list_sessions(dir.path(), None, true).unwrap();
    assert!(open[0].open && open[0].problem.is_none(), "{open:?}");
    let closed = list_sessions(dir.path(), None, false).unwrap();
    assert!(closed[0].problem.is_some());
    r.close(Duration::from_secs(5)).unwrap();
    let l = list_sessions(dir.path(), Some(&pid("p01")), false).unwrap();
    assert_eq!(l.len(), 1);
    let e = &l[0];
    assert_eq!(e.streams, ["eda"]);
    assert_eq!(e.duration_s, Some(9.0));
    assert!(!e.open && !e.recovered && e.problem.is_none(), "{e:?}");
    assert!(e.started_unix_ms.is_some() && e.bytes > 0);
    // Cut and repaired: recovered.
    let bytes = std::fs::read(&e.path).unwrap();
    std::fs::write(&e.path, &bytes[..bytes.len() - 40]).unwrap();
    repair(dir.path()).unwrap();
    let l = list_sessions(dir.path(), None, false).unwrap();
    assert!(l[0].recovered && l[0].duration_s == Some(8.0), "{:?}", l[0]);
}

#[test]
fn exports_carry_finished_sessions_verified_like_recordings() {
    use crate::store::export::{VerifiedExport, export};
    use crate::store::participant::ParticipantStore;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let p = pid("p01");
    ParticipantStore::open(&data, &p).unwrap().close().unwrap();
    let (mut r, _) = recorder(&data);
    r.consent(&snap(&["p01"], &all()));
    declare(&mut r, "p01", StreamKind::Eda, Some(4.0));
    r.publish(&eda("p01", 0, 5.0));
    r.close(Duration::from_secs(5)).unwrap();
    let out = dir.path().join("out");
    let s = export(&data, &p, &[], &out).unwrap();
    assert_eq!(s.counts.sessions, 1);
    let listed: Vec<_> = s
        .files
        .iter()
        .filter(|f| f.path.starts_with("sessions/"))
        .collect();
    assert_eq!(listed.len(), 1);
    let session = files(&data, "p01").pop().unwrap();
    assert_eq!(
        std::fs::read(out.join(&listed[0].path)).unwrap(),
        std::fs::read(&session).unwrap()
    );
    assert_eq!(VerifiedExport::read(&out).unwrap().counts().sessions, 1);
    // A changed byte is caught like any listed file.
    let f = out.join(&listed[0].path);
    let mut b = std::fs::read(&f).unwrap();
    b[10] ^= 1;
    std::fs::write(&f, b).unwrap();
    assert!(VerifiedExport::read(&out).is_err());
}
