//! The fleet's side of the service (`log.postgres`): opening the store of
//! record at start (the cached lists when it cannot be reached), and one task
//! that keeps this instance's rules and velocity blocks in step with it —
//! on each notification of the dedicated `LISTEN` connection, and every
//! [`POLL`] as the safety net (a notification lost while that connection was
//! down). A change this instance wrote is applied once, by the write itself:
//! its own notification finds the mirror already at that version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::LoadedConfig;
use crate::list_edit::fleet::{Fleet, cache_dir};
use crate::reload::{Reloader, Trigger};
use crate::store::PgStore;
use crate::store::pg_lists::{Event, listen};
use crate::velocity::{Tracker, VelocityStore};

/// The periodic version check.
pub const POLL: Duration = Duration::from_secs(2);

/// Blocks made here this recently survive a reconciliation (their write to
/// the store may still be on its way).
const BLOCK_GRACE_SECS: i64 = 30;

/// The fleet's store for `cfg`, with its mirror filled: from the store, or
/// from the cache of an earlier run when it cannot be reached. Blocking.
/// `None` without `log.postgres` (or with one that does not parse: the
/// decision log reports that).
pub fn open(cfg: &LoadedConfig) -> Option<Arc<Fleet>> {
    let target = cfg.raw.log.postgres_target()?.ok()?;
    let log_path = cfg.resolve(&cfg.raw.log.path);
    let f = Fleet::new(Arc::new(PgStore::new(target)), Some(cache_dir(&log_path)));
    let cached = f.load_cache();
    match f.observe(f.pull()) {
        Ok(_) => tracing::info!(
            server = %f.store.shown(),
            rules_version = f.version(),
            "lists: store of record is PostgreSQL"
        ),
        Err(e) => tracing::warn!(
            "lists: {e}; screening with the cached lists (rules version {cached}) until it answers"
        ),
    }
    Some(Arc::new(f))
}

/// The velocity blocks in the store of record, loaded into `tracker`.
pub async fn attach_blocks(f: &Arc<Fleet>, tracker: &Arc<Tracker>) -> Result<usize, String> {
    let (store, tracker) = (f.store.clone(), tracker.clone());
    tokio::task::spawn_blocking(move || {
        tracker.attach(VelocityStore::postgres(store), chrono::Utc::now())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()))
}

/// Starts the listener thread and the task that applies what it hears.
pub fn spawn(
    f: Arc<Fleet>,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let quit = Arc::new(AtomicBool::new(false));
    let listening = listen(&f.store, quit.clone(), move |e| {
        let _ = tx.send(e);
    });
    if let Err(e) = listening {
        tracing::warn!("lists: cannot start the store listener ({e}); checking every {POLL:?}");
    }
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                e = rx.recv(), if open => match e {
                    Some(e) => on_event(&f, &reloader, e).await,
                    None => open = false,
                },
                _ = tick.tick() => {
                    pull_and_apply(&f, &reloader).await;
                    blocks(&f, &reloader, false).await;
                }
            }
            reloader.state().publish_store_gauges();
        }
        quit.store(true, Ordering::Relaxed);
    });
    vec![task]
}

async fn on_event(f: &Arc<Fleet>, reloader: &Arc<Reloader>, e: Event) {
    match e {
        Event::Connected => {
            f.set_up(true, None);
            pull_and_apply(f, reloader).await;
            blocks(f, reloader, true).await;
        }
        Event::Lost(why) => {
            tracing::warn!("lists: store listener: {why}; reconnecting");
            f.set_up(false, Some(why));
        }
        Event::Lists(note) => {
            // Our own change (applied when written) or one pulled already.
            if note.rules_version > f.version() {
                pull_and_apply(f, reloader).await;
            }
            f.notified(note.rules_version);
        }
        Event::Block(note) if note.instance == f.store.instance() => {}
        Event::Block(note) if note.op == "lift" => {
            reloader.state().extras.velocity.forget(&note.key);
        }
        Event::Block(_) => blocks(f, reloader, false).await,
    }
}

/// Pulls the store's changes (under the service's list lock, so a write of
/// this instance is never half-seen) and reloads when any list changed.
async fn pull_and_apply(f: &Arc<Fleet>, reloader: &Arc<Reloader>) {
    let (fl, lock) = (f.clone(), reloader.state().extras.list_lock.clone());
    let pulled = tokio::task::spawn_blocking(move || {
        let _guard = lock.hold();
        fl.observe(fl.pull())
    })
    .await;
    match pulled {
        Ok(Ok(lists)) if !lists.is_empty() => {
            let _ = reloader.reload(Trigger::Store { lists }).await;
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!("lists: {e}"),
        Err(e) => tracing::warn!("lists: pull task failed: {e}"),
    }
}

/// Takes the fleet's velocity blocks in: every one in force (`reconcile`
/// also drops the ones lifted while notifications could be missed).
async fn blocks(f: &Arc<Fleet>, reloader: &Arc<Reloader>, reconcile: bool) {
    let store = f.store.clone();
    let now = chrono::Utc::now();
    let active = tokio::task::spawn_blocking(move || store.active_blocks(now)).await;
    let Ok(Ok(rows)) = active else { return };
    let stored: Vec<_> = rows.into_iter().map(crate::velocity::from_row).collect();
    let tracker = &reloader.state().extras.velocity;
    if reconcile {
        tracker.reconcile(stored, now, chrono::Duration::seconds(BLOCK_GRACE_SECS));
    } else {
        tracker.take_in(stored);
    }
}
