//! One picture per person (PLACEHOLDER).
