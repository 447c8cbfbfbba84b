//! The live simulated source (being written).
