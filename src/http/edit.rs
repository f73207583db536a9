//! Changes the web console needs beyond whole-list replace / add / delete:
//!
//! - `PUT /api/v1/lists/{name}/entries/{rule}`: edit one rule in place (its
//!   row replaced by the body's, which may rename it; `"enabled": false`
//!   disables it), one history version, same validation as an upload.
//! - `POST /api/v1/lists/{name}/import?on_duplicate=skip|overwrite|rename&dry_run=true&skip_invalid=false`:
//!   the CLI's import with its preview. With `dry_run` (the default) nothing
//!   is written and the answer is the preview: rows read, to add, conflicts
//!   and their fate, invalid rows with their line and reason. Without it the
//!   import is applied, unless rows are invalid and `skip_invalid` is not set.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::json;

use super::lists::{applied, authorized_body, blocking, checker, finish, parse_body, store};
use super::{Api, ApiError, ApiResult};
use crate::list_edit::store::StoreError;
use crate::list_io::{Format, ImportPlan, OnDuplicate, plan_import, read_rows};

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/lists/{name}/entries/{rule}", put(edit))
        .route("/api/v1/lists/{name}/import", post(import))
}

async fn edit(
    AxState(api): AxState<Api>,
    Path((name, rule)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    let trimmed = bytes.trim_ascii_start();
    if trimmed.first() != Some(&b'{') {
        return Err(ApiError::bad_request("expected one rule as a JSON object"));
    }
    let json = [b"[".as_slice(), trimmed, b"]"].concat();
    let checker = checker(&api, &name).await?;
    let mut rows = parse_body(&json, Format::Json, &checker)?;
    let Some(row) = rows.pop().filter(|_| rows.is_empty()) else {
        return Err(ApiError::bad_request("expected exactly one rule"));
    };
    let st = store(&api);
    let (who, n, r) = (author.clone(), name.clone(), rule.clone());
    let result = blocking(move || {
        st.apply(&n, &who, true, |cur| {
            let Some(at) = cur.iter().position(|x| x.rule_name == r) else {
                return Err(StoreError::NoSuchRule {
                    list: n.clone(),
                    rule: r.clone(),
                });
            };
            if row.rule_name != r && cur.iter().any(|x| x.rule_name == row.rule_name) {
                return Err(StoreError::Duplicate {
                    list: n.clone(),
                    rule: row.rule_name.clone(),
                });
            }
            let mut out = cur.to_vec();
            out[at] = row;
            Ok(out)
        })
    })
    .await;
    finish(
        &api,
        result,
        &format!("api: {author} edited rule {rule} of list {name}"),
    )
    .await
}

#[derive(Deserialize)]
struct ImportQuery {
    on_duplicate: Option<String>,
    dry_run: Option<bool>,
    skip_invalid: Option<bool>,
    format: Option<String>,
}

async fn import(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = match q.format.as_deref() {
        Some(f) => Format::from_name(f),
        None => Format::from_content_type(ct),
    };
    let format = format.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "format {:?} / Content-Type {ct:?}: send csv, json or xml",
                q.format.as_deref().unwrap_or("")
            ),
        )
    })?;
    let mode = match q.on_duplicate.as_deref() {
        None => OnDuplicate::Skip,
        Some(m) => OnDuplicate::from_name(m)
            .ok_or_else(|| ApiError::bad_request(OnDuplicate::unknown(m)))?,
    };
    let dry_run = q.dry_run.unwrap_or(true);
    let skip_invalid = q.skip_invalid.unwrap_or(false);
    let checker = checker(&api, &name).await?;
    let st = store(&api);
    let (who, n) = (author.clone(), name.clone());
    let source = "upload".to_string();
    let job = blocking(move || {
        let parsed = read_rows(&bytes, format, &source);
        let mut plan: Option<ImportPlan> = None;
        let r = st.apply(&n, &who, true, |cur| {
            let p = plan_import(cur, parsed, mode, &|r| checker.check(r));
            let refused = !p.errors.is_empty() && !skip_invalid;
            let result = p.result.clone();
            plan = Some(p);
            if dry_run || refused {
                return Err(StoreError::Aborted);
            }
            Ok(result)
        });
        Ok((r, plan))
    })
    .await;
    let (result, plan) = job?;
    let Some(plan) = plan else {
        // The store refused before planning (unknown list, broken file…).
        result?;
        return Err(ApiError::internal("import not planned"));
    };
    let refused = !plan.errors.is_empty() && !skip_invalid;
    let preview = json!({
        "list": name,
        "rows_read": plan.rows_read,
        "to_add": plan.to_add,
        "overwritten": plan.overwritten,
        "skipped": plan.skipped,
        "renamed": plan.renamed.iter().map(|(from, to)| json!({"from": from, "to": to})).collect::<Vec<_>>(),
        "invalid": plan.errors.iter().take(1000).map(|e| json!({"line": e.line, "column": e.column, "reason": e.message, "text": e.to_string()})).collect::<Vec<_>>(),
        "invalid_count": plan.errors.len(),
        "rules_after": plan.result.len(),
        "dry_run": dry_run,
        "refused": refused,
    });
    match result {
        Err(StoreError::Aborted) => {
            let mut v = preview;
            v["applied"] = json!(false);
            let code = if refused && !dry_run {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            if refused && !dry_run {
                v["error"] = json!(format!(
                    "{} invalid row(s): nothing was imported (fix them, or skip the invalid rows)",
                    plan.errors.len()
                ));
            }
            Ok((code, axum::Json(v)).into_response())
        }
        other => {
            let answer = applied(
                &api,
                other,
                &format!("api: {author} imported into list {name}"),
            )
            .await?;
            let mut v = preview;
            v["applied"] = json!(true);
            v["result"] = answer;
            Ok(axum::Json(v).into_response())
        }
    }
}
