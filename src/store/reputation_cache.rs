//! The reputation cache's copy in the embedded SQLite file (the decision
//! log's, also when the log itself is in PostgreSQL), table
//! `reputation_cache`: one row per provider and number, written in the
//! background after a lookup, read at start so answers survive a restart.
//! Rows past `expires + serve_stale` are purged on open.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::CallLogError;
use super::sqlite::{self, Durability};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS reputation_cache (
    provider   TEXT    NOT NULL,
    number     TEXT    NOT NULL,
    score      INTEGER,
    name       TEXT,
    category   TEXT,
    fetched_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (provider, number)
);";

/// One cached answer as the table holds it (times in ms since the epoch);
/// `score`, `name` and `category` all empty: a negative answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheRow {
    pub provider: String,
    pub number: String,
    pub score: Option<u8>,
    pub name: Option<String>,
    pub category: Option<String>,
    pub fetched_ms: i64,
    pub expires_ms: i64,
}

/// The service's connection for the reputation cache.
pub(crate) struct ReputationCache {
    conn: Mutex<Connection>,
}

impl ReputationCache {
    /// Opens (creating, owner-only) the file, makes the table and drops the
    /// rows older than `expires + keep_ms`.
    pub(crate) fn open(
        path: &Path,
        now_ms: i64,
        keep_ms: i64,
    ) -> Result<ReputationCache, CallLogError> {
        // A cache: losing the last writes to a power cut costs one lookup.
        let conn = sqlite::open_rw(path, Durability::Crash)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "DELETE FROM reputation_cache WHERE expires_ms + ?2 <= ?1",
            params![now_ms, keep_ms],
        )?;
        Ok(ReputationCache {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores rows, replacing those of the same provider and number, in one
    /// transaction.
    pub(crate) fn upsert(&self, rows: &[CacheRow]) -> Result<(), CallLogError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT OR REPLACE INTO reputation_cache
                 (provider, number, score, name, category, fetched_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for r in rows {
                st.execute(params![
                    r.provider,
                    r.number,
                    r.score,
                    r.name,
                    r.category,
                    r.fetched_ms,
                    r.expires_ms
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` rows, the most recently fetched first.
    pub(crate) fn load(&self, limit: usize) -> Result<Vec<CacheRow>, CallLogError> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT provider, number, score, name, category, fetched_ms, expires_ms
             FROM reputation_cache ORDER BY fetched_ms DESC LIMIT ?1",
        )?;
        let rows = st.query_map(params![limit.min(i64::MAX as usize) as i64], |r| {
            Ok(CacheRow {
                provider: r.get(0)?,
                number: r.get(1)?,
                score: r.get::<_, Option<i64>>(2)?.map(|s| s.clamp(0, 100) as u8),
                name: r.get(3)?,
                category: r.get(4)?,
                fetched_ms: r.get(5)?,
                expires_ms: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_a_reopen_and_old_ones_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        let c = ReputationCache::open(&path, 1_000, 0).unwrap();
        let row = |n: &str, expires_ms| CacheRow {
            provider: "p".into(),
            number: n.into(),
            score: Some(90),
            name: Some("SPAM".into()),
            category: None,
            fetched_ms: 500,
            expires_ms,
        };
        c.upsert(&[row("+1", 10_000), row("+2", 2_000)]).unwrap();
        c.upsert(&[row("+1", 20_000)]).unwrap();
        drop(c);
        let c = ReputationCache::open(&path, 5_000, 1_000).unwrap();
        let rows = c.load(10).unwrap();
        assert_eq!(rows, vec![row("+1", 20_000)]);
    }
}
