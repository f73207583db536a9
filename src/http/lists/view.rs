//! One list as the console pages it: its rows held in memory (read once per
//! rule-set version and file state, not per request), searched, sorted and
//! paged, each row with what the screens show beside it (the action a call
//! would really get, dates from the history, hits from the call log).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};

use crate::calllog::{LogReader, PgTarget};
use crate::store::HitCounts;
use serde_json::{Value, json};

use crate::list_io::RuleRow;
use crate::policy::RuleSet;
use crate::policy::ruleset::ListInfo;

/// The period hit counts cover.
pub(crate) const HIT_DAYS: i64 = 30;

/// Rows per page unless asked; the most a page may hold.
pub(crate) const PAGE: usize = 50;
pub(crate) const MAX_PAGE: usize = 500;

/// A list's rows with a lower-case search text per row.
pub(crate) struct ListView {
    key: ViewKey,
    pub name: String,
    /// `whitelist`, `blacklist`, `system_blacklist`, `protected`, `user_allow`…
    pub kind: String,
    pub trunk: Option<String>,
    pub editable: bool,
    /// The list entry's `action:` (rows without their own use it).
    pub list_action: Option<String>,
    pub rows: Vec<RuleRow>,
    hay: Vec<String>,
}

/// What a cached view was read from: the configuration, the rule-set
/// version in force and the list file's state.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ViewKey {
    pub config: PathBuf,
    pub list: String,
    pub version: u64,
    pub file: Option<(SystemTime, u64)>,
}

impl ViewKey {
    pub(crate) fn new(config: PathBuf, list: &str, version: u64, path: Option<&PathBuf>) -> Self {
        let file = path
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        ViewKey {
            config,
            list: list.to_string(),
            version,
            file,
        }
    }
}

/// Views kept: the lists being paged now.
const CACHED: usize = 8;

fn cache() -> &'static Mutex<Vec<Arc<ListView>>> {
    static CACHE: OnceLock<Mutex<Vec<Arc<ListView>>>> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

impl ListView {
    pub(crate) fn cached(key: &ViewKey) -> Option<Arc<ListView>> {
        let c = cache().lock().unwrap_or_else(|e| e.into_inner());
        c.iter().find(|v| &v.key == key).cloned()
    }

    pub(crate) fn build(
        key: ViewKey,
        info: Option<&ListInfo>,
        list_action: Option<String>,
        rows: Vec<RuleRow>,
    ) -> Arc<ListView> {
        let hay = rows
            .iter()
            .map(|r| format!("{}\u{1}{}\u{1}{}", r.rule_name, r.pattern, r.notes).to_lowercase())
            .collect();
        let v = Arc::new(ListView {
            name: key.list.clone(),
            kind: info.map_or("blacklist", |i| i.kind).to_string(),
            trunk: info.and_then(|i| i.trunk.clone()),
            editable: info.is_some_and(|i| i.path.is_some()),
            key,
            list_action,
            rows,
            hay,
        });
        let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
        c.retain(|x| !(x.key.config == v.key.config && x.key.list == v.key.list));
        if c.len() >= CACHED {
            c.remove(0);
        }
        c.push(v.clone());
        v
    }

    /// Rows whose name, pattern or notes contain `q` (any case), or whose
    /// rule is one of `matching` (a phone number's matches), in file order.
    pub(crate) fn search(
        &self,
        q: &str,
        matching: Option<&std::collections::HashSet<String>>,
    ) -> Vec<usize> {
        let q = q.trim().to_lowercase();
        if q.is_empty() {
            return (0..self.rows.len()).collect();
        }
        (0..self.rows.len())
            .filter(|&i| {
                self.hay[i].contains(&q)
                    || matching.is_some_and(|m| m.contains(&self.rows[i].rule_name))
            })
            .collect()
    }
}

/// What a row shows beside its own fields.
pub(crate) struct RowFacts {
    /// (list, rule) → calls decided in the hit period, and the last one.
    pub hits: HashMap<String, (u64, Option<DateTime<Utc>>)>,
    /// rule → (added, changed), from the list's history.
    pub dates: Arc<super::dates::Dates>,
    /// The action of rows with none, and where it comes from.
    pub fallback: (String, &'static str),
}

impl RowFacts {
    fn hits(&self, rule: &str) -> (u64, Option<DateTime<Utc>>) {
        self.hits.get(rule).copied().unwrap_or((0, None))
    }
    fn dates(&self, rule: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        self.dates
            .get(rule)
            .map_or((None, None), |(a, c)| (Some(*a), Some(*c)))
    }
}

/// The action a row without its own gets, and its source: the list entry's
/// `action:`, else the trunk's `blocked_action` / `allowed_action`, else
/// the configuration's default.
pub(crate) fn fallback_action(
    rs: &RuleSet,
    kind: &str,
    trunk: Option<&str>,
    list_action: Option<&str>,
) -> (String, &'static str) {
    if let Some(a) = list_action.filter(|a| !a.is_empty()) {
        return (a.to_string(), "list");
    }
    let allow = matches!(kind, "whitelist" | "user_allow" | "protected");
    if let Some(t) = trunk.and_then(|t| rs.trunk_by_name(t)) {
        let t = rs.trunk(t);
        let a = if allow {
            t.allowed_action
        } else {
            t.blocked_action
        };
        return (rs.action(a).name.to_string(), "trunk");
    }
    if allow {
        ("pass".to_string(), "default")
    } else {
        (
            rs.action(rs.system_blocked_action).name.to_string(),
            "tenant default",
        )
    }
}

/// A row as every console screen shows it.
pub(crate) fn row_json(list: &str, position: usize, r: &RuleRow, facts: &RowFacts) -> Value {
    let (hits, last_hit) = facts.hits(&r.rule_name);
    let (added, changed) = facts.dates(&r.rule_name);
    let (effective, source) = if r.action.is_empty() {
        (facts.fallback.0.as_str(), facts.fallback.1)
    } else {
        (r.action.as_str(), "rule")
    };
    json!({
        "name": r.rule_name, "pattern": r.pattern, "match_type": r.match_type,
        "match": r.match_type,
        "action": r.action, "priority": 0, "schedule": null, "enabled": r.enabled,
        "notes": r.notes, "hits": hits, "position": position,
        "effective_action": effective, "action_source": source,
        "added": added.map(|t| t.to_rfc3339()), "changed": changed.map(|t| t.to_rfc3339()),
        "last_hit": last_hit.map(|t| t.to_rfc3339()),
        "calls": calls_url(list, &r.rule_name),
    })
}

/// The call log filtered to the calls a rule decided.
pub(crate) fn calls_url(list: &str, rule: &str) -> String {
    format!("/api/v1/calls?list={}&rule={}", encode(list), encode(rule))
}

/// Percent-encodes everything but unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sort keys the entries endpoint accepts.
pub(crate) const SORTS: [&str; 9] = [
    "position", "name", "pattern", "action", "enabled", "added", "changed", "hits", "last_hit",
];

/// Orders `idx` (row positions) by `sort`, ascending or not; ties keep file order.
pub(crate) fn sort(view: &ListView, idx: &mut [usize], sort: &str, asc: bool, facts: &RowFacts) {
    let rows = &view.rows;
    match sort {
        "name" => idx.sort_by_cached_key(|&i| rows[i].rule_name.to_lowercase()),
        "pattern" => idx.sort_by(|&a, &b| rows[a].pattern.cmp(&rows[b].pattern)),
        "action" => {
            let eff = |i: usize| {
                if rows[i].action.is_empty() {
                    facts.fallback.0.as_str()
                } else {
                    rows[i].action.as_str()
                }
            };
            idx.sort_by(|&a, &b| eff(a).cmp(eff(b)))
        }
        "enabled" => idx.sort_by_key(|&i| rows[i].enabled),
        "added" => idx.sort_by_key(|&i| facts.dates(&rows[i].rule_name).0),
        "changed" => idx.sort_by_key(|&i| facts.dates(&rows[i].rule_name).1),
        "hits" => idx.sort_by_key(|&i| facts.hits(&rows[i].rule_name).0),
        "last_hit" => idx.sort_by_key(|&i| facts.hits(&rows[i].rule_name).1),
        _ => idx.sort(),
    }
    if !asc {
        idx.reverse();
    }
}

/// Calls per (trunk, deciding list, rule) over the last [`HIT_DAYS`] days,
/// from whichever log is configured; empty when the log cannot be read (the
/// screen then shows zeros, and the call log screen says why).
pub(crate) fn hit_counts(log: &std::path::Path, postgres: Option<&PgTarget>) -> HitCounts {
    let since = Utc::now() - Duration::days(HIT_DAYS);
    LogReader::open_either(log, postgres)
        .and_then(|r| r.hit_counts(since))
        .unwrap_or_default()
}
