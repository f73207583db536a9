//! The reference's "daily reports of blocking activity": blocks by trunk,
//! rule, list and country, the top blocked callers, fail-open / fail-closed
//! counts, and the rule changes of the period from the list history, as a
//! [`Report`] rendered as text, HTML or JSON. `callguard report`,
//! `GET /api/v1/report` and the web console's Daily report page all answer
//! this one [`Report`].

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::calllog::{
    FIELD_WIDTH, LogQuery, LogReader, SUMMARY_WIDTH, StatCount, TenantCounts, parse_time_arg,
    terminal_cell,
};
use crate::policy::RuleSet;
use crate::policy::ruleset::ListInfo;
use crate::store::ListVersions;

/// Blocked calls read for the per-list, per-country and per-caller counts;
/// a larger period is counted on its newest calls and says so.
pub(crate) const MAX_BLOCKED_ROWS: usize = 200_000;
/// Callers shown in the top list.
pub(crate) const TOP_CALLERS: usize = 20;
/// History versions read for the rule changes of the period.
const MAX_CHANGES: usize = 10_000;
/// The history's author of a list's state found on disk (the list store records it before
/// a write, the reloader after an edit of the file).
const BASELINE_AUTHOR: &str = "file";

/// One rule change of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RuleChange {
    pub time: String,
    pub list: String,
    pub version: u64,
    pub author: String,
    pub summary: String,
}

/// Blocking activity over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    pub since: String,
    pub until: String,
    pub total: u64,
    pub blocked: u64,
    pub allowed: u64,
    pub fail_open: u64,
    pub fail_closed: u64,
    pub blocked_by_trunk: Vec<StatCount>,
    pub blocked_by_rule: Vec<StatCount>,
    /// By the deciding list's name (`spam`, `support.blacklist`), or its
    /// kind (`exclusive`, `default`) when no rule decided.
    pub blocked_by_list: Vec<StatCount>,
    /// ISO country of the caller's E.164 number; `unknown` for hidden or
    /// unparseable numbers.
    pub blocked_by_country: Vec<StatCount>,
    pub top_blocked_callers: Vec<StatCount>,
    /// True when the period had more than [`MAX_BLOCKED_ROWS`] blocked
    /// calls: the list, country and caller counts cover the newest ones.
    pub truncated: bool,
    pub rule_changes: Vec<RuleChange>,
    /// The tenant the report is for (`callguard report --tenant`, a tenant's
    /// token); absent: every tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user (extension) the report is for (a user's token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Per tenant (`default` for the top level): only in a report over every
    /// tenant of a log that has calls of a named tenant, so a configuration
    /// without `tenants:` gets the report it always had.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantCounts>,
}

/// Whose calls and rule changes a report covers.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReportScope {
    /// The tenant's name (`default`: the top level); `None`: every tenant.
    pub tenant: Option<String>,
    /// The user (extension) of that tenant.
    pub user: Option<String>,
    /// The lists whose changes are shown; `None`: every list.
    pub lists: Option<Vec<String>>,
}

/// Whether list `l` belongs to the scope of `tenant` (its name; `default`:
/// the top level) and `user`: a tenant's lists, or the user's own. The
/// protected numbers and the system blacklist are above every tenant, so in
/// no scope. `(None, None)`: every list. Scoped tokens and reports share it.
pub(crate) fn list_in_scope(tenant: Option<&str>, user: Option<&str>, l: &ListInfo) -> bool {
    let tenant = match (tenant, user) {
        (Some(tenant), _) => tenant,
        (None, Some(_)) => "default",
        (None, None) => return true,
    };
    let list_tenant = l.tenant.as_deref().unwrap_or("default");
    if matches!(l.kind, "protected" | "system_blacklist") || list_tenant != tenant {
        return false;
    }
    match user {
        None => true,
        Some(u) => l.user.as_deref() == Some(u),
    }
}

impl ReportScope {
    /// The scope of `tenant` and `user` with the names of its lists in `rs`.
    pub(crate) fn new(tenant: Option<&str>, user: Option<&str>, rs: &RuleSet) -> ReportScope {
        let scoped = tenant.is_some() || user.is_some();
        ReportScope {
            tenant: tenant
                .map(str::to_string)
                .or_else(|| user.map(|_| "default".into())),
            user: user.map(str::to_string),
            lists: scoped.then(|| {
                rs.lists
                    .iter()
                    .filter(|l| list_in_scope(tenant, user, l))
                    .map(|l| l.name.clone())
                    .collect()
            }),
        }
    }
}

/// Builds the report for `[since, until)` from the decision log and, when
/// given, the list history; an error is the database's, as text.
#[cfg(test)]
pub(crate) fn build(
    log: &LogReader,
    history: Option<&ListVersions>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Report, String> {
    build_scoped(log, history, since, until, &ReportScope::default())
}

/// [`build`] for one tenant's or one user's calls and lists.
pub(crate) fn build_scoped(
    log: &LogReader,
    history: Option<&ListVersions>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    scope: &ReportScope,
) -> Result<Report, String> {
    let q = LogQuery {
        since: Some(since),
        until: Some(until),
        tenant: scope
            .tenant
            .as_deref()
            .map(|t| crate::calllog::stored_tenant(t).to_string()),
        user: scope.user.clone(),
        ..LogQuery::default()
    };
    let stats = log.stats(&q).map_err(|e| e.to_string())?;
    let blocked = log
        .query(&LogQuery {
            verdict: Some("block".into()),
            limit: MAX_BLOCKED_ROWS,
            ..q.clone()
        })
        .map_err(|e| e.to_string())?;
    let mut by_country: HashMap<String, u64> = HashMap::new();
    let mut by_caller: HashMap<String, u64> = HashMap::new();
    for c in &blocked {
        *by_country
            .entry(country(c.caller_e164.as_deref()))
            .or_default() += 1;
        let caller = if c.anonymous {
            "anonymous".to_string()
        } else {
            c.caller_e164
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| c.caller_raw.clone())
        };
        *by_caller.entry(caller).or_default() += 1;
    }
    let tenants = if scope.tenant.is_none() && scope.user.is_none() {
        let mut t = log.tenant_counts(&q).map_err(|e| e.to_string())?;
        if t.iter().all(|t| t.tenant.is_empty()) {
            t.clear();
        }
        for t in &mut t {
            if t.tenant.is_empty() {
                t.tenant = "default".into();
            }
        }
        t
    } else {
        Vec::new()
    };
    let mut top = sorted(by_caller);
    top.truncate(TOP_CALLERS);
    let rule_changes = match history {
        Some(h) => h
            .versions(None, MAX_CHANGES)
            .map_err(|e| format!("list history: {e}"))?
            .into_iter()
            .filter(|v| v.time >= since && v.time < until)
            // A list's first version recorded from its file is the content as found when
            // its history began (every list gets one the first time any list is written),
            // not a change anybody made.
            .filter(|v| !(v.version == 1 && v.author == BASELINE_AUTHOR))
            .filter(|v| scope.lists.as_ref().is_none_or(|l| l.contains(&v.list)))
            .map(|v| RuleChange {
                time: v.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                list: v.list,
                version: v.version,
                author: v.author,
                summary: v.summary,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(Report {
        since: since.to_rfc3339_opts(SecondsFormat::Secs, true),
        until: until.to_rfc3339_opts(SecondsFormat::Secs, true),
        total: stats.total,
        blocked: stats.blocked,
        allowed: stats.allowed,
        fail_open: stats.fail_open,
        fail_closed: stats.fail_closed,
        blocked_by_trunk: stats.blocked_by_trunk,
        blocked_by_rule: stats.blocked_by_rule,
        // By name (`spam`, `support.blacklist`), else kind: the same counts and names as
        // `callguard log --stats` (one query, over the whole period).
        blocked_by_list: stats.blocked_by_list,
        blocked_by_country: sorted(by_country),
        top_blocked_callers: top,
        truncated: blocked.len() >= MAX_BLOCKED_ROWS,
        rule_changes,
        tenant: scope.tenant.clone(),
        user: scope.user.clone(),
        tenants,
    })
}

/// Most first, then by name, so the report reads the same every time.
fn sorted(m: HashMap<String, u64>) -> Vec<StatCount> {
    let mut v: Vec<StatCount> = m
        .into_iter()
        .map(|(key, calls)| StatCount { key, calls })
        .collect();
    v.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.key.cmp(&b.key)));
    v
}

/// The ISO country of an E.164 number (`GB` for `+44…`), or `unknown`.
pub(crate) fn country(e164: Option<&str>) -> String {
    e164.filter(|n| n.starts_with('+'))
        .and_then(|n| phonenumber::parse(None, n).ok())
        .and_then(|p| p.country().id())
        .map_or_else(|| "unknown".to_string(), |id| id.as_ref().to_string())
}

impl Report {
    /// Plain text for a terminal or a cron mail. Callers, rule names (which
    /// name callers: `Block-…`) and authors are untrusted: every field goes
    /// through [`terminal_cell`], so no control character reaches the
    /// terminal and no field is wider than [`FIELD_WIDTH`] (a summary
    /// [`SUMMARY_WIDTH`]). The JSON report keeps the exact values.
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "callguard report {} .. {}", self.since, self.until);
        if let Some(scope) = self.scope_line() {
            let _ = writeln!(s, "{}", terminal_cell(&scope, SUMMARY_WIDTH));
        }
        let _ = writeln!(
            s,
            "calls {}  blocked {}  allowed {}  failed open {}  failed closed {}",
            self.total, self.blocked, self.allowed, self.fail_open, self.fail_closed
        );
        if !self.tenants.is_empty() {
            let _ = writeln!(s, "\nby tenant");
            let names: Vec<String> = self
                .tenants
                .iter()
                .map(|t| terminal_cell(&t.tenant, FIELD_WIDTH))
                .collect();
            let w = names.iter().map(|k| k.chars().count()).max().unwrap_or(0);
            for (name, t) in names.iter().zip(&self.tenants) {
                let _ = writeln!(
                    s,
                    "  {name:<w$}  calls {:>7}  blocked {:>7}  allowed {:>7}  failed open {:>7}",
                    t.calls, t.blocked, t.allowed, t.fail_open
                );
            }
        }
        if self.truncated {
            let _ = writeln!(
                s,
                "(more than {MAX_BLOCKED_ROWS} blocked calls: list, country and caller counts cover the newest)"
            );
        }
        for (title, rows) in self.sections() {
            let _ = writeln!(s, "\n{title}");
            if rows.is_empty() {
                let _ = writeln!(s, "  none");
            }
            let keys: Vec<String> = rows
                .iter()
                .map(|r| terminal_cell(&r.key, FIELD_WIDTH))
                .collect();
            let w = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
            for (key, r) in keys.iter().zip(rows) {
                let _ = writeln!(s, "  {key:<w$}  {:>7}", r.calls);
            }
        }
        let _ = writeln!(s, "\nrule changes");
        if self.rule_changes.is_empty() {
            let _ = writeln!(s, "  none");
        }
        for c in &self.rule_changes {
            let _ = writeln!(
                s,
                "  {}  {} v{}  {}  {}",
                terminal_cell(&c.time, FIELD_WIDTH),
                terminal_cell(&c.list, FIELD_WIDTH),
                c.version,
                terminal_cell(&c.author, FIELD_WIDTH),
                terminal_cell(&c.summary, SUMMARY_WIDTH)
            );
        }
        s
    }

    /// `tenant acme`, `tenant acme, user 101`: whose report this is.
    fn scope_line(&self) -> Option<String> {
        match (&self.tenant, &self.user) {
            (None, None) => None,
            (Some(t), None) => Some(format!("tenant {t}")),
            (t, Some(u)) => Some(format!(
                "tenant {}, user {u}",
                t.as_deref().unwrap_or("default")
            )),
        }
    }

    fn sections(&self) -> [(&'static str, &[StatCount]); 5] {
        [
            ("blocked by trunk", &self.blocked_by_trunk),
            ("blocked by rule", &self.blocked_by_rule),
            ("blocked by list", &self.blocked_by_list),
            ("blocked by country", &self.blocked_by_country),
            ("top blocked callers", &self.top_blocked_callers),
        ]
    }

    /// A standalone printable HTML page (no external resources).
    pub(crate) fn to_html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>callguard report</title>\
             <style>body{{font-family:system-ui,sans-serif;margin:2em;color:#1b1f24}}table{{border-collapse:collapse;margin:0 0 1.5em}}\
             th,td{{border:1px solid #999;padding:.25em .6em;text-align:left}}td.n{{text-align:right}}</style></head><body>\n\
             <h1>callguard report</h1>\n<p>{} .. {}</p>\n<table><tr><th>calls</th><th>blocked</th><th>allowed</th>\
             <th>failed open</th><th>failed closed</th></tr><tr><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
             <td class=n>{}</td><td class=n>{}</td></tr></table>\n",
            esc(&self.since),
            esc(&self.until),
            self.total,
            self.blocked,
            self.allowed,
            self.fail_open,
            self.fail_closed
        );
        if let Some(scope) = self.scope_line() {
            let _ = writeln!(s, "<p>{}</p>", esc(&scope));
        }
        if !self.tenants.is_empty() {
            s.push_str("<h2>by tenant</h2>\n<table><tr><th>tenant</th><th>calls</th><th>blocked</th><th>allowed</th><th>failed open</th></tr>");
            for t in &self.tenants {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                    esc(&t.tenant),
                    t.calls,
                    t.blocked,
                    t.allowed,
                    t.fail_open
                );
            }
            s.push_str("</table>\n");
        }
        for (title, rows) in self.sections() {
            let _ = write!(s, "<h2>{title}</h2>\n<table>");
            if rows.is_empty() {
                s.push_str("<tr><td>none</td></tr>");
            }
            for r in rows {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td class=n>{}</td></tr>",
                    esc(&r.key),
                    r.calls
                );
            }
            s.push_str("</table>\n");
        }
        s.push_str("<h2>rule changes</h2>\n<table><tr><th>time</th><th>list</th><th>version</th><th>author</th><th>changes</th></tr>");
        for c in &self.rule_changes {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.time),
                esc(&c.list),
                c.version,
                esc(&c.author),
                esc(&c.summary)
            );
        }
        s.push_str("</table>\n</body></html>\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The period's bounds from the `since` / `until` arguments.
pub(crate) fn period(
    since: &str,
    until: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let since = parse_time_arg(since, now).map_err(|e| format!("since: {e}"))?;
    let until = match until.filter(|u| !u.trim().is_empty()) {
        Some(u) => parse_time_arg(u, now).map_err(|e| format!("until: {e}"))?,
        None => now,
    };
    if since >= until {
        return Err("the period is empty: since must be before until".into());
    }
    Ok((since, until))
}

#[cfg(test)]
mod tests;
