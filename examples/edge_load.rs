//! The SIP edge's load driver for `bench/edge.sh`: `CONC` keep-alive HTTP/1.1
//! connections, each posting `POST /api/v1/edge/decide` in a closed loop
//! until `N` decisions are answered in all, as a Kamailio worker reuses its
//! connection. Prints `decisions=N seconds=S errors=E`.
//!
//!   cargo run --release --example edge_load -- 127.0.0.1:9464 20000 8

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS provider (as in the tests): install
    // ring's, or building a client panics, even for plain http://.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:9464".into());
    let total: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let conc: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(8);
    let url = format!("http://{addr}/api/v1/edge/decide");
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        // One connection per worker, kept alive across its requests.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let (url, next, errors) = (url.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                // Callers across the bench's blacklist and outside it.
                let body = format!(
                    r#"{{"call_id":"bench-{i}","caller":"+1555{:07}","caller_name":"Bench","callee":"+18005550100","source":"127.0.0.1"}}"#,
                    (i * 7919) % 200_000
                );
                let ok = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false);
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "decisions={total} seconds={:.3} errors={}",
        started.elapsed().as_secs_f64(),
        errors.load(Ordering::Relaxed)
    );
}
