//! Issue 23 item 4, server side: the answers the console shows never
//! misreport a trunk or a block — over real HTTP against the real service,
//! with calls made by the Asterisk simulator where the log is needed.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::sync::Once;
use std::time::{Duration, Instant};

use asterisk::AsteriskSim;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "console-honest-token";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this test binary reads the environment.
        unsafe { std::env::set_var("CG_HONEST_TOKEN", TOKEN) };
    });
}

/// The shipped `support` trunk's shape: additive, VIP-only outside office
/// hours, a blocked action of `voicemail`, an attestation rule.
const YAML: &str = r#"
normalize: { default_region: US }
default_trunk: support
protected: ["911", "+1911"]
http:
  tokens: [ { name: ops, token_env: CG_HONEST_TOKEN } ]
actions:
  voicemail: { kind: play, sound: custom/leave-a-message, then: hangup }
schedules:
  office-hours:
    timezone: America/New_York
    open:
      - { days: mon-fri, from: "08:00", to: "18:00" }
users:
  "101": { dids: ["+15551230101"], block: u101-block.csv }
trunks:
  support:
    whitelist_mode: additive
    exclusive: { outside: office-hours }
    blocked_action: voicemail
    allowed_action: pass
    whitelist:
      - { name: Allow-VIP, pattern: "+15551234567", action: pass }
    blacklist:
      - { name: Block-Night-Premium, pattern: "+1900*" }
      - { name: Block-Spoofed, attestation: [failed], action: reject }
      - { name: Block-Wild, pattern: "+1555_______", match: wildcard, schedule: { outside: office-hours } }
    lists:
      - { path: spam.csv, as: blacklist, name: spam }
"#;

const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\nSpam-1,+15550000001,exact,reject,true,\nSpam-Off,+15550000002,exact,reject,false,\n";
const U101: &str =
    "rule_name,pattern,match_type,action,enabled,notes\nU-1,+15550000009,exact,reject,true,\n";

async fn start() -> server::TestServer {
    env();
    server::start_with(YAML, &[("spam.csv", SPAM), ("u101-block.csv", U101)]).await
}

struct C {
    c: reqwest::Client,
    base: String,
}

impl C {
    fn new(srv: &server::TestServer) -> C {
        C {
            c: reqwest::Client::builder().no_proxy().build().unwrap(),
            base: format!("http://{}", srv.http()),
        }
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .c
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .c
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

fn rule<'a>(trunk: &'a Value, list: &str, name: &str) -> &'a Value {
    trunk["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == list)
        .and_then(|l| {
            l["rules"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
        })
        .unwrap_or_else(|| panic!("no rule {name} in {list}: {trunk}"))
}

#[tokio::test]
async fn the_trunks_screen_says_the_real_mode_conditions_and_actions() {
    let mut srv = start().await;
    let c = C::new(&srv);
    // Tuesday 2026-12-08 03:00 in New York: outside office hours.
    let (s, night) = c.get("/api/v1/trunks?at=2026-12-08T08:00:00Z").await;
    assert_eq!(s, StatusCode::OK, "{night}");
    let t = &night["trunks"][0];
    assert_eq!(t["mode"], "exclusive_scheduled", "not 'additive': {t}");
    assert_eq!(
        t["mode_text"],
        "VIP-only outside office-hours — in force now"
    );
    assert_eq!(t["exclusive_now"], true);
    // The same Tuesday at noon in New York.
    let (_, day) = c.get("/api/v1/trunks?at=2026-12-08T17:00:00Z").await;
    let t = &day["trunks"][0];
    assert_eq!(
        t["mode_text"],
        "VIP-only outside office-hours — not in force now"
    );
    assert_eq!(t["exclusive_now"], false);

    // The attestation rule is an attestation condition, not "anonymous".
    let spoofed = rule(t, "support.blacklist", "Block-Spoofed");
    assert_eq!(spoofed["match"], "attestation", "{spoofed}");
    assert_eq!(spoofed["condition"], "attestation failed");
    assert_ne!(spoofed["pattern"], "Anonymous");
    // A rule without an action: the trunk's blocked_action, resolved.
    let night_premium = rule(t, "support.blacklist", "Block-Night-Premium");
    assert_eq!(night_premium["action"], "");
    assert_eq!(night_premium["effective_action"], "voicemail");
    assert_eq!(night_premium["action_source"], "trunk");
    let vip = rule(t, "support.whitelist", "Allow-VIP");
    assert_eq!(vip["effective_action"], "pass");
    assert_eq!(t["effective_blocked_action"], "voicemail");

    // Counts on /api/v1/lists, and the list file's count on /trunks.
    let (_, lists) = c.get("/api/v1/lists").await;
    let spam = lists["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "spam")
        .unwrap();
    assert_eq!(
        (spam["count"].as_u64(), &lists["read_only"]),
        (Some(2), &json!(false))
    );
    let spam = t["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "spam")
        .unwrap();
    assert_eq!(spam["count"], 2);
    srv.stop().await;
}

#[tokio::test]
async fn a_broken_configuration_on_disk_turns_the_console_read_only_and_exports_still_work() {
    let mut srv = start().await;
    let c = C::new(&srv);
    let (s, _) = c.get("/api/v1/trunks").await;
    assert_eq!(s, StatusCode::OK);
    // A configuration file that no longer parses.
    let text = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(&srv.config, format!("{text}\ntrunks: [ unclosed\n")).unwrap();
    let (s, v) = c.get("/api/v1/trunks").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["read_only"], true);
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");
    // The rules in force: the last configuration that loaded.
    let t = &v["trunks"][0];
    assert_eq!(rule(t, "spam", "Spam-1")["pattern"], "+15550000001");
    // Exports still answer, from the rules in force.
    let r =
        c.c.get(format!("{}/api/v1/lists/spam?format=csv", c.base))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Spam-1"));
    // Writes are refused with the problems.
    let (s, v) = c
        .post(
            "/api/v1/lists/spam/entries",
            json!({"rule_name": "New", "pattern": "+15550000003"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("read-only"), "{v}");
    assert!(!v["details"].as_array().unwrap().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn the_tester_says_what_decided_uses_the_did_and_normalises_patterns() {
    let mut srv = start().await;
    let c = C::new(&srv);
    // Daytime: the caller passes; the attestation rule is not listed as
    // "skipped" on every answer, a disabled rule that matched is.
    let (s, v) = c
        .post(
            "/api/v1/test",
            json!({"caller": "+15550000002", "trunk": "support", "at": "2026-12-08T17:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["decided_by"]["list"], v["list"]);
    let skipped = v["skipped"].as_array().unwrap();
    assert!(skipped.iter().all(|s| s["rule"] != "Block-Spoofed"), "{v}");
    assert!(
        skipped
            .iter()
            .any(|s| s["rule"] == "Spam-Off" && s["why"] == "disabled"),
        "{v}"
    );
    // The DID is used with the trunk: user 101's block list decides.
    let (s, v) = c
        .post(
            "/api/v1/test",
            json!({"caller": "+15550000009", "trunk": "support", "did": "+15551230101",
                   "at": "2026-12-08T17:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"], "101", "{v}");
    assert_eq!(
        (v["verdict"].as_str(), v["rule"].as_str()),
        (Some("block"), Some("U-1")),
        "{v}"
    );
    // The bare pattern test normalises the number as a call would be.
    let (s, v) = c
        .post(
            "/api/v1/test",
            json!({"pattern": "+1555_______", "numbers": ["5551234567", "4441234567"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0]["matched"], true, "{v}");
    assert_eq!(v["results"][0]["normalized"], "+15551234567");
    assert_eq!(v["results"][0]["matched_on"], "e164");
    assert_eq!(v["results"][1]["matched"], false);
    srv.stop().await;
}

/// Calls `caller` through the simulator and waits (bounded) until the log has it.
async fn call(srv: &server::TestServer, c: &C, caller: &str, id: &str) {
    AsteriskSim::new()
        .script("screen?trunk=support")
        .callerid(caller)
        .uniqueid(id)
        .run(srv.agi())
        .await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = c.get("/api/v1/calls?limit=50").await;
        let found = v
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["unique_id"] == id));
        if found {
            return;
        }
        assert!(Instant::now() < deadline, "call {id} not logged: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn block_caller_refuses_a_protected_number_and_names_the_whitelist_rule() {
    let mut srv = start().await;
    let c = C::new(&srv);
    call(&srv, &c, "911", "p-1").await;
    let (s, v) = c
        .post(
            "/api/v1/calls/p-1/block",
            json!({"list": "spam", "check": true}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"].as_str().unwrap().contains("protected"), "{v}");
    let (s, v) = c
        .post("/api/v1/calls/p-1/block", json!({"list": "spam"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, page) = c.get("/api/v1/lists/spam/entries").await;
    assert_eq!(page["count"], 2, "nothing was added");

    // A whitelisted VIP: the check says the whitelist still lets them through.
    call(&srv, &c, "+15551234567", "v-1").await;
    let (s, v) = c
        .post(
            "/api/v1/calls/v-1/block",
            json!({"list": "spam", "action": "reject", "check": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], false);
    assert_eq!(v["verdict"], "allow");
    assert_eq!(v["still_allowed_by"]["rule"], "Allow-VIP", "{v}");
    assert!(v["reason"].as_str().unwrap().contains("Allow-VIP"), "{v}");
    // Blocking anyway says so too, and the action asked for is written.
    let (s, v) = c
        .post(
            "/api/v1/calls/v-1/block",
            json!({"list": "spam", "action": "reject"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["added"], true);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("still lets this caller through"),
        "{v}"
    );
    let (_, page) = c.get("/api/v1/lists/spam/entries?q=15551234567").await;
    assert_eq!(page["entries"][0]["action"], "reject", "{page}");

    // An ordinary caller: blocked after the change (by the new rule, or by
    // the VIP-only hours, depending on the time the test runs).
    call(&srv, &c, "+14447770000", "o-1").await;
    let (s, v) = c
        .post(
            "/api/v1/calls/o-1/block",
            json!({"list": "spam", "check": true}),
        )
        .await;
    assert_eq!(
        (s, v["verdict"].as_str()),
        (StatusCode::OK, Some("block")),
        "{v}"
    );
    assert_eq!(v["still_allowed_by"], Value::Null);
    srv.stop().await;
}
