//! One picture per person (PLACEHOLDER: draws nothing yet).

use super::PersonRun;
use std::path::Path;

/// Why a picture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing or encoding failed.
    #[error("cannot draw {path}: {message}")]
    Draw {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Writes `run` as a PNG at `path`: features, arousal, actions and segments on one time axis.
pub fn plot_person(run: &PersonRun, path: &Path) -> Result<(), PlotError> {
    let _ = run;
    Err(PlotError::Draw {
        path: path.display().to_string(),
        message: "plots are not built yet".into(),
    })
}
