//! The HTTP listener: `/metrics` for Prometheus and the admin API.

use std::sync::Arc;

use axum::Router;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::reload::{Reloader, Trigger};

pub(crate) mod admin_pool;
pub(crate) mod auth;
pub(crate) mod block;
pub(crate) mod calls;
pub(crate) mod console;
pub(crate) mod edge;
pub(crate) mod edit;
pub(crate) mod error;
mod guard;
pub(crate) mod listener;
pub(crate) mod lists;
pub(crate) mod overview;
pub(crate) mod report;
pub(crate) mod scope;
pub(crate) mod trunks;
pub(crate) mod velocity;
use crate::state::State;
pub(crate) use error::{ApiError, ApiResult};

#[derive(Clone)]
pub(crate) struct Api {
    pub state: Arc<State>,
    pub reloader: Arc<Reloader>,
    /// `listen.http` as configured: its host name is one of ours (`guard`).
    pub listen: Option<String>,
    /// The tester's and explainer's threads (`POST /api/v1/test`): one pool
    /// per listener, not a process-wide static, so each service (and each
    /// in-process test server) owns its own capacity.
    pub tester_pool: Arc<admin_pool::AdminPool>,
}

pub(crate) fn router(api: Api) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/reload", post(reload))
        .merge(lists::routes())
        .merge(calls::routes())
        .merge(trunks::routes())
        .merge(edit::routes())
        .merge(block::routes())
        .merge(overview::routes())
        .merge(report::routes())
        .merge(console::routes())
        .merge(velocity::routes())
        .merge(edge::routes())
        .merge(scope::routes())
        .layer(middleware::from_fn_with_state(api.clone(), guard::guard))
        .with_state(api)
}

/// A JSON error in the API's one shape, as a response (for handlers that
/// build their answer without `?`).
pub(crate) fn error(code: StatusCode, msg: impl Into<String>, details: Vec<String>) -> Response {
    ApiError::new(code, msg)
        .with_details(details)
        .into_response()
}

async fn metrics(AxState(api): AxState<Api>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        api.state.metrics.render(),
    )
        .into_response()
}

async fn status(AxState(api): AxState<Api>) -> Response {
    let snap = api.state.snapshot();
    let last_error = api.reloader.last_error();
    let velocity = &api.state.extras.velocity;
    axum::Json(json!({
        "version": snap.version,
        "loaded_at": snap.loaded_at.to_rfc3339(),
        "source": snap.source,
        "config": api.reloader.config_path.display().to_string(),
        "rules": snap.rules.rules.len(),
        "lists": snap.rules.lists,
        // Tenants kept at their last good version (or without their rules).
        "tenant_problems": snap.rules.tenant_problems,
        // Boot-time keys edited since start: applied only by a restart.
        "restart_required": snap.restart_required,
        "last_error": last_error.map(|e| json!({ "at": e.at.to_rfc3339(), "problems": e.problems })),
        "sources": api.reloader.status(),
        // The lists' store of record and the rules version this instance
        // runs (`log.postgres`); `backend: files` without it.
        "store": store_status(&api),
        "velocity": {
            "tracked": velocity.tracked(),
            "max_tracked": velocity.capacity(),
            "blocks": velocity.blocks(chrono::Utc::now()).len(),
            // Where calls are counted now: "redis" (shared by the fleet,
            // `velocity_limits.redis`) or "local" (this instance alone).
            "counters": velocity.counters(),
            "redis": velocity.shared().map(|s| s.status()),
        },
        "build": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

fn store_status(api: &Api) -> serde_json::Value {
    let Some(f) = &api.state.extras.fleet else {
        return json!({ "backend": "files" });
    };
    let mut v = f.status_json();
    v["applied_version"] = json!(f.applied_version());
    v["applied_at"] = json!(f.applied_at().map(|t| t.to_rfc3339()));
    v["lag"] = json!(f.store_version().saturating_sub(f.applied_version()));
    v
}

async fn reload(AxState(api): AxState<Api>) -> ApiResult {
    let version = api.reloader.reload(Trigger::ApiReload).await.map_err(|p| {
        ApiError::problems(
            StatusCode::UNPROCESSABLE_ENTITY,
            "configuration refused; the previous rules stay in force",
            &p,
        )
    })?;
    Ok(axum::Json(json!({ "version": version })).into_response())
}
