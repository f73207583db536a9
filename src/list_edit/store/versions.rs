//! "Record a version unless the history already has this content": used by
//! the store before and after a write, and by the reloader for edits made to
//! the files directly. Comparing with the stored content means parsing it;
//! a small cache of content hashes, keyed by the stored version's identity
//! and kept by the [`ListVersions`] handle, keeps a reload of a million-row
//! list from re-reading it every time.

use std::hash::{Hash, Hasher};

use crate::list_io::{RuleRow, diff_rows};
use crate::store::list_versions::{ListVersions, Result};

fn hash_rows(rows: &[RuleRow]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    rows.len().hash(&mut h);
    for r in rows {
        (
            &r.rule_name,
            &r.pattern,
            &r.match_type,
            &r.action,
            r.enabled,
            &r.notes,
        )
            .hash(&mut h);
    }
    h.finish()
}

/// Whether `rows` are the latest recorded content of `list`.
pub(crate) fn is_latest(history: &ListVersions, list: &str, rows: &[RuleRow]) -> Result<bool> {
    let Some(v) = history.latest(list)? else {
        return Ok(false);
    };
    let hash = hash_rows(rows);
    if history.cached_hash(&v) == Some(hash) {
        return Ok(true);
    }
    let old = history.content(list, v.version)?.unwrap_or_default();
    history.remember_hash(&v, hash_rows(&old));
    Ok(old == rows)
}

/// Records `rows` as the next version of `list` by `author`, unless they are
/// the latest recorded content already. Returns the new version, if any.
pub(crate) fn record_if_changed(
    history: &ListVersions,
    list: &str,
    rows: &[RuleRow],
    author: &str,
) -> Result<Option<u64>> {
    let hash = hash_rows(rows);
    let latest = history.latest(list)?;
    let summary = match &latest {
        None => diff_rows(&[], rows),
        Some(v) => {
            if history.cached_hash(v) == Some(hash) {
                return Ok(None);
            }
            let old = history.content(list, v.version)?.unwrap_or_default();
            let old_hash = hash_rows(&old);
            history.remember_hash(v, old_hash);
            if old_hash == hash && old == rows {
                return Ok(None);
            }
            diff_rows(&old, rows)
        }
    };
    let version = history.record(list, author, &summary, rows)?;
    if let Some(v) = history.latest(list)? {
        history.remember_hash(&v, hash);
    }
    Ok(Some(version))
}
