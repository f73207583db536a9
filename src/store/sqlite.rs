//! The SQLite file: every connection to it is opened here, with its pragmas
//! (WAL, `synchronous`, busy timeout, owner-only create), and the row-level
//! SQL of the decision log's writer.
//!
//! Only the log's writer task writes calls; readers open read-only. WAL lets
//! those readers run while the writer commits, `synchronous=NORMAL` is durable
//! across a process crash (a power cut may lose the last batches, which is the
//! price of never making a call wait), and the busy timeout covers checkpoints.
//! List versions ([`super::list_versions`]) and velocity blocks
//! ([`super::velocity_blocks`]) share the file through their own connections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};

use super::CallLogError;
pub use super::PURGE_CHUNK;
use super::calls::{CallEnd, CallRecord, LogRow, digits, sat};

pub(crate) mod read;

/// The schema this build writes, kept in `PRAGMA user_version`.
/// 2: `list_name` (the deciding list's name beside its kind).
/// 3: `tenant` and `user_ext` (the tenant and the user a call was for).
pub const SCHEMA_VERSION: i64 = 3;

/// How long a connection waits for a lock before giving up: long enough for a
/// checkpoint or a long reader, short enough that a wedged file shows in logs.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS calls (
    id            INTEGER PRIMARY KEY,
    time          INTEGER NOT NULL,
    unique_id     TEXT    NOT NULL,
    pbx           TEXT    NOT NULL,
    trunk         TEXT    NOT NULL,
    did           TEXT    NOT NULL,
    caller_raw    TEXT    NOT NULL,
    caller_e164   TEXT,
    caller_name   TEXT    NOT NULL,
    anonymous     INTEGER NOT NULL,
    verdict       TEXT    NOT NULL,
    list          TEXT    NOT NULL,
    rule          TEXT,
    action        TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    decision_ns   INTEGER NOT NULL,
    fail_open     INTEGER NOT NULL,
    end_state     TEXT,
    hangup_cause  TEXT,
    duration_ms   INTEGER,
    ended_at      INTEGER,
    -- Digits only of caller_raw / caller_e164, so a search for +1 555 123 4567
    -- finds a call stored as 5551234567 (see query::LogQuery::caller).
    caller_digits TEXT    NOT NULL,
    e164_digits   TEXT
);
CREATE INDEX IF NOT EXISTS calls_time ON calls(time);
CREATE INDEX IF NOT EXISTS calls_unique_id ON calls(unique_id);
CREATE INDEX IF NOT EXISTS calls_caller_digits ON calls(caller_digits);
CREATE INDEX IF NOT EXISTS calls_e164_digits ON calls(e164_digits);
";

/// Version 1 → 2: the deciding list's name. Old rows keep `''`.
const SCHEMA_V2: &str = "ALTER TABLE calls ADD COLUMN list_name TEXT NOT NULL DEFAULT '';";

/// Version 2 → 3: the tenant and the user (extension) of the call. Old rows
/// keep `''`: the default tenant, no user (what they were). Each column is
/// added only when missing (see [`add_column`]).
const SCHEMA_V3: [(&str, &str); 2] = [
    ("tenant", "TEXT NOT NULL DEFAULT ''"),
    ("user_ext", "TEXT NOT NULL DEFAULT ''"),
];
const SCHEMA_V3_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS calls_tenant_time ON calls(tenant, time);";

/// Adds a column to `calls` unless the table has it already (a file whose
/// `user_version` was set back by hand, or an interrupted upgrade of another build).
fn add_column(conn: &Connection, name: &str, decl: &str) -> Result<(), CallLogError> {
    let mut stmt =
        conn.prepare("SELECT count(*) FROM pragma_table_info('calls') WHERE name = ?1")?;
    let n: i64 = stmt.query_row([name], |r| r.get(0))?;
    if n == 0 {
        conn.execute_batch(&format!("ALTER TABLE calls ADD COLUMN {name} {decl};"))?;
    }
    Ok(())
}

/// How much a connection's commits must survive.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Durability {
    /// Survives a process crash; a power cut may lose the last commits
    /// (call rows: never make a call wait on a disk flush).
    Crash,
    /// Survives a power cut (list versions: the rollback of last resort).
    PowerCut,
}

/// Opens the file read-write for one consumer, creating it (owner-only, with
/// its parent directories) if needed, in WAL mode with the busy timeout. The
/// one place where a read-write connection gets its pragmas.
pub(crate) fn open_rw(path: &Path, durability: Durability) -> Result<Connection, CallLogError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| CallLogError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    create_private(path).map_err(|source| CallLogError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    let conn = Connection::open(path)?;
    // Another connection to the file may hold the write lock briefly.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // journal_mode answers with a row, so it is read rather than executed.
    let _mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    let synchronous = match durability {
        Durability::Crash => "NORMAL",
        Durability::PowerCut => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    Ok(conn)
}

/// Opens (creating if needed) the database the writer uses: parent
/// directories, pragmas and schema. Idempotent.
pub fn open_writer(path: &Path) -> Result<Connection, CallLogError> {
    let mut conn = open_rw(path, Durability::Crash)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Creates `path` readable and writable by its owner only (0600) when it
/// does not exist yet: the log holds every caller's number. SQLite gives its
/// `-wal` and `-shm` files the database file's permissions. An existing file
/// keeps the permissions its operator gave it.
pub(crate) fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens an existing file read-only: it is never created, and a reader can
/// never take the write lock from the service's writer.
pub(crate) fn open_ro(path: &Path) -> Result<Connection, CallLogError> {
    if !path.exists() {
        return Err(CallLogError::NotFound(path.to_path_buf()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Opens an existing log read-only, for the CLI and the HTTP API. Refuses a
/// missing file (rather than creating an empty one) and a foreign schema.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, CallLogError> {
    let conn = open_ro(path)?;
    match schema_version(&conn)? {
        0 => Err(CallLogError::NoSchema(path.to_path_buf())),
        v if v > SCHEMA_VERSION => Err(CallLogError::SchemaTooNew {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        _ => Ok(conn),
    }
}

pub(crate) fn schema_version(conn: &Connection) -> Result<i64, CallLogError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

fn migrate(conn: &mut Connection) -> Result<(), CallLogError> {
    let found = schema_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(CallLogError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        let tx = conn.transaction()?;
        if found < 1 {
            tx.execute_batch(SCHEMA_V1)?;
        }
        if found < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        for (name, decl) in SCHEMA_V3 {
            add_column(&tx, name, decl)?;
        }
        tx.execute_batch(SCHEMA_V3_INDEX)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
    }
    Ok(())
}

pub fn insert_record(conn: &Connection, r: &CallRecord) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO calls (time, unique_id, pbx, trunk, did, caller_raw, caller_e164,
             caller_name, anonymous, verdict, list, rule, action, reason, decision_ns,
             fail_open, caller_digits, e164_digits, list_name, tenant, user_ext)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                 ?20, ?21)",
    )?;
    stmt.execute(params![
        r.time.timestamp_millis(),
        r.unique_id,
        r.pbx,
        r.trunk,
        r.did,
        r.caller_raw,
        r.caller_e164,
        r.caller_name,
        r.anonymous,
        r.verdict,
        r.list,
        r.rule,
        r.action,
        r.reason,
        sat(r.decision_ns),
        r.fail_open,
        digits(&r.caller_raw),
        r.caller_e164.as_deref().map(digits),
        r.list_name,
        r.tenant,
        r.user,
    ])?;
    Ok(())
}

/// Inserts a call that ended before it was screened, its end columns filled
/// on the row just inserted (its unique id may be empty or repeated).
pub(crate) fn insert_ended(
    conn: &Connection,
    r: &CallRecord,
    e: &CallEnd,
    ended_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    insert_record(conn, r)?;
    let mut stmt = conn.prepare_cached(
        "UPDATE calls SET end_state = ?1, hangup_cause = ?2, duration_ms = ?3, ended_at = ?4
         WHERE id = last_insert_rowid()",
    )?;
    stmt.execute(params![
        e.end_state,
        e.hangup_cause,
        sat(e.duration_ms),
        ended_at.timestamp_millis(),
    ])?;
    Ok(())
}

/// Fills the end columns of the newest row with this unique id (a PBX may
/// reuse ids across restarts). Returns whether a row was found: none means
/// the record was dropped on a full queue or already purged.
pub(crate) fn apply_end(
    conn: &Connection,
    e: &CallEnd,
    ended_at: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare_cached(
        "UPDATE calls SET end_state = ?1, hangup_cause = ?2, duration_ms = ?3, ended_at = ?4
         WHERE id = (SELECT id FROM calls WHERE unique_id = ?5 ORDER BY id DESC LIMIT 1)",
    )?;
    let n = stmt.execute(params![
        e.end_state,
        e.hangup_cause,
        sat(e.duration_ms),
        ended_at.timestamp_millis(),
        e.unique_id,
    ])?;
    Ok(n > 0)
}

/// Deletes up to `limit` rows older than `cutoff`, oldest first; returns how
/// many went. Callers loop while it returns `limit`.
pub(crate) fn purge_chunk(
    conn: &Connection,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(
        "DELETE FROM calls WHERE id IN
           (SELECT id FROM calls WHERE time < ?1 ORDER BY time LIMIT ?2)",
    )?;
    stmt.execute(params![cutoff.timestamp_millis(), sat(limit as u64)])
}

/// Deletes every row older than `cutoff`, chunk by chunk; returns the count.
pub fn purge_before(conn: &Connection, cutoff: DateTime<Utc>) -> rusqlite::Result<usize> {
    let mut total = 0;
    loop {
        let n = purge_chunk(conn, cutoff, PURGE_CHUNK)?;
        total += n;
        if n < PURGE_CHUNK {
            return Ok(total);
        }
    }
}

/// The decision log's writer side in SQLite: the only read-write connection
/// to `calls`, handed to a blocking thread and back for each unit of work so
/// its statement cache survives, reopened after a failure lost it.
pub(crate) struct SqliteSink {
    path: PathBuf,
    /// `None` after a failure lost it; reopened for the next batch.
    conn: Option<Connection>,
}

impl SqliteSink {
    /// Opens (creating) the file and its schema now, so a bad `log.path`
    /// stops the start rather than every later batch.
    pub(crate) fn open(path: &Path) -> Result<SqliteSink, CallLogError> {
        Ok(SqliteSink {
            path: path.to_path_buf(),
            conn: Some(open_writer(path)?),
        })
    }

    /// Runs `f` on a blocking thread with the connection (`None` when it
    /// cannot be reopened). `None` when the job itself failed (a panic inside
    /// SQLite): the connection is gone with it and reopened next time.
    async fn blocking<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(Option<&mut Connection>) -> T + Send + 'static,
    ) -> Option<T> {
        let conn = self.conn.take();
        let path = self.path.clone();
        let job = tokio::task::spawn_blocking(move || {
            let mut conn = conn.or_else(|| match open_writer(&path) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "call log: cannot reopen");
                    None
                }
            });
            let out = f(conn.as_mut());
            (conn, out)
        });
        match job.await {
            Ok((conn, out)) => {
                self.conn = conn;
                Some(out)
            }
            Err(e) => {
                tracing::error!(error = %e, "call log: writer job failed");
                None
            }
        }
    }

    /// Writes `rows` in one transaction; returns how many were lost. A
    /// failing row is logged and counted and the others still go in; a failed
    /// commit loses the whole batch.
    pub(crate) async fn write(&mut self, rows: Vec<LogRow>) -> u64 {
        let n = rows.len() as u64;
        self.blocking(move |conn| match conn {
            Some(conn) => write_rows(conn, rows),
            None => n,
        })
        .await
        .unwrap_or(n)
    }

    /// Deletes up to `limit` rows older than `cutoff`.
    pub(crate) async fn purge_chunk(
        &mut self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, String> {
        self.blocking(move |conn| match conn {
            Some(conn) => purge_chunk(conn, cutoff, limit).map_err(|e| e.to_string()),
            None => Err("no connection".to_string()),
        })
        .await
        .unwrap_or_else(|| Err("the purge job failed".to_string()))
    }
}

fn write_rows(conn: &mut Connection, rows: Vec<LogRow>) -> u64 {
    if rows.is_empty() {
        return 0;
    }
    let n = rows.len() as u64;
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, rows = n, "call log: cannot begin a transaction");
            return n;
        }
    };
    let mut failed = 0;
    for row in rows {
        match row {
            LogRow::Record(r) => {
                if let Err(e) = insert_record(&tx, &r) {
                    tracing::warn!(unique_id = %r.unique_id, error = %e, "call log: insert failed");
                    failed += 1;
                }
            }
            LogRow::Ended(r, end, at) => {
                if let Err(e) = insert_ended(&tx, &r, &end, at) {
                    tracing::warn!(unique_id = %r.unique_id, error = %e, "call log: insert failed");
                    failed += 1;
                }
            }
            LogRow::End(end, at) => match apply_end(&tx, &end, at) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(unique_id = %end.unique_id, "call log: end of an unlogged call");
                }
                Err(e) => {
                    tracing::warn!(unique_id = %end.unique_id, error = %e, "call log: end update failed");
                    failed += 1;
                }
            },
        }
    }
    if let Err(e) = tx.commit() {
        tracing::error!(error = %e, rows = n, "call log: commit failed; batch lost");
        return n;
    }
    failed
}
