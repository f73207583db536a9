//! The list management API end to end: the real service on loopback, real
//! list files in a temp dir, a real SQLite history, spoken to over HTTP.
//! Synchronisation is by the API's answers (a write answers after its
//! reload), never by sleeping.

#[path = "support/server.rs"]
mod server;

use std::path::Path;
use std::sync::Once;

use callguard::reload::Trigger;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-alice-token";

/// Environment variables are process-wide: set once, before any server reads them.
fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: done once, before the tests in this binary start servers or
        // read the environment.
        unsafe { std::env::set_var("CG_TEST_TOKEN_ALICE", TOKEN) };
    });
}

const YAML: &str = r#"
normalize: { default_region: US }
default_trunk: support
actions:
  vm: { kind: voicemail, mailbox: "100@default" }
http:
  tokens:
    - { name: ops-alice, token_env: CG_TEST_TOKEN_ALICE }
    - { name: unset, token_env: CG_TEST_TOKEN_NOT_SET }
  max_body_bytes: 4096
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: VIP, pattern: "+15551234567" }
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
      - { path: lists/vip.json, as: whitelist, name: vip }
"#;

const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                    Spam-1,+15550000001,exact,reject,true,first complaint\n";
const VIP: &str = r#"[{"rule_name":"Alpha","pattern":"+15557770000","match_type":"exact","action":"","enabled":true,"notes":""}]"#;

async fn start() -> server::TestServer {
    env();
    server::start_with(YAML, &[("lists/spam.csv", SPAM), ("lists/vip.json", VIP)]).await
}

struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    fn new(s: &server::TestServer) -> Client {
        Client {
            base: format!("http://{}", s.http()),
            http: reqwest::Client::new(),
        }
    }
    fn req(&self, m: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(m, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }
    async fn put_csv(&self, list: &str, body: &str) -> (StatusCode, Value) {
        let r = self
            .req(reqwest::Method::PUT, &format!("/api/v1/lists/{list}"))
            .header("content-type", "text/csv")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .req(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (StatusCode, String, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status(), ct, r.text().await.unwrap())
    }
    async fn decide(&self, caller: &str) -> Value {
        let (code, v) = self
            .post_json("/api/v1/test", json!({ "caller": caller }))
            .await;
        assert_eq!(code, StatusCode::OK, "{v}");
        v
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn auth_is_required_for_changes() {
    let s = start().await;
    let c = Client::new(&s);
    let url = format!("{}/api/v1/lists/spam/entries", c.base);
    let body = json!({ "rule_name": "X", "pattern": "+1999" });
    let none = c.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = c
        .http
        .post(&url)
        .bearer_auth("s3cret-alice-tokeN")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let del = c
        .http
        .delete(format!("{}/api/v1/lists/spam/entries/Spam-1", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("lists/spam.csv")).unwrap(),
        SPAM
    );

    // No tokens configured: changes are off, and the answer says how to turn them on.
    env();
    let s2 = server::start_with(
        "trunks: { t: { lists: [ { path: spam.csv, as: blacklist } ] } }\n",
        &[("spam.csv", SPAM)],
    )
    .await;
    let c2 = Client::new(&s2);
    let (code, v) = c2.put_csv("spam", SPAM).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(v["error"].as_str().unwrap().contains("token_env"), "{v}");
}

#[tokio::test]
async fn lists_and_exports() {
    let s = start().await;
    let c = Client::new(&s);
    let (code, _, body) = c.get("/api/v1/lists").await;
    assert_eq!(code, StatusCode::OK);
    let v: Value = serde_json::from_str(&body).unwrap();
    let spam = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "spam")
        .unwrap();
    assert_eq!(spam["kind"], "blacklist");
    assert_eq!(spam["trunk"], "support");
    assert_eq!(spam["rules"], 1);
    assert_eq!(spam["editable"], true);

    let (code, ct, body) = c.get("/api/v1/lists/spam?format=csv").await;
    assert_eq!(code, StatusCode::OK);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(body, SPAM);
    let (_, ct, body) = c.get("/api/v1/lists/spam").await;
    assert_eq!(ct, "application/json");
    let rows: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rows[0]["rule_name"], "Spam-1");
    assert_eq!(rows[0]["notes"], "first complaint");
    let (_, ct, body) = c.get("/api/v1/lists/spam?format=xml").await;
    assert_eq!(ct, "application/xml");
    assert!(body.contains("<name>Spam-1</name>"), "{body}");

    let (code, _, body) = c.get("/api/v1/lists/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    // A list defined inline in the config exports too: reading is not editing.
    let (code, _, body) = c.get("/api/v1/lists/support.whitelist?format=csv").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        "rule_name,pattern,match_type,action,enabled,notes\nVIP,+15551234567,,,true,\n"
    );
    let (code, _, _) = c.get("/api/v1/lists/spam?format=pdf").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn replace_takes_effect_at_once_and_is_recorded() {
    let s = start().await;
    let c = Client::new(&s);
    let before = s.running().state.snapshot().version;
    assert_eq!(c.decide("+15550000002").await["verdict"], "allow");

    let csv = "rule_name,pattern,match_type,action,enabled,notes\n\
               Spam-2,+15550000002,exact,vm,true,CRM export\n";
    let (code, v) = c.put_csv("spam", csv).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert!(v["version"].as_u64().unwrap() > before);
    assert_eq!(v["added"], json!(["Spam-2"]));
    assert_eq!(v["removed"], json!(["Spam-1"]));
    assert_eq!(v["summary"], "+1 −1 ~0 (added: Spam-2; removed: Spam-1)");
    // The very next decision sees it, without waiting for the file watcher.
    let d = c.decide("+15550000002").await;
    assert_eq!(d["verdict"], "block", "{d}");
    assert_eq!(d["rule"], "Spam-2");
    assert_eq!(d["action"], "vm");
    assert_eq!(c.decide("+15550000001").await["verdict"], "allow");
    assert!(s.running().state.snapshot().version >= v["version"].as_u64().unwrap());
    // Atomic write: the new content, no temp file left beside it.
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("lists/spam.csv")).unwrap(),
        csv
    );
    assert_eq!(
        entries(&s.dir.path().join("lists")),
        ["spam.csv", "vip.json"]
    );

    // History: the file's state before (so it can be restored), then ours.
    let (_, _, body) = c.get("/api/v1/history?list=spam&limit=10").await;
    let h: Value = serde_json::from_str(&body).unwrap();
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{h}");
    assert_eq!(versions[0]["author"], "ops-alice");
    assert_eq!(versions[0]["version"], 2);
    assert_eq!(versions[1]["author"], "file");

    // Rollback to version 1 restores the content and the decision.
    let (code, v) = c
        .post_json("/api/v1/lists/spam/rollback", json!({ "version": 1 }))
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["history_version"], 3);
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("lists/spam.csv")).unwrap(),
        SPAM
    );
    assert_eq!(c.decide("+15550000001").await["verdict"], "block");
    assert_eq!(c.decide("+15550000002").await["verdict"], "allow");
    let (code, _) = c
        .post_json("/api/v1/lists/spam/rollback", json!({ "version": 99 }))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    let s = start().await;
    let c = Client::new(&s);
    let path = s.dir.path().join("lists/spam.csv");
    let version = s.running().state.snapshot().version;

    // A bad row: located by line in the body.
    let (code, v) = c
        .put_csv(
            "spam",
            "rule_name,pattern,match_type,action,enabled\nA,+1,exact,,true\nB,+2,exact,,maybe\n",
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let d = v["details"][0].as_str().unwrap();
    assert!(d.starts_with("request body:3"), "{d}");
    assert!(d.contains("enabled"), "{d}");

    // A regex that does not compile: the row and why.
    let (code, v) = c
        .put_csv(
            "spam",
            "rule_name,pattern,match_type,action,enabled\nA,+1,exact,,true\nBad,+1(,regex,,true\n",
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let d = v["details"][0].as_str().unwrap();
    assert!(d.contains(":3: Bad: pattern"), "{d}");

    // A row naming an action the configuration does not define is a bad
    // row of the upload, located like the others.
    let (code, v) = c
        .put_csv(
            "spam",
            "rule_name,pattern,match_type,action,enabled\nA,+1,exact,nope,true\n",
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let d = v["details"][0].as_str().unwrap();
    assert!(
        d.starts_with("request body:2: A: no action named \"nope\""),
        "{v}"
    );

    // Issue 10.2: every bad row of a file in one answer, a bad regex
    // included even when the reader refused other rows.
    let (code, v) = c
        .put_csv(
            "spam",
            "rule_name,pattern,match_type,action,enabled\n\
             Ok,+1,exact,,true\n\
             Bad-Enabled,+2,exact,,maybe\n\
             Bad-Regex,+1(,regex,,true\n\
             Bad-Action,+4,exact,nope,true\n",
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    let details: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 3, "{details:#?}");
    assert!(details[0].starts_with("request body:3:") && details[0].contains("enabled"));
    assert!(details[1].starts_with("request body:4: Bad-Regex: pattern"));
    assert!(details[2].starts_with("request body:5: Bad-Action: no action named"));
    assert_eq!(v["error"], "3 invalid row(s); nothing was changed");

    // Wrong or missing content type.
    let r = c
        .req(reqwest::Method::PUT, "/api/v1/lists/spam")
        .header("content-type", "application/pdf")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Unknown and read-only lists.
    assert_eq!(c.put_csv("nope", SPAM).await.0, StatusCode::NOT_FOUND);
    let (code, v) = c.put_csv("support.whitelist", SPAM).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("move the rules to a list file"),
        "{v}"
    );

    // Larger than http.max_body_bytes (4096 here).
    let mut big = String::from("rule_name,pattern\n");
    for i in 0..400 {
        big.push_str(&format!("R{i},+1555{i:07}\n"));
    }
    let (code, v) = c.put_csv("spam", &big).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{v}");

    assert_eq!(std::fs::read_to_string(&path).unwrap(), SPAM);
    assert_eq!(s.running().state.snapshot().version, version);
    assert_eq!(c.decide("+15550000001").await["verdict"], "block");
    assert_eq!(
        entries(&s.dir.path().join("lists")),
        ["spam.csv", "vip.json"]
    );
    let (_, _, body) = c.get("/api/v1/history?list=spam").await;
    assert_eq!(body, r#"{"versions":[]}"#);
}

#[tokio::test]
async fn add_and_delete_entries() {
    let s = start().await;
    let c = Client::new(&s);
    let (code, v) = c
        .post_json(
            "/api/v1/lists/spam/entries",
            json!({ "rule_name": "Spam-2", "pattern": "+1900*", "match_type": "Prefix" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["added"], json!(["Spam-2"]));
    assert_eq!(v["rules"], 2);
    assert_eq!(c.decide("+19005551234").await["rule"], "Spam-2");

    let (code, v) = c
        .post_json(
            "/api/v1/lists/spam/entries",
            json!([{ "rule_name": "Spam-3", "pattern": "+1976*" }, { "rule_name": "Spam-1", "pattern": "+1" }]),
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Spam-1"), "{v}");
    assert_eq!(c.decide("+19765551234").await["verdict"], "allow");

    let (code, v) = c
        .post_json(
            "/api/v1/lists/vip/entries",
            json!([{ "rule_name": "Beta", "pattern": "+15558880000" }]),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let vip: Value = serde_json::from_str(
        &std::fs::read_to_string(s.dir.path().join("lists/vip.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(vip[1]["rule_name"], "Beta");

    let del = c
        .req(reqwest::Method::DELETE, "/api/v1/lists/spam/entries/Spam-1")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::OK);
    let v: Value = del.json().await.unwrap();
    assert_eq!(v["removed"], json!(["Spam-1"]));
    assert_eq!(c.decide("+15550000001").await["verdict"], "allow");
    let again = c
        .req(reqwest::Method::DELETE, "/api/v1/lists/spam/entries/Spam-1")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    let (_, _, body) = c.get("/api/v1/history?list=spam").await;
    let h: Value = serde_json::from_str(&body).unwrap();
    let authors: Vec<&str> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["ops-alice", "ops-alice", "file"]);
}

#[tokio::test]
async fn file_edits_are_recorded_once() {
    let s = start().await;
    let c = Client::new(&s);
    let path = s.dir.path().join("lists/spam.csv");
    std::fs::write(&path, format!("{SPAM}Spam-9,+15550000009,exact,,true,\n")).unwrap();
    s.running()
        .reloader
        .reload(Trigger::FileChange(path.clone()))
        .await
        .unwrap();
    // Reloading again with nothing changed records nothing more.
    s.running().reloader.reload(Trigger::Signal).await.unwrap();
    let h = s.running().state.extras.history.clone().unwrap();
    let v = h.versions(Some("spam"), 10).unwrap();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].author, "file");
    assert_eq!(v[0].summary, "+2 −0 ~0 (added: Spam-1, Spam-9)");
    assert_eq!(c.decide("+15550000009").await["rule"], "Spam-9");
}

#[tokio::test]
async fn explainer_over_http() {
    let s = start().await;
    let c = Client::new(&s);
    let d = c.decide("+15551234567").await;
    assert_eq!(d["verdict"], "allow");
    assert_eq!(d["list"], "whitelist");
    assert_eq!(d["rule"], "VIP");
    assert_eq!(d["trunk"], "support");
    let (code, v) = c
        .post_json(
            "/api/v1/test",
            json!({ "caller": "", "anonymous": true, "did": "+18005550100", "at": "2026-11-23T21:00:00Z" }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["anonymous"], true);
    assert_eq!(v["at"], "2026-11-23T21:00:00+00:00");
    let (code, v) = c
        .post_json(
            "/api/v1/test",
            json!({ "pattern": "+1555*", "numbers": ["+15551234567", "+15561234567"] }),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["match_type"], "wildcard");
    assert_eq!(v["results"][0]["matched"], true);
    assert_eq!(v["results"][1]["matched"], false);
    let (code, v) = c
        .post_json(
            "/api/v1/test",
            json!({ "pattern": "(", "match": "regex", "numbers": ["1"] }),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["details"][0].as_str().unwrap().contains("pattern"), "{v}");
    let (code, _) = c
        .post_json("/api/v1/test", json!({ "caller": "+1", "trunk": "nope" }))
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = c.post_json("/api/v1/test", json!({ "bogus": 1 })).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

/// Issue 10.9: a write through the API is applied once. The API reloads
/// right after writing; the watcher then sees the file change, finds the file
/// exactly as the running rules read it, and does not reload it again.
#[tokio::test]
async fn an_api_write_is_applied_once() {
    let s = start().await;
    let c = Client::new(&s);
    let reloader = s.running().reloader.clone();
    let reloads = || async {
        server::scrape_sum(
            s.http(),
            "callguard_config_reloads_total",
            &["result=\"success\""],
        )
        .await
    };
    let before = reloads().await;
    let version = s.running().state.snapshot().version;
    let skipped = reloader.skipped_bursts();
    let (code, v) = c
        .put_csv(
            "spam",
            "rule_name,pattern,match_type,action,enabled,notes\nSpam-7,+15550000007,exact,,true,\n",
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    // The watcher's turn: it has looked at the write and let it be.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while reloader.skipped_bursts() == skipped {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the watcher never looked at the written file"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(reloads().await, before + 1.0);
    assert_eq!(s.running().state.snapshot().version, version + 1);

    // An edit on disk is still picked up by the watcher.
    let path = s.dir.path().join("lists/spam.csv");
    std::fs::write(&path, format!("{SPAM}Spam-8,+15550000008,exact,,true,\n")).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.running().state.snapshot().version == version + 1 {
        assert!(tokio::time::Instant::now() < deadline, "edit not reloaded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(c.decide("+15550000008").await["verdict"], "block");
}
