//! Test harness: run the pure pipeline over records, and spawn the real binary.

use attune::consent::ConsentSnapshot;
use attune::pipeline::{Output, Pipeline, PipelineConfig};
use attune::recording::{Header, Reader, Record};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Runs the pure pipeline as the daemon does and returns every output.
pub fn run_pipeline(header: &Header, records: &[Record], cfg: PipelineConfig) -> Vec<Output> {
    let consent = ConsentSnapshot::from_manifest(&header.participant, &header.consent);
    let mut p = Pipeline::new(cfg, consent);
    let mut out = Vec::new();
    let mut last = 0.0;
    for r in records {
        p.advance(r.host_t(), &mut out);
        match r {
            Record::Chunk(c) => p.on_chunk(c, &mut out),
            Record::Gap(g) => p.on_gap(g, &mut out),
            Record::Marker(_) => {}
        }
        last = r.host_t();
    }
    p.finish(last, &mut out);
    out
}

/// A running `attune replay` with a private socket and data directory.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `attune replay FILE ARGS...` and waits until its socket accepts connections.
    pub fn replay(file: &Path, args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("attune.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_attune"))
            .arg("replay")
            .arg(file)
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
        let d = Daemon { child, socket, dir };
        d.wait_for_socket();
        d
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("daemon socket {} never appeared", self.socket.display());
    }

    /// Connects and subscribes; returns a line reader.
    pub fn subscribe(&self, topics: &[&str]) -> Subscriber {
        Subscriber::connect(&self.socket, topics)
    }

    /// Waits for exit (with a timeout) and returns (status code, stderr).
    pub fn wait(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).unwrap();
                }
                return (status.code(), err);
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// Runs the real binary with `args`; returns (exit code, stdout, stderr).
pub fn run_attune<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
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

/// Parses a JSON line.
pub fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
}
