//! Counting together: a fleet's velocity counters in Redis
//! (`velocity_limits.redis`), behind a circuit.
//!
//! A call asks Redis only while the circuit is closed, within
//! `velocity_limits.redis_timeout` for all its counts together. A timeout or
//! an error opens the circuit: that call and the next ones are counted in
//! memory (the [`super::Tracker`]'s counters, which count every call anyway)
//! without waiting on Redis at all, so a slow or down Redis costs calls
//! nothing. A background task reconnects and pings; when Redis answers, the
//! circuit closes and counting is shared again. While closed, the same task
//! pings every second, so a Redis that went away is seen without a call.
//! The state shows in `/api/v1/status` (`velocity.counters`,
//! `velocity.redis`) and in `callguard_velocity_redis_up`,
//! `callguard_velocity_redis_errors_total` and
//! `callguard_velocity_counts_total{backend}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{IntCounter, IntGauge};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::store::{RedisCounts, RedisTarget};

/// While connected: a ping this often, so a Redis gone away is noticed
/// between calls too.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Reconnecting: the first retry after this, doubling up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The handles counting reports to (resolved once, when the service starts).
#[derive(Clone)]
pub struct CountMetrics {
    /// `callguard_velocity_counts_total{backend="redis"}`.
    pub redis: IntCounter,
    /// `callguard_velocity_counts_total{backend="local"}`.
    pub local: IntCounter,
}

/// The handles of the Redis connection's own metrics.
#[derive(Clone)]
pub struct RedisMetrics {
    /// `callguard_velocity_redis_up{redis}`: 1 while counting is shared.
    pub up: IntGauge,
    /// `callguard_velocity_redis_errors_total`.
    pub errors: IntCounter,
}

/// The last thing that went wrong with Redis.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RedisError {
    pub at: DateTime<Utc>,
    pub error: String,
}

/// The shared counters' state for `/api/v1/status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RedisStatus {
    /// `host:port/db` (never the password).
    pub server: String,
    /// The circuit is closed: calls are counted in Redis.
    pub connected: bool,
    pub timeout_ms: u64,
    /// Failed Redis operations since start (calls, pings, connections).
    pub errors: u64,
    pub last_error: Option<RedisError>,
}

/// The shared counters: the connection (`None`: the circuit is open) and
/// the task keeping it.
pub struct Shared {
    target: RedisTarget,
    timeout: Duration,
    /// The connection calls use, with its generation (so a late failure of
    /// a connection already replaced does not open the circuit again).
    conn: Mutex<Option<(u64, RedisCounts)>>,
    generation: AtomicU64,
    last_error: Mutex<Option<RedisError>>,
    errors: AtomicU64,
    /// Wakes the keeper when a call opened the circuit.
    wake: Notify,
    /// Unique in the fleet: members of the windows are `instance:sequence`.
    instance: String,
    seq: AtomicU64,
    metrics: RedisMetrics,
}

impl Shared {
    /// Starts the keeper (on the current tokio runtime), which connects in
    /// the background: until Redis first answers, calls are counted in
    /// memory.
    pub fn start(target: RedisTarget, timeout: Duration, metrics: RedisMetrics) -> Arc<Shared> {
        metrics.up.set(0);
        let shared = Arc::new(Shared {
            target,
            timeout,
            conn: Mutex::new(None),
            generation: AtomicU64::new(0),
            last_error: Mutex::new(None),
            errors: AtomicU64::new(0),
            wake: Notify::new(),
            instance: crate::random::uuid_v4().replace('-', ""),
            seq: AtomicU64::new(0),
            metrics,
        });
        tokio::spawn(keeper(Arc::downgrade(&shared)));
        shared
    }

    /// The bound on one call's Redis round trips together.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Counts one call on `key` in Redis before `deadline`; `None` when the
    /// circuit is open, or this count failed (which opens it).
    pub(super) async fn count(
        &self,
        key: &str,
        per_ms: i64,
        max: u32,
        deadline: Instant,
    ) -> Option<u32> {
        let (generation, conn) = lock(&self.conn).clone()?;
        let member = format!(
            "{}:{}",
            self.instance,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let why =
            match tokio::time::timeout_at(deadline, conn.count(key, per_ms, max, &member)).await {
                Ok(Ok(n)) => return Some(n),
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {:?}", self.timeout),
            };
        self.open(Some(generation), why);
        None
    }

    /// A failure: counted, remembered, and (for the connection in use, or
    /// `None`: whatever is in use) the circuit opens until the keeper has a
    /// connection that answers.
    fn open(&self, generation: Option<u64>, why: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.metrics.errors.inc();
        let was_up = {
            let mut conn = lock(&self.conn);
            match (&*conn, generation) {
                (Some((g, _)), Some(failed)) if *g != failed => false,
                (Some(_), _) => {
                    *conn = None;
                    true
                }
                (None, _) => false,
            }
        };
        if was_up {
            self.metrics.up.set(0);
            tracing::warn!(
                "velocity counters: Redis {} failed ({why}); counting in memory on this instance until it answers again",
                self.target.shown()
            );
            self.wake.notify_one();
        }
        *lock(&self.last_error) = Some(RedisError {
            at: Utc::now(),
            error: why,
        });
    }

    /// A connection that answered: calls count in Redis again.
    fn close(&self, conn: RedisCounts) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *lock(&self.conn) = Some((generation, conn));
        self.metrics.up.set(1);
        tracing::info!("velocity counters: shared in Redis {}", self.target.shown());
    }

    /// Calls are counted in Redis now.
    pub fn connected(&self) -> bool {
        lock(&self.conn).is_some()
    }

    pub fn status(&self) -> RedisStatus {
        RedisStatus {
            server: self.target.shown().to_string(),
            connected: self.connected(),
            timeout_ms: self.timeout.as_millis() as u64,
            errors: self.errors.load(Ordering::Relaxed),
            last_error: lock(&self.last_error).clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps the connection: reconnects (with a growing pause) while the
/// circuit is open, pings while it is closed. Ends with the service (when
/// the last handle on [`Shared`] is gone).
async fn keeper(weak: Weak<Shared>) {
    let mut retry = RETRY_MIN;
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let current = lock(&shared.conn).clone();
        match current {
            Some((generation, conn)) => {
                let pinged =
                    tokio::time::timeout(crate::store::redis_counts::CONNECT_TIMEOUT, conn.ping())
                        .await
                        .unwrap_or_else(|_| Err("no answer to PING".into()));
                if let Err(e) = pinged {
                    shared.open(Some(generation), e);
                    continue;
                }
                retry = RETRY_MIN;
                let _ = tokio::time::timeout(HEALTH_EVERY, shared.wake.notified()).await;
            }
            None => match shared.target.connect().await {
                Ok(conn) => {
                    retry = RETRY_MIN;
                    shared.close(conn);
                }
                Err(e) => {
                    shared.open(None, e);
                    drop(shared);
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            },
        }
    }
}
