//! Velocity rules over the wire: a caller over its rate gets the rule's
//! action and a temporary block that survives a restart (the SQLite store)
//! and shows in `callguard log --blocks`, `GET /api/v1/velocity` and
//! `callguard_velocity_blocks_total`; an operator lifts a block through the
//! API; a reload changes the counters' bound; a trunk-wide burst; exemptions;
//! located config problems.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use asterisk::AsteriskSim;
use callguard::app;
use freeswitch::SimConfig;
use serde_json::Value;

const YAML: &str = r#"
default_trunk: support
protected: ["911"]
actions:
  congest: { kind: reject, tone: congestion, seconds: 1 }
velocity:
  - { name: range-flood, scope: "prefix:8", max: 50, per: 1h }
trunks:
  support:
    dids: ["+18005550100"]
    blocked_action: reject
    whitelist:
      - { name: Boss, pattern: "+15559990000" }
    velocity:
      - { name: repeat-caller, scope: caller, max: 2, per: 10m, block_for: 24h }
  pbx-trunk:
    dids: ["+18005550133"]
    velocity:
      - { name: fraud-burst, scope: trunk, max: 3, per: 1m, action: congest }
"#;

/// GET `url` and its JSON body.
async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn call(caller: &str, uid: &str) -> AsteriskSim {
    AsteriskSim::new().callerid(caller).uniqueid(uid)
}

#[tokio::test]
async fn a_repeat_caller_is_blocked_and_the_block_survives_a_restart() {
    let mut srv = server::start(YAML).await;
    for i in 1..=2 {
        let r = call("+15551112222", &format!("ok{i}")).run(srv.agi()).await;
        assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow", "call {i}");
    }
    let r = call("+15551112222", "over").run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    assert_eq!(r.variables["CALLGUARD_LIST"], "velocity");
    assert_eq!(r.variables["CALLGUARD_RULE"], "repeat-caller");
    assert_eq!(r.variables["CALLGUARD_ACTION"], "reject");
    let reason = &r.variables["CALLGUARD_REASON"];
    assert!(
        reason.starts_with(
            "velocity rule repeat-caller on trunk support: 3 calls from +15551112222 within 10m (max 2); blocked until "
        ),
        "{reason}"
    );
    assert_eq!(r.commands[1..], ["EXEC Busy 5", "EXEC Hangup 17"]);
    // Another caller is not affected; a whitelisted one is exempt.
    let r = call("+15553334444", "other").run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    for i in 0..4 {
        let r = call("+15559990000", &format!("boss{i}"))
            .run(srv.agi())
            .await;
        assert_eq!(r.variables["CALLGUARD_LIST"], "whitelist");
    }
    assert_eq!(
        server::scrape_sum(
            srv.http(),
            "callguard_velocity_blocks_total",
            &["trunk=\"support\"", "rule=\"repeat-caller\""],
        )
        .await,
        1.0
    );
    let blocks: Value = get_json(format!("http://{}/api/v1/velocity", srv.http())).await;
    assert_eq!(blocks.as_array().unwrap().len(), 1, "{blocks}");
    assert_eq!(blocks[0]["subject"], "+15551112222");
    assert_eq!(blocks[0]["rule"], "repeat-caller");

    // A restart forgets the counters, not the block.
    srv.stop().await;
    let running = app::start(&srv.config).await.unwrap();
    srv.running = Some(running);
    let r = call("+15551112222", "after-restart").run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "velocity");
    assert!(
        r.variables["CALLGUARD_REASON"].contains("+15551112222 is blocked until "),
        "{:?}",
        r.variables
    );
    srv.stop().await;

    // The CLI reads the same store.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["log", "--blocks", "--config"])
        .arg(&srv.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("support") && text.contains("repeat-caller") && text.contains("+15551112222"),
        "{text}"
    );
}

#[tokio::test]
async fn a_trunk_wide_burst_gets_the_rules_action_on_freeswitch() {
    let mut srv = server::start(YAML).await;
    let mut verdicts = Vec::new();
    for i in 0..5 {
        let r = SimConfig {
            caller_number: format!("+1555700{i:04}"),
            destination_number: "+18005550133".into(),
            variables: Vec::new(),
            ..SimConfig::default()
        }
        .run(srv.esl())
        .await;
        assert!(r.error.is_none() && !r.timed_out, "{r:?}");
        verdicts.push((
            r.variable("callguard_verdict").unwrap().to_string(),
            r.variable("callguard_rule").unwrap_or("").to_string(),
        ));
    }
    assert_eq!(
        verdicts,
        [
            ("allow".to_string(), String::new()),
            ("allow".into(), String::new()),
            ("allow".into(), String::new()),
            ("block".into(), "fraud-burst".into()),
            ("block".into(), "fraud-burst".into()),
        ]
    );
    // No block_for: each call over the rate counts, nothing is stored.
    assert_eq!(
        server::scrape_sum(
            srv.http(),
            "callguard_velocity_blocks_total",
            &["trunk=\"pbx-trunk\"", "rule=\"fraud-burst\""],
        )
        .await,
        2.0
    );
    let blocks: Value = get_json(format!("http://{}/api/v1/velocity", srv.http())).await;
    assert_eq!(blocks, serde_json::json!([]));
    srv.stop().await;
}

#[test]
fn bad_velocity_rules_are_located() {
    let (dir, path) = server::write_config(
        "velocity:\n  - { name: v1, scope: area, max: 5, per: 1m }\ntrunks:\n  t:\n    velocity:\n      - { name: v2, max: 0, per: 1m }\n      - { name: v3, max: 5, per: 1m, action: nope }\n      - { name: v3, max: 5, per: 1m }\n",
        &[],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "callguard.yaml:2:24: velocity rule v1: scope \"area\": use caller, prefix:N (N from 1 to 15) or trunk",
        "callguard.yaml:6:9: trunk t: velocity rule v2: max 0: use 1 to 10000",
        "callguard.yaml:7:46: no action named \"nope\"",
        "callguard.yaml:8:17: trunk t: duplicate velocity rule name \"v3\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    drop(dir);
}

#[tokio::test]
async fn an_operator_lifts_a_block_and_a_reload_changes_the_bound() {
    // SAFETY: set before this test's server reads it; no other test in this
    // binary reads this variable.
    unsafe { std::env::set_var("CG_VELOCITY_TEST_TOKEN", "velocity-ops-token") };
    let with = |max_tracked: usize| {
        format!(
            "{YAML}\nhttp:\n  tokens:\n    - {{ name: ops, token_env: CG_VELOCITY_TEST_TOKEN }}\n\
             velocity_limits: {{ max_tracked: {max_tracked} }}\n"
        )
    };
    let mut srv = server::start(&with(100)).await;
    let base = format!("http://{}", srv.http());
    for i in 1..=3 {
        call("+15551112222", &format!("c{i}")).run(srv.agi()).await;
    }
    let r = call("+15551112222", "blocked").run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "velocity");
    for i in 0..5 {
        call(&format!("+1555000000{i}"), &format!("o{i}"))
            .run(srv.agi())
            .await;
    }
    let status: Value = get_json(format!("{base}/api/v1/status")).await;
    assert_eq!(status["velocity"]["max_tracked"], 100, "{status}");
    assert_eq!(status["velocity"]["blocks"], 1, "{status}");
    assert!(
        status["velocity"]["tracked"].as_u64().unwrap() >= 6,
        "{status}"
    );

    // Lifting needs a token, like any change.
    let url = format!("{base}/api/v1/velocity/support%7Crepeat-caller%7C%2B15551112222");
    let http = reqwest::Client::new();
    let refused = http.delete(&url).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let lifted = http
        .delete(&url)
        .bearer_auth("velocity-ops-token")
        .send()
        .await
        .unwrap();
    assert_eq!(lifted.status(), 200);
    let body: Value = lifted.json().await.unwrap();
    assert_eq!(body["lifted"]["subject"], "+15551112222", "{body}");
    assert_eq!(body["author"], "ops");
    let again = http
        .delete(&url)
        .bearer_auth("velocity-ops-token")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "nothing left to lift");
    // Lifted at once and counted afresh: the next call is allowed.
    let r = call("+15551112222", "after-lift").run(srv.agi()).await;
    assert_eq!(
        r.variables["CALLGUARD_VERDICT"], "allow",
        "{:?}",
        r.variables
    );

    // A reload with a smaller bound applies at once.
    let text = std::fs::read_to_string(&srv.config).unwrap();
    assert!(text.contains("max_tracked: 100"));
    std::fs::write(
        &srv.config,
        text.replace("max_tracked: 100", "max_tracked: 2"),
    )
    .unwrap();
    let reloaded = http
        .post(format!("{base}/api/v1/reload"))
        .bearer_auth("velocity-ops-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200, "{}", reloaded.text().await.unwrap());
    let status: Value = get_json(format!("{base}/api/v1/status")).await;
    assert_eq!(status["velocity"]["max_tracked"], 2, "{status}");
    assert!(
        status["velocity"]["tracked"].as_u64().unwrap() <= 2,
        "{status}"
    );

    // A restart does not bring the lifted block back.
    srv.stop().await;
    srv.running = Some(app::start(&srv.config).await.unwrap());
    let r = call("+15551112222", "after-restart").run(srv.agi()).await;
    assert_ne!(
        r.variables["CALLGUARD_LIST"], "velocity",
        "{:?}",
        r.variables
    );
    srv.stop().await;
}
