//! List versions: every version of every list, in SQLite, so a bad change
//! can be rolled back to any earlier state and the operator can see who
//! changed what (`callguard history`, `rollback`, the API's history routes).
//!
//! The table lives in the decision log's SQLite file (`log.path`), also when
//! the log itself is in PostgreSQL: it has its own name (`list_versions`) and
//! its own connection, in WAL mode so neither blocks the other's readers.
//!
//! A version is stored as its difference from the one before (the
//! `Diff` PostgreSQL stores too: one row added to a million-row list stores
//! that row), with the whole content now and then: the first version of a
//! list, a version whose base the writer did not know, and one whose chain of
//! diffs since the last whole content has grown past a quarter of it (at
//! least 64 KiB), so rebuilding a version reads at most that much more than
//! the content itself. Versions stored whole by older releases (no `diff`
//! column) are whole contents like any other.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::pg_lists::Diff;
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
    /// A diff whose base version is missing (never expected: a purge keeps
    /// every kept version rebuildable).
    #[error("history content: version {version} of list {list:?} cannot be rebuilt")]
    Gap { list: String, version: u64 },
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

/// Columns added since the first release: `diff`, the version as a diff from
/// the one before (`content` is then empty; NULL: `content` is the whole
/// list), and `size`, the bytes of whichever is stored (0 in older rows).
const MIGRATION: &str = "
ALTER TABLE list_versions ADD COLUMN diff TEXT;
ALTER TABLE list_versions ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
";

/// The chain of diffs since the last whole content may grow to a quarter of
/// that content, and at least to this many bytes, before a whole content is
/// stored again.
const CHAIN_MIN_BYTES: i64 = 64 * 1024;

const INFO_COLUMNS: &str = "version, list, time_ms, author, summary";

impl ListVersions {
    /// Opens (and creates if needed) the history in the SQLite file `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<ListVersions> {
        // List versions hold phone numbers: owner-only, like the decision log.
        // They are the rollback of last resort: a committed version must
        // survive a power cut, which WAL's usual NORMAL does not promise.
        let conn = sqlite::open_rw(path.as_ref(), Durability::PowerCut)?;
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
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
        self.record_after(list, author, summary, content, None, time)
    }

    /// Stores `content` as the next version of `list`, as its diff from
    /// `base` (a version and its rows) when that is the latest version.
    pub(crate) fn record_after(
        &self,
        list: &str,
        author: &str,
        summary: &ChangeSummary,
        content: &[RuleRow],
        base: Option<(u64, &[RuleRow])>,
        time: DateTime<Utc>,
    ) -> Result<u64> {
        let mut conn = self.conn();
        // IMMEDIATE: take the write lock before reading MAX(version), so two
        // processes recording the same list cannot pick the same number.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let latest: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM list_versions WHERE list = ?1",
            params![list],
            |r| r.get(0),
        )?;
        let version = latest + 1;
        // Another writer may have recorded a version since `base` was read.
        let diff = base
            .filter(|(v, _)| i64::try_from(*v).ok() == Some(latest) && latest > 0)
            .map(|(_, old)| Diff::between(old, content))
            .filter(|d| d.full.is_none())
            .map(|d| serde_json::to_string(&d))
            .transpose()?;
        let diff = match diff {
            Some(d) => {
                let (whole, chain): (i64, i64) = tx.query_row(
                    "SELECT
                       COALESCE((SELECT size FROM list_versions WHERE list = ?1 AND diff IS NULL
                                 ORDER BY version DESC LIMIT 1), 0),
                       COALESCE((SELECT SUM(size) FROM list_versions WHERE list = ?1
                                 AND diff IS NOT NULL AND version >
                                 (SELECT COALESCE(MAX(version), 0) FROM list_versions
                                  WHERE list = ?1 AND diff IS NULL)), 0)",
                    params![list],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                let len = i64::try_from(d.len()).unwrap_or(i64::MAX);
                (chain.saturating_add(len) <= CHAIN_MIN_BYTES.max(whole / 4)).then_some(d)
            }
            None => None,
        };
        let (content, size) = match &diff {
            Some(d) => (String::new(), d.len()),
            None => {
                let json = serde_json::to_string(content)?;
                let n = json.len();
                (json, n)
            }
        };
        tx.execute(
            "INSERT INTO list_versions (list, version, time_ms, author, summary, content, diff, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                list,
                version,
                time.timestamp_millis(),
                author,
                summary.to_string(),
                content,
                diff,
                i64::try_from(size).unwrap_or(i64::MAX)
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
        let Ok(v) = i64::try_from(version) else {
            return Ok(None);
        };
        content_in(&self.conn(), list, v)
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        const DOOMED: &str = "time_ms < ?1
               AND version < (SELECT MAX(version) FROM list_versions WHERE list = v.list)";
        // A kept diff whose version before goes is stored whole first.
        let orphans: Vec<(String, i64)> = tx
            .prepare(&format!(
                "SELECT k.list, k.version FROM list_versions AS k
                 WHERE k.diff IS NOT NULL AND NOT (k.time_ms < ?1 AND k.version <
                     (SELECT MAX(version) FROM list_versions WHERE list = k.list))
                   AND EXISTS (SELECT 1 FROM list_versions AS v WHERE v.list = k.list
                               AND v.version = k.version - 1 AND {DOOMED})"
            ))?
            .query_map(params![cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (list, version) in orphans {
            let rows = content_in(&tx, &list, version)?.unwrap_or_default();
            let json = serde_json::to_string(&rows)?;
            tx.execute(
                "UPDATE list_versions SET content = ?3, diff = NULL, size = ?4
                 WHERE list = ?1 AND version = ?2",
                params![
                    list,
                    version,
                    json,
                    i64::try_from(json.len()).unwrap_or(i64::MAX)
                ],
            )?;
        }
        let n = tx.execute(
            &format!("DELETE FROM list_versions AS v WHERE {DOOMED}"),
            params![cutoff],
        )?;
        tx.commit()?;
        Ok(n)
    }
}

/// Adds the columns of [`MIGRATION`] to a table an older release created.
fn migrate(conn: &Connection) -> Result<()> {
    let has_diff = |c: &Connection| -> Result<bool> {
        let n: i64 = c.query_row(
            "SELECT count(*) FROM pragma_table_info('list_versions') WHERE name = 'diff'",
            [],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    };
    if has_diff(conn)? {
        return Ok(());
    }
    match conn.execute_batch(&format!("BEGIN IMMEDIATE; {MIGRATION} COMMIT;")) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            // Another process migrated it in the meantime.
            if has_diff(conn)? {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

/// Version `version` of `list`: the last whole content at or before it, and
/// the diffs after that, folded.
fn content_in(conn: &Connection, list: &str, version: i64) -> Result<Option<Vec<RuleRow>>> {
    let gap = || ListVersionsError::Gap {
        list: list.to_string(),
        version: u64::try_from(version).unwrap_or(0),
    };
    let exists: Option<i64> = conn
        .query_row(
            "SELECT version FROM list_versions WHERE list = ?1 AND version = ?2",
            params![list, version],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Ok(None);
    }
    let whole: Option<(i64, String)> = conn
        .query_row(
            "SELECT version, content FROM list_versions
             WHERE list = ?1 AND version <= ?2 AND diff IS NULL ORDER BY version DESC LIMIT 1",
            params![list, version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((from, json)) = whole else {
        return Err(gap());
    };
    let base: Vec<RuleRow> = serde_json::from_str(&json)?;
    drop(json);
    let mut stmt = conn.prepare_cached(
        "SELECT version, diff FROM list_versions
         WHERE list = ?1 AND version > ?2 AND version <= ?3 ORDER BY version",
    )?;
    let mut diffs = Vec::new();
    let mut want = from + 1;
    for row in stmt.query_map(params![list, from, version], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
    })? {
        let (v, d) = row?;
        let Some(d) = d.filter(|_| v == want) else {
            return Err(gap());
        };
        diffs.push(serde_json::from_str::<Diff>(&d)?);
        want += 1;
    }
    if want != version + 1 {
        return Err(gap());
    }
    Ok(Some(Diff::fold(base, diffs)))
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
