//! The `attune` binary: parse arguments, run, map errors to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match attune::cli::parse_args() {
        Ok(args) => attune::cli::main(args),
        Err(code) => code,
    }
}
