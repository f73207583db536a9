//! `GET /api/v1/report?since=24h&until=&format=json|html|text`: the daily
//! report of `callguard report`, for the console's Daily report page and for
//! tools that cannot run the CLI on the host. It names callers, so it is a
//! read that `http.protect_reads` guards. A token scoped to a tenant or a
//! user gets the report of its scope: its calls and its lists' changes.

use axum::Router;
use axum::extract::{Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::{Api, ApiError, ApiResult, scope};
use crate::calllog::LogReader;
use crate::report::{ReportScope, build_scoped, period};

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/report", get(report))
}

#[derive(Deserialize)]
struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
}

async fn report(
    AxState(api): AxState<Api>,
    headers: HeaderMap,
    Query(q): Query<ReportQuery>,
) -> ApiResult {
    let snap = api.state.snapshot();
    let scope = match scope::call_scope(&snap.service.http, &headers)? {
        Some(s) => ReportScope::new(Some(&s.tenant), s.user.as_deref(), &snap.rules),
        None => ReportScope::default(),
    };
    let format = q.format.unwrap_or_else(|| "json".into());
    if !matches!(format.as_str(), "json" | "html" | "text") {
        return Err(ApiError::bad_request(format!(
            "format {format:?}: use json, html or text"
        )));
    }
    let (since, until) = period(
        q.since.as_deref().unwrap_or("24h"),
        q.until.as_deref(),
        Utc::now(),
    )
    .map_err(ApiError::bad_request)?;
    let Some(path) = api.state.extras.log_path.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this service keeps no call log",
        ));
    };
    let history = api.state.extras.history.clone();
    let postgres = api.state.extras.log_postgres.clone();
    let job = tokio::task::spawn_blocking(move || {
        let log = LogReader::open_either(&path, postgres.as_ref()).map_err(|e| e.to_string())?;
        build_scoped(&log, history.as_deref(), since, until, &scope)
    });
    let r = job
        .await
        .map_err(|e| ApiError::internal(format!("report failed: {e}")))?
        .map_err(ApiError::internal)?;
    Ok(match format.as_str() {
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            r.to_html(),
        )
            .into_response(),
        "text" => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            r.to_text(),
        )
            .into_response(),
        _ => axum::Json(r).into_response(),
    })
}
