//! The lookups' cache: one entry per provider and number, in memory behind
//! one short lock (a hit is a hash lookup and an `Arc` clone), bounded by
//! `max_entries` (the least recently used go first), with answers that
//! expire per provider's TTL and are still served, while refreshed in the
//! background, up to `serve_stale` after (stale-while-revalidate). An entry
//! hit `prefetch_hits` times is refreshed in its last tenth of life.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::policy::reputation::RepAnswer;

/// One cached answer (`answer: None`: the provider did not know the number).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub answer: Option<Arc<RepAnswer>>,
    pub fetched_ms: i64,
    pub expires_ms: i64,
}

struct Slot {
    provider: u16,
    entry: Entry,
    hits: u32,
    used: u64,
    refreshing: bool,
}

/// What [`Cache::get`] found.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub entry: Entry,
    /// Past its TTL (served stale).
    pub expired: bool,
    /// The caller should refresh it in the background (it was marked so no
    /// other call does too; `done_refreshing` clears the mark on failure).
    pub refresh: bool,
}

struct Inner {
    map: HashMap<Box<str>, Vec<Slot>>,
    len: usize,
    tick: u64,
}

pub(crate) struct Cache {
    inner: Mutex<Inner>,
    max: usize,
    serve_stale_ms: i64,
    prefetch_hits: u32,
}

impl Cache {
    pub(crate) fn new(max: usize, serve_stale_ms: i64, prefetch_hits: u32) -> Cache {
        Cache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                len: 0,
                tick: 0,
            }),
            max: max.max(1),
            serve_stale_ms,
            prefetch_hits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len
    }

    /// The entry of `provider` for `number`, if it is fresh or still
    /// servable; one past `serve_stale` is dropped.
    pub(crate) fn get(&self, provider: u16, number: &str, now_ms: i64) -> Option<Got> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.tick += 1;
        let tick = inner.tick;
        let slots = inner.map.get_mut(number)?;
        let i = slots.iter().position(|s| s.provider == provider)?;
        let s = &mut slots[i];
        let e = &s.entry;
        if now_ms >= e.expires_ms.saturating_add(self.serve_stale_ms) {
            slots.swap_remove(i);
            if slots.is_empty() {
                inner.map.remove(number);
            }
            inner.len -= 1;
            return None;
        }
        s.used = tick;
        s.hits = s.hits.saturating_add(1);
        let expired = now_ms >= e.expires_ms;
        let life = (e.expires_ms - e.fetched_ms).max(1);
        let near_end = (e.expires_ms - now_ms).saturating_mul(10) < life;
        let refresh =
            !s.refreshing && (expired || (near_end && s.hits >= self.prefetch_hits.max(1)));
        if refresh {
            s.refreshing = true;
        }
        Some(Got {
            entry: s.entry.clone(),
            expired,
            refresh,
        })
    }

    /// Stores an answer (replacing the provider's entry for the number),
    /// evicting the least recently used sixteenth when full.
    pub(crate) fn insert(&self, provider: u16, number: &str, entry: Entry) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        inner.tick += 1;
        let tick = inner.tick;
        let slots = inner.map.entry(number.into()).or_default();
        match slots.iter_mut().find(|s| s.provider == provider) {
            Some(s) => {
                s.entry = entry;
                s.refreshing = false;
                s.used = tick;
                s.hits = 0;
            }
            None => {
                slots.push(Slot {
                    provider,
                    entry,
                    hits: 0,
                    used: tick,
                    refreshing: false,
                });
                inner.len += 1;
            }
        }
        if inner.len > self.max {
            evict(inner, (self.max / 16).max(1));
        }
    }

    /// Clears the refresh mark after a refresh that brought nothing.
    pub(crate) fn done_refreshing(&self, provider: u16, number: &str) {
        if let Some(s) = self
            .lock()
            .map
            .get_mut(number)
            .and_then(|v| v.iter_mut().find(|s| s.provider == provider))
        {
            s.refreshing = false;
        }
    }
}

/// Drops the `n` least recently used entries (a rare O(len) pass).
fn evict(inner: &mut Inner, n: usize) {
    let mut used: Vec<u64> = inner
        .map
        .values()
        .flat_map(|v| v.iter().map(|s| s.used))
        .collect();
    let n = n.min(used.len());
    if n == 0 {
        return;
    }
    let (_, cut, _) = used.select_nth_unstable(n - 1);
    let cut = *cut;
    let mut removed = 0;
    inner.map.retain(|_, slots| {
        slots.retain(|s| {
            let drop = s.used <= cut && removed < n;
            if drop {
                removed += 1;
            }
            !drop
        });
        !slots.is_empty()
    });
    inner.len -= removed;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(score: u8, fetched_ms: i64, expires_ms: i64) -> Entry {
        Entry {
            answer: Some(Arc::new(RepAnswer {
                score: Some(score),
                ..Default::default()
            })),
            fetched_ms,
            expires_ms,
        }
    }

    #[test]
    fn fresh_stale_and_dropped() {
        let c = Cache::new(10, 1_000, 3);
        c.insert(0, "+1", entry(90, 0, 100));
        let g = c.get(0, "+1", 50).unwrap();
        assert!(!g.expired && !g.refresh);
        assert!(c.get(1, "+1", 50).is_none(), "per provider");
        let g = c.get(0, "+1", 200).unwrap();
        assert!(g.expired && g.refresh, "stale: served and refreshed");
        assert!(!c.get(0, "+1", 200).unwrap().refresh, "refreshed once");
        c.done_refreshing(0, "+1");
        assert!(c.get(0, "+1", 300).unwrap().refresh);
        assert!(c.get(0, "+1", 1_100).is_none(), "past serve_stale");
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn frequent_callers_are_prefetched() {
        let c = Cache::new(10, 0, 3);
        c.insert(0, "+1", entry(90, 0, 1_000));
        for _ in 0..3 {
            assert!(!c.get(0, "+1", 500).unwrap().refresh);
        }
        // Hit three times and in its last tenth of life.
        assert!(c.get(0, "+1", 950).unwrap().refresh);
    }

    #[test]
    fn bounded_least_recently_used_go_first() {
        let c = Cache::new(16, 0, 3);
        for i in 0..16 {
            c.insert(0, &format!("+{i}"), entry(1, 0, 1_000));
        }
        c.get(0, "+0", 1).unwrap();
        c.insert(0, "+new", entry(1, 0, 1_000));
        assert_eq!(c.len(), 16);
        assert!(c.get(0, "+0", 1).is_some(), "recently used stays");
        assert!(c.get(0, "+1", 1).is_none(), "least recently used went");
        assert!(c.get(0, "+new", 1).is_some());
    }
}
