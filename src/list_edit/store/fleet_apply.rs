//! [`ListStore::apply`](super::ListStore::apply) with the lists in the
//! fleet's store of record: the same checks against the whole
//! configuration, but the current rows are read and the new ones written in
//! one PostgreSQL transaction under the store's edit lock, which also
//! notifies every instance. A list the store has no version of yet starts
//! from its file, recorded first (author `file`) so the change can be
//! rolled back to it.

use super::{Applied, Fleet, LoadedConfig, RuleRow, StoreError, check_change, find, list_problems};

pub(super) fn apply(
    fleet: &Fleet,
    mut cfg: LoadedConfig,
    name: &str,
    author: &str,
    merge: bool,
    change: impl FnOnce(&[RuleRow]) -> Result<Vec<RuleRow>, StoreError>,
) -> Result<Applied, StoreError> {
    let i = find(&cfg, name)?;
    let file_rows: Vec<RuleRow> = cfg.lists[i].rows.iter().map(|(_, r)| r.clone()).collect();
    let own = list_problems(&cfg, &cfg.lists[i]);
    let ((applied, rows), committed) = fleet.store.edit(name, |tx| {
        let stored = tx.current()?;
        if merge && stored.is_none() && !own.is_empty() {
            return Err(StoreError::Broken(own.clone()));
        }
        let known = stored.is_some();
        let old = stored.unwrap_or_else(|| file_rows.clone());
        let new = change(&old)?;
        let (summary, _) = check_change(&mut cfg, i, &old, &new)?;
        let path = cfg.lists[i].path.clone();
        let rules = new.len();
        let mut history_version = None;
        if !summary.is_empty() {
            if !known {
                tx.record(&old, "file")?;
            }
            history_version = tx.record(&new, author)?;
        }
        let applied = Applied {
            list: name.to_string(),
            path,
            summary,
            history_version,
            rules,
        };
        Ok((applied, new))
    })?;
    if let Some(c) = committed {
        fleet.committed(name, rows, c);
    }
    Ok(applied)
}
