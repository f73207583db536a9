//! The one way to change a list file, shared by the admin API, the CLI
//! (`import`, `rollback`, `block`) and nothing else: validate the candidate
//! rows *and* the whole configuration with them, write atomically, record a
//! history version. A refused change writes nothing, so the running rules
//! (and the file the next reload reads) stay as they were.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ChangeSummary, Format, RuleRow, diff_rows, write_atomic, write_rows};
use crate::config::types::MatchType;
use crate::config::{self, LoadedConfig, LoadedList};
use crate::policy::{RuleSet, pattern};
use crate::store::ListVersions;
use crate::store::pg_lists::{PgStore, PgStoreError};

use super::fleet::Fleet;

mod fleet_apply;
mod prepared;
mod versions;
pub(crate) use prepared::{Prepared, Stamp, WriteLock, stamp};
pub(crate) use versions::{is_latest, record_change, record_if_changed};

/// Why a change was refused; each maps to one HTTP status and one CLI message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("no list named {0:?} (see GET /api/v1/lists or `callguard check`)")]
    UnknownList(String),
    #[error(
        "list {0:?} is defined inline in the configuration and is read-only here: edit callguard.yaml, or move the rules to a list file"
    )]
    ReadOnly(String),
    /// Rows that cannot be stored, each `FILE:LINE: reason`.
    #[error("invalid rules")]
    Invalid(Vec<String>),
    #[error("list {list:?} already has a rule named {rule:?}")]
    Duplicate { list: String, rule: String },
    #[error("list {list:?} has no rule named {rule:?}")]
    NoSuchRule { list: String, rule: String },
    #[error("list {list:?} has no history version {version}")]
    NoSuchVersion { list: String, version: u64 },
    /// The configuration would not load with the new content.
    #[error("the configuration would be refused with this change; nothing was written")]
    Refused(Vec<String>),
    #[error(
        "the list file has problems; fix it or replace the whole list (PUT / import with a complete file)"
    )]
    Broken(Vec<String>),
    #[error("list history is not available (log.path database could not be opened)")]
    NoHistory,
    #[error("{0}")]
    Io(String),
    /// The store of record (`log.postgres`) cannot be reached: nothing was
    /// changed; the running rules stay, and the change can be made again
    /// once it answers.
    #[error("{0}; nothing was changed, try again when it answers")]
    Unavailable(String),
    /// The caller's change function stopped before anything was written
    /// (a dry run, a preview the operator declined).
    #[error("stopped before writing; nothing was changed")]
    Aborted,
}

impl StoreError {
    /// The located problems behind the error, if any.
    pub(crate) fn details(&self) -> Vec<String> {
        match self {
            StoreError::Invalid(d) | StoreError::Refused(d) | StoreError::Broken(d) => d.clone(),
            _ => Vec::new(),
        }
    }
}

/// What a successful change did.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub list: String,
    pub path: PathBuf,
    pub summary: ChangeSummary,
    /// The history version recorded (`None` without history or when nothing changed).
    pub history_version: Option<u64>,
    /// Rules in the list now.
    pub rules: usize,
}

impl From<PgStoreError> for StoreError {
    fn from(e: PgStoreError) -> Self {
        match e {
            PgStoreError::Unavailable(..) => StoreError::Unavailable(e.to_string()),
            PgStoreError::Query(_) => StoreError::Io(e.to_string()),
        }
    }
}

/// A handle on the configuration's lists: its list files, or with
/// `log.postgres` the fleet's store of record ([`Fleet`]).
#[derive(Clone)]
pub(crate) struct ListStore {
    pub config_path: PathBuf,
    pub history: Option<Arc<ListVersions>>,
    lock: WriteLock,
    /// The store of record, when the lists live in PostgreSQL.
    pub fleet: Option<Arc<Fleet>>,
}

/// A file-backed list with its current rows.
pub(crate) struct CurrentList {
    pub list: LoadedList,
}

impl ListStore {
    pub(crate) fn new(
        config_path: impl Into<PathBuf>,
        history: Option<Arc<ListVersions>>,
    ) -> ListStore {
        ListStore {
            config_path: config_path.into(),
            history,
            lock: WriteLock::default(),
            fleet: None,
        }
    }

    /// The same store, its lists in the fleet's store of record.
    pub(crate) fn with_fleet(self, fleet: Option<Arc<Fleet>>) -> ListStore {
        ListStore { fleet, ..self }
    }

    /// The same store, serialised with every other holder of `lock`.
    pub(crate) fn with_lock(self, lock: WriteLock) -> ListStore {
        ListStore { lock, ..self }
    }

    /// For the CLI: opens the history kept beside the decision log
    /// (`log.path`, relative to the config file), if it can be opened.
    /// With `log.postgres`, the lists are the store's (pulled now).
    pub(crate) fn open(config_path: &Path) -> Result<ListStore, StoreError> {
        let cfg = load(config_path)?;
        if let Some(target) = cfg.raw.log.postgres_target() {
            let target = target.map_err(StoreError::Io)?;
            let fleet = Fleet::for_command(Arc::new(PgStore::new(target)))?;
            return Ok(ListStore::new(config_path, None).with_fleet(Some(Arc::new(fleet))));
        }
        let history = ListVersions::open(cfg.resolve(&cfg.raw.log.path))
            .ok()
            .map(Arc::new);
        Ok(ListStore::new(config_path, history))
    }

    /// The list named `name` as it is on disk now.
    pub(crate) fn current(&self, name: &str) -> Result<CurrentList, StoreError> {
        let cfg = self.load_cfg()?;
        let i = find(&cfg, name)?;
        let list = cfg.lists.into_iter().nth(i).ok_or_else(|| unknown(name))?;
        Ok(CurrentList { list })
    }

    /// The rows of list `name` for an export: a list file's rows, or the
    /// rules of a list defined inline in the configuration (`protected`,
    /// `system_blacklist`, `TRUNK.whitelist`, `TRUNK.blacklist`), which are
    /// read-only for changes but can be read like any other.
    pub(crate) fn export_rows(&self, name: &str) -> Result<Vec<RuleRow>, StoreError> {
        let cfg = self.load_cfg()?;
        match find(&cfg, name) {
            Ok(i) => {
                let problems = list_problems(&cfg, &cfg.lists[i]);
                if !problems.is_empty() {
                    return Err(StoreError::Broken(problems));
                }
                Ok(cfg.lists[i].rows.iter().map(|(_, r)| r.clone()).collect())
            }
            Err(StoreError::ReadOnly(_)) => Ok(inline_rows(&cfg, name)),
            Err(e) => Err(e),
        }
    }

    /// The row validator of list `name` as the rule set will judge its rows
    /// (name, match type, pattern, and an action the configuration defines),
    /// so an import preview or an upload lists every bad row with its line
    /// before anything is written.
    pub(crate) fn checker(&self, name: &str) -> Result<RowChecker, StoreError> {
        let cfg = self.load_cfg()?;
        find(&cfg, name)?;
        Ok(RowChecker::new(&cfg))
    }

    /// Replaces the whole list.
    pub(crate) fn replace(
        &self,
        name: &str,
        rows: Vec<RuleRow>,
        author: &str,
    ) -> Result<Applied, StoreError> {
        self.apply(name, author, false, |_| Ok(rows))
    }

    /// Appends `rows`; any name already in the list refuses the whole change.
    pub(crate) fn add(
        &self,
        name: &str,
        rows: Vec<RuleRow>,
        author: &str,
    ) -> Result<Applied, StoreError> {
        self.apply(name, author, true, |cur| {
            let mut seen: std::collections::HashSet<&str> =
                cur.iter().map(|r| r.rule_name.as_str()).collect();
            for r in &rows {
                if !seen.insert(r.rule_name.as_str()) {
                    return Err(StoreError::Duplicate {
                        list: name.to_string(),
                        rule: r.rule_name.clone(),
                    });
                }
            }
            let mut out = cur.to_vec();
            out.extend(rows.iter().cloned());
            Ok(out)
        })
    }

    /// Deletes the rule named `rule`.
    pub(crate) fn delete(
        &self,
        name: &str,
        rule: &str,
        author: &str,
    ) -> Result<Applied, StoreError> {
        self.apply(name, author, true, |cur| {
            if !cur.iter().any(|r| r.rule_name == rule) {
                return Err(StoreError::NoSuchRule {
                    list: name.to_string(),
                    rule: rule.to_string(),
                });
            }
            Ok(cur
                .iter()
                .filter(|r| r.rule_name != rule)
                .cloned()
                .collect())
        })
    }

    /// The configuration, with the store's rows over its list files' rows.
    fn load_cfg(&self) -> Result<LoadedConfig, StoreError> {
        let mut cfg = load(&self.config_path)?;
        if let Some(f) = &self.fleet {
            f.overlay(&mut cfg);
        }
        Ok(cfg)
    }

    /// Restores the content of history version `version`.
    pub(crate) fn restore(
        &self,
        name: &str,
        version: u64,
        author: &str,
    ) -> Result<Applied, StoreError> {
        if let Some(f) = &self.fleet {
            find(&self.load_cfg()?, name)?;
            let rows =
                f.store
                    .content(name, version)?
                    .ok_or_else(|| StoreError::NoSuchVersion {
                        list: name.to_string(),
                        version,
                    })?;
            return self.apply(name, author, false, |_| Ok(rows));
        }
        let history = self.history.as_ref().ok_or(StoreError::NoHistory)?;
        // Inside the change, so an unknown or inline list is reported as such.
        self.apply(name, author, false, |_| {
            history
                .content(name, version)
                .map_err(|e| StoreError::Io(e.to_string()))?
                .ok_or_else(|| StoreError::NoSuchVersion {
                    list: name.to_string(),
                    version,
                })
        })
    }

    /// The general change: `change` maps the current rows to the new ones.
    /// `merge` changes (add, delete, import) need a readable current file;
    /// a whole replacement may repair a broken one.
    pub(crate) fn apply(
        &self,
        name: &str,
        author: &str,
        merge: bool,
        change: impl FnOnce(&[RuleRow]) -> Result<Vec<RuleRow>, StoreError>,
    ) -> Result<Applied, StoreError> {
        let _guard = self.lock.hold();
        let started = std::time::SystemTime::now();
        let mut cfg = self.load_cfg()?;
        if let Some(f) = &self.fleet {
            return fleet_apply::apply(f, cfg, name, author, merge, change);
        }
        let i = find(&cfg, name)?;
        let own = list_problems(&cfg, &cfg.lists[i]);
        if merge && !own.is_empty() {
            return Err(StoreError::Broken(own));
        }
        let old: Vec<RuleRow> = cfg.lists[i].rows.iter().map(|(_, r)| r.clone()).collect();
        let new = change(&old)?;
        let (summary, rules_set) = check_change(&mut cfg, i, &old, &new)?;
        let (path, format) = (cfg.lists[i].path.clone(), cfg.lists[i].format);
        let rules = new.len();
        if summary.is_empty() && own.is_empty() {
            return Ok(Applied {
                list: name.to_string(),
                path,
                summary,
                history_version: None,
                rules,
            });
        }
        let mut history_version = None;
        if let Some(h) = &self.history {
            // The file may have been edited since the last recorded version:
            // keep that state too, so this change can be rolled back to it.
            record_if_changed(h, name, &old, "file").map_err(|e| StoreError::Io(e.to_string()))?;
        }
        write_atomic(&path, &write_rows(&new, format))
            .map_err(|e| StoreError::Io(format!("{}: cannot write: {e}", path.display())))?;
        // The reload that follows installs what was just checked.
        self.lock
            .prepare(rules_set.and_then(|rs| Prepared::new(cfg, rs, started, &path)));
        if let Some(h) = &self.history {
            history_version = record_change(h, name, &old, &new, author)
                .map_err(|e| StoreError::Io(format!("written, but history failed: {e}")))?;
        }
        Ok(Applied {
            list: name.to_string(),
            path,
            summary,
            history_version,
            rules,
        })
    }
}

/// Checks `new`, the rows replacing `old` in list `i`, against the whole
/// configuration (the file path and the fleet's store alike): every row, then
/// the configuration with them in place of the list's rows and problems;
/// another tenant's problems do not refuse a change to this list. With the
/// rule set compiled from it when nothing at all is wrong.
fn check_change(
    cfg: &mut LoadedConfig,
    i: usize,
    old: &[RuleRow],
    new: &[RuleRow],
) -> Result<(ChangeSummary, Option<RuleSet>), StoreError> {
    let list = &cfg.lists[i];
    let (file, format) = (list.path.display().to_string(), list.format);
    let errors = RowChecker::new(cfg).check_rows(new, &list.display, format);
    if !errors.is_empty() {
        return Err(StoreError::Invalid(errors));
    }
    // The old file's own problems are replaced along with its rows.
    cfg.problems.retain(|p| p.file != file);
    cfg.tenant_problems.retain(|(_, p)| p.file != file);
    cfg.lists[i].rows = with_lines(new, format);
    let tenant = cfg.lists[i].tenant.clone();
    let rules = RuleSet::check_and_build(cfg, tenant.as_deref())
        .map_err(|p| StoreError::Refused(p.0.iter().map(ToString::to_string).collect()))?;
    Ok((diff_rows(old, new), rules))
}

fn load(path: &Path) -> Result<LoadedConfig, StoreError> {
    config::load(path)
        .map_err(|p| StoreError::Refused(p.0.iter().map(ToString::to_string).collect()))
}

fn unknown(name: &str) -> StoreError {
    StoreError::UnknownList(name.to_string())
}

/// The index of the file-backed list `name`, or why there is none.
pub(crate) fn find(cfg: &LoadedConfig, name: &str) -> Result<usize, StoreError> {
    if let Some(i) = cfg.lists.iter().position(|l| l.name == name) {
        return Ok(i);
    }
    let inline = name == "protected"
        || name == "system_blacklist"
        || name.rsplit_once('.').is_some_and(|(t, k)| {
            cfg.raw.trunks.contains_key(t) && matches!(k, "whitelist" | "blacklist")
        });
    Err(if inline {
        StoreError::ReadOnly(name.to_string())
    } else {
        unknown(name)
    })
}

/// The rules of an inline list as list rows. A protected number is its own
/// name; a rule for hidden callers (`anonymous: true`, no pattern) becomes the
/// word `Anonymous`, which such callers are matched as.
fn inline_rows(cfg: &LoadedConfig, name: &str) -> Vec<RuleRow> {
    let raw = &cfg.raw;
    if name == "protected" {
        return raw
            .protected
            .iter()
            .map(|p| RuleRow {
                rule_name: p.value.clone(),
                pattern: p.value.clone(),
                match_type: String::new(),
                action: String::new(),
                enabled: true,
                notes: "protected: never blocked".into(),
            })
            .collect();
    }
    let rules = match name.rsplit_once('.') {
        _ if name == "system_blacklist" => &raw.blacklist,
        Some((t, "whitelist")) => match raw.trunks.get(t) {
            Some(t) => &t.value.whitelist,
            None => return Vec::new(),
        },
        Some((t, "blacklist")) => match raw.trunks.get(t) {
            Some(t) => &t.value.blacklist,
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    rules
        .iter()
        .map(|r| {
            let r = &r.value;
            let (pattern, match_type) = match &r.pattern {
                Some(p) => (
                    p.value.clone(),
                    r.match_type.map_or("", MatchType::as_str).to_string(),
                ),
                None => ("Anonymous".to_string(), "exact".to_string()),
            };
            RuleRow {
                rule_name: r.name.value.clone(),
                pattern,
                match_type,
                action: r
                    .action
                    .as_ref()
                    .map(|a| a.value.clone())
                    .unwrap_or_default(),
                enabled: r.enabled,
                notes: r.notes.clone().unwrap_or_default(),
            }
        })
        .collect()
}

fn list_problems(cfg: &LoadedConfig, list: &LoadedList) -> Vec<String> {
    let file = list.path.display().to_string();
    cfg.problems
        .iter()
        .chain(cfg.tenant_problems.iter().map(|(_, p)| p))
        .filter(|p| p.file == file || p.message.starts_with(&format!("{}:", list.display)))
        .map(ToString::to_string)
        .collect()
}

/// The line each row will have in the written file (CSV: after the header;
/// other formats: the row's position), for messages that point into it.
fn with_lines(rows: &[RuleRow], format: Format) -> Vec<(u32, RuleRow)> {
    let base = if format == Format::Csv { 2 } else { 1 };
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            (
                u32::try_from(i)
                    .unwrap_or(u32::MAX - 2)
                    .saturating_add(base),
                r.clone(),
            )
        })
        .collect()
}

/// One row on its own: a name, a known match type, a pattern that compiles.
/// The pattern compiler of the policy core is the judge, so what passes here
/// also loads.
pub(crate) fn check_row(row: &RuleRow) -> Result<(), String> {
    if row.rule_name.trim().is_empty() {
        return Err("missing rule_name".into());
    }
    let mt = match row.match_type.trim() {
        "" => None,
        m => Some(MatchType::parse(m).ok_or_else(|| {
            format!(
                "unknown match_type {m:?} (expected exact, starts_with, contains, ends_with, wildcard, regex or empty)"
            )
        })?),
    };
    pattern::compile(&row.pattern, mt, false)
        .map(|_| ())
        .map_err(|e| format!("pattern {:?}: {e}", row.pattern))
}

/// What the rule set requires of a list row beyond [`check_row`]: an
/// action it defines. Built from the configuration the rows will load with.
#[derive(Debug, Clone)]
pub(crate) struct RowChecker {
    /// Configured actions and the built-in ones (`reject`, `pass`, `allow`).
    actions: std::collections::BTreeSet<String>,
}

impl RowChecker {
    pub(crate) fn new(cfg: &LoadedConfig) -> RowChecker {
        let mut actions: std::collections::BTreeSet<String> =
            cfg.raw.actions.keys().cloned().collect();
        actions.extend(RuleSet::BUILTIN_ACTIONS.iter().map(|s| s.to_string()));
        RowChecker { actions }
    }

    /// One row as the rule set would judge it (see `RuleSet::compile`).
    pub(crate) fn check(&self, row: &RuleRow) -> Result<(), String> {
        check_row(row)?;
        match row.action.trim() {
            // "allow" / "block" in a file mean "what this list does".
            "" | "allow" | "block" => Ok(()),
            a if self.actions.contains(a) => Ok(()),
            a => Err(format!(
                "no action named {a:?} (defined: {})",
                self.actions
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Every problem of a candidate list: bad rows and repeated names, as
    /// `FILE:LINE: reason` against the file as it would be written.
    pub(crate) fn check_rows(&self, rows: &[RuleRow], source: &str, format: Format) -> Vec<String> {
        check_rows_with(rows, source, format, &|r| self.check(r))
    }
}

fn check_rows_with(
    rows: &[RuleRow],
    source: &str,
    format: Format,
    check: &dyn Fn(&RuleRow) -> Result<(), String>,
) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let mut errors = Vec::new();
    for (line, row) in with_lines_iter(rows, format) {
        if let Err(e) = check(row) {
            errors.push(format!("{source}:{line}: {}: {e}", row.rule_name));
        } else if !seen.insert(row.rule_name.as_str()) {
            errors.push(format!(
                "{source}:{line}: duplicate rule name {:?}",
                row.rule_name
            ));
        }
    }
    errors
}

fn with_lines_iter(rows: &[RuleRow], format: Format) -> impl Iterator<Item = (usize, &RuleRow)> {
    let base = if format == Format::Csv { 2 } else { 1 };
    rows.iter().enumerate().map(move |(i, r)| (i + base, r))
}

#[cfg(test)]
mod tests;
