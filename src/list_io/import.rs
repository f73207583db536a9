//! Import planning: what an import would do to a list, computed before
//! anything is written, so the operator confirms a preview rather than
//! discovering the result (reference: "Review preview", "Handle Conflicts").

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::{ParsedList, RowError, RuleRow};

/// What to do with a row whose `rule_name` is already taken, by the list or
/// by an earlier row of the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDuplicate {
    /// Keep the rule already there (the first one, within the file).
    #[default]
    Skip,
    /// Replace it in place (the last row of the file wins).
    Overwrite,
    /// Keep both; the newcomer becomes `NAME-2`, `NAME-3`, …
    Rename,
}

impl OnDuplicate {
    /// `skip`, `overwrite` or `rename`, any case; nothing else, so a mode
    /// the operator half-remembers is refused rather than guessed.
    pub(crate) fn from_name(name: &str) -> Option<OnDuplicate> {
        match name.trim().to_ascii_lowercase().as_str() {
            "skip" => Some(OnDuplicate::Skip),
            "overwrite" => Some(OnDuplicate::Overwrite),
            "rename" => Some(OnDuplicate::Rename),
            _ => None,
        }
    }

    /// The refusal of an unknown mode, with a hint for the reference's
    /// "Merge (keep both, rename)".
    pub fn unknown(name: &str) -> String {
        let hint = if name.trim().eq_ignore_ascii_case("merge") {
            ": the reference's \"merge\" (keep both) is `rename`"
        } else {
            ""
        };
        format!(
            "unknown mode {name:?} (skip, overwrite or rename: keep the existing rule, replace it, or keep both with the newcomer renamed NAME-2){hint}"
        )
    }
}

/// The outcome of an import, before it is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImportPlan {
    pub source: String,
    /// Data rows in the file, valid or not.
    pub rows_read: usize,
    /// Names of rows appended under their own name.
    pub to_add: Vec<String>,
    /// Names of rows that replace a rule (existing, or earlier in the file).
    pub overwritten: Vec<String>,
    /// Names of rows dropped because the name was taken.
    pub skipped: Vec<String>,
    /// `(name in the file, name given)` of rows appended under a new name.
    pub renamed: Vec<(String, String)>,
    /// Rows that cannot be imported: unreadable, or refused by the validator.
    pub errors: Vec<RowError>,
    /// The whole list after the import: existing order kept, new rows appended.
    pub result: Vec<RuleRow>,
}

/// Plans importing `parsed` into `existing`. `validate` is the pattern
/// compiler of the policy module, so an invalid pattern is caught here, with
/// its line, and not at reload time.
pub(crate) fn plan_import(
    existing: &[RuleRow],
    parsed: ParsedList,
    mode: OnDuplicate,
    validate: &dyn Fn(&RuleRow) -> Result<(), String>,
) -> ImportPlan {
    let mut plan = ImportPlan {
        source: parsed.source,
        rows_read: parsed.rows_read.max(parsed.rows.len()),
        errors: parsed.errors,
        result: existing.to_vec(),
        ..ImportPlan::default()
    };
    let mut index: HashMap<String, usize> =
        HashMap::with_capacity(existing.len() + parsed.rows.len());
    for (i, r) in existing.iter().enumerate() {
        index.entry(r.rule_name.clone()).or_insert(i);
    }
    // Names a rename must avoid: taking a name a later row of the file uses
    // would turn that row into a duplicate it was not.
    let mut reserved: HashSet<String> = HashSet::new();
    if mode == OnDuplicate::Rename {
        reserved.extend(parsed.rows.iter().map(|(_, r)| r.rule_name.clone()));
    }
    let mut file_errors = Vec::new();
    for (line, row) in parsed.rows {
        if let Err(message) = validate(&row) {
            file_errors.push(RowError {
                source: plan.source.clone(),
                line,
                column: None,
                message: format!("{}: {message}", row.rule_name),
            });
            continue;
        }
        match (index.get(&row.rule_name).copied(), mode) {
            (None, _) => {
                index.insert(row.rule_name.clone(), plan.result.len());
                plan.to_add.push(row.rule_name.clone());
                plan.result.push(row);
            }
            (Some(_), OnDuplicate::Skip) => plan.skipped.push(row.rule_name),
            (Some(at), OnDuplicate::Overwrite) => {
                plan.overwritten.push(row.rule_name.clone());
                plan.result[at] = row;
            }
            (Some(_), OnDuplicate::Rename) => {
                let new = free_name(&row.rule_name, &index, &reserved);
                index.insert(new.clone(), plan.result.len());
                reserved.insert(new.clone());
                plan.renamed.push((row.rule_name.clone(), new.clone()));
                plan.result.push(RuleRow {
                    rule_name: new,
                    ..row
                });
            }
        }
    }
    plan.errors.extend(file_errors);
    plan.errors.sort_by_key(|e| e.line);
    plan
}

fn free_name(name: &str, taken: &HashMap<String, usize>, reserved: &HashSet<String>) -> String {
    (2u64..)
        .map(|n| format!("{name}-{n}"))
        .find(|c| !taken.contains_key(c) && !reserved.contains(c))
        .unwrap_or_else(|| format!("{name}-{}", taken.len() + 2))
}

/// What happens after the preview is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreviewOutcome {
    /// The plan is written.
    Import,
    /// `--dry-run`: it would be written.
    DryRun,
    /// Invalid rows without `--skip-invalid`: nothing is written.
    Refused,
}

/// Names listed per section of the preview; the full lists stay in the plan.
const SHOWN_NAMES: usize = 10;
/// Errors listed in the preview.
const SHOWN_ERRORS: usize = 100;

impl ImportPlan {
    /// Rows the import appends (under their own name or a new one).
    pub(crate) fn added(&self) -> usize {
        self.to_add.len() + self.renamed.len()
    }

    /// Whether applying the plan changes the list (adds or replaces a rule).
    pub(crate) fn changes_anything(&self) -> bool {
        self.added() > 0 || !self.overwritten.is_empty()
    }

    /// The preview shown before "Confirm Import", for an import that goes ahead.
    #[cfg(test)]
    pub(crate) fn render_preview(&self) -> String {
        self.render_preview_for(PreviewOutcome::Import)
    }

    /// The preview, ending with the list's size after the import only when
    /// the import happens (or would, in a dry run) and changes the list: a
    /// refused import must not read as if the list had grown.
    pub(crate) fn render_preview_for(&self, outcome: PreviewOutcome) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}: {} rows read", self.source, self.rows_read);
        let _ = writeln!(
            s,
            "to add: {}{}",
            self.to_add.len(),
            names(self.to_add.iter().map(String::as_str))
        );
        let dups = self.overwritten.len() + self.skipped.len() + self.renamed.len();
        let _ = writeln!(s, "duplicates: {dups}");
        if !self.skipped.is_empty() {
            let _ = writeln!(
                s,
                "  skipped: {}{}",
                self.skipped.len(),
                names(self.skipped.iter().map(String::as_str))
            );
        }
        if !self.overwritten.is_empty() {
            let _ = writeln!(
                s,
                "  overwritten: {}{}",
                self.overwritten.len(),
                names(self.overwritten.iter().map(String::as_str))
            );
        }
        if !self.renamed.is_empty() {
            let pairs: Vec<String> = self
                .renamed
                .iter()
                .map(|(a, b)| format!("{a} → {b}"))
                .collect();
            let _ = writeln!(
                s,
                "  renamed: {}{}",
                self.renamed.len(),
                names(pairs.iter().map(String::as_str))
            );
        }
        let _ = writeln!(s, "invalid rows: {}", self.errors.len());
        for e in self.errors.iter().take(SHOWN_ERRORS) {
            let _ = writeln!(s, "  {e}");
        }
        if self.errors.len() > SHOWN_ERRORS {
            let _ = writeln!(s, "  …and {} more", self.errors.len() - SHOWN_ERRORS);
        }
        match outcome {
            PreviewOutcome::Refused => {
                let _ = write!(s, "nothing will be imported");
            }
            _ if !self.changes_anything() => {
                let _ = write!(
                    s,
                    "nothing to import: the list stays at {} rules",
                    self.result.len()
                );
            }
            _ => {
                let _ = write!(s, "list after import: {} rules", self.result.len());
            }
        }
        s
    }
}

/// ` (A, B, …and N more)`, or nothing for an empty list.
fn names<'a>(all: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = all.len();
    if total == 0 {
        return String::new();
    }
    let shown: Vec<&str> = all.take(SHOWN_NAMES).collect();
    let more = if total > SHOWN_NAMES {
        format!(", …and {} more", total - SHOWN_NAMES)
    } else {
        String::new()
    };
    format!(" ({}{more})", shown.join(", "))
}

#[cfg(test)]
mod tests;
