//! `attune simulate device --protocol P --pty`: a simulated serial device on a kernel
//! pseudo-terminal, for developing and testing without hardware.
//!
//! It opens a pty (raw mode), prints the path to give `attune run --serial` on its first line of
//! standard output, and then behaves like the device: it answers the host's commands through the
//! protocol's [`crate::protocol::DeviceModel`] (version, inquiry, ACKs…) and, while acquisition
//! runs, sends frames at the commanded rate, paced by the monotonic clock, encoding the signals
//! of a simulated person ([`crate::simulate::device_feed`]) or of a recording (`--from`).
//!
//! Faults, for the daemon's fault tests and for trying a setup:
//! - `--corrupt PCT`: PCT % of frames get one random bit flipped (seeded).
//! - `--unplug-after S --replug-after S`: after S s of streaming the pty is closed (the host's
//!   reads fail as on an unplugged adapter) and the device loses power; after the second S a new
//!   pty appears behind the same path. `--cycles N` repeats (0: forever).
//!
//! The printed path is a symbolic link (`--link PATH`, or one in a fresh temporary directory)
//! re-pointed at each replug and removed at exit: a closed pty's `/dev/pts/N` never comes back,
//! and the kernel gives its number to the next pty opened, so a daemon still retrying that number
//! could otherwise open another simulator's device.
//!
//! Events go to standard error as one JSON object per line (`{"event":"replug","unix_ms":…}`,
//! `{"event":"stats",…}` at the end), so tests can time reconnects. A device whose host does not
//! read loses bytes (a UART does not wait); they are counted. Ends on SIGINT/SIGTERM or after
//! `--seconds`.

use super::Common;
use crate::protocol::{DeviceModel, ProtocolId};
use crate::simulate::device_feed::Feed;
use anyhow::{Context, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Arguments of `simulate device`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  attune simulate device --protocol bitalino --pty\n  attune simulate device --protocol shimmer --pty --corrupt 1\n  attune simulate device --protocol textline --pty --unplug-after 20 --replug-after 3 --cycles 0\n  attune simulate device --protocol bitalino --pty --from fixtures/sim-rest-stress.attune.ndjson\n\nThen, in another terminal (PATH is the first line printed):\n  attune consent grant --participant p01 --stream all --purpose process,adapt,share_features\n  attune run --serial PATH --protocol bitalino --participant p01"
)]
pub struct DeviceArgs {
    /// The protocol the device speaks.
    #[arg(long, value_name = "P", value_parser = ["bitalino", "shimmer", "textline"])]
    pub protocol: String,
    /// Serve on a pseudo-terminal (the only transport).
    #[arg(long)]
    pub pty: bool,
    /// Stream the signals of this recording (its ECG, EDA and PPG; ECG/PPG synthesised from its
    /// beats if it has none) instead of a simulated person.
    #[arg(long, value_name = "RECORDING")]
    pub from: Option<PathBuf>,
    /// The simulated person (and the corruption's random draws).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The device's sampling rate where the device sets it (text lines), Hz; BITalino and
    /// Shimmer sample at the rate the host commands.
    #[arg(long, value_name = "HZ")]
    pub rate: Option<f64>,
    /// The device's protocol settings as JSON (the keys of a config file's
    /// `[participant.source.settings]`; give the daemon the same).
    #[arg(long, value_name = "JSON")]
    pub settings: Option<String>,
    /// Flip one random bit in this percentage of frames (0-50).
    #[arg(long, value_name = "PCT", default_value_t = 0.0)]
    pub corrupt: f64,
    /// Unplug after this many seconds of streaming.
    #[arg(long, value_name = "S")]
    pub unplug_after: Option<f64>,
    /// Plug back in this many seconds after an unplug.
    #[arg(long, value_name = "S", default_value_t = 2.0)]
    pub replug_after: f64,
    /// Unplug/replug cycles (0: forever).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub cycles: u32,
    /// The stable path (a symbolic link) to print and re-point at each replug.
    #[arg(long, value_name = "PATH")]
    pub link: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f64>,
    /// Length of the simulated person's signals before they loop, minutes (rest, then a
    /// stressor from the middle on).
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
}

/// Counters printed at the end.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
struct Counters {
    frames: u64,
    corrupted: u64,
    bytes_dropped: u64,
    unplugs: u64,
}

/// One pty "plug": the master side and our copy of the slave (kept open so the master does not
/// see a hang-up while the host re-opens the port).
struct Plug {
    master: File,
    _slave: std::os::fd::OwnedFd,
    path: PathBuf,
}

fn plug() -> anyhow::Result<Plug> {
    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
    let pty = nix::pty::openpty(None, None).context("cannot open a pseudo-terminal")?;
    let mut t = tcgetattr(&pty.slave).context("cannot read the pty's settings")?;
    cfmakeraw(&mut t);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &t).context("cannot make the pty raw")?;
    let path = nix::unistd::ttyname(&pty.slave).context("the pty has no name")?;
    let flags = nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_GETFL)
        .context("cannot read the pty's flags")?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&pty.master, nix::fcntl::FcntlArg::F_SETFL(flags))
        .context("cannot make the pty non-blocking")?;
    Ok(Plug {
        master: File::from(pty.master),
        _slave: pty.slave,
        path,
    })
}

/// Points `link` at `target` atomically (a new link renamed over the old one).
fn point(link: &Path, target: &Path) -> anyhow::Result<()> {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("cannot create the link {}", tmp.display()))?;
    std::fs::rename(&tmp, link).with_context(|| format!("cannot replace {}", link.display()))?;
    Ok(())
}

fn event(name: &str, extra: serde_json::Value) {
    let unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut v = serde_json::json!({"event": name, "unix_ms": unix_ms});
    if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    eprintln!("{v}");
}

/// The signals the device measures.
fn feed(a: &DeviceArgs, rate: f64) -> anyhow::Result<Feed> {
    if let Some(path) = &a.from {
        let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut r = crate::recording::Reader::open(std::io::BufReader::new(f))
            .with_context(|| format!("{}", path.display()))?;
        let mut records = Vec::new();
        while let Some(rec) = r
            .next_record()
            .with_context(|| format!("{}", path.display()))?
        {
            records.push(rec);
        }
        return Feed::from_records(&records, rate, a.seed).with_context(|| {
            format!(
                "{} has no ECG, EDA, PPG or beats for a device to stream",
                path.display()
            )
        });
    }
    Ok(Feed::simulated(
        a.seed,
        a.minutes,
        rate,
        crate::simulate::Scenario::RestThenStress,
    ))
}

/// Runs `simulate device` until SIGINT/SIGTERM (or `--seconds`).
pub async fn run(common: &Common, a: &DeviceArgs) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    super::cancel_on_signals(stop.clone()).context("cannot install signal handlers")?;
    let _ = common;
    let a = DeviceArgs { ..a.clone() };
    tokio::task::spawn_blocking(move || serve(&a, &stop))
        .await
        .context("the simulated device failed")?
}

fn serve(a: &DeviceArgs, stop: &CancellationToken) -> anyhow::Result<()> {
    if !a.pty {
        bail!("give --pty: a pseudo-terminal is the only transport of a simulated device");
    }
    anyhow::ensure!(
        a.corrupt.is_finite() && (0.0..=50.0).contains(&a.corrupt),
        "--corrupt must be between 0 and 50 %, not {}",
        a.corrupt
    );
    if let Some(s) = a.unplug_after {
        anyhow::ensure!(s.is_finite() && s > 0.0, "--unplug-after must be > 0 s");
    }
    anyhow::ensure!(
        a.minutes.is_finite() && (1.0..=240.0).contains(&a.minutes),
        "--minutes must be between 1 and 240, not {}",
        a.minutes
    );
    anyhow::ensure!(
        a.replug_after.is_finite() && a.replug_after >= 0.0,
        "--replug-after must be ≥ 0 s"
    );
    let protocol: ProtocolId = a.protocol.parse().map_err(anyhow::Error::msg)?;
    let mut settings = super::run::settings_of(protocol, a.settings.as_deref())?;
    if let Some(hz) = a.rate {
        settings
            .set_rate(hz)
            .map_err(|m| anyhow::anyhow!("--rate: {m}"))?;
    }
    settings.check().map_err(anyhow::Error::msg)?;
    // The signals are made at the highest rate the device may be commanded to.
    let feed_rate = match protocol {
        ProtocolId::Bitalino => 1000.0,
        ProtocolId::Shimmer => 1024.0,
        ProtocolId::Textline => settings.rate_hz().max(25.0),
    };
    let feed = feed(a, feed_rate)?;
    // Always a link: a pty's /dev/pts/N is reused by the next pty opened after it closes, so a
    // daemon still retrying the old number could open somebody else's device.
    let link = match &a.link {
        Some(l) => l.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("attune-sim-{}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.join(format!("{protocol}-tty"))
        }
    };
    let link = Some(link);
    let mut device = settings.device();
    let mut plugged = Some(plug()?);
    let first = match (&link, &plugged) {
        (Some(l), Some(p)) => {
            point(l, &p.path)?;
            l.clone()
        }
        (None, Some(p)) => p.path.clone(),
        (_, None) => bail!("no pty"),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", first.display())?;
        out.flush()?;
    }
    let mut sim = Sim {
        rng: ChaCha8Rng::seed_from_u64(a.seed ^ 0x5eed_c0de),
        corrupt: a.corrupt / 100.0,
        counters: Counters::default(),
        started: None,
        sent: 0,
        frame: Vec::new(),
        wire: Vec::new(),
    };
    let began = Instant::now();
    let mut streaming_since: Option<Instant> = None;
    let mut unplugged_at: Option<Instant> = None;
    let mut cycles = 0u32;
    let mut buf = [0u8; 1024];
    let mut reply = Vec::new();
    while !stop.is_cancelled() {
        if a.seconds
            .is_some_and(|s| began.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        let Some(p) = plugged.as_mut() else {
            // Unplugged: wait, then a new pty behind the link.
            let since = unplugged_at.unwrap_or_else(Instant::now);
            if since.elapsed().as_secs_f64() >= a.replug_after {
                let p = plug()?;
                if let Some(l) = &link {
                    point(l, &p.path)?;
                }
                event(
                    "replug",
                    serde_json::json!({"pty": p.path.display().to_string()}),
                );
                plugged = Some(p);
                unplugged_at = None;
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
            continue;
        };
        // Wait for host bytes or the next frame.
        let wait = sim.wait_ms(device.as_ref());
        let readable = {
            let mut fds = [PollFd::new(p.master.as_fd(), PollFlags::POLLIN)];
            let timeout =
                PollTimeout::try_from(Duration::from_millis(wait)).unwrap_or(PollTimeout::ZERO);
            match poll(&mut fds, timeout) {
                Ok(n) if n > 0 => fds[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLIN)),
                _ => false,
            }
        };
        if readable {
            match p.master.read(&mut buf) {
                Ok(n) if n > 0 => {
                    reply.clear();
                    device.on_host_bytes(buf.get(..n).unwrap_or(&[]), &mut reply);
                    sim.send(p, &reply);
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // EIO: no slave open at the moment (the host is between connections).
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        match device.streaming_rate() {
            Some(rate) => {
                let since = *streaming_since.get_or_insert_with(Instant::now);
                sim.stream(p, device.as_mut(), &feed, rate);
                let more = a.cycles == 0 || cycles < a.cycles;
                if let Some(after) = a.unplug_after
                    && more
                    && since.elapsed().as_secs_f64() >= after
                {
                    plugged = None;
                    device.power_cycle();
                    sim.started = None;
                    streaming_since = None;
                    unplugged_at = Some(Instant::now());
                    sim.counters.unplugs += 1;
                    event("unplug", serde_json::json!({}));
                    cycles += 1;
                }
            }
            None => {
                sim.started = None;
                streaming_since = None;
            }
        }
    }
    if plugged.is_some() {
        // Let the host read what is still in the pty before it closes: a closed pty's pending
        // bytes are never delivered.
        std::thread::sleep(LINGER);
    }
    drop(plugged);
    finish(&sim.counters, link.as_deref());
    Ok(())
}

/// How long the pty stays open after the last frame when the simulator stops.
const LINGER: Duration = Duration::from_millis(500);

fn finish(c: &Counters, link: Option<&Path>) {
    if let Some(l) = link {
        let _ = std::fs::remove_file(l);
        // Our own temporary directory goes too (a `--link` elsewhere leaves its directory).
        if let Some(dir) = l.parent()
            && dir.file_name().is_some_and(|n| {
                n.to_string_lossy() == format!("attune-sim-{}", std::process::id())
            })
        {
            let _ = std::fs::remove_dir(dir);
        }
    }
    event("stats", serde_json::to_value(c).unwrap_or_default());
}

/// Frame pacing and corruption.
struct Sim {
    rng: ChaCha8Rng,
    corrupt: f64,
    counters: Counters,
    /// When acquisition started.
    started: Option<Instant>,
    /// Frames sent since.
    sent: u64,
    frame: Vec<u8>,
    wire: Vec<u8>,
}

impl Sim {
    /// How long to wait for host bytes before the next frame is due, ms.
    fn wait_ms(&self, device: &dyn DeviceModel) -> u64 {
        match (device.streaming_rate(), self.started) {
            (Some(_), None) => 0,
            (Some(_), Some(_)) => 2,
            (None, _) => 20,
        }
    }

    fn send(&mut self, p: &mut Plug, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match p.master.write(rest) {
                Ok(0) => break,
                Ok(n) => rest = rest.get(n..).unwrap_or(&[]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.counters.bytes_dropped += rest.len() as u64;
    }

    /// Sends every frame due at `rate`.
    fn stream(&mut self, p: &mut Plug, device: &mut dyn DeviceModel, feed: &Feed, rate: f64) {
        let started = *self.started.get_or_insert_with(|| {
            self.sent = 0;
            Instant::now()
        });
        let due = (started.elapsed().as_secs_f64() * rate).floor() as u64 + 1;
        self.wire.clear();
        while self.sent < due {
            let t = self.sent as f64 / rate;
            self.frame.clear();
            device.encode(&feed.at(t), &mut self.frame);
            if self.corrupt > 0.0 && !self.frame.is_empty() && self.rng.random_bool(self.corrupt) {
                let bit = self.rng.random_range(0..self.frame.len() * 8);
                if let Some(b) = self.frame.get_mut(bit / 8) {
                    *b ^= 1 << (bit % 8);
                    self.counters.corrupted += 1;
                }
            }
            self.wire.extend_from_slice(&self.frame);
            self.sent += 1;
            self.counters.frames += 1;
        }
        if !self.wire.is_empty() {
            let wire = std::mem::take(&mut self.wire);
            self.send(p, &wire);
            self.wire = wire;
        }
    }
}
