//! Storage (edge): sled databases under the data directory.
//!
//! - [`datadir`]: the owner of a data directory: its lock (`<data_dir>/attune.lock`), its
//!   ledger, recovery on open, and every request that changes stored data, end to end
//!   (intent, erasure, receipt), crash-safe.
//! - [`ledger`]: the consent ledger, `<data_dir>/ledger/`, flushed before a change is
//!   acknowledged, with a copy of its head in `<data_dir>/ledger.head`.
//! - [`participant`]: one database per participant, `<data_dir>/participants/<id>/`, deleted
//!   whole by `forget` (sled does not physically remove deleted keys, RELIABILITY.md); split
//!   by job (trees, erase, recover, busy).
//! - [`export`]: the documented export/import layout.
//! - [`failpoint`]: test-only crash points.
//! - [`trust`]: owner, mode and symlink checks of the data directory's tree, and creating
//!   files in it without following links.
//!
//! sled is single-process: the daemon owns the data directory while it runs; commands reach it
//! through its control socket, and open it themselves ([`datadir::DataDir`]) only when no
//! daemon runs.

pub mod datadir;
pub mod export;
pub mod failpoint;
pub mod ledger;
pub mod participant;
pub mod recorder;
pub mod trust;
