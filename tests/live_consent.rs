//! Consent changes against a live `attune run` with simulated participants, with the real
//! binary: a revoked `record` erases the session file and no new one appears, `forget` erases one
//! participant of a dyad and leaves the other's recording whole, an export holds the session file
//! byte for byte, a revoked `process` for eda stops eda everywhere (features, state, recording),
//! and hostile `mark` requests are refused with nothing written.

use crate::util::{json, read_recording, run_attune_in, scan, wait_for_socket, wait_within};
use attune::model::StreamKind;
use attune::recording::Record;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `attune run ARGS` with a private socket and data directory; its stderr goes to a
/// file outside the data directory (so that a scan of the data directory does not see it, and a
/// chatty daemon never blocks on a full pipe).
struct Run {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("attune.sock");
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_attune"))
            .arg("run")
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Run { child, socket, dir };
        wait_for_socket(&r.socket);
        r
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        run_attune_in(&self.socket, &self.data(), args)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// SIGTERM, and a clean exit within 20 s.
    fn stop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = wait_within(&mut self.child, 20, "attune run");
        assert!(status.success(), "exit {status:?}: {}", self.stderr());
    }

    /// Subscribes to `topics` for everyone; a thread collects every line with the instant it
    /// was read, until the daemon closes the connection.
    fn collect(&self, topics: &[&str]) -> Lines {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut w = s.try_clone().unwrap();
        let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
        write!(
            w,
            "{{\"type\":\"hello\",\"protocol\":1,\"client\":\"test\"}}\n{{\"type\":\"subscribe\",\"participant\":\"*\",\"topics\":[{}]}}\n",
            topics.join(",")
        )
        .unwrap();
        let lines: Lines = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&lines);
        std::thread::spawn(move || {
            let _keep = w;
            let mut r = BufReader::new(s);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if let Ok(v) = serde_json::from_str::<Value>(line.trim_end()) {
                            l.lock().unwrap().push((Instant::now(), v));
                        }
                    }
                }
            }
        });
        lines
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Lines = Arc<Mutex<Vec<(Instant, Value)>>>;

fn snapshot(lines: &Lines) -> Vec<(Instant, Value)> {
    lines.lock().unwrap().clone()
}

/// Polls `f` every 20 ms for up to `secs`; fails with `what` if it never holds.
fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every file under `<data>/sessions/<p>/` (empty if the directory is absent).
fn session_files(data: &Path, p: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("sessions").join(p))
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every path under `dir` (files and directories), for failure messages.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.clone());
            if p.is_dir() {
                out.extend(tree(&p));
            }
        }
    }
    out.sort();
    out
}

fn adaptations_after(lines: &[(Instant, Value)], p: &str, after: Instant) -> usize {
    lines
        .iter()
        .filter(|(at, m)| *at > after && m["type"] == "adaptation" && m["participant"] == p)
        .count()
}

/// `attune mark --participant P LABEL`; succeeds; returns the marker's session time.
fn mark(r: &Run, p: &str, label: &str) -> f64 {
    let (code, out, err) = r.cli(&["mark", "--participant", p, label]);
    assert_eq!(code, Some(0), "mark {p} {label}: {err}");
    // "marked p01 at t = 12.34 s"
    let t = out
        .trim()
        .rsplit("t = ")
        .next()
        .and_then(|s| s.trim_end_matches(" s").parse::<f64>().ok());
    t.unwrap_or_else(|| panic!("no time in {out:?}"))
}

#[test]
fn revoking_record_live_erases_the_session_file_and_no_new_one_appears() {
    const MARKER: &str = "MARKER-XYZ-123";
    let mut r = Run::start(&["--simulate", "p01", "--speed", "20"]);
    let data = r.data();
    let lines = r.collect(&["adaptation"]);
    wait_until(20, "p01's session file", || {
        !session_files(&data, "p01").is_empty()
    });
    mark(&r, "p01", MARKER);
    // The marker reaches the file (flushed every 100 ms): the scan below means something.
    wait_until(10, "the marker in p01's recording", || {
        scan(&data, MARKER) > 0
    });
    let (code, out, err) = r.cli(&[
        "consent",
        "revoke",
        "--participant",
        "p01",
        "--stream",
        "all",
        "--purpose",
        "record",
        "--by",
        "t",
        "--json",
    ]);
    let acked = Instant::now();
    assert_eq!(code, Some(0), "{err}");
    // The answer reports the erasure.
    let v = json(out.trim());
    assert_eq!(v["result"], "appended", "{v}");
    let erased = &v["erased"];
    assert_eq!(erased["participant"], "p01", "no erasure reported: {v}");
    assert!(
        erased["parts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "recordings")),
        "{v}"
    );
    assert!(erased["files_removed"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(erased["bytes_removed"].as_u64().unwrap_or(0) > 0, "{v}");
    let events = v["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["action"] == "data_erased"),
        "no data_erased receipt: {v}"
    );
    // Erased by the time of the answer.
    assert_eq!(
        session_files(&data, "p01"),
        Vec::<PathBuf>::new(),
        "p01's sessions after the acknowledged revoke"
    );
    assert_eq!(
        scan(&data, MARKER),
        0,
        "marker bytes right after the revoke"
    );
    // A marker after the revoke is an event of p01 like any other: it must not be recorded
    // (the session accepts it; whether the command says so is not the point).
    let _ = r.cli(&["mark", "--participant", "p01", "POST-REVOKE-MARK-456"]);
    // For the next 3 s of the run (≈ 60 s of session time at speed 20), no session file for
    // p01 comes back, and decisions keep coming (adapt is still granted).
    let mut reappeared = Vec::new();
    while acked.elapsed() < Duration::from_secs(3) {
        let f = session_files(&data, "p01");
        if !f.is_empty() && reappeared.is_empty() {
            reappeared = f;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        reappeared.is_empty(),
        "a session file for p01 appeared after record was revoked: {reappeared:?}"
    );
    let decided = adaptations_after(&snapshot(&lines), "p01", acked);
    assert!(
        decided >= 10,
        "only {decided} decisions for p01 in the 3 s after the revoke"
    );
    r.stop();
    assert_eq!(
        session_files(&data, "p01"),
        Vec::<PathBuf>::new(),
        "p01's sessions after shutdown"
    );
    assert_eq!(
        scan(&data, MARKER),
        0,
        "the marker's bytes are still in the data directory: {:?}",
        tree(&data)
    );
    assert_eq!(
        scan(&data, "POST-REVOKE-MARK-456"),
        0,
        "a marker sent after the revoke was recorded"
    );
}

#[test]
fn forget_during_a_live_dyad_erases_one_and_the_others_recording_goes_on() {
    const M1: &str = "MARKER-P01-FORGET-77";
    const M2: &str = "MARKER-P02-KEEP-88";
    let mut r = Run::start(&["--simulate", "p01", "--simulate", "p02:9", "--speed", "20"]);
    let data = r.data();
    let lines = r.collect(&["adaptation"]);
    wait_until(20, "both session files", || {
        !session_files(&data, "p01").is_empty() && !session_files(&data, "p02").is_empty()
    });
    mark(&r, "p01", M1);
    mark(&r, "p02", M2);
    wait_until(10, "both markers in the recordings", || {
        scan(&data, M1) > 0 && scan(&data, M2) > 0
    });
    let p02_before = session_files(&data, "p02");
    assert_eq!(p02_before.len(), 1, "{p02_before:?}");
    let size_before = std::fs::metadata(&p02_before[0]).unwrap().len();
    let (code, out, err) = r.cli(&["forget", "--participant", "p01", "--by", "t"]);
    let acked = Instant::now();
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.trim().is_empty(), "forget printed nothing");
    assert_eq!(session_files(&data, "p01"), Vec::<PathBuf>::new());
    assert_eq!(scan(&data, M1), 0, "p01's marker right after forget");
    let _ = r.cli(&["mark", "--participant", "p01", "POST-FORGET-MARK-99"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        session_files(&data, "p01"),
        Vec::<PathBuf>::new(),
        "a session file for p01 came back after forget"
    );
    // p02's file is the same one, and it grew.
    assert_eq!(session_files(&data, "p02"), p02_before);
    let size_after = std::fs::metadata(&p02_before[0]).unwrap().len();
    assert!(
        size_after > size_before,
        "p02's recording stopped growing ({size_before} -> {size_after} bytes)"
    );
    let l = snapshot(&lines);
    assert!(
        adaptations_after(&l, "p02", acked) >= 5,
        "p02's decisions stopped"
    );
    r.stop();
    assert_eq!(
        scan(&data, M1),
        0,
        "p01's marker bytes survive forget: {:?}",
        tree(&data)
    );
    assert_eq!(scan(&data, M2), 1, "p02's marker");
    assert_eq!(
        scan(&data, "POST-FORGET-MARK-99"),
        0,
        "a marker sent after forget was recorded"
    );
    // p02's recording is complete (an `end`, not repaired) and readable whole.
    let (code, out, err) = run_attune_in(&r.socket, &data, &["sessions", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let listed = json(out.trim());
    let listed = listed.as_array().unwrap();
    assert!(
        listed.iter().all(|s| s["participant"] != "p01"),
        "{listed:?}"
    );
    let p02: Vec<&Value> = listed
        .iter()
        .filter(|s| s["participant"] == "p02")
        .collect();
    assert_eq!(p02.len(), 1, "{listed:?}");
    assert_eq!(p02[0]["recovered"], false, "{}", p02[0]);
    assert_eq!(p02[0]["open"], false, "{}", p02[0]);
    assert!(p02[0]["problem"].is_null(), "{}", p02[0]);
    let (header, recs) = read_recording(&p02_before[0]);
    assert_eq!(header.participant.as_str(), "p02");
    let markers: Vec<&str> = recs
        .iter()
        .filter_map(|x| match x {
            Record::Marker(m) => Some(m.label.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(markers, [M2]);
    // Chunks of p02 were recorded after the forget, contiguously per stream.
    let mut seqs: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for x in &recs {
        if let Record::Chunk(c) = x {
            seqs.entry(c.kind.name()).or_default().push(c.seq);
        }
    }
    for (k, s) in &seqs {
        let first = s[0];
        let want: Vec<u64> = (first..first + s.len() as u64).collect();
        assert_eq!(
            s, &want,
            "p02 stream {k}: hole or duplicate in the recording"
        );
    }
}

#[test]

fn an_export_after_a_live_session_holds_its_session_file_byte_for_byte() {
    let mut r = Run::start(&["--simulate", "p01", "--speed", "20"]);
    let data = r.data();
    wait_until(20, "p01's session file", || {
        !session_files(&data, "p01").is_empty()
    });
    mark(&r, "p01", "export-me");
    std::thread::sleep(Duration::from_millis(1500));
    r.stop();
    let files = session_files(&data, "p01");
    assert_eq!(files.len(), 1, "{files:?}");
    let recorded = std::fs::read(&files[0]).unwrap();
    let out_dir = r.dir.path().join("export");
    let (code, _out, err) = run_attune_in(
        &r.socket,
        &data,
        &[
            "export",
            "--participant",
            "p01",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "export failed: {err}");
    // store::export: `sessions/<name>.attune.ndjson`, the session file's own name.
    let name = files[0].file_name().unwrap();
    let exported = out_dir.join("sessions").join(name);
    let got = std::fs::read(&exported).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; export holds {:?}",
            exported.display(),
            tree(&out_dir)
        )
    });
    assert!(
        got == recorded,
        "the exported session differs from the recording"
    );
    let manifest = json(&std::fs::read_to_string(out_dir.join("manifest.json")).unwrap());
    assert_eq!(manifest["participant"], "p01");
    assert_eq!(manifest["counts"]["sessions"], 1, "{manifest}");
    let listed = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == format!("sessions/{}", name.to_str().unwrap()))
        .cloned()
        .unwrap_or_else(|| panic!("not in the manifest: {manifest}"));
    assert_eq!(listed["bytes"], recorded.len() as u64);
}

#[test]
fn revoking_process_for_eda_live_stops_eda_in_features_state_and_recording() {
    const AFTER: &str = "AFTER-EDA-REVOKE";
    let mut r = Run::start(&["--simulate", "p01", "--speed", "20"]);
    let data = r.data();
    let lines = r.collect(&["features", "state"]);
    wait_until(30, "eda features for p01", || {
        snapshot(&lines)
            .iter()
            .any(|(_, m)| m["type"] == "features" && m["scl_us"].is_number())
    });
    wait_until(10, "p01's session file", || {
        !session_files(&data, "p01").is_empty()
    });
    let (code, out, err) = r.cli(&[
        "consent",
        "revoke",
        "--participant",
        "p01",
        "--stream",
        "eda",
        "--purpose",
        "process",
        "--by",
        "t",
        "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v = json(out.trim());
    assert_eq!(v["result"], "appended", "{v}");
    assert!(v["erased"].is_null(), "process is not stored data: {v}");
    // A marker right after the acknowledgement: its time is a reading of the session clock
    // taken after the revocation took effect, and it is an input to the engine after it.
    // `mark` prints t with two decimals: 0.01 s is added so that rounding down cannot make a
    // chunk received before the marker look later than it.
    let t_ack = mark(&r, "p01", AFTER) + 0.01;
    std::thread::sleep(Duration::from_secs(3));
    let (code, out, err) = r.cli(&["status", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let status = json(out.trim());
    let eda_state = status["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "p01")
        .and_then(|p| {
            p["streams"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["stream"] == "eda")
                .cloned()
        })
        .map(|s| s["state"].clone());
    assert_eq!(eda_state, Some(Value::from("no_consent")), "{status}");
    r.stop();
    let l = snapshot(&lines);
    // Subscribers: the no_consent state is published, and from it on (in stream order) no
    // features line carries an EDA value; none whose tick is later than t_ack does either.
    let from = l
        .iter()
        .position(|(_, m)| {
            m["type"] == "state" && m["stream"] == "eda" && m["state"] == "no_consent"
        })
        .expect("no eda no_consent state published");
    let mut after = 0;
    for (i, (_, m)) in l.iter().enumerate() {
        if m["type"] != "features" || m["participant"] != "p01" {
            continue;
        }
        let late = i > from || m["t"].as_f64().unwrap() > t_ack;
        if late {
            after += 1;
            assert!(
                m["scl_us"].is_null() && m["scr_per_min"].is_null(),
                "EDA features after the revoke (t_ack {t_ack}): {m}"
            );
        }
    }
    assert!(after >= 10, "only {after} features lines after the revoke");
    // The recording. Criterion: across p01's session files in order (the recorder closes the
    // file that holds eda when process is withdrawn and opens a new one for rr), (a) no eda
    // chunk comes after the AFTER marker in record order (the marker entered the engine after the
    // revocation took effect, so every later eda chunk would have been admitted under the new
    // consent), and (b) no eda chunk has host_t > t_ack (a session-clock reading taken after the
    // acknowledgement). rr, still granted process and record, goes on past t_ack.
    // In session order: by first record's host_t (names sort `X-2.attune.ndjson` before
    // `X.attune.ndjson`, so name order is not session order).
    let mut files: Vec<(f64, PathBuf)> = session_files(&data, "p01")
        .into_iter()
        .map(|f| {
            let (_, recs) = read_recording(&f);
            (recs.first().map_or(f64::INFINITY, Record::host_t), f)
        })
        .collect();
    files.sort_by(|a, b| a.0.total_cmp(&b.0));
    let files: Vec<PathBuf> = files.into_iter().map(|x| x.1).collect();
    assert!(!files.is_empty());
    let mut seen_marker = false;
    let mut eda_after_marker = Vec::new();
    let mut eda_late = Vec::new();
    let mut rr_late = 0;
    for f in &files {
        let (header, recs) = read_recording(f);
        for x in &recs {
            match x {
                Record::Marker(m) if m.label == AFTER => seen_marker = true,
                Record::Chunk(c) if c.kind == StreamKind::Eda => {
                    if seen_marker {
                        eda_after_marker.push((f.clone(), c.seq, c.host_t));
                    }
                    if c.host_t > t_ack {
                        eda_late.push((f.clone(), c.seq, c.host_t));
                    }
                }
                Record::Chunk(c) if c.kind == StreamKind::Rr && c.host_t > t_ack => rr_late += 1,
                _ => {}
            }
        }
        let _ = header;
    }
    assert!(
        seen_marker,
        "the marker after the revoke is not in the recording: {files:?}"
    );
    assert!(
        eda_after_marker.is_empty(),
        "eda chunks after the revoke's marker: {eda_after_marker:?}"
    );
    assert!(
        eda_late.is_empty(),
        "eda chunks with host_t > t_ack = {t_ack}: {eda_late:?}"
    );
    assert!(
        rr_late > 0,
        "rr stopped being recorded after the eda revoke"
    );
}

/// One request line straight to the control socket, and its answer.
fn raw_control(socket: &Path, line: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The daemon reads at most 64 KiB: a longer line may meet a closed socket.
    let _ = s.write_all(line);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    let _ = BufReader::new(s).read_line(&mut answer);
    answer
}

#[test]
fn hostile_marks_are_refused_in_one_line_and_nothing_is_written() {
    let mut r = Run::start(&["--simulate", "p01", "--speed", "20"]);
    let data = r.data();
    wait_until(20, "p01's session file", || {
        !session_files(&data, "p01").is_empty()
    });
    let long = format!("HOSTILE-LONG-{}", "x".repeat(187));
    assert_eq!(long.chars().count(), 200);
    let refused: Vec<(&str, Vec<String>)> = vec![
        (
            "200 characters",
            vec!["--participant".into(), "p01".into(), long.clone()],
        ),
        (
            "newline",
            vec![
                "--participant".into(),
                "p01".into(),
                "HOSTILE-NL\nforged line".into(),
            ],
        ),
        (
            "ESC",
            vec![
                "--participant".into(),
                "p01".into(),
                "HOSTILE-ESC\x1b[2J\x1b]0;pwned\x07".into(),
            ],
        ),
        (
            "empty",
            vec!["--participant".into(), "p01".into(), String::new()],
        ),
        (
            "CR",
            vec!["--participant".into(), "p01".into(), "HOSTILE-CR\rx".into()],
        ),
        (
            "NUL-free DEL",
            vec![
                "--participant".into(),
                "p01".into(),
                "HOSTILE-DEL\x7f".into(),
            ],
        ),
        (
            "--data not JSON",
            vec![
                "--participant".into(),
                "p01".into(),
                "HOSTILE-DATA".into(),
                "--data".into(),
                "{not json".into(),
            ],
        ),
        (
            "participant not in the session",
            vec!["--participant".into(), "p99".into(), "HOSTILE-P99".into()],
        ),
        (
            // Over the control socket's 64 KiB request limit.
            "--data of 100 KB",
            vec![
                "--participant".into(),
                "p01".into(),
                "HOSTILE-BIG".into(),
                "--data".into(),
                format!("\"{}\"", "z".repeat(100_000)),
            ],
        ),
    ];
    for (what, args) in &refused {
        let mut a: Vec<&str> = vec!["mark"];
        a.extend(args.iter().map(String::as_str));
        let (code, out, err) = r.cli(&a);
        assert!(
            code.is_some_and(|c| c != 0),
            "{what}: accepted ({code:?}) {out}"
        );
        assert!(out.is_empty(), "{what}: stdout {out:?}");
        let e = err.trim_end();
        assert!(!e.is_empty(), "{what}: no error message");
        assert!(!e.contains('\n'), "{what}: not one line: {err:?}");
        assert!(
            !e.chars().any(|c| c.is_control()),
            "{what}: control characters echoed to the terminal: {err:?}"
        );
    }
    // The daemon's own check, bypassing the CLI's: a raw request with a bad label.
    let dd = std::fs::canonicalize(&data).unwrap();
    let control = attune::publish::server::control_socket_path(&r.socket);
    for (what, label) in [
        ("raw 200 characters", long.as_str()),
        ("raw ESC", "HOSTILE-RAW\u{1b}[31m"),
        ("raw newline", "HOSTILE-RAWNL\nx"),
    ] {
        let req = serde_json::json!({"data_dir": dd, "request": {"op": "mark", "participant": "p01", "label": label}});
        let answer = raw_control(&control, format!("{req}\n").as_bytes());
        let v = json(answer.trim());
        assert_eq!(v["result"], "error", "{what}: {v}");
    }
    // Garbage and an oversized line do not take the daemon down.
    let _ = raw_control(&control, b"\xff\xfe garbage\n");
    let mut big = vec![b'{'; 200 * 1024];
    big.push(b'\n');
    let _ = raw_control(&control, &big);
    // A label at the limit is accepted (the checks do not refuse everything).
    let ok = format!("OK-{}", "y".repeat(125));
    mark(&r, "p01", &ok);
    wait_until(10, "the valid marker in the recording", || {
        scan(&data, &ok) > 0
    });
    let (code, _, err) = r.cli(&["status", "--json"]);
    assert_eq!(code, Some(0), "the daemon stopped answering: {err}");
    r.stop();
    assert!(
        !data.join("sessions").join("p99").exists(),
        "{:?}",
        tree(&data)
    );
    for token in [
        "HOSTILE-LONG",
        "HOSTILE-NL",
        "HOSTILE-ESC",
        "HOSTILE-CR",
        "HOSTILE-DEL",
        "HOSTILE-DATA",
        "HOSTILE-P99",
        "HOSTILE-RAW",
        "HOSTILE-BIG",
        "forged line",
    ] {
        assert_eq!(
            scan(&data, token),
            0,
            "{token} was written to the data directory"
        );
    }
    // The only marker recorded is the valid one.
    let mut labels = Vec::new();
    for f in session_files(&data, "p01") {
        let (_, recs) = read_recording(&f);
        labels.extend(recs.into_iter().filter_map(|x| match x {
            Record::Marker(m) => Some(m.label),
            _ => None,
        }));
    }
    assert_eq!(labels, [ok]);
}

#[test]
fn a_label_of_128_non_ascii_characters_is_accepted_as_documented() {
    // `attune mark --help`: "The marker's label (1–128 printable characters)".
    let mut r = Run::start(&["--simulate", "p01", "--speed", "20"]);
    let data = r.data();
    wait_until(20, "p01's session file", || {
        !session_files(&data, "p01").is_empty()
    });
    let label = format!("MARK-{}", "é".repeat(100));
    assert!(label.chars().count() <= 128 && label.len() > 128);
    mark(&r, "p01", &label);
    wait_until(10, "the marker in the recording", || {
        scan(&data, &label) > 0
    });
    r.stop();
}
