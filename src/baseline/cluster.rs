//! Clustering of calibration feature vectors (placeholder: filled in by the clustering work).
