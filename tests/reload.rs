//! Hot reload under load: a list file edited on disk while calls flow
//! through the FastAGI path. Every call is decided by a whole rule set (old or
//! new), the next calls after a save see it, and a broken edit is refused.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use asterisk::AsteriskSim;

// A generous decision deadline: this test checks which rules decide each
// call while the list changes, not the clock, and the machine running it may
// be loaded (a starved runtime is a fail-open timeout, not a half-loaded set).
const YAML: &str = r#"
agi: { decide_timeout: 5s }
trunks:
  support:
    lists:
      - { path: lists/spam.csv, as: blacklist, action: reject }
server: { reload_debounce: 50ms }
"#;

fn spam_list(generation: usize) -> String {
    // Generation N blocks +1555000N and a fixed range, so both old and new
    // sets agree on the range: any call in the range must always be blocked.
    format!(
        "rule_name,pattern,match_type,action,enabled\nrange,+1555999*,starts_with,,true\nspam-{generation},+1555000{generation:04},exact,,true\n"
    )
}

/// Writes like an editor or our own API: a temp file renamed over the list.
fn save(dir: &Path, body: &str) {
    let p = dir.join("lists/spam.csv");
    let tmp = dir.join("lists/.spam.csv.tmp");
    std::fs::write(&tmp, body).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
}

async fn verdict(addr: std::net::SocketAddr, caller: &str) -> (Option<String>, Option<String>) {
    let r = AsteriskSim::new().callerid(caller).run(addr).await;
    (
        r.variables.get("CALLGUARD_VERDICT").cloned(),
        r.variables.get("CALLGUARD_ERROR").cloned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_under_load_are_seen_at_once_and_never_half_loaded() {
    let mut srv = server::start_with(YAML, &[("lists/spam.csv", &spam_list(0))]).await;
    let addr = srv.agi();
    let dir = srv.dir.path().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));

    // The load: 40 workers placing calls until told to stop.
    let mut workers = Vec::new();
    for w in 0..40 {
        let (stop, calls, failures) = (stop.clone(), calls.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Half the calls are in the range every generation blocks.
                let (caller, expect_block) = if i.is_multiple_of(2) {
                    (format!("+1555999{:04}", (w * 100 + i) % 10_000), true)
                } else {
                    (format!("+1444{:07}", w * 100_000 + i), false)
                };
                let (v, err) = verdict(addr, &caller).await;
                let ok = err.is_none()
                    && v.as_deref() == Some(if expect_block { "block" } else { "allow" });
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("wrong decision for {caller}: {v:?} {err:?}");
                }
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // 60 saves; after each, the new number is blocked on the next calls.
    let mut worst = Duration::ZERO;
    for generation in 1..=60 {
        save(&dir, &spam_list(generation));
        let saved = Instant::now();
        let number = format!("+1555000{generation:04}");
        loop {
            if verdict(addr, &number).await.0.as_deref() == Some("block") {
                break;
            }
            assert!(
                saved.elapsed() < Duration::from_secs(10),
                "generation {generation} never applied"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst = worst.max(saved.elapsed());
        // The previous generation's number is no longer blocked.
        let previous = format!("+1555000{:04}", generation - 1);
        assert_eq!(verdict(addr, &previous).await.0.as_deref(), Some("allow"));
    }
    // Keep the load running until at least 10,000 calls were made.
    while calls.load(Ordering::Relaxed) < 10_000 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    eprintln!(
        "{} calls during 60 reloads; slowest save-to-effect {worst:?}",
        calls.load(Ordering::Relaxed)
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "calls decided wrongly during reloads"
    );

    // A broken edit: refused, the old rules keep deciding, status says why.
    let http = srv.http();
    let status_before: serde_json::Value = reqwest::get(format!("http://{http}/api/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    save(
        &dir,
        "rule_name,pattern,match_type,action,enabled\nrange,+1555999*,starts_with,,true\nbroken,^(+1,regex,,true\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let s: serde_json::Value = reqwest::get(format!("http://{http}/api/v1/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !s["last_error"].is_null() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the broken edit was never reported: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let problems = status["last_error"]["problems"].to_string();
    assert!(
        problems.contains("spam.csv:3"),
        "status must name the file and line: {problems}"
    );
    assert_eq!(
        status["version"], status_before["version"],
        "nothing new was installed"
    );
    assert_eq!(
        verdict(addr, "+15550000060").await.0.as_deref(),
        Some("block"),
        "old rules still decide"
    );
    let m = srv.running().state.metrics.render();
    assert!(
        m.contains("callguard_config_reloads_total{result=\"failure\"}"),
        "{m}"
    );

    // Fixing the file clears the error.
    save(&dir, &spam_list(61));
    let deadline = Instant::now() + Duration::from_secs(10);
    while verdict(addr, "+15550000061").await.0.as_deref() != Some("block") {
        assert!(Instant::now() < deadline, "the fix was never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn sighup_style_and_api_reload() {
    let mut srv = server::start_with(YAML, &[("lists/spam.csv", &spam_list(1))]).await;
    let http = srv.http();
    let client = reqwest::Client::new();
    let r: serde_json::Value = client
        .post(format!("http://{http}/api/v1/reload"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["version"].as_u64().unwrap() >= 2, "{r}");
    // A config that does not validate: 422 with located details.
    std::fs::write(
        &srv.config,
        "trunks:\n  support:\n    blacklist:\n      - { name: X, pattern: '^(+1', match: regex }\n",
    )
    .unwrap();
    let resp = client
        .post(format!("http://{http}/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 422);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["details"][0]
            .as_str()
            .unwrap()
            .contains("callguard.yaml:4:"),
        "{body}"
    );
    assert_eq!(
        verdict(srv.agi(), "+15550000001").await.0.as_deref(),
        Some("block")
    );
    srv.stop().await;
}

/// Each source keeps its own status: a git source's refusal is not cleared
/// by a successful reload of the files, only by that source succeeding.
#[tokio::test]
async fn a_source_error_stays_until_that_source_succeeds() {
    use callguard::reload::Trigger;
    let mut srv = server::start_with(YAML, &[("lists/spam.csv", &spam_list(1))]).await;
    let reloader = srv.running().reloader.clone();
    reloader.record_refusal(
        "git https://example.invalid/rules.git".into(),
        vec!["rules/vip.csv:3: bad pattern".into()],
    );
    reloader.reload(Trigger::Signal).await.unwrap();
    let status = reloader.status();
    assert!(status["files"].last_ok.is_some());
    assert!(status["files"].last_error.is_none());
    let git = &status["git https://example.invalid/rules.git"];
    assert!(git.last_error.is_some(), "{status:?}");
    let e = reloader.last_error().expect("the git error is still there");
    assert_eq!(e.problems, ["rules/vip.csv:3: bad pattern"]);
    // The same through the API.
    let s: serde_json::Value = reqwest::get(format!("http://{}/api/v1/status", srv.http()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["last_error"]["problems"][0],
        "rules/vip.csv:3: bad pattern"
    );
    assert!(s["sources"]["files"]["last_error"].is_null(), "{s}");
    srv.stop().await;
}
