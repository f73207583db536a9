//! The decision log over HTTP, for support tools and dashboards that cannot
//! run the CLI on the host:
//!
//! - `GET /api/v1/calls?since=&until=&verdict=&trunk=&rule=&caller=&tenant=&user=&limit=`:
//!   a JSON array of calls, newest first.
//! - `GET /api/v1/calls/stats?since=&until=&verdict=&trunk=&rule=&caller=&tenant=&user=`:
//!   totals and blocked calls per rule, list and trunk.
//! - `GET /api/v1/me/calls`: the calls of the token's scope (as `/api/v1/calls`).
//!
//! A token scoped to a tenant (or a user) gets only its scope's calls; a
//! `tenant` or `user` filter outside it is refused with 403 (see
//! [`super::scope::narrow`]). `tenant=default` is the top level of the file.
//!
//! `since`/`until` take the CLI's forms (`1h`, `2026-11-01`, RFC 3339). Each
//! request opens its own read-only connection on a blocking thread, so a slow
//! query neither stalls the runtime nor takes the service writer's lock.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::{Api, ApiError, error, scope};
use crate::calllog::{CallLogError, LogQuery, LogReader, parse_time_arg, stored_tenant};

/// Rows returned when `limit` is absent: a screenful, as in the CLI.
const DEFAULT_LIMIT: usize = 50;
/// The most rows one request may ask for, so a request cannot make the
/// service build an unbounded response.
const MAX_LIMIT: usize = 10_000;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/calls", get(list))
        .route("/api/v1/calls/stats", get(stats))
        .route("/api/v1/me/calls", get(list))
}

/// The query string as typed; everything is parsed here so that every
/// mistake gets the API's JSON error shape.
#[derive(Debug, Default, Deserialize)]
struct Params {
    since: Option<String>,
    until: Option<String>,
    verdict: Option<String>,
    trunk: Option<String>,
    rule: Option<String>,
    caller: Option<String>,
    tenant: Option<String>,
    user: Option<String>,
    limit: Option<String>,
}

async fn list(
    AxState(api): AxState<Api>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let q = match scoped_query(&api, &headers, params) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    run(&api, move |r| r.query(&q)).await
}

async fn stats(
    AxState(api): AxState<Api>,
    headers: HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let q = match scoped_query(&api, &headers, params) {
        Ok(q) => q,
        Err(refused) => return refused.into_response(),
    };
    run(&api, move |r| r.stats(&q)).await
}

/// The filters narrowed to the token's scope, or the answer refusing them
/// (400 malformed, 403 outside the scope).
fn scoped_query(
    api: &Api,
    headers: &HeaderMap,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<LogQuery, ApiError> {
    let mut q = to_query(params).map_err(ApiError::bad_request)?;
    let snap = api.state.snapshot();
    let scope = scope::call_scope(&snap.service.http, headers)?;
    scope::narrow(scope.as_ref(), &mut q)?;
    Ok(q)
}

/// The filters, or what is wrong with them (answered as 400).
fn to_query(params: Result<Query<Params>, QueryRejection>) -> Result<LogQuery, String> {
    let Query(p) = params.map_err(|e| format!("bad query string: {e}"))?;
    let now = Utc::now();
    let time = |name: &str, v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_time_arg(s, now).map_err(|e| format!("{name}: {e}")))
            .transpose()
    };
    if let Some(v) = &p.verdict
        && !["block", "allow", crate::call::unscreened::VERDICT].contains(&v.as_str())
    {
        return Err(format!(
            "verdict: {v:?} is none of block, allow, unscreened"
        ));
    }
    let limit = match p.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(format!(
                    "limit: {s:?} is not a number from 1 to {MAX_LIMIT}"
                ));
            }
        },
    };
    let text = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(LogQuery {
        since: time("since", &p.since)?,
        until: time("until", &p.until)?,
        verdict: text(p.verdict),
        trunk: text(p.trunk),
        rule: text(p.rule),
        caller: text(p.caller),
        tenant: text(p.tenant).map(|t| stored_tenant(&t).to_string()),
        user: text(p.user),
        limit,
    })
}

/// Opens the log read-only and runs `f` on a blocking thread.
async fn run<T, F>(api: &Api, f: F) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&LogReader) -> Result<T, CallLogError> + Send + 'static,
{
    let Some(path) = api.state.extras.log_path.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "this service keeps no call log",
            vec![],
        );
    };
    let postgres = api.state.extras.log_postgres.clone();
    let job =
        tokio::task::spawn_blocking(move || f(&LogReader::open_either(&path, postgres.as_ref())?));
    match job.await {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e @ (CallLogError::NotFound(_) | CallLogError::NoSchema(_)))) => {
            error(StatusCode::NOT_FOUND, e.to_string(), vec![])
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), vec![]),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("call log query failed: {e}"),
            vec![],
        ),
    }
}
