//! The `attune` binary: parse arguments, run, map errors to an exit code.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    attune::cli::main(attune::cli::Args::parse())
}
