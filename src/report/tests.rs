//! The report on a known decision log: a real SQLite file written by the
//! service's own writer functions, and a real history.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::calllog::CallRecord;
use crate::list_io::{ChangeSummary, RuleRow};
use crate::store::sqlite::{insert_record, open_writer};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn call(
    minutes: i64,
    trunk: &str,
    caller: &str,
    verdict: &str,
    list: &str,
    list_name: &str,
    rule: Option<&str>,
    fail_open: bool,
) -> CallRecord {
    CallRecord {
        time: t0() + Duration::minutes(minutes),
        unique_id: format!("{trunk}-{minutes}"),
        pbx: "asterisk".into(),
        trunk: trunk.into(),
        did: String::new(),
        caller_raw: caller.into(),
        caller_e164: (caller.starts_with('+')).then(|| caller.to_string()),
        caller_name: String::new(),
        anonymous: caller == "anonymous",
        verdict: verdict.into(),
        list: list.into(),
        list_name: list_name.into(),
        rule: rule.map(str::to_string),
        action: if verdict == "block" { "reject" } else { "pass" }.into(),
        reason: String::new(),
        decision_ns: 1000,
        fail_open,
        tenant: String::new(),
        user: String::new(),
    }
}

/// A day of calls: 6 blocked (3 from one UK spammer, 1 from France, 1
/// anonymous, 1 exclusive-mode block), 3 allowed (one failed open), one
/// fail-closed block, and one blocked call outside the period.
fn known_log(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("calls.db");
    let conn = open_writer(&path).unwrap();
    let uk = "+442071234567";
    let rows = [
        call(
            1,
            "support",
            uk,
            "block",
            "blacklist",
            "spam",
            Some("Spam-UK"),
            false,
        ),
        call(
            2,
            "support",
            uk,
            "block",
            "blacklist",
            "spam",
            Some("Spam-UK"),
            false,
        ),
        call(
            3,
            "sales",
            uk,
            "block",
            "blacklist",
            "spam",
            Some("Spam-UK"),
            false,
        ),
        call(
            4,
            "support",
            "+33142685300",
            "block",
            "blacklist",
            "support.blacklist",
            Some("France"),
            false,
        ),
        call(
            5,
            "support",
            "anonymous",
            "block",
            "blacklist",
            "support.blacklist",
            Some("Hidden"),
            false,
        ),
        call(
            6,
            "vip-line",
            "+12015550123",
            "block",
            "exclusive",
            "",
            None,
            false,
        ),
        call(
            7,
            "support",
            "+15551234567",
            "allow",
            "whitelist",
            "vip",
            Some("VIP"),
            false,
        ),
        call(
            8,
            "support",
            "+15550001111",
            "allow",
            "default",
            "",
            None,
            false,
        ),
        call(9, "sales", "+15550002222", "allow", "fail", "", None, true),
        call(
            10,
            "sales",
            "+12015550124",
            "block",
            "fail",
            "",
            None,
            false,
        ),
        // Outside the period.
        call(
            -120,
            "support",
            uk,
            "block",
            "blacklist",
            "spam",
            Some("Spam-UK"),
            false,
        ),
    ];
    for r in &rows {
        insert_record(&conn, r).unwrap();
    }
    let h = ListVersions::open(&path).unwrap();
    let row = RuleRow {
        rule_name: "Spam-UK".into(),
        pattern: uk.into(),
        match_type: "exact".into(),
        action: String::new(),
        enabled: true,
        notes: String::new(),
    };
    let added = ChangeSummary {
        added: vec!["Spam-UK".into()],
        ..ChangeSummary::default()
    };
    h.record_at(
        "spam",
        "ops",
        &added,
        std::slice::from_ref(&row),
        t0() - Duration::days(3),
    )
    .unwrap();
    // Baselines: the first version of a list nobody changed (recorded as found on disk when
    // its history began) is no change; a later edit on disk is.
    for list in ["premium-rate", "vip"] {
        h.record_at(
            list,
            "file",
            &added,
            std::slice::from_ref(&row),
            t0() + Duration::minutes(10),
        )
        .unwrap();
    }
    h.record_at(
        "vip",
        "file",
        &ChangeSummary::default(),
        &[],
        t0() + Duration::minutes(20),
    )
    .unwrap();
    h.record_at(
        "spam",
        "alice",
        &added,
        &[row],
        t0() + Duration::minutes(30),
    )
    .unwrap();
    path
}

fn count(rows: &[StatCount]) -> Vec<(&str, u64)> {
    rows.iter().map(|r| (r.key.as_str(), r.calls)).collect()
}

#[test]
fn report_counts_a_known_day() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_log(dir.path());
    let log = LogReader::open(&path).unwrap();
    let h = ListVersions::open(&path).unwrap();
    let r = build(&log, Some(&h), t0(), t0() + Duration::hours(24)).unwrap();
    assert_eq!((r.total, r.blocked, r.allowed), (10, 7, 3));
    assert_eq!((r.fail_open, r.fail_closed), (1, 1));
    assert_eq!(
        count(&r.blocked_by_trunk),
        [("support", 4), ("sales", 2), ("vip-line", 1)]
    );
    assert_eq!(
        count(&r.blocked_by_list),
        [
            ("spam", 3),
            ("support.blacklist", 2),
            ("exclusive", 1),
            ("fail", 1)
        ]
    );
    assert_eq!(
        count(&r.blocked_by_country),
        [("GB", 3), ("US", 2), ("FR", 1), ("unknown", 1)]
    );
    assert_eq!(r.top_blocked_callers[0].key, "+442071234567");
    assert_eq!(r.top_blocked_callers[0].calls, 3);
    assert!(r.top_blocked_callers.iter().any(|c| c.key == "anonymous"));
    let rules = count(&r.blocked_by_rule);
    assert_eq!(rules[0], ("Spam-UK", 3));
    assert!(rules.contains(&("exclusive", 1)));
    // Only the changes inside the period, and no baseline (`file` v1 of premium-rate, vip).
    let changes: Vec<(&str, u64, &str)> = r
        .rule_changes
        .iter()
        .map(|c| (c.list.as_str(), c.version, c.author.as_str()))
        .collect();
    assert_eq!(changes, [("spam", 2, "alice"), ("vip", 2, "file")]);
    assert!(!r.truncated);
}

#[test]
fn report_renders_text_html_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_log(dir.path());
    let log = LogReader::open(&path).unwrap();
    let h = ListVersions::open(&path).unwrap();
    let r = build(&log, Some(&h), t0(), t0() + Duration::hours(24)).unwrap();
    let text = r.to_text();
    assert!(
        text.contains("calls 10  blocked 7  allowed 3  failed open 1  failed closed 1"),
        "{text}"
    );
    let country = text
        .split("blocked by country\n")
        .nth(1)
        .unwrap_or_default();
    let first: Vec<&str> = country
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(first, ["GB", "3"], "{text}");
    assert!(text.contains("spam v2  alice"), "{text}");
    let html = r.to_html();
    assert!(html.starts_with("<!doctype html>"));
    assert!(
        html.contains("<td>support.blacklist</td><td class=n>2</td>"),
        "{html}"
    );
    assert!(!html.contains("http://") && !html.contains("https://"));
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["blocked"], 7);
    assert_eq!(json["blocked_by_country"][0]["key"], "GB");
}

#[test]
fn an_empty_period_reports_zeroes() {
    let dir = tempfile::tempdir().unwrap();
    let path = known_log(dir.path());
    let log = LogReader::open(&path).unwrap();
    let since = t0() + Duration::days(10);
    let r = build(&log, None, since, since + Duration::hours(1)).unwrap();
    assert_eq!((r.total, r.blocked), (0, 0));
    assert!(r.top_blocked_callers.is_empty() && r.rule_changes.is_empty());
    assert!(r.to_text().contains("blocked by trunk\n  none\n"));
}

#[test]
fn period_parses_and_refuses_an_empty_one() {
    let now = t0();
    let (s, u) = period("24h", None, now).unwrap();
    assert_eq!((s, u), (now - Duration::hours(24), now));
    assert!(period("1h", Some("2h"), now).unwrap_err().contains("empty"));
    assert!(
        period("yesterday-ish", None, now)
            .unwrap_err()
            .starts_with("since:")
    );
}

#[test]
fn country_of_a_number() {
    assert_eq!(country(Some("+442071234567")), "GB");
    assert_eq!(country(Some("+12015550123")), "US");
    assert_eq!(country(None), "unknown");
    assert_eq!(country(Some("12345")), "unknown");
}

/// Issue 19.6: caller IDs are untrusted. An escape-sequence caller and a
/// 4 KB one leave the text report free of control characters and its rows
/// narrow; the JSON report keeps both exactly.
#[test]
fn hostile_callers_cannot_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let conn = open_writer(&path).unwrap();
    let escapes = "\x1b[2J\x1b]0;pwned\x07\r";
    let long = "9".repeat(4096);
    for (i, caller) in [escapes, &long, "+442071234567"].into_iter().enumerate() {
        let rule = format!("Block-{caller}");
        let c = call(
            i as i64,
            "support",
            caller,
            "block",
            "blacklist",
            "spam",
            Some(&rule),
            false,
        );
        insert_record(&conn, &c).unwrap();
    }
    let h = ListVersions::open(&path).unwrap();
    let row = RuleRow {
        rule_name: format!("Block-{escapes}"),
        pattern: escapes.into(),
        match_type: "exact".into(),
        action: String::new(),
        enabled: true,
        notes: String::new(),
    };
    let added = ChangeSummary {
        added: vec![row.rule_name.clone()],
        ..ChangeSummary::default()
    };
    h.record_at("spam", escapes, &added, &[row], t0() + Duration::minutes(5))
        .unwrap();
    let log = LogReader::open(&path).unwrap();
    let r = build(&log, Some(&h), t0(), t0() + Duration::hours(1)).unwrap();
    let text = r.to_text();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("\\x1b[2J\\x1b]0;pwned\\x07\\r"), "{text}");
    // No line is wider than a capped field, its count and the indent.
    for line in text.lines() {
        assert!(
            line.chars().count() <= 200,
            "{} chars: {line}",
            line.chars().count()
        );
    }
    let callers = text.split("top blocked callers\n").nth(1).unwrap();
    let row = callers
        .lines()
        .find(|l| l.contains("+442071234567"))
        .unwrap();
    assert!(
        row.chars().count() <= 2 + crate::calllog::FIELD_WIDTH + 2 + 7,
        "{row}"
    );
    assert!(
        callers.contains(&format!("{}…", "9".repeat(39))),
        "{callers}"
    );
    let json = serde_json::to_value(&r).unwrap();
    let keys: Vec<&str> = json["top_blocked_callers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&escapes) && keys.contains(&long.as_str()),
        "{keys:?}"
    );
    assert_eq!(json["rule_changes"][0]["author"], escapes);
}
