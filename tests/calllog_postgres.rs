//! The decision log in a real PostgreSQL (`log.postgres`): the writer task's batches, the
//! readers' filters and stats, retention, and a two-instance fleet whose calls
//! `GET /api/v1/calls` and `callguard log` (the binary) both show. The password only ever
//! travels through `log.postgres_password_env` and is never printed.
//!
//! The server is a throwaway cluster (tests/support/postgres.rs); without PostgreSQL
//! installed these tests skip, except under `CI=true`.

use callguard_sim::asterisk;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/server.rs"]
mod server;

use std::process::Command;
use std::time::Duration;

use asterisk::AsteriskSim;
use callguard::calllog::{CallEnd, CallLog, CallRecord, LogQuery, LogReader, PgTarget};
use chrono::{TimeDelta, Utc};
use postgres::PgCluster;
use prometheus::IntCounter;
use serde_json::Value;

/// The variable the tests' configs name in `log.postgres_password_env`.
const PASSWORD_ENV: &str = "CALLGUARD_TEST_PG_PASSWORD";

/// Only the fleet test sets it (the in-process services read it from the process
/// environment); the other tests pass the password without touching the environment.
fn set_password_env() {
    // SAFETY: std's environment lock covers std's readers; this variable is set once
    // per process, to one value, and nothing else writes it.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe { std::env::set_var(PASSWORD_ENV, postgres::PASSWORD) });
}

/// The writer and reader tests' target: the password in the URL (also accepted).
fn target(pg: &PgCluster) -> PgTarget {
    let url = pg.url().replacen(
        "callguard@",
        &format!("callguard:{}@", postgres::PASSWORD),
        1,
    );
    PgTarget::parse(&url, None).expect("URL parses")
}

fn record(
    uid: &str,
    caller: &str,
    verdict: &str,
    rule: Option<&str>,
    age: TimeDelta,
) -> CallRecord {
    CallRecord {
        time: Utc::now() - age,
        unique_id: uid.to_string(),
        pbx: "asterisk".into(),
        trunk: "support".into(),
        did: "+18005550100".into(),
        caller_raw: caller.to_string(),
        caller_e164: Some(format!("+1{caller}")),
        caller_name: "Caller".into(),
        anonymous: false,
        verdict: verdict.to_string(),
        list: if verdict == "block" {
            "blacklist"
        } else {
            "default"
        }
        .into(),
        list_name: "spam".into(),
        rule: rule.map(str::to_string),
        action: "reject".into(),
        reason: "test".into(),
        decision_ns: 1234,
        fail_open: false,
        tenant: String::new(),
        user: String::new(),
    }
}

/// Runs a blocking reader call off the test's runtime (the blocking client has its own).
async fn read<T: Send + 'static>(
    t: &PgTarget,
    f: impl FnOnce(&LogReader) -> T + Send + 'static,
) -> T {
    let t = t.clone();
    tokio::task::spawn_blocking(move || f(&LogReader::connect(&t).expect("reader connects")))
        .await
        .unwrap()
}

/// A call never screened is written whole (issue 19.5): its end lands on its
/// own row even with an empty unique id that other rows share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_written_whole_keeps_its_own_end_without_a_unique_id() {
    let Some(pg) = PgCluster::start() else { return };
    let t = target(&pg);
    let dropped = IntCounter::new("dropped", "test").unwrap();
    let (log, _writer) =
        CallLog::start_postgres(t.clone(), 64, dropped, 0, Duration::from_secs(3600))
            .await
            .unwrap();
    for ms in [10u64, 20] {
        let mut r = record("", "5550000001", "unscreened", None, TimeDelta::zero());
        r.reason = format!("not screened after {ms} ms");
        assert!(log.record_ended(
            r,
            CallEnd {
                unique_id: String::new(),
                end_state: "not_screened".into(),
                hangup_cause: None,
                duration_ms: ms,
            }
        ));
        // A decided call without an id, its end not yet known.
        assert!(log.record(record("", "5550000002", "allow", None, TimeDelta::zero())));
    }
    log.flush().await.unwrap();
    let rows = read(&t, |r| r.query(&LogQuery::default()).unwrap()).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for ms in [10, 20] {
        let r = rows
            .iter()
            .find(|c| c.reason == format!("not screened after {ms} ms"))
            .unwrap();
        assert_eq!(r.end_state.as_deref(), Some("not_screened"));
        assert_eq!(r.duration_ms, Some(ms));
    }
    assert!(
        rows.iter()
            .filter(|c| c.verdict == "allow")
            .all(|c| c.end_state.is_none()),
        "{rows:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_batches_and_readers_filter_count_and_purge() {
    let Some(pg) = PgCluster::start() else { return };
    let t = target(&pg);
    let dropped = IntCounter::new("dropped", "test").unwrap();
    // Retention 30 days; the hourly purge is not due during the test.
    let (log, _writer) = CallLog::start_postgres(
        t.clone(),
        5_000,
        dropped.clone(),
        30,
        Duration::from_secs(3600),
    )
    .await
    .unwrap();

    // More rows than one INSERT statement carries, and than one writer batch.
    for i in 0..1_200 {
        let caller = format!("555{i:07}");
        assert!(log.record(record(
            &format!("u{i}"),
            &caller,
            "allow",
            None,
            TimeDelta::zero()
        )));
    }
    assert!(log.record(record(
        "b1",
        "5551234567",
        "block",
        Some("Busy"),
        TimeDelta::zero()
    )));
    assert!(log.finish(CallEnd {
        unique_id: "b1".into(),
        end_state: "completed".into(),
        hangup_cause: Some("17".into()),
        duration_ms: 420,
    }));
    // Two rows past retention.
    assert!(log.record(record(
        "old1",
        "5550000001",
        "block",
        Some("Busy"),
        TimeDelta::days(40)
    )));
    assert!(log.record(record(
        "old2",
        "5550000002",
        "block",
        Some("Old"),
        TimeDelta::days(41)
    )));
    log.flush().await.unwrap();
    assert_eq!(log.write_errors(), 0);
    assert_eq!(dropped.get(), 0);
    assert_eq!(pg.psql("SELECT count(*) FROM callguard_calls"), "1203");

    let rows = read(&t, |r| {
        r.query(&LogQuery {
            caller: Some("+1 (555) 123-4567".into()),
            ..LogQuery::default()
        })
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let b1 = &rows[0];
    assert_eq!(
        (
            b1.unique_id.as_str(),
            b1.verdict.as_str(),
            b1.rule.as_deref()
        ),
        ("b1", "block", Some("Busy"))
    );
    assert_eq!(b1.end_state.as_deref(), Some("completed"));
    assert_eq!(
        (b1.hangup_cause.as_deref(), b1.duration_ms),
        (Some("17"), Some(420))
    );
    assert_eq!(b1.caller_e164.as_deref(), Some("+15551234567"));
    assert!(b1.ended_at.is_some());

    let newest = read(&t, |r| {
        r.query(&LogQuery {
            limit: 3,
            ..LogQuery::default()
        })
    })
    .await
    .unwrap();
    assert_eq!(newest.len(), 3);
    assert!(
        newest.windows(2).all(|w| w[0].time >= w[1].time),
        "newest first"
    );

    let recent_blocks = read(&t, |r| {
        r.query(&LogQuery {
            verdict: Some("block".into()),
            since: Some(Utc::now() - TimeDelta::days(1)),
            ..LogQuery::default()
        })
    })
    .await
    .unwrap();
    assert_eq!(recent_blocks.len(), 1);

    let stats = read(&t, |r| r.stats(&LogQuery::default())).await.unwrap();
    assert_eq!((stats.total, stats.blocked, stats.allowed), (1203, 3, 1200));
    let by_rule: Vec<(String, u64)> = stats
        .blocked_by_rule
        .iter()
        .map(|c| (c.key.clone(), c.calls))
        .collect();
    assert_eq!(by_rule, vec![("Busy".into(), 2), ("Old".into(), 1)]);

    let found = read(&t, |r| r.find_by_unique_id("u7")).await.unwrap();
    assert_eq!(found.map(|c| c.caller_raw), Some("5550000007".to_string()));

    // Retention: the two old rows go, nothing else.
    assert_eq!(log.purge_now().await.unwrap(), 2);
    assert_eq!(pg.psql("SELECT count(*) FROM callguard_calls"), "1201");
    log.close().await.unwrap();
}

/// Two services share one table: each decides its own calls, either one's API and the
/// CLI show the fleet's calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_two_shares_the_log_through_the_api_and_the_cli() {
    let Some(pg) = PgCluster::start() else { return };
    set_password_env();
    let yaml = format!(
        "{}\nlog: {{ path: calls.db, postgres: \"{}\", postgres_password_env: {PASSWORD_ENV} }}\n",
        server::SCREEN_YAML,
        pg.url()
    );
    let mut one = server::start(&yaml).await;
    let mut two = server::start(&yaml).await;
    for (srv, uid, caller) in [
        (&one, "fleet-1", "+15550000001"),
        (&two, "fleet-2", "+15557654321"),
        (&two, "fleet-3", "+15550000001"),
    ] {
        let r = AsteriskSim::new()
            .callerid(caller)
            .uniqueid(uid)
            .run(srv.agi())
            .await;
        assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
    }
    for srv in [&one, &two] {
        srv.running()
            .state
            .log
            .as_ref()
            .unwrap()
            .flush()
            .await
            .unwrap();
    }
    // The SQLite file at log.path keeps the list history only: no call went there.
    let db = rusqlite::Connection::open(one.dir.path().join("calls.db")).unwrap();
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'calls'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "calls went to the SQLite file");

    for srv in [&one, &two] {
        let v: Value = reqwest::get(format!("http://{}/api/v1/calls", srv.http()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let uids: Vec<&str> = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|c| c["unique_id"].as_str().unwrap())
            .collect();
        assert_eq!(uids, ["fleet-3", "fleet-2", "fleet-1"]);
        let s: Value = reqwest::get(format!("http://{}/api/v1/calls/stats", srv.http()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(s["total"], 3, "{s}");
    }

    // The CLI, as support would run it on any instance.
    let out = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["log", "--json", "--caller", "+1 555 000 0001", "--config"])
        .arg(&one.config)
        .env(PASSWORD_ENV, postgres::PASSWORD)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let uids: Vec<&str> = rows
        .iter()
        .map(|r| r["unique_id"].as_str().unwrap())
        .collect();
    assert_eq!(uids, ["fleet-3", "fleet-1"]);

    // A wrong password: a clean error naming the server, never the password.
    let out = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["log", "--config"])
        .arg(&one.config)
        .env(PASSWORD_ENV, "not-the-password")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("callguard@127.0.0.1:{}/callguard", pg.port())),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password") && !stderr.contains(postgres::PASSWORD));

    one.stop().await;
    two.stop().await;
}

#[test]
fn a_bad_url_is_refused_by_check_with_its_place() {
    let (dir, config) = server::write_config(
        "\nlog: { path: calls.db, postgres: \"postgres://u@h:notaport/db\" }\n",
        &[],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        format!("{stdout}{stderr}").contains("callguard.yaml:2:"),
        "{stdout}{stderr}"
    );
    drop(dir);
}
