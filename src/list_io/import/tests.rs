use super::*;
use crate::list_io::{Format, read_rows};

fn r(name: &str, pattern: &str) -> RuleRow {
    RuleRow {
        rule_name: name.into(),
        pattern: pattern.into(),
        match_type: String::new(),
        action: String::new(),
        enabled: true,
        notes: String::new(),
    }
}

fn parsed(csv_rows: &str) -> ParsedList {
    let text = format!("rule_name,pattern,match_type,action,enabled\n{csv_rows}");
    read_rows(text.as_bytes(), Format::Csv, "up.csv")
}

/// Stands in for the policy pattern compiler: patterns with `(` are "invalid".
fn no_parens(row: &RuleRow) -> Result<(), String> {
    if row.pattern.contains('(') {
        Err(format!("bad pattern {:?}", row.pattern))
    } else {
        Ok(())
    }
}

fn existing() -> Vec<RuleRow> {
    vec![r("A", "+1"), r("B", "+2")]
}

/// The file has a duplicate of an existing rule (B) and a duplicate within
/// itself (C twice).
const FILE: &str = "B,+20,,,\nC,+3,,,\nC,+30,,,\nD,+4,,,\n";

fn names(rows: &[RuleRow]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (r.rule_name.as_str(), r.pattern.as_str()))
        .collect()
}

#[test]
fn skip_keeps_first_occurrence() {
    let plan = plan_import(&existing(), parsed(FILE), OnDuplicate::Skip, &no_parens);
    assert_eq!(plan.rows_read, 4);
    assert_eq!(plan.to_add, ["C", "D"]);
    assert_eq!(plan.skipped, ["B", "C"]);
    assert!(plan.overwritten.is_empty() && plan.renamed.is_empty() && plan.errors.is_empty());
    assert_eq!(
        names(&plan.result),
        [("A", "+1"), ("B", "+2"), ("C", "+3"), ("D", "+4")]
    );
}

#[test]
fn overwrite_replaces_in_place_last_wins() {
    let plan = plan_import(
        &existing(),
        parsed(FILE),
        OnDuplicate::Overwrite,
        &no_parens,
    );
    assert_eq!(plan.to_add, ["C", "D"]);
    assert_eq!(plan.overwritten, ["B", "C"]);
    assert_eq!(
        names(&plan.result),
        [("A", "+1"), ("B", "+20"), ("C", "+30"), ("D", "+4")]
    );
}

#[test]
fn rename_gives_unique_names_avoiding_later_rows() {
    // "B-2" exists further down the file: the renamed B must not take it.
    let file = format!("{FILE}B-2,+22,,,\nB,+200,,,\n");
    let plan = plan_import(&existing(), parsed(&file), OnDuplicate::Rename, &no_parens);
    assert_eq!(plan.to_add, ["C", "D", "B-2"]);
    assert_eq!(
        plan.renamed,
        [
            ("B".into(), "B-3".into()),
            ("C".into(), "C-2".into()),
            ("B".into(), "B-4".into())
        ]
    );
    assert_eq!(plan.added(), 6);
    assert_eq!(
        names(&plan.result),
        [
            ("A", "+1"),
            ("B", "+2"),
            ("B-3", "+20"),
            ("C", "+3"),
            ("C-2", "+30"),
            ("D", "+4"),
            ("B-2", "+22"),
            ("B-4", "+200")
        ]
    );
    let mut unique: Vec<_> = plan.result.iter().map(|r| &r.rule_name).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), plan.result.len());
}

#[test]
fn invalid_rows_are_errors_with_lines_and_not_imported() {
    let file = "E,+5(,,,\nF,+6,fuzzy,,\nG,+7,,,\n";
    let plan = plan_import(&existing(), parsed(file), OnDuplicate::Skip, &no_parens);
    assert_eq!(plan.rows_read, 3);
    assert_eq!(plan.to_add, ["G"]);
    let errs: Vec<String> = plan.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errs[0], "up.csv:2: E: bad pattern \"+5(\"");
    assert!(
        errs[1].starts_with("up.csv:3:6: unknown match_type"),
        "{errs:?}"
    );
    assert_eq!(plan.result.len(), 3);
}

#[test]
fn preview_lists_totals_duplicates_and_errors() {
    let file = format!("{FILE}E,+5(,,,\n");
    let plan = plan_import(&existing(), parsed(&file), OnDuplicate::Rename, &no_parens);
    let preview = plan.render_preview();
    assert_eq!(
        preview,
        "up.csv: 5 rows read\n\
         to add: 2 (C, D)\n\
         duplicates: 2\n  renamed: 2 (B → B-2, C → C-2)\n\
         invalid rows: 1\n  up.csv:6: E: bad pattern \"+5(\"\n\
         list after import: 6 rules"
    );
}

#[test]
fn preview_caps_long_name_lists() {
    let file: String = (0..25).map(|i| format!("N{i},+{i},,,\n")).collect();
    let plan = plan_import(&[], parsed(&file), OnDuplicate::Skip, &no_parens);
    let preview = plan.render_preview();
    assert!(
        preview.contains("to add: 25 (N0, N1, N2, N3, N4, N5, N6, N7, N8, N9, …and 15 more)"),
        "{preview}"
    );
}

#[test]
fn mode_names() {
    // Issue 10.6: not guessed as `rename` any more; the refusal says what it is.
    assert_eq!(OnDuplicate::from_name("Merge"), None);
    assert!(OnDuplicate::unknown("merge").contains("is `rename`"));
    assert_eq!(OnDuplicate::from_name("Rename"), Some(OnDuplicate::Rename));
    assert_eq!(
        OnDuplicate::from_name("overwrite"),
        Some(OnDuplicate::Overwrite)
    );
    assert_eq!(OnDuplicate::from_name("skip"), Some(OnDuplicate::Skip));
    assert_eq!(OnDuplicate::from_name("ignore"), None);
}

/// Issue 10.2: the size after the import is announced only when the import
/// happens and changes the list.
#[test]
fn preview_announces_the_new_size_only_when_something_is_imported() {
    let file = "E,+5(,,,\nG,+7,,,\n";
    let plan = plan_import(&existing(), parsed(file), OnDuplicate::Skip, &no_parens);
    let refused = plan.render_preview_for(PreviewOutcome::Refused);
    assert!(!refused.contains("list after import"), "{refused}");
    assert!(refused.ends_with("nothing will be imported"), "{refused}");
    assert!(
        plan.render_preview_for(PreviewOutcome::DryRun)
            .ends_with("list after import: 3 rules")
    );
    let dups = plan_import(
        &existing(),
        parsed("A,+1,,,\n"),
        OnDuplicate::Skip,
        &no_parens,
    );
    let text = dups.render_preview();
    assert!(!text.contains("list after import"), "{text}");
    assert!(
        text.ends_with("nothing to import: the list stays at 2 rules"),
        "{text}"
    );
}
