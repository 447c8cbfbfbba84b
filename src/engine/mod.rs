//! The pure engine (DESIGN.md, "The engine boundary"): sources push [`input::Input`]s, the engine
//! turns them into [`event::Event`]s for publishers. No tokio, no clock reads, no I/O: session
//! time arrives in the inputs, so a replay of what a live session received gives the same
//! events.
//!
//! - [`input`]: chunks, gaps, source states, markers, consent snapshots, time.
//! - [`event`]: features, adaptation, state, samples, gaps, markers, drops; each with its needs.
//! - [`clock`]: per-stream device-to-session time mapping (offset and skew).

pub mod clock;
pub mod event;
pub mod input;
