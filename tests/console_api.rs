//! The API endpoints the web console added, over real HTTP against the real
//! service: the console's assets, the trunks view, rule edit, import preview,
//! block from the log, overview and report, and `http.protect_reads` on the
//! new reads that hold numbers.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::sync::Once;

use asterisk::AsteriskSim;
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "console-api-token";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this test binary reads the environment.
        unsafe { std::env::set_var("CG_CONSOLE_API_TOKEN", TOKEN) };
    });
}

fn yaml(protect_reads: bool) -> String {
    format!(
        r#"
normalize: {{ default_region: US }}
default_trunk: support
http:
  protect_reads: {protect_reads}
  tokens: [ {{ name: ops, token_env: CG_CONSOLE_API_TOKEN }} ]
trunks:
  support:
    blacklist:
      - {{ name: UK, pattern: "+44*", priority: 3 }}
    lists:
      - {{ path: spam.csv, as: blacklist, name: spam }}
"#
    )
}

const SPAM: &str =
    "rule_name,pattern,match_type,action,enabled,notes\nSpam-1,+15550000001,exact,reject,true,\n";

async fn start(protect_reads: bool) -> server::TestServer {
    env();
    server::start_with(&yaml(protect_reads), &[("spam.csv", SPAM)]).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn json_of(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let mut srv = start(false).await;
    let c = client();
    let base = format!("http://{}", srv.http());
    let page = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("callguard console"));
    for asset in ["/console/console.js", "/console/console.css"] {
        let r = c.get(format!("{base}{asset}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn trunks_edit_import_and_block_through_the_api() {
    let mut srv = start(false).await;
    let c = client();
    let base = format!("http://{}", srv.http());

    let (s, t) = json_of(c.get(format!("{base}/api/v1/trunks")).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let support = &t["trunks"][0];
    assert_eq!(support["name"], "support");
    assert_eq!(support["mode"], "additive");
    let names: Vec<&str> = support["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["support.whitelist", "support.blacklist", "spam"],
        "precedence order"
    );
    assert_eq!(support["lists"][1]["rules"][0]["priority"], 3);
    assert_eq!(support["lists"][2]["editable"], true);

    // Edit: without a token refused; a rename onto a taken name refused; then disabled.
    let edit = format!("{base}/api/v1/lists/spam/entries/Spam-1");
    let row = json!({"rule_name":"Spam-1","pattern":"+15550000001","match_type":"exact","action":"reject","enabled":false});
    let (s, _) = json_of(c.put(&edit).json(&row).send().await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, e) = json_of(
        c.put(format!("{base}/api/v1/lists/spam/entries/Nope"))
            .bearer_auth(TOKEN)
            .json(&row)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let bad = json!({"rule_name":"Spam-1","pattern":"^(+","match_type":"regex","enabled":true});
    let (s, e) = json_of(
        c.put(&edit)
            .bearer_auth(TOKEN)
            .json(&bad)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["details"][0].as_str().unwrap().contains("Spam-1"), "{e}");
    let (s, e) = json_of(
        c.put(&edit)
            .bearer_auth(TOKEN)
            .json(&row)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["changed"], json!(["Spam-1"]));

    // Import preview: nothing written, invalid rows with their line.
    let csv = "rule_name,pattern,match_type,action,enabled\nNew,+15550000002,exact,,true\nSpam-1,+15550000003,exact,,true\nBad,^(+,regex,,true\n";
    let url = format!("{base}/api/v1/lists/spam/import?on_duplicate=rename");
    let (s, p) = json_of(
        c.post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["applied"], false);
    assert_eq!(p["to_add"], json!(["New"]));
    assert_eq!(p["renamed"], json!([{"from": "Spam-1", "to": "Spam-1-2"}]));
    assert_eq!(p["invalid"][0]["line"], 4);
    // Applying with invalid rows is refused unless they are skipped.
    let (s, p) = json_of(
        c.post(format!("{url}&dry_run=false"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    let (s, p) = json_of(
        c.post(format!("{url}&dry_run=false&skip_invalid=true"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["applied"], true);
    assert_eq!(p["result"]["added"], json!(["New", "Spam-1-2"]));

    // Block from the log: an unknown call is 404; a logged one is added once.
    let r = AsteriskSim::new()
        .script("screen?trunk=support")
        .callerid("+15557778888")
        .uniqueid("c-1")
        .run(srv.agi())
        .await;
    assert_eq!(
        r.variables.get("CALLGUARD_VERDICT").map(String::as_str),
        Some("allow")
    );
    let (s, _) = json_of(
        c.post(format!("{base}/api/v1/calls/nope/block"))
            .bearer_auth(TOKEN)
            .json(&json!({"list":"spam"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let b = loop {
        let (s, b) = json_of(
            c.post(format!("{base}/api/v1/calls/c-1/block"))
                .bearer_auth(TOKEN)
                .json(&json!({"list":"spam"}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        // The log is written off the call path: wait (bounded) for the row.
        if s != StatusCode::NOT_FOUND || std::time::Instant::now() > deadline {
            assert_eq!(s, StatusCode::OK, "{b}");
            break b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(b["added"], true, "{b}");
    assert_eq!(b["rule_name"], "Block-+15557778888");
    let r = AsteriskSim::new()
        .script("screen?trunk=support")
        .callerid("+15557778888")
        .uniqueid("c-2")
        .run(srv.agi())
        .await;
    assert_eq!(
        r.variables.get("CALLGUARD_VERDICT").map(String::as_str),
        Some("block")
    );
    let (_, b) = json_of(
        c.post(format!("{base}/api/v1/calls/c-1/block"))
            .bearer_auth(TOKEN)
            .json(&json!({"list":"spam"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(b["added"], false, "{b}");

    let (s, o) = json_of(
        c.get(format!("{base}/api/v1/overview"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(o["reload"]["ok"], true);
    let (s, rep) = json_of(
        c.get(format!("{base}/api/v1/report?since=1h"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{rep}");
    assert!(rep["rule_changes"].as_array().unwrap().len() >= 3, "{rep}");
    let (s, _) = json_of(
        c.get(format!("{base}/api/v1/report?since=soon"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    srv.stop().await;
}

#[tokio::test]
async fn protect_reads_guards_the_new_reads_that_hold_numbers() {
    let mut srv = start(true).await;
    let c = client();
    let base = format!("http://{}", srv.http());
    for path in ["/api/v1/trunks", "/api/v1/report"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let r = c
            .get(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // The page and the overview (counts only) stay open, and say reads need a token.
    assert_eq!(
        c.get(format!("{base}/")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let (s, o) = json_of(
        c.get(format!("{base}/api/v1/overview"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(o["protect_reads"], true);
    srv.stop().await;
}
