//! "In effect at once" for the commands that change a list file (`block`,
//! `import`, `rollback`): a running `serve` of the same configuration picks
//! the file up through its watcher, within a second. A user who blocks a
//! caller and the next second takes that caller's call must not get them
//! through, so the command waits until the running service has installed a
//! newer rule set, and says so; or says why it could not tell.
//!
//! The service is found at the config's `listen.http` and asked for
//! `GET /api/v1/status` (open without a token: it carries no caller numbers).
//! Nothing answering there is normal (no `serve` running yet): the file is
//! what the next `serve` loads.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long the command waits for the running service to install the change.
/// The watcher's debounce is well under a second; a reload of a very large
/// rule set can take longer, and then the command says it did not see it.
const WAIT: Duration = Duration::from_secs(10);

/// The running `serve` of this configuration, as found before the write.
pub(super) struct Running {
    client: reqwest::blocking::Client,
    url: String,
    before: u64,
}

/// Looks for a running `serve` before the command writes. None when the
/// config has no HTTP listener or nothing answers there.
pub(super) fn before_write(config: &Path) -> Option<Running> {
    let loaded = crate::config::load(config).ok()?;
    let addr = loopback(&loaded.raw.listen.http.clone()?)?;
    crate::source::install_tls_provider();
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
        .ok()?;
    let url = format!("http://{addr}/api/v1/status");
    let before = version(&client, &url)?;
    Some(Running {
        client,
        url,
        before,
    })
}

/// After the write: waits until the running service installs a newer rule
/// set. Answers the line to print.
pub(super) fn after_write(running: Option<Running>) -> String {
    let Some(r) = running else {
        return "no callguard running at this config's listen.http: the next `serve` loads it"
            .to_string();
    };
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(v) = version(&r.client, &r.url)
            && v > r.before
        {
            return format!("in effect: the running callguard installed it (rule set version {v})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    format!(
        "the running callguard at {} has not installed it after {}s: see `last_error` there",
        r.url,
        WAIT.as_secs()
    )
}

fn version(client: &reqwest::blocking::Client, url: &str) -> Option<u64> {
    let body: serde_json::Value = client.get(url).send().ok()?.json().ok()?;
    body.get("version")?.as_u64()
}

/// The listen address as a client reaches it.
fn loopback(text: &str) -> Option<SocketAddr> {
    let addr = reachable(text.to_socket_addrs().ok()?.next()?);
    (addr.port() != 0).then_some(addr)
}

/// A listen address as a client on this host reaches it: an unspecified
/// address (`0.0.0.0`, `::`) on loopback. `callguard call` uses it too.
pub(super) fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    addr
}
