//! The web console in a real browser: headless Chromium driven through
//! chromedriver against the real service on loopback, with real list files,
//! a real SQLite log and history, and the FastAGI simulator as the PBX.
//! Each test saves screenshots of the screens it uses into target/tmp/console/;
//! `CALLGUARD_REFRESH_SCREENSHOTS=1 cargo test --test console` refreshes the
//! README's copies in docs/console/ instead. Skips without chromium/chromedriver, except under
//! CI=true.

use callguard_sim::asterisk;
#[path = "support/browser.rs"]
mod browser;
#[path = "support/server.rs"]
mod server;

use std::sync::Once;

use asterisk::AsteriskSim;
use browser::Browser;

const TOKEN: &str = "console-test-token-ops";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this test binary reads the environment.
        unsafe { std::env::set_var("CG_CONSOLE_TOKEN_OPS", TOKEN) };
    });
}

const YAML: &str = r#"
normalize: { default_region: US }
protected: ["911"]
default_trunk: support
actions:
  vm: { kind: voicemail, mailbox: "100@default" }
schedules:
  office: { timezone: America/New_York, open: [ { days: mon-fri, from: "08:00", to: "18:00" } ] }
http:
  tokens:
    - { name: ops, token_env: CG_CONSOLE_TOKEN_OPS }
blacklist:
  - { name: Premium-900, pattern: "+1900*", notes: "premium rate" }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: VIP, pattern: "+15551234567", notes: "the CEO" }
    blacklist:
      - { name: UK, pattern: "+44*", action: reject, priority: 5 }
      - { name: Night-UK, pattern: "+442*", action: vm, schedule: { outside: office }, enabled: false }
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
      - { path: lists/partners.json, as: whitelist, name: partners }
    velocity:
      - { name: Burst, scope: caller, max: 3, per: 10m, action: reject, block_for: 1h }
  vip-line:
    dids: ["+18005550199"]
    whitelist_mode: exclusive
    exclusive: { outside: office }
    blocked_action: vm
    whitelist:
      - { name: CFO, pattern: "+15551111111" }
"#;

const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                    Spam-1,+15550000001,exact,reject,true,first complaint\n\
                    Robo-555,+1555000____,wildcard,reject,true,robocaller block\n";
const PARTNERS: &str = r#"[{"rule_name":"Acme","pattern":"+15557770000","match_type":"exact","action":"","enabled":true,"notes":"supplier"}]"#;

async fn start() -> server::TestServer {
    env();
    server::start_with(
        YAML,
        &[("lists/spam.csv", SPAM), ("lists/partners.json", PARTNERS)],
    )
    .await
}

/// A FastAGI call from `caller` on trunk support; returns its verdict.
async fn agi_call(srv: &server::TestServer, caller: &str, uid: &str) -> String {
    let r = AsteriskSim::new()
        .script("screen?trunk=support")
        .callerid(caller)
        .uniqueid(uid)
        .run(srv.agi())
        .await;
    assert!(r.error.is_none(), "{:?}", r.error);
    r.variables
        .get("CALLGUARD_VERDICT")
        .cloned()
        .unwrap_or_default()
}

/// Waits (bounded) until the decision log has `n` calls: the log is written
/// off the call path.
async fn wait_logged(srv: &server::TestServer, n: usize) {
    let url = format!("http://{}/api/v1/calls?limit=1000", srv.http());
    let deadline = std::time::Instant::now() + browser::WAIT;
    loop {
        let calls: Vec<serde_json::Value> = reqwest::get(&url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or_default();
        if calls.len() >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} call(s) logged",
            calls.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Types the token into the console's token dialog (opened by a change).
async fn give_token(b: &Browser) {
    b.fill("#token-input", TOKEN).await;
    b.click("#token-form button[type=submit]").await;
}

#[tokio::test]
async fn add_a_rule_in_the_trunks_screen_and_the_next_call_is_blocked() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    assert_eq!(agi_call(&srv, "+15553332222", "before-1").await, "allow");
    agi_call(&srv, "+442071234567", "before-2").await;
    wait_logged(&srv, 2).await;

    b.goto(&format!("{base}/#overview")).await;
    b.wait_text("#main h1", "Overview").await;
    b.wait_text("#calls-today", "2").await;
    b.screenshot("overview").await;

    b.goto(&format!("{base}/#trunks")).await;
    b.wait_text("[data-trunk=vip-line]", "VIP-only outside office")
        .await;
    let support = b.wait_text("[data-trunk=support]", "Night-UK").await;
    assert!(
        support.contains("spam") && support.contains("Robo-555"),
        "{support}"
    );
    // The UK rule decided one call: its hit count shows it.
    b.wait_text(
        "[data-list='support.blacklist'] tr[data-rule=UK] td.hits",
        "1",
    )
    .await;
    b.screenshot("trunks").await;

    // Add a rule to the spam list; the token dialog asks first.
    b.click("[data-list=spam] .list-head button").await;
    b.fill("#rule-name", "Nuisance").await;
    b.fill("#rule-pattern", "+15553332222").await;
    b.select("#rule-match", "exact").await;
    b.fill("#rule-notes", "called 40 times").await;
    // A bad pattern first: the error is shown at the field.
    b.fill("#rule-pattern", "^(+").await;
    b.select("#rule-match", "regex").await;
    b.click("#rule-save").await;
    give_token(&b).await;
    // The field is marked invalid and its error is next to it.
    b.find("#rule-pattern[aria-invalid=true]").await;
    let err = b.find("#err-pattern").await.text().await.unwrap();
    assert!(!err.trim().is_empty(), "no field error for a bad regex");
    b.screenshot("trunks-rule-error").await;
    b.fill("#rule-pattern", "+15553332222").await;
    b.select("#rule-match", "exact").await;
    b.click("#rule-save").await;
    b.wait_text("#flash", "rules version").await;
    b.wait_text("[data-list=spam]", "Nuisance").await;

    // The very next FastAGI call from that number is blocked by it.
    let r = AsteriskSim::new()
        .callerid("+15553332222")
        .uniqueid("after-1")
        .run(srv.agi())
        .await;
    assert_eq!(
        r.variables.get("CALLGUARD_VERDICT").map(String::as_str),
        Some("block")
    );
    assert_eq!(
        r.variables.get("CALLGUARD_RULE").map(String::as_str),
        Some("Nuisance")
    );

    // Disable it from the screen: the next call is allowed again.
    b.click("[data-list=spam] tr[data-rule=Nuisance] button[aria-label='Disable Nuisance']")
        .await;
    b.wait_text("#flash", "Nuisance disabled").await;
    assert_eq!(agi_call(&srv, "+15553332222", "after-2").await, "allow");
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn the_tester_explains_a_decision() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    b.goto(&format!("{base}/#tester")).await;
    b.wait_text("#main h1", "Pattern tester").await;
    b.find("#t-trunk option[value=support]").await;
    b.fill("#t-caller", "+44 20 7123 4567").await;
    b.select("#t-trunk", "support").await;
    b.click("#t-run").await;
    let e = b.wait_text("#explanation", "Blocked").await;
    assert!(e.contains("rule UK of the blacklist"), "{e}");
    assert!(e.contains("+442071234567"), "E.164 form shown: {e}");
    // The disabled Night-UK rule matched too and is listed as skipped.
    assert!(e.contains("Night-UK"), "{e}");
    // A bare pattern against several numbers.
    b.fill("#p-pattern", "+1555_______").await;
    b.select("#p-match", "wildcard").await;
    b.fill("#p-numbers", "+15551234567\n+442071234567").await;
    b.click("#p-run").await;
    let p = b.wait_text("#pattern-result", "no match").await;
    assert!(p.contains("matches"), "{p}");
    b.screenshot("tester").await;
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn block_a_caller_from_the_call_log() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    assert_eq!(agi_call(&srv, "+442071234567", "uk-call").await, "block");
    assert_eq!(agi_call(&srv, "+15551234567", "vip-call").await, "allow");
    assert_eq!(
        agi_call(&srv, "+15556667777", "nuisance-call-1").await,
        "allow"
    );
    wait_logged(&srv, 3).await;
    b.goto(&format!("{base}/#calls")).await;
    b.wait_text("#calls-result", "+15556667777").await;
    b.screenshot("calls").await;
    b.click("tr[data-call=nuisance-call-1] button").await;
    // It asks which list: the spam list file of the call's trunk.
    b.find("#block-dialog[open] #block-list option[value=spam]")
        .await;
    b.select("#block-list", "spam").await;
    b.click("#block-save").await;
    give_token(&b).await;
    b.wait_text("#flash", "added to spam").await;
    assert_eq!(
        agi_call(&srv, "+15556667777", "nuisance-call-2").await,
        "block"
    );
    // The same caller again: nothing is added twice.
    b.click("tr[data-call=nuisance-call-1] button").await;
    b.find("#block-dialog[open] #block-list option[value=spam]")
        .await;
    b.select("#block-list", "spam").await;
    b.click("#block-save").await;
    b.wait_text("#flash", "already matched").await;
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn a_velocity_block_is_shown_and_lifted() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    // Three calls in ten minutes are allowed; the fourth trips rule Burst
    // and blocks the caller for an hour.
    for i in 1..=3 {
        let verdict = agi_call(&srv, "+15553334444", &format!("burst-{i}")).await;
        assert_eq!(verdict, "allow", "call {i}");
    }
    assert_eq!(agi_call(&srv, "+15553334444", "burst-4").await, "block");
    assert_eq!(agi_call(&srv, "+15553334444", "burst-5").await, "block");
    b.goto(&format!("{base}/#blocks")).await;
    let row = "tr[data-key='support|Burst|+15553334444']";
    let text = b.wait_text(row, "+15553334444").await;
    assert!(
        text.contains("velocity rule") && text.contains("Burst"),
        "{text}"
    );
    b.screenshot("blocks").await;
    b.click(&format!("{row} button")).await;
    b.wait_text("#confirm-text", "Lift the block on +15553334444")
        .await;
    b.click("#confirm-yes").await;
    give_token(&b).await;
    b.wait_text("#flash", "lifted").await;
    b.wait_text("#blocks", "No temporary blocks in force").await;
    // Lifted at once, and counted afresh: the caller's next call is allowed.
    assert_eq!(agi_call(&srv, "+15553334444", "burst-6").await, "allow");
    let left: Vec<serde_json::Value> = reqwest::get(format!("{base}/api/v1/velocity"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn import_shows_the_bad_row_with_its_line_then_history_rolls_back() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    let upload = srv.dir.path().join("upload.csv");
    std::fs::write(
        &upload,
        "rule_name,pattern,match_type,action,enabled,notes\n\
         New-1,+15558880001,exact,reject,true,\n\
         Spam-1,+15558880002,exact,reject,true,conflict\n\
         Broken,^(+,regex,reject,true,bad regex\n\
         New-2,+15558880003,exact,nope,true,unknown action\n",
    )
    .unwrap();
    b.goto(&format!("{base}/#import")).await;
    b.find("#i-list option[value=spam]").await;
    b.select("#i-list", "spam").await;
    b.find("#i-file")
        .await
        .send_keys(&upload.display().to_string())
        .await
        .unwrap();
    b.click("#dup-rename").await;
    b.click("#i-preview").await;
    give_token(&b).await;
    let bad = b.wait_text("#invalid-rows", "Broken").await;
    assert!(
        bad.contains("4 ") || bad.contains("\n4"),
        "line 4 shown: {bad}"
    );
    assert!(bad.contains("nope"), "the unknown action's row: {bad}");
    let preview = b.wait_text("#preview", "rename to Spam-1-2").await;
    assert!(preview.contains("2 invalid"), "{preview}");
    // Every list can be exported in each format.
    let export = b.wait_text("#main", "Export").await;
    assert!(!export.contains("[object"), "{export}");
    b.find("button[aria-label='Export spam as XML']").await;
    b.screenshot("import-preview").await;
    // Import the valid rows only.
    b.click("#i-skip-invalid").await;
    b.click("#i-confirm").await;
    b.wait_text("#preview", "in force").await;
    assert_eq!(agi_call(&srv, "+15558880001", "imported-1").await, "block");

    // History: roll back to the version before the import.
    b.goto(&format!("{base}/#history")).await;
    b.find("#h-list option[value=spam]").await;
    b.select("#h-list", "spam").await;
    b.click("#main form button[type=submit]").await;
    b.wait_text("#history-result", "ops").await;
    b.screenshot("history").await;
    b.click("tr[data-list=spam][data-version='1'] button").await;
    b.wait_text("#confirm-text", "Roll list spam back to version 1")
        .await;
    b.click("#confirm-yes").await;
    b.wait_text("#flash", "rolled back to version 1").await;
    assert_eq!(agi_call(&srv, "+15558880001", "imported-2").await, "allow");

    b.goto(&format!("{base}/#report")).await;
    b.wait_text("#report-result", "Blocked by trunk").await;
    b.screenshot("report").await;
    // A phone's width: one column, nothing cut off.
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("{base}/#trunks")).await;
    b.wait_text("[data-trunk=support]", "spam").await;
    b.screenshot("trunks-phone").await;
    b.close().await;
    srv.stop().await;
}
