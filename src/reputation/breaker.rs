//! A circuit breaker per provider: after `failures` consecutive failures
//! (errors, timeouts) it opens for `cool_down`; then one probe goes
//! through (half-open): its success closes it, its failure opens it again.
//! While it is open a lookup skips the provider without a request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// `callguard_reputation_breaker_state`: 0 closed, 1 open, 2 half-open.
    pub(crate) fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

#[derive(Debug)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cool_down,
            inner: Mutex::new(Inner {
                failures: 0,
                open_until: None,
                probing: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request may go now; a half-open breaker lets one probe
    /// through (the caller must then report `success` or `failure`).
    pub(crate) fn allow(&self, now: Instant) -> bool {
        let mut i = self.lock();
        match i.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if i.probing => false,
            Some(_) => {
                i.probing = true;
                true
            }
        }
    }

    pub(crate) fn success(&self) {
        let mut i = self.lock();
        i.failures = 0;
        i.open_until = None;
        i.probing = false;
    }

    /// Counts a failure; returns true when it opened the breaker.
    pub(crate) fn failure(&self, now: Instant) -> bool {
        let mut i = self.lock();
        i.failures = i.failures.saturating_add(1);
        let reopen = i.probing || (i.open_until.is_none() && i.failures >= self.threshold);
        i.probing = false;
        if reopen {
            i.open_until = Some(now + self.cool_down);
        }
        reopen
    }

    pub(crate) fn state(&self, now: Instant) -> BreakerState {
        let i = self.lock();
        match i.open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_k_failures_then_probes_once() {
        let b = Breaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(b.allow(t0));
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        b.success();
        assert!(!b.failure(t0));
        assert!(!b.failure(t0));
        assert!(b.failure(t0), "the third consecutive failure opens it");
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.allow(t0 + Duration::from_secs(9)));
        let later = t0 + Duration::from_secs(11);
        assert_eq!(b.state(later), BreakerState::HalfOpen);
        assert!(b.allow(later), "one probe");
        assert!(!b.allow(later), "only one");
        assert!(b.failure(later), "a failed probe opens it again");
        assert!(!b.allow(later + Duration::from_secs(5)));
        let again = later + Duration::from_secs(11);
        assert!(b.allow(again));
        b.success();
        assert_eq!(b.state(again), BreakerState::Closed);
        assert!(b.allow(again) && b.allow(again));
    }
}
