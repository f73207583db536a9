//! The rows of `/api/v1/trunks`: inline lists (read-only, every rule) and
//! list files (their count and first page only, the rest through
//! `GET /api/v1/lists/{name}/entries`), each rule in the entries' row shape.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::LoadedList;
use crate::config::types::{MatchType, RuleConfig, ScheduleRef};
use crate::http::lists::view::{self, PAGE, RowFacts};

pub(super) fn sched(s: &ScheduleRef) -> Value {
    match (&s.inside, &s.outside) {
        (Some(n), _) => json!({ "schedule": n, "while": "inside" }),
        (None, Some(n)) => json!({ "schedule": n, "while": "outside" }),
        (None, None) => Value::Null,
    }
}

/// A rule's conditions beside its pattern, in words ("attestation failed",
/// "reputation score above 80"…), if it has any.
fn condition(r: &RuleConfig) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(a) = &r.attestation {
        parts.push(format!("attestation {}", a.value.join(" or ")));
    }
    if let Some(s) = &r.reputation {
        match (s.value.above, s.value.below) {
            (Some(a), Some(b)) => parts.push(format!("reputation score above {a} and below {b}")),
            (Some(a), None) => parts.push(format!("reputation score above {a}")),
            (None, Some(b)) => parts.push(format!("reputation score below {b}")),
            (None, None) => {}
        }
    }
    if let Some(c) = &r.category {
        parts.push(format!("category {}", c.value.join(" or ")));
    }
    if let Some(n) = &r.caller_name {
        parts.push(format!("caller name {}", n.value.pattern));
    }
    (!parts.is_empty()).then(|| parts.join(" and "))
}

/// A list written in the configuration itself: read-only through the API.
/// `fallback` is the action of its rules without one, and its source.
pub(super) fn inline_list(
    name: &str,
    kind: &str,
    rules: &[serde_saphyr::Spanned<RuleConfig>],
    hits: impl Fn(&str) -> u64,
    fallback: (&str, &str),
) -> Value {
    let rules: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let r = &r.value;
            let cond = condition(r);
            let (pattern, mt) = match &r.pattern {
                Some(p) => (p.value.clone(), r.match_type.map_or("", MatchType::as_str)),
                None if r.anonymous => ("Anonymous".to_string(), "anonymous"),
                // Only conditions: what it matches is its condition.
                None if r.attestation.is_some() => (String::new(), "attestation"),
                None => (String::new(), "condition"),
            };
            let action = r.action.as_ref().map(|a| a.value.as_str()).unwrap_or("");
            let (effective, source) = if action.is_empty() {
                fallback
            } else {
                (action, "rule")
            };
            json!({
                "name": r.name.value, "pattern": pattern, "match_type": mt, "match": mt,
                "condition": cond,
                "action": action, "effective_action": effective, "action_source": source,
                "priority": r.priority, "schedule": r.schedule.as_ref().map(sched),
                "enabled": r.enabled, "notes": r.notes.as_deref().unwrap_or(""),
                "hits": hits(&r.name.value), "position": i,
                "added": null, "changed": null, "last_hit": null,
                "calls": view::calls_url(name, &r.name.value),
            })
        })
        .collect();
    let count = rules.len();
    json!({
        "name": name, "kind": kind, "editable": false, "path": null, "default_action": null,
        "count": count, "rules": rules,
    })
}

/// A list file: its count and first page (every change the API accepts
/// goes to the file).
pub(super) fn file_list(l: &LoadedList, kind: &str, facts: &RowFacts) -> Value {
    let rows: Vec<Value> = l
        .rows
        .iter()
        .take(PAGE)
        .enumerate()
        .map(|(i, (_, r))| view::row_json(&l.name, i, r, facts))
        .collect();
    json!({
        "name": l.name, "kind": kind, "editable": true, "path": l.display,
        "format": l.format.name(),
        "default_action": l.default_action.as_ref().map(|a| &a.value),
        "count": l.rows.len(),
        "entries_url": format!("/api/v1/lists/{}/entries", view::encode(&l.name)),
        // The first page; `rules` is the same page under its older name.
        "entries": rows,
        "rules": rows,
    })
}

/// The hits of list `list`'s rules over all trunks.
pub(super) fn list_hits(
    hits: &crate::store::HitCounts,
    list: &str,
) -> HashMap<String, (u64, Option<chrono::DateTime<chrono::Utc>>)> {
    let mut out: HashMap<String, (u64, Option<_>)> = HashMap::new();
    for ((_, l, r), n) in hits {
        if l == list {
            out.entry(r.clone()).or_default().0 += n;
        }
    }
    out
}
