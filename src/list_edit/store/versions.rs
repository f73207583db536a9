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
    let old = match &latest {
        None => None,
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
            Some((v.version, old))
        }
    };
    let base = old.as_ref().map(|(v, o)| (*v, o.as_slice()));
    record(history, list, rows, hash, author, base).map(Some)
}

/// Records `new` by `author` as the next version of `list`, whose latest
/// recorded content the caller knows to be `old` (the store checks that
/// with [`record_if_changed`] before it writes): stored as the diff from
/// `old` without reading the stored content back. Falls back to
/// [`record_if_changed`] when the latest version is not `old`.
pub(crate) fn record_change(
    history: &ListVersions,
    list: &str,
    old: &[RuleRow],
    new: &[RuleRow],
    author: &str,
) -> Result<Option<u64>> {
    let latest = history.latest(list)?;
    match latest {
        Some(v) if history.cached_hash(&v) == Some(hash_rows(old)) => {
            if old == new {
                return Ok(None);
            }
            record(
                history,
                list,
                new,
                hash_rows(new),
                author,
                Some((v.version, old)),
            )
            .map(Some)
        }
        _ => record_if_changed(history, list, new, author),
    }
}

fn record(
    history: &ListVersions,
    list: &str,
    rows: &[RuleRow],
    hash: u64,
    author: &str,
    base: Option<(u64, &[RuleRow])>,
) -> Result<u64> {
    let summary = diff_rows(base.map_or(&[][..], |(_, o)| o), rows);
    let version = history.record_after(list, author, &summary, rows, base, chrono::Utc::now())?;
    if let Some(v) = history.latest(list)? {
        history.remember_hash(&v, hash);
    }
    Ok(version)
}
