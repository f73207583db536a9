//! `POST /api/v1/test`: the decision explainer over HTTP, answering exactly
//! what `callguard test --json` prints, against the rules in force now.
//!
//! The tester runs patterns nobody has vetted, so its work is bounded three
//! ways: each evaluation by the rule set's backtracking limit (as a call's),
//! each request by a time budget (`http.tester_budget`, checked between
//! evaluations: past it the answer is 422 with what was done, since a
//! pattern that slow is one to fix, not to wait for),
//! and all requests together by the admin pool's slots (see
//! [`crate::http::admin_pool`]): it never runs on the threads that serve and
//! decide calls, and a client that goes away stops its work.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::config::types::MatchType;
use crate::http::admin_pool::AdminPool;
use crate::http::{Api, ApiError, ApiResult};
use crate::policy::explain;
use crate::policy::reputation::CallerFacts;
use crate::policy::tester::{Budget, PatternTester, Stop};
use crate::reputation::{How, Lookup};

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
    /// The caller's name as the PBX would deliver it (`caller_name:` rules).
    #[serde(default)]
    caller_name: String,
}

pub(super) async fn explain(AxState(api): AxState<Api>, body: Bytes) -> ApiResult {
    let req: TestRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"caller\": …, \"trunk\"?, \"did\"?, \"at\"?, \"anonymous\"?}} or {{\"pattern\": …, \"match\"?, \"numbers\": […]}}: {e}"
        ))
    })?;
    let snap = api.state.snapshot();
    let budget = snap.service.http.tester_budget;
    if let Some(p) = req.pattern.clone() {
        let mt = checked_pattern_request(&req)?;
        let limit = snap.rules.backtrack_limit;
        // Each number as a call would present it: as received, and in E.164
        // on the trunk given (else the default trunk).
        let rs = &snap.rules;
        let dialing = req
            .trunk
            .as_deref()
            .and_then(|t| rs.trunk_by_name(t))
            .or(rs.default_trunk)
            .or((!rs.trunks.is_empty()).then_some(0))
            .map(|t| rs.trunk(t).dialing.clone());
        return pooled(&api.tester_pool, budget, move |cancel| {
            let e164: Vec<Option<String>> = req
                .numbers
                .iter()
                .map(|n| dialing.as_ref().and_then(|d| d.normalize(n, false).e164))
                .collect();
            pattern(
                &p,
                mt,
                &req,
                &e164,
                limit,
                &Budget::new(budget, Some(cancel)),
            )
        })
        .await;
    }
    let Some(caller) = req.caller.clone() else {
        return Err(ApiError::bad_request(
            "give `caller` (or `pattern` with `numbers`)",
        ));
    };
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
    // The reputation lookup a call would make (cached or live, within the budget).
    let lookup = match &api.state.extras.reputation {
        Some(rep) => {
            let c = rs.trunk(trunk).dialing.normalize(&caller, req.anonymous);
            match c.e164.filter(|_| !c.anonymous) {
                Some(e164) => Some(rep.lookup(&e164, rep.budget()).await),
                None => None,
            }
        }
        None => None,
    };
    // One decision, as a call's: bounded by the backtracking limit of each
    // rule it evaluates, but as heavy as the rule set, so off the runtime too.
    pooled(&api.tester_pool, budget, move |_| {
        let facts = CallerFacts {
            pbx_name: &req.caller_name,
            answer: lookup.as_ref().and_then(|l| l.answer.as_deref()),
        };
        // A DID given with the trunk still says whose call it is (a user's
        // own lists come first), as on a call.
        let user = req.did.as_deref().and_then(|d| {
            snap.rules
                .tenant(snap.rules.trunk(trunk).tenant)
                .user_for([d])
        });
        let v = explain::caller_json_for(
            &snap.rules,
            (trunk, user),
            &caller,
            req.anonymous,
            (None, facts),
            at,
        );
        Ok(match v {
            Ok(mut v) => {
                v["rules_version"] = json!(snap.version);
                v["did"] = json!(req.did);
                v["user"] = json!(user.map(|u| {
                    &*snap
                        .rules
                        .tenant(snap.rules.trunk(trunk).tenant)
                        .user(u)
                        .ext
                }));
                if let Some(l) = &lookup {
                    v["reputation"] = lookup_json(l);
                }
                axum::Json(v).into_response()
            }
            Err(v) => (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(v)).into_response(),
        })
    })
    .await
}

/// What the lookup returned: `{"how": "cached", "age_ms": …, "took_us": …,
/// "provider", "score", "name", "category", "note"}`.
fn lookup_json(l: &Lookup) -> serde_json::Value {
    let a = l.answer.as_deref();
    json!({
        "how": l.how.as_str(),
        "age_ms": match l.how { How::Cached { age_ms, .. } => Some(age_ms), _ => None },
        "stale": matches!(l.how, How::Cached { stale: true, .. }),
        "took_us": l.took.as_micros() as u64,
        "provider": l.provider.as_deref(),
        "score": a.and_then(|a| a.score),
        "name": a.and_then(|a| a.name.as_deref()),
        "category": a.and_then(|a| a.category.as_deref()),
        "note": l.note(),
    })
}

/// Runs `job` in the tester's admin pool; a full pool answers 503 (retry
/// after about one `budget`, when a slot will have freed).
async fn pooled(
    pool: &AdminPool,
    budget: Duration,
    job: impl FnOnce(&AtomicBool) -> ApiResult + Send + 'static,
) -> ApiResult {
    pool.run(job)
        .await
        .unwrap_or_else(|e| Ok(e.into_response_retry(budget)))
}

/// The cheap checks of a pattern request, before it takes a slot.
fn checked_pattern_request(req: &TestRequest) -> Result<Option<MatchType>, ApiError> {
    if req.numbers.is_empty() || req.numbers.len() > MAX_NUMBERS {
        return Err(ApiError::bad_request(format!(
            "give 1 to {MAX_NUMBERS} `numbers` to test"
        )));
    }
    match req.match_type.as_deref() {
        None => Ok(None),
        Some(m) => Ok(Some(MatchType::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown match type {m:?} (exact, starts_with, contains, ends_with, wildcard, regex)"
            ))
        })?)),
    }
}

fn pattern(
    p: &str,
    mt: Option<MatchType>,
    req: &TestRequest,
    e164: &[Option<String>],
    backtrack_limit: usize,
    budget: &Budget<'_>,
) -> ApiResult {
    let tester = PatternTester::new(p, mt, req.case_insensitive, backtrack_limit).map_err(|e| {
        let at = e
            .column
            .map(|c| format!(", column {c}"))
            .unwrap_or_default();
        ApiError::bad_request("invalid pattern")
            .with_details(vec![format!("pattern {p:?}{at}: {e}")])
    })?;
    let (mut results, stop) = explain::patterns_json(&tester, p, &req.numbers, RUNS, budget);
    // A call matches on the number as received or on its E.164 form.
    for (r, e) in results.iter_mut().zip(e164) {
        r["normalized"] = json!(e);
        if r["matched"] == true {
            r["matched_on"] = json!("raw");
        } else if let Some(e) = e
            && r["matched"] == false
            && Some(e.as_str()) != r["number"].as_str()
            && let Ok(m) = tester.test(e)
            && m.matched
        {
            r["matched"] = json!(true);
            r["matched_on"] = json!("e164");
            r["captures"] = json!(
                m.captures
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect::<serde_json::Map<_, _>>()
            );
        }
    }
    let mut answer = json!({
        "pattern": p,
        "match_type": tester.compiled.match_type.as_str(),
        "explain": tester.explain(),
        "results": results,
    });
    match stop {
        None => Ok(axum::Json(answer).into_response()),
        Some(Stop::Cancelled) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cancelled: the client went away",
        )),
        Some(Stop::TimeUp(limit)) => {
            // The API's error shape, with the partial answer beside it.
            let tested = answer["results"].as_array().map_or(0, Vec::len);
            answer["error"] = json!(format!(
                "budget exceeded: the tester stopped after its per-request time budget of {limit:?}, \
                 with {tested} of {} numbers tested; the results cover those",
                req.numbers.len()
            ));
            answer["details"] = json!([format!("limit: time budget {limit:?} per request")]);
            answer["budget_exceeded"] = json!(true);
            answer["budget_ms"] = json!(limit.as_millis() as u64);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::Json(answer)).into_response())
        }
    }
}
