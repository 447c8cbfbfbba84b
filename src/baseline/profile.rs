//! A participant's stored baseline profile (placeholder: filled in by the profile work).
