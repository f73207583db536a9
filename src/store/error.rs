//! The one error type of the storage layer's SQLite and PostgreSQL work, so callers
//! (CLI, HTTP API, the server's start-up) can tell a missing database from a broken one.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CallLogError {
    /// Creating the database's parent directories failed.
    #[error("cannot create directory for the call log {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Creating the database file itself (owner-only) failed.
    #[error("cannot create the call log {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A reader was pointed at a database that does not exist (yet): the
    /// service has not run with this `log.path`.
    #[error("call log {0} does not exist")]
    NotFound(PathBuf),
    /// The file exists but holds no call-log schema.
    #[error("{0} is not a callguard call log (no schema)")]
    NoSchema(PathBuf),
    /// Written by a newer callguard; refusing to guess at its layout.
    #[error("call log schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A stored value that cannot be turned back into its type.
    #[error("call log row {id}: {message}")]
    BadRow { id: i64, message: String },
    #[error("call log database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL log (`log.postgres`) failed; the message names the server
    /// as `user@host:port/db`, never with its password.
    #[error("call log PostgreSQL error: {0}")]
    Postgres(String),
    /// The writer task was started outside a Tokio runtime.
    #[error("the call log writer needs a Tokio runtime")]
    NoRuntime,
    /// The writer has stopped; nothing more can be queued.
    #[error("the call log writer has stopped")]
    Closed,
}
