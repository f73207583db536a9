//! The decision log's backend: SQLite (`log.path`) or PostgreSQL
//! (`log.postgres`), chosen once by [`LogBackend`], for writing ([`LogSink`])
//! and reading ([`LogReader`]) alike. Every consumer goes through these
//! typed methods, so each reads whichever log is configured.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::CallLogError;
use super::calls::{HitCounts, LogQuery, LogRow, LoggedCall, Stats, TenantCounts, TrunkCounts};
use super::pg::{PgReader, PgSink, PgTarget};
use super::sqlite::{self, SqliteSink};

/// Where the decision log lives.
#[derive(Debug, Clone)]
pub(crate) enum LogBackend {
    Sqlite(PathBuf),
    /// Boxed: a parsed connection config is ten times a path.
    Postgres(Box<PgTarget>),
}

impl LogBackend {
    /// PostgreSQL when `postgres` is set (`log.postgres`), else the SQLite file.
    pub(crate) fn new(path: impl AsRef<Path>, postgres: Option<&PgTarget>) -> LogBackend {
        match postgres {
            Some(t) => LogBackend::Postgres(Box::new(t.clone())),
            None => LogBackend::Sqlite(path.as_ref().to_path_buf()),
        }
    }

    /// A read-only handle. Blocking: call it from a blocking thread or
    /// outside any runtime.
    pub(crate) fn reader(&self) -> Result<LogReader, CallLogError> {
        match self {
            LogBackend::Sqlite(path) => Ok(LogReader(Reader::Sqlite(sqlite::open_reader(path)?))),
            LogBackend::Postgres(t) => {
                Ok(LogReader(Reader::Postgres(Box::new(PgReader::connect(t)?))))
            }
        }
    }

    /// The writer's handle. SQLite opens (creating) the file now and fails on
    /// a bad path; PostgreSQL only logs an unreachable server (see
    /// [`PgSink::connect`]).
    pub(crate) async fn sink(&self) -> Result<LogSink, CallLogError> {
        match self {
            LogBackend::Sqlite(path) => LogSink::sqlite(path),
            LogBackend::Postgres(t) => Ok(LogSink(Sink::Postgres(Box::new(
                PgSink::connect((**t).clone()).await,
            )))),
        }
    }
}

/// A read-only connection to the log, for the CLI and the HTTP API. Its
/// connection stays private: consumers get typed answers, never SQL.
pub struct LogReader(Reader);

enum Reader {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgReader>),
}

impl LogReader {
    /// Opens an existing SQLite log read-only. Refuses a missing file (rather
    /// than creating an empty one) and a foreign schema.
    pub fn open(path: impl AsRef<Path>) -> Result<LogReader, CallLogError> {
        LogBackend::Sqlite(path.as_ref().to_path_buf()).reader()
    }

    /// Connects to the PostgreSQL log. Blocking, as for [`open`](Self::open).
    pub fn connect(target: &PgTarget) -> Result<LogReader, CallLogError> {
        LogBackend::Postgres(Box::new(target.clone())).reader()
    }

    /// [`connect`](Self::connect) when `postgres` is set, else [`open`](Self::open).
    pub(crate) fn open_either(
        path: impl AsRef<Path>,
        postgres: Option<&PgTarget>,
    ) -> Result<LogReader, CallLogError> {
        LogBackend::new(path, postgres).reader()
    }

    /// Calls matching `q`, newest first.
    pub fn query(&self, q: &LogQuery) -> Result<Vec<LoggedCall>, CallLogError> {
        match &self.0 {
            Reader::Sqlite(conn) => sqlite::read::query(conn, q),
            Reader::Postgres(pg) => pg.query(q),
        }
    }

    /// Totals and blocked-call breakdowns for the calls matching `q` (its
    /// limit is ignored: a report counts everything in the period).
    pub fn stats(&self, q: &LogQuery) -> Result<Stats, CallLogError> {
        match &self.0 {
            Reader::Sqlite(conn) => sqlite::read::stats(conn, q),
            Reader::Postgres(pg) => pg.stats(q),
        }
    }

    /// The newest call with this PBX unique id (`callguard block --from-call`).
    pub fn find_by_unique_id(&self, unique_id: &str) -> Result<Option<LoggedCall>, CallLogError> {
        match &self.0 {
            Reader::Sqlite(conn) => sqlite::read::find_by_unique_id(conn, unique_id),
            Reader::Postgres(pg) => pg.find_by_unique_id(unique_id),
        }
    }

    /// Per trunk, ordered by name: calls, blocks and fail-opens since `today`
    /// and since `hour` (the overview), of the calls `scope` selects (its
    /// tenant and user; `LogQuery::default()`: every call).
    pub(crate) fn trunk_counts(
        &self,
        today: DateTime<Utc>,
        hour: DateTime<Utc>,
        scope: &LogQuery,
    ) -> Result<Vec<TrunkCounts>, CallLogError> {
        match &self.0 {
            Reader::Sqlite(conn) => sqlite::read::trunk_counts(conn, today, hour, scope),
            Reader::Postgres(pg) => pg.trunk_counts(today, hour, scope),
        }
    }

    /// Per tenant, ordered by name (the default tenant, `""`, first): calls,
    /// blocks, allows and fail-opens of the calls matching `q`.
    pub fn tenant_counts(&self, q: &LogQuery) -> Result<Vec<TenantCounts>, CallLogError> {
        match &self.0 {
            Reader::Sqlite(conn) => sqlite::read::tenant_counts(conn, q),
            Reader::Postgres(pg) => pg.tenant_counts(q),
        }
    }

    /// Calls each rule decided since `since`, per (trunk, list name, rule).
    pub(crate) fn hit_counts(&self, since: DateTime<Utc>) -> Result<HitCounts, CallLogError> {
        match &self.0 {
            Reader::Sqlite(conn) => sqlite::read::hit_counts(conn, since),
            Reader::Postgres(pg) => pg.hit_counts(since),
        }
    }
}

/// The writer task's handle on the log: the only one that writes calls.
pub(crate) struct LogSink(Sink);

enum Sink {
    Sqlite(SqliteSink),
    /// Boxed: one per service, and four times the SQLite side.
    Postgres(Box<PgSink>),
}

impl LogSink {
    /// The SQLite writer, its file opened (created) now.
    pub(crate) fn sqlite(path: &Path) -> Result<LogSink, CallLogError> {
        Ok(LogSink(Sink::Sqlite(SqliteSink::open(path)?)))
    }

    /// Writes one batch of rows, in queue order, in one transaction (an end
    /// always follows its record); returns how many were lost (each logged).
    pub(crate) async fn write(&mut self, rows: Vec<LogRow>) -> u64 {
        match &mut self.0 {
            Sink::Sqlite(s) => s.write(rows).await,
            Sink::Postgres(p) => p.write(rows).await,
        }
    }

    /// Deletes up to `limit` rows older than `cutoff`, oldest first; returns
    /// how many went. Callers loop while it returns `limit`.
    pub(crate) async fn purge_chunk(
        &mut self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, String> {
        match &mut self.0 {
            Sink::Sqlite(s) => s.purge_chunk(cutoff, limit).await,
            Sink::Postgres(p) => p.purge_chunk(cutoff, limit).await,
        }
    }
}
