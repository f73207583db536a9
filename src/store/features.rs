//! What the feature codes remember (issue 22 items 4 and 5), in the SQLite
//! file at `log.path` (also with `log.postgres`, like the reputation cache:
//! the notes come from the PBX this instance serves), and in memory for the
//! call path:
//! - `feature_last_caller`: per tenant and extension, the last screened call
//!   attributed to it (the snippets' `op=delivered` note, or the screening
//!   call itself when its DID is a user's): what `*32` blocks;
//! - `dialled_numbers`: per tenant, extension and number, when the user last
//!   dialled it (`op=dialled`): allowed for calls to that user for
//!   `dialled_numbers.allow_for`.
//!
//! Both survive a restart: [`Features::open`] loads them. Without the file
//! (it cannot be opened) they are kept in memory only, and said so once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, params};

use super::CallLogError;
use super::sqlite::{self, Durability};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS feature_last_caller (
    tenant    TEXT    NOT NULL,
    ext       TEXT    NOT NULL,
    caller    TEXT    NOT NULL,
    unique_id TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (tenant, ext)
);
CREATE TABLE IF NOT EXISTS dialled_numbers (
    tenant TEXT    NOT NULL,
    ext    TEXT    NOT NULL,
    number TEXT    NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (tenant, ext, number)
);";

/// At most this many dialled numbers are kept in memory (the newest, on
/// load; a note past it replaces nothing and is still stored), so a dialler
/// cannot grow the service without bound.
pub(crate) const MAX_DIALLED: usize = 200_000;
/// At most this many attributions (one per tenant and extension).
pub(crate) const MAX_LAST: usize = 200_000;
/// Dialled numbers older than this are dropped on open, whatever `allow_for`.
const KEEP_DIALLED_SECS: i64 = 400 * 86_400;

/// The last screened call attributed to an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastCaller {
    pub caller: String,
    pub unique_id: String,
    /// Seconds since the epoch.
    pub at: i64,
}

type Key2 = (String, String);
type Key3 = (String, String, String);

#[derive(Default)]
struct Mem {
    last: HashMap<Key2, LastCaller>,
    dialled: HashMap<Key3, i64>,
}

/// The feature codes' memory: the table rows, mirrored in memory.
#[derive(Default)]
pub struct Features {
    db: Option<Mutex<Connection>>,
    mem: Mutex<Mem>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves the data usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Features {
    /// Opens (creating, owner-only) the file, makes the tables, drops old
    /// dialled numbers and loads the rest.
    pub fn open(path: &Path, now: i64) -> Result<Features, CallLogError> {
        // An attribution or a dialled number is a user's word: durable like
        // list versions.
        let conn = sqlite::open_rw(path, Durability::PowerCut)?;
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "DELETE FROM dialled_numbers WHERE at < ?1",
            params![now - KEEP_DIALLED_SECS],
        )?;
        let mut mem = Mem::default();
        {
            let mut st = conn.prepare(
                "SELECT tenant, ext, caller, unique_id, at FROM feature_last_caller
                 ORDER BY at DESC LIMIT ?1",
            )?;
            let rows = st.query_map(params![MAX_LAST as i64], |r| {
                Ok((
                    (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                    LastCaller {
                        caller: r.get(2)?,
                        unique_id: r.get(3)?,
                        at: r.get(4)?,
                    },
                ))
            })?;
            for row in rows {
                let (k, v) = row?;
                mem.last.insert(k, v);
            }
            let mut st = conn.prepare(
                "SELECT tenant, ext, number, at FROM dialled_numbers ORDER BY at DESC LIMIT ?1",
            )?;
            let rows = st.query_map(params![MAX_DIALLED as i64], |r| {
                Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, i64>(3)?))
            })?;
            for row in rows {
                let (k, at) = row?;
                mem.dialled.insert(k, at);
            }
        }
        Ok(Features {
            db: Some(Mutex::new(conn)),
            mem: Mutex::new(mem),
        })
    }

    /// Kept in memory only (no file): lost on restart.
    pub fn in_memory() -> Features {
        Features::default()
    }

    /// The memory's sizes: (attributions, dialled numbers).
    pub fn len(&self) -> (usize, usize) {
        let m = lock(&self.mem);
        (m.last.len(), m.dialled.len())
    }

    /// Attributes the screened call `unique_id` from `caller` to `ext` of
    /// `tenant`: it is now that extension's last caller. The memory first
    /// (the next `*32` sees it at once), then the file.
    pub(crate) fn attribute(
        &self,
        tenant: &str,
        ext: &str,
        last: LastCaller,
    ) -> Result<(), CallLogError> {
        {
            let mut m = lock(&self.mem);
            let key = (tenant.to_string(), ext.to_string());
            if m.last.len() < MAX_LAST || m.last.contains_key(&key) {
                m.last.insert(key, last.clone());
            }
        }
        if let Some(db) = &self.db {
            lock(db).execute(
                "INSERT OR REPLACE INTO feature_last_caller (tenant, ext, caller, unique_id, at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, ext, last.caller, last.unique_id, last.at],
            )?;
        }
        Ok(())
    }

    /// The last screened call attributed to `ext` of `tenant`.
    pub(crate) fn last_caller(&self, tenant: &str, ext: &str) -> Option<LastCaller> {
        lock(&self.mem)
            .last
            .get(&(tenant.to_string(), ext.to_string()))
            .cloned()
    }

    /// Notes that `ext` of `tenant` dialled `number` at `at`.
    pub(crate) fn dialled(
        &self,
        tenant: &str,
        ext: &str,
        number: &str,
        at: i64,
    ) -> Result<(), CallLogError> {
        {
            let mut m = lock(&self.mem);
            let key = (tenant.to_string(), ext.to_string(), number.to_string());
            if m.dialled.len() < MAX_DIALLED || m.dialled.contains_key(&key) {
                m.dialled.insert(key, at);
            }
        }
        if let Some(db) = &self.db {
            lock(db).execute(
                "INSERT OR REPLACE INTO dialled_numbers (tenant, ext, number, at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![tenant, ext, number, at],
            )?;
        }
        Ok(())
    }

    /// When `ext` of `tenant` last dialled one of `numbers` (seconds since
    /// the epoch), the newest of them.
    pub(crate) fn last_dialled(&self, tenant: &str, ext: &str, numbers: &[&str]) -> Option<i64> {
        let m = lock(&self.mem);
        if m.dialled.is_empty() {
            return None;
        }
        numbers
            .iter()
            .filter(|n| !n.is_empty())
            .filter_map(|n| {
                m.dialled
                    .get(&(tenant.to_string(), ext.to_string(), n.to_string()))
                    .copied()
            })
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_drops_old_dialled_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let now = 1_800_000_000;
        let f = Features::open(&path, now).unwrap();
        let last = |c: &str| LastCaller {
            caller: c.into(),
            unique_id: format!("id-{c}"),
            at: now,
        };
        f.attribute("acme", "101", last("+15550001111")).unwrap();
        f.attribute("acme", "101", last("+15550002222")).unwrap();
        f.attribute("globex", "101", last("+15550003333")).unwrap();
        f.dialled("acme", "101", "+15557770000", now).unwrap();
        f.dialled("acme", "101", "+15557770001", now - KEEP_DIALLED_SECS - 1)
            .unwrap();
        drop(f);
        let f = Features::open(&path, now).unwrap();
        assert_eq!(f.last_caller("acme", "101").unwrap().caller, "+15550002222");
        assert_eq!(
            f.last_caller("globex", "101").unwrap().caller,
            "+15550003333"
        );
        assert_eq!(f.last_caller("acme", "102"), None);
        assert_eq!(
            f.last_dialled("acme", "101", &["5557770000", "+15557770000"]),
            Some(now)
        );
        assert_eq!(f.last_dialled("acme", "101", &["+15557770001"]), None);
        assert_eq!(f.last_dialled("acme", "102", &["+15557770000"]), None);
        assert_eq!(f.len(), (2, 1));
    }
}
