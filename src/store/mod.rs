//! Storage (edge): sled databases under the data directory.
//!
//! - [`ledger`]: the consent ledger, `<data_dir>/ledger/`, flushed before a change is
//!   acknowledged.
//! - `participant`: one database per participant, `<data_dir>/participants/<id>/`, deleted
//!   whole by `forget` (sled does not physically remove deleted keys, RELIABILITY.md).
//! - `export`: the documented export/import layout.
//!
//! sled is single-process: the daemon owns these databases while it runs; commands reach it
//! through its control socket, and open the databases directly only when no daemon runs.

pub mod datadir;
pub mod export;
pub mod failpoint;
pub mod ledger;
pub mod participant;
