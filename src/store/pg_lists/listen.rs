//! The fleet's ears: a dedicated connection that `LISTEN`s on the list and
//! block channels, on its own thread (the blocking client), reconnecting
//! with backoff (1 s doubling to 10 s). Every notification, connection and
//! loss is handed to a callback; the service turns them into pulls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use super::{BLOCKS_CHANNEL, BlockNote, LISTS_CHANNEL, ListNote, PgStore};

/// What the listener saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Listening (again): anything may have been missed meanwhile.
    Connected,
    /// The connection failed or broke (why, without secrets).
    Lost(String),
    Lists(ListNote),
    Block(BlockNote),
}

/// How long one wait for a notification lasts before `stop` is checked.
const WAIT: Duration = Duration::from_millis(500);
/// A connection quiet this long is checked with a round trip.
const CHECK_EVERY: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Starts the listener thread; it ends soon after `stop` is set.
pub(crate) fn listen(
    store: &PgStore,
    stop: Arc<AtomicBool>,
    mut on: impl FnMut(Event) + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let config = store.target().blocking_config();
    let shown = store.shown().to_string();
    std::thread::Builder::new()
        .name("callguard-listen".into())
        .spawn(move || {
            let mut backoff = Duration::from_secs(1);
            while !stop.load(Ordering::Relaxed) {
                let connected = config.connect(postgres::NoTls).and_then(|mut c| {
                    c.batch_execute(&format!(
                        "SET statement_timeout = 10000; LISTEN {LISTS_CHANNEL}; LISTEN {BLOCKS_CHANNEL};"
                    ))?;
                    Ok(c)
                });
                let mut client = match connected {
                    Ok(c) => c,
                    Err(e) => {
                        on(Event::Lost(format!("{shown}: {e}")));
                        sleep_unless(&stop, backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                        continue;
                    }
                };
                backoff = Duration::from_secs(1);
                on(Event::Connected);
                let why = serve(&mut client, &stop, &mut on);
                if let Some(why) = why {
                    on(Event::Lost(format!("{shown}: {why}")));
                    sleep_unless(&stop, backoff);
                }
            }
        })
}

/// Delivers notifications until the connection breaks (why) or `stop` (`None`).
fn serve(
    client: &mut postgres::Client,
    stop: &AtomicBool,
    on: &mut impl FnMut(Event),
) -> Option<String> {
    let mut checked = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let next = {
            let mut n = client.notifications();
            let mut it = n.timeout_iter(WAIT);
            it.next()
        };
        match next {
            Ok(Some(n)) => {
                let event = match n.channel() {
                    LISTS_CHANNEL => serde_json::from_str(n.payload()).ok().map(Event::Lists),
                    BLOCKS_CHANNEL => serde_json::from_str(n.payload()).ok().map(Event::Block),
                    _ => None,
                };
                if let Some(e) = event {
                    on(e);
                }
            }
            Ok(None) => {
                if client.is_closed() {
                    return Some("connection closed".into());
                }
                if checked.elapsed() >= CHECK_EVERY {
                    checked = Instant::now();
                    if let Err(e) = client.is_valid(Duration::from_secs(5)) {
                        return Some(e.to_string());
                    }
                }
            }
            Err(e) => return Some(e.to_string()),
        }
    }
    None
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
}
