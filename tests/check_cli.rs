//! `callguard check` and `callguard test` as an operator runs them: the real
//! binary on real files.

use std::path::Path;
use std::process::{Command, Output};

fn callguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(args)
        .output()
        .expect("run callguard")
}

/// stderr (where problems go) then stdout (the summary).
fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    )
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

/// Checks `yaml` and returns (exit code, output).
fn check(yaml: &str, extra: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (n, b) in extra {
        write(dir.path(), n, b);
    }
    let cfg = write(dir.path(), "callguard.yaml", yaml);
    let o = callguard(&["check", "--config", &cfg]);
    (o.status.code().unwrap_or(-1), text(&o), cfg)
}

#[test]
fn shipped_config_is_valid() {
    let o = callguard(&["check", "--config", "config/callguard.yaml"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("OK"), "{out}");
    assert!(
        out.contains("2 trunk(s)") && out.contains("schedule(s)"),
        "{out}"
    );
}

#[test]
fn bad_yaml_names_line_and_column() {
    let (code, out, cfg) = check(
        "trunks:\n  main:\n    blacklist: [ { name: x, pattern: '+1' \n",
        &[],
    );
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("{cfg}:")), "{out}");
    let first = out.lines().next().unwrap();
    let loc: Vec<&str> = first.trim_start_matches(&cfg).splitn(4, ':').collect();
    assert!(loc[1].parse::<u32>().unwrap() >= 3, "line in {first}");
    assert!(loc[2].parse::<u32>().is_ok(), "column in {first}");
}

#[test]
fn unknown_key_is_reported_with_its_place() {
    let (code, out, cfg) = check("trunks:\n  main:\n    blacklsit: []\n", &[]);
    assert_eq!(code, 2);
    assert!(out.contains(&format!("{cfg}:3:")), "{out}");
    assert!(out.contains("blacklsit"), "{out}");
}

#[test]
fn every_semantic_problem_is_reported_at_once() {
    let yaml = r#"
actions:
  bad-reject: { kind: reject, tone: loud }
  no-sound: { kind: play }
trunks:
  main:
    blacklist:
      - { name: Bad-Regex, pattern: '^(\+1', match: regex }
      - { name: Unknown-Action, pattern: '+44*', action: nope }
      - { name: Dup, pattern: '+33*' }
      - { name: Dup, pattern: '+34*' }
      - { name: Night, pattern: '+1900*', schedule: { outside: no-such-schedule } }
      - { name: Bad-Class, pattern: '+1555[0-5' }
      - { name: Nothing }
"#;
    let (code, out, cfg) = check(yaml, &[]);
    assert_eq!(code, 2, "{out}");
    for needle in [
        "Bad-Regex: pattern",
        "invalid regex",
        "no action named \"nope\"",
        "duplicate rule name \"Dup\"",
        "no schedule named \"no-such-schedule\"",
        "unclosed '['",
        "tone \"loud\"",
        "`sound:` is required",
        "Nothing: needs `pattern:`",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    // Each problem line starts FILE:LINE:COL.
    let located = out
        .lines()
        .filter(|l| l.starts_with(&format!("{cfg}:")))
        .count();
    assert!(located >= 9, "{out}");
    // The bad regex points into the pattern's own line (line 8 of the file).
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{cfg}:8:")) && l.contains("Bad-Regex")),
        "{out}"
    );
}

#[test]
fn timezone_region_time_and_date_problems() {
    let yaml = r#"
normalize: { default_region: XX }
schedules:
  hours:
    timezone: Mars/Olympus_Mons
    open:
      - { days: mon-fri, from: "25:00", to: "18:00" }
      - { days: someday, from: "08:00", to: "09:00" }
    closed_dates: ["2026-13-01"]
trunks:
  main:
    region: ZZ
"#;
    let (code, out, _) = check(yaml, &[]);
    assert_eq!(code, 2, "{out}");
    for needle in [
        "default_region",
        "\"XX\"",
        "Mars/Olympus_Mons",
        "25:00",
        "someday",
        "2026-13-01",
        "\"ZZ\"",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn list_file_missing_or_with_bad_rows() {
    let yaml = "trunks:\n  main:\n    lists:\n      - { path: lists/missing.csv, as: blacklist }\n      - { path: lists/bad.csv, as: blacklist }\n";
    let bad = "rule_name,pattern,match_type,action,enabled\nok,+44*,starts_with,reject,true\nbroken-regex,^(+1,regex,reject,true\nunknown-action,+33*,starts_with,nope,true\n";
    let (code, out, _) = check(yaml, &[("lists/bad.csv", bad)]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("missing.csv") && out.contains("cannot open"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("bad.csv:3") && l.contains("broken-regex")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("bad.csv:4") && l.contains("nope")),
        "{out}"
    );
}

#[test]
fn test_command_explains_a_decision_as_json() {
    let o = callguard(&[
        "test",
        "--config",
        "config/callguard.yaml",
        "--trunk",
        "support",
        "--at",
        "2026-11-23T20:00:00Z",
        "--json",
        "+442079999999",
        "+15551234567",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let uk = &lines[0];
    for key in [
        "caller",
        "normalized",
        "anonymous",
        "trunk",
        "verdict",
        "list",
        "rule",
        "action",
        "reason",
        "captures",
        "eval_ns",
    ] {
        assert!(uk.get(key).is_some(), "missing {key} in {uk}");
    }
    assert_eq!(uk["verdict"], "block");
    assert_eq!(uk["rule"], "Block-International");
    assert_eq!(lines[1]["verdict"], "allow");
    assert_eq!(lines[1]["action"], "vip");
}

#[test]
fn test_command_selects_the_trunk_by_did_and_explains_exclusive_mode() {
    let o = callguard(&[
        "test",
        "--config",
        "config/callguard.yaml",
        "--did",
        "+18005550199",
        "+15550000000",
    ]);
    let out = text(&o);
    assert!(
        out.contains("trunk exec-line") && out.contains("BLOCK (exclusive)"),
        "{out}"
    );
}

#[test]
fn bare_pattern_tester() {
    let o = callguard(&[
        "test",
        "--pattern",
        "+1555*",
        "+15551234567",
        "+15561234567",
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("+15551234567 → ✓ match"), "{out}");
    assert!(out.contains("+15561234567 → ✗ no match"), "{out}");
    assert!(out.contains("per match"), "{out}");
    let o = callguard(&[
        "test",
        "--pattern",
        r"^\+(?<cc>44)\d+$",
        "--match",
        "regex",
        "--json",
        "+442071234567",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["matched"], true);
    assert_eq!(v["captures"]["cc"], "44");
    let o = callguard(&["test", "--pattern", "+1555[0-5", "+15550000"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("column 6"), "{}", text(&o));
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let yaml = "trunks:\n  main:\n    blacklsit: []\n    whitelist:\n      - { name: a, patern: '+1' }\nlog: { paht: x }\n";
    let (code, out, cfg) = check(yaml, &[]);
    assert_eq!(code, 2, "{out}");
    for (line, key) in [(3, "blacklsit"), (5, "patern"), (6, "paht")] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{cfg}:{line}:")) && l.contains(key)),
            "missing {key} at line {line} in:\n{out}"
        );
    }
}

/// Issue 10.3: unknown keys do not hide the other problems; each problem
/// points at its value; a wrong type names its key.
#[test]
fn unknown_keys_and_every_other_problem_in_one_run() {
    let yaml = r#"trunks:
  main:
    blacklsit: []
    blacklist:
      - { name: Bad-Regex, pattern: '^(\+1', match: regex, colour: red }
    lists:
      - { path: lists/spam.csv, as: blacklist, action: nope }
schedules:
  hours:
    timezone: America/New_York
    open:
      - days: mon-fri
        from: "08:00"
        to: "25:00"
log: { paht: x }
"#;
    let (code, out, cfg) = check(
        yaml,
        &[(
            "lists/spam.csv",
            "rule_name,pattern,match_type,action,enabled\nS,+1,exact,,true\n",
        )],
    );
    assert_eq!(code, 2, "{out}");
    let at = |line: u32, needle: &str| {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{cfg}:{line}:")) && l.contains(needle)),
            "missing {needle:?} at line {line} in:\n{out}"
        );
    };
    // Every unknown key, in one format.
    at(3, "unknown key `trunks.main.blacklsit`");
    at(5, "unknown key `trunks.main.blacklist[0].colour`");
    at(15, "unknown key `log.paht`");
    assert!(!out.contains("unknown field"), "{out}");
    // ...and the rule, list and schedule problems of the same file.
    at(5, "Bad-Regex: pattern");
    at(7, "no action named \"nope\"");
    at(14, "schedule hours: open[0].to: bad time \"25:00\"");
}

#[test]
fn a_value_of_the_wrong_type_names_its_key() {
    let (code, out, cfg) = check("agi:\n  max_connections: lots\n", &[]);
    assert_eq!(code, 2, "{out}");
    let first = out.lines().next().unwrap();
    assert!(first.starts_with(&format!("{cfg}:2:")), "{out}");
    assert!(first.contains("`agi.max_connections`"), "{out}");
}

/// Issue 10.4: `check` refuses an `allow:` entry that `serve` would refuse,
/// at its place.
#[test]
fn bad_allow_entries_are_refused_by_check_with_their_place() {
    let yaml =
        "agi:\n  allow: [\"10.0.0.0/8\", \"10.0.0.0/33\"]\nesl:\n  allow:\n    - pbx.example.org\n";
    let (code, out, cfg) = check(yaml, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!("{cfg}:2:"))
            && l.contains("agi.allow: \"10.0.0.0/33\" is not an address or CIDR")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("{cfg}:5:"))
                && l.contains("esl.allow: \"pbx.example.org\"")),
        "{out}"
    );
}

/// Issue 10.5: `days:` as a YAML sequence; `--at` says what it wants.
#[test]
fn days_as_a_sequence_and_the_at_format() {
    let yaml = r#"
schedules:
  weekend:
    timezone: UTC
    open:
      - { days: [fri, sat], from: "18:00", to: "23:00" }
      - { days: [mon-tue, sun], from: "08:00", to: "09:00" }
trunks:
  main:
    exclusive: { inside: weekend }
    whitelist:
      - { name: Friend, pattern: "+15551111111" }
"#;
    let (code, out, _) = check(yaml, &[]);
    assert_eq!(code, 0, "{out}");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "callguard.yaml", yaml);
    let test_at = |at: &str| {
        callguard(&[
            "test",
            "--config",
            &cfg,
            "--trunk",
            "main",
            "--at",
            at,
            "+15552222222",
        ])
    };
    // Saturday 2026-11-28 20:00 UTC: open, so exclusive, so blocked.
    let o = test_at("2026-11-28T20:00:00Z");
    assert!(text(&o).contains("BLOCK (exclusive)"), "{}", text(&o));
    // Thursday: not in the list, allowed.
    let o = test_at("2026-11-26T20:00:00Z");
    assert!(text(&o).contains("ALLOW"), "{}", text(&o));
    let o = test_at("25:00");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("use RFC 3339") && text(&o).contains("2026-11-24T02:00:00Z"),
        "{}",
        text(&o)
    );
}

/// Issue 10.12: problems on stderr, the summary on stdout.
#[test]
fn check_writes_problems_to_stderr_and_the_summary_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "callguard.yaml",
        "trunks:\n  main:\n    blacklsit: []\n    blacklist:\n      - { name: A, pattern: '+1', action: nope }\n",
    );
    let o = callguard(&["check", "--config", &cfg]);
    assert_eq!(o.status.code(), Some(2));
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert_eq!(out, format!("{cfg}: 2 problem(s); nothing was loaded\n"));
    let problems: Vec<&str> = err.lines().collect();
    assert_eq!(problems.len(), 2, "{err}");
    assert!(
        problems.iter().all(|l| l.starts_with(&format!("{cfg}:"))),
        "{err}"
    );
    let o = callguard(&["check", "--config", "config/callguard.yaml"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(": OK — "));
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
