//! A list version as PostgreSQL stores it: the difference from the version
//! before (rows removed by name, rows added or changed, and the order only
//! when it moved some other way), so a one-row edit of a million-row list
//! stores one row. Pure: folding the diffs of versions 1..=N gives version N.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::list_io::RuleRow;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Diff {
    /// The whole content, when names repeat (a diff by name cannot say it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<Vec<RuleRow>>,
    /// Rule names gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Rows added (appended, in order) or changed (in place).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upsert: Vec<RuleRow>,
    /// Every name in the new order, when removing and appending does not give it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
}

fn unique(rows: &[RuleRow]) -> bool {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter().all(|r| seen.insert(r.rule_name.as_str()))
}

impl Diff {
    /// What turns `old` into `new`.
    pub(crate) fn between(old: &[RuleRow], new: &[RuleRow]) -> Diff {
        if !unique(old) || !unique(new) {
            return Diff {
                full: Some(new.to_vec()),
                ..Diff::default()
            };
        }
        let old_by: HashMap<&str, &RuleRow> =
            old.iter().map(|r| (r.rule_name.as_str(), r)).collect();
        let new_names: HashSet<&str> = new.iter().map(|r| r.rule_name.as_str()).collect();
        let mut d = Diff {
            removed: old
                .iter()
                .filter(|r| !new_names.contains(r.rule_name.as_str()))
                .map(|r| r.rule_name.clone())
                .collect(),
            upsert: new
                .iter()
                .filter(|r| old_by.get(r.rule_name.as_str()) != Some(r))
                .cloned()
                .collect(),
            ..Diff::default()
        };
        if d.apply(old) != new {
            d.order = Some(new.iter().map(|r| r.rule_name.clone()).collect());
        }
        d
    }

    /// `old` with this diff applied.
    pub(crate) fn apply(&self, old: &[RuleRow]) -> Vec<RuleRow> {
        if let Some(full) = &self.full {
            return full.clone();
        }
        let removed: HashSet<&str> = self.removed.iter().map(String::as_str).collect();
        let mut out: Vec<RuleRow> = old
            .iter()
            .filter(|r| !removed.contains(r.rule_name.as_str()))
            .cloned()
            .collect();
        let mut at: HashMap<String, usize> = out
            .iter()
            .enumerate()
            .map(|(i, r)| (r.rule_name.clone(), i))
            .collect();
        for r in &self.upsert {
            match at.get(&r.rule_name) {
                Some(&i) => out[i] = r.clone(),
                None => {
                    at.insert(r.rule_name.clone(), out.len());
                    out.push(r.clone());
                }
            }
        }
        if let Some(order) = &self.order {
            let mut by: HashMap<String, RuleRow> =
                out.into_iter().map(|r| (r.rule_name.clone(), r)).collect();
            out = order.iter().filter_map(|n| by.remove(n)).collect();
        }
        out
    }

    /// `base` with every diff of `diffs` applied in turn: the same as
    /// folding [`Diff::apply`], but each diff costs its own size, not the
    /// list's (a million-row list and a hundred one-row edits).
    pub(crate) fn fold(base: Vec<RuleRow>, diffs: impl IntoIterator<Item = Diff>) -> Vec<RuleRow> {
        let mut rows: Vec<Option<RuleRow>> = base.into_iter().map(Some).collect();
        let mut at: Option<HashMap<String, usize>> = None;
        for d in diffs {
            if let Some(full) = d.full {
                rows = full.into_iter().map(Some).collect();
                at = None;
                continue;
            }
            let at = at.get_or_insert_with(|| {
                rows.iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.as_ref().map(|r| (r.rule_name.clone(), i)))
                    .collect()
            });
            for name in &d.removed {
                if let Some(i) = at.remove(name) {
                    rows[i] = None;
                }
            }
            for r in d.upsert {
                match at.get(&r.rule_name) {
                    Some(&i) => rows[i] = Some(r),
                    None => {
                        at.insert(r.rule_name.clone(), rows.len());
                        rows.push(Some(r));
                    }
                }
            }
            if let Some(order) = d.order {
                let mut taken: Vec<Option<RuleRow>> = Vec::with_capacity(order.len());
                for n in &order {
                    if let Some(i) = at.get(n) {
                        taken.push(rows[*i].take());
                    }
                }
                rows = taken;
                *at = rows
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.as_ref().map(|r| (r.rule_name.clone(), i)))
                    .collect();
            }
        }
        rows.into_iter().flatten().collect()
    }

    /// Whether the new content needs the current rows rewritten (not patched).
    pub(crate) fn rewrites(&self) -> bool {
        self.full.is_some() || self.order.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, pattern: &str) -> RuleRow {
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
    fn diffs_fold_back_to_every_version() {
        let v1 = vec![row("a", "+1"), row("b", "+2"), row("c", "+3")];
        let v2 = vec![row("a", "+1"), row("c", "+33"), row("d", "+4")];
        let v3 = vec![row("d", "+4"), row("a", "+1")];
        let v4 = vec![row("x", "+9"), row("x", "+8")];
        let mut cur = Vec::new();
        for v in [&v1, &v2, &v3, &v4, &v1] {
            let d = Diff::between(&cur, v);
            let json = serde_json::to_string(&d).unwrap();
            let back: Diff = serde_json::from_str(&json).unwrap();
            cur = back.apply(&cur);
            assert_eq!(&cur, v);
        }
        let diffs = [&v1, &v2, &v3, &v4, &v1, &v2];
        let mut prev: Vec<RuleRow> = Vec::new();
        let mut all = Vec::new();
        for v in diffs {
            all.push(Diff::between(&prev, v));
            prev = v.clone();
        }
        for n in 0..=all.len() {
            let want = if n == 0 {
                Vec::new()
            } else {
                diffs[n - 1].clone()
            };
            assert_eq!(Diff::fold(Vec::new(), all[..n].to_vec()), want, "{n}");
        }
        // From a base: v2 then v3's diff.
        assert_eq!(Diff::fold(v2.clone(), [all[2].clone()]), v3);
        let d = Diff::between(&v1, &v2);
        assert_eq!(d.removed, vec!["b"]);
        assert_eq!(d.upsert, vec![row("c", "+33"), row("d", "+4")]);
        assert!(!d.rewrites());
        assert!(Diff::between(&v2, &v3).rewrites());
    }
}
