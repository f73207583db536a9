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

/// Refused FreeSWITCH connections being released at once; past this they are just closed.
const MAX_RELEASING: usize = 64;
/// The longest a release may take: FreeSWITCH answers `connect` at once.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// The most channel data read from a refused peer before giving up on it.
const RELEASE_MAX_BYTES: usize = 64 * 1024;

/// Closes a refused connection so that the call goes on unscreened (fail open).
///
/// Asterisk's `AGI()` sees the close, sets `AGISTATUS=FAILURE` and the dialplan continues.
/// FreeSWITCH 1.10's `socket` application does not: when the server closes before sending
/// `connect` it logs `Socket Error!` and leaves the channel parked until the caller gives up
/// (seen through a real FreeSWITCH 1.10.12 in the lab, row f50). So a refused FreeSWITCH
/// connection is ended the way a session ends: `connect`, its channel data read and
/// discarded, `exit`; the `socket` application then returns and the snippet's fail-open
/// branch runs. Bounded: [`MAX_RELEASING`] at once, [`RELEASE_TIMEOUT`] each; beyond
/// that the connection is closed as before.
fn release(stream: TcpStream, pbx: Pbx, releasing: &Arc<Semaphore>) {
    if pbx != Pbx::FreeSwitch {
        return;
    }
    let Ok(permit) = releasing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(RELEASE_TIMEOUT, release_esl(stream)).await;
        drop(permit);
    });
}

async fn release_esl(mut stream: TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"connect\n\n").await?;
    let mut seen: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        // The blank line may straddle two reads: look from one byte back.
        let from = seen.len().saturating_sub(1);
        seen.extend_from_slice(&buf[..n]);
        if seen[from..].windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if seen.len() > RELEASE_MAX_BYTES {
            return Ok(());
        }
    }
    stream.write_all(b"exit\n\n").await?;
    // FreeSWITCH answers `+OK bye` and a disconnect notice, then closes.
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
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
            release(stream, pbx, &releasing);
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(pbx = pbx.as_str(), %peer, "connection refused: {} connections already open", limits.max_connections);
            refused("too_many");
            release(stream, pbx, &releasing);
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
