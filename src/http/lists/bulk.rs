//! `POST /api/v1/lists/{name}/bulk` with `{"op": "disable"|"enable"|"delete",
//! "rules": [...]}` or `{"op": …, "q": "<search>"}` (every row that search
//! finds, as `GET …/entries?q=` does): one versioned change, one history
//! entry, one reload, whatever the number of rows. The answer says how many
//! rows changed and which version to roll back to for an undo.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::{applied, authorized_body, blocking, store};
use crate::http::{Api, ApiError, ApiResult};
use crate::list_edit::store::StoreError;
use crate::policy::explain::{looks_like_number, rules_matching};

/// Rule names one request may list.
const MAX_RULES: usize = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    op: String,
    rules: Option<Vec<String>>,
    q: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Disable,
    Enable,
    Delete,
}

pub(super) async fn bulk(
    AxState(api): AxState<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let (author, bytes) = authorized_body(&api, &headers, body).await?;
    let req: BulkRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"op\": \"disable\"|\"enable\"|\"delete\", \"rules\": [...]}} or {{\"op\": …, \"q\": \"…\"}}: {e}"
        ))
    })?;
    let op = match req.op.as_str() {
        "disable" => Op::Disable,
        "enable" => Op::Enable,
        "delete" => Op::Delete,
        o => {
            return Err(ApiError::bad_request(format!(
                "unknown op {o:?} (disable, enable or delete)"
            )));
        }
    };
    let select = match (req.rules, req.q) {
        (Some(r), None) if r.len() <= MAX_RULES => Select::Names(r.into_iter().collect()),
        (Some(_), None) => {
            return Err(ApiError::bad_request(format!(
                "at most {MAX_RULES} rules per request"
            )));
        }
        (None, Some(q)) => {
            let snap = api.state.snapshot();
            let info = snap.rules.lists.iter().find(|l| l.name == name);
            let matching = looks_like_number(&q).then(|| {
                let trunk = info.and_then(|i| i.trunk.as_deref());
                rules_matching(&snap.rules, &name, trunk, &q).1
            });
            Select::Search(q.trim().to_lowercase(), matching.unwrap_or_default())
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either `rules` (names) or `q` (a search), not both",
            ));
        }
    };
    let st = store(&api);
    let (who, n) = (author.clone(), name.clone());
    let job = blocking(move || {
        let mut changed = 0usize;
        let r = st.apply(&n, &who, true, |cur| {
            if let Select::Names(names) = &select
                && let Some(missing) = {
                    let have: HashSet<&str> = cur.iter().map(|r| r.rule_name.as_str()).collect();
                    names.iter().find(|x| !have.contains(x.as_str()))
                }
            {
                return Err(StoreError::NoSuchRule {
                    list: n.clone(),
                    rule: missing.clone(),
                });
            }
            let mut out = Vec::with_capacity(cur.len());
            for r in cur {
                if !select.picks(r) {
                    out.push(r.clone());
                    continue;
                }
                match op {
                    Op::Delete => changed += 1,
                    Op::Disable | Op::Enable => {
                        let enabled = op == Op::Enable;
                        changed += usize::from(r.enabled != enabled);
                        let mut r = r.clone();
                        r.enabled = enabled;
                        out.push(r);
                    }
                }
            }
            Ok(out)
        });
        Ok((r, changed))
    })
    .await;
    let (result, changed) = job?;
    let what = match op {
        Op::Disable => "disabled",
        Op::Enable => "enabled",
        Op::Delete => "deleted",
    };
    let mut v = applied(
        &api,
        result,
        &format!("api: {author} {what} {changed} rule(s) of list {name}"),
    )
    .await?;
    // `changed` stays the names every write answers; `affected` counts them.
    v["affected"] = json!(changed);
    v["op"] = json!(req.op);
    Ok(axum::Json(v).into_response())
}

enum Select {
    Names(HashSet<String>),
    /// A lower-case search text, and the rules a phone number matches.
    Search(String, HashSet<String>),
}

impl Select {
    fn picks(&self, r: &crate::list_io::RuleRow) -> bool {
        match self {
            Select::Names(n) => n.contains(&r.rule_name),
            Select::Search(q, m) => {
                q.is_empty()
                    || m.contains(&r.rule_name)
                    || [&r.rule_name, &r.pattern, &r.notes]
                        .iter()
                        .any(|f| f.to_lowercase().contains(q.as_str()))
            }
        }
    }
}
