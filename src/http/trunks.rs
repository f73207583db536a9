//! `GET /api/v1/trunks`: every trunk with its mode (and whether exclusive
//! mode is in force now), and its lists in the order a call meets them, each
//! rule with priority, match type, pattern, action, schedule, enabled, notes
//! and hit count; plus the protected numbers and the system blacklist that
//! come before any trunk's lists. The web console's Trunks screen is this
//! answer.
//!
//! Rules are read from the configuration and list files as they are on disk
//! (what the next call will use once the watcher has reloaded; a refused
//! reload shows in `/api/v1/status`); the mode's "in force now" comes from
//! the rules installed. Hit counts are calls decided by the rule in the last
//! [`HIT_DAYS`] days of the decision log, so they survive a restart.

use std::path::Path;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Duration, Utc};
use serde_json::{Value, json};

use super::{Api, ApiError, ApiResult};
use crate::calllog::{LogReader, PgTarget};
use crate::config::types::{ListRole, MatchType, RuleConfig, ScheduleRef, WhitelistMode};
use crate::config::{self, LoadedList};
use crate::store::HitCounts;

/// The period hit counts cover.
pub(crate) const HIT_DAYS: i64 = 30;

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/trunks", get(trunks))
}

async fn trunks(AxState(api): AxState<Api>) -> ApiResult {
    let config_path = api.reloader.config_path.clone();
    let log_path = api.state.extras.log_path.clone();
    let postgres = api.state.extras.log_postgres.clone();
    let snap = api.state.snapshot();
    let job = tokio::task::spawn_blocking(move || {
        let cfg = config::load(&config_path);
        let hits = log_path
            .as_deref()
            .map(|p| hit_counts(p, postgres.as_ref()))
            .unwrap_or_default();
        (cfg, hits)
    });
    let (cfg, hits) = job
        .await
        .map_err(|e| ApiError::internal(format!("reading the configuration failed: {e}")))?;
    let cfg = cfg.map_err(|p| {
        ApiError::problems(
            StatusCode::CONFLICT,
            "the configuration on disk does not load; the rules in force stay as they were",
            &p,
        )
    })?;
    let now = Utc::now();
    let rs = &snap.rules;
    let h = |trunk: &str, list: &str, rule: &str| -> u64 {
        hits.get(&(trunk.to_string(), list.to_string(), rule.to_string()))
            .copied()
            .unwrap_or(0)
    };
    let raw = &cfg.raw;
    // Protected numbers and the system blacklist apply to every trunk: their
    // hits are the sum over trunks.
    let any = |list: &str, rule: &str| -> u64 {
        hits.iter()
            .filter(|((_, l, r), _)| l == list && r == rule)
            .map(|(_, n)| *n)
            .sum()
    };
    let protected: Vec<Value> = raw
        .protected
        .iter()
        .map(|p| {
            json!({
                "name": p.value, "pattern": p.value, "match_type": "exact", "action": "",
                "priority": 0, "schedule": null, "enabled": true,
                "notes": "protected: never blocked", "hits": any("protected", &p.value),
            })
        })
        .collect();
    let mut system = vec![inline_list(
        "system_blacklist",
        "system_blacklist",
        &raw.blacklist,
        |r| any("system_blacklist", r),
    )];
    for l in cfg
        .lists
        .iter()
        .filter(|l| l.trunk.is_none() && l.tenant.is_none() && l.user.is_none())
    {
        system.push(file_list(l, "system_blacklist", |r| any(&l.name, r)));
    }
    let trunks: Vec<Value> = raw
        .trunks
        .iter()
        .map(|(name, t)| {
            let t = &t.value;
            let id = rs.trunk_by_name(name);
            let (mode, schedule) = match (t.whitelist_mode, &t.exclusive) {
                (WhitelistMode::Additive, _) => ("additive", None),
                (WhitelistMode::Exclusive, None) => ("exclusive", None),
                (WhitelistMode::Exclusive, Some(s)) => ("exclusive_scheduled", Some(sched(s))),
            };
            let wl = format!("{name}.whitelist");
            let bl = format!("{name}.blacklist");
            let mut lists = vec![inline_list(&wl, "whitelist", &t.whitelist, |r| {
                h(name, &wl, r)
            })];
            let files = |role: ListRole| {
                cfg.lists
                    .iter()
                    .filter(move |l| l.trunk.as_deref() == Some(name.as_str()) && l.role == role)
            };
            for l in files(ListRole::Whitelist) {
                lists.push(file_list(l, "whitelist", |r| h(name, &l.name, r)));
            }
            lists.push(inline_list(&bl, "blacklist", &t.blacklist, |r| {
                h(name, &bl, r)
            }));
            for l in files(ListRole::Blacklist) {
                lists.push(file_list(l, "blacklist", |r| h(name, &l.name, r)));
            }
            json!({
                "name": name,
                "dids": t.dids,
                "mode": mode,
                "exclusive_schedule": schedule,
                "exclusive_now": id.map(|i| rs.exclusive_active(i, now)),
                "in_force": id.is_some(),
                "blocked_action": t.blocked_action.as_ref().map(|a| &a.value),
                "allowed_action": t.allowed_action.as_ref().map(|a| &a.value),
                "lists": lists,
            })
        })
        .collect();
    let actions: Vec<&str> = crate::policy::RuleSet::BUILTIN_ACTIONS
        .iter()
        .copied()
        .chain(raw.actions.keys().map(String::as_str))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(axum::Json(json!({
        "version": snap.version,
        "at": now.to_rfc3339(),
        "hit_days": HIT_DAYS,
        "default_trunk": raw.default_trunk.as_ref().map(|t| &t.value),
        "actions": actions,
        "schedules": raw.schedules.keys().collect::<Vec<_>>(),
        "protected": { "name": "protected", "kind": "protected", "editable": false, "rules": protected },
        "system": system,
        "trunks": trunks,
    }))
    .into_response())
}

fn sched(s: &ScheduleRef) -> Value {
    match (&s.inside, &s.outside) {
        (Some(n), _) => json!({ "schedule": n, "while": "inside" }),
        (None, Some(n)) => json!({ "schedule": n, "while": "outside" }),
        (None, None) => Value::Null,
    }
}

/// A list written in the configuration itself: read-only through the API.
fn inline_list(
    name: &str,
    kind: &str,
    rules: &[serde_saphyr::Spanned<RuleConfig>],
    hits: impl Fn(&str) -> u64,
) -> Value {
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let r = &r.value;
            let (pattern, mt) = match &r.pattern {
                Some(p) => (p.value.clone(), r.match_type.map(MatchType::as_str)),
                None => ("Anonymous".to_string(), Some("anonymous")),
            };
            json!({
                "name": r.name.value, "pattern": pattern, "match_type": mt.unwrap_or(""),
                "action": r.action.as_ref().map(|a| a.value.as_str()).unwrap_or(""),
                "priority": r.priority, "schedule": r.schedule.as_ref().map(sched),
                "enabled": r.enabled, "notes": r.notes.as_deref().unwrap_or(""),
                "hits": hits(&r.name.value),
            })
        })
        .collect();
    json!({ "name": name, "kind": kind, "editable": false, "path": null, "default_action": null, "rules": rules })
}

/// A list file: every change the API accepts goes here.
fn file_list(l: &LoadedList, kind: &str, hits: impl Fn(&str) -> u64) -> Value {
    let rules: Vec<Value> = l
        .rows
        .iter()
        .map(|(_, r)| {
            json!({
                "name": r.rule_name, "pattern": r.pattern, "match_type": r.match_type,
                "action": r.action, "priority": 0, "schedule": null, "enabled": r.enabled,
                "notes": r.notes, "hits": hits(&r.rule_name),
            })
        })
        .collect();
    json!({
        "name": l.name, "kind": kind, "editable": true, "path": l.display,
        "format": l.format.name(),
        "default_action": l.default_action.as_ref().map(|a| &a.value),
        "rules": rules,
    })
}

/// Calls per (trunk, deciding list, rule) over the last [`HIT_DAYS`] days,
/// from whichever log is configured; empty when the log cannot be read (the
/// screen then shows zeros, and the call log screen says why).
fn hit_counts(log: &Path, postgres: Option<&PgTarget>) -> HitCounts {
    let since = Utc::now() - Duration::days(HIT_DAYS);
    LogReader::open_either(log, postgres)
        .and_then(|r| r.hit_counts(since))
        .unwrap_or_default()
}
