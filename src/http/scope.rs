//! Scoped tokens: a token of `http.tokens` with `tenant:` (and `user:`)
//! reads and changes only that scope's lists, through the list routes and
//! `GET /api/v1/me`, `GET /api/v1/me/lists`; every other route answers 403
//! to it. Unscoped tokens stay system-wide administrators, and a request
//! without a token is judged as before (`http.protect_reads`).

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{Api, ApiError, ApiResult, auth};
use crate::config::types::{HttpConfig, TokenConfig};
use crate::policy::RuleSet;
use crate::policy::ruleset::ListInfo;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/lists", get(me_lists))
}

/// Routes a scoped token may use besides its lists: the console's page and
/// assets (no data) and its own view.
const SCOPED_OPEN: [&str; 5] = [
    "/",
    "/console/console.css",
    "/console/console.js",
    "/api/v1/me",
    "/api/v1/me/lists",
];

/// Whether list `l` is in the scope of token `t` (a token without `tenant:`
/// sees every list). `tenant: default` is the top level of the file.
pub(crate) fn in_scope(t: &TokenConfig, l: &ListInfo) -> bool {
    let tenant = match (t.tenant.as_deref(), t.user.as_deref()) {
        (Some(tenant), _) => tenant,
        (None, Some(_)) => "default",
        (None, None) => return true,
    };
    let list_tenant = l.tenant.as_deref().unwrap_or("default");
    // The protected numbers and the system blacklist are above every tenant.
    if matches!(l.kind, "protected" | "system_blacklist") || list_tenant != tenant {
        return false;
    }
    match t.user.as_deref() {
        None => true,
        Some(u) => l.user.as_deref() == Some(u),
    }
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
