//! Scoped API tokens over real HTTP: a tenant token reads and changes only
//! its tenant's lists (403 on another tenant's), a user token only its own
//! lists, `/api/v1/me` says who the token is, and unscoped tokens stay
//! system-wide administrators.

#[path = "support/server.rs"]
mod server;

use std::sync::Once;

use reqwest::StatusCode;
use serde_json::Value;

const ADMIN: &str = "tok-admin-0123456789";
const ACME: &str = "tok-acme-0123456789";
const BETA: &str = "tok-beta-0123456789";
const ACME_101: &str = "tok-acme-101-0123456789";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: done once, before the tests in this binary start servers or
        // read the environment.
        unsafe {
            std::env::set_var("CG_TT_ADMIN", ADMIN);
            std::env::set_var("CG_TT_ACME", ACME);
            std::env::set_var("CG_TT_BETA", BETA);
            std::env::set_var("CG_TT_ACME_101", ACME_101);
        }
    });
}

const HEADER: &str = "rule_name,pattern,match_type,action,enabled,notes\n";

const YAML: &str = r#"
http:
  protect_reads: true
  tokens:
    - { name: admin, token_env: CG_TT_ADMIN }
    - { name: acme-admin, token_env: CG_TT_ACME, tenant: acme }
    - { name: beta-admin, token_env: CG_TT_BETA, tenant: beta }
    - { name: acme-101, token_env: CG_TT_ACME_101, tenant: acme, user: "101" }
lists:
  - { path: lists/system.csv, as: blacklist }
tenants:
  acme:
    domains: [acme.example.com]
    lists:
      - { path: lists/acme-spam.csv, as: blacklist, name: spam }
    users:
      "101": { dids: ["+18005550101"], block: lists/acme-101-block.csv }
      "102": { block: lists/acme-102-block.csv }
  beta:
    lists:
      - { path: lists/beta-spam.csv, as: blacklist, name: spam }
"#;

async fn start() -> server::TestServer {
    env();
    let row = format!("{HEADER}one,+15551112222,,,true,\n");
    server::start_with(
        YAML,
        &[
            ("lists/system.csv", row.as_str()),
            ("lists/acme-spam.csv", row.as_str()),
            ("lists/beta-spam.csv", row.as_str()),
        ],
    )
    .await
}

async fn get(srv: &server::TestServer, token: &str, path: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{}{path}", srv.http()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn add(srv: &server::TestServer, token: &str, list: &str, number: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("http://{}/api/v1/lists/{list}/entries", srv.http()))
        .bearer_auth(token)
        .json(&serde_json::json!({ "rule_name": format!("r{number}"), "pattern": number }))
        .send()
        .await
        .unwrap()
        .status()
}

fn names(v: &Value) -> Vec<String> {
    v["lists"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| l["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_tenant_token_gets_403_on_another_tenants_list() {
    let mut srv = start().await;
    // Its own list: readable and writable.
    let (s, _) = get(&srv, ACME, "/api/v1/lists/acme.spam").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        add(&srv, ACME, "acme.spam", "+15553334444").await,
        StatusCode::OK
    );
    // Another tenant's, the system's and a missing one: 403, read or write.
    for list in ["beta.spam", "system", "protected", "nosuch"] {
        let (s, _) = get(&srv, ACME, &format!("/api/v1/lists/{list}")).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{list}");
        assert_eq!(
            add(&srv, ACME, list, "+15556667777").await,
            StatusCode::FORBIDDEN,
            "{list}"
        );
    }
    let (s, _) = get(&srv, BETA, "/api/v1/lists/acme.spam").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Routes that are not scope-aware are refused to a scoped token (the
    // call views answer it with its scope's calls: tests/tenant_views.rs).
    for path in ["/api/v1/lists", "/api/v1/history"] {
        let (s, _) = get(&srv, ACME, path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    // The administrator reads everything.
    for list in ["beta.spam", "system", "acme.spam"] {
        let (s, _) = get(&srv, ADMIN, &format!("/api/v1/lists/{list}")).await;
        assert_eq!(s, StatusCode::OK, "{list}");
    }
    let (s, all) = get(&srv, ADMIN, "/api/v1/lists").await;
    assert_eq!(s, StatusCode::OK);
    assert!(names(&all).contains(&"beta.spam".to_string()));
    srv.stop().await;
}

#[tokio::test]
async fn a_user_token_sees_only_its_own_lists_and_me_says_so() {
    let mut srv = start().await;
    let (s, me) = get(&srv, ACME_101, "/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["token"], "acme-101");
    assert_eq!(me["tenant"], "acme");
    assert_eq!(me["user"], "101");
    assert_eq!(names(&me), ["acme.user.101.block"]);
    // A user list nobody wrote yet: the first change creates its file, and
    // the next call to the user is blocked by it.
    assert_eq!(
        add(&srv, ACME_101, "acme.user.101.block", "+15559998888").await,
        StatusCode::OK
    );
    let (s, rows) = get(&srv, ACME_101, "/api/v1/lists/acme.user.101.block").await;
    assert_eq!(s, StatusCode::OK);
    assert!(rows.to_string().contains("+15559998888"), "{rows}");
    let r = callguard_sim::asterisk::AsteriskSim::new()
        .callerid("+15559998888")
        .script("callfilter?tenant=acme")
        .dnid("+18005550101")
        .run(srv.agi())
        .await;
    assert_eq!(
        r.variables.get("CALLGUARD_LIST").map(String::as_str),
        Some("user_block")
    );
    // Not the tenant's list, not another user's.
    for list in ["acme.spam", "acme.user.102.block"] {
        let (s, _) = get(&srv, ACME_101, &format!("/api/v1/lists/{list}")).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{list}");
        assert_eq!(
            add(&srv, ACME_101, list, "+15556667777").await,
            StatusCode::FORBIDDEN
        );
    }
    // The tenant's token sees the tenant's and its users' lists, not beta's.
    let (s, mine) = get(&srv, ACME, "/api/v1/me/lists").await;
    assert_eq!(s, StatusCode::OK);
    let mut n = names(&mine);
    n.sort();
    assert_eq!(
        n,
        [
            "acme.blacklist",
            "acme.spam",
            "acme.user.101.block",
            "acme.user.102.block",
            "acme.whitelist"
        ]
    );
    // Without a token, /me is refused.
    let r = reqwest::Client::new()
        .get(format!("http://{}/api/v1/me", srv.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    srv.stop().await;
}
