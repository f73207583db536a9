//! `callguard-loadgen` against the real server (in-process, loopback): a few hundred calls
//! per protocol, all answered without error. No timing assertions: figures belong to
//! `bench/compare.sh`.

#[path = "../../tests/support/server.rs"]
mod server;

use std::net::SocketAddr;

async fn loadgen(pbx: &str, target: SocketAddr, extra: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_callguard-loadgen"))
        .args(["--pbx", pbx, "--target", &target.to_string(), "--json"])
        .args(extra)
        .output()
        .await
        .expect("run callguard-loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{pbx}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_places_calls_without_errors_on_both_protocols() {
    let mut srv = server::start(server::SCREEN_YAML).await;
    for (pbx, target) in [("agi", srv.agi()), ("esl", srv.esl())] {
        // Closed loop, then open loop (bounded by --calls).
        let r = loadgen(pbx, target, &["--calls", "300", "--concurrency", "20"]).await;
        assert_eq!(r["calls"], 300, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["connect_to_verdict"]["p50_ms"].as_f64().is_some(), "{r}");
        let r = loadgen(pbx, target, &["--calls", "200", "--rate", "400"]).await;
        assert_eq!(r["calls"], 200, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
    }
    srv.stop().await;
}
