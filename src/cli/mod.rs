//! Command line: argument types, logging setup, and the one place errors become exit codes.
//!
//! Each subcommand lives in its own module. Errors print as one line on stderr
//! (`attune: <what>: <why>`) with exit code 1; usage errors exit 2 (clap).

// `println!` that returns a closed stdout (`demo | head`) as an error instead of panicking;
// `cli::main` ends such a run quietly with success.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($t)*)?
    }};
}

mod analyze;
mod bench;
mod calibrate;
mod client;
pub(crate) mod consent;
mod control_client;
mod data;
mod demo;
mod devices;
mod evaluate;
mod listen;
mod logging;
mod replay;
mod run;
mod sessions;
mod simulate;
mod simulate_device;
mod status;
mod token;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Run the live daemon: simulated participants (--simulate) or the sources in a config file.
    Run(run::RunArgs),
    /// Run the daemon with recordings as its source.
    Replay(replay::ReplayArgs),
    /// Subscribe to a running daemon and print its messages.
    Listen(listen::ListenArgs),
    /// Write a synthetic recording.
    Simulate(simulate::SimulateArgs),
    /// Replay the bundled fixture through the real socket and show the decisions.
    Demo(demo::DemoArgs),
    /// Score the policy (and a crude reference rule) on a simulated cohort or labelled recordings.
    Evaluate(evaluate::EvaluateArgs),
    /// Offline features of one signal (CSV or recording) as JSON, NeuroKit2-compatible.
    Analyze(analyze::AnalyzeArgs),
    /// The consent ledger: grant, revoke, show, history, verify.
    #[command(subcommand)]
    Consent(consent::ConsentCommand),
    /// Build or refine a participant's stored baseline profile from a recording.
    Calibrate(calibrate::CalibrateArgs),
    /// Erase everything held about a participant (keeps only a receipt in the ledger).
    Forget(data::ForgetArgs),
    /// Write everything held about a participant to a directory (JSON/CSV).
    Export(data::ExportArgs),
    /// Restore a participant's data from an export.
    Import(data::ImportArgs),
    /// A running daemon's health: sources, stream states, clocks, subscribers, drops.
    Status(status::StatusArgs),
    /// Put a researcher's marker into a participant's running session (and its recording).
    Mark(status::MarkArgs),
    /// Pin a participant's decision (ease_off, hold, escalate) or hand it back to the policy
    /// (auto): human oversight, recorded as a marker.
    Override(status::OverrideArgs),
    /// Recorded live sessions: path, start, duration, streams, recovered.
    Sessions(sessions::SessionsArgs),
    /// Measure the daemon on synthetic participants: throughput, latency, drops, memory, CPU.
    Bench(bench::BenchArgs),
    /// Serial ports (with USB vendor/product where known) and the protocol attune expects.
    Devices(devices::DevicesArgs),
    /// Where the WebSocket token is and how clients use it (creates it if there is none).
    Token(token::TokenArgs),
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

/// Runs the command and returns the process exit code.
pub fn main(args: Args) -> ExitCode {
    // Every file and socket the daemon creates is private; set before any thread exists
    // (the umask is process-wide; RELIABILITY.md, Unix socket recipe step 2).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    logging::init(&args.common);
    let result = match &args.command {
        Command::Simulate(a) if a.command.is_none() => simulate::run(&args.common, a),
        Command::Devices(a) => devices::run(&args.common, a),
        Command::Token(a) => token::run(&args.common, a),
        Command::Analyze(a) => analyze::run(&args.common, a),
        Command::Evaluate(a) => evaluate::run(&args.common, a),
        Command::Consent(c) => consent::run(&args.common, c),
        Command::Calibrate(a) => calibrate::run(&args.common, a),
        Command::Forget(a) => data::run_forget(&args.common, a),
        Command::Export(a) => data::run_export(&args.common, a),
        Command::Import(a) => data::run_import(&args.common, a),
        Command::Status(a) => status::run_status(&args.common, a),
        Command::Mark(a) => status::run_mark(&args.common, a),
        Command::Override(a) => status::run_override(&args.common, a),
        Command::Sessions(a) => sessions::run(&args.common, a),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                let r = rt.block_on(async {
                    match command {
                        Command::Run(a) => run::run(&args.common, a).await,
                        Command::Replay(a) => replay::run(&args.common, a).await,
                        Command::Listen(a) => listen::run(&args.common, a).await,
                        Command::Demo(a) => demo::run(&args.common, a).await,
                        Command::Bench(a) => bench::run(&args.common, a).await,
                        Command::Simulate(simulate::SimulateArgs {
                            command: Some(simulate::SimulateCommand::Device(d)),
                            ..
                        }) => simulate_device::run(&args.common, d).await,
                        _ => Ok(()),
                    }
                });
                // A blocking read stuck in the kernel (a silent FIFO) must not hold the exit.
                rt.shutdown_timeout(std::time::Duration::from_millis(500));
                r
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Output cut short by its reader (`| head`) is the reader's choice, not an error.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stderr (`2>&1 | head`) must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "attune: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error chain as one line: `context: cause: cause`, skipping repeats, with control
/// characters escaped (messages quote file contents, client names and arguments: an ESC or
/// CR from them must not reach the terminal raw, nor a newline forge a second line).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = escape_controls(&cause.to_string());
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// `s` with every control character (C0, DEL, C1; newline and tab included) written as a
/// Rust escape (`\u{1b}`, `\r`, `\n`).
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Parses the command line. `Err` carries the exit code after the error (one line on stderr:
/// what is wrong, then the usage) or the help/version text (stdout) was printed.
pub fn parse_args() -> Result<Args, ExitCode> {
    Args::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(
            e.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
        let line = usage_error_line(&e.render().to_string(), &help_command());
        let _ = writeln!(std::io::stderr(), "attune: {line}");
        ExitCode::from(2)
    })
}

/// `attune SUBCOMMAND --help` for the subcommand named on the command line, else `attune --help`.
fn help_command() -> String {
    use clap::CommandFactory;
    let cmd = Args::command();
    let mut path = vec!["attune".to_owned()];
    let mut at = &cmd;
    for arg in std::env::args().skip(1) {
        if let Some(sub) = at.find_subcommand(&arg) {
            path.push(arg);
            at = sub;
        }
    }
    path.push("--help".to_owned());
    path.join(" ")
}

/// clap's multi-line usage error as one line: the message, its details, then the usage and
/// where help is.
fn usage_error_line(rendered: &str, help: &str) -> String {
    let mut message: Vec<&str> = Vec::new();
    let mut usage = None;
    for line in rendered.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u);
        } else if line.starts_with("For more information") {
            continue;
        } else {
            message.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    let mut out = escape_controls(&message.join(" "));
    match usage {
        Some(u) => out.push_str(&format!(" (usage: {}; see {help})", escape_controls(u))),
        None => out.push_str(&format!(" (see {help})")),
    }
    out
}

/// Cancels `stop` on SIGINT, SIGTERM or SIGQUIT (a graceful stop each: drain, remove the
/// sockets, exit 0). SIGHUP, the usual "reload", is caught so that it no longer kills the
/// daemon: there is no configuration file to re-read yet, so it is logged and the daemon
/// carries on.
pub(crate) fn cancel_on_signals(stop: tokio_util::sync::CancellationToken) -> anyhow::Result<()> {
    cancel_on_signals_with(stop, None)
}

/// [`cancel_on_signals`], calling `on_hup` for every SIGHUP (`attune run` re-reads its
/// configuration there).
pub(crate) fn cancel_on_signals_with(
    stop: tokio_util::sync::CancellationToken,
    on_hup: Option<Box<dyn FnMut() + Send>>,
) -> anyhow::Result<()> {
    let mut on_hup = on_hup;
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = quit.recv() => "SIGQUIT",
                _ = hup.recv() => {
                    match on_hup.as_mut() {
                        Some(f) => f(),
                        None => tracing::warn!("SIGHUP received: nothing to reload (no configuration file); carrying on."),
                    }
                    continue;
                }
            };
            tracing::info!(signal = name, "Signal received; shutting down.");
            stop.cancel();
            break;
        }
    });
    Ok(())
}
