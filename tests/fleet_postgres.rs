//! A fleet on one PostgreSQL store of record (issue 21, items 1 and 3): three real
//! `callguard serve` processes on the same configuration with `log.postgres`, the lists
//! moved into the store with `callguard store import`, then
//! (a) an entry added through instance 1's API is applied by instance 3 (its status
//!     shows the new rules version) and blocks instance 3's next call;
//! (e) instance 1, which wrote it, applied its own change exactly once;
//! (b) a rollback on instance 2 is applied by every instance;
//! (d) a velocity block made on instance 1 is listed on instance 2 and lifted from 3;
//! (c) PostgreSQL stopped and restarted while calls run: no call fails, the lists stay,
//!     an edit while it is down is refused with 503, one after it returns propagates.
//!
//! Needs PostgreSQL's server binaries (`.ci/install-deps`); without them it skips
//! (except under CI=true).

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fleet::{Fleet, wait};
use reqwest::{Method, StatusCode};
use serde_json::json;

const YAML: &str = r#"
normalize: { default_region: US }
default_trunk: support
http:
  tokens:
    - { name: ops, token_env: CALLGUARD_TEST_FLEET_TOKEN }
trunks:
  support:
    dids: ["+18005550100"]
    blocked_action: reject
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
    velocity:
      - { name: repeat-caller, scope: caller, max: 2, per: 10m, block_for: 24h }
"#;

const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                    Spam-1,+15550000002,exact,reject,true,first complaint\n";

const NEW_SPAMMER: &str = "+15557770001";

async fn reloads(f: &Fleet, i: usize) -> f64 {
    server::scrape_sum(
        f.instances[i].http.unwrap(),
        "callguard_config_reloads_total",
        &["result=\"success\""],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_lists_history_and_blocks_through_postgres() {
    let Some(f) = Fleet::start(YAML, &[("lists/spam.csv", SPAM)], 3) else {
        return;
    };

    // Before the import every instance screens from its files.
    assert_eq!(f.call(2, "+15550000002", "pre-1").await.0, "block");
    let st = f.status(0).await;
    assert_eq!(st["store"]["backend"], "postgres", "{st}");

    // Files → store, one command; every instance applies it.
    let config = f.instances[0].config.to_str().unwrap().to_string();
    let out = f.cli(&["store", "import", "--config", &config]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("spam: version 1"), "{text}");
    f.wait_applied(1).await;

    // (a) + (e): add on instance 1; instance 3 applies it and blocks the caller.
    assert_eq!(f.call(1, NEW_SPAMMER, "a-0").await.0, "allow");
    let reloads_before = reloads(&f, 0).await;
    let notes_before = f.status(0).await["store"]["notifications"]
        .as_u64()
        .unwrap();
    let (code, body) = f
        .send(
            0,
            Method::POST,
            "/api/v1/lists/spam/entries",
            Some(json!({ "rule_name": "Fleet-1", "pattern": NEW_SPAMMER, "match_type": "exact" })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["history_version"], 2, "{body}");
    let v_add = f.applied(0).await;
    assert!(v_add > 1, "the writer applied its change at once");
    f.wait_applied(v_add).await;
    let st3 = f.status(2).await;
    assert_eq!(st3["store"]["applied_version"], v_add, "{st3}");
    assert_eq!(
        f.call(2, NEW_SPAMMER, "a-1").await,
        ("block".into(), "blacklist".into())
    );
    // The writer's own notification arrives, and is not applied a second time.
    wait("instance 1 hears its own notification", || async {
        f.status(0).await["store"]["notifications"]
            .as_u64()
            .unwrap()
            > notes_before
    })
    .await;
    assert_eq!(reloads(&f, 0).await - reloads_before, 1.0, "applied once");
    assert_eq!(f.applied(0).await, v_add);

    // (b) rollback on instance 2 to the imported version: every instance follows.
    let (code, body) = f
        .send(
            1,
            Method::POST,
            "/api/v1/lists/spam/rollback",
            Some(json!({ "version": 1 })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["history_version"], 3, "{body}");
    let v_back = f.applied(1).await;
    assert!(v_back > v_add);
    f.wait_applied(v_back).await;
    for i in 0..3 {
        assert_eq!(
            f.call(i, NEW_SPAMMER, &format!("b-{i}")).await.0,
            "allow",
            "instance {i}"
        );
    }
    let h = f.get(2, "/api/v1/history?list=spam").await;
    let authors: Vec<_> = h["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["author"].clone())
        .collect();
    assert_eq!(
        authors,
        vec![json!("ops"), json!("ops"), json!("import")],
        "{h}"
    );
    let stored =
        f.pg.psql("SELECT count(*) FROM callguard_list_rows WHERE list = 'spam'");
    assert_eq!(stored, "1");

    // (d) a velocity block made on instance 1, listed on 2, lifted from 3.
    let repeat = "+15551112222";
    for (n, want) in [(1, "allow"), (2, "allow"), (3, "block")] {
        assert_eq!(
            f.call(0, repeat, &format!("d-{n}")).await.0,
            want,
            "call {n}"
        );
    }
    wait("instance 2 lists the block", || async {
        f.get(1, "/api/v1/velocity").await.as_array().unwrap().len() == 1
    })
    .await;
    let blocks = f.get(1, "/api/v1/velocity").await;
    assert_eq!(blocks[0]["subject"], repeat, "{blocks}");
    wait("instance 3 has the block", || async {
        f.get(2, "/api/v1/velocity").await.as_array().unwrap().len() == 1
    })
    .await;
    assert_eq!(
        f.call(2, repeat, "d-4").await,
        ("block".into(), "velocity".into())
    );
    let key = blocks[0]["key"]
        .as_str()
        .unwrap()
        .replace('|', "%7C")
        .replace('+', "%2B");
    let (code, body) = f
        .send(2, Method::DELETE, &format!("/api/v1/velocity/{key}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    for i in [0, 1] {
        let f = &f;
        wait(&format!("instance {i} lifts the block"), || async move {
            f.get(i, "/api/v1/velocity")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        })
        .await;
    }
    assert_eq!(
        f.pg.psql("SELECT count(*) FROM callguard_velocity_blocks"),
        "0"
    );
    assert_eq!(f.call(0, repeat, "d-5").await.0, "allow");

    // (c) PostgreSQL down and back while calls run on every instance.
    let f = Arc::new(f);
    let stop = Arc::new(AtomicBool::new(false));
    let placed = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for i in 0..3 {
        let (f, stop, placed) = (f.clone(), stop.clone(), placed.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // Every call succeeds, and the stored list keeps blocking.
                let (verdict, _) = f.call(i, "+15550000002", &format!("c-{i}-{n}")).await;
                assert_eq!(verdict, "block", "instance {i} call {n}");
                // A new caller each time: the velocity rule stays out of it.
                let caller = format!("+1555{}{n:06}", i + 5);
                let (verdict, _) = f.call(i, &caller, &format!("c-{i}-{n}-ok")).await;
                assert_eq!(verdict, "allow", "instance {i} call {n}");
                placed.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    let pg = f.clone();
    tokio::task::spawn_blocking(move || pg.pg.stop_server())
        .await
        .unwrap();
    wait("instance 1 sees the store down", || async {
        f.status(0).await["store"]["connected"] == false
    })
    .await;
    let (code, body) = f
        .send(
            0,
            Method::POST,
            "/api/v1/lists/spam/entries",
            Some(json!({ "rule_name": "Down-1", "pattern": "+15557770002" })),
        )
        .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let during = placed.load(Ordering::Relaxed);
    wait("calls go on while the store is down", || async {
        placed.load(Ordering::Relaxed) >= during + 6
    })
    .await;
    let pg = f.clone();
    tokio::task::spawn_blocking(move || pg.pg.start_again())
        .await
        .unwrap();
    for i in 0..3 {
        let f = &f;
        wait(&format!("instance {i} reconnects"), || async move {
            f.status(i).await["store"]["connected"] == true
        })
        .await;
    }
    let (code, body) = f
        .send(
            1,
            Method::POST,
            "/api/v1/lists/spam/entries",
            Some(
                json!({ "rule_name": "After-1", "pattern": "+15557770003", "match_type": "exact" }),
            ),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let v_after = f.applied(1).await;
    f.wait_applied(v_after).await;
    assert_eq!(f.call(0, "+15557770003", "c-after").await.0, "block");
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.expect("no call failed");
    }
    assert!(
        placed.load(Ordering::Relaxed) > during,
        "calls ran through the outage"
    );
    // Nothing lost: the list is the rolled-back one plus the edit after.
    assert_eq!(
        f.pg.psql("SELECT string_agg(rule_name, ',' ORDER BY pos) FROM callguard_list_rows WHERE list = 'spam'"),
        "Spam-1,After-1"
    );
}
