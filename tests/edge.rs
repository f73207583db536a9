//! The SIP edge's decision endpoint, `POST /api/v1/edge/decide`, against the
//! built binary over real HTTP: a block is refused with the action's SIP code
//! and reason phrase, an allowed call gets the headers for the PBX, a media
//! action is handed on, `edge.allow` refuses other sources (403) whatever the
//! token settings, and each decision is one log row with `pbx = kamailio`
//! and one count under `pbx="kamailio"`.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const YAML: &str = r#"
default_trunk: support
actions:
  reject:  { kind: reject, tone: busy }
  decline: { kind: reject, tone: busy, sip_code: 603 }
  congest: { kind: reject, tone: congestion }
  hang:    { kind: reject, tone: hangup, cause: 21 }
  vm:      { kind: voicemail, mailbox: "200@default" }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: Friend, pattern: "+15551234567" }
    blacklist:
      - { name: Busy, pattern: "+15550000001", action: reject }
      - { name: Declined, pattern: "+15550000002", action: decline }
      - { name: Congest, pattern: "+15550000003", action: congest }
      - { name: Hang, pattern: "+15550000004", action: hang }
      - { name: Voicemail, pattern: "+15550000007", action: vm }
      - { name: Failed-Sig, attestation: [failed], action: decline }
http:
  protect_reads: true
  tokens:
    - { name: ops, token_env: CALLGUARD_EDGE_TEST_TOKEN }
"#;

async fn ask(http: SocketAddr, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{http}/api/v1/edge/decide"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn call(id: &str, caller: &str) -> Value {
    json!({ "call_id": id, "caller": caller, "caller_name": "Test Caller", "callee": "+18005550100",
            "source": "192.0.2.10" })
}

/// The decision log's rows (`callguard log --json`), waiting (bounded) until
/// `n` of them have been written.
fn log_rows(p: &server::ServeProcess, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
            .args(["log", "--json", "--config"])
            .arg(&p.config)
            .output()
            .expect("run callguard log");
        let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let ended = rows.iter().filter(|r| !r["end_state"].is_null()).count();
        if rows.len() >= n && ended >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} log rows ({ended} ended), expected {n}: {}",
            rows.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn blocks_are_refused_with_the_actions_code_and_allowed_calls_carry_headers() {
    let p = server::spawn_binary(YAML, &[]);
    let http = p.http.unwrap();

    let cases = [
        ("c-busy", "+15550000001", 486, "Busy Here", "reject", "Busy"),
        (
            "c-603",
            "+15550000002",
            603,
            "Decline",
            "decline",
            "Declined",
        ),
        (
            "c-503",
            "+15550000003",
            503,
            "Service Unavailable",
            "congest",
            "Congest",
        ),
        ("c-hang", "+15550000004", 603, "Decline", "hang", "Hang"),
    ];
    for (id, caller, code, phrase, action, rule) in cases {
        let (status, v) = ask(http, call(id, caller)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["verdict"], "block", "{v}");
        assert_eq!(v["refuse"], true, "{v}");
        assert_eq!(v["code"], code, "{v}");
        assert_eq!(v["phrase"], phrase, "{v}");
        assert_eq!(v["action"], action, "{v}");
        assert_eq!(v["rule"], rule, "{v}");
        assert_eq!(v["sip_headers"], "", "a refusal adds no headers: {v}");
    }

    // Allowed: relayed with the headers the PBX reads.
    let (status, v) = ask(http, call("c-ok", "+15551234567")).await;
    assert_eq!(status, 200);
    assert_eq!(
        (v["verdict"].as_str(), v["code"].as_u64()),
        (Some("allow"), Some(0)),
        "{v}"
    );
    assert_eq!(v["headers"]["X-Callguard-Verdict"], "allow", "{v}");
    assert_eq!(v["headers"]["X-Callguard-Rule"], "Friend", "{v}");
    assert!(v["headers"]["X-Callguard-Action"].is_null(), "{v}");
    let text = v["sip_headers"].as_str().unwrap();
    assert!(
        text.starts_with("X-Callguard-Verdict: allow\r\nX-Callguard-Rule: Friend\r\n"),
        "{text:?}"
    );
    assert!(
        text.contains("X-Callguard-Reason: whitelist rule Friend"),
        "{text:?}"
    );

    // A media action is not refused at the edge: handed on to the PBX.
    let (_, v) = ask(http, call("c-vm", "+15550000007")).await;
    assert_eq!(
        (v["verdict"].as_str(), v["refuse"].as_bool()),
        (Some("block"), Some(false)),
        "{v}"
    );
    assert_eq!(v["hand_on"], true, "{v}");
    assert_eq!(v["headers"]["X-Callguard-Action"], "vm", "{v}");
    assert_eq!(v["headers"]["X-Callguard-Verdict"], "block", "{v}");

    // The attestation comes from the verstat of the headers the proxy passes on.
    let mut signed = call("c-sig", "+15557654321");
    signed["pai"] = json!("<sip:+15557654321;verstat=TN-Validation-Failed@carrier.example>");
    let (_, v) = ask(http, signed).await;
    assert_eq!(
        (v["rule"].as_str(), v["code"].as_u64()),
        (Some("Failed-Sig"), Some(603)),
        "{v}"
    );
    let (_, v) = ask(http, call("c-unsigned", "+15557654321")).await;
    assert_eq!(
        (v["verdict"].as_str(), v["code"].as_u64()),
        (Some("allow"), Some(0)),
        "{v}"
    );

    // A body that is not the request's JSON is refused, not decided.
    let r = reqwest::Client::new()
        .post(format!("http://{http}/api/v1/edge/decide"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Counted and logged like a PBX's calls, under pbx="kamailio": once each.
    let blocked = server::scrape_sum(
        http,
        "callguard_calls_total",
        &["pbx=\"kamailio\"", "verdict=\"block\""],
    )
    .await;
    assert_eq!(
        blocked, 6.0,
        "4 refused, the voicemail and the failed signature"
    );
    let rows = log_rows(&p, 8);
    assert_eq!(rows.len(), 8, "one row per decision: {rows:?}");
    let row = |id: &str| {
        rows.iter()
            .find(|r| r["unique_id"] == id)
            .unwrap_or_else(|| panic!("no row {id}: {rows:?}"))
    };
    assert!(rows.iter().all(|r| r["pbx"] == "kamailio"), "{rows:?}");
    assert_eq!(row("c-603")["end_state"], "sip:603");
    assert_eq!(row("c-603")["rule"], "Declined");
    assert_eq!(row("c-603")["caller_name"], "Test Caller");
    assert_eq!(row("c-vm")["end_state"], "handed_on");
    assert_eq!(row("c-ok")["end_state"], "relayed");
    assert_eq!(row("c-ok")["verdict"], "allow");
}

#[tokio::test]
async fn a_source_outside_edge_allow_gets_403_and_is_not_screened() {
    let yaml = format!("{YAML}edge:\n  allow: [192.0.2.0/24]\n");
    let p = server::spawn_binary(&yaml, &[]);
    let http = p.http.unwrap();
    let (status, v) = ask(http, call("c-outside", "+15550000001")).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("edge.allow"), "{v}");
    let counted = server::scrape_sum(http, "callguard_calls_total", &["pbx=\"kamailio\""]).await;
    assert_eq!(counted, 0.0);
    // The admin API keeps its token under protect_reads; the edge never asked for one.
    let r = reqwest::get(format!("http://{http}/api/v1/calls"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_bad_edge_allow_entry_is_refused_by_check() {
    let yaml = format!("{YAML}edge:\n  allow: [not-an-address]\n");
    let (_dir, config) = server::write_config(&yaml, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edge.allow"), "{err}");
}

#[test]
fn sip_code_is_checked() {
    let bad = |actions: &str| {
        let yaml = format!("actions:\n{actions}\ntrunks: {{ t: {{ dids: ['1'] }} }}\n");
        let cfg = callguard::config::load_str(&yaml, std::path::Path::new("e.yaml")).unwrap();
        callguard::policy::RuleSet::compile(&cfg)
            .err()
            .map(|p| p.to_string())
            .unwrap_or_default()
    };
    assert!(bad("  x: { kind: reject, sip_code: 302 }").contains("sip_code 302"));
    assert!(bad("  x: { kind: voicemail, mailbox: '1', sip_code: 603 }").contains("only a reject"));
    assert_eq!(bad("  x: { kind: reject, sip_code: 607 }"), "");
}
