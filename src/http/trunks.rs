//! `GET /api/v1/trunks?at=`: every trunk with its real mode (what the policy
//! honours, in words: "VIP-only outside office-hours — in force now"), and
//! its lists in the order a call meets them: inline lists with every rule,
//! list files with their count and first page (the rest is paged by
//! `GET /api/v1/lists/{name}/entries`); each rule with its match or
//! condition, the action a call would really get and where it comes from,
//! and hit count; plus the protected numbers and the system blacklist that
//! come before any trunk's lists. The web console's Trunks screen is this
//! answer.
//!
//! Rules are read from the configuration and list files as they are on disk
//! (what the next call will use once the watcher has reloaded), cached while
//! no file changes. When the files on disk do not load, the answer is the
//! last configuration that did, marked `"read_only": true` with the
//! `problems`. The mode's "in force now" comes from the rules installed, at
//! `at` (RFC 3339; now by default). Hit counts are calls decided by the rule
//! in the last [`HIT_DAYS`] days of the decision log, so they survive a
//! restart.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State as AxState};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::lists::ondisk::load_cached;
use super::lists::view::{HIT_DAYS, RowFacts, fallback_action, hit_counts};
use super::{Api, ApiError, ApiResult};
use crate::config::types::ListRole;
use crate::config::{self, LoadedConfig};
use crate::policy::RuleSet;
use crate::policy::ruleset::{Exclusive, TrunkId};
use crate::store::HitCounts;

mod rows;
use rows::{file_list, inline_list, list_hits, sched};

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/trunks", get(trunks))
}

#[derive(Deserialize)]
struct TrunksQuery {
    at: Option<DateTime<Utc>>,
}

/// The trunk's mode as the policy applies it: `mode` (`additive`,
/// `exclusive`, `exclusive_scheduled`), `mode_text` and `exclusive_now`.
fn mode(rs: &RuleSet, id: TrunkId, at: DateTime<Utc>) -> (&'static str, String, bool) {
    let now = rs.exclusive_active(id, at);
    match rs.trunk(id).exclusive {
        Exclusive::Never => ("additive", "additive".to_string(), now),
        Exclusive::Always => ("exclusive", "VIP-only (exclusive)".to_string(), now),
        Exclusive::When(c) => {
            let when = if c.inside { "during" } else { "outside" };
            let force = if now {
                "in force now"
            } else {
                "not in force now"
            };
            (
                "exclusive_scheduled",
                format!("VIP-only {when} {} — {force}", rs.schedule_name(c)),
                now,
            )
        }
    }
}

async fn trunks(AxState(api): AxState<Api>, Query(q): Query<TrunksQuery>) -> ApiResult {
    let config_path = api.reloader.config_path.clone();
    let log_path = api.state.extras.log_path.clone();
    let postgres = api.state.extras.log_postgres.clone();
    let history = api.state.extras.history.clone();
    let snap = api.state.snapshot();
    let now = q.at.unwrap_or_else(Utc::now);
    let job = tokio::task::spawn_blocking(move || {
        let (cfg, problems) = load_cached(&config_path);
        let hits = log_path
            .as_deref()
            .map(|p| hit_counts(p, postgres.as_ref()))
            .unwrap_or_default();
        let answer = cfg.map(|cfg| answer(&cfg, &snap.rules, &hits, history.as_ref(), now));
        (answer, problems)
    });
    let (answer, problems) = job
        .await
        .map_err(|e| ApiError::internal(format!("reading the configuration failed: {e}")))?;
    let snap = api.state.snapshot();
    let rs = &snap.rules;
    let mut v = answer.unwrap_or_else(|| {
        // Nothing on disk ever loaded in this process: the trunks in force.
        let trunks: Vec<Value> = (0..rs.trunks.len())
            .map(|id| {
                let (mode, text, on) = mode(rs, id, now);
                json!({ "name": &*rs.trunk(id).name, "mode": mode, "mode_text": text,
                        "exclusive_now": on, "in_force": true, "lists": [] })
            })
            .collect();
        json!({ "trunks": trunks, "system": [], "protected": null })
    });
    v["version"] = json!(snap.version);
    v["at"] = json!(now.to_rfc3339());
    v["hit_days"] = json!(HIT_DAYS);
    v["read_only"] = json!(problems.is_some());
    v["problems"] = json!(
        problems
            .map(|p| p.0.iter().map(ToString::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
    );
    Ok(axum::Json(v).into_response())
}

fn answer(
    cfg: &LoadedConfig,
    rs: &RuleSet,
    hits: &HitCounts,
    history: Option<&Arc<crate::store::ListVersions>>,
    now: DateTime<Utc>,
) -> Value {
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
    let facts = |l: &config::LoadedList, kind: &str| -> RowFacts {
        let dates = history
            .map(|h| {
                super::lists::dates::dates(h, &l.name, l.rows.len(), l.rows.iter().map(|(_, r)| r))
            })
            .unwrap_or_default();
        RowFacts {
            hits: list_hits(hits, &l.name),
            dates: (*dates).clone(),
            fallback: fallback_action(
                rs,
                kind,
                l.trunk.as_deref(),
                l.default_action.as_ref().map(|a| a.value.as_str()),
            ),
        }
    };
    let protected: Vec<Value> = raw
        .protected
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "name": p.value, "pattern": p.value, "match_type": "exact", "match": "exact",
                "action": "", "effective_action": "pass", "action_source": "protected",
                "priority": 0, "schedule": null, "enabled": true, "position": i,
                "notes": "protected: never blocked", "hits": any("protected", &p.value),
                "added": null, "changed": null, "last_hit": null,
            })
        })
        .collect();
    let system_action = rs.action(rs.system_blocked_action).name.to_string();
    let mut system = vec![inline_list(
        "system_blacklist",
        "system_blacklist",
        &raw.blacklist,
        |r| any("system_blacklist", r),
        (&system_action, "tenant default"),
    )];
    for l in cfg
        .lists
        .iter()
        .filter(|l| l.trunk.is_none() && l.tenant.is_none() && l.user.is_none())
    {
        system.push(file_list(
            l,
            "system_blacklist",
            &facts(l, "system_blacklist"),
        ));
    }
    let trunks: Vec<Value> = raw
        .trunks
        .iter()
        .map(|(name, t)| {
            let t = &t.value;
            let id = rs.trunk_by_name(name);
            let (mode_name, text, on) = match id {
                Some(id) => {
                    let (m, t, on) = mode(rs, id, now);
                    (m, t, Some(on))
                }
                None => ("additive", "not in force".to_string(), None),
            };
            let allowed = fallback_action(rs, "whitelist", Some(name), None);
            let blocked = fallback_action(rs, "blacklist", Some(name), None);
            let wl = format!("{name}.whitelist");
            let bl = format!("{name}.blacklist");
            let mut lists = vec![inline_list(
                &wl,
                "whitelist",
                &t.whitelist,
                |r| h(name, &wl, r),
                (&allowed.0, allowed.1),
            )];
            let files = |role: ListRole| {
                cfg.lists
                    .iter()
                    .filter(move |l| l.trunk.as_deref() == Some(name.as_str()) && l.role == role)
            };
            for l in files(ListRole::Whitelist) {
                lists.push(file_list(l, "whitelist", &facts(l, "whitelist")));
            }
            lists.push(inline_list(
                &bl,
                "blacklist",
                &t.blacklist,
                |r| h(name, &bl, r),
                (&blocked.0, blocked.1),
            ));
            for l in files(ListRole::Blacklist) {
                lists.push(file_list(l, "blacklist", &facts(l, "blacklist")));
            }
            json!({
                "name": name,
                "dids": t.dids,
                "mode": mode_name,
                "mode_text": text,
                "exclusive_schedule": t.exclusive.as_ref().map(sched),
                "exclusive_now": on,
                "in_force": id.is_some(),
                "blocked_action": t.blocked_action.as_ref().map(|a| &a.value),
                "allowed_action": t.allowed_action.as_ref().map(|a| &a.value),
                "effective_blocked_action": blocked.0,
                "effective_allowed_action": allowed.0,
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
    json!({
        "default_trunk": raw.default_trunk.as_ref().map(|t| &t.value),
        "actions": actions,
        "schedules": raw.schedules.keys().collect::<Vec<_>>(),
        "protected": { "name": "protected", "kind": "protected", "editable": false,
                       "count": protected.len(), "rules": protected },
        "system": system,
        "trunks": trunks,
    })
}
