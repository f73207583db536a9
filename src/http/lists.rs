//! The list management API: read, export, replace, add, delete, roll back,
//! history, and the decision explainer. Every change goes through the list
//! store (validated against the whole configuration, written atomically,
//! recorded) and then reloads at once, so the very next call sees it.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::json;

use super::{Api, ApiError, ApiResult, auth};
use crate::list_edit::store::{Applied, ListStore, RowChecker, StoreError};
use crate::list_io::{Format, RuleRow, read_rows, write_rows};
use crate::reload::Trigger;

mod bulk;
pub(crate) mod dates;
pub(crate) mod entries;
pub(crate) mod ondisk;
mod test;
pub(crate) mod view;

pub(crate) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v1/lists", get(list_all))
        .route("/api/v1/lists/{name}", get(export).put(replace))
        .route(
            "/api/v1/lists/{name}/entries",
            get(entries::entries).post(add),
        )
        .route("/api/v1/lists/{name}/entries/{rule}", delete(remove))
        .route("/api/v1/lists/{name}/rollback", post(rollback))
        .route("/api/v1/lists/{name}/bulk", post(bulk::bulk))
        .route("/api/v1/history", get(history))
        .route("/api/v1/test", post(test::explain))
}

pub(super) fn store(api: &Api) -> ListStore {
    ListStore::new(
        api.reloader.config_path.clone(),
        api.state.extras.history.clone(),
    )
    .with_lock(api.state.extras.list_lock.clone())
    .with_fleet(api.state.extras.fleet.clone())
}

async fn list_all(AxState(api): AxState<Api>) -> Response {
    let snap = api.state.snapshot();
    let lists: Vec<_> = snap
        .rules
        .lists
        .iter()
        .map(|l| {
            json!({
                "name": l.name, "kind": l.kind, "trunk": l.trunk, "path": l.path,
                "rules": l.rules, "count": l.rules, "editable": l.path.is_some(),
                "entries_url": format!("/api/v1/lists/{}/entries", view::encode(&l.name)),
            })
        })
        .collect();
    // A configuration on disk that does not load: the lists in force are
    // answered, and the console turns read-only with the problems shown.
    let problems = api.reloader.last_error().map(|e| e.problems);
    axum::Json(json!({
        "version": snap.version, "lists": lists,
        "read_only": problems.is_some(), "problems": problems.unwrap_or_default(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
}

async fn export(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult {
    let format = match q.format.as_deref() {
        None => Format::Json,
        Some(f) => Format::from_name(f).ok_or_else(|| {
            ApiError::bad_request(format!("unknown format {f:?} (csv, json or xml)"))
        })?,
    };
    let st = store(&api);
    let config = api.reloader.config_path.clone();
    let rows = blocking(move || match st.export_rows(&name) {
        // The configuration on disk does not load: the last one that did.
        Err(StoreError::Refused(p)) => match ondisk::load_cached(&config) {
            (Some(cfg), _) => cfg
                .lists
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.rows.iter().map(|(_, r)| r.clone()).collect())
                .ok_or(StoreError::Refused(p)),
            _ => Err(StoreError::Refused(p)),
        },
        r => r,
    })
    .await
    .map_err(|e| match e {
        StoreError::Broken(problems) => ApiError::new(
            StatusCode::CONFLICT,
            "the list file has problems; fix it before exporting",
        )
        .with_details(problems),
        e => e.into(),
    })?;
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        write_rows(&rows, format),
    )
        .into_response())
}

/// Authorises, then reads the body within `http.max_body_bytes`: an
/// unauthenticated client never gets to make us buffer anything.
pub(super) async fn authorized_body(
    api: &Api,
    headers: &HeaderMap,
    body: Body,
) -> Result<(String, Bytes), ApiError> {
    let snap = api.state.snapshot();
    let http = &snap.service.http;
    let author = auth::authorize(http, headers)?;
    let limit = http.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes (http.max_body_bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    Ok((author, bytes))
}

async fn replace(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = Format::from_content_type(ct).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {ct:?}: send text/csv, application/json or application/xml"),
        )
    })?;
    let checker = checker(&api, &name).await?;
    let rows = parse_body(&bytes, format, &checker)?;
    let st = store(&api);
    let who = author.clone();
    let n = name.clone();
    let result = blocking(move || st.replace(&n, rows, &who)).await;
    finish(&api, result, &format!("api: {author} replaced list {name}")).await
}

/// The body's rows, or 400 with every bad row as `request body:LINE: reason`:
/// rows the reader refused *and* rows the rule set would refuse (a bad
/// regex, an unknown action), all in one answer.
pub(super) fn parse_body(
    bytes: &[u8],
    format: Format,
    checker: &RowChecker,
) -> Result<Vec<RuleRow>, ApiError> {
    let parsed = read_rows(bytes, format, "request body");
    let mut errors: Vec<(u32, String)> = parsed
        .errors
        .iter()
        .map(|e| (e.line, e.to_string()))
        .collect();
    for (line, row) in &parsed.rows {
        if let Err(e) = checker.check(row) {
            errors.push((
                *line,
                format!("request body:{line}: {}: {e}", row.rule_name),
            ));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|(line, _)| *line);
        return Err(ApiError::bad_request(format!(
            "{} invalid row(s); nothing was changed",
            errors.len()
        ))
        .with_details(errors.into_iter().take(1000).map(|(_, e)| e).collect()));
    }
    Ok(parsed.rows.into_iter().map(|(_, r)| r).collect())
}

/// The row validator of list `name`, or the store's answer (404, read-only…).
pub(super) async fn checker(api: &Api, name: &str) -> Result<RowChecker, ApiError> {
    let st = store(api);
    let n = name.to_string();
    blocking(move || st.checker(&n))
        .await
        .map_err(|e| ondisk::store_error(&api.reloader.config_path, e))
}

async fn add(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    // One object or an array of them; the JSON list reader applies the same
    // row rules (trimming, match type spellings, enabled words) as a file.
    let trimmed = bytes.trim_ascii_start();
    let wrapped;
    let json: &[u8] = if trimmed.first() == Some(&b'{') {
        wrapped = [b"[".as_slice(), trimmed, b"]"].concat();
        &wrapped
    } else {
        trimmed
    };
    let checker = checker(&api, &name).await?;
    let rows = parse_body(json, Format::Json, &checker)?;
    if rows.is_empty() {
        return Err(ApiError::bad_request("no rules in the request"));
    }
    let st = store(&api);
    let who = author.clone();
    let n = name.clone();
    let result = blocking(move || st.add(&n, rows, &who)).await;
    finish(&api, result, &format!("api: {author} added to list {name}")).await
}

async fn remove(
    AxState(api): AxState<Api>,
    Path((name, rule)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    let author = auth::authorize(&api.state.snapshot().service.http, &headers)?;
    let st = store(&api);
    let who = author.clone();
    let n = name.clone();
    let result = blocking(move || st.delete(&n, &rule, &who)).await;
    finish(
        &api,
        result,
        &format!("api: {author} deleted from list {name}"),
    )
    .await
}

#[derive(Deserialize)]
struct RollbackBody {
    version: u64,
}

async fn rollback(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    let req: RollbackBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"version\": N}}: {e}")))?;
    let st = store(&api);
    let who = author.clone();
    let n = name.clone();
    let result = blocking(move || st.restore(&n, req.version, &who)).await;
    finish(
        &api,
        result,
        &format!(
            "api: {author} rolled back list {name} to version {}",
            req.version
        ),
    )
    .await
}

#[derive(Deserialize)]
struct HistoryQuery {
    list: Option<String>,
    limit: Option<usize>,
}

/// Versions answered at most per request.
const MAX_HISTORY: usize = 1000;

async fn history(AxState(api): AxState<Api>, Query(q): Query<HistoryQuery>) -> ApiResult {
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_HISTORY);
    // The fleet's versions are in the store of record (`log.postgres`).
    if let Some(f) = api.state.extras.fleet.clone() {
        let versions = blocking(move || Ok(f.store.versions(q.list.as_deref(), limit)?)).await?;
        let versions: Vec<_> = versions
            .iter()
            .map(|v| {
                json!({
                    "list": v.list, "version": v.version, "time": v.time.to_rfc3339(),
                    "author": v.author, "summary": v.summary, "rules_version": v.id,
                })
            })
            .collect();
        return Ok(axum::Json(json!({ "versions": versions })).into_response());
    }
    let h = api
        .state
        .extras
        .history
        .clone()
        .ok_or(StoreError::NoHistory)?;
    let versions = blocking(move || {
        h.versions(q.list.as_deref(), limit)
            .map_err(|e| StoreError::Io(e.to_string()))
    })
    .await?;
    let versions: Vec<_> = versions
        .iter()
        .map(|v| {
            json!({
                "list": v.list, "version": v.version, "time": v.time.to_rfc3339(),
                "author": v.author, "summary": v.summary,
            })
        })
        .collect();
    Ok(axum::Json(json!({ "versions": versions })).into_response())
}

/// Runs a store operation off the async workers (it reads and writes files).
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError::Io(format!("store task failed: {e}"))))
}

/// After a successful write: reload now (not when the watcher notices), and
/// answer with the rule-set version now in force and what changed.
pub(super) async fn finish(api: &Api, result: Result<Applied, StoreError>, why: &str) -> ApiResult {
    Ok(axum::Json(applied(api, result, why).await?).into_response())
}

/// [`finish`]'s answer as JSON, for handlers that add to it.
pub(super) async fn applied(
    api: &Api,
    result: Result<Applied, StoreError>,
    why: &str,
) -> Result<serde_json::Value, ApiError> {
    let applied = result.map_err(|e| ondisk::store_error(&api.reloader.config_path, e))?;
    let version = if applied.summary.is_empty() {
        Ok(api.state.snapshot().version)
    } else {
        api.reloader
            .reload(Trigger::ApiWrite(why.to_string()))
            .await
    };
    let undo = match applied.history_version {
        Some(v) => undo_version(api, &applied.list, v).await,
        None => None,
    };
    match version {
        Ok(version) => Ok(json!({
            "undo": undo.map(|v| json!({ "version": v })),
            "list": applied.list,
            "version": version,
            "history_version": applied.history_version,
            "summary": applied.summary.to_string(),
            "added": applied.summary.added,
            "removed": applied.summary.removed,
            "changed": applied.summary.changed,
            "rules": applied.rules,
        })),
        Err(p) => Err(ApiError::problems(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the list was written but the reload was refused; the previous rules stay in force",
            &p,
        )),
    }
}

/// The version before `version` of `list` in its history: rolling back to
/// it undoes the change that made `version`.
async fn undo_version(api: &Api, list: &str, version: u64) -> Option<u64> {
    let list = list.to_string();
    if let Some(f) = api.state.extras.fleet.clone() {
        let v = blocking(move || Ok(f.store.versions(Some(&list), 50)?)).await;
        return v
            .ok()?
            .iter()
            .map(|v| v.version)
            .filter(|&v| v < version)
            .max();
    }
    let h = api.state.extras.history.clone()?;
    let v = blocking(move || {
        h.versions(Some(&list), 50)
            .map_err(|e| StoreError::Io(e.to_string()))
    })
    .await;
    v.ok()?
        .iter()
        .map(|v| v.version)
        .filter(|&v| v < version)
        .max()
}
