//! `callguard log` (the real binary) on a log with known rows, and
//! `GET /api/v1/calls` on the running service after real FastAGI calls.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use asterisk::AsteriskSim;
use callguard::calllog::{CallEnd, CallLog, CallRecord};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use prometheus::IntCounter;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The CLI on a log written through the real writer

struct Row {
    uid: &'static str,
    time: DateTime<Utc>,
    pbx: &'static str,
    trunk: &'static str,
    caller: &'static str,
    e164: Option<&'static str>,
    verdict: &'static str,
    list: &'static str,
    rule: Option<&'static str>,
    action: &'static str,
    end: &'static str,
}

/// Four calls: two in the last hour, one two hours ago, one in 2020. Newest first.
fn rows() -> Vec<Row> {
    let now = Utc::now();
    let r = |uid, time, pbx, trunk, caller, e164, verdict, list, rule, action, end| Row {
        uid,
        time,
        pbx,
        trunk,
        caller,
        e164,
        verdict,
        list,
        rule,
        action,
        end,
    };
    vec![
        r(
            "a1",
            now - TimeDelta::minutes(10),
            "asterisk",
            "support",
            "5550000001",
            Some("+15550000001"),
            "block",
            "blacklist",
            Some("Busy"),
            "reject",
            "completed",
        ),
        r(
            "a2",
            now - TimeDelta::minutes(20),
            "freeswitch",
            "sales",
            "+15557654321",
            Some("+15557654321"),
            "allow",
            "default",
            None,
            "pass",
            "completed",
        ),
        r(
            "a3",
            now - TimeDelta::hours(2),
            "asterisk",
            "support",
            "+442071234567",
            Some("+442071234567"),
            "block",
            "blacklist",
            Some("UK"),
            "reject",
            "completed",
        ),
        r(
            "a4",
            Utc.with_ymd_and_hms(2020, 1, 15, 10, 0, 0).unwrap(),
            "asterisk",
            "sales",
            "",
            None,
            "block",
            "blacklist",
            Some("Hidden"),
            "msg",
            "caller_hangup",
        ),
    ]
}

/// Writes `rows()` into `path` with the service's own writer and closes it.
async fn write_log(path: &Path) {
    let dropped = IntCounter::new("dropped", "test").unwrap();
    let (log, writer) = CallLog::start(path, 100, dropped, 0, Duration::from_secs(3600)).unwrap();
    for row in rows() {
        assert!(log.record(CallRecord {
            time: row.time,
            unique_id: row.uid.into(),
            pbx: row.pbx.into(),
            trunk: row.trunk.into(),
            did: "+18005550100".into(),
            caller_raw: row.caller.into(),
            caller_e164: row.e164.map(Into::into),
            caller_name: String::new(),
            anonymous: row.caller.is_empty(),
            verdict: row.verdict.into(),
            list: row.list.into(),
            list_name: String::new(),
            rule: row.rule.map(Into::into),
            action: row.action.into(),
            reason: format!("{} by {}", row.verdict, row.rule.unwrap_or("default")),
            decision_ns: 1000,
            fail_open: false,
            tenant: String::new(),
            user: String::new(),
        }));
        assert!(log.finish(CallEnd {
            unique_id: row.uid.into(),
            end_state: row.end.into(),
            hangup_cause: Some("NORMAL_CLEARING".into()),
            duration_ms: 1200,
        }));
    }
    log.close().await.unwrap();
    writer.await.unwrap();
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn callguard(args: &[&str], cwd: &Path) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .arg("log")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run callguard log");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The unique ids `callguard log --json …` prints, in order.
fn uids(db: &Path, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["--db", db.to_str().unwrap(), "--json"];
    args.extend_from_slice(filters);
    let out = callguard(&args, db.parent().unwrap());
    assert_eq!(out.code, 0, "{filters:?}: {}", out.stderr);
    out.stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["unique_id"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Issue 10.8: the table shows the unique id (what `block --from-call`
/// takes) and the deciding list's name beside its kind; an exclusive-mode
/// block shows `exclusive` as its rule; `--stats` counts fail-open and
/// fail-closed calls.
#[tokio::test]
async fn log_shows_unique_id_list_name_exclusive_rule_and_fail_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    let dropped = IntCounter::new("dropped", "test").unwrap();
    let (log, writer) = CallLog::start(&db, 100, dropped, 0, Duration::from_secs(3600)).unwrap();
    let now = Utc::now();
    let rec = |uid: &str, verdict: &str, list: &str, name: &str, rule: Option<&str>, fail_open| {
        CallRecord {
            time: now,
            unique_id: uid.into(),
            pbx: "asterisk".into(),
            trunk: "exec-line".into(),
            did: "+18005550199".into(),
            caller_raw: "+15550000001".into(),
            caller_e164: Some("+15550000001".into()),
            caller_name: String::new(),
            anonymous: false,
            verdict: verdict.into(),
            list: list.into(),
            list_name: name.into(),
            rule: rule.map(Into::into),
            action: "reject".into(),
            reason: "r".into(),
            decision_ns: 1000,
            fail_open,
            tenant: String::new(),
            user: String::new(),
        }
    };
    for r in [
        rec(
            "1795432537.14",
            "block",
            "blacklist",
            "spam",
            Some("Spam-42"),
            false,
        ),
        rec("1795432537.15", "block", "exclusive", "", None, false),
        rec(
            "1795432537.16",
            "allow",
            "whitelist",
            "exec-vip",
            Some("CFO"),
            false,
        ),
        rec("1795432537.17", "allow", "fail", "", None, true),
        rec("1795432537.18", "block", "fail", "", None, false),
    ] {
        assert!(log.record(r));
    }
    log.close().await.unwrap();
    writer.await.unwrap();
    let db_arg = db.to_str().unwrap();

    let out = callguard(&["--db", db_arg], dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("UNIQUE-ID"),
        "{}",
        out.stdout
    );
    let line = |uid: &str| {
        *lines
            .iter()
            .find(|l| l.contains(uid))
            .unwrap_or_else(|| panic!("{uid} in {}", out.stdout))
    };
    assert!(
        line("1795432537.14").contains("blacklist (spam)"),
        "{}",
        out.stdout
    );
    assert!(
        line("1795432537.16").contains("whitelist (exec-vip)"),
        "{}",
        out.stdout
    );
    let excl = line("1795432537.15");
    let rule_col = lines[0].find("RULE").unwrap();
    assert!(excl[rule_col..].starts_with("exclusive"), "{}", out.stdout);

    let json = callguard(
        &["--db", db_arg, "--json", "--rule", "exclusive"],
        dir.path(),
    );
    let v: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["unique_id"], "1795432537.15");
    assert_eq!(v["rule"], "exclusive");
    let json = callguard(&["--db", db_arg, "--json", "--rule", "Spam-42"], dir.path());
    let v: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["list_name"], "spam");

    let out = callguard(&["--db", db_arg, "--stats"], dir.path());
    assert!(
        out.stdout
            .starts_with("calls: 5  blocked: 3  allowed: 2  fail-open: 1  fail-closed: 1\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  exclusive  1\n"), "{}", out.stdout);
    // Lists by name, as `callguard report` names them (issue 27): `spam`, not its kind
    // `blacklist`; a block without a named list keeps its kind (`exclusive`, `fail`).
    let by_list = out
        .stdout
        .split("blocked by list:\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let keys: Vec<&str> = by_list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(keys, ["exclusive", "fail", "spam"], "{}", out.stdout);
    let out = callguard(&["--db", db_arg, "--stats", "--json"], dir.path());
    let s: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let names: Vec<&str> = s["blocked_by_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    assert_eq!(names, ["exclusive", "fail", "spam"], "{s}");
    assert_eq!(
        (s["fail_open"].as_u64(), s["fail_closed"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn log_filters_json_stats_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calls.db");
    write_log(&db).await;

    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["a1", "a2", "a3", "a4"]),
        (&["--since", "1h"], &["a1", "a2"]),
        (&["--until", "1h"], &["a3", "a4"]),
        (&["--since", "2020-01-16"], &["a1", "a2", "a3"]),
        (&["--until", "2020-01-16T00:00:00Z"], &["a4"]),
        (&["--verdict", "block"], &["a1", "a3", "a4"]),
        (&["--verdict", "allow"], &["a2"]),
        (&["--trunk", "sales"], &["a2", "a4"]),
        (&["--rule", "Busy"], &["a1"]),
        (&["--caller", "+1 (555) 000-0001"], &["a1"]),
        (&["--caller", "5550000001"], &["a1"]),
        (&["--limit", "2"], &["a1", "a2"]),
        (&["--verdict", "block", "--trunk", "support"], &["a1", "a3"]),
        (&["--rule", "Nobody"], &[]),
    ];
    for (filters, expected) in cases {
        assert_eq!(uids(&db, filters), *expected, "{filters:?}");
    }

    // One JSON object per call with the decision and the end.
    let out = callguard(
        &["--db", db.to_str().unwrap(), "--json", "--rule", "Hidden"],
        dir.path(),
    );
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["verdict"], "block");
    assert_eq!(v["list"], "blacklist");
    assert_eq!(v["action"], "msg");
    assert_eq!(v["anonymous"], true);
    assert_eq!(v["end_state"], "caller_hangup");
    assert_eq!(v["time"], "2020-01-15T10:00:00.000Z");

    // The table: a header and one line per call, newest first.
    let out = callguard(&["--db", db.to_str().unwrap()], dir.path());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    assert!(lines[0].starts_with("TIME") && lines[0].contains("RULE"));
    for (line, want) in lines[1..].iter().zip(["Busy", "pass", "UK", "Hidden"]) {
        assert!(line.contains(want), "{line:?} lacks {want}");
    }
    assert!(
        lines[1].contains("completed (NORMAL_CLEARING)"),
        "{}",
        lines[1]
    );
    assert!(lines[4].contains("anonymous"), "{}", lines[4]);

    // Stats: the whole period (no --limit cut), and a narrower one.
    let out = callguard(
        &["--db", db.to_str().unwrap(), "--stats", "--limit", "1"],
        dir.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("calls: 4  blocked: 3  allowed: 1  fail-open: 0  fail-closed: 0\n"),
        "{}",
        out.stdout
    );
    for section in ["blocked by rule:", "blocked by list:", "blocked by trunk:"] {
        assert!(out.stdout.contains(section), "{}", out.stdout);
    }
    let out = callguard(
        &[
            "--db",
            db.to_str().unwrap(),
            "--stats",
            "--json",
            "--since",
            "1h",
        ],
        dir.path(),
    );
    let s: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        (s["total"].as_u64(), s["blocked"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        s["blocked_by_rule"],
        serde_json::json!([{"key": "Busy", "calls": 1}])
    );
    let out = callguard(
        &["--db", db.to_str().unwrap(), "--stats", "--json"],
        dir.path(),
    );
    let s: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        s["blocked_by_trunk"],
        serde_json::json!([{"key": "support", "calls": 2}, {"key": "sales", "calls": 1}])
    );

    // Mistakes: a bad time is a usage error (2), a missing log is 1, both say why.
    let out = callguard(
        &["--db", db.to_str().unwrap(), "--since", "yesterday"],
        dir.path(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--since") && out.stderr.contains("1h"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    let missing = dir.path().join("nope.db");
    let out = callguard(&["--db", missing.to_str().unwrap()], dir.path());
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no call log") && out.stderr.contains("nope.db"),
        "{}",
        out.stderr
    );
    let out = callguard(
        &["--db", db.to_str().unwrap(), "--verdict", "maybe"],
        dir.path(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[tokio::test]
async fn log_finds_the_database_named_by_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("logs")).unwrap();
    write_log(&dir.path().join("logs/calls.db")).await;
    let config = dir.path().join("callguard.yaml");
    std::fs::write(
        &config,
        "default_trunk: main\ntrunks:\n  main: {}\nlog: { path: logs/calls.db }\n",
    )
    .unwrap();
    // From another directory: log.path is relative to the config file, not the cwd.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = callguard(
        &[
            "--config",
            config.to_str().unwrap(),
            "--json",
            "--rule",
            "UK",
        ],
        elsewhere.path(),
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    // A config whose log was never written: a clear message, exit 1.
    std::fs::write(
        &config,
        "default_trunk: main\ntrunks:\n  main: {}\nlog: { path: other.db }\n",
    )
    .unwrap();
    let out = callguard(&["--config", config.to_str().unwrap()], elsewhere.path());
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("other.db"), "{}", out.stderr);
    // An unreadable config is a usage error.
    let out = callguard(
        &["--config", dir.path().join("absent.yaml").to_str().unwrap()],
        elsewhere.path(),
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// The HTTP API on the running service

async fn get(http: std::net::SocketAddr, path_and_query: &str) -> (u16, Value) {
    let r = reqwest::get(format!("http://{http}{path_and_query}"))
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

fn api_uids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|c| c["unique_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn api_lists_and_counts_logged_calls() {
    let mut srv = server::start(server::SCREEN_YAML).await;
    // Oldest first: the API answers newest first.
    for (uid, caller) in [
        ("c1", "+15550000001"),
        ("c2", "+15557654321"),
        ("c3", "+15550000001"),
        ("c4", "+442071234567"),
    ] {
        let r = AsteriskSim::new()
            .callerid(caller)
            .uniqueid(uid)
            .run(srv.agi())
            .await;
        assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
    }
    let state = srv.running().state.clone();
    state.log.as_ref().unwrap().flush().await.unwrap();
    let http = srv.http();

    let cases: &[(&str, &[&str])] = &[
        ("", &["c4", "c3", "c2", "c1"]),
        ("?verdict=block", &["c4", "c3", "c1"]),
        ("?verdict=allow", &["c2"]),
        ("?rule=Busy", &["c3", "c1"]),
        ("?caller=%2B1%20555-000-0001", &["c3", "c1"]),
        ("?trunk=support&limit=2", &["c4", "c3"]),
        ("?trunk=vip-line", &[]),
        ("?since=1h", &["c4", "c3", "c2", "c1"]),
        ("?until=2020-01-01", &[]),
    ];
    for (query, expected) in cases {
        let (status, v) = get(http, &format!("/api/v1/calls{query}")).await;
        assert_eq!(status, 200, "{query}: {v}");
        assert_eq!(api_uids(&v), *expected, "{query}");
    }
    let (_, v) = get(http, "/api/v1/calls?rule=UK").await;
    let call = &v[0];
    assert_eq!(call["caller"], "+442071234567");
    assert_eq!(call["verdict"], "block");
    assert_eq!(call["list"], "blacklist");
    assert_eq!(call["action"], "reject");
    assert_eq!(call["pbx"], "asterisk");
    assert_eq!(call["end_state"], "completed");

    let (status, s) = get(http, "/api/v1/calls/stats").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["total"].as_u64(), s["blocked"].as_u64()),
        (Some(4), Some(3))
    );
    assert_eq!(
        s["blocked_by_rule"],
        serde_json::json!([{"key": "Busy", "calls": 2}, {"key": "UK", "calls": 1}])
    );
    let (_, s) = get(http, "/api/v1/calls/stats?rule=UK").await;
    assert_eq!(s["total"], 1);

    // Bad input: 400 in the API's error shape, never a panic or a 500.
    for bad in [
        "/api/v1/calls?since=yesterday",
        "/api/v1/calls?until=13h-ago",
        "/api/v1/calls?verdict=maybe",
        "/api/v1/calls?limit=0",
        "/api/v1/calls?limit=-3",
        "/api/v1/calls?limit=99999999999999999999999",
        "/api/v1/calls/stats?since=%FF",
    ] {
        let (status, v) = get(http, bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{bad}: {v}"
        );
    }
    srv.stop().await;
}
