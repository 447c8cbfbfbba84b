//! Test harness: run the pure pipeline over records, and spawn the real binary.

use attune::consent::ConsentSnapshot;
use attune::engine::event::{Event, EventBody};
use attune::engine::{Engine, EngineConfig};
use attune::model::ParticipantId;
use attune::pipeline::{Output, PipelineConfig};
use attune::recording::{Header, Reader, Record, Writer};
use attune::simulate::{Scenario, SimConfig, simulate};
use attune::sources::replay_feed::replay_max_speed;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// Reads a whole recording.
pub fn read_recording(path: &Path) -> (Header, Vec<Record>) {
    let file = std::fs::File::open(path).unwrap();
    let mut r = Reader::open(BufReader::new(file)).unwrap();
    let mut recs = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        recs.push(rec);
    }
    (r.header().clone(), recs)
}

/// A simulated resting recording of `participant` (`duration_s` long, drawn from `seed`) as
/// recording-format bytes, with `label` appended to its provenance source.
pub fn simulated_recording(
    participant: &ParticipantId,
    duration_s: f64,
    seed: u64,
    label: &str,
) -> Vec<u8> {
    let mut sim = simulate(&SimConfig {
        scenario: Scenario::Rest,
        duration_s,
        seed,
        participant: participant.clone(),
        eda_rate_hz: 32.0,
    });
    sim.header.provenance.source = format!("{} {label}", sim.header.provenance.source);
    let mut w = Writer::new(Vec::new(), &sim.header).unwrap();
    for r in &sim.records {
        match r {
            Record::Chunk(c) => w.chunk(c.kind.name(), c).unwrap(),
            Record::Gap(g) => w.gap(g.kind.name(), g).unwrap(),
            Record::Marker(m) => w.marker(m).unwrap(),
            Record::State(s) => w.state(s.kind.name(), s).unwrap(),
        }
    }
    w.finish().unwrap()
}

/// Drives the engine with a recording's inputs exactly as `attune replay --speed max` does
/// (participant joins, streams declared, time from 0, silences over 120 s skipped) and returns
/// the events.
pub fn run_engine(header: &Header, records: &[Record], cfg: PipelineConfig) -> Vec<Arc<Event>> {
    let consent = ConsentSnapshot::from_manifest(&header.participant, &header.consent);
    let cfg = EngineConfig {
        pipeline: cfg,
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg, consent);
    let mut out = Vec::new();
    replay_max_speed(
        &mut e,
        header,
        &header.participant,
        records.iter().cloned(),
        |ev| out.push(ev),
    );
    out
}

/// [`run_engine`]'s events as pipeline outputs (features, decisions, states, warnings).
pub fn run_pipeline(header: &Header, records: &[Record], cfg: PipelineConfig) -> Vec<Output> {
    run_engine(header, records, cfg)
        .into_iter()
        .filter_map(|ev| match &ev.body {
            EventBody::Features(p, f) => Some(Output::Features(p.clone(), *f)),
            EventBody::Adaptation(a) => {
                Some(Output::Decision(a.participant.clone(), a.decision.clone()))
            }
            EventBody::State(s) => Some(Output::State(s.change.clone())),
            EventBody::Warning(w) => Some(Output::Warning(w.clone())),
            _ => None,
        })
        .collect()
}

/// A running `attune replay` with a private socket and data directory.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Starts `attune COMMAND... ARGS...` (from the repository root, with `env` added) on a private
/// socket and data directory in a new temporary directory, and waits until the socket accepts
/// connections.
pub fn spawn_daemon(
    command: &[&OsStr],
    args: &[&str],
    env: &[(&str, &str)],
) -> (Child, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("attune.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_attune"))
        .current_dir(root())
        .envs(env.iter().copied())
        .args(command)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_socket(&socket);
    (child, socket, dir)
}

impl Daemon {
    /// Starts `attune replay FILE ARGS...` and waits until its socket accepts connections.
    pub fn replay(file: &Path, args: &[&str]) -> Daemon {
        let (child, socket, dir) =
            spawn_daemon(&[OsStr::new("replay"), file.as_os_str()], args, &[]);
        Daemon { child, socket, dir }
    }

    /// Its data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `attune ARGS` against this daemon and its data directory ([`run_attune_in`]).
    pub fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        run_attune_in(&self.socket, &self.data(), args)
    }

    /// Connects and subscribes; returns a line reader.
    pub fn subscribe(&self, topics: &[&str]) -> Subscriber {
        Subscriber::connect(&self.socket, topics)
    }

    /// Waits for exit (with a timeout) and returns (status code, stderr).
    pub fn wait(mut self) -> (Option<i32>, String) {
        let status = wait_within(&mut self.child, 60, "the daemon");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status.code(), err)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A subscribed client.
pub struct Subscriber {
    reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

impl Subscriber {
    /// Connects, says hello, subscribes to `topics` for all participants.
    pub fn connect(socket: &Path, topics: &[&str]) -> Subscriber {
        Self::connect_for(socket, "*", topics)
    }

    /// Connects, says hello, subscribes to `topics` for `participant`.
    pub fn connect_for(socket: &Path, participant: &str, topics: &[&str]) -> Subscriber {
        let s = UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut writer = s.try_clone().unwrap();
        let topics: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
        write!(
            writer,
            "{{\"type\":\"hello\",\"protocol\":1,\"client\":\"test\"}}\n{{\"type\":\"subscribe\",\"participant\":\"{participant}\",\"topics\":[{}]}}\n",
            topics.join(",")
        )
        .unwrap();
        Subscriber {
            reader: BufReader::new(s),
            writer,
        }
    }

    /// The next line, or None at EOF.
    pub fn line(&mut self) -> Option<String> {
        let mut s = String::new();
        match self.reader.read_line(&mut s) {
            Ok(0) => None,
            Ok(_) => Some(s.trim_end().to_owned()),
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Every line until the daemon closes the connection.
    pub fn all_lines(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.line()).collect()
    }
}

/// Waits until `socket` accepts connections (for up to 20 s).
pub fn wait_for_socket(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while UnixStream::connect(socket).is_err() {
        assert!(
            Instant::now() < deadline,
            "socket {} never appeared",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to `secs` for `child` to exit; kills it and fails the test if it hangs.
pub fn wait_within(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the real binary with `args`; returns (exit code, stdout, stderr).
pub fn run_attune<S: AsRef<OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_attune"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`run_attune`] with `--socket SOCKET --data-dir DATA` after `args`.
pub fn run_attune_in(socket: &Path, data: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.extend([
        "--socket".as_ref(),
        socket.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ]);
    run_attune(&all)
}

/// [`run_attune`] with a deadline: a hang fails the test instead of stalling the suite.
/// Reads at most 1 MiB of stdout (on a thread, so that a command that writes without end
/// cannot block on the pipe).
pub fn run_attune_within(args: &[&str], secs: u64) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attune"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let status = wait_within(&mut child, secs, &format!("attune {args:?}"));
    let out = reader.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (
        status.code(),
        String::from_utf8_lossy(&out).into_owned(),
        err,
    )
}

/// `consent grant --participant P --stream STREAMS --purpose PURPOSES`.
pub const fn grant<'a>(participant: &'a str, streams: &'a str, purposes: &'a str) -> [&'a str; 8] {
    consent_change("grant", participant, streams, purposes)
}

/// `consent revoke --participant P --stream STREAMS --purpose PURPOSES`.
pub const fn revoke<'a>(participant: &'a str, streams: &'a str, purposes: &'a str) -> [&'a str; 8] {
    consent_change("revoke", participant, streams, purposes)
}

const fn consent_change<'a>(
    action: &'a str,
    participant: &'a str,
    streams: &'a str,
    purposes: &'a str,
) -> [&'a str; 8] {
    [
        "consent",
        action,
        "--participant",
        participant,
        "--stream",
        streams,
        "--purpose",
        purposes,
    ]
}

/// Occurrences of `needle` in every byte of every file under `dir`.
pub fn scan(dir: &Path, needle: impl AsRef<[u8]>) -> usize {
    fn walk(dir: &Path, needle: &[u8]) -> usize {
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                n += walk(&p, needle);
            } else {
                let hay = std::fs::read(&p).unwrap();
                n += hay.windows(needle.len()).filter(|w| *w == needle).count();
            }
        }
        n
    }
    walk(dir, needle.as_ref())
}

/// Parses a JSON line.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
}

/// A running `attune run` with a private socket and data directory.
pub struct LiveDaemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl LiveDaemon {
    /// Starts `attune run ARGS...` (relative paths from the repository root) and waits until
    /// its socket accepts connections.
    pub fn start(args: &[&str]) -> LiveDaemon {
        let (child, socket, dir) = spawn_daemon(&[OsStr::new("run")], args, &[]);
        LiveDaemon { child, socket, dir }
    }

    /// Its data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `attune ARGS` against this daemon and its data directory ([`run_attune_in`]).
    pub fn cli(&self, args: &[&str]) -> (Option<i32>, String, String) {
        run_attune_in(&self.socket, &self.data(), args)
    }

    /// `attune status --json` against this daemon, parsed.
    pub fn status(&self) -> serde_json::Value {
        let (code, out, err) = self.cli(&["status", "--json"]);
        assert_eq!(code, Some(0), "attune status --json failed: {err}");
        json(out.trim())
    }

    /// This daemon's publisher `name` in `attune status --json` (panics when it is not there).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub fn publisher(&self, name: &str) -> serde_json::Value {
        let s = self.status();
        publisher(&s, name).unwrap_or_else(|| panic!("no {name} publisher in status: {s}"))
    }

    /// Waits (up to 20 s) until `attune status` lists the publisher `name`: the Unix socket is
    /// up before the other transports have started (bound their ports, for instance).
    #[cfg_attr(not(feature = "ws"), allow(dead_code))]
    pub fn wait_for_publisher(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.status();
            if let Some(p) = publisher(&s, name) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "no {name} publisher within 20 s: {s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Connects and subscribes to `topics` for `participant` (`*` for all).
    pub fn subscribe_for(&self, participant: &str, topics: &[&str]) -> Subscriber {
        Subscriber::connect_for(&self.socket, participant, topics)
    }

    /// Sends `signal`, waits up to 10 s for exit; returns (exit code, stderr, time to exit).
    pub fn stop_with(
        mut self,
        signal: nix::sys::signal::Signal,
    ) -> (Option<i32>, String, Duration) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let t0 = Instant::now();
        nix::sys::signal::kill(pid, signal).unwrap();
        let status = wait_within(&mut self.child, 10, "the live daemon after a signal");
        let elapsed = t0.elapsed();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            e.read_to_string(&mut err).unwrap();
        }
        (status.code(), err, elapsed)
    }

    /// [`LiveDaemon::stop_with`] SIGTERM.
    pub fn stop(self) -> (Option<i32>, String, Duration) {
        self.stop_with(nix::sys::signal::Signal::SIGTERM)
    }
}

impl Drop for LiveDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The median and the maximum of `xs` (not empty).
pub fn median_max(xs: &[Duration]) -> (Duration, Duration) {
    let mut v = xs.to_vec();
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

/// A daemon and its data directory, which outlives it (`LiveDaemon::stop` removes its own).
pub struct Served {
    pub d: LiveDaemon,
    pub data: PathBuf,
    pub _keep: tempfile::TempDir,
}

/// `attune run ARGS` with a data directory where p01 has consented to `purposes` first.
pub fn daemon_with_consent(purposes: &str, args: &[&str]) -> Served {
    daemon_with_consent_env(purposes, args, &[])
}

/// [`daemon_with_consent`] with `env` added to the daemon's environment.
pub fn daemon_with_consent_env(purposes: &str, args: &[&str], env: &[(&str, &str)]) -> Served {
    daemon_with_consents(&["p01"], purposes, args, env)
}

/// [`daemon_with_consent_env`] where each of `participants` has consented to `purposes`.
pub fn daemon_with_consents(
    participants: &[&str],
    purposes: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Served {
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run").join("attune.sock");
    let d = data.to_str().unwrap();
    for p in participants {
        let mut g: Vec<&str> = grant(p, "all", purposes).to_vec();
        g.extend(["--data-dir", d]);
        let (code, _, err) = run_attune(&g);
        assert_eq!(code, Some(0), "{err}");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_attune"))
        .current_dir(crate::util::root())
        .envs(env.iter().copied())
        .arg("run")
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(&data)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_socket(&socket);
    Served {
        d: LiveDaemon { child, socket, dir },
        data,
        _keep: keep,
    }
}

/// Reads lines until `pred` holds for one (or `secs` pass); returns every line read.
pub fn read_until(
    s: &mut Subscriber,
    secs: u64,
    mut pred: impl FnMut(&serde_json::Value) -> bool,
) -> (bool, Vec<serde_json::Value>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(line) = s.line() else { break };
        let v = json(&line);
        let hit = pred(&v);
        seen.push(v);
        if hit {
            return (true, seen);
        }
    }
    (false, seen)
}

/// The one recording of p01 in `data`.
pub fn recording_of(data: &Path) -> PathBuf {
    let dir = data.join("sessions").join("p01");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

/// CPU seconds (user + system) the process `pid` has used.
#[cfg_attr(
    not(any(feature = "osc", feature = "mqtt", feature = "ws")),
    allow(dead_code)
)]
pub fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// The daemon's CPU share of one core over `secs` s of a live run at real time with
/// participants `p000..` and `extra` arguments.
#[cfg_attr(
    not(any(feature = "osc", feature = "mqtt", feature = "ws")),
    allow(dead_code)
)]
pub fn cpu_share(participants: usize, extra: &[&str], secs: f64) -> f64 {
    let ids: Vec<String> = (0..participants).map(|i| format!("p{i:03}")).collect();
    let mut args: Vec<&str> = vec!["--speed", "1", "--no-record"];
    for id in &ids {
        args.extend(["--simulate", id.as_str()]);
    }
    args.extend(extra);
    let d = LiveDaemon::start(&args);
    std::thread::sleep(Duration::from_secs(5));
    let (c0, t0) = (cpu_s(d.child.id()), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let share = (cpu_s(d.child.id()) - c0) / t0.elapsed().as_secs_f64();
    d.stop();
    share
}

/// Prints the p50 and p99 of `lat` (seconds, sorted here) in ms for a transport measurement,
/// after checking there are enough (`what` names them).
#[cfg_attr(
    not(any(feature = "osc", feature = "mqtt", feature = "ws")),
    allow(dead_code)
)]
pub fn report_latency(label: &str, what: &str, mut lat: Vec<f64>) {
    lat.sort_by(f64::total_cmp);
    assert!(lat.len() > 50, "{} matched {what}", lat.len());
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize] * 1000.0;
    eprintln!(
        "{label} added latency vs the Unix socket over {} {what}: p50 {:.3} ms, p99 {:.3} ms",
        lat.len(),
        q(0.5),
        q(0.99)
    );
}

/// A loopback TCP port that was free a moment ago (for a server a test starts).
#[cfg_attr(not(any(feature = "mqtt", feature = "ws")), allow(dead_code))]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The publisher `name` (`unix`, `recorder`, `websocket`, `mqtt`, `lsl`, …) of an `attune status
/// --json` object.
pub fn publisher(status: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    status["publishers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name).cloned())
}
