//! Rule sources beyond local files: a git repository and remote list
//! subscriptions. STUB.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::LoadedConfig;
use crate::reload::Reloader;

/// Starts the pollers the config asks for.
pub fn spawn(
    _cfg: &LoadedConfig,
    _reloader: Arc<Reloader>,
    _stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    Vec::new()
}
