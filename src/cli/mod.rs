//! Command line: argument types, logging setup, and the one place errors become exit codes.
//!
//! Each subcommand lives in its own module. Errors print as one line on stderr
//! (`attune: <what>: <why>`) with exit code 1; usage errors exit 2 (clap).

mod analyze;
mod client;
pub(crate) mod consent;
mod control_client;
mod data;
mod demo;
mod listen;
mod replay;
mod simulate;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// attune: consent-gated biofeedback signals for adaptive exercises.
#[derive(Debug, Parser)]
#[command(name = "attune", version, about, long_about = None,
          after_help = "Start here:\n  attune demo          replay the bundled rest-then-stress fixture and show decisions")]
pub struct Args {
    /// Flags every command takes.
    #[command(flatten)]
    pub common: Common,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Socket path [default: $XDG_RUNTIME_DIR/attune/attune.sock, or /tmp/attune-UID/attune.sock].
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Data directory [default: $XDG_DATA_HOME/attune, or ~/.local/share/attune].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon with a recording as its source.
    Replay(replay::ReplayArgs),
    /// Subscribe to a running daemon and print its messages.
    Listen(listen::ListenArgs),
    /// Write a synthetic recording.
    Simulate(simulate::SimulateArgs),
    /// Replay the bundled fixture through the real socket and show the decisions.
    Demo(demo::DemoArgs),
    /// Offline features of one signal (CSV or recording) as JSON, NeuroKit2-compatible.
    Analyze(analyze::AnalyzeArgs),
    /// The consent ledger: grant, revoke, show, history, verify.
    #[command(subcommand)]
    Consent(consent::ConsentCommand),
    /// Erase everything held about a participant (keeps only a receipt in the ledger).
    Forget(data::ForgetArgs),
    /// Write everything held about a participant to a directory (JSON/CSV).
    Export(data::ExportArgs),
    /// Restore a participant's data from an export.
    Import(data::ImportArgs),
}

impl Common {
    /// The socket path to use.
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(crate::publish::server::default_socket_path)
    }

    /// The data directory to use.
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        match (std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME")) {
            (Some(x), _) if !x.is_empty() => PathBuf::from(x).join("attune"),
            (_, Some(h)) if !h.is_empty() => PathBuf::from(h).join(".local/share/attune"),
            _ => PathBuf::from(".attune-data"),
        }
    }
}

fn init_logging(c: &Common) {
    let default = match (c.quiet, c.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_env("ATTUNE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match c.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs the command and returns the process exit code.
pub fn main(args: Args) -> ExitCode {
    // Every file and socket the daemon creates is private; set before any thread exists
    // (the umask is process-wide; RELIABILITY.md, Unix socket recipe step 2).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    init_logging(&args.common);
    let result = match &args.command {
        Command::Simulate(a) => simulate::run(&args.common, a),
        Command::Analyze(a) => analyze::run(&args.common, a),
        Command::Consent(c) => consent::run(&args.common, c),
        Command::Forget(a) => data::run_forget(&args.common, a),
        Command::Export(a) => data::run_export(&args.common, a),
        Command::Import(a) => data::run_import(&args.common, a),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    match command {
                        Command::Replay(a) => replay::run(&args.common, a).await,
                        Command::Listen(a) => listen::run(&args.common, a).await,
                        Command::Demo(a) => demo::run(&args.common, a).await,
                        _ => Ok(()),
                    }
                })
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr (`2>&1 | head`) must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "attune: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error chain as one line: `context: cause: cause`, skipping repeats.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string().replace('\n', " ");
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// Cancels `stop` on SIGINT or SIGTERM.
pub(crate) fn cancel_on_signals(stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("Signal received; shutting down.");
        stop.cancel();
    });
    Ok(())
}
