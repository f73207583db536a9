//! Hot reload: parse and validate everything off the call path, then swap the
//! whole rule set in at once. A failed reload changes nothing and says why.
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
use crate::policy::RuleSet;
use crate::state::State;

/// Serialises reloads: two triggers at once must not race to install.
pub struct Reloader {
    pub config_path: PathBuf,
    state: Arc<State>,
    lock: Mutex<()>,
}

impl Reloader {
    pub fn new(config_path: PathBuf, state: Arc<State>) -> Arc<Reloader> {
        Arc::new(Reloader {
            config_path,
            state,
            lock: Mutex::new(()),
        })
    }

    /// Loads, validates and installs; returns the new version or every problem.
    pub async fn reload(&self, why: &str) -> Result<u64, Problems> {
        let _guard = self.lock.lock().await;
        let path = self.config_path.clone();
        let built = tokio::task::spawn_blocking(move || {
            let cfg = config::load(&path)?;
            RuleSet::compile(&cfg)
        })
        .await
        .unwrap_or_else(|e| {
            Err(config::Problem::new("reload", 0, 0, format!("reload task failed: {e}")).into())
        });
        let metrics = &self.state.metrics;
        match built {
            Ok(rules) => {
                let version = self.state.install(rules, None);
                metrics
                    .config_reloads_total
                    .with_label_values(&["success"])
                    .inc();
                tracing::info!(version, trigger = why, "rules reloaded");
                Ok(version)
            }
            Err(problems) => {
                metrics
                    .config_reloads_total
                    .with_label_values(&["failure"])
                    .inc();
                for p in &problems.0 {
                    tracing::error!(trigger = why, "reload refused, previous rules stay: {p}");
                }
                if let Ok(mut e) = self.state.last_error.lock() {
                    *e = Some((
                        Utc::now(),
                        problems.0.iter().map(ToString::to_string).collect(),
                    ));
                }
                Err(problems)
            }
        }
    }

    /// The shared state, so a rule source can label the rules it is about
    /// to install (`State::source_label`).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Records a change refused before it reached the loader (a rule
    /// source's candidate files, a failed fetch): the running rules are
    /// untouched, and `GET /api/v1/status` must still say why.
    pub fn record_refusal(&self, problems: Vec<String>) {
        if let Ok(mut e) = self.state.last_error.lock() {
            *e = Some((Utc::now(), problems));
        }
    }

    /// Watches the files the current rules came from, reloading after a
    /// quiet `debounce` period following any change.
    pub fn watch(
        self: &Arc<Self>,
        debounce: Duration,
    ) -> notify::Result<tokio::task::JoinHandle<()>> {
        let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if let Ok(ev) = ev
                && !matches!(ev.kind, notify::EventKind::Access(_))
            {
                for p in ev.paths {
                    let _ = tx.send(p);
                }
            }
        })?;
        let me = self.clone();
        let mut watched = me.watch_dirs(&mut watcher, &HashSet::new());
        Ok(tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut files = me.watched_files();
                if !is_ours(&files, &first) {
                    continue;
                }
                // Coalesce the burst an editor makes (write, rename, chmod…).
                loop {
                    match tokio::time::timeout(debounce, rx.recv()).await {
                        Ok(Some(_)) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                let _ = me
                    .reload(&format!("file change: {}", first.display()))
                    .await;
                files = me.watched_files();
                let _ = files;
                watched = me.watch_dirs(&mut watcher, &watched);
            }
        }))
    }

    fn watched_files(&self) -> HashSet<PathBuf> {
        let mut files: HashSet<PathBuf> = self
            .state
            .snapshot()
            .rules
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

fn canonical(p: &Path) -> PathBuf {
    // The file may be mid-rename; fall back to its canonical directory.
    std::fs::canonicalize(p).unwrap_or_else(|_| match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) => std::fs::canonicalize(d)
            .map(|d| d.join(n))
            .unwrap_or_else(|_| p.to_path_buf()),
        _ => p.to_path_buf(),
    })
}

fn is_ours(files: &HashSet<PathBuf>, changed: &Path) -> bool {
    files.contains(&canonical(changed))
        || files.contains(changed)
        // An editor's temp file renamed over ours reports the directory entry.
        || changed.file_name().is_some_and(|n| files.iter().any(|f| f.file_name() == Some(n)))
}
