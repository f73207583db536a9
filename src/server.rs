//! Listeners and the service's lifecycle.
//!
//! Every PBX listener shares the same accept loop: the peer allow-list, the
//! connection limit (excess refused cleanly and counted), per-session
//! metrics, and graceful shutdown — stop accepting, let calls in progress
//! finish within the grace period, then close what is left.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::action::Pbx;
use crate::state::State;

/// Who may connect and how many at once.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub allow: Vec<IpNet>,
}

/// The two stages of shutdown.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Stop accepting new connections.
    pub stop: CancellationToken,
    /// The grace period is over: close the sessions still running.
    pub abort: CancellationToken,
    pub sessions: TaskTracker,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Stops accepting, waits up to `grace` for sessions to finish, then
    /// aborts the rest and waits for them to close.
    pub async fn run(&self, grace: std::time::Duration) {
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

/// Accepts connections until shutdown, running `handler` for each allowed one.
///
/// Run it `tokio::task::unconstrained`: under a burst of calls the loop must
/// drain the kernel's accept queue at once rather than yield after each
/// cooperative budget behind thousands of sessions, or the queue overflows
/// and the kernel drops handshakes.
pub async fn accept_loop<H, F>(
    listener: TcpListener,
    pbx: Pbx,
    limits: Limits,
    state: Arc<State>,
    shutdown: Shutdown,
    handler: H,
) where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
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
        if !limits.allow.iter().any(|n| n.contains(&peer.ip())) {
            tracing::warn!(pbx = pbx.as_str(), %peer, "connection refused: peer not in the allow list");
            refused("not_allowed");
            drop(stream);
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(pbx = pbx.as_str(), %peer, "connection refused: {} connections already open", limits.max_connections);
            refused("too_many");
            drop(stream);
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
                _ = handler(stream, peer) => {}
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
