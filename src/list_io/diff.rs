//! What a change did to a list, by rule name: the one-line summary stored
//! with each history version and shown before a rollback.

use std::collections::HashMap;
use std::fmt;

use super::RuleRow;

/// Names shown per category in the one-line summary.
const SHOWN: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSummary {
    /// In `new` order.
    pub added: Vec<String>,
    /// In `old` order.
    pub removed: Vec<String>,
    /// Same name, any field different; in `new` order.
    pub changed: Vec<String>,
}

impl ChangeSummary {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Compares two versions of a list. Rows are keyed by `rule_name`; if a list
/// repeats a name, its first row is the one compared.
pub(crate) fn diff_rows(old: &[RuleRow], new: &[RuleRow]) -> ChangeSummary {
    let old_by_name = first_by_name(old);
    let new_by_name = first_by_name(new);
    let mut summary = ChangeSummary::default();
    for (i, row) in new.iter().enumerate() {
        if new_by_name.get(row.rule_name.as_str()) != Some(&i) {
            continue;
        }
        match old_by_name.get(row.rule_name.as_str()) {
            None => summary.added.push(row.rule_name.clone()),
            Some(&j) if old[j] != *row => summary.changed.push(row.rule_name.clone()),
            Some(_) => {}
        }
    }
    for (i, row) in old.iter().enumerate() {
        if old_by_name.get(row.rule_name.as_str()) == Some(&i)
            && !new_by_name.contains_key(row.rule_name.as_str())
        {
            summary.removed.push(row.rule_name.clone());
        }
    }
    summary
}

fn first_by_name(rows: &[RuleRow]) -> HashMap<&str, usize> {
    let mut map = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        map.entry(r.rule_name.as_str()).or_insert(i);
    }
    map
}

/// `+2 −1 ~0 (added: A, B; removed: C)`: counts always, names of the
/// non-empty categories, at most ten each.
impl fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "+{} −{} ~{}",
            self.added.len(),
            self.removed.len(),
            self.changed.len()
        )?;
        let parts: Vec<String> = [
            ("added", &self.added),
            ("removed", &self.removed),
            ("changed", &self.changed),
        ]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(label, names)| {
            let mut s = format!("{label}: {}", names[..names.len().min(SHOWN)].join(", "));
            if names.len() > SHOWN {
                s.push_str(&format!(", …and {} more", names.len() - SHOWN));
            }
            s
        })
        .collect();
        if !parts.is_empty() {
            write!(f, " ({})", parts.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn added_removed_changed() {
        let old = [r("A", "+1"), r("B", "+2"), r("C", "+3")];
        let mut disabled = r("B", "+2");
        disabled.enabled = false;
        let new = [r("D", "+4"), disabled, r("A", "+1"), r("E", "+5")];
        let d = diff_rows(&old, &new);
        assert_eq!(d.added, ["D", "E"]);
        assert_eq!(d.removed, ["C"]);
        assert_eq!(d.changed, ["B"]);
        assert_eq!(
            d.to_string(),
            "+2 −1 ~1 (added: D, E; removed: C; changed: B)"
        );
    }

    #[test]
    fn no_change() {
        let rows = [r("A", "+1")];
        let d = diff_rows(&rows, &rows);
        assert!(d.is_empty());
        assert_eq!(d.to_string(), "+0 −0 ~0");
    }

    #[test]
    fn names_are_capped() {
        let new: Vec<RuleRow> = (1..=13).map(|i| r(&format!("N{i}"), "+1")).collect();
        let d = diff_rows(&[r("Old", "+9")], &new);
        assert_eq!(
            d.to_string(),
            "+13 −1 ~0 (added: N1, N2, N3, N4, N5, N6, N7, N8, N9, N10, …and 3 more; removed: Old)"
        );
    }

    #[test]
    fn matches_the_reference_shape() {
        let d = diff_rows(&[r("C", "+3")], &[r("A", "+1"), r("B", "+2")]);
        assert_eq!(d.to_string(), "+2 −1 ~0 (added: A, B; removed: C)");
    }
}
