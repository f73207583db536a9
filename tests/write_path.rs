//! Issue 23.6, the write path at scale: one entry added through the API to a
//! 100,000-entry list is one reload (the write path's own; the watcher, which
//! sees the written file, must not load it a second time), and the very next
//! call is decided by the new rules. The real service on loopback, a real
//! list file, real FastAGI calls.

use std::time::Duration;

use callguard_sim::asterisk::AsteriskSim;
use reqwest::StatusCode;
use serde_json::json;

#[path = "support/server.rs"]
mod server;

const TOKEN: &str = "s3cret-writepath-token";
const ENTRIES: usize = 100_000;

const YAML: &str = r#"
normalize: { default_region: US }
default_trunk: support
http:
  tokens:
    - { name: ops, token_env: CG_TEST_TOKEN_WRITEPATH }
trunks:
  support:
    dids: ["+18005550100"]
    lists:
      - { path: lists/big.csv, as: blacklist, name: spam }
"#;

fn big_list() -> String {
    let mut s = String::from("rule_name,pattern,match_type,action,enabled,notes\n");
    for i in 0..ENTRIES {
        s.push_str(&format!("B{i},+1555{i:07},exact,reject,true,entry {i}\n"));
    }
    s
}

async fn verdict(s: &server::TestServer, caller: &str, uid: &str) -> String {
    let r = AsteriskSim::new()
        .callerid(caller)
        .uniqueid(uid)
        .run(s.agi())
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
    r.variables["CALLGUARD_VERDICT"].clone()
}

#[tokio::test]
async fn one_api_write_to_a_big_list_is_one_reload_and_in_force_at_once() {
    server::install_tls_provider();
    // SAFETY: the only test in this binary; set before the server reads it.
    unsafe { std::env::set_var("CG_TEST_TOKEN_WRITEPATH", TOKEN) };
    let s = server::start_with(YAML, &[("lists/big.csv", &big_list())]).await;
    let reloader = s.running().reloader.clone();
    let reloads = || async {
        server::scrape_sum(
            s.http(),
            "callguard_config_reloads_total",
            &["result=\"success\""],
        )
        .await
    };
    let caller = "+19995550123";
    assert_eq!(verdict(&s, "+15550050000", "wp-listed").await, "block");
    assert_eq!(verdict(&s, caller, "wp-before").await, "allow");

    let before = reloads().await;
    let bursts = reloader.watched_bursts();
    let version = s.running().state.snapshot().version;
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/lists/spam/entries", s.http()))
        .bearer_auth(TOKEN)
        .json(&json!({ "rule_name": "Added", "pattern": caller, "match_type": "exact", "action": "reject" }))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The first call after the answer is decided by the new rules.
    assert_eq!(verdict(&s, caller, "wp-after").await, "block");
    assert_eq!(
        verdict(&s, "+15550099999", "wp-listed-after").await,
        "block"
    );

    // The watcher's turn: it has seen the written file and let it be (or
    // reloaded it first, and then the write path did not).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while reloader.watched_bursts() == bursts {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never looked at the written file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Longer than the watcher's quiet period (200 ms), for a late second burst.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(reloads().await, before + 1.0, "one write, one reload");
    assert_eq!(s.running().state.snapshot().version, version + 1);
    let (last, fresh) = (
        reloader.watched_bursts(),
        verdict(&s, caller, "wp-end").await,
    );
    assert_eq!(fresh, "block");
    assert_eq!(last, reloader.watched_bursts());
}
