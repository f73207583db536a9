//! The per-call decision log: one row per call, written off the call path.
//!
//! Support answers "I could not get through" from this log, and compliance keeps
//! it for `log.retention_days`. The call path only ever does a `try_send` onto a
//! bounded queue ([`CallLogHandle`]); a writer task owns the only writing handle
//! ([`crate::store::LogSink`]: SQLite, or PostgreSQL with `log.postgres`) and
//! commits in batches. Readers (CLI, HTTP API) open their own read-only
//! [`LogReader`]s. The SQL and the connections are the storage layer's
//! ([`crate::store`]); the row types are re-exported here for the log's users.
//!
//! - [`writer`]: [`CallLog::start`], the handle and the writer task.
//! - [`timearg`]: `--since`/`--until` parsing for the CLI.
//! - [`render`]: fixed-width text for the terminal.

pub(crate) mod render;
pub(crate) mod timearg;
pub(crate) mod writer;

pub use crate::store::{
    CallEnd, CallLogError, CallRecord, LogQuery, LogReader, LoggedCall, NO_RULE, PgTarget,
    StatCount, Stats, TenantCounts, stored_tenant,
};

pub use render::render_table;
pub(crate) use render::{FIELD_WIDTH, SUMMARY_WIDTH, render_stats, terminal_cell, terminal_safe};
pub(crate) use timearg::parse_time_arg;
pub use writer::{CallLog, CallLogHandle, Writer};
