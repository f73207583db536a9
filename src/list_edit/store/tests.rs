use super::*;

const YAML: &str = "
actions:
  vm: { kind: voicemail, mailbox: \"1@default\" }
trunks:
  support:
    whitelist:
      - { name: CFO, pattern: \"+15551111111\" }
    lists:
      - { path: spam.csv, as: blacklist, name: spam }
log: { path: calls.db }
";

fn setup() -> (tempfile::TempDir, ListStore) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("callguard.yaml"), YAML).unwrap();
    std::fs::write(
        dir.path().join("spam.csv"),
        "rule_name,pattern,match_type,action,enabled,notes\nS1,+15550000001,exact,,true,\n",
    )
    .unwrap();
    let store = ListStore::open(&dir.path().join("callguard.yaml")).unwrap();
    (dir, store)
}

fn row(name: &str, pattern: &str, mt: &str) -> RuleRow {
    RuleRow {
        rule_name: name.into(),
        pattern: pattern.into(),
        match_type: mt.into(),
        action: String::new(),
        enabled: true,
        notes: String::new(),
    }
}

#[test]
fn add_delete_restore_with_history() {
    let (dir, store) = setup();
    let a = store
        .add("spam", vec![row("S2", "+1900*", "")], "ops")
        .unwrap();
    assert_eq!(a.summary.added, ["S2"]);
    assert_eq!(a.history_version, Some(2), "baseline 1 (file), then ours");
    let text = std::fs::read_to_string(dir.path().join("spam.csv")).unwrap();
    assert!(text.contains("S2,+1900*"), "{text}");
    let h = store.history.clone().unwrap();
    let v = h.versions(Some("spam"), 10).unwrap();
    assert_eq!(v[0].author, "ops");
    assert_eq!(v[1].author, "file");
    store.delete("spam", "S1", "ops").unwrap();
    assert!(matches!(
        store.delete("spam", "S1", "ops"),
        Err(StoreError::NoSuchRule { .. })
    ));
    let r = store.restore("spam", 1, "ops").unwrap();
    assert_eq!(r.summary.added, ["S1"]);
    assert_eq!(r.summary.removed, ["S2"]);
    let cur = store.current("spam").unwrap();
    assert_eq!(cur.list.rows.len(), 1);
}

#[test]
fn refusals_write_nothing() {
    let (dir, store) = setup();
    let path = dir.path().join("spam.csv");
    let before = std::fs::read(&path).unwrap();
    let bad = store.add("spam", vec![row("X", "(", "regex")], "ops");
    let Err(StoreError::Invalid(d)) = bad else {
        panic!("{bad:?}")
    };
    assert!(d[0].starts_with("spam.csv:3: X: pattern"), "{d:?}");
    assert!(matches!(
        store.add("spam", vec![row("S1", "+1", "")], "ops"),
        Err(StoreError::Duplicate { .. })
    ));
    let mut unknown_action = row("Y", "+1", "");
    unknown_action.action = "nope".into();
    let r = store.add("spam", vec![unknown_action], "ops");
    // A row with an action the config lacks is a bad row, located (issue 10.2).
    let Err(StoreError::Invalid(d)) = r else {
        panic!("{r:?}")
    };
    assert!(
        d[0].starts_with("spam.csv:3: Y: no action named \"nope\""),
        "{d:?}"
    );
    assert!(matches!(
        store.add("support.whitelist", vec![], "ops"),
        Err(StoreError::ReadOnly(_))
    ));
    assert!(matches!(
        store.add("nope", vec![], "ops"),
        Err(StoreError::UnknownList(_))
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let h = store.history.clone().unwrap();
    assert!(h.versions(Some("spam"), 10).unwrap().is_empty());
}
