//! Without the `plots` cargo feature (plotters) there is no drawing: `evaluate --plots` refuses
//! with [`PlotError::NotBuilt`] before any person runs.

use super::PersonRun;
use std::path::Path;

/// Why a picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// This build has no plotting.
    #[error("this attune was built without plotting (cargo feature `plots`)")]
    NotBuilt,
}

/// Whether this build can draw.
pub const AVAILABLE: bool = false;

/// Always [`PlotError::NotBuilt`].
pub fn plot_person(_run: &PersonRun, _path: &Path) -> Result<(), PlotError> {
    Err(PlotError::NotBuilt)
}
