//! Temporary velocity blocks in the embedded SQLite file (the decision log's,
//! also when the log itself is in PostgreSQL), table `velocity_blocks`:
//! written when a block starts, deleted when an operator lifts it, read at
//! start and by `callguard log --blocks`. Expired rows are ignored and purged
//! on open.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

use super::CallLogError;
use super::sqlite::{self, Durability};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS velocity_blocks (
    key      TEXT    PRIMARY KEY,
    trunk    TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    until    INTEGER NOT NULL
);";

/// One stored block, as the table holds it: times in seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    /// The counter key (`trunk|rule|subject`).
    pub key: String,
    pub trunk: String,
    pub rule: String,
    pub subject: String,
    pub created: i64,
    pub until: i64,
}

/// The service's connection for velocity blocks.
pub(crate) struct VelocityBlocks {
    conn: Mutex<Connection>,
}

impl VelocityBlocks {
    /// Opens (creating, owner-only) the file, makes the table and drops the
    /// blocks that have expired.
    pub(crate) fn open(path: &Path) -> Result<VelocityBlocks, CallLogError> {
        // A block written is a promise to the operator until it expires:
        // durable like list versions.
        let conn = sqlite::open_rw(path, Durability::PowerCut)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "DELETE FROM velocity_blocks WHERE until <= ?1",
            params![Utc::now().timestamp()],
        )?;
        Ok(VelocityBlocks {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves the connection usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a block, replacing one with the same key.
    pub(crate) fn insert(&self, b: &BlockRow) -> Result<(), CallLogError> {
        self.conn().execute(
            "INSERT OR REPLACE INTO velocity_blocks (key, trunk, rule, subject, created, until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![b.key, b.trunk, b.rule, b.subject, b.created, b.until],
        )?;
        Ok(())
    }

    pub(crate) fn delete(&self, key: &str) -> Result<(), CallLogError> {
        self.conn()
            .execute("DELETE FROM velocity_blocks WHERE key = ?1", params![key])?;
        Ok(())
    }

    /// The blocks in force at `now`, newest first.
    pub(crate) fn active(&self, now: DateTime<Utc>) -> Result<Vec<BlockRow>, CallLogError> {
        query(&self.conn(), now)
    }
}

fn query(conn: &Connection, now: DateTime<Utc>) -> Result<Vec<BlockRow>, CallLogError> {
    let mut st = conn.prepare(
        "SELECT key, trunk, rule, subject, created, until FROM velocity_blocks
         WHERE until > ?1 ORDER BY created DESC, key",
    )?;
    let rows = st.query_map(params![now.timestamp()], |r| {
        Ok(BlockRow {
            key: r.get(0)?,
            trunk: r.get(1)?,
            rule: r.get(2)?,
            subject: r.get(3)?,
            created: r.get(4)?,
            until: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The blocks in force in the file at `path`, read-only (`callguard log
/// --blocks`); a file without the table has none.
pub(crate) fn read_blocks(path: &Path, now: DateTime<Utc>) -> Result<Vec<BlockRow>, CallLogError> {
    let conn = sqlite::open_ro(path)?;
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='velocity_blocks'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    query(&conn, now)
}
