//! Listing session files (`attune sessions`).
