//! The chaos harness's HTTP part (issue 19): admin clients of the shipped
//! `callguard serve` that close, reset or stall mid-request and mid-response
//! of its largest answers (the call log, the report, every list's export),
//! while calls keep being screened.
//!
//! After each close and reset the process is alive and the next call on each
//! PBX is screened by its rule; the stalls are all held at once while calls
//! are placed and `/api/v1/status` is read; once they let go, the service is
//! back to the descriptors it had.

use callguard_sim::asterisk;
#[path = "support/chaos.rs"]
mod chaos;
use callguard_sim::freeswitch;
#[path = "support/relay.rs"]
mod relay;
#[path = "support/server.rs"]
mod server;
#[path = "support/shipped.rs"]
mod shipped;

use std::net::SocketAddr;
use std::time::Duration;

use callguard::action::Pbx;
use chaos::Scenario;
use futures::StreamExt;
use relay::Fault;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the client goes away.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// After this many bytes of the request.
    Request(usize),
    /// After the whole request and this many reads of the answer (0: none).
    Response(usize),
}

/// The raw requests: the largest answers the service gives, and a POST with a body.
async fn requests(http: SocketAddr) -> Vec<(String, Vec<u8>)> {
    let lists: serde_json::Value = reqwest::get(format!("http://{http}/api/v1/lists"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut paths = vec![
        "/api/v1/calls?limit=10000".to_string(),
        "/api/v1/calls/stats".into(),
        "/api/v1/report?format=text".into(),
        "/api/v1/report?format=html".into(),
        "/metrics".into(),
    ];
    for l in lists["lists"].as_array().expect("lists") {
        let name = l["name"].as_str().expect("a list name");
        paths.push(format!("/api/v1/lists/{name}?format=csv"));
    }
    let head = |method: &str, path: &str, extra: &str| {
        format!("{method} {path} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n{extra}\r\n")
    };
    let mut out: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|p| (format!("GET {p}"), head("GET", p, "").into_bytes()))
        .collect();
    let body = r#"{"caller":"+15551234567","trunk":"support"}"#;
    let post = head(
        "POST",
        "/api/v1/test",
        &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ),
    ) + body;
    out.push(("POST /api/v1/test".into(), post.into_bytes()));
    out
}

/// Plays one client up to `point`, then applies `fault`; a stalled client
/// is returned still connected.
async fn client(http: SocketAddr, req: &[u8], point: Point, fault: Fault) -> Option<TcpStream> {
    let mut s = TcpStream::connect(http).await.expect("connect http");
    match point {
        Point::Request(n) => s.write_all(&req[..n]).await.unwrap(),
        Point::Response(reads) => {
            s.write_all(req).await.unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            for _ in 0..reads {
                let r = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await;
                if !matches!(r, Ok(Ok(n)) if n > 0) {
                    break;
                }
            }
        }
    }
    match fault {
        Fault::Close => None,
        Fault::Reset => {
            relay::linger_zero(&s);
            None
        }
        Fault::Stall => Some(s),
    }
}

fn points(req: &[u8]) -> Vec<Point> {
    let body = req
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .filter(|&p| p < req.len());
    let mut at = vec![1, req.len() / 2, req.len() - 1];
    at.extend(body.map(|b| b + (req.len() - b) / 2));
    let mut out: Vec<Point> = at.into_iter().map(Point::Request).collect();
    out.extend([0, 1, 4].map(Point::Response));
    out
}

/// The first plain action on each PBX: the probe calls.
fn probes(shipped: &shipped::Shipped) -> Vec<Scenario> {
    let first = shipped.actions[0].0.clone();
    chaos::scenarios(shipped)
        .into_iter()
        .filter(|s| s.action == first && s.variant == chaos::Variant::Plain)
        .collect()
}

fn addr(shipped: &shipped::Shipped, pbx: Pbx) -> SocketAddr {
    match pbx {
        Pbx::Asterisk => shipped.proc.agi.unwrap(),
        Pbx::FreeSwitch => shipped.proc.esl.unwrap(),
    }
}

/// Each probe call is screened as its reference was.
async fn probe(shipped: &shipped::Shipped, probes: &[(Scenario, chaos::Seen)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (s, reference) in probes {
        let seen = chaos::play(s, addr(shipped, s.pbx)).await;
        if let Err(e) = chaos::screened(s, &seen, reference) {
            problems.push(e);
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_http_client_stops_calls_or_the_shipped_service() {
    let mut shipped = shipped::spawn(None);
    let http = shipped.proc.http.unwrap();
    let mut references = Vec::new();
    for s in probes(&shipped) {
        let seen = chaos::reference(&s, addr(&shipped, s.pbx)).await;
        references.push((s, seen));
    }
    // A call log large enough that its answer outlasts the socket buffers.
    let fill: Vec<_> = (0..2_000)
        .map(|i| {
            let (s, _) = &references[i % references.len()];
            let a = addr(&shipped, s.pbx);
            async move { chaos::play(s, a).await }
        })
        .collect();
    futures::stream::iter(fill)
        .buffer_unordered(8)
        .for_each(|_| async {})
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds = shipped.open_fds();

    // The premise of a cut mid-response: the call log's answer is larger
    // than what loopback socket buffers take in before the client reads.
    let calls = reqwest::get(format!("http://{http}/api/v1/calls?limit=10000"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        calls.len() > 512 * 1024,
        "calls answer: {} bytes",
        calls.len()
    );
    let reqs = requests(http).await;
    let mut problems = Vec::new();
    let mut stalls = Vec::new();
    let mut steps = 0;
    for (name, req) in &reqs {
        for point in points(req) {
            for fault in Fault::ALL {
                steps += 1;
                let held = client(http, req, point, fault).await;
                shipped.assert_alive(&format!("{name} {point:?} {fault:?}"));
                if let Some(s) = held {
                    stalls.push(s);
                    continue;
                }
                for e in probe(&shipped, &references).await {
                    problems.push(format!("after {name} {point:?} {fault:?}: {e}"));
                }
            }
        }
    }
    println!(
        "chaos_http: {steps} cut points over {} requests ({} stalls held at once)",
        reqs.len(),
        stalls.len()
    );
    // Every stalled client still connected: calls and status are answered.
    for e in probe(&shipped, &references).await {
        problems.push(format!("while clients stall: {e}"));
    }
    let status = tokio::time::timeout(
        Duration::from_secs(10),
        reqwest::get(format!("http://{http}/api/v1/status")),
    )
    .await;
    assert!(
        matches!(&status, Ok(Ok(r)) if r.status().is_success()),
        "status while clients stall: {status:?}"
    );
    drop(stalls);
    shipped.assert_alive("the stalls");
    // The service lets go of every client once they are gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while shipped.open_fds() > fds + 8 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = shipped.open_fds();
    assert!(after <= fds + 8, "descriptors: {fds} before, {after} after");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
    assert!(shipped.panics().is_empty(), "{:?}", shipped.panics());
}
