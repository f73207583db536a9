//! Remote list subscriptions: `lists: [{ url: https://…, path: lists/x.csv,
//! refresh: 1h, as: blacklist }]`.
//!
//! Every `refresh` the list is fetched with a conditional GET; a changed body
//! is checked (rows, size, the whole config compiling with it) and only then
//! replaces the local copy at `path`, which the loader reads like any list.
//! The copy is the last good version: at start, or while the source is down
//! or serving garbage, it keeps being used, so a subscription never empties
//! a list by failing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::validate::{self, Candidates};
use super::{FetchFailure, Refused, SubscriptionError};
use crate::list_io::{Format, read_rows};
use crate::reload::{Reloader, Trigger};

/// A community list far larger than this is not a phone list.
pub(crate) const MAX_BODY_BYTES: usize = 64 << 20;
/// The whole request, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
/// A zero or tiny `refresh` must not turn into a request storm.
const MIN_REFRESH: Duration = Duration::from_millis(100);

/// One `url:` list of the config.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub url: String,
    /// The list's `path:` as written in the config (relative to its directory).
    pub rel: String,
    pub format: Format,
    pub refresh: Duration,
}

impl Subscription {
    pub(crate) fn new(url: String, rel: String, refresh: Option<Duration>) -> Option<Subscription> {
        let format = Format::from_path(&rel)?;
        Some(Subscription {
            url,
            rel,
            format,
            refresh: refresh.unwrap_or(DEFAULT_REFRESH).max(MIN_REFRESH),
        })
    }
}

/// The validators of the copy on disk, kept beside it
/// (`.community.csv.meta.json`) so a restart still sends conditional requests.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn meta_path(copy: &Path) -> PathBuf {
    let name = copy
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    copy.with_file_name(format!(".{name}.meta.json"))
}

/// The validators to send: only for the same URL and while the copy exists
/// (a 304 must never stand for a file we no longer have).
fn read_meta(copy: &Path, url: &str) -> Meta {
    let meta = std::fs::read(meta_path(copy))
        .ok()
        .and_then(|b| serde_json::from_slice::<Meta>(&b).ok())
        .filter(|m| m.url == url && copy.exists());
    meta.unwrap_or_else(|| Meta {
        url: url.to_string(),
        ..Meta::default()
    })
}

/// Polls one subscription until `stop`.
pub(crate) async fn run(
    sub: Subscription,
    config_path: PathBuf,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
) {
    // `spawn` has installed it already; a caller of `run` alone must not
    // meet reqwest's panic for a missing crypto provider.
    super::install_tls_provider();
    let client = match reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("callguard/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("subscription {}: cannot build HTTP client: {e}", sub.url);
            tracing::error!("{msg}");
            reloader.record_refusal(format!("subscription {}", sub.url), vec![msg]);
            return;
        }
    };
    loop {
        match refresh_once(&client, &sub, &config_path).await {
            Ok(Outcome::Unchanged) => {
                tracing::debug!(url = %sub.url, "subscription not modified");
            }
            Ok(Outcome::Applied) => {
                let _ = reloader
                    .reload(Trigger::Subscription {
                        url: sub.url.clone(),
                    })
                    .await;
            }
            Err(e) => {
                let problems = e.lines();
                for p in &problems {
                    tracing::warn!(url = %sub.url, "subscription refused, last good copy stays: {p}");
                }
                reloader.record_refusal(format!("subscription {}", sub.url), problems);
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(sub.refresh) => {}
        }
    }
}

enum Outcome {
    Unchanged,
    Applied,
}

/// One conditional GET; `Err` carries every reason to keep the last copy.
async fn refresh_once(
    client: &reqwest::Client,
    sub: &Subscription,
    config_path: &Path,
) -> Result<Outcome, SubscriptionError> {
    let fail = |why: FetchFailure| SubscriptionError::Fetch {
        url: sub.url.clone(),
        rel: sub.rel.clone(),
        why,
    };
    let transport = |e: reqwest::Error| fail(FetchFailure::Transport(error_chain(&e)));
    let copy = validate::base_dir(config_path).join(&sub.rel);
    let meta = read_meta(&copy, &sub.url);
    let mut req = client.get(&sub.url);
    if let Some(etag) = &meta.etag {
        req = req.header(reqwest::header::IF_NONE_MATCH, etag);
    }
    if let Some(lm) = &meta.last_modified {
        req = req.header(reqwest::header::IF_MODIFIED_SINCE, lm);
    }
    let mut resp = req.send().await.map_err(transport)?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(Outcome::Unchanged);
    }
    if !status.is_success() {
        return Err(fail(FetchFailure::Status(status)));
    }
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let new_meta = Meta {
        url: sub.url.clone(),
        etag: header(reqwest::header::ETAG),
        last_modified: header(reqwest::header::LAST_MODIFIED),
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(fail(FetchFailure::TooLarge(MAX_BODY_BYTES)));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(fail(FetchFailure::TooLarge(MAX_BODY_BYTES)));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(fail(FetchFailure::Empty));
    }
    let parsed = read_rows(&body, sub.format, &format!("{} ({})", sub.rel, sub.url));
    if !parsed.errors.is_empty() {
        return Err(Refused(parsed.errors.iter().map(ToString::to_string).collect()).into());
    }
    let unchanged = std::fs::read(&copy).is_ok_and(|old| old == body);
    if !unchanged {
        let mut candidates = Candidates::new();
        candidates.insert(sub.rel.clone(), body);
        let cfg = config_path.to_path_buf();
        let cands = candidates.clone();
        tokio::task::spawn_blocking(move || validate::validate(&cfg, &cands))
            .await
            .map_err(|e| fail(FetchFailure::ValidationTask(e.to_string())))??;
        validate::apply(config_path, &candidates)
            .map_err(|e| fail(FetchFailure::Write(copy.clone(), e)))?;
    }
    // The validators describe the copy now on disk, so they go after it.
    if let Ok(json) = serde_json::to_vec(&new_meta)
        && let Err(e) = crate::list_io::write_atomic(meta_path(&copy), &json)
    {
        tracing::warn!(url = %sub.url, "cannot keep ETag/Last-Modified: {e}");
    }
    Ok(if unchanged {
        Outcome::Unchanged
    } else {
        Outcome::Applied
    })
}

/// reqwest's top-level message hides the cause (refused, timed out, TLS…).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
