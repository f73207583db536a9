//! Temporary velocity blocks in the embedded SQLite file (the decision log's),
//! table `velocity_blocks`: written when a block starts, deleted when an operator
//! lifts it, read at start and by `callguard log --blocks`. Expired rows are ignored and purged on open.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, params};

use super::{Block, from_secs};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS velocity_blocks (
    key      TEXT    PRIMARY KEY,
    trunk    TEXT    NOT NULL,
    rule     TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    created  INTEGER NOT NULL,
    until    INTEGER NOT NULL
);";

/// The writer's connection.
pub struct VelocityStore {
    conn: Mutex<Connection>,
}

impl VelocityStore {
    pub fn open(path: &Path) -> rusqlite::Result<VelocityStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(crate::calllog::store::BUSY_TIMEOUT)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "DELETE FROM velocity_blocks WHERE until <= ?1",
            params![Utc::now().timestamp()],
        )?;
        Ok(VelocityStore {
            conn: Mutex::new(conn),
        })
    }

    pub fn insert(&self, b: &Block) -> rusqlite::Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT OR REPLACE INTO velocity_blocks (key, trunk, rule, subject, created, until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                b.key,
                b.trunk,
                b.rule,
                b.subject,
                b.created.timestamp(),
                b.until.timestamp()
            ],
        )?;
        Ok(())
    }

    pub fn delete(&self, key: &str) -> rusqlite::Result<()> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute("DELETE FROM velocity_blocks WHERE key = ?1", params![key])?;
        Ok(())
    }

    pub fn active(&self, now: DateTime<Utc>) -> rusqlite::Result<Vec<Block>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        query(&conn, now)
    }
}

fn query(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Vec<Block>> {
    let mut st = conn.prepare(
        "SELECT key, trunk, rule, subject, created, until FROM velocity_blocks
         WHERE until > ?1 ORDER BY created DESC, key",
    )?;
    let rows = st.query_map(params![now.timestamp()], |r| {
        Ok(Block {
            key: r.get(0)?,
            trunk: r.get(1)?,
            rule: r.get(2)?,
            subject: r.get(3)?,
            created: from_secs(r.get(4)?),
            until: from_secs(r.get(5)?),
        })
    })?;
    rows.collect()
}

/// The blocks in force in the file at `path`, read-only (`callguard log
/// --blocks`); a file without the table has none.
pub fn read_blocks(path: &Path, now: DateTime<Utc>) -> rusqlite::Result<Vec<Block>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(crate::calllog::store::BUSY_TIMEOUT)?;
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
