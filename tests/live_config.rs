//! Boot-time and live configuration: a reload applies the listeners'
//! allow-lists, limits and timeouts to the next connection, like the rules;
//! an edited bind address keeps the old listener, is reported as "restart
//! required" (log, `/api/v1/status`, `callguard_restart_required`), and the
//! rest of the same edit is applied. Every edit goes through the config file
//! and the watcher, and each step waits for the status version to move.

#[path = "support/server.rs"]
mod server;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use callguard_sim::asterisk::AsteriskSim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RULES: &str = r#"
server: { reload_debounce: 50ms }
trunks:
  support:
    blacklist:
      - { name: Spam, pattern: "+15550000001", action: reject }
"#;

/// Rewrites the config file as an editor would (a temp file renamed over it).
fn edit(config: &Path, change: impl FnOnce(String) -> String) {
    let before = std::fs::read_to_string(config).unwrap();
    let after = change(before.clone());
    assert_ne!(before, after, "the edit changes nothing");
    let tmp = config.with_extension("yaml.tmp");
    std::fs::write(&tmp, after).unwrap();
    std::fs::rename(&tmp, config).unwrap();
}

async fn status(http: SocketAddr) -> serde_json::Value {
    reqwest::get(format!("http://{http}/api/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (bounded) until a version newer than `after` is installed.
async fn reloaded(http: SocketAddr, after: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(http).await;
        if s["version"].as_u64().unwrap() > after {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the edit was never installed: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn version(s: &serde_json::Value) -> u64 {
    s["version"].as_u64().unwrap()
}

/// Waits (bounded) until the `/metrics` sum of `family` with `with` is `want`.
async fn metric_reaches(http: SocketAddr, family: &str, with: &[&str], want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = server::scrape_sum(http, family, with).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{family}{with:?} stayed at {got}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn verdict(addr: SocketAddr, caller: &str) -> Option<String> {
    let r = AsteriskSim::new()
        .callerid(caller)
        .timeout(Duration::from_secs(10))
        .run(addr)
        .await;
    r.variables.get("CALLGUARD_VERDICT").cloned()
}

#[tokio::test]
async fn an_edited_allow_list_applies_to_the_next_connection_without_restart() {
    let yaml = format!("{RULES}agi: {{ allow: [\"127.0.0.0/8\"] }}\n");
    let mut srv = server::start(&yaml).await;
    let (agi, http) = (srv.agi(), srv.http());
    assert_eq!(verdict(agi, "+15550000009").await.as_deref(), Some("allow"));
    let not_allowed = ["pbx=\"asterisk\"", "reason=\"not_allowed\""];
    let refused = "callguard_connections_refused_total";
    assert_eq!(server::scrape_sum(http, refused, &not_allowed).await, 0.0);

    // 127.0.0.1 no longer allowed: refused and counted, no restart.
    let v = version(&status(http).await);
    edit(&srv.config, |c| c.replace("127.0.0.0/8", "192.0.2.0/24"));
    let s = reloaded(http, v).await;
    assert_eq!(s["restart_required"], serde_json::json!([]), "{s}");
    assert_eq!(
        verdict(agi, "+15550000009").await,
        None,
        "served while refused"
    );
    metric_reaches(http, refused, &not_allowed, 1.0).await;

    // Edited back: served again.
    let v = version(&s);
    edit(&srv.config, |c| c.replace("192.0.2.0/24", "127.0.0.0/8"));
    reloaded(http, v).await;
    assert_eq!(verdict(agi, "+15550000001").await.as_deref(), Some("block"));
    assert_eq!(server::scrape_sum(http, refused, &not_allowed).await, 1.0);
    srv.stop().await;
}

#[tokio::test]
async fn an_edited_limit_and_timeout_apply_without_restart() {
    let yaml = format!(
        "{RULES}esl: {{ max_connections: 5, connect_timeout: 30s }}\nagi: {{ env_timeout: 30s }}\n"
    );
    let mut srv = server::start(&yaml).await;
    let (esl, agi, http) = (srv.esl(), srv.agi(), srv.http());
    let active = "callguard_sessions_active";
    let fs = ["pbx=\"freeswitch\""];
    // Two sessions waiting for FreeSWITCH's channel data: both within 5.
    let held = [
        TcpStream::connect(esl).await.unwrap(),
        TcpStream::connect(esl).await.unwrap(),
    ];
    metric_reaches(http, active, &fs, 2.0).await;

    let v = version(&status(http).await);
    edit(&srv.config, |c| {
        c.replace("max_connections: 5", "max_connections: 1")
            .replace("env_timeout: 30s", "env_timeout: 200ms")
    });
    reloaded(http, v).await;
    // The open sessions are not cut; the next connection is one too many.
    let too_many = ["pbx=\"freeswitch\"", "reason=\"too_many\""];
    let refused = "callguard_connections_refused_total";
    assert_eq!(server::scrape_sum(http, refused, &too_many).await, 0.0);
    let extra = TcpStream::connect(esl).await.unwrap();
    metric_reaches(http, refused, &too_many, 1.0).await;
    assert_eq!(server::scrape_sum(http, active, &fs).await, 2.0);
    drop(extra);

    // The new env_timeout: a FastAGI peer that sends nothing is closed
    // long before the 30 s it had at start.
    let mut silent = TcpStream::connect(agi).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the silent peer was not closed by the new env_timeout: {closed:?}"
    );
    drop(held);
    srv.stop().await;
}

/// Collects what the service logs on this thread (the test's runtime runs
/// every task of the service on it).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn an_edited_bind_address_is_reported_and_the_rest_applied() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut srv = server::start(RULES).await;
    let (agi, http) = (srv.agi(), srv.http());
    let s = status(http).await;
    assert_eq!(s["restart_required"], serde_json::json!([]), "{s}");
    let gauge = "callguard_restart_required";
    assert_eq!(server::scrape_sum(http, gauge, &[]).await, 0.0);

    // One edit: a new bind address and a new blacklist entry.
    edit(&srv.config, |c| {
        c.replace("listen: { agi: 127.0.0.1:0", "listen: { agi: 127.0.0.2:0")
            .replace(
                "      - { name: Spam,",
                "      - { name: New, pattern: \"+15550000002\", action: reject }\n      - { name: Spam,",
            )
    });
    let s = reloaded(http, version(&s)).await;
    assert_eq!(
        s["restart_required"],
        serde_json::json!(["listen.agi"]),
        "{s}"
    );
    assert_eq!(
        server::scrape_sum(http, gauge, &["key=\"listen.agi\""]).await,
        1.0
    );
    assert_eq!(server::scrape_sum(http, gauge, &[]).await, 1.0);
    let text = log.text();
    assert!(text.contains("restart required: listen.agi"), "{text}");
    // The old listener still serves, with the new entry applied.
    assert_eq!(verdict(agi, "+15550000002").await.as_deref(), Some("block"));
    assert_eq!(verdict(agi, "+15550000001").await.as_deref(), Some("block"));

    // Edited back: nothing waits for a restart any more.
    edit(&srv.config, |c| {
        c.replace("listen: { agi: 127.0.0.2:0", "listen: { agi: 127.0.0.1:0")
    });
    let s = reloaded(http, version(&s)).await;
    assert_eq!(s["restart_required"], serde_json::json!([]), "{s}");
    assert_eq!(server::scrape_sum(http, gauge, &[]).await, 0.0);
    assert_eq!(verdict(agi, "+15550000002").await.as_deref(), Some("block"));
    srv.stop().await;
}

#[tokio::test]
async fn an_edited_http_connection_cap_applies_without_restart() {
    let yaml = format!("{RULES}http: {{ max_connections: 64 }}\n");
    let mut srv = server::start(&yaml).await;
    let http = srv.http();
    let v = version(&status(http).await);
    edit(&srv.config, |c| {
        c.replace("max_connections: 64", "max_connections: 1")
    });
    reloaded(http, v).await;
    let refused = || {
        let m = srv.running().state.metrics.render();
        m.lines()
            .find(|l| {
                l.starts_with("callguard_connections_refused_total{")
                    && l.contains("pbx=\"http\"")
                    && l.contains("reason=\"too_many\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // One kept-alive connection holds the only place (once the status
    // requests' connections are gone); the next is closed at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let mut c = TcpStream::connect(http).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        if c.read_exact(&mut head).await.is_ok() && head.starts_with(b"HTTP/1.1 200") {
            break c;
        }
        assert!(Instant::now() < deadline, "no place ever freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let before = refused();
    let mut extra = TcpStream::connect(http).await.unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), extra.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "a second connection was served under a cap of 1: {closed:?}"
    );
    assert_eq!(refused(), before + 1.0);
    drop(held);
    srv.stop().await;
}
