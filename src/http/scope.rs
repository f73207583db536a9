//! Scoped tokens: a token of `http.tokens` with `tenant:` (and `user:`)
//! reads and changes only that scope's lists, through the list routes and
//! `GET /api/v1/me`, `GET /api/v1/me/lists`, and sees only that scope's
//! calls: `/api/v1/calls`, `/api/v1/calls/stats`, `/api/v1/me/calls`,
//! `/api/v1/report` and `/api/v1/overview` answer it for its scope
//! ([`call_scope`], [`narrow`]); every other route answers 403 to it.
//! Unscoped tokens stay system-wide administrators, and a request without a
//! token is judged as before (`http.protect_reads`).

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Api, ApiError, ApiResult, auth};
use crate::calllog::{LogQuery, stored_tenant};
use crate::config::types::{HttpConfig, TokenConfig};
use crate::policy::RuleSet;
use crate::policy::ruleset::ListInfo;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/lists", get(me_lists))
}

/// Routes a scoped token may use besides its lists: the console's page and
/// assets (no data), its own view, and the call views, which answer it with
/// its scope's calls only.
const SCOPED_OPEN: [&str; 10] = [
    "/",
    "/console/console.css",
    "/console/console.js",
    "/api/v1/me",
    "/api/v1/me/lists",
    "/api/v1/me/calls",
    "/api/v1/calls",
    "/api/v1/calls/stats",
    "/api/v1/report",
    "/api/v1/overview",
];

/// The calls a scoped token sees: its tenant's (stored name: the default
/// tenant is empty), and with `user:` only the calls for that user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallScope {
    /// The tenant as configured (`default`: the top level of the file).
    pub tenant: String,
    pub user: Option<String>,
}

/// The scope of the request's token: `None` for a request without a token
/// and for an unscoped (administrator's) token, which see every call.
pub(crate) fn call_scope(
    http: &HttpConfig,
    headers: &HeaderMap,
) -> Result<Option<CallScope>, ApiError> {
    if !headers.contains_key(header::AUTHORIZATION) || http.tokens.is_empty() {
        return Ok(None);
    }
    let t = auth::token(http, headers)?;
    if t.tenant.is_none() && t.user.is_none() {
        return Ok(None);
    }
    Ok(Some(CallScope {
        tenant: t.tenant.clone().unwrap_or_else(|| "default".into()),
        user: t.user.clone(),
    }))
}

/// Narrows the filters `q` to `scope`. A filter naming another tenant or
/// (for a user's token) another user is refused with 403 rather than
/// answered empty, so a client learns it asked outside its scope; the other
/// filters (trunk, rule, caller…) are intersected with the scope, so they
/// can only narrow it. A tenant's token may still filter by a user of its
/// tenant (`?user=101`).
pub(crate) fn narrow(scope: Option<&CallScope>, q: &mut LogQuery) -> Result<(), ApiError> {
    let Some(scope) = scope else {
        return Ok(());
    };
    let tenant = stored_tenant(&scope.tenant).to_string();
    let outside = |what: String| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{what} is outside this token's scope ({})",
                scope.describe()
            ),
        )
    };
    if let Some(asked) = &q.tenant
        && *asked != tenant
    {
        return Err(outside(format!("tenant {asked:?}")));
    }
    q.tenant = Some(tenant);
    if let Some(user) = &scope.user {
        if let Some(asked) = &q.user
            && asked != user
        {
            return Err(outside(format!("user {asked:?}")));
        }
        q.user = Some(user.clone());
    }
    Ok(())
}

impl CallScope {
    fn describe(&self) -> String {
        match &self.user {
            Some(u) => format!("user {u} of tenant {}", self.tenant),
            None => format!("tenant {}", self.tenant),
        }
    }
}

/// Whether list `l` is in the scope of token `t` (a token without `tenant:`
/// sees every list). `tenant: default` is the top level of the file.
pub(crate) fn in_scope(t: &TokenConfig, l: &ListInfo) -> bool {
    // The protected numbers and the system blacklist are above every tenant.
    crate::report::list_in_scope(t.tenant.as_deref(), t.user.as_deref(), l)
}

/// The guard's scope check: `Err` refuses the request.
pub(super) fn check(
    http: &HttpConfig,
    rs: &RuleSet,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if !headers.contains_key(header::AUTHORIZATION) || http.tokens.is_empty() {
        return Ok(());
    }
    let t = auth::token(http, headers)?;
    if t.tenant.is_none() && t.user.is_none() {
        return Ok(());
    }
    if SCOPED_OPEN.contains(&path) {
        return Ok(());
    }
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} is scoped to {}: this is outside its scope",
                t.name,
                describe(t)
            ),
        )
    };
    // `/api/v1/lists/{name}` and everything under it, for a list in scope.
    let name = path
        .strip_prefix("/api/v1/lists/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .filter(|n| !n.is_empty())
        .ok_or_else(forbidden)?;
    if rs.lists.iter().any(|l| l.name == name && in_scope(t, l)) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

fn describe(t: &TokenConfig) -> String {
    match (&t.tenant, &t.user) {
        (Some(tn), Some(u)) => format!("user {u} of tenant {tn}"),
        (Some(tn), None) => format!("tenant {tn}"),
        (None, Some(u)) => format!("user {u} of the default tenant"),
        (None, None) => "everything".into(),
    }
}

fn lists_json(t: &TokenConfig, rs: &RuleSet) -> Vec<serde_json::Value> {
    rs.lists
        .iter()
        .filter(|l| in_scope(t, l))
        .map(|l| {
            json!({
                "name": l.name, "kind": l.kind, "trunk": l.trunk, "tenant": l.tenant,
                "user": l.user, "rules": l.rules, "editable": l.path.is_some(),
            })
        })
        .collect()
}

/// `GET /api/v1/me`: who the token is and the lists it may read and change.
async fn me(AxState(api): AxState<Api>, headers: HeaderMap) -> ApiResult {
    let snap = api.state.snapshot();
    let t = auth::token(&snap.service.http, &headers)?;
    Ok(axum::Json(json!({
        "token": t.name,
        "tenant": t.tenant.as_deref().or(t.user.as_ref().map(|_| "default")),
        "user": t.user,
        "lists": lists_json(t, &snap.rules),
        "calls": "/api/v1/me/calls",
    }))
    .into_response())
}

/// `GET /api/v1/me/lists`: the lists of the token's scope.
async fn me_lists(AxState(api): AxState<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    let snap = api.state.snapshot();
    let t = auth::token(&snap.service.http, &headers)?;
    Ok(
        axum::Json(json!({ "version": snap.version, "lists": lists_json(t, &snap.rules) }))
            .into_response(),
    )
}
