//! Rule sources beyond local files: a git repository (`source:`) and remote
//! list subscriptions (`lists: [{ url: … }]`).
//!
//! A source never installs rules itself. It materialises checked files into
//! the config's own directory and then asks the [`Reloader`] to load them like
//! any local edit, so every change is validated twice (here, on a private
//! copy, and by the reload) and a refused change leaves the running rules
//! untouched. Failures are logged with the source's URL and recorded in
//! `state.last_error`; the service keeps running whatever a source does.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::LoadedConfig;
use crate::reload::Reloader;

pub(crate) mod error;
pub(crate) mod git;
pub(crate) mod url;
pub(crate) mod validate;

pub(crate) use error::{BlobError, FetchFailure, GitError, Refused, SubscriptionError};

/// Starts one task per source the config names; each ends when `stop` is
/// cancelled.
pub(crate) fn spawn(
    cfg: &LoadedConfig,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    install_tls_provider();
    let config_path = reloader.config_path.clone();
    let mut tasks = Vec::new();
    if let Some(spec) = &cfg.raw.source {
        tracing::info!(source = %spec.git, branch = %spec.branch, "git rule source");
        tasks.push(tokio::spawn(git::run(
            spec.clone(),
            config_path.clone(),
            reloader.clone(),
            stop.clone(),
        )));
    }
    let entries = cfg
        .raw
        .lists
        .iter()
        .chain(cfg.raw.trunks.values().flat_map(|t| t.value.lists.iter()));
    for entry in entries {
        let l = &entry.value;
        let (Some(url), Some(path)) = (&l.url, &l.path) else {
            continue;
        };
        // The loader has already reported a list without a known format.
        let Some(sub) = url::Subscription::new(url.clone(), path.clone(), l.refresh) else {
            continue;
        };
        tracing::info!(url = %sub.url, copy = %sub.rel, "list subscription");
        tasks.push(tokio::spawn(url::run(
            sub,
            config_path.clone(),
            reloader.clone(),
            stop.clone(),
        )));
    }
    tasks
}

/// reqwest is built without a crypto provider so that rustls uses ring (no
/// aws-lc build, no cmake); the process-wide default must then be installed
/// before any reqwest client is built (even a plain-HTTP one: reqwest 0.13
/// panics without it), ours, gix's or a test's. Idempotent and cheap, so
/// every place that builds a client may call it.
pub(crate) fn install_tls_provider() {
    // Err only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
