//! CPU for expensive admin work (the pattern tester, the decision
//! explainer), kept apart from the CPU that decides calls.
//!
//! Calls are served by the async workers and decided in tokio's blocking
//! pool (`call::decide_with_deadline`, under a `decide_timeout` of a few
//! milliseconds). Admin work that can burn seconds must use neither: on an
//! async worker it stalls every call that worker serves (a tester request
//! once delayed a FastAGI call's first command by 38 s), and in the blocking
//! pool it could queue decisions behind it. So each job runs on a thread of
//! its own, at most `slots` at a time, and at a lower scheduling priority
//! (nice 10 on Linux: when cores are scarce, decisions get them first). A
//! thread's niceness cannot be raised back without privileges, which is one
//! more reason these are never the runtime's threads.
//!
//! Admission: a request that finds every slot taken waits [`ADMISSION_WAIT`]
//! (enough for the usual millisecond test ahead of it to finish, so a double
//! click is served), then gets 503 with `Retry-After`. Not a longer queue:
//! every job may take its whole time budget, so a queue would only turn a
//! flood of requests into minutes of waiting and a pile of open connections.
//!
//! Cancellation: [`AdminPool::run`] hands the job a flag that is set when the
//! future awaiting it is dropped (axum drops the handler when its client
//! disconnects); budgeted jobs check it between evaluations and end, and the
//! slot is released when the job's thread is done, never before, so a slot
//! always stands for a thread that may be busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::ApiError;

/// How long a request waits for a free slot before 503.
pub(crate) const ADMISSION_WAIT: Duration = Duration::from_secs(1);

/// Half the cores, at least one: admin work never takes every core.
pub(crate) fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// A bounded set of admin threads.
pub(crate) struct AdminPool {
    slots: usize,
    free: Arc<Semaphore>,
}

/// Why a job was not run, or did not answer.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// Every slot stayed taken for [`ADMISSION_WAIT`].
    Busy { slots: usize },
    /// The thread could not be started, or the job panicked.
    Failed(String),
}

impl PoolError {
    /// The answer, with `Retry-After` (rounded up to whole seconds) on 503.
    pub(crate) fn into_response_retry(self, retry_after: Duration) -> Response {
        match self {
            PoolError::Busy { slots } => {
                let mut r = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "admin work busy: all {slots} slot(s) of the tester's concurrency limit \
                         stayed in use for {ADMISSION_WAIT:?}; retry later"
                    ),
                )
                .with_details(vec![format!("limit: concurrency {slots}")])
                .into_response();
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
                r
            }
            PoolError::Failed(e) => ApiError::internal(e).into_response(),
        }
    }
}

/// Sets the job's cancel flag when dropped, unless disarmed.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

impl AdminPool {
    pub(crate) fn new(slots: usize) -> AdminPool {
        let slots = slots.max(1);
        AdminPool {
            slots,
            free: Arc::new(Semaphore::new(slots)),
        }
    }

    /// Slots free now.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.free.available_permits()
    }

    /// Runs `job` on an admin thread once a slot is free (waiting at most
    /// [`ADMISSION_WAIT`]). `job` gets a flag that is set if this future is
    /// dropped before the job ends; it should check it between units of work.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&AtomicBool) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let permit = tokio::time::timeout(ADMISSION_WAIT, self.free.clone().acquire_owned())
            .await
            .map_err(|_| PoolError::Busy { slots: self.slots })?
            .map_err(|_| PoolError::Failed("admin pool closed".into()))?;
        self.spawn(permit, job).await
    }

    async fn spawn<T: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        job: impl FnOnce(&AtomicBool) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let flag = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(Some(flag.clone()));
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("callguard-admin".into())
            .spawn(move || {
                lower_priority();
                let out = job(&flag);
                // The slot is free once the work is, before the answer is sent.
                drop(permit);
                let _ = tx.send(out);
            })
            .map_err(|e| PoolError::Failed(format!("cannot start an admin thread: {e}")))?;
        let out = rx
            .await
            .map_err(|_| PoolError::Failed("the admin job failed".into()));
        guard.0 = None;
        out
    }
}

/// Nice 10 for the calling thread (Linux: the nice value is per thread).
/// Best effort: a failure leaves the thread at normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority(2) on the calling thread (who = 0); no memory is passed.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job that runs until cancelled: dropping the caller's future sets
    /// the flag, the job ends, and its slot serves the next request.
    #[tokio::test]
    async fn a_dropped_request_cancels_its_job_and_frees_the_slot() {
        let within = Duration::from_secs(30);
        let pool = AdminPool::new(1);
        let (started_tx, started_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        let mut running = Box::pin(pool.run(move |cancel| {
            let _ = started_tx.send(());
            while !cancel.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = ended_tx.send(());
        }));
        tokio::select! {
            _ = &mut running => panic!("the job ends only when cancelled"),
            r = tokio::time::timeout(within, started_rx) => r.unwrap().unwrap(),
        }
        assert_eq!(pool.free(), 0);
        assert!(
            matches!(pool.run(|_| ()).await, Err(PoolError::Busy { slots: 1 })),
            "a second job waits briefly, then is refused"
        );
        // The client goes away: axum drops the handler's future.
        drop(running);
        tokio::time::timeout(within, ended_rx)
            .await
            .expect("the job sees the cancel flag and ends")
            .unwrap();
        let cancelled = pool.run(|c| c.load(Ordering::Relaxed)).await.unwrap();
        assert!(!cancelled, "a new job gets a fresh flag");
        assert_eq!(pool.free(), 1);
    }
}
