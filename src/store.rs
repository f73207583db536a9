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
//!   file when the log is SQLite; [`pg_lists`]: with `log.postgres`, the
//!   store of record for lists (current rows, versions as diffs), velocity
//!   blocks and the fleet's notifications (`LISTEN/NOTIFY`).
//! - [`redis_counts`]: a fleet's shared velocity counters in Redis
//!   (`velocity_limits.redis`): the sliding-window script and the connection.
//! - [`reputation_cache`]: the reputation lookups' cache (in the SQLite file, also with
//!   `log.postgres`).
//! - [`features`]: the feature codes' memory (the last caller attributed to
//!   each extension, the numbers users dialled), in the SQLite file too.

pub(crate) mod calls;
mod error;
pub mod features;
mod filter;
pub(crate) mod list_versions;
pub(crate) mod log;
pub(crate) mod pg;
pub(crate) mod pg_lists;
pub(crate) mod redis_counts;
pub(crate) mod reputation_cache;
pub mod sqlite;
pub(crate) mod velocity_blocks;

pub use calls::{
    CallEnd, CallRecord, Counts, LogQuery, LoggedCall, NO_RULE, StatCount, Stats, TenantCounts,
    stored_tenant,
};

pub(crate) use calls::{HitCounts, LogRow};
pub use error::CallLogError;
pub(crate) use list_versions::{ListVersions, VersionInfo};
pub use log::LogReader;
pub(crate) use log::{LogBackend, LogSink};
pub use pg::PgTarget;
pub(crate) use pg_lists::{PgStore, PgStoreError};
pub(crate) use redis_counts::{RedisCounts, RedisTarget};

/// Rows deleted per purge statement, so a first purge of a large backlog does
/// not hold the write lock (and the queue) for long.
pub const PURGE_CHUNK: usize = 5_000;
