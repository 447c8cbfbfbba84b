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
/// The environment variable that names `<step>:<key>` pairs (comma-separated) at which an I/O
/// operation fails with `ENOSPC` instead of running ([`io_error`]; debug builds only).
pub const ERROR_ENV: &str = "ATTUNE_FAILPOINT_ERROR";

/// Steps where [`io_error`] can inject an error, keyed by participant id:
/// `recorder.write` (a session file's `write(2)`: a full disk).
pub const ERROR_STEPS: &[&str] = &["recorder.write"];

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
/// - `sessions.*` (inside `forget` and `erase_parts` of recordings): `moved` = `sessions/<id>`
///   is renamed to `sessions/.forget-<id>`; `removed` = it is deleted, `sessions/` not yet
///   fsynced.
/// - `repair.*` (a session file without `end`, on every open of the data directory):
///   `truncated` = cut to its last whole line; `ended` = the `end` line is written, not yet
///   fsynced.
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

/// Crash points of session files (`store::recorder`), kept apart from [`STEPS`] (whose every
/// entry `tests/crash.rs` drives through a revoke or a forget):
///
/// - `sessions.moved`, `sessions.removed`: inside `forget` and `erase_parts` of recordings,
///   only where the participant has a `sessions/<id>/` directory.
/// - `repair.truncated`, `repair.ended`: repairing a session file on open.
pub const RECORDER_STEPS: &[&str] = &[
    "sessions.moved",
    "sessions.removed",
    "repair.truncated",
    "repair.ended",
];

/// Dies with SIGKILL if [`ENV`] names `step` (debug builds only).
pub fn hit(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(ENV).is_some_and(|v| v == step) {
        debug_assert!(
            STEPS.contains(&step) || RECORDER_STEPS.contains(&step),
            "unlisted failpoint {step}"
        );
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

#[cfg(debug_assertions)]
static ARMED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Makes [`io_error`] fail at `step` for `key` in this process (tests; debug builds only).
pub fn arm_error(step: &str, key: &str) {
    #[cfg(debug_assertions)]
    if let Ok(mut a) = ARMED.lock() {
        a.push(format!("{step}:{key}"));
    }
    #[cfg(not(debug_assertions))]
    let _ = (step, key);
}

/// `Err(ENOSPC)` if [`ERROR_ENV`] or [`arm_error`] names `step` for `key` (debug builds only),
/// else `Ok(())`.
pub fn io_error(step: &str, key: &str) -> std::io::Result<()> {
    #[cfg(debug_assertions)]
    {
        let want = format!("{step}:{key}");
        let by_env = std::env::var(ERROR_ENV).is_ok_and(|v| v.split(',').any(|x| x == want));
        let armed = ARMED.lock().is_ok_and(|a| a.contains(&want));
        if by_env || armed {
            debug_assert!(ERROR_STEPS.contains(&step), "unlisted failpoint {step}");
            return Err(std::io::Error::from_raw_os_error(nix::libc::ENOSPC));
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (step, key);
    Ok(())
}
