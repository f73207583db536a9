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

/// Records `rows` after `prev` as the store does: a diff from the latest.
fn after(
    h: &ListVersions,
    list: &str,
    prev: (u64, &[RuleRow]),
    rows: &[RuleRow],
    at: DateTime<Utc>,
) -> u64 {
    h.record_after(list, "a", &diff_rows(prev.1, rows), rows, Some(prev), at)
        .unwrap()
}

fn stored(h: &ListVersions, list: &str, version: u64) -> (bool, i64) {
    h.conn()
        .query_row(
            "SELECT diff IS NOT NULL, size FROM list_versions WHERE list = ?1 AND version = ?2",
            params![list, i64::try_from(version).unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Issue 23.6: one row added to a big list stores that row, not the list;
/// every version still reads back whole, and a long chain of diffs is
/// closed by a whole content again.
#[test]
fn versions_are_stored_as_diffs() {
    let dir = tempfile::tempdir().unwrap();
    let h = ListVersions::open(dir.path().join("h.db")).unwrap();
    let mut rows: Vec<RuleRow> = (0..2000)
        .map(|i| r(&format!("R{i}"), &format!("+1555{i:07}")))
        .collect();
    let v1 = h
        .record_at("spam", "a", &diff_rows(&[], &rows), &rows, t0())
        .unwrap();
    let (is_diff, whole) = stored(&h, "spam", v1);
    assert!(!is_diff);
    assert!(whole > 100_000, "{whole}");
    let mut all = vec![rows.clone()];
    let mut v = v1;
    for i in 0..20 {
        let prev = rows.clone();
        rows.push(r(&format!("N{i}"), "+19995550000"));
        rows[i].enabled = false;
        if i % 7 == 3 {
            rows.remove(100 + i);
        }
        v = after(&h, "spam", (v, &prev), &rows, t0());
        all.push(rows.clone());
        let (is_diff, size) = stored(&h, "spam", v);
        assert!(is_diff, "version {v}");
        assert!(size < 1000, "version {v}: {size} bytes");
    }
    for (i, want) in all.iter().enumerate() {
        let got = h.content("spam", v1 + u64::try_from(i).unwrap()).unwrap();
        assert_eq!(got.as_ref(), Some(want), "version {}", v1 + i as u64);
    }
    // A base that is not the latest version is not trusted: stored whole.
    let stale = after(&h, "spam", (v - 1, &all[all.len() - 2]), &rows, t0());
    assert!(!stored(&h, "spam", stale).0);
    assert_eq!(h.content("spam", stale).unwrap(), Some(rows.clone()));
    // The chain grows to a quarter of the whole content, then a whole one again.
    let mut v = stale;
    let mut wholes = 0;
    for i in 0..60 {
        let prev = rows.clone();
        rows[i].notes = format!("changed {i} {}", "x".repeat(4000));
        v = after(&h, "spam", (v, &prev), &rows, t0());
        wholes += usize::from(!stored(&h, "spam", v).0);
    }
    assert!(wholes >= 1, "no whole content in 60 versions");
    assert!(wholes <= 10, "{wholes} whole contents");
    assert_eq!(h.content("spam", v).unwrap(), Some(rows));
}

/// A history written before diffs (no `diff` column, every version whole)
/// opens, reads as before, and takes diffs from then on.
#[test]
fn an_old_history_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let v1 = vec![r("A", "+1")];
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE list_versions (
                id INTEGER PRIMARY KEY, list TEXT NOT NULL, version INTEGER NOT NULL,
                time_ms INTEGER NOT NULL, author TEXT NOT NULL, summary TEXT NOT NULL,
                content TEXT NOT NULL, UNIQUE (list, version))",
        )
        .unwrap();
        c.execute(
            "INSERT INTO list_versions (list, version, time_ms, author, summary, content)
             VALUES ('spam', 1, 0, 'alice', '+1', ?1)",
            params![serde_json::to_string(&v1).unwrap()],
        )
        .unwrap();
    }
    let h = ListVersions::open(&path).unwrap();
    assert_eq!(h.content("spam", 1).unwrap(), Some(v1.clone()));
    let v2 = vec![r("A", "+1"), r("B", "+2")];
    assert_eq!(after(&h, "spam", (1, &v1), &v2, t0()), 2);
    assert!(stored(&h, "spam", 2).0);
    assert_eq!(h.content("spam", 2).unwrap(), Some(v2));
    assert_eq!(h.versions(Some("spam"), 10).unwrap()[1].author, "alice");
    drop(h);
    // Opened again: already migrated.
    ListVersions::open(&path).unwrap();
}

/// A purge never leaves a kept diff without its base.
#[test]
fn purge_keeps_diffs_rebuildable() {
    let dir = tempfile::tempdir().unwrap();
    let h = ListVersions::open(dir.path().join("h.db")).unwrap();
    let old = t0() - Days::days(100);
    let a = vec![r("A", "+1")];
    let b = vec![r("A", "+1"), r("B", "+2")];
    let c = vec![r("B", "+2"), r("C", "+3")];
    h.record_at("spam", "a", &diff_rows(&[], &a), &a, old)
        .unwrap();
    after(&h, "spam", (1, &a), &b, old);
    after(&h, "spam", (2, &b), &c, t0());
    assert!(stored(&h, "spam", 3).0);
    assert_eq!(h.purge_at(90, t0()).unwrap(), 2);
    assert!(!stored(&h, "spam", 3).0, "the kept version is whole now");
    assert_eq!(h.content("spam", 3).unwrap(), Some(c));
}
