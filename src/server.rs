//! Listeners and the service's lifecycle.
//!
//! Every PBX listener shares the same accept loop: the peer allow-list, the
//! connection limit (excess refused cleanly and counted), per-session
//! metrics, and graceful shutdown — stop accepting, let calls in progress
//! finish within the grace period, then close what is left. The allow-list
//! and the limit are read from the installed snapshot per connection, so a
//! reload applies them to the next connection.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::action::Pbx;
use crate::call::CallInfo;
use crate::call::unscreened::{self, NotScreened};
use crate::outcome::Unscreened;
use crate::state::{Snapshot, State};

/// Connections open on one listener, against a limit that a reload may
/// change: a lowered limit refuses new connections until enough of the open
/// ones end (none is cut), a raised one admits more at once.
#[derive(Debug, Default)]
pub(crate) struct Slots(Arc<AtomicUsize>);

/// One open connection's place in its [`Slots`], given back on drop.
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Slots {
    pub(crate) fn new() -> Slots {
        Slots::default()
    }

    /// A slot when fewer than `max` are taken.
    pub(crate) fn take(&self, max: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.0.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The two stages of shutdown.
#[derive(Clone, Default)]
pub(crate) struct Shutdown {
    /// Stop accepting new connections.
    pub stop: CancellationToken,
    /// The grace period is over: close the sessions still running.
    pub abort: CancellationToken,
    pub sessions: TaskTracker,
}

impl Shutdown {
    pub(crate) fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Stops accepting, waits up to `grace` for sessions to finish, then
    /// aborts the rest and waits for them to close.
    pub(crate) async fn run(&self, grace: std::time::Duration) {
        self.stop.cancel();
        self.sessions.close();
        if tokio::time::timeout(grace, self.sessions.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.sessions.len(),
                "grace period over: closing the sessions still running"
            );
            self.abort.cancel();
            self.sessions.wait().await;
        }
    }
}

/// Refused FreeSWITCH connections being released at once; past this they are just closed.
const MAX_RELEASING: usize = 64;
/// The longest a release may take (`pbx::esl::release` bounds each of its steps
/// so that its `exit` is sent within about two seconds): FreeSWITCH answers at once.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Closes a refused connection so that the call goes on unscreened (fail open).
///
/// Asterisk's `AGI()` sees the close, sets `AGISTATUS=FAILURE` and the dialplan continues.
/// FreeSWITCH 1.10's `socket` application does not: when the server closes before sending
/// `connect` it logs `Socket Error!` and leaves the channel parked until the caller gives up
/// (seen through a real FreeSWITCH 1.10.12 in the lab, row f50). So a refused FreeSWITCH
/// connection is ended the way a session ends (`pbx::esl::release`): `connect`, its channel
/// data read, `myevents`, one `log` application that tells the FreeSWITCH log why, `exit`;
/// the `socket` application then returns and the snippet's fail-open branch runs. Bounded: [`MAX_RELEASING`] at once, [`RELEASE_TIMEOUT`] each; beyond
/// that the connection is closed as before.
///
/// `row` is the refused call's log row (when it is to be written): for an ESL release it is
/// written once the release is over, with the `Unique-ID` of the channel data read.
fn release(
    stream: TcpStream,
    pbx: Pbx,
    releasing: &Arc<Semaphore>,
    state: &Arc<State>,
    row: Option<NotScreened>,
) {
    let permit = match pbx {
        Pbx::FreeSwitch => releasing.clone().try_acquire_owned().ok(),
        Pbx::Asterisk => None,
    };
    let Some(permit) = permit else {
        drop(stream);
        if let Some(row) = row {
            unscreened::log_row(state, row);
        }
        return;
    };
    let state = state.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut info = CallInfo::default();
        let peer = stream.peer_addr().ok();
        if let Some(peer) = peer {
            // Rows are rate limited; the FreeSWITCH log line is the only one then.
            let why = row.as_ref().map_or_else(
                || "connection refused".to_string(),
                |r| r.why.describe("esl"),
            );
            let release = crate::pbx::esl::release(stream, peer, &why, &mut info);
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, release).await;
        }
        drop(permit);
        if let Some(mut row) = row {
            row.info = info;
            row.duration = started.elapsed();
            unscreened::log_row(&state, row);
        }
    });
}

/// Refused connections from peers outside the allow list that get a log row
/// (and a warning) per [`LOG_WINDOW`]; every one is counted regardless.
///
/// Why bounded: such a peer is not one of our PBXs (a scanner, a misrouted
/// host, a flood), and nothing bounds how often it connects. One row each
/// would let it fill the disk and, worse, crowd the real calls' rows out of
/// the log's bounded queue, which drops what does not fit. A few rows a
/// minute show who is knocking; the next row written says how many were left
/// out since, and `callguard_unscreened_total{reason="not_allowed"}` (like
/// `callguard_connections_refused_total`) counts them all. Calls refused for
/// `max_connections` come from an allowed PBX: each is a real call that went
/// on unscreened, so each gets its row (only their warnings are bounded).
pub(crate) const REFUSED_ROWS_PER_WINDOW: u32 = 10;
/// The window of [`REFUSED_ROWS_PER_WINDOW`].
pub(crate) const LOG_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// At most `max` events per [`LOG_WINDOW`] get through; counts the others.
/// Owned by one accept loop, so no locking.
struct Limiter {
    max: u32,
    window_start: Option<Instant>,
    used: u32,
    left_out: u64,
}

impl Limiter {
    fn new(max: u32) -> Limiter {
        Limiter {
            max,
            window_start: None,
            used: 0,
            left_out: 0,
        }
    }

    /// `Some(n)` when this event may be logged, `n` being how many were left
    /// out since the last one that was; `None` when it is left out.
    fn admit(&mut self, now: Instant) -> Option<u64> {
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= LOG_WINDOW)
        {
            self.window_start = Some(now);
            self.used = 0;
        }
        if self.used >= self.max {
            self.left_out += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.left_out))
    }
}

/// Accepts connections until shutdown, running `handler` for each allowed
/// one with the snapshot whose allow-list and limit admitted it (the session
/// takes its timeouts from the same snapshot).
///
/// Run it `tokio::task::unconstrained`: under a burst of calls the loop must
/// drain the kernel's accept queue at once rather than yield after each
/// cooperative budget behind thousands of sessions, or the queue overflows
/// and the kernel drops handshakes.
pub(crate) async fn accept_loop<H, F>(
    listener: TcpListener,
    pbx: Pbx,
    state: Arc<State>,
    shutdown: Shutdown,
    handler: H,
) where
    H: Fn(TcpStream, SocketAddr, Arc<Snapshot>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Slots::new();
    let releasing = Arc::new(Semaphore::new(MAX_RELEASING));
    let active = state
        .metrics
        .sessions_active
        .with_label_values(&[pbx.as_str()]);
    let duration = state
        .metrics
        .session_duration
        .with_label_values(&[pbx.as_str()]);
    let refused = |reason: &str| {
        state
            .metrics
            .connections_refused_total
            .with_label_values(&[pbx.as_str(), reason])
            .inc();
    };
    let handler = Arc::new(handler);
    let mut not_allowed_rows = Limiter::new(REFUSED_ROWS_PER_WINDOW);
    let mut too_many_warnings = Limiter::new(REFUSED_ROWS_PER_WINDOW);
    let refused_row = |why: Unscreened, peer: SocketAddr, suppressed: u64| NotScreened {
        pbx,
        why,
        peer,
        info: CallInfo::default(),
        detail: None,
        duration: std::time::Duration::ZERO,
        suppressed,
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(pbx = pbx.as_str(), "accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let snap = state.snapshot();
        let limits = snap.service.limits(pbx);
        if !limits.allow.iter().any(|n| n.contains(&peer.ip())) {
            refused("not_allowed");
            state.metrics.count_unscreened(pbx, Unscreened::NotAllowed);
            let row = not_allowed_rows.admit(Instant::now()).map(|left_out| {
                tracing::warn!(
                    pbx = pbx.as_str(),
                    %peer,
                    left_out,
                    "connection refused: peer not in the allow list (at most {REFUSED_ROWS_PER_WINDOW} such warnings and log rows a minute)"
                );
                refused_row(Unscreened::NotAllowed, peer, left_out)
            });
            release(stream, pbx, &releasing, &state, row);
            continue;
        }
        let Some(permit) = slots.take(limits.max_connections) else {
            refused("too_many");
            state
                .metrics
                .count_unscreened(pbx, Unscreened::MaxConnections);
            if let Some(left_out) = too_many_warnings.admit(Instant::now()) {
                tracing::warn!(
                    pbx = pbx.as_str(),
                    %peer,
                    left_out,
                    "connection refused: {} connections already open (at most {REFUSED_ROWS_PER_WINDOW} such warnings a minute)",
                    limits.max_connections
                );
            }
            let row = refused_row(Unscreened::MaxConnections, peer, 0);
            release(stream, pbx, &releasing, &state, Some(row));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let abort = shutdown.abort.clone();
        let active = active.clone();
        let duration = duration.clone();
        shutdown.sessions.spawn(async move {
            let started = Instant::now();
            active.inc();
            tokio::select! {
                _ = handler(stream, peer, snap) => {}
                _ = abort.cancelled() => {
                    tracing::warn!(%peer, "session closed by shutdown");
                }
            }
            active.dec();
            duration.observe(started.elapsed().as_secs_f64());
            drop(permit);
        });
    }
}
