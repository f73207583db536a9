//! Issue 19 "Survival", item 3: admin work never competes with calls. The
//! pattern tester runs patterns nobody vetted; a pathological one must not
//! delay a call's decision, must stop at its budget, and must stop when its
//! client goes away. Against the real binary (its own multi-threaded
//! runtime) over loopback.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use asterisk::AsteriskSim;
use serde_json::{Value, json};
use server::SCREEN_YAML;
use tokio::io::AsyncWriteExt;

/// Exponential backtracking through a back-reference (fancy-regex): each
/// evaluation runs into the backtracking limit.
fn pathological() -> Value {
    json!({
        "pattern": r"^(\d+)*\1x$",
        "match": "regex",
        "numbers": vec!["1".repeat(40); 1000],
    })
}

fn cheap() -> Value {
    json!({ "pattern": "+1555*", "numbers": ["+15551234567"] })
}

/// The answer to a tester request: status, `Retry-After`, body.
async fn post(
    client: reqwest::Client,
    http: std::net::SocketAddr,
    body: Value,
) -> (u16, Option<String>, Value) {
    let r = client
        .post(format!("http://{http}/api/v1/test"))
        .json(&body)
        .send()
        .await
        .expect("tester request");
    let code = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (code, retry, r.json().await.expect("a JSON answer"))
}

fn client() -> reqwest::Client {
    // Generous: only for the test to terminate.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A blacklisted and an allowed caller, each decided by its rule.
async fn place_calls(agi: std::net::SocketAddr) {
    let r = AsteriskSim::new().callerid("+15550000001").run(agi).await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    assert_eq!(r.variables.get("CALLGUARD_ERROR"), None, "{:?}", r.commands);
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    assert_eq!(r.variables["CALLGUARD_RULE"], "Busy");
    assert_eq!(r.commands[1..], ["EXEC Busy 5", "EXEC Hangup 17"]);
    let r = AsteriskSim::new().callerid("+15557654321").run(agi).await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    assert_eq!(r.variables.get("CALLGUARD_ERROR"), None, "{:?}", r.commands);
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    assert_eq!(r.variables["CALLGUARD_LIST"], "default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_are_decided_by_their_rules_while_pathological_tests_run() {
    // A budget longer than the simulator waits for a call (10 s): were the
    // tester's work on the threads that serve calls, calls would time out.
    let yaml = format!("{SCREEN_YAML}http: {{ tester_budget: 12s }}\n");
    let srv = server::spawn_binary(&yaml, &[]);
    let (http, agi) = (srv.http.unwrap(), srv.agi.unwrap());
    let testers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(post(client(), http, pathological())))
        .collect();
    // Let them reach the service before the calls.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut meanwhile = 0;
    for round in 0..1000 {
        let in_flight = testers.iter().any(|t| !t.is_finished());
        if !in_flight && round >= 3 {
            break;
        }
        place_calls(agi).await;
        let status = client()
            .get(format!("http://{http}/api/v1/status"))
            .send()
            .await
            .expect("status answers");
        assert_eq!(status.status().as_u16(), 200);
        let v: Value = status.json().await.unwrap();
        assert!(v["version"].is_u64(), "{v}");
        // Still in flight after the calls: they were placed meanwhile.
        if testers.iter().any(|t| !t.is_finished()) {
            meanwhile += 1;
        }
    }
    assert!(
        meanwhile >= 2,
        "the calls must be placed while the tester requests run ({meanwhile} rounds were)"
    );
    let mut exceeded = 0;
    for t in testers {
        let (code, retry, v) = t.await.unwrap();
        match code {
            422 => {
                exceeded += 1;
                assert!(
                    v["error"].as_str().unwrap().contains("budget exceeded"),
                    "{v}"
                );
                assert_eq!(v["budget_exceeded"], true, "{v}");
                assert!(
                    v["details"][0].as_str().unwrap().contains("time budget"),
                    "{v}"
                );
                // What was done: fewer than all the numbers, each stopped by
                // the backtracking limit.
                let results = v["results"].as_array().unwrap();
                assert!(results.len() < 1000, "{}", results.len());
                assert!(results.iter().all(|r| r["error"].is_string()), "{v}");
            }
            503 => {
                assert!(retry.is_some(), "503 says when to retry: {v}");
                assert!(
                    v["error"].as_str().unwrap().contains("concurrency limit"),
                    "{v}"
                );
            }
            other => panic!("tester answered {other}: {v}"),
        }
    }
    assert!(
        exceeded >= 1,
        "at least one tester request ran into its budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_disconnects_frees_its_slot() {
    // A budget far longer than the test: only cancellation can free a slot.
    let yaml = format!(
        "{SCREEN_YAML}http: {{ tester_budget: 300s }}\npolicy: {{ regex_backtrack_limit: 100000 }}\n"
    );
    let srv = server::spawn_binary(&yaml, &[]);
    let http = srv.http.unwrap();
    // The service's pool: half the cores, at least one (admin_pool::default_slots).
    let slots = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
    let body = serde_json::to_vec(&pathological()).unwrap();
    let mut held = Vec::new();
    for _ in 0..slots {
        let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
        let head = format!(
            "POST /api/v1/test HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&body).await.unwrap();
        held.push(s);
    }
    // Every slot is taken: a cheap request waits its moment and is refused.
    let mut full = false;
    for _ in 0..50 {
        let (code, retry, v) = post(client(), http, cheap()).await;
        if code == 503 {
            assert!(retry.is_some(), "{v}");
            full = true;
            break;
        }
        assert_eq!(code, 200, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(full, "the held requests must fill the pool");
    // The clients go away; their jobs stop and the slots serve the next request.
    drop(held);
    let mut served = None;
    for _ in 0..20 {
        let (code, _, v) = post(client(), http, cheap()).await;
        if code == 200 {
            served = Some(v);
            break;
        }
        assert_eq!(code, 503, "{v}");
    }
    let v = served.expect("a following request is served once the clients are gone");
    assert_eq!(v["results"][0]["matched"], true, "{v}");
}
