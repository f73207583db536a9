//! Reputation lookups against a local provider the test starts and makes
//! slow, failing, flapping and malformed, over real FastAGI with the
//! Asterisk simulator: a late answer never delays nor breaks the call and
//! fills the cache for the next one; an open breaker sends no request; the
//! cache survives a restart. No timed assertions: conditions are awaited.

use callguard_sim::asterisk::AsteriskSim;
#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

const OK: u8 = 0;
const SLOW: u8 = 1;
const FAILING: u8 = 2;
const MALFORMED: u8 = 3;
const FLAPPING: u8 = 4;

/// The provider: answers `{score, name, category}` for every number,
/// after 2 s when slow, 500 when failing, broken JSON when malformed, and
/// alternately OK and 500 when flapping. Counts the requests it received.
struct Provider {
    mode: AtomicU8,
    requests: AtomicUsize,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    async fn start() -> Arc<Provider> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(std::sync::OnceLock::<Arc<Provider>>::new());
        let s2 = shared.clone();
        let app = axum::Router::new()
            .route("/lookup/{number}", axum::routing::get(answer))
            .with_state(s2);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let p = Arc::new(Provider {
            mode: AtomicU8::new(OK),
            requests: AtomicUsize::new(0),
            addr,
            task,
        });
        let _ = shared.set(p.clone());
        p
    }
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
    fn stop(&self) {
        self.task.abort();
    }
}

async fn answer(
    State(p): State<Arc<std::sync::OnceLock<Arc<Provider>>>>,
    Path(number): Path<String>,
) -> Response {
    let p = p.get().expect("provider set").clone();
    let n = p.requests.fetch_add(1, Ordering::SeqCst);
    let good = || {
        axum::Json(serde_json::json!({
            "data": { "risk": 9.2, "cnam": "SPAM LIKELY", "type": "Fraud", "number": number }
        }))
        .into_response()
    };
    match p.mode.load(Ordering::SeqCst) {
        SLOW => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            good()
        }
        FAILING => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        MALFORMED => (
            [("content-type", "application/json")],
            "{\"data\": {\"risk\": 9.",
        )
            .into_response(),
        FLAPPING if n % 2 == 1 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        _ => good(),
    }
}

fn yaml(p: &Provider, failures: u32) -> String {
    format!(
        r#"
default_trunk: support
reputation:
  budget: 30ms
  set_caller_name: true
  providers:
    - name: rep
      url: "http://{addr}/lookup/{{e164}}"
      headers: {{ X-Api-Key: "${{CALLGUARD_TEST_REP_KEY}}" }}
      score: /data/risk
      score_max: 10
      caller_name: /data/cnam
      category: /data/type
      timeout: 10s
      breaker_failures: {failures}
      breaker_cool_down: 1h
trunks:
  support:
    blacklist:
      - {{ name: Bad-Rep, reputation: {{ above: 80 }}, action: reject }}
      - {{ name: Fraud, category: [fraud], pattern: "+1999*", action: reject }}
      - {{ name: Busy, pattern: "+15550000001", action: reject }}
"#,
        addr = p.addr
    )
}

async fn call(agi: SocketAddr, caller: &str) -> std::collections::HashMap<String, String> {
    let r = AsteriskSim::new().callerid(caller).run(agi).await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    assert!(
        !r.variables.contains_key("CALLGUARD_ERROR"),
        "no CALLGUARD_ERROR: {:?}",
        r.variables
    );
    r.variables
}

/// Waits (up to a generous deadline) until `f` holds.
async fn until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Rows of the cache table for `number` in the log's SQLite file.
fn stored(db: &std::path::Path, number: &str) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(db) else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM reputation_cache WHERE number = ?1 AND score IS NOT NULL",
        [number],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn set_key() {
    // SAFETY: set before any thread of this test reads the environment;
    // every test sets the same value.
    unsafe { std::env::set_var("CALLGUARD_TEST_REP_KEY", "k") };
}

#[tokio::test]
async fn a_late_answer_lets_other_rules_decide_and_serves_the_next_call() {
    set_key();
    let p = Provider::start().await;
    let mut srv = server::start(&yaml(&p, 5)).await;
    p.set(SLOW);
    // Decided by the other rules: no rule matched, the lookup was late.
    let v = call(srv.agi(), "+15551230001").await;
    assert_eq!(v["CALLGUARD_VERDICT"], "allow", "{v:?}");
    assert!(v["CALLGUARD_REASON"].contains("reputation: late"), "{v:?}");
    // Another rule still decides while the provider is slow.
    let v = call(srv.agi(), "+15550000001").await;
    assert_eq!(v["CALLGUARD_RULE"], "Busy", "{v:?}");
    // The late answer arrives in the background and is cached (and stored).
    let db = srv.dir.path().join("calls.db");
    until("the late answer is stored", async || {
        stored(&db, "+15551230001") == 1
    })
    .await;
    let before = p.requests();
    let v = call(srv.agi(), "+15551230001").await;
    assert_eq!(v["CALLGUARD_RULE"], "Bad-Rep", "{v:?}");
    assert_eq!(v["CALLGUARD_VERDICT"], "block");
    assert!(
        v["CALLGUARD_REASON"].contains("reputation: cached 92 \"SPAM LIKELY\" fraud (rep,"),
        "{v:?}"
    );
    assert_eq!(p.requests(), before, "a cache hit asks nobody");
    // The looked-up name is set on the channel in the same MSet.
    assert_eq!(v["CALLERID(name)"], "SPAM LIKELY", "{v:?}");
    // The tester shows what the lookup returned and decides with it.
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/test", srv.http()))
        .json(&serde_json::json!({ "caller": "+15551230001" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(t["rule"], "Bad-Rep", "{t}");
    assert_eq!(t["reputation"]["how"], "cached", "{t}");
    assert_eq!(t["reputation"]["score"], 92, "{t}");
    assert_eq!(t["reputation"]["name"], "SPAM LIKELY", "{t}");
    assert!(t["reputation"]["age_ms"].is_u64(), "{t}");
    let late = server::scrape_sum(
        srv.http(),
        "callguard_reputation_lookups_total",
        &["provider=\"rep\"", "result=\"late\""],
    )
    .await;
    assert!(late >= 1.0, "late lookups counted: {late}");
    srv.stop().await;
    p.stop();
}

#[tokio::test]
async fn an_open_breaker_sends_no_request() {
    set_key();
    let p = Provider::start().await;
    let mut srv = server::start(&yaml(&p, 2)).await;
    p.set(FAILING);
    for n in ["+15552000001", "+15552000002"] {
        let v = call(srv.agi(), n).await;
        assert_eq!(v["CALLGUARD_VERDICT"], "allow", "{v:?}");
    }
    let http = srv.http();
    until("the breaker opens", async || {
        server::scrape_sum(
            http,
            "callguard_reputation_breaker_state",
            &["provider=\"rep\""],
        )
        .await
            == 1.0
    })
    .await;
    let seen = p.requests();
    assert_eq!(seen, 2);
    // Even a provider that is healthy again gets nothing until the cool-down.
    p.set(OK);
    for n in ["+15552000003", "+15552000004", "+15552000005"] {
        let v = call(srv.agi(), n).await;
        assert_eq!(v["CALLGUARD_VERDICT"], "allow", "{v:?}");
        assert!(v["CALLGUARD_REASON"].contains("reputation: none"), "{v:?}");
    }
    assert_eq!(p.requests(), seen, "no request while the breaker is open");
    let skipped = server::scrape_sum(
        http,
        "callguard_reputation_lookups_total",
        &["result=\"breaker_open\""],
    )
    .await;
    assert_eq!(skipped, 3.0);
    srv.stop().await;
    p.stop();
}

#[tokio::test]
async fn malformed_and_flapping_answers_never_break_a_call() {
    set_key();
    let p = Provider::start().await;
    let mut srv = server::start(&yaml(&p, 100)).await;
    p.set(MALFORMED);
    let v = call(srv.agi(), "+15553000001").await;
    assert_eq!(v["CALLGUARD_VERDICT"], "allow", "{v:?}");
    let http = srv.http();
    until("the malformed answer counts as an error", async || {
        server::scrape_sum(
            http,
            "callguard_reputation_lookups_total",
            &["result=\"error\""],
        )
        .await
            >= 1.0
    })
    .await;
    // Flapping: every other request fails; whatever the provider does, each
    // call is decided, and a caller in the +1999 range with a fraud category
    // is blocked once an answer is in.
    p.set(FLAPPING);
    let db = srv.dir.path().join("calls.db");
    let mut blocked = false;
    let errors = async || {
        server::scrape_sum(
            http,
            "callguard_reputation_lookups_total",
            &["result=\"error\""],
        )
        .await
    };
    for _ in 0..6 {
        let before = errors().await;
        let v = call(srv.agi(), "+19995550001").await;
        if v["CALLGUARD_VERDICT"] == "block" {
            assert!(
                v["CALLGUARD_RULE"] == "Bad-Rep" || v["CALLGUARD_RULE"] == "Fraud",
                "{v:?}"
            );
            blocked = true;
            break;
        }
        // This call's request has ended one way or the other.
        until("an answer or a failure", async || {
            stored(&db, "+19995550001") == 1 || errors().await > before
        })
        .await;
    }
    assert!(blocked, "a flapping provider's good answers are used");
    srv.stop().await;
    p.stop();
}

#[tokio::test]
async fn the_cache_survives_a_restart() {
    set_key();
    let p = Provider::start().await;
    let mut srv = server::start(&yaml(&p, 5)).await;
    // A fast provider answers within the budget (or just after it: then the
    // answer is stored in the background all the same).
    let v = call(srv.agi(), "+15554000001").await;
    assert!(!v["CALLGUARD_VERDICT"].is_empty());
    let db = srv.dir.path().join("calls.db");
    until("the answer is stored", async || {
        stored(&db, "+15554000001") == 1
    })
    .await;
    srv.stop().await;
    p.stop();
    let asked = p.requests();
    // The provider is gone; the restarted service answers from its store.
    srv.running = Some(
        callguard::app::start(&srv.config)
            .await
            .unwrap_or_else(|e| panic!("restart: {e}")),
    );
    let v = call(srv.agi(), "+15554000001").await;
    assert_eq!(v["CALLGUARD_RULE"], "Bad-Rep", "{v:?}");
    assert!(
        v["CALLGUARD_REASON"].contains("reputation: cached 92"),
        "{v:?}"
    );
    assert_eq!(p.requests(), asked);
    srv.stop().await;
}

#[test]
fn rule_conditions_are_checked_at_load() {
    use callguard::config::load_str;
    use callguard::policy::RuleSet;
    let yaml = "trunks:\n  t:\n    blacklist:\n      - { name: X, reputation: { above: 180 } }\n      - { name: Y, category: [fraud] }\n      - { name: Z, caller_name: { pattern: '(', match: regex } }\n";
    let cfg = load_str(yaml, std::path::Path::new("r.yaml")).unwrap();
    let err = RuleSet::compile(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("r.yaml:4:") && err.contains("rule X: reputation: give `above:`"),
        "{err}"
    );
    assert!(
        err.contains("rule Y: category: needs `reputation.providers`"),
        "{err}"
    );
    assert!(err.contains("rule Z: caller_name pattern"), "{err}");
}

#[tokio::test]
async fn caller_name_rules_use_the_pbx_name_without_providers() {
    let yaml = r#"
default_trunk: support
trunks:
  support:
    blacklist:
      - { name: Spam-Name, caller_name: { pattern: "*spam*" }, action: reject }
"#;
    let mut srv = server::start(yaml).await;
    let r = AsteriskSim::new()
        .callerid("+15555000001")
        .calleridname("Likely SPAM")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_RULE"], "Spam-Name", "{r:?}");
    assert!(
        r.variables["CALLGUARD_REASON"].contains("caller_name wildcard *spam*"),
        "{:?}",
        r.variables
    );
    let r = AsteriskSim::new()
        .callerid("+15555000001")
        .calleridname("Alice")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    srv.stop().await;
}

#[tokio::test]
async fn a_local_file_provider_answers_at_once() {
    let yaml = r#"
default_trunk: support
reputation:
  set_caller_name: true
  providers:
    - { name: local, file: rep.csv }
trunks:
  support:
    blacklist:
      - { name: Telemarketing, category: [telemarketing], action: reject }
"#;
    let csv = "number,score,name,category\n+15556000001,40,ACME SALES,Telemarketing\n15556000002,5,Alice,\n";
    let mut srv = server::start_with(yaml, &[("rep.csv", csv)]).await;
    let v = call(srv.agi(), "+15556000001").await;
    assert_eq!(v["CALLGUARD_RULE"], "Telemarketing", "{v:?}");
    assert!(
        v["CALLGUARD_REASON"].contains("reputation: live 40 \"ACME SALES\" telemarketing (local,"),
        "{v:?}"
    );
    // Found without its "+"; no category: allowed.
    let v = call(srv.agi(), "+15556000002").await;
    assert_eq!(v["CALLGUARD_VERDICT"], "allow", "{v:?}");
    assert!(
        v["CALLGUARD_REASON"].contains("reputation: live 5 \"Alice\""),
        "{v:?}"
    );
    let v = call(srv.agi(), "+15556000003").await;
    assert!(v["CALLGUARD_REASON"].contains("reputation: none"), "{v:?}");
    assert!(!v.contains_key("CALLERID(name)"), "no name, nothing set");
    // FreeSWITCH: the name in the same multiset as the verdict.
    let r = callguard_sim::freeswitch::SimConfig {
        caller_number: "+15556000002".into(),
        caller_name: "PBX NAME".into(),
        ..Default::default()
    }
    .run(srv.esl())
    .await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    assert_eq!(r.variable("callguard_verdict"), Some("allow"));
    assert_eq!(
        r.variable("effective_caller_id_name"),
        Some("Alice"),
        "{r:?}"
    );
    srv.stop().await;
}

#[test]
fn cli_test_takes_a_score_a_category_and_a_caller_name() {
    let yaml = r#"
default_trunk: support
reputation:
  providers:
    - { name: local, file: rep.csv }
trunks:
  support:
    blacklist:
      - { name: Bad-Rep, reputation: { above: 80 } }
      - { name: Fraud, category: [fraud] }
      - { name: Spam-Name, caller_name: { pattern: "*spam*" } }
"#;
    let (dir, path) = server::write_config(yaml, &[("rep.csv", "+15550000009,1,,\n")]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
            .arg("test")
            .arg("--config")
            .arg(&path)
            .arg("--json")
            .args(args)
            .arg("+15551234567")
            .output()
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        v["rule"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(run(&[]), "");
    assert_eq!(run(&["--score", "81"]), "Bad-Rep");
    assert_eq!(run(&["--score", "80"]), "");
    assert_eq!(run(&["--category", "Fraud"]), "Fraud");
    assert_eq!(run(&["--caller-name", "SPAM RISK"]), "Spam-Name");
    drop(dir);
}

#[tokio::test]
async fn an_expired_answer_is_served_and_refreshed_in_the_background() {
    set_key();
    let p = Provider::start().await;
    // Expired by the next call; a budget the provider meets even on a busy machine.
    let yaml = yaml(&p, 5)
        .replace("timeout: 10s", "timeout: 10s\n      ttl: 1ms")
        .replace("budget: 30ms", "budget: 5s")
        + "agi: { decide_timeout: 20s }\n";
    let mut srv = server::start(&yaml).await;
    let v = call(srv.agi(), "+15557000001").await;
    assert!(
        v["CALLGUARD_REASON"].contains("reputation: live 92"),
        "{v:?}"
    );
    assert_eq!(p.requests(), 1);
    // Stale: served at once, and refreshed by a request in the background.
    let v = call(srv.agi(), "+15557000001").await;
    assert_eq!(v["CALLGUARD_RULE"], "Bad-Rep", "{v:?}");
    assert!(
        v["CALLGUARD_REASON"].contains("reputation: cached 92")
            && v["CALLGUARD_REASON"].contains("refreshing"),
        "{v:?}"
    );
    until("the refresh reaches the provider", async || {
        p.requests() == 2
    })
    .await;
    srv.stop().await;
    p.stop();
}
