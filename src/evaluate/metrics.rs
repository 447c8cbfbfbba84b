//! Scoring decisions against labelled segments (PLACEHOLDER).
