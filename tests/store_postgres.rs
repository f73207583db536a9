//! A service with its decision log in a real PostgreSQL (`log.postgres`): the overview's
//! counts and the trunks' hit counts come from PostgreSQL (not from the SQLite file at
//! `log.path`, which holds no call); with `log.postgres` PostgreSQL is also the lists'
//! store of record (issue 21): list versions (history, rollback) and the temporary
//! velocity blocks are there too, not in the SQLite file. (`tests/fleet_postgres.rs`
//! runs three instances on one store.)
//!
//! The server is a throwaway cluster (tests/support/postgres.rs); without PostgreSQL
//! installed these tests skip, except under `CI=true`.

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod server;

use std::path::Path;

use callguard::app;
use callguard_sim::asterisk::AsteriskSim;
use postgres::PgCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The variables the config names for the database password and the API token.
const PASSWORD_ENV: &str = "CALLGUARD_TEST_STORE_PG_PASSWORD";
const TOKEN_ENV: &str = "CALLGUARD_TEST_STORE_TOKEN";
const TOKEN: &str = "s3cret-store-token";

fn set_env() {
    // SAFETY: std's environment lock covers std's readers; these variables are set once
    // per process, to one value each, before any service of this binary starts.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe {
        std::env::set_var(PASSWORD_ENV, postgres::PASSWORD);
        std::env::set_var(TOKEN_ENV, TOKEN);
    });
}

const YAML: &str = r#"
normalize: { default_region: US }
default_trunk: support
http:
  tokens:
    - { name: ops, token_env: CALLGUARD_TEST_STORE_TOKEN }
trunks:
  support:
    dids: ["+18005550100"]
    blocked_action: reject
    blacklist:
      - { name: Busy, pattern: "+15550000001" }
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
    velocity:
      - { name: repeat-caller, scope: caller, max: 2, per: 10m, block_for: 24h }
"#;

const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                    Spam-1,+15550000002,exact,reject,true,first complaint\n";

async fn call(srv: &server::TestServer, caller: &str, uid: &str) -> String {
    let r = AsteriskSim::new()
        .callerid(caller)
        .uniqueid(uid)
        .run(srv.agi())
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
    r.variables["CALLGUARD_VERDICT"].clone()
}

async fn get(srv: &server::TestServer, path: &str) -> Value {
    let r = reqwest::get(format!("http://{}{path}", srv.http()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// Rows of `table` in the SQLite file at `log.path`; `None` when it has no such table.
fn sqlite_rows(db: &Path, table: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    (exists == 1).then(|| {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    })
}

/// The hits the trunks screen shows for `rule` of the list named `list`.
fn hits(trunks: &Value, list: &str, rule: &str) -> Value {
    let lists = trunks["trunks"][0]["lists"].as_array().unwrap();
    let l = lists
        .iter()
        .find(|l| l["name"] == list)
        .unwrap_or_else(|| panic!("no list {list}: {trunks}"));
    let r = l["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == rule)
        .unwrap_or_else(|| panic!("no rule {rule} in {list}: {l}"));
    r["hits"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_log_postgres_overview_hits_history_rollback_and_velocity_blocks_work() {
    let Some(pg) = PgCluster::start() else { return };
    set_env();
    let yaml = format!(
        "{YAML}\nlog: {{ path: calls.db, postgres: \"{}\", postgres_password_env: {PASSWORD_ENV} }}\n",
        pg.url()
    );
    let mut srv = server::start_with(&yaml, &[("lists/spam.csv", SPAM)]).await;
    let db = srv.dir.path().join("calls.db");

    // Seven calls: two by the inline rule, one by the list file, one allowed, and a
    // repeat caller whose third call starts a velocity block.
    for (caller, uid, verdict) in [
        ("+15550000001", "busy-1", "block"),
        ("+15550000001", "busy-2", "block"),
        ("+15550000002", "spam-1", "block"),
        ("+15553334444", "ok-1", "allow"),
        ("+15551112222", "rep-1", "allow"),
        ("+15551112222", "rep-2", "allow"),
        ("+15551112222", "rep-3", "block"),
    ] {
        assert_eq!(call(&srv, caller, uid).await, verdict, "{uid}");
    }
    srv.running()
        .state
        .log
        .as_ref()
        .unwrap()
        .flush()
        .await
        .unwrap();
    assert_eq!(pg.psql("SELECT count(*) FROM callguard_calls"), "7");
    assert_eq!(
        sqlite_rows(&db, "calls"),
        None,
        "calls went to the SQLite file"
    );

    // Overview: the counts come from PostgreSQL, without a log error.
    let o = get(&srv, "/api/v1/overview").await;
    assert_eq!(o["log_error"], Value::Null, "{o}");
    let counts = json!({ "calls": 7, "blocked": 4, "fail_open": 0 });
    assert_eq!(
        o["trunks"],
        json!([{ "trunk": "support", "today": counts, "last_hour": counts }]),
        "{o}"
    );

    // Hit counts per rule, from PostgreSQL too.
    let t = get(&srv, "/api/v1/trunks").await;
    assert_eq!(hits(&t, "support.blacklist", "Busy"), 2, "{t}");
    assert_eq!(hits(&t, "spam", "Spam-1"), 1, "{t}");

    // History and rollback: the versions are in PostgreSQL, the store of record.
    let http = reqwest::Client::new();
    let base = format!("http://{}", srv.http());
    let csv = "rule_name,pattern,match_type,action,enabled,notes\n\
               Spam-2,+15550000003,exact,reject,true,\n";
    let r = http
        .put(format!("{base}/api/v1/lists/spam"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let h = get(&srv, "/api/v1/history?list=spam").await;
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{h}");
    assert_eq!(versions[0]["author"], "ops");
    assert_eq!(versions[1]["author"], "file");
    let r = http
        .post(format!("{base}/api/v1/lists/spam/rollback"))
        .bearer_auth(TOKEN)
        .json(&json!({ "version": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["history_version"], 3, "{v}");
    // The list file is untouched (the store holds the list); the rules run the store's.
    assert_eq!(
        std::fs::read_to_string(srv.dir.path().join("lists/spam.csv")).unwrap(),
        SPAM
    );
    assert_eq!(call(&srv, "+15550000003", "spam-2").await, "allow");
    assert_eq!(sqlite_rows(&db, "list_versions"), None);
    assert_eq!(
        pg.psql("SELECT count(*) FROM callguard_list_versions WHERE list = 'spam'"),
        "3"
    );

    // Velocity blocks: in PostgreSQL, shown by the API, kept across a restart.
    let blocks = get(&srv, "/api/v1/velocity").await;
    assert_eq!(blocks.as_array().unwrap().len(), 1, "{blocks}");
    assert_eq!(blocks[0]["subject"], "+15551112222");
    assert_eq!(sqlite_rows(&db, "velocity_blocks"), None);
    assert_eq!(
        pg.psql("SELECT count(*) FROM callguard_velocity_blocks"),
        "1"
    );
    srv.stop().await;
    srv.running = Some(app::start(&srv.config).await.unwrap());
    let r = AsteriskSim::new()
        .callerid("+15551112222")
        .uniqueid("after-restart")
        .run(srv.agi())
        .await;
    assert_eq!(
        r.variables["CALLGUARD_LIST"], "velocity",
        "{:?}",
        r.variables
    );
    srv.stop().await;

    // The CLI reads the same blocks, with log.postgres set.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["log", "--blocks", "--config"])
        .arg(&srv.config)
        .env(PASSWORD_ENV, postgres::PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("repeat-caller") && text.contains("+15551112222"),
        "{text}"
    );
}
