//! Clustering of calibration feature vectors (stub until the linfa clustering lands: every fit
//! is refused, so calibration uses its robust per-feature statistics).

/// Standardisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    /// Centres.
    pub center: Vec<f64>,
    /// Scales.
    pub scale: Vec<f64>,
}

/// One component.
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    /// Weight.
    pub weight: f64,
    /// Mean.
    pub mean: Vec<f64>,
    /// Covariance.
    pub cov: Vec<Vec<f64>>,
    /// Arousal.
    pub arousal: f64,
}

/// A model.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterModel {
    /// Scaler.
    pub scaler: Scaler,
    /// Components, calm first.
    pub components: Vec<Component>,
    /// Method.
    pub method: String,
}

impl ClusterModel {
    /// The calm component.
    pub fn calm(&self) -> &Component {
        &self.components[0]
    }
}

/// Settings.
#[derive(Debug, Clone, Default)]
pub struct FitConfig {
    /// Seed.
    pub seed: u64,
}

/// Always refused in the stub.
pub fn fit(
    _x: &[Vec<f64>],
    _d: &[f64],
    _f: &[f64],
    _c: &FitConfig,
) -> Result<ClusterModel, String> {
    Err("not built".into())
}
