//! `POST /api/v1/test`: the decision explainer over HTTP, answering exactly
//! what `callguard test --json` prints, against the rules in force now.

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::config::types::MatchType;
use crate::http::{Api, ApiError, ApiResult};
use crate::policy::explain;
use crate::policy::tester::PatternTester;

/// Numbers tested against one pattern per request.
const MAX_NUMBERS: usize = 1000;
/// Timed evaluations per number (the CLI does 1000; a request stays quick).
const RUNS: u32 = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    caller: Option<String>,
    trunk: Option<String>,
    did: Option<String>,
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    anonymous: bool,
    pattern: Option<String>,
    #[serde(rename = "match")]
    match_type: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    numbers: Vec<String>,
}

pub(super) async fn explain(AxState(api): AxState<Api>, body: Bytes) -> ApiResult {
    let req: TestRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"caller\": …, \"trunk\"?, \"did\"?, \"at\"?, \"anonymous\"?}} or {{\"pattern\": …, \"match\"?, \"numbers\": […]}}: {e}"
        ))
    })?;
    if let Some(p) = &req.pattern {
        return pattern(p, &req, api.state.snapshot().rules.backtrack_limit);
    }
    let Some(caller) = &req.caller else {
        return Err(ApiError::bad_request(
            "give `caller` (or `pattern` with `numbers`)",
        ));
    };
    let snap = api.state.snapshot();
    let rs = &snap.rules;
    if let Some(t) = &req.trunk
        && rs.trunk_by_name(t).is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no trunk named {t:?}"),
        ));
    }
    let Some(trunk) = rs.select_trunk(req.trunk.as_deref(), req.did.as_deref()) else {
        return Err(ApiError::bad_request(
            "no trunk selected: give `trunk` or `did`, or set default_trunk (a call would fail open)",
        ));
    };
    let at = req.at.unwrap_or_else(Utc::now);
    Ok(
        match explain::caller_json(rs, trunk, caller, req.anonymous, at) {
            Ok(mut v) => {
                v["rules_version"] = json!(snap.version);
                axum::Json(v).into_response()
            }
            Err(v) => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(v)).into_response(),
        },
    )
}

fn pattern(p: &str, req: &TestRequest, backtrack_limit: usize) -> ApiResult {
    if req.numbers.is_empty() || req.numbers.len() > MAX_NUMBERS {
        return Err(ApiError::bad_request(format!(
            "give 1 to {MAX_NUMBERS} `numbers` to test"
        )));
    }
    let mt = match req.match_type.as_deref() {
        None => None,
        Some(m) => Some(MatchType::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown match type {m:?} (exact, starts_with, contains, ends_with, wildcard, regex)"
            ))
        })?),
    };
    let tester = PatternTester::new(p, mt, req.case_insensitive, backtrack_limit).map_err(|e| {
        let at = e
            .column
            .map(|c| format!(", column {c}"))
            .unwrap_or_default();
        ApiError::bad_request("invalid pattern")
            .with_details(vec![format!("pattern {p:?}{at}: {e}")])
    })?;
    let results: Vec<_> = req
        .numbers
        .iter()
        .map(|n| explain::pattern_json(&tester, p, n, RUNS))
        .collect();
    Ok(axum::Json(json!({
        "pattern": p,
        "match_type": tester.compiled.match_type.as_str(),
        "explain": tester.explain(),
        "results": results,
    }))
    .into_response())
}
