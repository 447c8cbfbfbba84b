//! The live simulated source (stub until the generator lands).

use super::SessionClock;
use crate::engine::input::Input;
use crate::simulate::live::LiveSpec;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Why the simulated source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Not written yet.
    #[error("the live simulator is not available in this build")]
    Unavailable,
}

/// Runs the simulated source.
pub async fn run(
    _spec: LiveSpec,
    _clock: SessionClock,
    _tx: mpsc::Sender<Input>,
    _stop: CancellationToken,
) -> Result<(), SimError> {
    Err(SimError::Unavailable)
}
