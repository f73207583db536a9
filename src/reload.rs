//! Hot reload: parse and validate everything off the call path, then swap the
//! whole rule set and the service's live settings in at once. A failed reload
//! changes nothing and says why; a boot-time key edited (a bind address, the
//! storage backend: `service::BOOT_KEYS`) is reported as "restart required"
//! while the rest of the edit is applied.
//!
//! Triggers: a change to the config file or any list file it references
//! (bursts of editor events are coalesced), SIGHUP, and `POST /api/v1/reload`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use notify::{RecursiveMode, Watcher};
use tokio::sync::{Mutex, mpsc};

use crate::config::{self, Problems};
use crate::list_edit::store;
use crate::list_edit::store::{Stamp as Fingerprint, stamp as fingerprint};
use crate::list_io::{Format, RuleRow, read_rows};
use crate::policy::RuleSet;
use crate::service::ServiceConfig;
use crate::state::State;
use crate::store::ListVersions;

/// What caused a reload: for the log, and for who a list change recorded by
/// the reload is attributed to in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The watcher saw this file change (an operator's edit).
    FileChange(PathBuf),
    /// SIGHUP.
    Signal,
    /// `POST /api/v1/reload`.
    ApiReload,
    /// A write through the admin API, described (`api: ops replaced list spam`);
    /// the store has recorded it with the token's name already.
    ApiWrite(String),
    /// A commit of the git rule source: the repository, the full commit id
    /// (the rules' `source` label once installed) and its abbreviation.
    Git {
        url: String,
        id: String,
        commit: String,
    },
    /// A remote list subscription that fetched a new copy.
    Subscription { url: String },
    /// The fleet's store of record (`log.postgres`) brought these lists'
    /// changes (notified, or found by the periodic version check).
    Store { lists: Vec<String> },
}

/// Where a change comes from, for the per-source status: `files` (the
/// config and its lists on disk, SIGHUP, the API), `git URL`, or
/// `subscription URL`. A source's error stays until that source succeeds.
pub(crate) type SourceName = String;

/// One source's last outcome, for `GET /api/v1/status`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SourceStatus {
    /// When the source last brought a change that was installed.
    pub last_ok: Option<chrono::DateTime<Utc>>,
    /// Its last refused change, until it brings one that is installed.
    pub last_error: Option<SourceError>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceError {
    pub at: chrono::DateTime<Utc>,
    pub problems: Vec<String>,
}

/// The name under which the file-backed configuration reports.
pub const FILES: &str = "files";
/// The name under which the fleet's store of record reports.
pub const STORE: &str = "store";

impl Trigger {
    /// The source this trigger reports under.
    pub fn source(&self) -> SourceName {
        match self {
            Trigger::Git { url, .. } => format!("git {url}"),
            Trigger::Subscription { url } => format!("subscription {url}"),
            Trigger::Store { .. } => STORE.to_string(),
            _ => FILES.to_string(),
        }
    }

    /// The author of list versions this reload records: the rule source for
    /// changes it brought, `file` for everything else (an edit on disk).
    pub fn author(&self) -> String {
        match self {
            Trigger::Git { commit, .. } => format!("git {commit}"),
            Trigger::Subscription { url } => format!("subscription {url}"),
            _ => "file".to_string(),
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::FileChange(p) => write!(f, "file change: {}", p.display()),
            Trigger::Signal => f.write_str("SIGHUP"),
            Trigger::ApiReload => f.write_str("api"),
            Trigger::ApiWrite(what) => f.write_str(what),
            Trigger::Git { commit, .. } => write!(f, "git {commit}"),
            Trigger::Subscription { url } => write!(f, "subscription {url}"),
            Trigger::Store { lists } => write!(f, "store: {}", lists.join(", ")),
        }
    }
}

/// Serialises reloads: two triggers at once must not race to install.
pub struct Reloader {
    pub config_path: PathBuf,
    state: Arc<State>,
    lock: Mutex<()>,
    /// The watched files as they were just before the running rules were
    /// read (canonical path → fingerprint). A file event whose file still
    /// matches was already applied (typically: the API wrote the file and
    /// reloaded at once), so the watcher does not reload it a second time.
    loaded: std::sync::Mutex<std::collections::HashMap<PathBuf, Fingerprint>>,
    /// Watcher bursts skipped because every changed file was already applied.
    skipped: std::sync::atomic::AtomicU64,
    /// Watcher bursts looked at (skipped or reloaded).
    bursts: std::sync::atomic::AtomicU64,
    /// Each source's last outcome.
    status: std::sync::Mutex<std::collections::BTreeMap<SourceName, SourceStatus>>,
    /// The git commit the running rules came from: kept across reloads of
    /// other sources, since those rules still come from that commit.
    commit: std::sync::Mutex<Option<String>>,
}

impl Reloader {
    pub fn new(config_path: PathBuf, state: Arc<State>) -> Arc<Reloader> {
        let me = Arc::new(Reloader {
            config_path,
            state,
            lock: Mutex::new(()),
            loaded: Default::default(),
            skipped: Default::default(),
            bursts: Default::default(),
            status: Default::default(),
            commit: Default::default(),
        });
        // The rules running now were read from the files as they are.
        let prints = me.fingerprints();
        me.set_loaded(prints);
        me
    }

    /// Watcher bursts that did not reload because every changed file was
    /// already applied (a write through the API reloads by itself).
    pub fn skipped_bursts(&self) -> u64 {
        self.skipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Watcher bursts looked at so far, whether they reloaded or not.
    pub fn watched_bursts(&self) -> u64 {
        self.bursts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The watched files' fingerprints now.
    fn fingerprints(&self) -> std::collections::HashMap<PathBuf, Fingerprint> {
        self.watched_files()
            .into_iter()
            .filter_map(|p| fingerprint(&p).map(|f| (p, f)))
            .collect()
    }

    fn set_loaded(&self, prints: std::collections::HashMap<PathBuf, Fingerprint>) {
        if let Ok(mut l) = self.loaded.lock() {
            *l = prints;
        }
    }

    /// Whether `p` is still exactly the file the running rules were read from.
    fn already_applied(&self, p: &Path) -> bool {
        let p = canonical(p);
        let Some(now) = fingerprint(&p) else {
            return false;
        };
        self.loaded
            .lock()
            .map(|l| l.get(&p) == Some(&now))
            .unwrap_or(false)
    }

    /// Whether every watched file is still exactly what the running rules
    /// were read from.
    fn all_applied(&self) -> bool {
        let now = self.fingerprints();
        self.loaded
            .lock()
            .map(|l| now.iter().all(|(p, f)| l.get(p) == Some(f)))
            .unwrap_or(false)
    }

    /// Loads, validates and installs; returns the new version or every problem.
    ///
    /// A write through the API to a list file whose content the running rules
    /// already hold (the watcher saw the written file and reloaded it first)
    /// is not loaded again: one API write, one reload.
    pub async fn reload(&self, why: Trigger) -> Result<u64, Problems> {
        let guard = self.lock.lock().await;
        if matches!(why, Trigger::ApiWrite(_))
            && self.state.extras.fleet.is_none()
            && self.all_applied()
        {
            tracing::debug!(trigger = %why, "written files already applied");
            return Ok(self.state.snapshot().version);
        }
        self.reload_locked(why, guard).await
    }

    /// [`Reloader::reload`] with the reload lock held.
    async fn reload_locked(
        &self,
        why: Trigger,
        _guard: tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<u64, Problems> {
        let path = self.config_path.clone();
        // Taken before reading, so a change made while loading differs from
        // it and is reloaded again rather than taken as applied.
        let prints = self.fingerprints();
        let previous = self.state.snapshot();
        let fleet = self.state.extras.fleet.clone();
        // A list write checked (and compiled) the configuration it wrote:
        // installed as it is while every file is still as it was read.
        let prepared = self
            .state
            .extras
            .list_lock
            .take_prepared()
            .filter(|_| matches!(why, Trigger::ApiWrite(_)) && fleet.is_none());
        let built = tokio::task::spawn_blocking(move || {
            if let Some(p) = prepared {
                let service = ServiceConfig::from_config(&p.cfg)?;
                let max_tracked = p.cfg.raw.velocity_limits.max_tracked;
                return Ok((p.rules, service, max_tracked, file_lists(p.cfg), None));
            }
            let mut cfg = config::load_all(&path)?;
            // The store's rows over the files' (the fleet's lists).
            let stored = fleet.map(|f| f.overlay(&mut cfg));
            // One tenant's problems keep only that tenant at its last good version.
            let rules = RuleSet::compile_isolated(&cfg, Some(&previous.rules))?;
            for p in &rules.tenant_problems {
                tracing::error!("reload: {p}");
            }
            let service = ServiceConfig::from_config(&cfg)?;
            let max_tracked = cfg.raw.velocity_limits.max_tracked;
            Ok::<_, Problems>((rules, service, max_tracked, file_lists(cfg), stored))
        })
        .await
        .unwrap_or_else(|e| {
            Err(config::Problem::new("reload", 0, 0, format!("reload task failed: {e}")).into())
        });
        let metrics = &self.state.metrics;
        match built {
            Ok((rules, service, max_tracked, lists, stored)) => {
                let label = match &why {
                    Trigger::Git { id, .. } => {
                        let mut c = self.commit.lock().unwrap_or_else(|e| e.into_inner());
                        *c = Some(id.clone());
                        Some(id.clone())
                    }
                    _ => self.commit.lock().ok().and_then(|c| c.clone()),
                };
                // A token added or changed whose secret is unset can never
                // authorise: said now, as at start, not at the first refusal.
                let tokens = |h: &crate::config::types::HttpConfig| format!("{:?}", h.tokens);
                if tokens(&self.state.snapshot().service.http) != tokens(&service.http) {
                    for w in service.http.unset_token_warnings() {
                        tracing::warn!("{w}");
                    }
                }
                let version = self.state.install(rules, service, label);
                let pending = self.state.snapshot().restart_required.clone();
                if !pending.is_empty() {
                    tracing::warn!(
                        version,
                        trigger = %why,
                        "restart required: {} (read at start; the running service keeps the \
                         old value until it restarts, every other change is applied)",
                        pending.join(", ")
                    );
                }
                self.state
                    .extras
                    .velocity
                    .set_capacity(max_tracked, crate::velocity::millis(chrono::Utc::now()));
                self.set_status(&why.source(), None);
                self.set_loaded(prints);
                if let (Some(f), Some(v)) = (&self.state.extras.fleet, stored) {
                    f.applied(v);
                    self.state.publish_store_gauges();
                }
                self.record_history(lists, &why).await;
                metrics
                    .config_reloads_total
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(version, trigger = %why, "rules reloaded");
                Ok(version)
            }
            Err(problems) => {
                metrics
                    .config_reloads_total
                    .with_label_values(&["failure"])
                    .inc();
                for p in &problems.0 {
                    tracing::error!(trigger = %why, "reload refused, previous rules stay: {p}");
                }
                let text = problems.0.iter().map(ToString::to_string).collect();
                self.set_status(&why.source(), Some(text));
                Err(problems)
            }
        }
    }

    /// Records a version of every file-backed list whose content is not its
    /// latest recorded one: an operator's edit in an editor gets the same
    /// history (and rollback) as a change made through the API. A change the
    /// store already recorded is identical and skipped.
    async fn record_history(&self, lists: Vec<FileList>, why: &Trigger) {
        let Some(history) = self.state.extras.history.clone() else {
            return;
        };
        // Changes a rule source brought are its own; everything else is a file edit.
        let author = why.author();
        let lock = self.state.extras.list_lock.clone();
        let done = tokio::task::spawn_blocking(move || {
            let _guard = lock.hold();
            for l in lists {
                if let Err(e) = record_file(&history, &l, &author) {
                    tracing::warn!(list = %l.name, "cannot record list history: {e}");
                }
            }
        })
        .await;
        if let Err(e) = done {
            tracing::warn!("list history task failed: {e}");
        }
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Records a change of `source` refused before it reached the loader (a
    /// rule source's candidate files, a failed fetch): the running rules are
    /// untouched, and `GET /api/v1/status` must still say why.
    pub fn record_refusal(&self, source: SourceName, problems: Vec<String>) {
        self.set_status(&source, Some(problems));
    }

    /// Each source's last outcome, by name.
    pub fn status(&self) -> std::collections::BTreeMap<SourceName, SourceStatus> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The newest error of a source that has not succeeded since.
    pub fn last_error(&self) -> Option<SourceError> {
        self.status()
            .into_values()
            .filter_map(|s| s.last_error)
            .max_by_key(|e| e.at)
    }

    fn set_status(&self, source: &str, problems: Option<Vec<String>>) {
        let mut all = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.entry(source.to_string()).or_default();
        match problems {
            None => {
                s.last_ok = Some(Utc::now());
                s.last_error = None;
            }
            Some(problems) => {
                s.last_error = Some(SourceError {
                    at: Utc::now(),
                    problems,
                });
            }
        }
    }

    /// Watches the files the current rules came from, reloading after a
    /// quiet period (`server.reload_debounce`, as installed) following any
    /// change.
    pub fn watch(self: &Arc<Self>) -> notify::Result<tokio::task::JoinHandle<()>> {
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        // The decision log may sit in a watched directory and SQLite writes its
        // db / -wal / -shm / -journal on every commit: drop those events on the
        // notify thread, before they cost a wake-up and a canonicalize here.
        let log_files = self.state.extras.log_path.as_deref().map(log_side_files);
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev
                && !matches!(ev.kind, notify::EventKind::Access(_))
            {
                for p in ev.paths {
                    if log_files.as_ref().is_some_and(|f| is_log_file(f, &p)) {
                        continue;
                    }
                    let _ = tx.send(p);
                }
            }
        })?;
        let me = self.clone();
        let mut watched = me.watch_dirs(&mut watcher, &HashSet::new());
        Ok(tokio::spawn(async move {
            // Recomputed after each reload, not per event: the decision log
            // may live in a watched directory and changes on every call.
            let mut files = me.watched_files();
            while let Some(first) = rx.recv().await {
                if !is_ours(&files, &first) {
                    continue;
                }
                let mut changed = vec![first.clone()];
                let debounce = me.state.snapshot().service.server.reload_debounce;
                // Coalesce the burst an editor makes (write, rename, chmod…):
                // only our own files extend the quiet period, and a burst
                // never delays the reload by more than a second.
                let burst_end = tokio::time::Instant::now() + Duration::from_secs(1);
                let mut quiet_until = tokio::time::Instant::now() + debounce;
                loop {
                    match tokio::time::timeout_at(quiet_until.min(burst_end), rx.recv()).await {
                        Ok(Some(p)) if is_ours(&files, &p) => {
                            quiet_until = tokio::time::Instant::now() + debounce;
                            changed.push(p);
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                // The API (and the rule sources) reload right after writing;
                // the events of that write must not apply it a second time.
                // Judged with the reload lock held: a reload of a big list
                // still running when the quiet period ends (the API's own)
                // has not yet marked the files it read as applied.
                let guard = me.lock.lock().await;
                if changed.iter().all(|p| me.already_applied(p)) {
                    drop(guard);
                    me.skipped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    me.bursts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(file = %first.display(), "file change already applied");
                    continue;
                }
                let _ = me.reload_locked(Trigger::FileChange(first), guard).await;
                me.bursts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                files = me.watched_files();
                watched = me.watch_dirs(&mut watcher, &watched);
            }
        }))
    }

    fn watched_files(&self) -> HashSet<PathBuf> {
        let mut files: HashSet<PathBuf> = self
            .state
            .snapshot()
            .service
            .files
            .iter()
            .map(|p| canonical(p))
            .collect();
        files.insert(canonical(&self.config_path));
        files
    }

    fn watch_dirs(
        &self,
        watcher: &mut notify::RecommendedWatcher,
        already: &HashSet<PathBuf>,
    ) -> HashSet<PathBuf> {
        let dirs: HashSet<PathBuf> = self
            .watched_files()
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        for d in dirs.difference(already) {
            if let Err(e) = watcher.watch(d, RecursiveMode::NonRecursive) {
                tracing::warn!("cannot watch {}: {e}", d.display());
            }
        }
        dirs.union(already).cloned().collect()
    }
}

/// A list file's content as a reload read it.
struct FileList {
    name: String,
    path: PathBuf,
    format: Format,
    rows: Vec<RuleRow>,
}

fn file_lists(cfg: config::LoadedConfig) -> Vec<FileList> {
    cfg.lists
        .into_iter()
        .map(|l| FileList {
            name: l.name,
            path: l.path,
            format: l.format,
            rows: l.rows.into_iter().map(|(_, r)| r).collect(),
        })
        .collect()
}

/// Records a list whose content is not its latest version. The store may
/// have written it since the reload read it, so the file is read again
/// (under the store's lock) and that content is what gets recorded.
fn record_file(history: &ListVersions, l: &FileList, author: &str) -> Result<(), String> {
    if store::is_latest(history, &l.name, &l.rows).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let display = l.path.display().to_string();
    let bytes =
        config::load::read_bounded(&l.path, 1 << 30, &display).map_err(|p| p.to_string())?;
    let parsed = read_rows(&bytes, l.format, &display);
    if let Some(e) = parsed.errors.first() {
        return Err(format!("changed again while recording: {e}"));
    }
    let rows: Vec<RuleRow> = parsed.rows.into_iter().map(|(_, r)| r).collect();
    store::record_if_changed(history, &l.name, &rows, author).map_err(|e| e.to_string())?;
    Ok(())
}

fn canonical(p: &Path) -> PathBuf {
    // The file may be mid-rename; fall back to its canonical directory.
    std::fs::canonicalize(p).unwrap_or_else(|_| match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) => std::fs::canonicalize(d)
            .map(|d| d.join(n))
            .unwrap_or_else(|_| p.to_path_buf()),
        _ => p.to_path_buf(),
    })
}

/// The decision log's directory (canonical) and the names SQLite writes there.
fn log_side_files(log: &Path) -> (PathBuf, Vec<std::ffi::OsString>) {
    let dir = canonical(log)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let name = log.file_name().unwrap_or_default().to_os_string();
    let names = ["", "-wal", "-shm", "-journal"]
        .iter()
        .map(|suffix| {
            let mut n = name.clone();
            n.push(suffix);
            n
        })
        .collect();
    (dir, names)
}

/// Whether `changed` is the decision log or one of its SQLite side files.
fn is_log_file((dir, names): &(PathBuf, Vec<std::ffi::OsString>), changed: &Path) -> bool {
    changed
        .file_name()
        .is_some_and(|n| names.iter().any(|m| m == n))
        && changed
            .parent()
            .is_some_and(|d| d == dir || canonical(d) == *dir)
}

fn is_ours(files: &HashSet<PathBuf>, changed: &Path) -> bool {
    files.contains(&canonical(changed))
        || files.contains(changed)
        // An editor's temp file renamed over ours reports the directory entry.
        || changed.file_name().is_some_and(|n| files.iter().any(|f| f.file_name() == Some(n)))
}

#[cfg(test)]
mod log_file_tests;
