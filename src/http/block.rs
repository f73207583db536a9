//! `POST /api/v1/calls/{unique_id}/block` with `{"list": …, "name"?, "action"?}`:
//! "block this caller" from the call log, the `callguard block --from-call`
//! path (the same function), authored by the API token's name and applied at
//! once like every other list change.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::json;

use super::lists::{applied, authorized_body};
use super::{Api, ApiError, ApiResult};
use crate::list_edit::block::{BlockError, BlockRequest, Blocked, block_from_call};

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/calls/{id}/block", post(block))
}

async fn block(
    AxState(api): AxState<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    let mut req: BlockRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"list\": …, \"name\"?, \"action\"?}}: {e}"
        ))
    })?;
    req.from_call = id;
    let config = api.reloader.config_path.clone();
    let store = super::lists::store(&api);
    let who = author.clone();
    let r = req.clone();
    let job = tokio::task::spawn_blocking(move || block_from_call(&config, &r, &who, Some(store)));
    let blocked = job
        .await
        .map_err(|e| ApiError::internal(format!("block task failed: {e}")))??;
    let message = blocked.message();
    let (done, rule) = match blocked {
        Blocked::AlreadyMatched { .. } => {
            return Ok(axum::Json(json!({ "added": false, "message": message })).into_response());
        }
        Blocked::Added { applied, rule, .. } => (applied, rule),
    };
    let mut v = applied(
        &api,
        Ok(done),
        &format!("api: {author} blocked the caller of call {}", req.from_call),
    )
    .await?;
    v["added"] = json!(true);
    v["message"] = json!(message);
    v["rule_name"] = json!(rule.rule_name);
    Ok(axum::Json(v).into_response())
}

/// A caller that cannot be blocked: no such call 404, an anonymous caller
/// 422, a store refusal its own status, anything else 500.
impl From<BlockError> for ApiError {
    fn from(e: BlockError) -> Self {
        match e {
            BlockError::Store(e) => e.into(),
            e @ BlockError::NoSuchCall { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            e @ BlockError::Anonymous(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            e => ApiError::internal(e.to_string()),
        }
    }
}
