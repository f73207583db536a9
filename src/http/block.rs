//! `POST /api/v1/calls/{unique_id}/block` with `{"list": …, "name"?, "action"?}`:
//! "block this caller" from the call log, the `callguard block --from-call`
//! path (the same function), authored by the API token's name and applied at
//! once like every other list change.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::lists::{authorized_body, finish, store_error};
use super::{Api, error};
use crate::cli::block::{BlockError, BlockRequest, Blocked, block_from_call};

pub fn routes() -> Router<Api> {
    Router::new().route("/api/v1/calls/{id}/block", post(block))
}

async fn block(
    AxState(api): AxState<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (author, bytes) = match authorized_body(&api, &headers, body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut req: BlockRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"list\": …, \"name\"?, \"action\"?}}: {e}"),
                vec![],
            );
        }
    };
    req.from_call = id;
    let config = api.reloader.config_path.clone();
    let history = api.state.extras.history.clone();
    let who = author.clone();
    let r = req.clone();
    let job = tokio::task::spawn_blocking(move || block_from_call(&config, &r, &who, history));
    let outcome = match job.await {
        Ok(o) => o,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("block task failed: {e}"),
                vec![],
            );
        }
    };
    match outcome {
        Ok(b) => {
            let message = b.message();
            let (applied, rule) = match b {
                Blocked::AlreadyMatched { .. } => {
                    return axum::Json(json!({ "added": false, "message": message }))
                        .into_response();
                }
                Blocked::Added { applied, rule, .. } => (applied, rule),
            };
            let answer = finish(
                &api,
                Ok(applied),
                &format!("api: {author} blocked the caller of call {}", req.from_call),
            )
            .await;
            if !answer.status().is_success() {
                return answer;
            }
            let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            v["added"] = json!(true);
            v["message"] = json!(message);
            v["rule_name"] = json!(rule.rule_name);
            axum::Json(v).into_response()
        }
        Err(BlockError::Store(e)) => store_error(e),
        Err(e @ BlockError::NoSuchCall { .. }) => {
            error(StatusCode::NOT_FOUND, e.to_string(), vec![])
        }
        Err(e @ BlockError::Anonymous(_)) => {
            error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string(), vec![])
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), vec![]),
    }
}
