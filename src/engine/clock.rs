//! Device-to-session clock mapping (placeholder, being written).
