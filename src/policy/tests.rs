//! Policy unit tests.
