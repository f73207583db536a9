//! `GET /api/v1/overview`: the console's first screen in one answer — calls,
//! blocks and fail-opens per trunk today and in the last hour (from the
//! decision log), the last reload (ok, or its `FILE:LINE` problems), the rule
//! source commit, the listeners and the version. Counts only, no phone
//! numbers, so it is open like `/api/v1/status`; `protect_reads` tells the
//! console whether the other screens will ask for a token. A token scoped to
//! a tenant or a user gets its scope's counts only (its tenant's trunks, the
//! calls for its user), without the service-wide parts (reload problems,
//! listeners, sources), and a `scope` naming it.

use std::path::Path;

use axum::Router;
use axum::extract::{Query, State as AxState};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, scope};
use crate::calllog::{LogQuery, LogReader, PgTarget};

pub(crate) fn routes() -> Router<Api> {
    Router::new().route("/api/v1/overview", get(overview))
}

#[derive(Deserialize)]
struct OverviewQuery {
    /// The start of "today" in the viewer's time zone (RFC 3339); default
    /// midnight UTC.
    today: Option<DateTime<Utc>>,
}

async fn overview(
    AxState(api): AxState<Api>,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Response {
    let snap = api.state.snapshot();
    let scope = match scope::call_scope(&snap.service.http, &headers) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let mut filter = LogQuery::default();
    // Cannot be refused: the filter names no tenant or user of its own.
    let _ = scope::narrow(scope.as_ref(), &mut filter);
    let now = Utc::now();
    let today = q.today.unwrap_or_else(|| {
        now.date_naive()
            .and_hms_opt(0, 0, 0)
            .map_or(now, |t| t.and_utc())
    });
    let hour = now - Duration::hours(1);
    let log = api.state.extras.log_path.clone();
    let postgres = api.state.extras.log_postgres.clone();
    let config = api.reloader.config_path.clone();
    let job = tokio::task::spawn_blocking(move || {
        let counts = log
            .as_deref()
            .map(|p| counts(p, postgres.as_ref(), today, hour, &filter));
        let listen = crate::config::load::read_bounded(&config, 16 << 20, "config")
            .ok()
            .and_then(|b| crate::config::load::parse(&String::from_utf8_lossy(&b), "config").ok())
            .map(|raw| raw.listen);
        (counts, listen)
    });
    let (counts, listen) = job.await.unwrap_or((None, None));
    let http = &snap.service.http;
    let reload = match api.reloader.last_error() {
        Some(e) => json!({ "ok": false, "at": e.at.to_rfc3339(), "problems": e.problems }),
        None => json!({ "ok": true, "at": snap.loaded_at.to_rfc3339(), "problems": [] }),
    };
    let scoped = scope.is_some();
    let reload = if scoped {
        // Another tenant's files may be named in the problems: only whether it went well.
        json!({ "ok": reload["ok"], "at": reload["at"], "problems": [] })
    } else {
        reload
    };
    let (trunks, log_error) = match counts {
        Some(Ok(v)) => (v, None),
        Some(Err(e)) => (json!([]), Some(e)),
        None => (
            json!([]),
            Some("this service keeps no call log".to_string()),
        ),
    };
    axum::Json(json!({
        "now": now.to_rfc3339(),
        "today_since": today.to_rfc3339(),
        "trunks": trunks,
        "log_error": log_error,
        "reload": reload,
        "rules_version": snap.version,
        "rules": snap.rules.rules.len(),
        "source": if scoped { None } else { snap.source.as_ref() },
        "listeners": listen
            .filter(|_| !scoped)
            .map(|l| json!({ "agi": l.agi, "esl": l.esl, "http": l.http })),
        "sources": if scoped { json!([]) } else { json!(api.reloader.status()) },
        "scope": scope.map(|s| json!({ "tenant": s.tenant, "user": s.user })),
        "protect_reads": http.protect_reads,
        "tokens_configured": !http.tokens.is_empty(),
        "build": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// Per trunk: calls, blocks and fail-opens since `today` and since `hour`,
/// from whichever log is configured (the SQLite file or `log.postgres`).
fn counts(
    log: &Path,
    postgres: Option<&PgTarget>,
    today: DateTime<Utc>,
    hour: DateTime<Utc>,
    scope: &LogQuery,
) -> Result<Value, String> {
    LogReader::open_either(log, postgres)
        .and_then(|r| r.trunk_counts(today, hour, scope))
        .map(|rows| json!(rows))
        .map_err(|e| e.to_string())
}
