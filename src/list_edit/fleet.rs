//! The fleet's lists (`log.postgres`): PostgreSQL is the store of record
//! ([`crate::store::pg_lists`]), and each instance keeps a mirror of it —
//! the rows of every stored list, in memory and in a cache directory beside
//! `log.path` (`<log.path>.lists/`, written atomically) — which a reload lays
//! over the rows the config's list files hold. The mirror is the last good
//! rule set: a database outage never stops screening, and an instance
//! starting while the database is down starts from the cache.
//!
//! A list the store has never had a version of keeps its file's rows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::config::LoadedConfig;
use crate::list_io::{Format, RuleRow, read_rows, write_atomic, write_rows};
use crate::store::pg_lists::{Committed, PgStore, PgStoreError};

/// The store's lists as this instance last saw them.
#[derive(Default)]
struct Mirror {
    /// The rules version these rows are (see `pg_lists`).
    version: u64,
    lists: HashMap<String, Arc<Vec<RuleRow>>>,
}

/// What `/api/v1/status` and the metrics say about the store.
#[derive(Default)]
pub struct FleetStatus {
    up: AtomicBool,
    last_error: Mutex<Option<(DateTime<Utc>, String)>>,
    store_version: AtomicU64,
    applied_version: AtomicU64,
    applied_at: Mutex<Option<DateTime<Utc>>>,
    /// List notifications received.
    notifications: AtomicU64,
    /// Store changes applied (installed by a reload).
    applies: AtomicU64,
}

/// The instance's handle on the fleet's lists.
pub struct Fleet {
    pub store: Arc<PgStore>,
    /// `None` for a CLI command (nothing kept on disk).
    cache: Option<PathBuf>,
    mirror: Mutex<Mirror>,
    pub status: FleetStatus,
}

/// The cache directory for the decision log at `log_path`.
pub fn cache_dir(log_path: &Path) -> PathBuf {
    let mut name = log_path.file_name().unwrap_or_default().to_os_string();
    name.push(".lists");
    log_path.with_file_name(name)
}

/// A list name as a file name: hex, so any name is safe.
fn file_name(list: &str) -> String {
    let hex: String = list.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

const STATE_FILE: &str = "state.json";

impl Fleet {
    pub fn new(store: Arc<PgStore>, cache: Option<PathBuf>) -> Fleet {
        Fleet {
            store,
            cache,
            mirror: Mutex::new(Mirror::default()),
            status: FleetStatus::default(),
        }
    }

    /// A CLI command's view: everything pulled from the store now.
    pub fn for_command(store: Arc<PgStore>) -> Result<Fleet, PgStoreError> {
        let f = Fleet::new(store, None);
        f.pull()?;
        Ok(f)
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, Mirror> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rules version of the mirror.
    pub fn version(&self) -> u64 {
        self.mirror().version
    }

    /// The stored rows of `list` as mirrored.
    pub fn rows(&self, list: &str) -> Option<Arc<Vec<RuleRow>>> {
        self.mirror().lists.get(list).cloned()
    }

    /// Reads the cache written by an earlier run; returns its rules version
    /// (0: no usable cache). A list file that does not parse makes the whole
    /// cache unusable, never half of it.
    pub fn load_cache(&self) -> u64 {
        let Some(dir) = &self.cache else { return 0 };
        let Ok(state) = std::fs::read(dir.join(STATE_FILE)) else {
            return 0;
        };
        let Ok(state) = serde_json::from_slice::<serde_json::Value>(&state) else {
            return 0;
        };
        let version = state["rules_version"].as_u64().unwrap_or(0);
        let mut lists = HashMap::new();
        for name in state["lists"].as_array().into_iter().flatten() {
            let Some(name) = name.as_str() else { return 0 };
            let path = dir.join(file_name(name));
            let Ok(bytes) = std::fs::read(&path) else {
                return 0;
            };
            let parsed = read_rows(&bytes, Format::Json, &path.display().to_string());
            if !parsed.errors.is_empty() {
                return 0;
            }
            let rows = parsed.rows.into_iter().map(|(_, r)| r).collect();
            lists.insert(name.to_string(), Arc::new(rows));
        }
        let mut m = self.mirror();
        m.version = version;
        m.lists = lists;
        version
    }

    fn write_cache(&self, m: &Mirror, changed: &[String]) {
        let Some(dir) = &self.cache else { return };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            for name in changed {
                if let Some(rows) = m.lists.get(name) {
                    write_atomic(dir.join(file_name(name)), &write_rows(rows, Format::Json))?;
                }
            }
            let mut names: Vec<&String> = m.lists.keys().collect();
            names.sort();
            let state = json!({ "rules_version": m.version, "lists": names });
            write_atomic(dir.join(STATE_FILE), state.to_string().as_bytes())
        };
        if let Err(e) = write() {
            tracing::warn!(dir = %dir.display(), "list cache not written: {e}");
        }
    }

    /// Brings the mirror up to the store: returns the lists that changed
    /// (empty: nothing new). A store behind the mirror (restored from a
    /// backup) is taken whole.
    pub fn pull(&self) -> Result<Vec<String>, PgStoreError> {
        let since = self.version();
        let mut pulled = self.observe(self.store.pull(since))?;
        if pulled.rules_version < since {
            pulled = self.observe(self.store.pull(0))?;
        }
        self.status
            .store_version
            .fetch_max(pulled.rules_version, Ordering::Relaxed);
        let mut m = self.mirror();
        // A pull racing another (the poll and a notification) may be older.
        if pulled.rules_version == m.version && pulled.lists.is_empty() {
            return Ok(Vec::new());
        }
        let changed: Vec<String> = pulled.lists.iter().map(|(n, _)| n.clone()).collect();
        for (name, rows) in pulled.lists {
            m.lists.insert(name, Arc::new(rows));
        }
        m.version = pulled.rules_version;
        self.write_cache(&m, &changed);
        Ok(changed)
    }

    /// After this instance committed `rows` to `list`: the mirror takes them
    /// (and the version) when nothing else was committed meanwhile; else the
    /// next pull brings both.
    pub fn committed(&self, list: &str, rows: Vec<RuleRow>, c: Committed) {
        self.status
            .store_version
            .fetch_max(c.rules_version, Ordering::Relaxed);
        let mut m = self.mirror();
        if m.version != c.before {
            return;
        }
        m.lists.insert(list.to_string(), Arc::new(rows));
        m.version = c.rules_version;
        self.write_cache(&m, &[list.to_string()]);
    }

    /// Lays the mirrored rows over the lists the store holds; returns the
    /// rules version they are. A stored list's file problems no longer apply.
    pub fn overlay(&self, cfg: &mut LoadedConfig) -> u64 {
        let m = self.mirror();
        for list in &mut cfg.lists {
            let Some(rows) = m.lists.get(&list.name) else {
                continue;
            };
            let file = list.path.display().to_string();
            cfg.problems.retain(|p| {
                p.file != file && !p.message.starts_with(&format!("{}:", list.display))
            });
            let base = if list.format == Format::Csv { 2 } else { 1 };
            list.rows = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (u32::try_from(i + base).unwrap_or(u32::MAX), r.clone()))
                .collect();
        }
        m.version
    }

    /// A store call's outcome, for the status.
    pub fn observe<T>(&self, r: Result<T, PgStoreError>) -> Result<T, PgStoreError> {
        match &r {
            Ok(_) => self.set_up(true, None),
            Err(e @ PgStoreError::Unavailable(..)) => self.set_up(false, Some(e.to_string())),
            Err(e) => self.set_up(true, Some(e.to_string())),
        }
        r
    }

    /// Connection state as seen by the listener or a call.
    pub fn set_up(&self, up: bool, error: Option<String>) {
        self.status.up.store(up, Ordering::Relaxed);
        if let Some(e) = error {
            *self
                .status
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Some((Utc::now(), e));
        }
    }

    pub fn is_up(&self) -> bool {
        self.status.up.load(Ordering::Relaxed)
    }

    /// A list notification arrived (counted before it is handled).
    pub fn notified(&self, rules_version: u64) {
        self.status.notifications.fetch_add(1, Ordering::Relaxed);
        self.status
            .store_version
            .fetch_max(rules_version, Ordering::Relaxed);
    }

    /// A reload installed the rules of store version `v`.
    pub fn applied(&self, v: u64) {
        let before = self.status.applied_version.swap(v, Ordering::Relaxed);
        if before != v {
            self.status.applies.fetch_add(1, Ordering::Relaxed);
        }
        self.status.store_version.fetch_max(v, Ordering::Relaxed);
        *self
            .status
            .applied_at
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Utc::now());
    }

    pub fn applied_version(&self) -> u64 {
        self.status.applied_version.load(Ordering::Relaxed)
    }

    pub fn store_version(&self) -> u64 {
        self.status.store_version.load(Ordering::Relaxed)
    }

    pub fn applied_at(&self) -> Option<DateTime<Utc>> {
        *self
            .status
            .applied_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The `store` object of `/api/v1/status`.
    pub fn status_json(&self) -> serde_json::Value {
        let s = &self.status;
        let err = s
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        json!({
            "backend": "postgres",
            "server": self.store.shown(),
            "instance": self.store.instance(),
            "connected": self.is_up(),
            "last_error": err.map(|(at, e)| json!({ "at": at.to_rfc3339(), "error": e })),
            "rules_version": self.store_version(),
            "notifications": s.notifications.load(Ordering::Relaxed),
            "applied": s.applies.load(Ordering::Relaxed),
            "cache": self.cache.as_ref().map(|d| d.display().to_string()),
        })
    }
}
