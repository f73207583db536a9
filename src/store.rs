//! The storage layer: it owns every database handle and its settings, and is
//! the only module that speaks SQL (`.ci/db-imports.sh` keeps `rusqlite` and
//! `postgres` / `tokio_postgres` here).
//!
//! - [`log`]: the decision log's backend, [`LogBackend`] — SQLite (`log.path`)
//!   or PostgreSQL (`log.postgres`) — for writing ([`LogSink`], the writer
//!   task's) and reading ([`LogReader`]: listings, stats, the overview's
//!   counts, the rules' hit counts) alike.
//! - [`calls`]: the log's rows and answers as consumers see them.
//! - [`sqlite`]: every connection to the SQLite file with its pragmas (WAL,
//!   `synchronous`, busy timeout, owner-only create), the log's schema and
//!   its row SQL; [`pg`]: the same log in PostgreSQL, shared by a fleet.
//! - [`list_versions`]: every version of every list (history, rollback) and
//!   [`velocity_blocks`]: the temporary velocity blocks, both in the SQLite
//!   file, also when the log is in PostgreSQL; [`reputation_cache`]: the
//!   reputation lookups' cache (also in the SQLite file for now).

pub(crate) mod calls;
mod error;
mod filter;
pub(crate) mod list_versions;
pub(crate) mod log;
pub(crate) mod pg;
pub(crate) mod reputation_cache;
pub mod sqlite;
pub(crate) mod velocity_blocks;

pub use calls::{CallEnd, CallRecord, Counts, LogQuery, LoggedCall, NO_RULE, StatCount, Stats};

pub(crate) use calls::{HitCounts, LogRow};
pub use error::CallLogError;
pub(crate) use list_versions::{ListVersions, VersionInfo};
pub use log::LogReader;
pub(crate) use log::{LogBackend, LogSink};
pub use pg::PgTarget;

/// Rows deleted per purge statement, so a first purge of a large backlog does
/// not hold the write lock (and the queue) for long.
pub const PURGE_CHUNK: usize = 5_000;
