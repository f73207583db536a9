//! Velocity counters and temporary blocks: the state the velocity rules of
//! `policy::velocity` need, kept outside the pure policy core.
//!
//! Counters live in memory, bounded: at most `velocity_limits.max_tracked`
//! keys. When a new key would pass that, keys whose window has passed are
//! dropped first, then the least recently seen ones (an eighth of the table
//! at a time, so eviction is rare and its cost spread). A restart forgets the
//! counters (a burst in progress starts counting again) but not the blocks:
//! temporary blocks are written to the embedded SQLite store (the decision
//! log's file, table `velocity_blocks`) and read back at start; each expires
//! by itself at its `until`.
//!
//! A fleet counts together in Redis (`velocity_limits.redis`, see
//! [`shared`]): each call is then counted there too, bounded by
//! `velocity_limits.redis_timeout`, and the in-memory counters are the
//! fallback while Redis is slow or down.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, TimeZone, Utc};

mod apply;
mod shared;
mod store;
pub(crate) use crate::policy::velocity::Key;
pub(crate) use apply::{apply, learn};
pub(crate) use shared::{CountMetrics, RedisMetrics, Shared};
pub(crate) use store::{VelocityStore, from_row, read_blocks};

/// A temporary block one velocity rule put on one key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Block {
    /// The key's stored text ([`Key`]'s `Display`: `trunk|rule|subject`),
    /// also the admin API's name for the block.
    pub key: String,
    pub trunk: String,
    pub rule: String,
    /// The caller, `+1555` range or `*` (the whole trunk) that is blocked.
    pub subject: String,
    pub created: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

struct Counter {
    times: VecDeque<i64>,
    last: i64,
    per: i64,
}

struct Inner {
    counters: HashMap<Key, Counter>,
    blocks: HashMap<Key, Block>,
    capacity: usize,
}

/// The counters and blocks of the running service.
pub struct Tracker {
    inner: Mutex<Inner>,
    store: Mutex<Option<Arc<VelocityStore>>>,
    /// The fleet's counters in Redis, when `velocity_limits.redis` is set.
    shared: OnceLock<Arc<Shared>>,
    metrics: OnceLock<CountMetrics>,
}

/// One call's budget for Redis: every count of the call together gets
/// `velocity_limits.redis_timeout`, from its first count on.
#[derive(Debug, Default)]
pub struct Budget(Option<tokio::time::Instant>);

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new(100_000)
    }
}

impl Tracker {
    pub fn new(capacity: usize) -> Tracker {
        Tracker {
            inner: Mutex::new(Inner {
                counters: HashMap::new(),
                blocks: HashMap::new(),
                capacity: capacity.max(1),
            }),
            store: Mutex::new(None),
            shared: OnceLock::new(),
            metrics: OnceLock::new(),
        }
    }

    /// Counts in Redis from now on (`velocity_limits.redis`), with the
    /// in-memory counters as the fallback. Set once, at start.
    pub fn attach_shared(&self, shared: Arc<Shared>) {
        let _ = self.shared.set(shared);
    }

    /// The Redis counters, when the service shares them.
    pub fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.get()
    }

    /// Where `callguard_velocity_counts_total{backend}` goes. Set once, at start.
    pub fn attach_metrics(&self, metrics: CountMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// `"redis"` while calls are counted in Redis, else `"local"`.
    pub fn counters(&self) -> &'static str {
        match self.shared.get() {
            Some(s) if s.connected() => "redis",
            _ => "local",
        }
    }

    /// Counts one call on `key` as [`Tracker::count`] does, and in Redis too
    /// when the fleet shares its counters and Redis answers within the
    /// call's `budget`: then the larger of the two counts is returned (the
    /// fleet's, unless Redis lost its counters, e.g. by a restart, and this
    /// instance alone has seen more). Otherwise the in-memory count is.
    pub async fn count_call(
        &self,
        key: &Key,
        now_ms: i64,
        per_ms: i64,
        max: u32,
        budget: &mut Budget,
    ) -> u32 {
        let local = self.count(key, now_ms, per_ms, max);
        if let Some(shared) = self.shared.get() {
            let deadline = *budget
                .0
                .get_or_insert_with(|| tokio::time::Instant::now() + shared.timeout());
            if let Some(n) = shared.count(&key.to_string(), per_ms, max, deadline).await {
                if let Some(m) = self.metrics.get() {
                    m.redis.inc();
                }
                return n.max(local);
            }
        }
        if let Some(m) = self.metrics.get() {
            m.local.inc();
        }
        local
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A reload's `velocity_limits.max_tracked`. A smaller bound applies at
    /// once: the table is cut down to it (expired keys first, then the least
    /// recently seen), not left over it until new callers push keys out.
    pub(crate) fn set_capacity(&self, capacity: usize, now_ms: i64) {
        let mut inner = self.lock();
        inner.capacity = capacity.max(1);
        evict(&mut inner, now_ms, Room::WithinBound);
    }

    /// Lifts the block on `key` before it expires (an operator's decision:
    /// a legitimate caller caught by a burst) and forgets its counter, so the
    /// caller's next call is counted afresh instead of blocked again at once.
    /// The stored row goes too, so a restart does not bring it back.
    pub fn lift(&self, key: &str) -> Result<Option<Block>, String> {
        let Some(key) = Key::parse(key) else {
            return Ok(None);
        };
        let lifted = {
            let mut inner = self.lock();
            inner.counters.remove(&key);
            let lifted = inner.blocks.remove(&key);
            // A learned block's failures are counted per challenge action
            // (`learn-fails|action|caller`): forgotten too, or the caller's
            // next failure would put the block back at once.
            if let (Some(_), Key::LearnedBlock(caller)) = (&lifted, &key) {
                inner
                    .counters
                    .retain(|k, _| !matches!(k, Key::LearnFails { caller: c, .. } if c == caller));
            }
            lifted
        };
        if lifted.is_some() {
            let store = self.store.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(store) = store {
                store.delete(&key.to_string()).map_err(|e| e.to_string())?;
            }
        }
        Ok(lifted)
    }

    /// Opens the store beside the decision log and loads the blocks still
    /// in force, so a restart keeps them.
    pub(crate) fn attach_store(&self, path: &Path, now: DateTime<Utc>) -> Result<usize, String> {
        let store = VelocityStore::open(path).map_err(|e| e.to_string())?;
        self.attach(store, now)
    }

    /// The block in force on `key` at `now`; an expired one is forgotten.
    pub(crate) fn active_block(&self, key: &Key, now: DateTime<Utc>) -> Option<Block> {
        let mut inner = self.lock();
        match inner.blocks.get(key) {
            Some(b) if b.until > now => Some(b.clone()),
            Some(_) => {
                inner.blocks.remove(key);
                None
            }
            None => None,
        }
    }

    /// Counts one call on `key` and returns the calls in its window.
    pub fn count(&self, key: &Key, now_ms: i64, per_ms: i64, max: u32) -> u32 {
        let mut inner = self.lock();
        if !inner.counters.contains_key(key) && inner.counters.len() >= inner.capacity {
            evict(&mut inner, now_ms, Room::ForOneMore);
        }
        let c = inner.counters.entry(key.clone()).or_insert(Counter {
            times: VecDeque::new(),
            last: now_ms,
            per: per_ms,
        });
        c.last = now_ms;
        c.per = per_ms;
        crate::policy::velocity::count(&mut c.times, now_ms, per_ms, max)
    }

    /// Keys counted now (for tests and the status page).
    pub fn tracked(&self) -> usize {
        self.lock().counters.len()
    }

    /// The bound on [`Tracker::tracked`] in force (`velocity_limits.max_tracked`).
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Puts a block in force and writes it to the store (off the call path).
    /// `block.key` is `key`'s text (what is stored and listed).
    pub(crate) fn add_block(&self, key: Key, block: Block) {
        debug_assert_eq!(block.key, key.to_string());
        self.lock().blocks.insert(key, block.clone());
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(store) = store {
            let write = move || {
                if let Err(e) = store.insert(&block) {
                    tracing::warn!("velocity block not persisted: {e}");
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn_blocking(write);
                }
                Err(_) => write(),
            }
        }
    }

    /// Every block in force at `now`, newest first.
    pub fn blocks(&self, now: DateTime<Utc>) -> Vec<Block> {
        let mut inner = self.lock();
        inner.blocks.retain(|_, b| b.until > now);
        let mut v: Vec<Block> = inner.blocks.values().cloned().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.key.cmp(&b.key)));
        v
    }
}

/// How much [`evict`] frees.
#[derive(Clone, Copy)]
enum Room {
    /// Room for one new key, dropping an eighth of the table at a time so
    /// eviction is rare on the call path.
    ForOneMore,
    /// Down to the bound exactly (a reload lowered it).
    WithinBound,
}

/// Expired counters go first, then the least recently seen.
fn evict(inner: &mut Inner, now_ms: i64, room: Room) {
    inner.counters.retain(|_, c| c.last > now_ms - c.per);
    let limit = match room {
        Room::ForOneMore => inner.capacity - 1,
        Room::WithinBound => inner.capacity,
    };
    if inner.counters.len() <= limit {
        return;
    }
    let mut lasts: Vec<i64> = inner.counters.values().map(|c| c.last).collect();
    let over = lasts.len() - limit;
    let cut = match room {
        Room::ForOneMore => (lasts.len() / 8).max(over),
        Room::WithinBound => over,
    };
    let (_, nth, _) = lasts.select_nth_unstable(cut - 1);
    let threshold = *nth;
    let mut dropped = 0;
    inner.counters.retain(|_, c| {
        if dropped < cut && c.last <= threshold {
            dropped += 1;
            false
        } else {
            true
        }
    });
}

/// Milliseconds since the epoch, the counters' clock.
pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A time from the store's seconds.
pub(crate) fn from_secs(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule's counter key for `subject` (on trunk `t`, rule `r`).
    fn k(subject: &str) -> Key {
        Key::Rule {
            trunk: Some("t".into()),
            rule: "r".into(),
            subject: subject.into(),
        }
    }

    #[test]
    fn bounded_counters_evict_expired_then_oldest() {
        let t = Tracker::new(4);
        for (i, s) in ["a", "b", "c", "d"].iter().enumerate() {
            t.count(&k(s), i as i64 * 1000, 60_000, 5);
        }
        assert_eq!(t.tracked(), 4);
        // Full: the least recently seen ("a") makes room.
        t.count(&k("e"), 5_000, 60_000, 5);
        assert_eq!(t.tracked(), 4);
        assert_eq!(t.count(&k("a"), 6_000, 60_000, 5), 1, "a was forgotten");
        // Much later every window has passed: all expired go at once.
        t.count(&k("z"), 1_000_000, 60_000, 5);
        assert_eq!(t.tracked(), 1);
    }

    #[test]
    fn a_smaller_bound_on_reload_applies_at_once() {
        let t = Tracker::new(100);
        for i in 0..50 {
            t.count(&k(&format!("k{i}")), i * 1000, 600_000, 5);
        }
        assert_eq!(t.tracked(), 50);
        t.set_capacity(10, 50_000);
        assert_eq!(t.tracked(), 10);
        // The most recently seen stay: k49 still has its call counted.
        assert_eq!(t.count(&k("k49"), 51_000, 600_000, 5), 2);
        assert_eq!(t.count(&k("k0"), 51_000, 600_000, 5), 1, "k0 was dropped");
        // A larger bound changes nothing already counted.
        t.set_capacity(1000, 52_000);
        assert_eq!(t.tracked(), 10);
    }

    #[test]
    fn a_lifted_block_and_its_counter_are_gone() {
        let t = Tracker::new(10);
        let now = Utc::now();
        let text = "support|burst|+15550001111";
        let key = &Key::parse(text).unwrap();
        for i in 0..3 {
            t.count(key, millis(now) + i, 60_000, 2);
        }
        t.add_block(
            key.clone(),
            Block {
                key: text.into(),
                trunk: "support".into(),
                rule: "burst".into(),
                subject: "+15550001111".into(),
                created: now,
                until: now + chrono::TimeDelta::hours(1),
            },
        );
        assert_eq!(t.lift(text).unwrap().map(|b| b.rule), Some("burst".into()));
        assert!(t.active_block(key, now).is_none());
        assert_eq!(
            t.count(key, millis(now) + 10, 60_000, 2),
            1,
            "counted afresh"
        );
        assert_eq!(t.lift(text).unwrap(), None, "nothing left to lift");
    }

    #[test]
    fn blocks_expire_by_themselves() {
        let t = Tracker::new(10);
        let now = Utc::now();
        let key = Key::parse("support|burst|*").unwrap();
        t.add_block(
            key.clone(),
            Block {
                key: "support|burst|*".into(),
                trunk: "support".into(),
                rule: "burst".into(),
                subject: "*".into(),
                created: now,
                until: now + chrono::TimeDelta::seconds(60),
            },
        );
        assert!(t.active_block(&key, now).is_some());
        assert_eq!(t.blocks(now).len(), 1);
        let later = now + chrono::TimeDelta::seconds(61);
        assert!(t.active_block(&key, later).is_none());
        assert!(t.blocks(later).is_empty());
    }
}
