//! attune: a local daemon that turns heart-rate and EDA wearables into consent-gated, explained
//! "ease off / hold / escalate" signals for the exercise a person is doing.
//!
//! # Layout, in data-flow order
//!
//! Pure core (no tokio, no clock, no I/O):
//! - [`model`]: participants, stream kinds and units, chunks, gaps, stream states.
//! - [`recording`]: recording format v1 reader and writer over `io` traits.
//! - [`consent`]: purposes, the consent snapshot and the gate every chunk meets first.
//! - [`dsp`]: filters, the streaming EDA chain and SCR detector, RR acceptance, HR and RMSSD.
//! - [`features`]: windowed per-participant features on a 4 Hz tick.
//! - [`baseline`]: the provisional per-participant baseline (median, MAD).
//! - [`policy`]: arousal score and decision with hysteresis, dwell and an explanation.
//! - [`pipeline`]: gate → features → baseline → policy, per participant, on a 4 Hz tick.
//! - [`engine`]: the engine boundary: [`engine::input::Input`]s in, [`engine::event::Event`]s
//!   out, ticks on the session clock, device clocks mapped onto it.
//! - [`simulate`]: synthetic participants for fixtures and tests.
//! - [`publish::messages`]: protocol v1 lines.
//! - [`protocol`]: serial device wire protocols: decoders and simulated devices.
//!
//! I/O edges:
//! - [`sources`]: replay, simulated, synthetic and serial sources (BLE comes later).
//! - [`publish::server`]: the Unix socket server.
//! - [`daemon`]: wiring, startup and shutdown.
//! - [`cli`]: one module per subcommand.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analyze;
pub mod baseline;
pub mod bench;
pub mod cli;
pub mod config;
pub mod consent;
pub mod daemon;
pub mod dsp;
pub mod engine;
pub mod evaluate;
pub mod features;
pub mod model;
pub mod pipeline;
pub mod policy;
pub mod protocol;
pub mod publish;
pub mod recording;
pub mod simulate;
pub mod sources;
pub mod store;
