//! The console at scale (issue 23): headless Chromium against the built
//! `callguard serve` binary holding a generated 100,000-entry list file.
//! The Trunks screen shows one page and the total, never every row; a
//! search finds one entry; the search state lives in the URL hash; a bulk
//! disable of a search result is ONE history entry, and Undo rolls it back.
//! Screenshots go to target/tmp/console/ (`CALLGUARD_REFRESH_SCREENSHOTS=1`
//! writes docs/console/ instead). Skips without chromium/chromedriver,
//! except under CI=true.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/server.rs"]
mod server;

use std::time::{Duration, Instant};

use browser::Browser;
use serde_json::Value;

const TOKEN: &str = "console-scale-token-ops";
const ROWS: usize = 100_000;

const YAML: &str = r#"
normalize: { default_region: US }
protected: ["911"]
default_trunk: support
http:
  tokens:
    - { name: ops, token_env: CG_CONSOLE_SCALE_TOKEN }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: VIP, pattern: "+15551234567" }
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
"#;

/// 100,000 exact rules `Gen-000000` … `Gen-099999` for +1555 2000000 … 2099999.
fn spam_csv() -> String {
    let mut s = String::with_capacity(ROWS * 64);
    s.push_str("rule_name,pattern,match_type,action,enabled,notes\n");
    for i in 0..ROWS {
        s.push_str(&format!(
            "Gen-{i:06},+1555{:07},exact,reject,true,generated\n",
            2_000_000 + i
        ));
    }
    s
}

async fn get_json(url: &str) -> Value {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Versions of the spam list in the history.
/// Versions of the spam list written through the API (author `ops`, the
/// token's name; the history may also record the file as first found).
async fn spam_versions(base: &str) -> usize {
    let v = get_json(&format!("{base}/api/v1/history?list=spam&limit=1000")).await;
    let versions = v["versions"].as_array().cloned().unwrap_or_default();
    versions.iter().filter(|x| x["author"] == "ops").count()
}

async fn js(b: &Browser, script: &str) -> Value {
    b.client.execute(script).await.expect("execute script")
}

/// Waits (bounded, generously: a debug build writing 100,000 rows) until
/// the message line says `text`; fails at once on an error shown instead.
async fn flash_says(b: &Browser, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let now = js(b, "return document.getElementById('flash').innerText + ' | ' + [...document.querySelectorAll('.change-error')].map((e) => e.innerText).join(' ')").await;
        let now = now.as_str().unwrap_or_default().to_string();
        if now.contains(text) {
            return;
        }
        assert!(
            !now.contains("HTTP "),
            "an error instead of {text:?}: {now}"
        );
        assert!(
            Instant::now() < deadline,
            "the message never said {text:?}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (bounded) until `script` returns true.
async fn wait_js(b: &Browser, script: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if js(b, script).await == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "never true: {what} ({script})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_100k_list_is_paged_searched_and_bulk_disabled_in_one_change() {
    let Some(b) = Browser::start().await else {
        return;
    };
    // SAFETY: set before the service process is spawned; no other thread reads it.
    unsafe { std::env::set_var("CG_CONSOLE_SCALE_TOKEN", TOKEN) };
    let spam = spam_csv();
    let srv = server::spawn_binary(YAML, &[("lists/spam.csv", &spam)]);
    let base = format!("http://{}", srv.http.expect("http listener"));

    // The screen shows one page and the total, and stays small.
    b.goto(&format!("{base}/#trunks")).await;
    let sum = "[data-list=spam] .list-summary";
    let text = b.wait_text(sum, "of 100,000").await;
    assert!(text.contains("Showing 1–50"), "{text}");
    let rows = js(
        &b,
        "return document.querySelectorAll('[data-list=spam] tr[data-rule]').length",
    )
    .await;
    assert_eq!(rows, Value::from(50), "one page of 50 rows");
    let elements = js(&b, "return document.querySelectorAll('*').length").await;
    let elements = elements.as_u64().unwrap();
    assert!(elements < 5_000, "{elements} elements on the trunks screen");
    b.wait_text("[data-list=spam] .pager", "Page 1 of 2,000")
        .await;
    b.screenshot("trunks-100k").await;

    // Search as you type: one entry found, the state in the URL hash.
    b.fill("[data-list=spam] input.list-search", "Gen-054321")
        .await;
    b.wait_text(sum, "1 of 100,000 rules match").await;
    b.find("[data-list=spam] tr[data-rule=Gen-054321]").await;
    wait_js(
        &b,
        "return location.hash.includes('q=Gen-054321') && location.hash.includes('list=spam')",
        "search in the hash",
    )
    .await;
    // A phone number finds the rule that would match a call from it.
    b.fill("[data-list=spam] input.list-search", "+1 555 205 4321")
        .await;
    b.wait_text("[data-list=spam] tbody", "Gen-054321").await;

    // Sort by a column header: aria-sort says how, the state is in the hash, Back undoes it.
    b.fill("[data-list=spam] input.list-search", "").await;
    b.wait_text(sum, "Showing 1–50 of 100,000").await;
    b.click("[data-list=spam] button.sort[data-sort=name]")
        .await;
    b.find("[data-list=spam] th[aria-sort=ascending] button[data-sort=name]")
        .await;
    b.click("[data-list=spam] button.sort[data-sort=name]")
        .await;
    b.find("[data-list=spam] th[aria-sort=descending] button[data-sort=name]")
        .await;
    b.wait_text("[data-list=spam] tbody tr:first-child", "Gen-099999")
        .await;
    wait_js(
        &b,
        "return location.hash.includes('sort=name') && location.hash.includes('order=desc')",
        "sort in the hash",
    )
    .await;
    js(&b, "history.back()").await;
    b.find("[data-list=spam] th[aria-sort=ascending] button[data-sort=name]")
        .await;
    b.wait_text("[data-list=spam] tbody tr:first-child", "Gen-000000")
        .await;

    // A shared link restores the list, the search and the page.
    b.goto(&format!("{base}/#trunks?list=spam&q=Gen-0543&page=2"))
        .await;
    b.wait_text("[data-list=spam] .pager", "Page 2 of 2").await;
    let text = b.wait_text(sum, "showing 51–100").await;
    assert!(text.starts_with("100 of 100,000 rules match"), "{text}");
    let value = js(
        &b,
        "return document.querySelector('[data-list=spam] input.list-search').value",
    )
    .await;
    assert_eq!(value, Value::from("Gen-0543"));

    // Bulk: select the page, then every matching row; disable them as one change.
    let before = spam_versions(&base).await;
    b.click("[data-list=spam] input.select-page").await;
    b.click("[data-list=spam] button.select-all").await;
    b.wait_text("[data-list=spam] .bulk-count", "100 selected")
        .await;
    b.click("[data-list=spam] button[data-op=disable]").await;
    b.wait_text("#confirm-text", "all 100 rules matching").await;
    b.click("#confirm-yes").await;
    b.fill("#token-input", TOKEN).await;
    b.click("#token-form button[type=submit]").await;
    // A write to a 100,000-row list takes a while in a debug build: a longer bound.
    flash_says(&b, "100 rules of spam disabled in one change").await;
    let after = spam_versions(&base).await;
    assert_eq!(after, before + 1, "one history entry for the bulk change");
    b.wait_text("[data-list=spam] tr[data-rule=Gen-054399]", "no")
        .await;
    let disabled = get_json(&format!(
        "{base}/api/v1/lists/spam/entries?q=Gen-0543&limit=500"
    ))
    .await;
    let entries = disabled["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 100);
    assert!(
        entries.iter().all(|e| e["enabled"] == Value::Bool(false)),
        "all disabled"
    );
    b.screenshot("trunks-bulk").await;

    // Undo: one rollback, the rows are enabled again.
    b.click("#flash-undo").await;
    flash_says(&b, "Undone").await;
    let back = get_json(&format!(
        "{base}/api/v1/lists/spam/entries?q=Gen-0543&limit=500"
    ))
    .await;
    let entries = back["entries"].as_array().expect("entries");
    assert!(
        entries.iter().all(|e| e["enabled"] == Value::Bool(true)),
        "undone"
    );
    assert_eq!(spam_versions(&base).await, before + 2);
    b.close().await;
    drop(srv);
}
