//! The lock every list write holds, and what a write leaves for the reload
//! that follows it: the configuration it checked and the rule set that check
//! compiled. A write to a million-row list then parses and compiles it once,
//! not once to check and again to reload (issue 23.6). The reload takes it
//! only when every file it was read from is still exactly as it was read;
//! otherwise it loads from disk as always.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::config::LoadedConfig;
use crate::policy::RuleSet;

/// What identifies one version of a file on disk without reading it: a write
/// through `write_atomic` is a new inode, an edit in place a new size or
/// modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

/// The stamp of `p` now, if it exists.
pub(crate) fn stamp(p: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        inode,
    })
}

/// A checked configuration and its rule set, with the stamps of the files
/// it stands for.
pub(crate) struct Prepared {
    stamps: Vec<(PathBuf, Option<Stamp>)>,
    pub cfg: LoadedConfig,
    pub rules: RuleSet,
}

impl Prepared {
    /// `cfg` (loaded at `started`, then changed in memory exactly as
    /// `written` was just written) and its rules; `None` when a file it was
    /// read from may have changed while it was read.
    pub(crate) fn new(
        cfg: LoadedConfig,
        rules: RuleSet,
        started: SystemTime,
        written: &Path,
    ) -> Option<Prepared> {
        // Coarse file times: a file touched within this margin of the load
        // may hold a change the load did not see.
        let margin = Duration::from_secs(1);
        let mut stamps = Vec::with_capacity(cfg.files.len() + 1);
        for f in cfg.files.iter().map(PathBuf::as_path).chain([written]) {
            let s = stamp(f);
            let fresh = s
                .as_ref()
                .and_then(|s| s.modified)
                .is_none_or(|m| m + margin >= started);
            if fresh && f != written {
                return None;
            }
            stamps.push((f.to_path_buf(), s));
        }
        Some(Prepared { stamps, cfg, rules })
    }

    /// Whether every file is still as it was when this was prepared.
    pub(crate) fn current(&self) -> bool {
        self.stamps.iter().all(|(p, s)| stamp(p) == *s)
    }
}

/// Serialises read-modify-write cycles of the list files: two API requests
/// adding to one list must not both start from the same old content. Held
/// while a list file is written and its version recorded; the reloader takes
/// it too, so it never records a file between those two steps. The service
/// owns one (`state::Extras::list_lock`) and hands it to every `ListStore`;
/// a CLI command is alone in its process and uses its own.
#[derive(Clone, Default)]
pub struct WriteLock {
    lock: Arc<Mutex<()>>,
    /// The last write's checked configuration, until a reload takes it.
    prepared: Arc<Mutex<Option<Prepared>>>,
}

impl WriteLock {
    pub fn hold(&self) -> MutexGuard<'_, ()> {
        // A panic elsewhere while holding it leaves nothing half-done in memory.
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `p` for the next reload (replacing an older one).
    pub(crate) fn prepare(&self, p: Option<Prepared>) {
        *self.prepared.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// What the last write left, if it is still current.
    pub(crate) fn take_prepared(&self) -> Option<Prepared> {
        self.prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(Prepared::current)
    }
}
