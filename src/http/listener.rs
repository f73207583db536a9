//! The HTTP accept loop: a connection cap and timeouts on every phase of a
//! request, so that neither idle nor slow clients can hold descriptors.
//!
//! `axum::serve` accepts without limit and never times a client out: 5,000
//! idle connections stayed open, headers sent a byte every 5 s kept a
//! connection for as long as the client liked, and at the open-file limit
//! the FastAGI listener could no longer accept calls. Here:
//! - at most [`effective_cap`] connections are open at once; one more is
//!   closed at once and counted in `callguard_connections_refused_total`
//!   (`pbx="http"`, `reason="too_many"`);
//! - hyper's `header_read_timeout` bounds a request's head, and the
//!   [`PhaseTimer`] given to hyper makes that same timer bound the idle wait
//!   of a kept-alive connection by `http.keep_alive_timeout` instead;
//! - the request body is bounded by `http.body_timeout` (`guard::body_deadline`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::server::Slots;
use crate::state::State;

/// The share of the process's open-file limit HTTP connections may take:
/// the rest stays for calls, the decision log and the listeners.
const FD_SHARE: u64 = 8;

/// The soft `RLIMIT_NOFILE`, if it is finite.
fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur)
}

/// `http.max_connections`, held to `1/FD_SHARE` of the open-file limit.
pub(crate) fn effective_cap(configured: usize, nofile: Option<u64>) -> usize {
    let share = nofile.map_or(usize::MAX, |n| {
        usize::try_from(n / FD_SHARE).unwrap_or(usize::MAX)
    });
    configured.min(share).max(1)
}

/// Per-connection activity the [`PhaseTimer`] reads: bytes received so far,
/// and a wake-up when more arrive.
#[derive(Default)]
struct Activity {
    bytes_read: AtomicU64,
    arrived: Notify,
}

/// The client's stream, noting every byte received in [`Activity`].
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.activity
                .bytes_read
                .fetch_add(n as u64, Ordering::Relaxed);
            self.activity.arrived.notify_one();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The timer hyper arms when it starts waiting for a request head (its
/// `header_read_timeout`). On a connection's first request the head must
/// arrive within `header` of the start. On a kept-alive connection hyper
/// arms it as soon as the previous answer is sent, which would make the
/// idle wait as short as the head's; so there the timer first waits up to
/// `idle` for the next request's first byte, then `header` for the rest.
#[derive(Clone)]
struct PhaseTimer {
    activity: Arc<Activity>,
    header: Duration,
    idle: Duration,
}

/// A `Send + Sync` box for the timer's future (hyper's `Sleep` must be
/// `Sync`; the future is only ever polled by the one connection).
struct PhaseSleep(Mutex<Pin<Box<dyn Future<Output = ()> + Send>>>);

impl Future for PhaseSleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.0.lock() {
            Ok(mut f) => f.as_mut().poll(cx),
            // A poisoned lock: end the wait, which closes the connection.
            Err(_) => Poll::Ready(()),
        }
    }
}

impl hyper::rt::Sleep for PhaseSleep {}

impl hyper::rt::Timer for PhaseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let activity = self.activity.clone();
        let (header, idle) = (self.header, self.idle);
        let seen = activity.bytes_read.load(Ordering::Relaxed);
        let wait = async move {
            if seen == 0 {
                // The first request: the deadline hyper computed (start + header).
                tokio::time::sleep_until(deadline.into()).await;
                return;
            }
            let idle_over = tokio::time::sleep(idle);
            tokio::pin!(idle_over);
            loop {
                tokio::select! {
                    _ = &mut idle_over => return,
                    _ = activity.arrived.notified() => {
                        if activity.bytes_read.load(Ordering::Relaxed) > seen {
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(header).await;
        };
        Box::pin(PhaseSleep(Mutex::new(Box::pin(wait))))
    }
}

/// Accepts HTTP connections until `stop`, serving `router` on each within
/// the cap and the timeouts of the installed `http:` settings (read per
/// connection, so a reload applies them to new connections: a lowered cap
/// refuses new ones until enough of those open have ended).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    state: Arc<State>,
    stop: CancellationToken,
) {
    let nofile = open_file_limit();
    let slots = Slots::new();
    // The last cap said to be held to the file limit, so it is said once.
    let mut held_logged = None;
    let refused = state
        .metrics
        .connections_refused_total
        .with_label_values(&["http", "too_many"]);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: the connection stays queued and the
                // listener stays readable, so back off instead of spinning.
                tracing::warn!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let snap = state.snapshot();
        let http = &snap.service.http;
        let configured = http.max_connections;
        let cap = effective_cap(configured, nofile);
        if cap < configured && held_logged != Some(configured) {
            held_logged = Some(configured);
            tracing::info!(
                "http.max_connections {configured} held to {cap}: an eighth of the {} open files \
                 allowed, so that calls keep theirs (raise LimitNOFILE / ulimit -n for more)",
                nofile.unwrap_or(0)
            );
        }
        let Some(permit) = slots.take(cap) else {
            tracing::debug!(%peer, "HTTP connection closed: {cap} already open");
            refused.inc();
            drop(stream);
            continue;
        };
        let http = http.clone();
        let activity = Arc::new(Activity::default());
        let timer = PhaseTimer {
            activity: activity.clone(),
            header: http.header_timeout,
            idle: http.keep_alive_timeout,
        };
        let io = TokioIo::new(Watched { stream, activity });
        // The peer's address for handlers that check it (`edge.allow`), as
        // axum's `ConnectInfo` would carry it.
        let service = hyper_util::service::TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
        );
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(timer)
                .header_read_timeout(http.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(io, service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, "HTTP connection ended: {e}");
                    }
                }
                _ = stop.cancelled() => {
                    // Finish the request in progress, take no other.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::effective_cap;

    #[test]
    fn the_cap_leaves_most_descriptors_to_calls() {
        assert_eq!(effective_cap(256, Some(65_536)), 256);
        assert_eq!(effective_cap(256, Some(1_024)), 128);
        assert_eq!(effective_cap(256, Some(96)), 12);
        assert_eq!(effective_cap(256, Some(3)), 1);
        assert_eq!(effective_cap(0, None), 1);
        assert_eq!(effective_cap(300, None), 300);
    }
}
