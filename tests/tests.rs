//! Integration tests: one binary (STYLE.md §13). `util` holds the harness.
#![allow(clippy::unwrap_used)]

mod util;

mod analyze_cli;
mod consent_e2e;
mod consent_gate;
mod crash;
mod data_cli;
mod datadir;
mod e2e;
mod erasure;
mod fixtures;
mod neurokit;
mod neurokit_eda_ppg;
mod robustness;
mod simulated_people;
mod streaming_vs_offline;
