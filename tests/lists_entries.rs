//! Issue 23, server side: a list of 100,000 entries paged, searched and
//! sorted on the server (`GET /api/v1/lists/{name}/entries`), `/api/v1/trunks`
//! and `/api/v1/lists` carrying counts and the first page only, and bulk
//! changes as one version — over real HTTP against the real service.

#[path = "support/server.rs"]
mod server;

use std::fmt::Write;
use std::sync::Once;

use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "entries-api-token";
const N: usize = 100_000;
/// The lists of the tests that write (each write validates, records and
/// reloads the whole list: slow in a debug build).
const SMALL: usize = 5_000;

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this test binary reads the environment.
        unsafe { std::env::set_var("CG_ENTRIES_API_TOKEN", TOKEN) };
    });
}

const YAML: &str = r#"
normalize: { default_region: US }
default_trunk: support
http:
  tokens: [ { name: ops, token_env: CG_ENTRIES_API_TOKEN } ]
actions:
  voicemail: { kind: play, sound: custom/leave-a-message, then: hangup }
trunks:
  support:
    blocked_action: voicemail
    blacklist:
      - { name: UK, pattern: "+44*", priority: 3 }
    lists:
      - { path: big.csv, as: blacklist, name: big }
"#;

/// `Big-000000` … : exact numbers `+1555` + 7 digits; every 1000th has a
/// note; row 77777 is a wildcard; every 10th has no action.
fn big(n: usize) -> String {
    let mut s = String::from("rule_name,pattern,match_type,action,enabled,notes\n");
    for i in 0..n {
        let (pattern, mt) = if i == 77_777 {
            ("+1666_______".to_string(), "wildcard")
        } else {
            (format!("+1555{i:07}"), "exact")
        };
        let action = if i % 10 == 0 { "" } else { "reject" };
        let notes = if i % 1000 == 0 {
            format!("batch {}", i / 1000)
        } else {
            String::new()
        };
        writeln!(s, "Big-{i:06},{pattern},{mt},{action},true,{notes}").unwrap();
    }
    s
}

struct Client {
    c: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str) -> (StatusCode, usize, Value) {
        let r = self
            .c
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let s = r.status();
        let b = r.bytes().await.unwrap();
        (
            s,
            b.len(),
            serde_json::from_slice(&b).unwrap_or(Value::Null),
        )
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

async fn start(n: usize) -> (server::TestServer, Client) {
    env();
    let srv = server::start_with(YAML, &[("big.csv", &big(n))]).await;
    let c = Client {
        c: reqwest::Client::builder().no_proxy().build().unwrap(),
        base: format!("http://{}", srv.http()),
    };
    (srv, c)
}

fn names(v: &Value) -> Vec<String> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_100000_entry_list_is_paged_searched_and_sorted_on_the_server() {
    let (mut srv, c) = start(N).await;

    let (s, size, v) = c.get("/api/v1/lists/big/entries").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["total"].as_u64(), v["count"].as_u64()),
        (Some(N as u64), Some(N as u64))
    );
    assert_eq!(v["entries"].as_array().unwrap().len(), 50);
    assert!(size < 100_000, "a page is {size} bytes");
    let first = &v["entries"][0];
    assert_eq!(first["name"], "Big-000000");
    assert_eq!(first["position"], 0);
    // No action of its own: the trunk's blocked_action, not "(default)".
    assert_eq!(first["action"], "");
    assert_eq!(first["effective_action"], "voicemail");
    assert_eq!(first["action_source"], "trunk");
    assert_eq!(v["entries"][1]["effective_action"], "reject");
    assert_eq!(v["entries"][1]["action_source"], "rule");
    assert_eq!(first["calls"], "/api/v1/calls?list=big&rule=Big-000000");

    // Page 3, the largest page, and a bad sort.
    let (_, _, v) = c.get("/api/v1/lists/big/entries?offset=100&limit=50").await;
    assert_eq!(names(&v)[0], "Big-000100");
    let (_, size, v) = c.get("/api/v1/lists/big/entries?limit=100000").await;
    assert_eq!(
        (v["limit"].as_u64(), v["entries"].as_array().unwrap().len()),
        (Some(500), 500)
    );
    assert!(size < 1_000_000, "{size}");
    let (s, _, _) = c.get("/api/v1/lists/big/entries?sort=colour").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A search by name finds one row; by notes, a hundred; any case.
    let (_, _, v) = c.get("/api/v1/lists/big/entries?q=big-004242").await;
    assert_eq!(
        (v["total"].as_u64(), names(&v)),
        (Some(1), vec!["Big-004242".to_string()])
    );
    let (_, _, v) = c.get("/api/v1/lists/big/entries?q=BATCH").await;
    assert_eq!(v["total"], 100);

    // A phone number as a caller would send it finds the rules a call from
    // it matches: the exact row, and the wildcard the text search misses.
    let (_, _, v) = c.get("/api/v1/lists/big/entries?q=(555)%20000-1234").await;
    assert_eq!(v["number"], "+15550001234");
    assert_eq!(names(&v), vec!["Big-001234".to_string()]);
    let (_, _, v) = c.get("/api/v1/lists/big/entries?q=6661234567").await;
    assert_eq!(v["number"], "+16661234567");
    assert_eq!(names(&v), vec!["Big-077777".to_string()]);

    // Sorted by name, descending.
    let (_, _, v) = c
        .get("/api/v1/lists/big/entries?sort=name&order=desc&limit=2")
        .await;
    assert_eq!(names(&v), vec!["Big-099999", "Big-099998"]);

    // `/api/v1/lists` counts; `/api/v1/trunks` the first page only.
    let (_, _, v) = c.get("/api/v1/lists").await;
    let big = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "big")
        .unwrap();
    assert_eq!(big["count"], N);
    let (s, size, v) = c.get("/api/v1/trunks").await;
    assert_eq!(s, StatusCode::OK);
    assert!(size < 200_000, "/api/v1/trunks is {size} bytes");
    let l = v["trunks"][0]["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "big")
        .unwrap()
        .clone();
    assert_eq!(l["count"], N);
    assert_eq!(l["rules"].as_array().unwrap().len(), 50);
    assert_eq!(l["entries_url"], "/api/v1/lists/big/entries");
    srv.stop().await;
}

#[tokio::test]
async fn added_and_changed_come_from_the_history() {
    let (mut srv, c) = start(SMALL).await;
    let (s, v) = c
        .post(
            "/api/v1/lists/big/entries",
            json!({"rule_name": "New-One", "pattern": "+15559999999", "action": "reject"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, v) = c.get("/api/v1/lists/big/entries?q=new-one").await;
    let e = &v["entries"][0];
    assert_eq!(e["position"], SMALL);
    let added = e["added"].as_str().expect("added is known");
    assert_eq!(e["changed"].as_str(), Some(added));
    // Sorting by date added puts it last (the rows before it were there first).
    let (_, _, v) = c
        .get("/api/v1/lists/big/entries?sort=added&order=desc&limit=1")
        .await;
    assert_eq!(names(&v), vec!["New-One"]);
    srv.stop().await;
}

async fn versions(c: &Client) -> Vec<Value> {
    let (_, _, v) = c.get("/api/v1/history?list=big&limit=1000").await;
    v["versions"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_bulk_disable_of_a_search_result_is_one_version_and_can_be_undone() {
    let (mut srv, c) = start(SMALL).await;
    // The starting state is recorded before the change (at start or by it).
    let (s, v) = c
        .post(
            "/api/v1/lists/big/bulk",
            json!({"op": "disable", "rules": ["Big-000001"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let before = versions(&c).await.len();

    let (s, v) = c
        .post(
            "/api/v1/lists/big/bulk",
            json!({"op": "disable", "q": "BATCH"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["affected"], SMALL / 1000);
    let undo = v["undo"]["version"].as_u64().expect("an undo version");
    assert_eq!(versions(&c).await.len(), before + 1, "one history entry");
    let (_, _, page) = c.get("/api/v1/lists/big/entries?q=batch&limit=500").await;
    assert_eq!(page["total"], SMALL / 1000);
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["enabled"] == false)
    );
    let (_, _, page) = c
        .get("/api/v1/lists/big/entries?sort=enabled&limit=1")
        .await;
    assert_eq!(
        page["entries"][0]["enabled"], false,
        "disabled rows sort first"
    );

    // Undo: the rollback the answer offers.
    let (s, v) = c
        .post("/api/v1/lists/big/rollback", json!({"version": undo}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, _, page) = c.get("/api/v1/lists/big/entries?q=batch&limit=500").await;
    assert!(
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["enabled"] == true)
    );

    // Delete by name; an unknown name refuses the whole change; a bad op is 400.
    let (s, v) = c
        .post(
            "/api/v1/lists/big/bulk",
            json!({"op": "delete", "rules": ["Big-000002", "Big-000003"]}),
        )
        .await;
    assert_eq!(
        (s, v["affected"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
    let (_, _, page) = c.get("/api/v1/lists/big/entries").await;
    assert_eq!(page["count"], SMALL - 2);
    let (s, _) = c
        .post(
            "/api/v1/lists/big/bulk",
            json!({"op": "delete", "rules": ["Big-000004", "Nope"]}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = c
        .post(
            "/api/v1/lists/big/bulk",
            json!({"op": "paint", "rules": ["Big-000004"]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    srv.stop().await;
}
