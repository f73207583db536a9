//! The shipped monitoring assets and dialplans: the Grafana dashboard, the Prometheus rules and
//! config, the Prometheus test harness against a real Prometheus, and the PBX dialplans.

#[path = "support/prometheus.rs"]
mod prometheus;
use prometheus::skip;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use callguard::metrics::METRIC_NAMES;
use prometheus::{PrometheusServer, find_binary, under_ci};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn asset(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read_asset(path: &str) -> String {
    std::fs::read_to_string(asset(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Assets as data

#[derive(Debug, Deserialize, Serialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Debug, Deserialize, Serialize)]
struct RuleGroup {
    name: String,
    rules: Vec<AlertRule>,
}

#[derive(Debug, Deserialize, Serialize)]
struct AlertRule {
    alert: String,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

fn alert_rules() -> RuleFile {
    serde_saphyr::from_str(&read_asset("docker/prometheus/alerts.yml"))
        .expect("alerts.yml is valid YAML of the rule-file shape")
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read_asset("docker/grafana/callguard.json"))
        .expect("callguard.json is valid JSON")
}

/// Every `expr` string anywhere in the dashboard (panels, rows' panels, targets).
fn dashboard_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

fn all_dashboard_exprs() -> Vec<String> {
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard()["panels"], &mut exprs);
    exprs
}

/// The metric families an expression names: `callguard_*` identifiers, histogram series suffixes
/// removed.
fn metric_families(expr: &str) -> BTreeSet<String> {
    let ident = regex::Regex::new(r"\bcallguard_[a-zA-Z0-9_]+").expect("regex");
    ident
        .find_iter(expr)
        .map(|m| {
            let name = m.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| METRIC_NAMES.contains(family))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}

/// The dashboard's template variables replaced by values a plain Prometheus query accepts.
fn substitute_grafana_variables(expr: &str) -> String {
    [
        ("$__rate_interval", "1m"),
        ("$__range_s", "300"),
        ("$__range", "5m"),
        ("$trunk", ".*"),
        ("$pbx", ".*"),
        ("$anon_match", "(?i).*anon.*"),
        (
            "$fraud_match",
            "(?i).*(international|intl|premium|toll|fraud).*",
        ),
    ]
    .iter()
    .fold(expr.to_string(), |acc, (var, value)| {
        acc.replace(var, value)
    })
}

// ---------------------------------------------------------------------------------------------
// (a) metric names

#[test]
fn metric_family_extraction_strips_histogram_suffixes_only_for_known_families() {
    let found = metric_families(
        "histogram_quantile(0.99, sum by (le) (rate(callguard_decision_duration_seconds_bucket[5m]))) \
         / callguard_calls_total + callguard_made_up_count",
    );
    let expected: BTreeSet<String> = [
        "callguard_decision_duration_seconds",
        "callguard_calls_total",
        "callguard_made_up_count",
    ]
    .map(String::from)
    .into();
    assert_eq!(found, expected);
}

#[test]
fn dashboard_is_an_importable_grafana_dashboard() {
    let dash = dashboard();
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "a DS_PROMETHEUS datasource input"
    );
    let schema = dash["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    let variables: Vec<&str> = dash["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for name in ["trunk", "pbx"] {
        assert!(variables.contains(&name), "templating variable {name}");
    }
    // Every panel that queries uses the imported data source, and panel ids are unique.
    let panels = dash["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let id = panel["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "panel {}",
            panel["title"]
        );
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
    }
}

#[test]
fn dashboard_uses_only_exported_metrics_and_shows_every_family() {
    let exprs = all_dashboard_exprs();
    assert!(exprs.len() >= 20, "only {} queries", exprs.len());
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let families = metric_families(expr);
        assert!(
            !families.is_empty(),
            "query names no callguard metric: {expr}"
        );
        for family in families {
            assert!(
                METRIC_NAMES.contains(&family.as_str()),
                "dashboard query uses {family}, which callguard does not export: {expr}"
            );
            used.insert(family);
        }
    }
    for name in METRIC_NAMES {
        assert!(used.contains(*name), "no dashboard panel shows {name}");
    }
}

#[test]
fn alerts_use_only_exported_metrics_and_carry_severity_and_text() {
    let rules = alert_rules();
    let alerts: Vec<&AlertRule> = rules.groups.iter().flat_map(|g| &g.rules).collect();
    for required in [
        "CallguardDown",
        "CallguardFailOpen",
        "CallguardConfigReloadFailing",
        "CallguardDecisionSlow",
        "CallguardTollFraudAttempt",
    ] {
        assert!(
            alerts.iter().any(|a| a.alert == required),
            "alert {required} missing"
        );
    }
    for alert in &alerts {
        for family in metric_families(&alert.expr) {
            assert!(
                METRIC_NAMES.contains(&family.as_str()),
                "alert {} uses {family}, which callguard does not export",
                alert.alert
            );
        }
        assert!(
            ["critical", "warning", "info"].contains(
                &alert
                    .labels
                    .get("severity")
                    .map(String::as_str)
                    .unwrap_or("")
            ),
            "alert {} has no valid severity label",
            alert.alert
        );
        for key in ["summary", "description"] {
            assert!(
                alert
                    .annotations
                    .get(key)
                    .is_some_and(|s| !s.trim().is_empty()),
                "alert {} has no {key} annotation",
                alert.alert
            );
        }
    }
    let down = alerts.iter().find(|a| a.alert == "CallguardDown").unwrap();
    assert_eq!(down.expr.trim(), r#"up{job="callguard"} == 0"#);
    assert_eq!(down.for_.as_deref(), Some("1m"));
}

// ---------------------------------------------------------------------------------------------
// (b) promtool

/// promtool, or `None` (after a message) when it is absent outside CI; absent under CI panics.
fn promtool() -> Option<PathBuf> {
    match find_binary("promtool", "PROMTOOL_BIN") {
        Some(path) => Some(path),
        None if under_ci() => {
            panic!("promtool is not installed but CI=true: run .ci/install-deps")
        }
        None => {
            skip::skipped("promtool not installed");
            None
        }
    }
}

fn run_promtool(promtool: &Path, args: &[&str], cwd: &Path) -> String {
    let output = Command::new(promtool)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_accepts_alerts_and_config() {
    let Some(promtool) = promtool() else { return };
    let dir = asset("docker/prometheus");
    let rules = run_promtool(&promtool, &["check", "rules", "alerts.yml"], &dir);
    assert!(rules.contains("SUCCESS"), "{rules}");
    let config = run_promtool(&promtool, &["check", "config", "prometheus.yml"], &dir);
    assert!(config.contains("1 rule files found"), "{config}");
}

/// Unit tests of the alert expressions with `promtool test rules`: each alert fires on the series
/// it is meant for, at the time it should, and not on the look-alikes. promtool compares
/// annotations exactly, so the rules are tested from a copy without them (the annotations are
/// checked by `promtool check rules` above).
#[test]
fn alerts_fire_when_they_should_and_only_then() {
    let Some(promtool) = promtool() else { return };
    let mut rules = alert_rules();
    for rule in rules.groups.iter_mut().flat_map(|g| &mut g.rules) {
        rule.annotations.clear();
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // JSON is YAML: promtool reads it as a rule file.
    std::fs::write(
        dir.path().join("alerts.json"),
        serde_json::to_string(&rules).expect("serialize rules"),
    )
    .expect("write rules");
    std::fs::write(dir.path().join("alerts_test.yml"), ALERT_TESTS).expect("write tests");
    let out = run_promtool(&promtool, &["test", "rules", "alerts_test.yml"], dir.path());
    assert!(out.contains("SUCCESS"), "{out}");
}

/// The promtool unit tests of the alerts (YAML, in a fixture of its own).
const ALERT_TESTS: &str = include_str!("fixtures/alerts_test.yml");

// ---------------------------------------------------------------------------------------------
// (c) a real Prometheus scraping a /metrics endpoint

const METRICS_TEXT: &str = "\
# HELP callguard_calls_total Calls decided.
# TYPE callguard_calls_total counter
callguard_calls_total{pbx=\"asterisk\",trunk=\"t\",verdict=\"block\",list=\"blacklist\",action=\"reject\"} 3
callguard_calls_total{pbx=\"asterisk\",trunk=\"t\",verdict=\"allow\",list=\"\",action=\"continue\"} 5
";

/// Serves `METRICS_TEXT` to every HTTP request, one response per connection.
async fn serve_metrics() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind metrics listener");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head (bounded), then answer and close.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{METRICS_TEXT}",
                    METRICS_TEXT.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn real_prometheus_scrapes_and_answers_queries() {
    let target = serve_metrics().await;
    let Some(prom) = PrometheusServer::start(target).await else {
        return;
    };
    let blocked = prom
        .wait_for(
            "sum(callguard_calls_total{verdict=\"block\"})",
            3.0,
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(blocked, 3.0, "prometheus log:\n{}", prom.log());
    assert_eq!(
        prom.query("sum(callguard_calls_total)").await,
        Some(8.0),
        "all series scraped"
    );
    assert_eq!(
        prom.query("up{job=\"callguard\"}").await,
        Some(1.0),
        "the harness scrapes as job callguard"
    );
    assert_eq!(prom.query("callguard_no_such_metric").await, None);
    assert!(
        prom.query_raw("sum(").await.is_err(),
        "a bad query is an error"
    );

    // Every dashboard query is valid PromQL once Grafana's variables are filled in.
    for expr in all_dashboard_exprs() {
        let query = substitute_grafana_variables(&expr);
        if let Err(error) = prom.query_raw(&query).await {
            panic!("dashboard query rejected by Prometheus: {error}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dialplans

#[test]
fn freeswitch_dialplan_parses_and_hands_calls_to_callguard() {
    use quick_xml::events::Event;

    let xml = read_asset("dialplan/freeswitch/callguard.xml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut actions: Vec<(String, String)> = Vec::new();
    let mut contexts = Vec::new();
    // (context, field, expression) of every condition.
    let mut conditions: Vec<(String, String, String)> = Vec::new();
    let mut depth = 0i32;
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("callguard.xml at {}: {e}", reader.buffer_position()));
        let element = match &event {
            Event::Start(e) => {
                depth += 1;
                Some(e.clone())
            }
            Event::Empty(e) => Some(e.clone()),
            Event::End(_) => {
                depth -= 1;
                None
            }
            Event::Eof => break,
            _ => None,
        };
        let Some(element) = element else { continue };
        let attr = |name: &str| {
            element
                .try_get_attribute(name)
                .expect("well-formed attribute")
                .map(|a| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("attribute value")
                        .into_owned()
                })
        };
        match element.name().into_inner() {
            b"context" => contexts.push(attr("name").expect("context name")),
            b"condition" => conditions.push((
                contexts.last().cloned().unwrap_or_default(),
                attr("field").unwrap_or_default(),
                attr("expression").unwrap_or_default(),
            )),
            b"action" => actions.push((
                attr("application").expect("action application"),
                attr("data").unwrap_or_default(),
            )),
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced elements");
    assert_eq!(
        contexts,
        [
            "callguard",
            "callguard_edge",
            "callguard_verdict",
            "callguard_features",
            "callguard_feature_result"
        ]
    );
    let socket: Vec<&String> = actions
        .iter()
        .filter(|(app, _)| app == "socket")
        .map(|(_, data)| data)
        .collect();
    // Screening, the SIP edge's handed-on action and the feature codes.
    assert_eq!(socket.len(), 3, "three socket actions");
    for data in socket {
        let words: Vec<&str> = data.split_whitespace().collect();
        assert_eq!(words, ["127.0.0.1:8084", "async", "full"]);
    }
    // The SIP edge: headers believed only from callguard_proxy, the action handed to callguard.
    let edge: Vec<_> = conditions
        .iter()
        .filter(|(ctx, _, _)| ctx == "callguard_edge")
        .collect();
    let from_proxy = edge
        .iter()
        .filter(|(_, field, _)| field == "${network_addr}|${callguard_proxy}")
        .count();
    assert_eq!(
        from_proxy, 2,
        "both trusting extensions check the proxy's address"
    );
    for (_, _, expression) in edge
        .iter()
        .filter(|(_, f, _)| f.contains("callguard_proxy"))
    {
        // A backreference (PCRE, as FreeSWITCH's): the peer must be the proxy, and an unset
        // callguard_proxy matches nothing.
        let re = fancy_regex::Regex::new(expression).expect("the expression compiles");
        let matches = |field: &str| re.is_match(field).expect("no backtrack limit hit");
        assert!(matches("127.0.0.3|127.0.0.3"));
        assert!(matches("2001:db8::5|2001:db8::5"));
        assert!(
            !matches("127.0.0.1|127.0.0.3"),
            "another address is not the proxy"
        );
        assert!(
            !matches("127.0.0.33|127.0.0.3"),
            "nor one that only starts like it"
        );
        assert!(!matches("127.0.0.3|"), "no proxy set: nothing is believed");
        assert!(!matches("|"));
    }
    assert!(
        edge.iter()
            .any(|(_, field, _)| field == "${sip_h_X-Callguard-Verdict}"),
        "the edge's verdict header is read"
    );
    assert!(
        actions
            .iter()
            .any(|(app, data)| app == "set" && data == "callguard_edge_action=$1"),
        "a handed-on action sets callguard_edge_action"
    );
    assert!(
        actions
            .iter()
            .any(|(app, data)| app == "transfer" && data == "$1 XML callguard"),
        "calls the edge did not screen are screened in the callguard context"
    );
    assert!(
        actions
            .iter()
            .any(|(app, data)| app == "respond" && data.starts_with("486")),
        "advise-mode reject answers 486"
    );
    assert!(
        actions
            .iter()
            .any(|(app, data)| app == "transfer" && data.ends_with("XML callguard_verdict")),
        "the verdict is read in a second hunt"
    );
}

#[test]
fn asterisk_dialplan_screens_with_fastagi_and_fails_open() {
    let conf = read_asset("dialplan/asterisk/extensions_callguard.conf");
    let lines: Vec<&str> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .collect();
    for line in &lines {
        assert!(
            line.starts_with('[') || line.starts_with("exten =>") || line.starts_with("same =>"),
            "unexpected dialplan line: {line}"
        );
        assert!(
            !line.contains("Macro("),
            "Macro() is gone since Asterisk 21: {line}"
        );
        assert!(
            !line.contains("M("),
            "Dial M() is gone since Asterisk 21: {line}"
        );
    }
    for context in [
        "[callguard-inbound]",
        "[callguard-inbound-srv]",
        "[callguard-verdict]",
        "[from-trunk-allowed]",
    ] {
        assert!(lines.contains(&context), "context {context}");
    }
    assert!(conf.contains(
        "AGI(agi://127.0.0.1:4573/screen?trunk=${CALLGUARD_TRUNK}&tenant=${CALLGUARD_TENANT})"
    ));
    assert!(conf.contains("AGI(hagi://callguard.example.com/screen?trunk=${CALLGUARD_TRUNK}&tenant=${CALLGUARD_TENANT})"));
    // No verdict (AGISTATUS=FAILURE) goes on to the normal destination: fail-open.
    assert!(conf.contains(r#"GotoIf($["${CALLGUARD_VERDICT}" = ""]?failopen)"#));
    // Every label a GotoIf jumps to exists.
    let goto = regex::Regex::new(r"GotoIf\(.*\?([a-z]+)\)").expect("regex");
    let label = regex::Regex::new(r"same => n\(([a-z]+)\)").expect("regex");
    let labels: BTreeSet<&str> = label
        .captures_iter(&conf)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    for target in goto.captures_iter(&conf) {
        let target = target.get(1).unwrap().as_str();
        assert!(labels.contains(target), "GotoIf to missing label {target}");
    }
}
