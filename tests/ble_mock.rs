//! TEST HARNESS ONLY: a private dbus-daemon where python-dbusmock's `bluez5` template plays
//! BlueZ, with `firmware-protocols/simulators/ble/ble_scenario.py` adding fake heart-rate straps
//! (DEVICES.md §8.2). The bus address goes to children through `Command::env` only.

use crate::util::root;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// The interpreter that sees Debian's dbus-python and dbusmock (never a venv's).
pub const PYTHON: &str = "/usr/bin/python3";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The simulator directory.
pub fn sim_dir() -> PathBuf {
    root().join("firmware-protocols/simulators/ble")
}

/// A running mock BlueZ: dbus-daemon, dbusmock and the scenario. Drop ends all three.
pub struct MockBluez {
    address: String,
    daemon: Option<Child>,
    mock: Option<Child>,
    scenario: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    log: Mutex<EventLog>,
}

#[derive(Default)]
struct EventLog {
    all: Vec<Value>,
    cursor: usize,
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Retries `f` every 50 ms until it returns true or `timeout` passes.
fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `dbus-send --system --print-reply ARGS` against `address`; stdout on success.
pub fn dbus_send(address: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new("dbus-send")
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .args(["--system", "--print-reply"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("dbus-send: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn exited(child: &mut Option<Child>) -> Option<String> {
    match child.as_mut().map(|c| c.try_wait()) {
        Some(Ok(Some(status))) => Some(status.to_string()),
        _ => None,
    }
}

impl MockBluez {
    /// Starts the bus, the mock and `ble_scenario.py ARGS`, and waits for the scenario's `ready`.
    pub fn start(args: &[&str]) -> Result<MockBluez, String> {
        let have = |cmd: &mut Command| {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !have(Command::new("dbus-daemon").arg("--version")) {
            return Err("dbus-daemon not found (apt-get install dbus)".into());
        }
        if !have(Command::new(PYTHON).args(["-c", "import dbus, dbusmock"])) {
            return Err(format!(
                "{PYTHON} cannot import dbusmock (apt-get install python3-dbusmock)"
            ));
        }
        let address = format!(
            "unix:abstract=attune-ble-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, events) = channel();
        let mut m = MockBluez {
            address,
            daemon: None,
            mock: None,
            scenario: None,
            stdin: None,
            events,
            log: Mutex::new(EventLog::default()),
        };
        // From here on, Drop cleans up whatever was started.
        m.daemon = Some(
            Command::new("dbus-daemon")
                .arg(format!(
                    "--config-file={}",
                    sim_dir().join("bus.conf").display()
                ))
                .arg(format!("--address={}", m.address))
                .arg("--nofork")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("dbus-daemon: {e}"))?,
        );
        let up = wait_until(Duration::from_secs(10), || {
            dbus_send(
                &m.address,
                &[
                    "--dest=org.freedesktop.DBus",
                    "/",
                    "org.freedesktop.DBus.GetId",
                ],
            )
            .is_ok()
        });
        if !up {
            return Err(format!(
                "private dbus-daemon did not answer ({:?})",
                exited(&mut m.daemon)
            ));
        }
        m.mock = Some(
            Command::new(PYTHON)
                .args(["-m", "dbusmock", "--system", "-t", "bluez5"])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &m.address)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("dbusmock: {e}"))?,
        );
        let up = wait_until(Duration::from_secs(10), || {
            dbus_send(
                &m.address,
                &[
                    "--dest=org.freedesktop.DBus",
                    "/",
                    "org.freedesktop.DBus.GetNameOwner",
                    "string:org.bluez",
                ],
            )
            .is_ok()
        });
        if !up {
            return Err(format!(
                "dbusmock did not take org.bluez ({:?})",
                exited(&mut m.mock)
            ));
        }
        let mut scenario = Command::new(PYTHON)
            .arg(sim_dir().join("ble_scenario.py"))
            .args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &m.address)
            .env_remove("BLE_SCENARIO_ARGS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("ble_scenario.py: {e}"))?;
        m.stdin = scenario.stdin.take();
        let stdout = scenario.stdout.take().ok_or("no scenario stdout")?;
        m.scenario = Some(scenario);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "unparsed", "line": line}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        match m.next_event("ready", Duration::from_secs(15)) {
            Some(_) => Ok(m),
            None => Err(format!(
                "scenario never said ready (exit: {:?}; events: {:?})",
                exited(&mut m.scenario),
                m.events_seen()
            )),
        }
    }

    /// The bus address: pass it as `DBUS_SYSTEM_BUS_ADDRESS` to a child, never via set_var.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Sends one control command line (`disconnect`, `silence 3`, `away`, `quit`, …).
    pub fn send(&mut self, cmd: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{cmd}");
            let _ = stdin.flush();
        }
    }

    /// The next event named `name` within `timeout`, skipping (and logging) others.
    pub fn next_event(&self, name: &str, timeout: Duration) -> Option<Value> {
        let end = Instant::now() + timeout;
        let mut guard = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let EventLog { all, cursor } = &mut *guard;
        loop {
            // events already received (e.g. by events_seen) but not yet consumed come first
            while *cursor < all.len() {
                let v = &all[*cursor];
                *cursor += 1;
                if v.get("event").and_then(Value::as_str) == Some(name) {
                    return Some(v.clone());
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => all.push(v),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Every event received so far, consumed by `next_event` or not.
    pub fn events_seen(&self) -> Vec<Value> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok(v) = self.events.try_recv() {
            log.all.push(v);
        }
        log.all.clone()
    }
}

impl Drop for MockBluez {
    fn drop(&mut self) {
        self.stdin = None;
        kill(&mut self.scenario);
        kill(&mut self.mock);
        kill(&mut self.daemon);
    }
}

/// Starts the mock, or prints `SKIPPED: …` and returns None. With `ATTUNE_REQUIRE_BLE_MOCK=1`
/// (CI) a missing mock is a failure instead.
pub fn start_or_skip(args: &[&str]) -> Option<MockBluez> {
    match MockBluez::start(args) {
        Ok(m) => Some(m),
        Err(reason) => {
            if std::env::var("ATTUNE_REQUIRE_BLE_MOCK").as_deref() == Ok("1") {
                panic!("BLE mock required (ATTUNE_REQUIRE_BLE_MOCK=1) but unavailable: {reason}");
            }
            eprintln!("SKIPPED: BLE mock unavailable: {reason}");
            None
        }
    }
}
