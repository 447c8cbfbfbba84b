//! The daemon configuration (being written).
