//! The HTTP listener under abuse, over real loopback sockets: HEAD is
//! guarded like GET, every route outside the public list needs a token
//! under `protect_reads`, a foreign `Host` is misdirected (DNS rebinding), a
//! cross-site change and a `text/plain` JSON body are refused, the
//! connection cap closes the excess while calls are still screened, and slow
//! heads, slow bodies and idle keep-alive connections are closed.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use asterisk::AsteriskSim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "hardening-token";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this binary reads the environment.
        unsafe { std::env::set_var("CG_HARD_TOKEN", TOKEN) };
    });
}

/// A trunk blocking one number, plus `http` settings.
fn yaml(http: &str) -> String {
    format!(
        r#"
normalize: {{ default_region: US }}
default_trunk: support
actions:
  reject: {{ kind: reject, tone: busy }}
http: {{ tokens: [ {{ name: ops, token_env: CG_HARD_TOKEN }} ], {http} }}
trunks:
  support:
    blacklist:
      - {{ name: Busy, pattern: "+15550000001", action: reject }}
"#
    )
}

/// Sends `request` on a new connection and reads the answer until the
/// server closes (bounded).
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("")
}

/// Reads until the server closes the connection (EOF or reset), within `bound`.
async fn closed_within(s: &mut TcpStream, bound: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A blocked caller still gets its commands: calls are screened.
async fn assert_screened(agi: SocketAddr) {
    let r = AsteriskSim::new()
        .callerid("+15550000001")
        .timeout(Duration::from_secs(10))
        .run(agi)
        .await;
    assert!(
        r.commands.iter().any(|c| c == "EXEC Busy 5"),
        "the call was not screened: {r:?}",
        r = r.commands
    );
}

#[tokio::test]
async fn head_and_every_unlisted_route_need_a_token_under_protect_reads() {
    env();
    let mut srv = server::start(&yaml("protect_reads: true")).await;
    let base = format!("http://{}", srv.http());
    let c = reqwest::Client::new();
    // The length of the answer would tell whether that number called.
    let calls = format!("{base}/api/v1/calls?caller=%2B15551234567");
    let r = c.head(&calls).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.head(&calls).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Not in the public list: protected, existing or not.
    for path in ["/api/v1/trunks", "/api/v1/report", "/api/v1/not-a-route"] {
        for m in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = c
                .request(m.clone(), format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{m} {path}");
        }
    }
    // A change with no authorisation of its own is covered too.
    let r = c
        .post(format!("{base}/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "POST /api/v1/reload");
    for path in [
        "/",
        "/console/console.js",
        "/console/console.css",
        "/metrics",
        "/api/v1/status",
        "/api/v1/overview",
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let r = c.head(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "HEAD {path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_foreign_host_is_misdirected_and_ours_pass() {
    env();
    let mut srv = server::start(&yaml("allowed_hosts: [cg.example.net]")).await;
    let http = srv.http();
    let port = http.port();
    let get = |path: &str, host: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
    };
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "localhost.evil.example",
    ] {
        let a = raw(http, &get("/api/v1/calls", host)).await;
        assert_eq!(status_of(&a), "421", "{host}: {a}");
        let a = raw(http, &get("/", host)).await;
        assert_eq!(status_of(&a), "421", "{host}: {a}");
    }
    for host in [
        "localhost".to_string(),
        format!("localhost:{port}"),
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{port}"),
        "[::1]".to_string(),
        format!("[::1]:{port}"),
        "cg.example.net".to_string(),
    ] {
        let a = raw(http, &get("/api/v1/calls", &host)).await;
        assert_eq!(status_of(&a), "200", "{host}: {a}");
    }
    // Monitoring may use any name.
    let a = raw(http, &get("/metrics", "evil.example")).await;
    assert_eq!(status_of(&a), "200", "{a}");
    srv.stop().await;
}

#[tokio::test]
async fn json_endpoints_refuse_other_types_and_cross_site_changes() {
    env();
    let mut srv = server::start(&yaml("protect_reads: false")).await;
    let base = format!("http://{}", srv.http());
    let c = reqwest::Client::new();
    let url = format!("{base}/api/v1/test");
    let body = r#"{"caller":"+15550000001"}"#;
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = c
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 415, "{ct}");
    }
    let r = c.post(&url).body(body).send().await.unwrap();
    assert_eq!(r.status(), 415, "no Content-Type");
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A page elsewhere cannot change or probe anything, even with JSON.
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .header("origin", "https://evil.example")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(&url)
        .header("content-type", "application/json")
        .header("origin", base.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the console's own origin");
    srv.stop().await;
}

#[tokio::test]
async fn over_the_cap_a_connection_is_closed_and_calls_are_still_screened() {
    env();
    let mut srv = server::start(&yaml("max_connections: 4, header_timeout: 60s")).await;
    let http = srv.http();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(http).await.unwrap());
    }
    let mut extra = TcpStream::connect(http).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(20)).await,
        "a fifth connection stayed open"
    );
    let mut buf = [0u8; 1];
    for s in &held {
        let r = s.try_read(&mut buf);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a connection within the cap was closed: {r:?}"
        );
    }
    assert_screened(srv.agi()).await;
    let m = srv.running().state.metrics.render();
    assert!(
        m.lines()
            .any(|l| l.starts_with("callguard_connections_refused_total")
                && l.contains("pbx=\"http\"")
                && l.contains("reason=\"too_many\"")
                && !l.ends_with(" 0")),
        "{m}"
    );
    // A slot freed is a slot usable again.
    held.clear();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = raw(
            http,
            "GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        if status_of(&a) == "200" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no slot came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn a_slow_head_is_closed_at_the_header_timeout() {
    env();
    let mut srv = server::start(&yaml("header_timeout: 1s")).await;
    let head = "GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let s = TcpStream::connect(srv.http()).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    });
    // One byte a second: the whole head would take over a minute.
    for b in head.bytes() {
        if reader.is_finished() || wr.write_all(&[b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(reader.is_finished(), "the slow head was never cut off");
    let out = reader.await.unwrap();
    assert!(
        !String::from_utf8_lossy(&out).contains(" 200 "),
        "the slow head was answered: {}",
        String::from_utf8_lossy(&out)
    );
    srv.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    env();
    let mut srv = server::start(&yaml("keep_alive_timeout: 1s, header_timeout: 60s")).await;
    let mut s = TcpStream::connect(srv.http()).await.unwrap();
    s.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The answer first (kept alive), then the close once idle.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"build\"") {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    // Far shorter than the 60 s header timeout: the keep-alive one closed it.
    assert!(
        closed_within(&mut s, Duration::from_secs(30)).await,
        "the idle connection stayed open"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_slow_body_is_answered_408() {
    env();
    let mut srv = server::start(&yaml("body_timeout: 1s")).await;
    let mut s = TcpStream::connect(srv.http()).await.unwrap();
    s.write_all(
        b"POST /api/v1/test HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"caller\":",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert_eq!(status_of(&out), "408", "{out}");
    srv.stop().await;
}

/// The built binary with a small open-file limit: HTTP connections are held
/// to a share of it, so a flood of them leaves descriptors for calls.
#[tokio::test]
async fn an_http_flood_under_a_small_file_limit_leaves_room_for_calls() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    const NOFILE: u64 = 96;
    let (_dir, config) = server::write_config(
        &yaml("header_timeout: 60s")
            .replace("tokens: [ { name: ops, token_env: CG_HARD_TOKEN } ], ", ""),
        &[],
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    // SAFETY: setrlimit(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: NOFILE as libc::rlim_t,
                rlim_max: NOFILE as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn callguard serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    let (http, agi) = (addr("http"), addr("agi"));
    // More connections than the process has descriptors.
    let mut conns = Vec::new();
    for _ in 0..NOFILE + 20 {
        match TcpStream::connect(http).await {
            Ok(s) => conns.push(s),
            Err(_) => break,
        }
    }
    let checks = conns
        .iter_mut()
        .map(|s| closed_within(s, Duration::from_secs(3)));
    let closed = futures::future::join_all(checks).await;
    let refused = closed.iter().filter(|c| **c).count();
    let held = closed.len() - refused;
    assert!(refused > 0, "no HTTP connection was refused");
    assert!(
        held > 0 && held as u64 <= NOFILE / 8,
        "{held} HTTP connections held under a limit of {NOFILE} files"
    );
    // The flood is still held open; a call is screened all the same.
    assert_screened(agi).await;
    assert_screened(agi).await;
    drop(conns);
    let _ = child.kill();
    let _ = child.wait();
}
