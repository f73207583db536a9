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
use serde_json::{Value, json};

use super::lists::{applied, authorized_body};
use super::{Api, ApiError, ApiResult};
use crate::calllog::LogReader;
use crate::list_edit::block::{BlockError, BlockRequest, Blocked, block_from_call};
use crate::policy::explain;
use crate::policy::reputation::CallerFacts;

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
    // What a call from this caller would get once the list has the rule: a
    // protected number is refused, a whitelisted one reported.
    let check = check(&api, &req).await?;
    if check.protected {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("refused: {}", check.answer["reason"].as_str().unwrap_or("")),
        )
        .with_details(vec![
            check.answer["reason"].as_str().unwrap_or("").to_string(),
        ]));
    }
    if req.check {
        let mut v = check.answer;
        v["check"] = json!(true);
        v["added"] = json!(false);
        return Ok(axum::Json(v).into_response());
    }
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
            let mut v = check.answer;
            v["added"] = json!(false);
            v["message"] = json!(message);
            return Ok(axum::Json(v).into_response());
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
    v["message"] = json!(match &check.answer["still_allowed_by"] {
        Value::Null => message,
        a => format!(
            "{message}; but the whitelist rule {} of {} still lets this caller through",
            a["rule"].as_str().unwrap_or(""),
            a["list"].as_str().unwrap_or("")
        ),
    });
    for k in ["verdict", "still_allowed_by"] {
        v[k] = check.answer[k].clone();
    }
    v["rule_name"] = json!(rule.rule_name);
    Ok(axum::Json(v).into_response())
}

struct Check {
    protected: bool,
    answer: Value,
}

/// The call's caller decided now on its trunk (and its DID's user): a
/// protected number cannot be blocked; a whitelist rule that allows it keeps
/// allowing it after a blacklist rule is added; otherwise the new rule (or
/// a rule that blocks it already) decides.
async fn check(api: &Api, req: &BlockRequest) -> Result<Check, ApiError> {
    let log = api.state.extras.log_path.clone();
    let pg = api.state.extras.log_postgres.clone();
    let id = req.from_call.clone();
    let call = tokio::task::spawn_blocking(move || {
        let log = log?;
        LogReader::open_either(&log, pg.as_ref())
            .and_then(|r| r.find_by_unique_id(&id))
            .ok()
            .flatten()
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no logged call with unique id {:?}", req.from_call),
        )
    })?;
    if call.anonymous {
        return Err(BlockError::Anonymous(req.from_call.clone()).into());
    }
    let snap = api.state.snapshot();
    let rs = &snap.rules;
    let Some(trunk) = rs.select_trunk(Some(&call.trunk), [call.did.as_str()]) else {
        return Ok(Check {
            protected: false,
            answer: json!({ "verdict": "block", "rule": null, "reason": "no trunk selected", "still_allowed_by": null }),
        });
    };
    let user = rs
        .tenant(rs.trunk(trunk).tenant)
        .user_for([call.did.as_str()]);
    let now = api_now();
    let d = explain::caller_json_for(
        rs,
        (trunk, user),
        &call.caller_raw,
        false,
        (None, CallerFacts::default()),
        now,
    )
    .unwrap_or_else(|e| e);
    let list = d["list"].as_str().unwrap_or("");
    let rule = d["decided_by"]["rule"].clone();
    let number = call.caller_e164.clone().unwrap_or(call.caller_raw.clone());
    let target_kind = rs
        .lists
        .iter()
        .find(|l| l.name == req.list)
        .map_or("blacklist", |l| l.kind);
    let blocking_list = !matches!(target_kind, "whitelist" | "user_allow");
    let (verdict, rule, still, protected) = match list {
        "protected" => ("allow", rule, Value::Null, true),
        "whitelist" | "user_allow" if blocking_list => (
            "allow",
            rule.clone(),
            json!({ "list": d["decided_by"]["list_name"], "rule": rule }),
            false,
        ),
        _ if d["verdict"] == "block" => ("block", rule, Value::Null, false),
        _ if blocking_list => (
            "block",
            json!(
                req.name
                    .clone()
                    .unwrap_or_else(|| format!("Block-{number}"))
            ),
            Value::Null,
            false,
        ),
        _ => ("allow", rule, Value::Null, false),
    };
    let reason = if protected {
        format!("{number} is a protected number (protected: never blocked)")
    } else if let Some(r) = still.get("rule").and_then(Value::as_str) {
        format!(
            "the whitelist rule {r} still lets this caller through; disable it to block {number}"
        )
    } else {
        d["reason"].as_str().unwrap_or("").to_string()
    };
    Ok(Check {
        protected,
        answer: json!({
            "number": number, "trunk": &*rs.trunk(trunk).name, "list": req.list,
            "action": req.action, "verdict": verdict, "rule": rule, "reason": reason,
            "still_allowed_by": still, "now": d,
        }),
    })
}

fn api_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
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
