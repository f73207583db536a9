//! What scoped tokens see of the decision log, over the built binary: calls
//! for tenants acme and beta (and the default tenant) through both
//! simulators, then a tenant's token sees only its tenant's calls, stats,
//! overview and report, a user's token only the calls for that user, an
//! administrator every call with its `tenant` and `user`; a filter outside
//! the token's scope is refused with 403. The `metrics.tenant_label` option
//! adds a `tenant` label to the decision metrics, and only then. A log
//! written before the tenant columns is read (empty tenant) and upgraded.

#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use callguard::calllog::{CallRecord, LogQuery, LogReader};
use callguard::store::sqlite as store;
use callguard_sim::asterisk::AsteriskSim;
use callguard_sim::freeswitch::SimConfig;
use reqwest::StatusCode;
use serde_json::Value;

const ADMIN: &str = "tok-tv-admin-0123456789";
const ACME: &str = "tok-tv-acme-0123456789";
const BETA: &str = "tok-tv-beta-0123456789";
const ACME_101: &str = "tok-tv-acme-101-0123456789";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: done once, before the tests in this binary start servers or
        // read the environment.
        unsafe {
            std::env::set_var("CG_TV_ADMIN", ADMIN);
            std::env::set_var("CG_TV_ACME", ACME);
            std::env::set_var("CG_TV_BETA", BETA);
            std::env::set_var("CG_TV_ACME_101", ACME_101);
        }
    });
}

const HEADER: &str = "rule_name,pattern,match_type,action,enabled,notes\n";

/// acme blocks +15551112222; beta and the default tenant do not know it.
/// User 101 of acme has a block list.
const YAML: &str = r#"
http:
  protect_reads: true
  tokens:
    - { name: admin, token_env: CG_TV_ADMIN }
    - { name: acme-admin, token_env: CG_TV_ACME, tenant: acme }
    - { name: beta-admin, token_env: CG_TV_BETA, tenant: beta }
    - { name: acme-101, token_env: CG_TV_ACME_101, tenant: acme, user: "101" }
trunks:
  main: { dids: ["+18005550100"] }
tenants:
  acme:
    domains: [acme.example.com]
    trunks:
      main:
        blacklist:
          - { name: acme-spam, pattern: "+15551112222" }
    users:
      "101": { dids: ["+18005550101"], block: lists/acme-101-block.csv }
  beta:
    domains: [beta.example.com]
    lists:
      - { path: lists/beta.csv, as: blacklist }
"#;

fn spawn(tenant_label: bool) -> server::ServeProcess {
    env();
    let yaml = if tenant_label {
        format!("{YAML}metrics: {{ tenant_label: true }}\n")
    } else {
        YAML.to_string()
    };
    let block = format!("{HEADER}neighbour,+15553334444,,,true,\n");
    let beta = format!("{HEADER}beta-only,+15557776666,,,true,\n");
    server::spawn_binary(
        &yaml,
        &[
            ("lists/acme-101-block.csv", block.as_str()),
            ("lists/beta.csv", beta.as_str()),
        ],
    )
}

async fn agi(at: SocketAddr, uid: &str, tenant: Option<&str>, dnid: &str, caller: &str) -> String {
    let script = match tenant {
        Some(t) => format!("callfilter?tenant={t}"),
        None => "callfilter".to_string(),
    };
    let r = AsteriskSim::new()
        .uniqueid(uid)
        .callerid(caller)
        .script(&script)
        .dnid(dnid)
        .extension(dnid)
        .run(at)
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
    r.variables
        .get("CALLGUARD_VERDICT")
        .cloned()
        .unwrap_or_default()
}

async fn esl(at: SocketAddr, domain: &str, dest: &str, caller: &str) -> String {
    let r = SimConfig {
        caller_number: caller.into(),
        destination_number: dest.into(),
        variables: vec![("domain_name".into(), domain.into())],
        ..SimConfig::default()
    }
    .run(at)
    .await;
    assert!(r.error.is_none() && !r.timed_out, "{caller}: {r:?}");
    r.variable("callguard_verdict")
        .unwrap_or_default()
        .to_string()
}

/// The five calls: acme ×3 (two for user 101, one of them blocked by acme's
/// blacklist, one on FreeSWITCH), beta ×1 (FreeSWITCH, the same caller
/// acme blocks: allowed), the default tenant ×1.
async fn place_calls(p: &server::ServeProcess) {
    let (a, e) = (p.agi.unwrap(), p.esl.unwrap());
    let spam = "+15551112222";
    assert_eq!(
        agi(a, "a-101", Some("acme"), "+18005550101", spam).await,
        "block"
    );
    assert_eq!(
        agi(a, "a-other", Some("acme"), "+18005550199", "+15550001111").await,
        "allow"
    );
    assert_eq!(
        esl(e, "acme.example.com", "+18005550101", "+15550002222").await,
        "allow"
    );
    assert_eq!(
        esl(e, "beta.example.com", "+18005550100", spam).await,
        "allow"
    );
    assert_eq!(
        agi(a, "d-1", None, "+18005550100", "+15550003333").await,
        "allow"
    );
}

async fn get(http: SocketAddr, token: &str, path: &str) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{http}{path}"))
        .bearer_auth(token)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits (bounded) until the administrator sees `n` calls in the log.
async fn wait_calls(http: SocketAddr, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = get(http, ADMIN, "/api/v1/calls?limit=100").await;
        let rows = v.as_array().cloned().unwrap_or_default();
        if s == StatusCode::OK && rows.len() >= n {
            return rows;
        }
        assert!(Instant::now() < deadline, "{n} calls never logged: {s} {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn scopes(rows: &[Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["tenant"].as_str().unwrap_or("?").to_string(),
                r["user"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn calls(http: SocketAddr, token: &str, path: &str) -> Vec<(String, String)> {
    let (s, v) = get(http, token, path).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    scopes(v.as_array().unwrap())
}

#[tokio::test]
async fn each_token_sees_its_scopes_calls_stats_overview_and_report() {
    let p = spawn(false);
    let http = p.http.unwrap();
    place_calls(&p).await;
    let all = wait_calls(http, 5).await;
    // The administrator: every call, with its tenant and user.
    assert_eq!(
        scopes(&all),
        pairs(&[
            ("", ""),
            ("acme", ""),
            ("acme", "101"),
            ("acme", "101"),
            ("beta", "")
        ])
    );
    let blocked = all.iter().find(|r| r["unique_id"] == "a-101").unwrap();
    assert_eq!(
        (&blocked["tenant"], &blocked["user"], &blocked["verdict"]),
        (
            &Value::from("acme"),
            &Value::from("101"),
            &Value::from("block")
        )
    );
    assert_eq!(
        calls(http, ADMIN, "/api/v1/calls?tenant=beta").await,
        pairs(&[("beta", "")])
    );
    assert_eq!(
        calls(http, ADMIN, "/api/v1/calls?tenant=default").await,
        pairs(&[("", "")])
    );
    assert_eq!(calls(http, ADMIN, "/api/v1/calls?user=101").await.len(), 2);

    // A tenant's token: its tenant's calls only, whatever it asks.
    let acme3 = pairs(&[("acme", ""), ("acme", "101"), ("acme", "101")]);
    assert_eq!(calls(http, ACME, "/api/v1/calls").await, acme3);
    assert_eq!(calls(http, ACME, "/api/v1/calls?tenant=acme").await, acme3);
    assert_eq!(
        calls(http, ACME, "/api/v1/calls?user=101").await,
        pairs(&[("acme", "101"), ("acme", "101")])
    );
    // The trunk filter only narrows: the default tenant's trunk is not acme's.
    assert!(
        calls(http, ACME, "/api/v1/calls?trunk=main")
            .await
            .is_empty()
    );
    assert_eq!(
        calls(http, BETA, "/api/v1/calls").await,
        pairs(&[("beta", "")])
    );
    for path in [
        "/api/v1/calls?tenant=beta",
        "/api/v1/calls?tenant=default",
        "/api/v1/calls/stats?tenant=beta",
    ] {
        let (s, _) = get(http, ACME, path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }
    let (s, stats) = get(http, ACME, "/api/v1/calls/stats").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (stats["total"].as_u64(), stats["blocked"].as_u64()),
        (Some(3), Some(1))
    );

    // A user's token: the calls for that user only; /me links its calls.
    let u101 = pairs(&[("acme", "101"), ("acme", "101")]);
    assert_eq!(calls(http, ACME_101, "/api/v1/calls").await, u101);
    assert_eq!(calls(http, ACME_101, "/api/v1/me/calls").await, u101);
    let (_, me) = get(http, ACME_101, "/api/v1/me").await;
    assert_eq!(me["calls"], "/api/v1/me/calls");
    for path in ["/api/v1/calls?user=102", "/api/v1/calls?tenant=beta"] {
        let (s, _) = get(http, ACME_101, path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
    }

    // The report: the scope's totals; per-tenant sections for the administrator.
    let (s, r) = get(http, ACME, "/api/v1/report").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["total"].as_u64(), r["blocked"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(r["tenant"], "acme");
    assert!(r.get("tenants").is_none(), "{r}");
    let (_, r) = get(http, ACME_101, "/api/v1/report").await;
    assert_eq!(
        (r["total"].as_u64(), r["user"].as_str()),
        (Some(2), Some("101"))
    );
    let (_, r) = get(http, ADMIN, "/api/v1/report").await;
    assert_eq!(r["total"].as_u64(), Some(5));
    let tenants: Vec<(String, u64)> = r["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tenant"].as_str().unwrap().to_string(),
                t["calls"].as_u64().unwrap(),
            )
        })
        .collect();
    // The default tenant first, then the named ones by name.
    assert_eq!(
        tenants,
        [
            ("default".into(), 1),
            ("acme".into(), 3),
            ("beta".into(), 1)
        ]
    );

    // The overview: the scope's trunks and counts, nothing service-wide.
    let (s, o) = get(http, ACME, "/api/v1/overview").await;
    assert_eq!(s, StatusCode::OK);
    let trunks: Vec<&str> = o["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["trunk"].as_str())
        .collect();
    assert_eq!(trunks, ["acme.main"], "{o}");
    assert_eq!(o["trunks"][0]["today"]["calls"].as_u64(), Some(3));
    assert_eq!(o["scope"]["tenant"], "acme");
    assert!(o["listeners"].is_null(), "{o}");
    let (_, o) = get(http, ADMIN, "/api/v1/overview").await;
    let total: u64 = o["trunks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["today"]["calls"].as_u64())
        .sum();
    assert_eq!(total, 5, "{o}");
    assert!(o["scope"].is_null() && !o["listeners"].is_null(), "{o}");

    // The CLI on the same log: `log --tenant`, `report --tenant`, and the
    // per-tenant section of the whole report.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
            .args(args)
            .arg("--config")
            .arg(&p.config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let lines = cli(&["log", "--tenant", "acme", "--json"]);
    let rows: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(scopes(&rows), acme3);
    let table = cli(&["log", "--tenant", "acme", "--user", "101"]);
    assert!(table.lines().next().unwrap().contains("USER"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
    let r: Value =
        serde_json::from_str(&cli(&["report", "--tenant", "acme", "--format", "json"])).unwrap();
    assert_eq!(
        (r["total"].as_u64(), r["tenant"].as_str()),
        (Some(3), Some("acme"))
    );
    let text = cli(&["report", "--tenant", "beta"]);
    assert!(text.contains("tenant beta\ncalls 1 "), "{text}");
    let text = cli(&["report"]);
    assert!(text.contains("\nby tenant\n  default"), "{text}");

    // Off by default: no tenant label, the series as they always were.
    let acme_calls =
        server::scrape_sum(http, "callguard_calls_total", &["trunk=\"acme.main\""]).await;
    assert_eq!(acme_calls, 3.0);
    let body = metrics(http).await;
    assert!(
        !body
            .lines()
            .any(|l| l.starts_with("callguard_calls_total{") && l.contains("tenant=")),
        "{body}"
    );
}

async fn metrics(http: SocketAddr) -> String {
    reqwest::get(format!("http://{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_tenant_label_gives_per_tenant_series() {
    let p = spawn(true);
    let http = p.http.unwrap();
    place_calls(&p).await;
    wait_calls(http, 5).await;
    let sum = |t: &'static str| async move {
        server::scrape_sum(http, "callguard_calls_total", &[&format!("tenant=\"{t}\"")]).await
    };
    assert_eq!(sum("acme").await, 3.0);
    assert_eq!(sum("beta").await, 1.0);
    assert_eq!(sum("default").await, 1.0);
    // The rule that decided acme's blocked call, with its tenant.
    let hits = server::scrape_sum(
        http,
        "callguard_rule_hits_total",
        &["tenant=\"acme\"", "rule=\"acme-spam\""],
    )
    .await;
    assert_eq!(hits, 1.0, "{}", metrics(http).await);
}

/// A log written before the tenant columns (schema 2) reads with every call
/// in the default tenant; the writer upgrades it in place, keeping its rows.
#[test]
fn a_log_without_tenant_columns_reads_and_is_upgraded() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("calls.db");
    let rec = |uid: &str, tenant: &str| CallRecord {
        time: chrono::Utc::now(),
        unique_id: uid.into(),
        pbx: "asterisk".into(),
        trunk: "main".into(),
        caller_raw: "5551234567".into(),
        verdict: "allow".into(),
        list: "default".into(),
        action: "continue".into(),
        tenant: tenant.into(),
        ..CallRecord::default()
    };
    {
        let conn = store::open_writer(&path).unwrap();
        store::insert_record(&conn, &rec("old", "")).unwrap();
        conn.execute_batch(
            "DROP INDEX calls_tenant_time; ALTER TABLE calls DROP COLUMN tenant; \
             ALTER TABLE calls DROP COLUMN user_ext; PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let reader = LogReader::open(&path).unwrap();
    let q = |tenant: &str| LogQuery {
        tenant: Some(tenant.into()),
        ..LogQuery::default()
    };
    let rows = reader.query(&LogQuery::default()).unwrap();
    assert_eq!((rows.len(), rows[0].tenant.as_str()), (1, ""));
    assert_eq!(reader.query(&q("")).unwrap().len(), 1);
    assert!(reader.query(&q("acme")).unwrap().is_empty());
    assert_eq!(reader.stats(&q("acme")).unwrap().total, 0);
    drop(reader);
    let conn = store::open_writer(&path).unwrap();
    store::insert_record(&conn, &rec("new", "acme")).unwrap();
    let reader = LogReader::open(&path).unwrap();
    let rows = reader.query(&LogQuery::default()).unwrap();
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.unique_id.as_str(), r.tenant.as_str()))
        .collect();
    assert_eq!(got, [("new", "acme"), ("old", "")]);
    let by_tenant = reader.tenant_counts(&LogQuery::default()).unwrap();
    let names: Vec<(&str, u64)> = by_tenant
        .iter()
        .map(|t| (t.tenant.as_str(), t.calls))
        .collect();
    assert_eq!(names, [("", 1), ("acme", 1)]);
}
