//! The temporary blocks velocity rules (and learning from challenges) put
//! in force: `GET /api/v1/velocity` lists them, `DELETE
//! /api/v1/velocity/{key}` lifts one before it expires — an operator's
//! answer to a legitimate caller caught by a burst, applied at once.

use axum::Router;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::json;

use super::{Api, ApiError, ApiResult, auth};

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/velocity", get(blocks))
        .route("/api/v1/velocity/{key}", delete(lift))
}

/// Caller, range or trunk, rule, since, until; newest first; expired ones
/// are gone.
async fn blocks(AxState(api): AxState<Api>) -> Response {
    let blocks = api.state.extras.velocity.blocks(chrono::Utc::now());
    axum::Json(blocks).into_response()
}

/// Lifts the block on `key` (`trunk|rule|subject`, as listed): the caller's
/// next call is decided and counted afresh. Needs a token like any change.
async fn lift(
    AxState(api): AxState<Api>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let author = auth::authorize(&api.state.snapshot().service.http, &headers)?;
    let tracker = api.state.extras.velocity.clone();
    let k = key.clone();
    let lifted = tokio::task::spawn_blocking(move || tracker.lift(&k))
        .await
        .map_err(|e| ApiError::internal(format!("lift task failed: {e}")))?
        .map_err(|e| {
            ApiError::internal(format!("the block was lifted but not from the store: {e}"))
        })?;
    let Some(block) = lifted else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("no temporary block in force on {key:?} (it may have expired)"),
        ));
    };
    tracing::info!(
        author = %author,
        trunk = %block.trunk,
        rule = %block.rule,
        subject = %block.subject,
        "api: velocity block lifted"
    );
    Ok(axum::Json(json!({ "lifted": block, "author": author })).into_response())
}
