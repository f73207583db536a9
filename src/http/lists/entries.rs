//! `GET /api/v1/lists/{name}/entries?q=&sort=&order=&offset=&limit=`: one
//! page of a list, searched and sorted on the server, with the total. `q`
//! matches name, pattern and notes (any case); a phone number also finds the
//! rules a call from it would match. The rows come from a view cached per
//! rule-set version and file state (see [`super::view`]), so paging a
//! 100,000-entry list does not re-read it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State as AxState};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::view::{self, ListView, RowFacts, ViewKey};
use super::{blocking, store};
use crate::http::{Api, ApiError, ApiResult};
use crate::list_edit::store::StoreError;
use crate::policy::explain::{looks_like_number, rules_matching};

#[derive(Deserialize, Default)]
pub(crate) struct EntriesQuery {
    #[serde(default)]
    pub q: String,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub offset: Option<usize>,
    pub limit: Option<usize>,
}

pub(super) async fn entries(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    Query(q): Query<EntriesQuery>,
) -> ApiResult {
    let v = load_view(&api, &name).await?;
    let facts = row_facts(&api, &v).await;
    let api2 = api.clone();
    let answer = tokio::task::spawn_blocking(move || page(&api2, &v, &q, &facts))
        .await
        .map_err(|e| ApiError::internal(format!("entries task failed: {e}")))??;
    Ok(axum::Json(answer).into_response())
}

/// The list's view: cached, or read now (off the async workers).
pub(crate) async fn load_view(api: &Api, name: &str) -> Result<Arc<ListView>, ApiError> {
    let snap = api.state.snapshot();
    let info = snap.rules.lists.iter().find(|l| l.name == name).cloned();
    let key = ViewKey::new(
        api.reloader.config_path.clone(),
        name,
        snap.version,
        info.as_ref().and_then(|i| i.path.as_ref()),
    );
    if let Some(v) = ListView::cached(&key) {
        return Ok(v);
    }
    let st = store(api);
    let n = name.to_string();
    let (rows, action) = blocking(move || match st.current(&n) {
        Ok(c) => Ok((
            c.list.rows.into_iter().map(|(_, r)| r).collect(),
            c.list.default_action.map(|a| a.value),
        )),
        Err(StoreError::ReadOnly(_)) => Ok((st.export_rows(&n)?, None)),
        Err(e) => Err(e),
    })
    .await?;
    Ok(ListView::build(key, info.as_ref(), action, rows))
}

/// Hits (the call log) and dates (the history) of the list's rules, and the
/// action of rows without one.
pub(crate) async fn row_facts(api: &Api, v: &Arc<ListView>) -> RowFacts {
    let snap = api.state.snapshot();
    let fallback = view::fallback_action(
        &snap.rules,
        &v.kind,
        v.trunk.as_deref(),
        v.list_action.as_deref(),
    );
    let log = api.state.extras.log_path.clone();
    let pg = api.state.extras.log_postgres.clone();
    let history = api.state.extras.history.clone();
    let list = v.name.clone();
    let v = v.clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut hits: HashMap<String, (u64, Option<chrono::DateTime<chrono::Utc>>)> =
            HashMap::new();
        if let Some(p) = log.as_deref() {
            for ((_, l, r), n) in view::hit_counts(p, pg.as_ref()) {
                if l == list {
                    hits.entry(r).or_default().0 += n;
                }
            }
        }
        let dates = history
            .map(|h| super::dates::dates(&h, &list, v.rows.len(), v.rows.iter()))
            .unwrap_or_default();
        (hits, dates)
    });
    let (hits, dates) = job.await.unwrap_or_default();
    RowFacts {
        hits,
        dates,
        fallback,
    }
}

fn page(api: &Api, v: &ListView, q: &EntriesQuery, facts: &RowFacts) -> Result<Value, ApiError> {
    let sort = q.sort.as_deref().unwrap_or("position");
    if !view::SORTS.contains(&sort) {
        return Err(ApiError::bad_request(format!(
            "unknown sort {sort:?} (one of {})",
            view::SORTS.join(", ")
        )));
    }
    let asc = match q.order.as_deref() {
        None | Some("asc") => true,
        Some("desc") => false,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "unknown order {o:?} (asc or desc)"
            )));
        }
    };
    let limit = q.limit.unwrap_or(view::PAGE).clamp(1, view::MAX_PAGE);
    let offset = q.offset.unwrap_or(0);
    let (number, mut idx) = search(api, v, &q.q);
    let total = idx.len();
    view::sort(v, &mut idx, sort, asc, facts);
    let entries: Vec<Value> = idx
        .iter()
        .skip(offset)
        .take(limit)
        .map(|&i| view::row_json(&v.name, i, &v.rows[i], facts))
        .collect();
    Ok(json!({
        "list": v.name, "kind": v.kind, "trunk": v.trunk, "editable": v.editable,
        "total": total, "count": v.rows.len(), "offset": offset, "limit": limit,
        "q": q.q, "number": number, "sort": sort, "order": if asc { "asc" } else { "desc" },
        "entries": entries,
    }))
}

/// Positions of the rows matching `q` in file order, and `q` as E.164 when
/// it is a phone number.
pub(crate) fn search(api: &Api, v: &ListView, q: &str) -> (Option<String>, Vec<usize>) {
    if looks_like_number(q) {
        let snap = api.state.snapshot();
        let (e164, matching) = rules_matching(&snap.rules, &v.name, v.trunk.as_deref(), q);
        (e164, v.search(q, Some(&matching)))
    } else {
        (None, v.search(q, None))
    }
}
