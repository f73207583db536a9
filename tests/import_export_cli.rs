//! `callguard import / export / rollback / block` as an operator runs them:
//! the real binary, real files in a temp dir, a real SQLite history and log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const YAML: &str = r#"
actions:
  vm: { kind: voicemail, mailbox: "100@default" }
trunks:
  support:
    whitelist:
      - { name: CFO, pattern: "+15551111111" }
    lists:
      - { path: lists/spam.csv, as: blacklist, name: spam }
      - { path: lists/copy-csv.csv, as: blacklist }
      - { path: lists/copy-json.json, as: blacklist }
      - { path: lists/copy-xml.xml, as: blacklist }
log: { path: calls.db }
"#;

const HEADER: &str = "rule_name,pattern,match_type,action,enabled,notes\n";

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new(spam: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lists")).unwrap();
        std::fs::write(dir.path().join("lists/spam.csv"), spam).unwrap();
        for f in ["copy-csv.csv", "copy-json.json", "copy-xml.xml"] {
            std::fs::write(dir.path().join("lists").join(f), "").unwrap();
        }
        let config = dir.path().join("callguard.yaml");
        std::fs::write(&config, YAML).unwrap();
        Env { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_callguard"))
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap()
    }

    fn write(&self, p: &str, body: &str) -> String {
        std::fs::write(self.path(p), body).unwrap();
        self.path(p).display().to_string()
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(o: &Output) -> String {
    let (out, err) = text(o);
    assert!(o.status.success(), "stdout:\n{out}\nstderr:\n{err}");
    out
}

/// Awkward content: commas, quotes, newlines, non-ASCII, a look-around
/// regex, a disabled rule, empty match type and action.
const TRICKY: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
    Block-International,^(?!\\+1)[+][0-9]+$,regex,vm,true,\"Block all, except \"\"US\"\"\"\n\
    Block-Premium,+1900*,starts_with,reject,false,\"two\nlines\"\n\
    Spam-Ünïcode,+15550000001,,,true,émoji ☎\n";

#[test]
fn export_import_round_trip_is_lossless_in_every_format() {
    let env = Env::new(TRICKY);
    let reference = ok(&env.run(&["export", "--list", "spam", "--format", "csv"]));
    assert_eq!(reference, TRICKY);
    for (fmt, list) in [
        ("csv", "copy-csv"),
        ("json", "copy-json"),
        ("xml", "copy-xml"),
    ] {
        let file = env.path(&format!("out.{fmt}"));
        ok(&env.run(&[
            "export",
            "--list",
            "spam",
            "--format",
            fmt,
            "--output",
            file.to_str().unwrap(),
        ]));
        let out = ok(&env.run(&["import", "--list", list, file.to_str().unwrap()]));
        assert!(out.contains("to add: 3"), "{out}");
        // The copy, exported again, is byte-identical in its own format and
        // has the same rows as the original.
        let again = ok(&env.run(&["export", "--list", list, "--format", fmt]));
        assert_eq!(again, std::fs::read_to_string(&file).unwrap(), "{fmt}");
        let as_csv = ok(&env.run(&["export", "--list", list, "--format", "csv"]));
        assert_eq!(as_csv, reference, "{fmt}");
    }
    let xml = env.read("out.xml");
    assert!(xml.contains("<name>Block-International</name>"), "{xml}");
    assert!(xml.contains("<type>regex</type>"), "{xml}");
}

const EXISTING: &str = "rule_name,pattern,match_type,action,enabled,notes\n\
                        A,+1001,exact,,true,\n\
                        B,+1002,exact,,true,\n";
/// B exists already; C appears twice in the file.
const UPLOAD: &str = "rule_name,pattern,match_type,action,enabled\n\
                      B,+2002,exact,,true\n\
                      C,+2003,exact,,true\n\
                      C,+2033,exact,,true\n\
                      D,+2004,exact,,true\n";

fn rows(csv: &str) -> Vec<String> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn duplicates_in_every_mode_with_the_preview() {
    let cases: [(&str, &[&str], &[&str]); 3] = [
        (
            "skip",
            &["to add: 2 (C, D)", "duplicates: 2", "  skipped: 2 (B, C)"],
            &["A,+1001", "B,+1002", "C,+2003", "D,+2004"],
        ),
        (
            "overwrite",
            &[
                "to add: 2 (C, D)",
                "duplicates: 2",
                "  overwritten: 2 (B, C)",
            ],
            &["A,+1001", "B,+2002", "C,+2033", "D,+2004"],
        ),
        (
            "rename",
            &[
                "to add: 2 (C, D)",
                "duplicates: 2",
                "  renamed: 2 (B → B-2, C → C-2)",
            ],
            &[
                "A,+1001",
                "B,+1002",
                "B-2,+2002",
                "C,+2003",
                "C-2,+2033",
                "D,+2004",
            ],
        ),
    ];
    for (mode, preview, result) in cases {
        let env = Env::new(EXISTING);
        let up = env.write("up.csv", UPLOAD);
        let out = ok(&env.run(&["import", "--list", "spam", &up, "--on-duplicate", mode]));
        assert!(out.contains(&format!("{up}: 4 rows read")), "{out}");
        for line in preview {
            assert!(
                out.lines().any(|l| l == *line),
                "{mode}: {line:?} in\n{out}"
            );
        }
        assert!(out.contains("invalid rows: 0"), "{out}");
        assert_eq!(rows(&env.read("lists/spam.csv")), result, "{mode}");
    }
}

#[test]
fn dry_run_writes_nothing() {
    let env = Env::new(EXISTING);
    let up = env.write("up.csv", UPLOAD);
    let out = ok(&env.run(&["import", "--list", "spam", &up, "--dry-run"]));
    assert!(out.contains("list after import: 4 rules"), "{out}");
    assert!(out.contains("dry run: nothing was written"), "{out}");
    assert_eq!(env.read("lists/spam.csv"), EXISTING);
    let mut names: Vec<String> = std::fs::read_dir(env.path("lists"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["copy-csv.csv", "copy-json.json", "copy-xml.xml", "spam.csv"]
    );
}

#[test]
fn invalid_rows_are_located_and_refused() {
    let env = Env::new(EXISTING);
    let up = env.write(
        "bad.csv",
        "rule_name,pattern,match_type,action,enabled\n\
         Good,+3001,exact,,true\n\
         Bad,+1(,regex,,true\n\
         Worse,+3003,fuzzy,,true\n",
    );
    let o = env.run(&["import", "--list", "spam", &up]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(out.contains("invalid rows: 2"), "{out}");
    assert!(
        out.contains(&format!("{up}:3: Bad: pattern \"+1(\"")),
        "{out}"
    );
    assert!(out.contains(&format!("{up}:4")), "{out}");
    assert!(out.contains("match_type"), "{out}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(env.read("lists/spam.csv"), EXISTING);

    // A row naming an action the configuration does not define is an
    // invalid row of the preview (issue 10.2), not "to add".
    let up2 = env.write(
        "act.csv",
        "rule_name,pattern,match_type,action,enabled\nX,+3009,,nope,true\nY,+3010,,vm,true\n",
    );
    let o = env.run(&["import", "--list", "spam", &up2]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(out.contains("to add: 1 (Y)"), "{out}");
    assert!(out.contains("invalid rows: 1"), "{out}");
    assert!(
        out.contains(&format!("{up2}:2: X: no action named \"nope\"")),
        "{out}"
    );
    // Nothing is imported, so the preview does not announce a new size.
    assert!(!out.contains("list after import"), "{out}");
    assert!(out.contains("nothing will be imported"), "{out}");
    assert!(
        err.contains("1 invalid row(s): nothing was imported"),
        "{err}"
    );
    assert_eq!(env.read("lists/spam.csv"), EXISTING);
    // --skip-invalid skips exactly that row and imports the rest.
    let out = ok(&env.run(&["import", "--list", "spam", &up2, "--skip-invalid"]));
    assert!(out.contains("list after import: 3 rules"), "{out}");
    assert_eq!(
        rows(&env.read("lists/spam.csv")),
        ["A,+1001", "B,+1002", "Y,+3010"]
    );
    std::fs::write(env.path("lists/spam.csv"), EXISTING).unwrap();

    // The operator may import the good rows and leave the bad ones out.
    ok(&env.run(&["import", "--list", "spam", &up, "--skip-invalid"]));
    assert_eq!(
        rows(&env.read("lists/spam.csv")),
        ["A,+1001", "B,+1002", "Good,+3001"]
    );
}

#[test]
fn rollback_restores_an_earlier_version() {
    let env = Env::new(EXISTING);
    let up = env.write("up.csv", UPLOAD);
    let out = ok(&env.run(&["import", "--list", "spam", &up]));
    assert!(out.contains("+2 −0 ~0 (added: C, D)"), "{out}");
    // Version 1 is the file as it was, recorded before the import.
    // Issue 10.11: `history` lists the versions `rollback --to` takes.
    let out = ok(&env.run(&["history", "--list", "spam"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("VERSION")
            && lines[0].contains("AUTHOR")
            && lines[0].ends_with("SUMMARY"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("2 ") && lines[1].contains(" spam ") && lines[1].contains(" cli "),
        "{out}"
    );
    assert!(lines[1].ends_with("+2 −0 ~0 (added: C, D)"), "{out}");
    assert!(
        lines[2].starts_with("1 ") && lines[2].contains(" file "),
        "{out}"
    );
    assert!(
        out.contains("callguard rollback --list spam --to VERSION"),
        "{out}"
    );
    let out = ok(&env.run(&["rollback", "--list", "spam", "--to", "1"]));
    assert!(out.contains("removed: C, D"), "{out}");
    assert_eq!(env.read("lists/spam.csv"), EXISTING);
    let json = ok(&env.run(&["history", "--json", "--limit", "1"]));
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (v["list"].as_str(), v["version"].as_u64()),
        (Some("spam"), Some(3))
    );
    assert_eq!(v["author"], "cli");
    let o = env.run(&["history", "--list", "support.whitelist"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("defined inline"), "{o:?}");
    let o = env.run(&["rollback", "--list", "spam", "--to", "42"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no history version 42"));
    let o = env.run(&["rollback", "--list", "support.whitelist", "--to", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("edit callguard.yaml"));
}

async fn log_calls(db: &Path) {
    use callguard::calllog::{CallLog, CallRecord};
    let (log, writer) = CallLog::start(
        db,
        16,
        prometheus::IntCounter::new("dropped", "dropped").unwrap(),
        0,
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    let call = |id: &str, raw: &str, e164: Option<&str>, anonymous: bool| CallRecord {
        time: chrono::Utc::now(),
        unique_id: id.into(),
        pbx: "asterisk".into(),
        trunk: "support".into(),
        did: "+18005550100".into(),
        caller_raw: raw.into(),
        caller_e164: e164.map(Into::into),
        caller_name: String::new(),
        anonymous,
        verdict: "allow".into(),
        list: "default".into(),
        list_name: String::new(),
        rule: None,
        action: "pass".into(),
        reason: "no rule matched".into(),
        decision_ns: 1000,
        fail_open: false,
        tenant: String::new(),
        user: String::new(),
    };
    assert!(log.record(call(
        "1700000000.42",
        "5550001111",
        Some("+15550001111"),
        false
    )));
    assert!(log.record(call("1700000000.43", "anonymous", None, true)));
    log.flush().await.unwrap();
    drop(log);
    writer.await.unwrap();
}

#[tokio::test]
async fn block_from_call() {
    let env = Env::new(EXISTING);
    log_calls(&env.path("calls.db")).await;
    let out = ok(&env.run(&["block", "--from-call", "1700000000.42", "--list", "spam"]));
    assert!(out.contains("+15550001111 added to spam"), "{out}");
    let csv = env.read("lists/spam.csv");
    assert!(
        csv.contains("Block-+15550001111,+15550001111,exact,,true,blocked from call 1700000000.42"),
        "{csv}"
    );
    // The same caller again (issue 10.6): the list already blocks the
    // number, so no second rule, and the answer says which rule it is.
    let o = env.run(&["block", "--from-call", "1700000000.42", "--list", "spam"]);
    let out = ok(&o);
    assert!(
        out.contains("+15550001111 is already matched by rule Block-+15550001111 (exact +15550001111) of spam: nothing was added"),
        "{out}"
    );
    let o = env.run(&[
        "block",
        "--from-call",
        "1700000000.42",
        "--list",
        "spam",
        "--name",
        "Second",
    ]);
    assert!(ok(&o).contains("already matched"), "{o:?}");
    assert_eq!(env.read("lists/spam.csv"), csv);
    // A wider rule counts too: a prefix that covers the number.
    std::fs::write(
        env.path("lists/spam.csv"),
        format!("{EXISTING}Range,+1555000*,wildcard,,true,\n"),
    )
    .unwrap();
    let o = env.run(&["block", "--from-call", "1700000000.42", "--list", "spam"]);
    assert!(ok(&o).contains("already matched by rule Range"), "{o:?}");
    std::fs::write(env.path("lists/spam.csv"), EXISTING).unwrap();
    let o = env.run(&[
        "block",
        "--from-call",
        "1700000000.42",
        "--list",
        "spam",
        "--name",
        "Complaint-7",
        "--action",
        "vm",
    ]);
    ok(&o);
    assert!(
        env.read("lists/spam.csv")
            .contains("Complaint-7,+15550001111,exact,vm,true")
    );
    assert!(!env.read("lists/spam.csv").contains("Block-+1555"));

    let o = env.run(&["block", "--from-call", "1700000000.43", "--list", "spam"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("anonymous caller"), "{o:?}");
    let o = env.run(&["block", "--from-call", "nope", "--list", "spam"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no logged call"), "{o:?}");
    assert!(csv.starts_with(HEADER));
}

/// Issue 10.6: `--on-duplicate` takes only its three modes, and `export`
/// reads a list defined inline in the config like a list file.
#[test]
fn on_duplicate_modes_and_inline_export() {
    let env = Env::new(EXISTING);
    let up = env.write("up.csv", UPLOAD);
    for bad in ["merge", "keep", ""] {
        let o = env.run(&["import", "--list", "spam", &up, "--on-duplicate", bad]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{bad}: {out}{err}");
        assert!(err.contains("skip, overwrite or rename"), "{bad}: {err}");
        assert!(out.is_empty(), "{bad}: {out}");
    }
    let o = env.run(&["import", "--list", "spam", &up, "--on-duplicate", "merge"]);
    assert!(text(&o).1.contains("is `rename`"), "{o:?}");
    assert_eq!(env.read("lists/spam.csv"), EXISTING);

    let out = ok(&env.run(&["export", "--list", "support.whitelist", "--format", "csv"]));
    assert_eq!(out, format!("{HEADER}CFO,+15551111111,,,true,\n"));
    let out = ok(&env.run(&["export", "--list", "support.blacklist", "--format", "json"]));
    assert_eq!(out.trim(), "[]");
    let o = env.run(&["export", "--list", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no list named \"nope\""), "{o:?}");
}
