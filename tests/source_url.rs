//! Remote list subscriptions end to end, against a tiny HTTP server in the
//! test: conditional GETs, a changed list, a broken list refused, the source
//! down, and a restart with the source down.

#[path = "support/server.rs"]
mod server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use callguard::policy::decide::{Verdict, decide};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use server::TestServer;

#[derive(Default)]
struct Served {
    body: String,
    etag: String,
    requests: usize,
    /// `If-None-Match` of every request, in order.
    if_none_match: Vec<Option<String>>,
    not_modified: usize,
}

/// Serves `Served` at any path until the task is aborted.
async fn serve(listener: TcpListener, served: Arc<Mutex<Served>>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let served = served.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
                match sock.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let inm = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("if-none-match")
                    .then(|| v.trim().to_string())
            });
            let reply = {
                let mut s = served.lock().unwrap();
                s.requests += 1;
                s.if_none_match.push(inm.clone());
                if inm.as_deref() == Some(s.etag.as_str()) {
                    s.not_modified += 1;
                    format!(
                        "HTTP/1.1 304 Not Modified\r\nETag: {}\r\nConnection: close\r\n\r\n",
                        s.etag
                    )
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nETag: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        s.etag,
                        s.body.len(),
                        s.body
                    )
                }
            };
            let _ = sock.write_all(reply.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}

fn yaml(port: u16) -> String {
    format!(
        "actions: {{ reject: {{ kind: reject }}, pass: {{ kind: continue }} }}\n\
         blocked_action: reject\ndefault_trunk: main\n\
         trunks: {{ main: {{ allowed_action: pass }} }}\n\
         lists:\n  - {{ url: \"http://127.0.0.1:{port}/community.csv\", path: lists/community.csv, refresh: 200ms, as: blacklist }}\n"
    )
}

fn blocked(srv: &TestServer, caller: &str) -> bool {
    let rs = &srv.running().state.snapshot().rules;
    let trunk = rs.trunk_by_name("main").expect("trunk");
    decide(rs, trunk, caller, false, chrono::Utc::now())
        .map(|d| d.verdict == Verdict::Block)
        .unwrap_or(false)
}

fn last_error(srv: &TestServer) -> Vec<String> {
    srv.running()
        .state
        .last_error
        .lock()
        .unwrap()
        .clone()
        .map(|(_, p)| p)
        .unwrap_or_default()
}

/// Polls `cond` for up to 10 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const GOOD: &str = "rule_name,pattern,match_type,action,enabled\nSpam-1,+15550000001,exact,,true\n";
const CHANGED: &str = "rule_name,pattern,match_type,action,enabled\nSpam-1,+15550000001,exact,,true\nSpam-2,+15550000002,exact,,true\n";
const BROKEN: &str = "rule_name,pattern,match_type,action,enabled\nSpam-3,+15550000003,exact,,true\nBad,+1555,nonsense,,true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_follows_the_source_and_keeps_the_last_good_copy() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = Arc::new(Mutex::new(Served {
        body: GOOD.into(),
        etag: "\"v1\"".into(),
        ..Served::default()
    }));
    let http = tokio::spawn(serve(listener, served.clone()));

    let mut srv = server::start_with(&yaml(port), &[]).await;
    let copy = srv.dir.path().join("lists/community.csv");

    // First fetch: applied.
    until("first list", || blocked(&srv, "+15550000001")).await;
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), GOOD);
    assert!(!blocked(&srv, "+15550000002"));

    // Unchanged: the server sees the ETag and answers 304.
    until("a 304", || served.lock().unwrap().not_modified >= 2).await;
    assert_eq!(
        served
            .lock()
            .unwrap()
            .if_none_match
            .last()
            .cloned()
            .flatten()
            .as_deref(),
        Some("\"v1\"")
    );
    assert_eq!(
        served.lock().unwrap().if_none_match[0],
        None,
        "first request is unconditional"
    );
    let version = srv.running().state.snapshot().version;

    // Changed list: applied.
    {
        let mut s = served.lock().unwrap();
        s.body = CHANGED.into();
        s.etag = "\"v2\"".into();
    }
    until("changed list", || blocked(&srv, "+15550000002")).await;
    assert!(srv.running().state.snapshot().version > version);
    // Issue 10.10: the change is recorded with the subscription as author.
    let history = srv.running().state.extras.history.clone().expect("history");
    let url = format!("http://127.0.0.1:{port}/community.csv");
    until("the change in the history", || {
        history
            .versions(Some("community"), 10)
            .unwrap()
            .iter()
            .any(|v| v.summary.contains("Spam-2"))
    })
    .await;
    let versions = history.versions(Some("community"), 10).unwrap();
    assert!(
        versions
            .iter()
            .all(|v| v.author == format!("subscription {url}")),
        "{versions:?}"
    );

    // Broken list: refused, the good copy stays and keeps deciding.
    {
        let mut s = served.lock().unwrap();
        s.body = BROKEN.into();
        s.etag = "\"v3\"".into();
    }
    until("refusal", || {
        last_error(&srv).iter().any(|e| e.contains("community.csv"))
    })
    .await;
    let errors = last_error(&srv).join("\n");
    assert!(errors.contains(":3"), "names the line: {errors}");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), CHANGED);
    assert!(blocked(&srv, "+15550000002"));
    assert!(!blocked(&srv, "+15550000003"));

    // Source down: the service keeps running on the last copy and says why.
    http.abort();
    let _ = http.await;
    let before = served.lock().unwrap().requests;
    until("a failed fetch", || {
        last_error(&srv)
            .iter()
            // A fetch failure, not the row errors of the broken list.
            .any(|e| e.starts_with(&format!("subscription http://127.0.0.1:{port}/")))
    })
    .await;
    assert_eq!(served.lock().unwrap().requests, before);
    assert!(blocked(&srv, "+15550000002"));
    let status: serde_json::Value = reqwest::get(format!("http://{}/api/v1/status", srv.http()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        status["last_error"]["problems"]
            .to_string()
            .contains(&format!("subscription http://127.0.0.1:{port}/")),
        "{status}"
    );

    // Restart with the source still down: the last good copy is loaded.
    srv.stop().await;
    let config = srv.config.clone();
    let running = callguard::app::start(&config).await.expect("restart");
    let restarted = TestServer {
        running: Some(running),
        dir: srv.dir,
        config,
    };
    assert!(blocked(&restarted, "+15550000002"));
    assert!(blocked(&restarted, "+15550000001"));
    let mut restarted = restarted;
    restarted.stop().await;
}
