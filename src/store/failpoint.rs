//! Crash points for tests (edge): `ATTUNE_FAILPOINT=<step>` makes the process kill itself with
//! SIGKILL when it reaches that step, exactly as `kill -9` would (no destructor runs, nothing is
//! flushed). Only debug builds (the test binary) read the variable; in release builds
//! [`hit`] does nothing.
//!
//! [`STEPS`] lists every step of the operations that change stored data, in the order one
//! operation meets them; `tests/crash.rs` kills at each one and checks that the next command
//! converges.

/// The environment variable that names the step to die at.
pub const ENV: &str = "ATTUNE_FAILPOINT";

/// Every crash point, in order of execution within its operation.
///
/// - `append.<action>.flushed`: a ledger batch (first event's action) is flushed to sled, the
///   `ledger.head` copy is not yet written.
/// - `append.<action>.head`: the batch and `ledger.head` are durable, nothing else is done.
/// - `erase_parts.*` (a revoke of `record`/`profile`): `copied` = the kept trees are copied
///   into `.rewrite-<id>`; `moved` = the old store is renamed to `.forget-<id>`; `swapped` =
///   the copy is renamed into place; `removed` = the old store is deleted, `participants/` not
///   yet fsynced.
/// - `forget.*`: `moved` = the store is renamed to `.forget-<id>`; `removed` = it is deleted,
///   `participants/` not yet fsynced.
/// - `complete.before`: the erasure is done, its receipt not yet appended.
pub const STEPS: &[&str] = &[
    "append.revoke.flushed",
    "append.revoke.head",
    "append.forget_requested.flushed",
    "append.forget_requested.head",
    "erase_parts.copied",
    "erase_parts.moved",
    "erase_parts.swapped",
    "erase_parts.removed",
    "forget.moved",
    "forget.removed",
    "complete.before",
    "append.data_erased.flushed",
    "append.data_erased.head",
    "append.erased.flushed",
    "append.erased.head",
];

/// Dies with SIGKILL if [`ENV`] names `step` (debug builds only).
pub fn hit(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(ENV).is_some_and(|v| v == step) {
        debug_assert!(STEPS.contains(&step), "unlisted failpoint {step}");
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}
