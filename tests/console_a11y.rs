//! The console's accessibility and phone layout (issue 23 item 5), one test
//! per item, in headless Chromium against the real service: the skip link,
//! focus after a change, navigation focusing the screen's heading, tables
//! named by their headings, 44 px touch targets on a phone, messages that
//! stay until dismissed or replaced, and phone cards keeping labels beside
//! values. Skips without chromium/chromedriver, except under CI=true.

#[path = "support/browser.rs"]
mod browser;
#[path = "support/server.rs"]
mod server;

use std::sync::Once;
use std::time::{Duration, Instant};

use browser::Browser;
use callguard_sim::asterisk::AsteriskSim;
use serde_json::Value;

const TOKEN: &str = "console-a11y-token-ops";

const YAML: &str = r#"
normalize: { default_region: US }
protected: ["911"]
default_trunk: support
http:
  tokens:
    - { name: ops, token_env: CG_CONSOLE_A11Y_TOKEN }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: VIP, pattern: "+15551234567", notes: "the CEO" }
    blacklist:
      - { name: UK, pattern: "+44*", action: reject, priority: 5 }
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
"#;

const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                    Spam-1,+15550000001,exact,reject,true,first complaint\n\
                    Spam-2,+15550000002,exact,reject,true,second complaint with a long note that wraps on a phone\n\
                    Robo-555,+1555000____,wildcard,reject,true,robocaller block\n";

async fn start() -> server::TestServer {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this test binary reads the environment.
        unsafe { std::env::set_var("CG_CONSOLE_A11Y_TOKEN", TOKEN) };
    });
    server::start_with(YAML, &[("lists/spam.csv", SPAM)]).await
}

async fn js(b: &Browser, script: &str) -> Value {
    b.client.execute(script).await.expect("execute script")
}

/// Waits (bounded) until `script` returns true.
async fn wait_js(b: &Browser, script: &str, what: &str) {
    let deadline = Instant::now() + browser::WAIT;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = js(b, script).await;
        if last == Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never true: {what} ({script}); last {last:?}");
}

async fn give_token(b: &Browser) {
    b.fill("#token-input", TOKEN).await;
    b.click("#token-form button[type=submit]").await;
}

const ACTIVE_RULE: &str = "const r = document.activeElement && document.activeElement.closest('tr[data-rule]'); return r ? r.dataset.rule : null";

#[tokio::test]
async fn the_skip_link_goes_to_the_current_screens_content() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    b.goto(&format!("http://{}/#trunks", srv.http())).await;
    b.wait_text("[data-list=spam]", "Spam-1").await;
    js(&b, "document.querySelector('.skip').focus()").await;
    b.find(".skip").await.send_keys("\u{E007}").await.unwrap();
    wait_js(
        &b,
        "return document.activeElement.id === 'page-title'",
        "heading focused",
    )
    .await;
    // Still the Trunks screen: the link did not route to another screen.
    assert_eq!(js(&b, "return location.hash").await, Value::from("#trunks"));
    assert_eq!(
        js(&b, "return document.querySelector('#main h1').textContent").await,
        Value::from("Trunks")
    );
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn after_a_change_the_focus_returns_to_the_row() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    b.goto(&format!("http://{}/#trunks", srv.http())).await;
    b.click("[data-list=spam] button[aria-label='Disable Spam-1']")
        .await;
    give_token(&b).await;
    b.wait_text("#flash", "Spam-1 disabled").await;
    wait_js(
        &b,
        &format!("return (() => {{ {ACTIVE_RULE} }})() === 'Spam-1'"),
        "focus on Spam-1",
    )
    .await;
    // After a delete, the next row has the focus.
    b.click("[data-list=spam] button[aria-label='Delete Spam-1']")
        .await;
    b.click("#confirm-yes").await;
    b.wait_text("#flash", "Spam-1 deleted").await;
    wait_js(
        &b,
        &format!("return (() => {{ {ACTIVE_RULE} }})() === 'Spam-2'"),
        "focus on the next row",
    )
    .await;
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn navigation_focuses_the_labelled_heading_without_scrolling() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    b.goto(&format!("http://{}/#overview", srv.http())).await;
    b.wait_text("#main h1", "Overview").await;
    b.click("#nav a[data-screen=trunks]").await;
    b.wait_text("#main h1", "Trunks").await;
    wait_js(
        &b,
        "return document.activeElement.id === 'page-title'",
        "heading focused",
    )
    .await;
    assert_eq!(
        js(
            &b,
            "return document.querySelector('main').getAttribute('aria-labelledby')"
        )
        .await,
        Value::from("page-title")
    );
    assert_eq!(
        js(&b, "return document.activeElement.tagName").await,
        Value::from("H1")
    );
    // The header stays in view.
    assert_eq!(js(&b, "return window.scrollY").await, Value::from(0));
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn every_table_is_named_by_its_heading() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    for (screen, ready) in [
        ("trunks", "[data-list=spam] tr[data-rule]"),
        ("import", "#main table"),
        ("history", "#history-result table"),
    ] {
        b.goto(&format!("{base}/#{screen}")).await;
        b.find(ready).await;
        let unnamed = js(
            &b,
            "return [...document.querySelectorAll('#main table')].filter((t) => {
            const id = t.getAttribute('aria-labelledby');
            const by = id && document.getElementById(id);
            if (by) return !by.textContent.trim() || !/^H[1-6]$/.test(by.tagName);
            return !(t.caption && t.caption.textContent.trim());
        }).length",
        )
        .await;
        assert_eq!(unnamed, Value::from(0), "unnamed tables on {screen}");
    }
    // The spam list's table is named by the list's heading.
    b.goto(&format!("{base}/#trunks")).await;
    b.find("[data-list=spam] tr[data-rule]").await;
    let name = js(&b, "return document.getElementById(document.querySelector('[data-list=spam] table').getAttribute('aria-labelledby')).textContent").await;
    assert!(name.as_str().unwrap_or("").starts_with("spam"), "{name:?}");
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn touch_targets_are_44_px_on_a_phone() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("http://{}/#trunks", srv.http())).await;
    b.find("[data-list=spam] tr[data-rule]").await;
    let small = js(&b, "return [...document.querySelectorAll('button, #nav a, #main a, select, input')]
        .filter((e) => e.offsetParent !== null)
        .map((e) => [e, e.getBoundingClientRect()])
        .filter(([e, r]) => r.height < 44 || r.width < 44)
        .map(([e, r]) => `${e.tagName} ${e.getAttribute('aria-label') || e.textContent} ${r.width}x${r.height}`)").await;
    assert_eq!(small, Value::Array(vec![]), "targets under 44 px");
    b.screenshot("a11y-phone-targets").await;
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn a_message_stays_until_dismissed_or_replaced() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    b.goto(&format!("http://{}/#trunks", srv.http())).await;
    b.click("[data-list=spam] button[aria-label='Disable Spam-1']")
        .await;
    give_token(&b).await;
    b.wait_text("#flash [role=status]", "Spam-1 disabled").await;
    // The old console cleared it after 8 s: it is still there after 9.
    tokio::time::sleep(Duration::from_secs(9)).await;
    b.wait_text("#flash", "Spam-1 disabled").await;
    // The next change replaces it.
    b.click("[data-list=spam] button[aria-label='Disable Spam-2']")
        .await;
    let text = b.wait_text("#flash", "Spam-2 disabled").await;
    assert!(!text.contains("Spam-1"), "{text}");
    // Dismissed, it goes, and the focus goes to the heading.
    b.click("#flash button.dismiss").await;
    wait_js(
        &b,
        "return document.getElementById('flash').children.length === 0",
        "message dismissed",
    )
    .await;
    wait_js(
        &b,
        "return document.activeElement.id === 'page-title'",
        "heading focused",
    )
    .await;
    b.close().await;
    srv.stop().await;
}

#[tokio::test]
async fn phone_cards_keep_labels_beside_values() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let mut srv = start().await;
    let base = format!("http://{}", srv.http());
    // A call decided by a rule: its "Rule / list" cell holds the rule and the list on two lines.
    let r = AsteriskSim::new()
        .script("screen?trunk=support")
        .callerid("+442071234567")
        .uniqueid("uk-call")
        .run(srv.agi())
        .await;
    assert!(r.error.is_none(), "{:?}", r.error);
    b.client.set_window_size(390, 844).await.unwrap();
    // In every labelled cell of a row, every line of the value lies right
    // of the label (nothing falls into the label column).
    let check = |rows: &str| {
        format!(
            "return [...document.querySelectorAll('{rows} [data-label]')]
            .filter((c) => c.dataset.label && c.textContent.trim())
            .filter((c) => {{
                const cell = c.getBoundingClientRect();
                const range = document.createRange(); range.selectNodeContents(c);
                const rects = [...range.getClientRects()].filter((r) => r.width > 0);
                return rects.some((r) => r.left < cell.left + 80) || (rects[0] && rects[0].top > cell.top + 12);
            }}).map((c) => c.dataset.label + ': ' + c.textContent)"
        )
    };
    b.goto(&format!("{base}/#trunks")).await;
    b.find("[data-list=spam] tr[data-rule=Spam-2]").await;
    let bad = js(&b, &check("[data-list=spam] tr[data-rule]")).await;
    assert_eq!(
        bad,
        Value::Array(vec![]),
        "values under their labels (trunks)"
    );
    b.screenshot("a11y-phone-cards").await;
    b.goto(&format!("{base}/#calls")).await;
    b.wait_text("tr[data-call=uk-call]", "UK").await;
    let bad = js(&b, &check("tr[data-call]")).await;
    assert_eq!(
        bad,
        Value::Array(vec![]),
        "values under their labels (calls)"
    );
    // Captions are a line above the card, not a column one word wide.
    b.goto(&format!("{base}/#report")).await;
    b.wait_text("#report-result", "Blocked by trunk").await;
    let narrow = js(
        &b,
        "return [...document.querySelectorAll('#main caption')]
        .filter((c) => c.getBoundingClientRect().width < 200).map((c) => c.textContent)",
    )
    .await;
    assert_eq!(narrow, Value::Array(vec![]), "narrow captions");
    b.close().await;
    srv.stop().await;
}
