//! The configuration as it is on disk, cached while none of its files
//! changes, and the last one that loaded when it no longer does: the
//! console's read-only mode answers from it (trunks, exports) and writes are
//! refused with the problems.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use axum::http::StatusCode;

use crate::config::{self, LoadedConfig, Problems};
use crate::http::ApiError;
use crate::list_edit::store::StoreError;

type Stamps = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

fn stamps(files: &[PathBuf]) -> Stamps {
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok();
            let s = m.map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            (f.clone(), s)
        })
        .collect()
}

/// The configuration on disk (cached while none of its files changes), or
/// the last one that loaded with the problems of the one on disk.
pub(crate) fn load_cached(path: &Path) -> (Option<Arc<LoadedConfig>>, Option<Problems>) {
    type Cache = Mutex<Vec<(PathBuf, Stamps, Arc<LoadedConfig>)>>;
    static LAST: OnceLock<Cache> = OnceLock::new();
    let last = LAST.get_or_init(Mutex::default);
    let cached = {
        let c = last.lock().unwrap_or_else(|e| e.into_inner());
        c.iter().find(|(p, _, _)| p == path).cloned()
    };
    if let Some((_, s, cfg)) = &cached
        && stamps(&cfg.files) == *s
    {
        return (Some(cfg.clone()), None);
    }
    match config::load(path) {
        Ok(cfg) => {
            let cfg = Arc::new(cfg);
            let s = stamps(&cfg.files);
            let mut c = last.lock().unwrap_or_else(|e| e.into_inner());
            c.retain(|(p, _, _)| p != path);
            if c.len() >= 4 {
                c.remove(0);
            }
            c.push((path.to_path_buf(), s, cfg.clone()));
            (Some(cfg), None)
        }
        Err(p) => (cached.map(|(_, _, cfg)| cfg), Some(p)),
    }
}

/// A store error as the API answers it: a change refused because the
/// configuration on disk does not load (not because of the change) is 409
/// with the configuration's problems.
pub(crate) fn store_error(config: &Path, e: StoreError) -> ApiError {
    if let StoreError::Refused(_) = &e
        && let (_, Some(problems)) = load_cached(config)
    {
        return ApiError::problems(
            StatusCode::CONFLICT,
            "the configuration on disk does not load: the console is read-only until it is fixed",
            &problems,
        );
    }
    e.into()
}
