//! The per-call decision log: one SQLite row per call, written off the call path.
//!
//! Support answers "I could not get through" from this log, and compliance keeps
//! it for `log.retention_days`. The call path only ever does a `try_send` onto a
//! bounded queue ([`CallLogHandle`]); a writer task owns the only read-write
//! connection and commits in batches on a blocking thread. Readers (CLI, HTTP
//! API) open their own read-only connections ([`LogReader`]), which WAL lets run
//! while the writer writes.
//!
//! - [`store`]: schema, pragmas and the row-level SQL the writer uses.
//! - [`pg`]: the same log in PostgreSQL (`log.postgres`), shared by a fleet.
//! - [`writer`]: [`CallLog::start`], the handle and the writer task.
//! - [`query`]: filters, stats and lookup by unique id.
//! - [`timearg`]: `--since`/`--until` parsing for the CLI.
//! - [`render`]: fixed-width text for the terminal.

use chrono::{DateTime, Utc};

mod error;
mod filter;
pub mod pg;
pub mod query;
pub mod render;
pub mod store;
pub mod timearg;
pub mod writer;

pub use error::CallLogError;
pub use pg::PgTarget;
pub use query::{
    LogQuery, LogReader, LoggedCall, MIN_SUFFIX_DIGITS, NO_RULE, StatCount, Stats,
    find_by_unique_id, query, stats,
};
pub use render::{
    FIELD_WIDTH, SUMMARY_WIDTH, render_stats, render_table, terminal_cell, terminal_safe,
};
pub use timearg::parse_time_arg;
pub use writer::{CallLog, CallLogHandle, Writer};

/// What is known of a call once it has been decided.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub time: DateTime<Utc>,
    /// The PBX's id of the call (Asterisk `agi_uniqueid`, FreeSWITCH `Unique-ID`).
    pub unique_id: String,
    /// `asterisk` or `freeswitch`.
    pub pbx: String,
    pub trunk: String,
    pub did: String,
    pub caller_raw: String,
    pub caller_e164: Option<String>,
    pub caller_name: String,
    pub anonymous: bool,
    /// `allow` or `block`.
    pub verdict: String,
    /// `protected`, `system_blacklist`, `whitelist`, `blacklist`, `exclusive`, `default`.
    pub list: String,
    /// The name of the list whose rule decided (`spam`, `exec-vip`,
    /// `support.blacklist`); empty when no rule decided.
    pub list_name: String,
    pub rule: Option<String>,
    pub action: String,
    pub reason: String,
    pub decision_ns: u64,
    pub fail_open: bool,
}

/// How a call's session ended, recorded when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEnd {
    pub unique_id: String,
    /// e.g. `completed`, `caller_hangup`, `dial:NOANSWER`, `protocol_error`.
    pub end_state: String,
    /// The hangup cause when the PBX told it (`NORMAL_CLEARING`, `16`).
    pub hangup_cause: Option<String>,
    pub duration_ms: u64,
}
