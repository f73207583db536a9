//! Caller reputation and CNAM lookups (issue 25), never late: a call waits
//! at most `reputation.budget` (and never past its `decide_timeout`) for
//! an answer; the cache answers first (stale-while-revalidate, prefetch of
//! frequent callers), providers are asked in order, each behind a circuit
//! breaker and a concurrency limit, and a late answer keeps coming in the
//! background and fills the cache for the next call. The answers are kept
//! in the log's SQLite file (`store::reputation_cache`) across restarts.
//!
//! - `provider.rs`: HTTP JSON and CSV file providers;
//! - `cache.rs`: the bounded in-memory cache;
//! - `breaker.rs`: the circuit breaker.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntGauge};

use crate::config::types::ReputationConfig;
use crate::metrics::Metrics;
use crate::policy::reputation::RepAnswer;
use crate::store::reputation_cache::{CacheRow, ReputationCache};

mod breaker;
mod cache;
mod provider;

use breaker::Breaker;
use cache::{Cache, Entry};
use provider::Source;

/// How a call's lookup went, as the log and the tester say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A provider answered within the budget.
    Live,
    /// From the cache (`stale`: past its TTL, being refreshed).
    Cached { age_ms: u64, stale: bool },
    /// No answer within the budget: decided without it.
    Late,
    /// No provider had an answer (unknown number, breaker open, busy).
    None,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Live => "live",
            How::Cached { .. } => "cached",
            How::Late => "late",
            How::None => "none",
        }
    }
}

/// A call's lookup.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub answer: Option<Arc<RepAnswer>>,
    pub how: How,
    /// The provider that answered.
    pub provider: Option<Arc<str>>,
    /// How long the call waited.
    pub took: Duration,
}

impl Lookup {
    /// `reputation: live 92 "SPAM LIKELY" fraud (numrep, 1ms)`,
    /// `reputation: cached … (numrep, 3s old)`, `reputation: late`.
    pub fn note(&self) -> String {
        let mut s = format!("reputation: {}", self.how.as_str());
        if let Some(a) = &self.answer {
            if let Some(score) = a.score {
                s.push_str(&format!(" {score}"));
            }
            if let Some(n) = &a.name {
                s.push_str(&format!(" {n:?}"));
            }
            if let Some(c) = &a.category {
                s.push_str(&format!(" {c}"));
            }
        }
        let provider = self.provider.as_deref().unwrap_or("");
        match self.how {
            How::Cached { age_ms, stale } => s.push_str(&format!(
                " ({provider}, {} old{})",
                humantime::format_duration(Duration::from_secs(age_ms / 1000)),
                if stale { ", refreshing" } else { "" }
            )),
            How::Live => s.push_str(&format!(" ({provider}, {}ms)", self.took.as_millis())),
            How::Late | How::None => {}
        }
        s
    }
}

/// One provider with its limits and counters.
struct Provider {
    idx: u16,
    name: Arc<str>,
    source: Source,
    timeout: Duration,
    ttl_ms: i64,
    negative_ttl_ms: i64,
    limit: Arc<tokio::sync::Semaphore>,
    breaker: Breaker,
    m: ProviderMetrics,
}

struct ProviderMetrics {
    hit: IntCounter,
    stale: IntCounter,
    live: IntCounter,
    negative: IntCounter,
    late: IntCounter,
    error: IntCounter,
    breaker_open: IntCounter,
    busy: IntCounter,
    breaker_state: IntGauge,
}

impl ProviderMetrics {
    fn new(metrics: &Metrics, name: &str) -> ProviderMetrics {
        let c = |r: &str| {
            metrics
                .reputation_lookups_total
                .with_label_values(&[name, r])
        };
        ProviderMetrics {
            hit: c("hit"),
            stale: c("stale"),
            live: c("live"),
            negative: c("negative"),
            late: c("late"),
            error: c("error"),
            breaker_open: c("breaker_open"),
            busy: c("busy"),
            breaker_state: metrics.reputation_breaker_state.with_label_values(&[name]),
        }
    }
}

/// The lookup service: providers, cache and the cache's store.
pub struct Reputation {
    providers: Vec<Provider>,
    cache: Cache,
    budget: Duration,
    /// Set the looked-up name on the channel.
    pub set_caller_name: bool,
    persist: Option<tokio::sync::mpsc::Sender<CacheRow>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl Reputation {
    /// Builds the providers of `cfg` (`None` when there are none); a
    /// provider that cannot be built (an unset secret, an unreadable file)
    /// is left out with a warning. `log_path`: the SQLite file that keeps
    /// the cache (loaded now, written in the background). The process's TLS
    /// provider must be installed first (`source::install_tls_provider`).
    pub fn start(
        cfg: &ReputationConfig,
        base: &Path,
        log_path: Option<&Path>,
        metrics: &Metrics,
    ) -> Option<Arc<Reputation>> {
        if cfg.providers.is_empty() {
            return None;
        }
        let mut providers = Vec::new();
        for p in &cfg.providers {
            let p = &p.value;
            match Source::build(p, base) {
                Ok(source) => providers.push(Provider {
                    idx: providers.len() as u16,
                    name: p.name.trim().into(),
                    source,
                    timeout: p.timeout,
                    ttl_ms: ms(p.ttl),
                    negative_ttl_ms: ms(p.negative_ttl),
                    limit: Arc::new(tokio::sync::Semaphore::new(p.max_concurrent.max(1))),
                    breaker: Breaker::new(p.breaker_failures, p.breaker_cool_down),
                    m: ProviderMetrics::new(metrics, p.name.trim()),
                }),
                Err(e) => tracing::warn!("reputation provider {} left out: {e}", p.name),
            }
        }
        let cache = Cache::new(cfg.max_entries, ms(cfg.serve_stale), cfg.prefetch_hits);
        let persist = log_path.and_then(|path| {
            match ReputationCache::open(path, now_ms(), ms(cfg.serve_stale)) {
                Ok(store) => {
                    let n = load(&store, &cache, &providers, cfg.max_entries);
                    if n > 0 {
                        tracing::info!("{n} cached reputation answer(s) loaded");
                    }
                    Some(spawn_writer(store))
                }
                Err(e) => {
                    tracing::warn!("reputation cache will not survive a restart: {e}");
                    None
                }
            }
        });
        Some(Arc::new(Reputation {
            providers,
            cache,
            budget: cfg.budget,
            set_caller_name: cfg.set_caller_name,
            persist,
        }))
    }

    /// `reputation.budget`.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Looks `e164` up, waiting at most `budget`.
    pub async fn lookup(self: &Arc<Self>, e164: &str, budget: Duration) -> Lookup {
        let start = Instant::now();
        let now = now_ms();
        let mut late = false;
        let done = |answer: Arc<RepAnswer>, how, p: &Provider| Lookup {
            answer: Some(answer),
            how,
            provider: Some(p.name.clone()),
            took: start.elapsed(),
        };
        for p in &self.providers {
            if let Some(local) = p.source.local(e164) {
                match local {
                    Some(a) => {
                        p.m.live.inc();
                        return done(Arc::new(a), How::Live, p);
                    }
                    None => {
                        p.m.negative.inc();
                        continue;
                    }
                }
            }
            if let Some(got) = self.cache.get(p.idx, e164, now) {
                if got.refresh {
                    self.refresh(p, e164);
                }
                if got.expired {
                    p.m.stale.inc();
                } else {
                    p.m.hit.inc();
                }
                match got.entry.answer {
                    Some(a) => {
                        let how = How::Cached {
                            age_ms: (now - got.entry.fetched_ms).max(0) as u64,
                            stale: got.expired,
                        };
                        return done(a, how, p);
                    }
                    None => continue,
                }
            }
            if late {
                // Out of time: ask in the background for the next call.
                if let Some(job) = self.query(p, e164) {
                    drop(job);
                }
                continue;
            }
            let Some(job) = self.query(p, e164) else {
                continue;
            };
            let left = budget.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, job).await {
                Ok(Ok(Some(a))) => {
                    p.m.live.inc();
                    return done(a, How::Live, p);
                }
                Ok(_) => {}
                Err(_) => {
                    p.m.late.inc();
                    late = true;
                }
            }
        }
        Lookup {
            answer: None,
            how: if late { How::Late } else { How::None },
            provider: None,
            took: start.elapsed(),
        }
    }

    /// Starts a background refresh of a cached entry.
    fn refresh(self: &Arc<Self>, p: &Provider, e164: &str) {
        if self.query(p, e164).is_none() {
            self.cache.done_refreshing(p.idx, e164);
        }
    }

    /// Asks provider `p` in a task of its own (so it finishes and fills the
    /// cache even when the call stopped waiting); `None` when the breaker is
    /// open or every slot is busy: no request is made.
    fn query(
        self: &Arc<Self>,
        p: &Provider,
        e164: &str,
    ) -> Option<tokio::task::JoinHandle<Option<Arc<RepAnswer>>>> {
        let Ok(permit) = p.limit.clone().try_acquire_owned() else {
            p.m.busy.inc();
            return None;
        };
        if !p.breaker.allow(Instant::now()) {
            p.m.breaker_open.inc();
            return None;
        }
        let this = self.clone();
        let idx = p.idx as usize;
        let number = e164.to_string();
        Some(tokio::spawn(async move {
            let _permit = permit;
            let p = &this.providers[idx];
            let res = tokio::time::timeout(p.timeout, p.source.fetch(&number)).await;
            let res = match res {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {:?}", p.timeout)),
            };
            match res {
                Ok(answer) => {
                    p.breaker.success();
                    p.m.breaker_state.set(0);
                    if answer.is_none() {
                        p.m.negative.inc();
                    }
                    let answer = answer.map(Arc::new);
                    this.store(p, &number, answer.clone());
                    answer
                }
                Err(e) => {
                    p.m.error.inc();
                    let now = Instant::now();
                    if p.breaker.failure(now) {
                        tracing::warn!("reputation provider {}: {e}; circuit breaker open", p.name);
                    } else {
                        tracing::debug!("reputation provider {}: {e}", p.name);
                    }
                    p.m.breaker_state.set(p.breaker.state(now).gauge());
                    this.cache.done_refreshing(p.idx, &number);
                    None
                }
            }
        }))
    }

    /// Caches an answer and queues it for the store.
    fn store(&self, p: &Provider, number: &str, answer: Option<Arc<RepAnswer>>) {
        let fetched_ms = now_ms();
        let ttl = if answer.is_some() {
            p.ttl_ms
        } else {
            p.negative_ttl_ms
        };
        let expires_ms = fetched_ms.saturating_add(ttl);
        // In memory first: once the row is stored, the cache has it too.
        self.cache.insert(
            p.idx,
            number,
            Entry {
                answer: answer.clone(),
                fetched_ms,
                expires_ms,
            },
        );
        if let Some(tx) = &self.persist {
            let a = answer.as_deref();
            // Full queue: this answer is cached in memory only.
            let _ = tx.try_send(CacheRow {
                provider: p.name.to_string(),
                number: number.to_string(),
                score: a.and_then(|a| a.score),
                name: a.and_then(|a| a.name.as_deref().map(str::to_string)),
                category: a.and_then(|a| a.category.as_deref().map(str::to_string)),
                fetched_ms,
                expires_ms,
            });
        }
    }
}

/// Fills the cache from the store; returns how many entries were loaded.
fn load(store: &ReputationCache, cache: &Cache, providers: &[Provider], max: usize) -> usize {
    let rows = match store.load(max) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("reputation cache not loaded: {e}");
            return 0;
        }
    };
    let mut n = 0;
    for r in rows.into_iter().rev() {
        let Some(p) = providers.iter().find(|p| *p.name == r.provider) else {
            continue;
        };
        let answer = RepAnswer {
            score: r.score,
            name: r.name.map(Into::into),
            category: r.category.map(Into::into),
        };
        let answer = (!answer.is_empty()).then(|| Arc::new(answer));
        cache.insert(
            p.idx,
            &r.number,
            Entry {
                answer,
                fetched_ms: r.fetched_ms,
                expires_ms: r.expires_ms,
            },
        );
        n += 1;
    }
    n
}

/// The store's writer: a blocking thread that writes what the lookups
/// queue, in batches (the call path only `try_send`s).
fn spawn_writer(store: ReputationCache) -> tokio::sync::mpsc::Sender<CacheRow> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<CacheRow>(4096);
    let spawned = std::thread::Builder::new()
        .name("reputation-cache".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < 512 {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                if let Err(e) = store.upsert(&batch) {
                    tracing::warn!("reputation cache not stored: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("reputation cache will not be stored: {e}");
    }
    tx
}
