//! `attune replay FILE...`: the daemon with recordings as its source (several files replay on one
//! timeline, e.g. a dyad).

use super::Common;
use crate::daemon::{self, Plan, SourcePlan, Speed, Timeline};
use crate::model::ParticipantId;
use crate::publish::server::ServerConfig;
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  attune replay fixtures/sim-rest-stress.attune.ndjson --speed 10\n  attune replay --raw capture.attune-raw.ndjson --protocol bitalino --speed max\n  attune replay fixtures/sim-rest-stress.attune.ndjson --speed max --wait-subscribers 1 &\n  attune listen --topics adaptation --count 5"
)]
pub struct ReplayArgs {
    /// The recordings (attune recording format v1); `-` reads one from standard input. Several
    /// files replay together on one timeline, each under its own participant.
    #[arg(required_unless_present = "raw", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Replay a raw serial capture (`attune run --serial ... --record-raw FILE`) through the
    /// protocol's decoder instead of a recording; needs --protocol.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "files",
        requires = "protocol"
    )]
    pub raw: Option<PathBuf>,
    /// The raw capture's protocol (it must match the capture's header).
    #[arg(long, value_name = "P", value_parser = ["bitalino", "shimmer", "textline"], requires = "raw")]
    pub protocol: Option<String>,
    /// Pacing: a multiple of real time (1 = real time) or "max".
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    pub speed: Speed,
    /// Publish under this participant id instead of the recording's (consent stays the
    /// recording's); one file only.
    #[arg(long, value_name = "ID")]
    pub participant: Option<ParticipantId>,
    /// Hold the replay until this many clients have subscribed.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_hyphen_values = true
    )]
    pub wait_subscribers: usize,
    /// Per-subscriber queue, messages; a slower subscriber loses its oldest and gets `lagged`.
    #[arg(long, value_name = "N", default_value_t = 4096, allow_hyphen_values = true,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue: u32,
}

/// Decodes a raw capture into a recording held in memory.
fn open_raw(
    path: &std::path::Path,
    protocol: &str,
) -> anyhow::Result<crate::sources::replay::Opened> {
    use crate::sources::serial::{raw, replay};
    let protocol: crate::protocol::ProtocolId = protocol.parse().map_err(anyhow::Error::msg)?;
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
    let cap = raw::parse_capture(&text, &name, protocol)?;
    if cap.torn {
        tracing::warn!(capture = %name, "The capture's last line was cut short (a crash?); it is left out.");
    }
    let (bytes, decoded) =
        replay::to_recording(&cap, &name).with_context(|| format!("{name}: cannot decode"))?;
    let s = decoded.stats;
    tracing::info!(
        capture = %name,
        connections = decoded.connections,
        frames = s.frames,
        frames_lost = s.frames_lost,
        crc_errors = s.crc_errors,
        bytes_skipped = s.bytes_skipped,
        "Raw capture decoded."
    );
    Ok(crate::sources::replay::open_bytes(path, bytes)?)
}

/// Runs `replay`.
pub async fn run(common: &Common, a: &ReplayArgs) -> anyhow::Result<()> {
    let server = ServerConfig::new(common.socket_path());
    anyhow::ensure!(
        a.wait_subscribers <= server.max_clients,
        "--wait-subscribers {} exceeds the limit of {} clients",
        a.wait_subscribers,
        server.max_clients
    );
    anyhow::ensure!(
        a.participant.is_none() || a.files.len() == 1,
        "--participant renames a single recording; replay several without it"
    );
    let stop = CancellationToken::new();
    super::cancel_on_signals(stop.clone()).context("cannot install signal handlers")?;
    let opened = match (&a.raw, &a.protocol) {
        (Some(raw), Some(protocol)) => Some(vec![open_raw(raw, protocol)?]),
        _ => daemon::open_recordings(&a.files, &stop).await?,
    };
    let Some(files) = opened else {
        report(
            common,
            &daemon::Summary {
                interrupted: true,
                ..daemon::Summary::default()
            },
        );
        return Ok(());
    };
    let plan = Plan {
        sources: vec![SourcePlan::Replay {
            files,
            rename: a.participant.clone(),
        }],
        timeline: Timeline::Replay(a.speed),
        server,
        data_dir: common.data_dir(),
        wait_subscribers: a.wait_subscribers,
        queue: a.queue as usize,
        input_queue: 1024,
        engine: crate::engine::EngineConfig::default(),
        recorder: None,
        reconfigure: None,
        transports: Vec::new(),
    };
    let file = a
        .files
        .iter()
        .chain(a.raw.iter())
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(daemon::run(plan, stop, Some(tx)));
    if let Ok(socket) = rx.await
        && !common.quiet
    {
        let speed = match a.speed {
            Speed::Max => "max speed".to_owned(),
            Speed::Factor(x) => format!("{x}x real time"),
        };
        let wait = match a.wait_subscribers {
            0 => String::new(),
            n => format!(", waiting for {n} subscriber(s)"),
        };
        let _ = writeln!(
            std::io::stderr(),
            "attune: replaying {file} at {speed} on {}{wait} (Ctrl-C stops)",
            socket.display()
        );
    }
    let summary = task.await.context("the replay task failed")??;
    report(common, &summary);
    Ok(())
}

/// The summary line on stderr.
fn report(common: &Common, summary: &daemon::Summary) {
    if !common.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "attune: replay {} at t = {:.2} s: {} records, {} chunks passed the consent gate, {} dropped{}; published {}",
            if summary.interrupted {
                "stopped"
            } else {
                "finished"
            },
            summary.end_t,
            summary.records,
            summary.chunks_passed,
            summary.chunks_dropped,
            match summary.jumps {
                0 => String::new(),
                n => format!(", {n} silence(s) over 120 s skipped"),
            },
            summary.published_text()
        );
    }
}
