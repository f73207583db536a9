use chrono::Duration as Days;

use super::*;
use crate::list_io::diff_rows;

fn r(name: &str, pattern: &str) -> RuleRow {
    RuleRow {
        rule_name: name.into(),
        pattern: pattern.into(),
        match_type: "exact".into(),
        action: "reject".into(),
        enabled: true,
        notes: "note, with \"quotes\"\nand a newline".into(),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
}

#[test]
fn record_versions_content_latest() {
    let dir = tempfile::tempdir().unwrap();
    let h = ListVersions::open(dir.path().join("callguard.db")).unwrap();
    let v1 = vec![r("A", "+1")];
    let v2 = vec![r("A", "+1"), r("B", "+2")];
    assert_eq!(
        h.record_at("spam", "alice", &diff_rows(&[], &v1), &v1, t0())
            .unwrap(),
        1
    );
    assert_eq!(
        h.record_at("vip", "crm-sync", &diff_rows(&[], &v1), &v1, t0())
            .unwrap(),
        1
    );
    assert_eq!(
        h.record_at(
            "spam",
            "bob",
            &diff_rows(&v1, &v2),
            &v2,
            t0() + Days::hours(1)
        )
        .unwrap(),
        2
    );

    let all = h.versions(None, 10).unwrap();
    let keys: Vec<(&str, u64)> = all.iter().map(|v| (v.list.as_str(), v.version)).collect();
    assert_eq!(keys, [("spam", 2), ("vip", 1), ("spam", 1)]);
    assert_eq!(all[0].author, "bob");
    assert_eq!(all[0].summary, "+1 −0 ~0 (added: B)");
    assert_eq!(all[0].time, t0() + Days::hours(1));
    assert_eq!(h.versions(Some("spam"), 1).unwrap().len(), 1);
    assert_eq!(h.versions(Some("vip"), 10).unwrap().len(), 1);

    assert_eq!(h.content("spam", 1).unwrap(), Some(v1.clone()));
    assert_eq!(h.content("spam", 2).unwrap(), Some(v2));
    assert_eq!(h.content("spam", 3).unwrap(), None);
    assert_eq!(h.content("other", 1).unwrap(), None);
    assert_eq!(h.latest("spam").unwrap().map(|v| v.version), Some(2));
    assert_eq!(h.latest("other").unwrap(), None);
}

#[test]
fn survives_reopen_alongside_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Another module's table in the same file, through its own connection.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch("CREATE TABLE decisions (id INTEGER PRIMARY KEY)")
        .unwrap();
    let rows = vec![r("A", "+1")];
    {
        let h = ListVersions::open(&path).unwrap();
        h.record("spam", "alice", &ChangeSummary::default(), &rows)
            .unwrap();
    }
    let h = ListVersions::open(&path).unwrap();
    assert_eq!(
        h.record("spam", "alice", &ChangeSummary::default(), &[])
            .unwrap(),
        2
    );
    assert_eq!(h.content("spam", 1).unwrap(), Some(rows));
    assert_eq!(h.content("spam", 2).unwrap(), Some(vec![]));
    other
        .execute("INSERT INTO decisions DEFAULT VALUES", [])
        .unwrap();
}

#[test]
fn purge_keeps_recent_and_latest_per_list() {
    let dir = tempfile::tempdir().unwrap();
    let h = ListVersions::open(dir.path().join("h.db")).unwrap();
    let s = ChangeSummary::default();
    let old = t0() - Days::days(100);
    h.record_at("spam", "a", &s, &[r("A", "+1")], old).unwrap();
    h.record_at("spam", "a", &s, &[r("A", "+2")], old + Days::days(1))
        .unwrap();
    h.record_at("spam", "a", &s, &[r("A", "+3")], t0() - Days::days(1))
        .unwrap();
    // vip only has old versions: its latest must survive.
    h.record_at("vip", "a", &s, &[r("V", "+1")], old).unwrap();
    h.record_at("vip", "a", &s, &[r("V", "+2")], old + Days::days(1))
        .unwrap();

    assert_eq!(h.purge_at(90, t0()).unwrap(), 3);
    let left: Vec<(String, u64)> = h
        .versions(None, 10)
        .unwrap()
        .into_iter()
        .map(|v| (v.list, v.version))
        .collect();
    assert_eq!(left, [("vip".to_string(), 2), ("spam".to_string(), 3)]);
    assert_eq!(h.content("vip", 2).unwrap(), Some(vec![r("V", "+2")]));
    // Numbers are never reused after a purge.
    assert_eq!(h.record_at("vip", "a", &s, &[], t0()).unwrap(), 3);
    // vip 2 is no longer the latest, so it goes now.
    assert_eq!(h.purge_at(90, t0()).unwrap(), 1);
    assert_eq!(h.purge_at(90, t0()).unwrap(), 0);
}
