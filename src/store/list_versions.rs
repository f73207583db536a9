//! List versions: every version of every list, in SQLite, so a bad change
//! can be rolled back to any earlier state and the operator can see who
//! changed what (`callguard history`, `rollback`, the API's history routes).
//!
//! The table lives in the decision log's SQLite file (`log.path`), also when
//! the log itself is in PostgreSQL: it has its own name (`list_versions`) and
//! its own connection, in WAL mode so neither blocks the other's readers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::sqlite::{self, Durability};
use crate::list_io::{ChangeSummary, RuleRow};

#[derive(Debug, thiserror::Error)]
pub enum ListVersionsError {
    /// The file could not be created or opened with its settings.
    #[error("history database: {0}")]
    Open(#[from] super::CallLogError),
    #[error("history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("history content: {0}")]
    Json(#[from] serde_json::Error),
}

pub(crate) type Result<T> = std::result::Result<T, ListVersionsError>;

/// One stored version, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// 1, 2, 3… per list; never reused, even after a purge.
    pub version: u64,
    pub list: String,
    pub time: DateTime<Utc>,
    pub author: String,
    /// The [`ChangeSummary`] line, e.g. `+2 −1 ~0 (added: A, B; removed: C)`.
    pub summary: String,
}

/// The list versions kept in one SQLite file.
pub struct ListVersions {
    /// rusqlite connections are not `Sync`; calls are short, a mutex suffices.
    conn: Mutex<Connection>,
    /// Hashes of stored versions' rows (`list_edit::store::versions`), so a reload
    /// of a million-row list does not parse the stored content every time.
    hashes: Mutex<HashMap<VersionKey, u64>>,
}

/// A stored version's identity: (list, version, time in ms, author, summary).
type VersionKey = (String, u64, i64, String, String);

/// Hashes kept; old ones are useless once a newer version exists.
const MAX_HASHES: usize = 1024;

fn version_key(v: &VersionInfo) -> VersionKey {
    (
        v.list.clone(),
        v.version,
        v.time.timestamp_millis(),
        v.author.clone(),
        v.summary.clone(),
    )
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS list_versions (
    id       INTEGER PRIMARY KEY,
    list     TEXT    NOT NULL,
    version  INTEGER NOT NULL,
    time_ms  INTEGER NOT NULL,
    author   TEXT    NOT NULL,
    summary  TEXT    NOT NULL,
    content  TEXT    NOT NULL,
    UNIQUE (list, version)
);
CREATE INDEX IF NOT EXISTS list_versions_time ON list_versions (time_ms);
";

const INFO_COLUMNS: &str = "version, list, time_ms, author, summary";

impl ListVersions {
    /// Opens (and creates if needed) the history in the SQLite file `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<ListVersions> {
        // List versions hold phone numbers: owner-only, like the decision log.
        // They are the rollback of last resort: a committed version must
        // survive a power cut, which WAL's usual NORMAL does not promise.
        let conn = sqlite::open_rw(path.as_ref(), Durability::PowerCut)?;
        conn.execute_batch(SCHEMA)?;
        Ok(ListVersions {
            conn: Mutex::new(conn),
            hashes: Mutex::new(HashMap::new()),
        })
    }

    /// The hash remembered for version `v`'s rows, if any.
    pub(crate) fn cached_hash(&self, v: &VersionInfo) -> Option<u64> {
        let map = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&version_key(v)).copied()
    }

    /// Remembers the hash of version `v`'s rows.
    pub(crate) fn remember_hash(&self, v: &VersionInfo, hash: u64) {
        let mut map = self.hashes.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_HASHES {
            map.clear();
        }
        map.insert(version_key(v), hash);
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic elsewhere while holding the lock leaves the connection usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `content` as the next version of `list`; returns its number.
    pub fn record(
        &self,
        list: &str,
        author: &str,
        summary: &ChangeSummary,
        content: &[RuleRow],
    ) -> Result<u64> {
        self.record_at(list, author, summary, content, Utc::now())
    }

    /// [`ListVersions::record`] at a given time (tests, imports of old history).
    pub(crate) fn record_at(
        &self,
        list: &str,
        author: &str,
        summary: &ChangeSummary,
        content: &[RuleRow],
        time: DateTime<Utc>,
    ) -> Result<u64> {
        let json = serde_json::to_string(content)?;
        let mut conn = self.conn();
        // IMMEDIATE: take the write lock before reading MAX(version), so two
        // processes recording the same list cannot pick the same number.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM list_versions WHERE list = ?1",
            params![list],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO list_versions (list, version, time_ms, author, summary, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                list,
                version,
                time.timestamp_millis(),
                author,
                summary.to_string(),
                json
            ],
        )?;
        tx.commit()?;
        Ok(u64::try_from(version).unwrap_or(0))
    }

    /// Newest first; all lists when `list` is `None`.
    pub fn versions(&self, list: Option<&str>, limit: usize) -> Result<Vec<VersionInfo>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {INFO_COLUMNS} FROM list_versions
             WHERE ?1 IS NULL OR list = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![list, limit], info)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The rows of one version, for a rollback or a diff.
    pub fn content(&self, list: &str, version: u64) -> Result<Option<Vec<RuleRow>>> {
        let Ok(version) = i64::try_from(version) else {
            return Ok(None);
        };
        let json: Option<String> = self
            .conn()
            .query_row(
                "SELECT content FROM list_versions WHERE list = ?1 AND version = ?2",
                params![list, version],
                |r| r.get(0),
            )
            .optional()?;
        json.map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(Into::into)
    }

    pub fn latest(&self, list: &str) -> Result<Option<VersionInfo>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {INFO_COLUMNS} FROM list_versions WHERE list = ?1 ORDER BY version DESC LIMIT 1"),
                params![list],
                info,
            )
            .optional()?)
    }

    /// Deletes versions older than `retention_days`, except the latest of
    /// each list: the current state must always be restorable. Returns the
    /// number of versions deleted.
    pub fn purge(&self, retention_days: u32) -> Result<usize> {
        self.purge_at(retention_days, Utc::now())
    }

    /// [`ListVersions::purge`] as of `now`.
    pub(crate) fn purge_at(&self, retention_days: u32, now: DateTime<Utc>) -> Result<usize> {
        let cutoff = now.timestamp_millis() - i64::from(retention_days) * 86_400_000;
        Ok(self.conn().execute(
            "DELETE FROM list_versions AS v WHERE time_ms < ?1
               AND version < (SELECT MAX(version) FROM list_versions WHERE list = v.list)",
            params![cutoff],
        )?)
    }
}

fn info(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionInfo> {
    let version: i64 = r.get(0)?;
    let ms: i64 = r.get(2)?;
    Ok(VersionInfo {
        version: u64::try_from(version).unwrap_or(0),
        list: r.get(1)?,
        time: Utc.timestamp_millis_opt(ms).single().unwrap_or_default(),
        author: r.get(3)?,
        summary: r.get(4)?,
    })
}

#[cfg(test)]
mod tests;
