//! The lists' store of record in PostgreSQL (`log.postgres`, for a fleet):
//! every list's current rows, its versions as diffs (author, time, the
//! instance that wrote it), and the temporary velocity blocks. One edit is
//! one transaction: the version row, the current rows, and a
//! `pg_notify('callguard_lists', …)` naming the list, the versions and the
//! writing instance, delivered to every instance at commit.
//!
//! Edits take one advisory lock for the whole store, so version ids commit
//! in order and the largest id is the fleet-wide rules version: an instance
//! that has applied id N has applied every edit up to N.
//!
//! Blocking client (`postgres`): called from blocking threads only. Every
//! statement is bounded (`statement_timeout`), the connection has TCP
//! keepalives, and a lost connection is rebuilt on the next call.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::pg::{PgTarget, STATEMENT_TIMEOUT};
use crate::list_io::{RuleRow, diff_rows};

mod blocks;
pub(crate) mod diff;
mod rows;
use rows::{current_rows, write_rows};
pub(crate) mod listen;
pub(crate) use diff::Diff;
pub(crate) use listen::{Event, listen};

/// The channel of list edits; the payload is a [`ListNote`] as JSON.
pub(crate) const LISTS_CHANNEL: &str = "callguard_lists";
/// The channel of velocity blocks added and lifted ([`BlockNote`]).
pub(crate) const BLOCKS_CHANNEL: &str = "callguard_blocks";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS callguard_list_versions (
    id       BIGSERIAL   PRIMARY KEY,
    list     TEXT        NOT NULL,
    version  BIGINT      NOT NULL,
    time     TIMESTAMPTZ NOT NULL,
    author   TEXT        NOT NULL,
    summary  TEXT        NOT NULL,
    diff     TEXT        NOT NULL,
    instance TEXT        NOT NULL DEFAULT '',
    UNIQUE (list, version)
);
CREATE TABLE IF NOT EXISTS callguard_list_rows (
    list       TEXT    NOT NULL,
    pos        BIGINT  NOT NULL,
    rule_name  TEXT    NOT NULL,
    pattern    TEXT    NOT NULL,
    match_type TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    enabled    BOOLEAN NOT NULL,
    notes      TEXT    NOT NULL,
    PRIMARY KEY (list, pos)
);
CREATE INDEX IF NOT EXISTS callguard_list_rows_name ON callguard_list_rows (list, rule_name);
CREATE TABLE IF NOT EXISTS callguard_velocity_blocks (
    key      TEXT   PRIMARY KEY,
    trunk    TEXT   NOT NULL,
    rule     TEXT   NOT NULL,
    subject  TEXT   NOT NULL,
    created  BIGINT NOT NULL,
    until    BIGINT NOT NULL
);
";

/// Creating the schema (instances starting together).
const SCHEMA_LOCK: i64 = 0x6367_6c69_7374_7331; // "cglists1"
/// Every list edit, fleet-wide: ids commit in order.
const EDIT_LOCK: i64 = 0x6367_6c69_7374_7332; // "cglists2"

#[derive(Debug, thiserror::Error)]
pub enum PgStoreError {
    /// The server cannot be reached or the connection broke: try again later.
    #[error("the list store (PostgreSQL {0}) is unavailable: {1}")]
    Unavailable(String, String),
    #[error("list store: {0}")]
    Query(String),
}

pub(crate) type Result<T> = std::result::Result<T, PgStoreError>;

/// What an edit's notification carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ListNote {
    pub list: String,
    /// The list's own version number.
    pub version: u64,
    /// The fleet-wide rules version (the version row's id).
    pub rules_version: u64,
    /// The writing instance ([`PgStore::instance`]).
    pub instance: String,
}

/// What a block's notification carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BlockNote {
    /// `add` or `lift`.
    pub op: String,
    pub key: String,
    pub instance: String,
}

/// One stored version, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub id: u64,
    pub list: String,
    pub version: u64,
    pub time: DateTime<Utc>,
    pub author: String,
    pub summary: String,
}

/// A committed edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The fleet-wide rules version before the edit.
    pub before: u64,
    /// The list's version recorded last.
    pub version: u64,
    /// The fleet-wide rules version after it.
    pub rules_version: u64,
}

/// Lists changed since a rules version, with their rows now.
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    pub rules_version: u64,
    pub lists: Vec<(String, Vec<RuleRow>)>,
}

/// The service's (or a CLI command's) handle on the store.
pub struct PgStore {
    target: PgTarget,
    client: Mutex<Option<postgres::Client>>,
    instance: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.target.shown())
    }
}

fn is_broken(e: &postgres::Error) -> bool {
    e.is_closed() || e.code().is_none()
}

impl PgStore {
    /// A handle; nothing is connected until the first call.
    pub fn new(target: PgTarget) -> PgStore {
        let nanos = Utc::now().timestamp_subsec_nanos();
        PgStore {
            instance: format!(
                "{}-{}-{nanos:08x}",
                super::pg::instance_name(),
                std::process::id()
            ),
            target,
            client: Mutex::new(None),
        }
    }

    /// This process's id in notifications: host, pid and a start stamp.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// `user@host:port/dbname`.
    pub fn shown(&self) -> &str {
        self.target.shown()
    }

    pub(crate) fn target(&self) -> &PgTarget {
        &self.target
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> PgStoreError {
        PgStoreError::Unavailable(self.target.shown().to_string(), e.to_string())
    }

    fn connect(&self) -> Result<postgres::Client> {
        let mut c = self
            .target
            .blocking_config()
            .connect(postgres::NoTls)
            .map_err(|e| self.unavailable(e))?;
        c.batch_execute(&format!(
            "SET statement_timeout = {}; BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;",
            STATEMENT_TIMEOUT.as_millis()
        ))
        .map_err(|e| self.unavailable(e))?;
        Ok(c)
    }

    /// Runs `f` on a live connection; a broken one is rebuilt and, for
    /// `retry` (idempotent work), `f` runs once more on the new one.
    fn with<T>(
        &self,
        retry: bool,
        mut f: impl FnMut(&mut postgres::Client) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            if guard.as_ref().is_none_or(postgres::Client::is_closed) {
                *guard = Some(self.connect()?);
            }
            let Some(client) = guard.as_mut() else {
                continue;
            };
            match f(client) {
                Ok(v) => return Ok(v),
                Err(e) if is_broken(&e) => {
                    *guard = None;
                    if !retry || attempt == 1 {
                        return Err(self.unavailable(e));
                    }
                }
                Err(e) => return Err(PgStoreError::Query(e.to_string())),
            }
        }
        Err(self.unavailable("no connection"))
    }

    /// Checks the connection (`SELECT 1`), reconnecting if needed.
    pub fn ping(&self) -> Result<()> {
        self.with(true, |c| c.simple_query("SELECT 1").map(|_| ()))
    }

    /// The fleet-wide rules version: the newest version row's id (0: none).
    pub fn rules_version(&self) -> Result<u64> {
        self.with(true, |c| {
            let row = c.query_one(
                "SELECT COALESCE(MAX(id), 0) FROM callguard_list_versions",
                &[],
            )?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }

    /// The lists changed after rules version `since` (all, from 0), with
    /// their current rows, read in one snapshot with the version they make.
    pub fn pull(&self, since: u64) -> Result<Pulled> {
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        self.with(true, |c| {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let v: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(id), 0) FROM callguard_list_versions",
                    &[],
                )?
                .get(0);
            let mut out = Pulled {
                rules_version: u64::try_from(v).unwrap_or(0),
                lists: Vec::new(),
            };
            if v > since {
                let names: Vec<String> = tx
                    .query(
                        "SELECT DISTINCT list FROM callguard_list_versions WHERE id > $1 ORDER BY list",
                        &[&since],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                for name in names {
                    let rows = current_rows(&mut tx, &name)?;
                    out.lists.push((name, rows));
                }
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// The current rows of `list`, or `None` when the store has no version of it.
    pub fn current(&self, list: &str) -> Result<Option<Vec<RuleRow>>> {
        self.with(true, |c| {
            let mut tx = c.transaction()?;
            let out = stored_current(&mut tx, list)?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Newest first; every list when `list` is `None`.
    pub fn versions(&self, list: Option<&str>, limit: usize) -> Result<Vec<StoredVersion>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(true, |c| {
            let rows = c.query(
                "SELECT id, list, version, time, author, summary FROM callguard_list_versions
                 WHERE $1::TEXT IS NULL OR list = $1 ORDER BY id DESC LIMIT $2",
                &[&list, &limit],
            )?;
            Ok(rows
                .iter()
                .map(|r| StoredVersion {
                    id: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                    list: r.get(1),
                    version: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                    time: r.get(3),
                    author: r.get(4),
                    summary: r.get(5),
                })
                .collect())
        })
    }

    /// The rows of version `version` of `list`: its diffs folded from the first.
    pub fn content(&self, list: &str, version: u64) -> Result<Option<Vec<RuleRow>>> {
        let Ok(v) = i64::try_from(version) else {
            return Ok(None);
        };
        let diffs: Vec<(i64, String)> = self.with(true, |c| {
            Ok(c.query(
                "SELECT version, diff FROM callguard_list_versions
                 WHERE list = $1 AND version <= $2 ORDER BY version",
                &[&list, &v],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })?;
        if diffs.last().map(|d| d.0) != Some(v) {
            return Ok(None);
        }
        let mut rows = Vec::new();
        for (_, d) in diffs {
            let d: Diff = serde_json::from_str(&d)
                .map_err(|e| PgStoreError::Query(format!("stored diff of {list}: {e}")))?;
            rows = d.apply(&rows);
        }
        Ok(Some(rows))
    }

    /// One edit of `list` as one transaction under the store's edit lock:
    /// `f` reads the current rows and records versions through the
    /// [`ListTx`]; its `Ok` commits (with the notification), its `Err`
    /// rolls everything back. Not retried: a connection found broken
    /// before the edit is rebuilt first.
    pub fn edit<T, E: From<PgStoreError>>(
        &self,
        list: &str,
        f: impl FnOnce(&mut ListTx<'_, '_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<(T, Option<Committed>), E> {
        let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
        let healthy = guard
            .as_mut()
            .is_some_and(|c| c.is_valid(Duration::from_secs(5)).is_ok());
        if !healthy {
            *guard = None;
            *guard = Some(self.connect()?);
        }
        let Some(client) = guard.as_mut() else {
            return Err(self.unavailable("no connection").into());
        };
        let mut reset = false;
        let out = self.run_edit(client, list, f, &mut reset);
        if reset {
            *guard = None;
        }
        out
    }

    fn run_edit<T, E: From<PgStoreError>>(
        &self,
        client: &mut postgres::Client,
        list: &str,
        f: impl FnOnce(&mut ListTx<'_, '_>) -> std::result::Result<T, E>,
        reset: &mut bool,
    ) -> std::result::Result<(T, Option<Committed>), E> {
        let broken = |e: postgres::Error| -> PgStoreError {
            if is_broken(&e) {
                self.unavailable(e)
            } else {
                PgStoreError::Query(e.to_string())
            }
        };
        let tx = match client.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                *reset = true;
                return Err(broken(e).into());
            }
        };
        let mut ltx = ListTx {
            tx,
            list: list.to_string(),
            instance: &self.instance,
            before: 0,
            committed: None,
        };
        let locked = ltx
            .tx
            .execute(&format!("SELECT pg_advisory_xact_lock({EDIT_LOCK})"), &[])
            .and_then(|_| {
                ltx.tx.query_one(
                    "SELECT COALESCE(MAX(id), 0) FROM callguard_list_versions",
                    &[],
                )
            })
            .map(|r| ltx.before = u64::try_from(r.get::<_, i64>(0)).unwrap_or(0));
        let out = locked
            .map_err(broken)
            .map_err(E::from)
            .and_then(|_| f(&mut ltx));
        let value = match out {
            Ok(v) => v,
            Err(e) => {
                let _ = ltx.tx.rollback();
                return Err(e);
            }
        };
        let committed = ltx.committed;
        if let Some(c) = committed {
            let note = ListNote {
                list: list.to_string(),
                version: c.version,
                rules_version: c.rules_version,
                instance: self.instance.clone(),
            };
            let payload = serde_json::to_string(&note).unwrap_or_default();
            ltx.tx
                .execute("SELECT pg_notify($1, $2)", &[&LISTS_CHANNEL, &payload])
                .map_err(broken)?;
        }
        if let Err(e) = ltx.tx.commit() {
            *reset = true;
            return Err(broken(e).into());
        }
        Ok((value, committed))
    }
}

impl Drop for PgStore {
    /// The blocking client closes its connection with a `block_on` of its
    /// own, which panics on a runtime's thread: it is closed on a thread of
    /// its own instead.
    fn drop(&mut self) {
        let client = self.client.get_mut().map(Option::take).unwrap_or(None);
        if let Some(c) = client {
            let _ = std::thread::Builder::new()
                .name("callguard-pg-close".into())
                .spawn(move || drop(c));
        }
    }
}

/// An edit in progress (see [`PgStore::edit`]).
pub struct ListTx<'c, 'i> {
    tx: postgres::Transaction<'c>,
    list: String,
    instance: &'i str,
    before: u64,
    committed: Option<Committed>,
}

impl ListTx<'_, '_> {
    /// The list's rows now, or `None` when the store has no version of it.
    pub fn current(&mut self) -> Result<Option<Vec<RuleRow>>> {
        let list = self.list.clone();
        stored_current(&mut self.tx, &list).map_err(|e| PgStoreError::Query(e.to_string()))
    }

    /// Records `rows` as the list's next version by `author`, unless they are
    /// its content already (then `None`).
    pub fn record(&mut self, rows: &[RuleRow], author: &str) -> Result<Option<u64>> {
        self.record_inner(rows, author)
            .map_err(|e| PgStoreError::Query(e.to_string()))
    }

    fn record_inner(
        &mut self,
        rows: &[RuleRow],
        author: &str,
    ) -> std::result::Result<Option<u64>, postgres::Error> {
        let list = self.list.clone();
        let old = stored_current(&mut self.tx, &list)?;
        let had = old.is_some();
        let old = old.unwrap_or_default();
        if had && old == rows {
            return Ok(None);
        }
        let diff = Diff::between(&old, rows);
        let summary = diff_rows(&old, rows).to_string();
        let json = serde_json::to_string(&diff).unwrap_or_default();
        let version: i64 = self
            .tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM callguard_list_versions WHERE list = $1",
                &[&list],
            )?
            .get(0);
        let id: i64 = self
            .tx
            .query_one(
                "INSERT INTO callguard_list_versions (list, version, time, author, summary, diff, instance)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[&list, &version, &Utc::now(), &author, &summary, &json, &self.instance],
            )?
            .get(0);
        write_rows(&mut self.tx, &list, &old, &diff, rows)?;
        let c = Committed {
            before: self.before,
            version: u64::try_from(version).unwrap_or(0),
            rules_version: u64::try_from(id).unwrap_or(0),
        };
        self.committed = Some(c);
        Ok(Some(c.version))
    }
}

fn stored_current(
    tx: &mut postgres::Transaction<'_>,
    list: &str,
) -> std::result::Result<Option<Vec<RuleRow>>, postgres::Error> {
    let known: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM callguard_list_versions WHERE list = $1)",
            &[&list],
        )?
        .get(0);
    if !known {
        return Ok(None);
    }
    current_rows(tx, list).map(Some)
}
