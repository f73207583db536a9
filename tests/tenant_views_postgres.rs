//! The tenant and user of a call in the PostgreSQL log (`log.postgres`): a
//! table written before the `tenant` / `user_ext` columns is read (every call
//! in the default tenant), a newer writer adds the columns once, keeping the
//! rows, and the readers filter and count by tenant and user.
//!
//! The server is a throwaway cluster (tests/support/postgres.rs); without
//! PostgreSQL installed these tests skip, except under `CI=true`.

#[path = "support/postgres.rs"]
mod postgres;

use std::time::Duration;

use callguard::calllog::{CallLog, CallRecord, LogQuery, LogReader, PgTarget};
use chrono::Utc;
use postgres::PgCluster;
use prometheus::IntCounter;

fn target(pg: &PgCluster) -> PgTarget {
    let url = pg.url().replacen(
        "callguard@",
        &format!("callguard:{}@", postgres::PASSWORD),
        1,
    );
    PgTarget::parse(&url, None).expect("URL parses")
}

fn rec(uid: &str, tenant: &str, user: &str, verdict: &str) -> CallRecord {
    CallRecord {
        time: Utc::now(),
        unique_id: uid.into(),
        pbx: "freeswitch".into(),
        trunk: if tenant.is_empty() {
            "main".into()
        } else {
            format!("{tenant}.main")
        },
        caller_raw: "5551234567".into(),
        verdict: verdict.into(),
        list: "default".into(),
        action: "continue".into(),
        tenant: tenant.into(),
        user: user.into(),
        ..CallRecord::default()
    }
}

async fn read<T: Send + 'static>(
    t: &PgTarget,
    f: impl FnOnce(&LogReader) -> T + Send + 'static,
) -> T {
    let t = t.clone();
    tokio::task::spawn_blocking(move || f(&LogReader::connect(&t).expect("reader connects")))
        .await
        .unwrap()
}

async fn write(t: &PgTarget, rows: Vec<CallRecord>) {
    let dropped = IntCounter::new("dropped", "test").unwrap();
    let (log, _writer) =
        CallLog::start_postgres(t.clone(), 64, dropped, 0, Duration::from_secs(3600))
            .await
            .unwrap();
    for r in rows {
        assert!(log.record(r));
    }
    log.flush().await.unwrap();
    assert_eq!(log.write_errors(), 0);
}

fn q(tenant: Option<&str>, user: Option<&str>) -> LogQuery {
    LogQuery {
        tenant: tenant.map(str::to_string),
        user: user.map(str::to_string),
        ..LogQuery::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_table_is_read_then_upgraded_and_filtered_by_tenant_and_user() {
    let Some(pg) = PgCluster::start() else { return };
    let t = target(&pg);
    // A table as an older build left it: no tenant columns.
    write(&t, vec![rec("old", "", "", "allow")]).await;
    pg.psql(
        "DROP INDEX callguard_calls_tenant_time; \
         ALTER TABLE callguard_calls DROP COLUMN tenant, DROP COLUMN user_ext",
    );
    let (all, default, acme) = read(&t, |r| {
        (
            r.query(&LogQuery::default()).unwrap(),
            r.query(&q(Some(""), None)).unwrap().len(),
            r.stats(&q(Some("acme"), None)).unwrap().total,
        )
    })
    .await;
    assert_eq!((all.len(), all[0].tenant.as_str()), (1, ""));
    assert_eq!((default, acme), (1, 0));

    // A newer writer adds the columns (old rows: the default tenant).
    write(
        &t,
        vec![
            rec("a1", "acme", "101", "block"),
            rec("a2", "acme", "", "allow"),
            rec("b1", "beta", "", "allow"),
        ],
    )
    .await;
    let (acme, u101, beta, default, counts, stats) = read(&t, |r| {
        let ids = |q: LogQuery| -> Vec<String> {
            let mut v: Vec<String> = r
                .query(&q)
                .unwrap()
                .into_iter()
                .map(|c| c.unique_id)
                .collect();
            v.sort();
            v
        };
        (
            ids(q(Some("acme"), None)),
            r.query(&q(Some("acme"), Some("101"))).unwrap(),
            ids(q(Some("beta"), None)),
            ids(q(Some(""), None)),
            r.tenant_counts(&LogQuery::default()).unwrap(),
            r.stats(&q(Some("acme"), None)).unwrap(),
        )
    })
    .await;
    assert_eq!(acme, ["a1", "a2"]);
    assert_eq!(u101.len(), 1);
    assert_eq!(
        (u101[0].tenant.as_str(), u101[0].user.as_str()),
        ("acme", "101")
    );
    assert_eq!(beta, ["b1"]);
    assert_eq!(default, ["old"]);
    let counts: Vec<(&str, u64, u64)> = counts
        .iter()
        .map(|c| (c.tenant.as_str(), c.calls, c.blocked))
        .collect();
    assert_eq!(counts, [("", 1, 0), ("acme", 2, 1), ("beta", 1, 0)]);
    assert_eq!((stats.total, stats.blocked), (2, 1));
    assert_eq!(stats.blocked_by_trunk[0].key, "acme.main");
}
