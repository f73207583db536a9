//! The git rule source: `source: { git: PATH_OR_URL, branch, path, poll }`.
//!
//! Every `poll` the branch's tip is looked up; a commit not seen before has
//! the config's list files under `path` read straight from its tree (no
//! checkout, so nothing half-written is ever on disk), validated together
//! with the config, and only then written into the config's directory. A
//! refused commit is remembered so it is not retried: the next attempt is the
//! next commit (a fix, or a `git revert` for a rollback).
//!
//! A local repository (a path or `file://`) is read in place, read-only: gix
//! has no in-process upload-pack, and a clone of a repository on the same
//! disk would only copy it. A remote one (`https://…`) is fetched with gix
//! into a bare clone under `.callguard/git/` beside the config.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gix::ObjectId;
use tokio_util::sync::CancellationToken;

use super::validate::{self, Candidates};
use super::{BlobError, GitError, Refused};
use crate::config::types::SourceConfig;
use crate::reload::{Reloader, Trigger};

/// A fetch (or a read of a local repository) taking longer is abandoned.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Per list file read from a commit; the loader's own bound is larger, but a
/// blob is read whole into memory here.
const MAX_BLOB_BYTES: u64 = 256 << 20;
const MIN_POLL: Duration = Duration::from_millis(100);

/// Where the repository is and how it is read.
#[derive(Debug, Clone)]
enum Origin {
    Local(PathBuf),
    Remote { url: String, clone: PathBuf },
}

fn origin(url: &str, base: &Path) -> Origin {
    if let Some(p) = url.strip_prefix("file://") {
        return Origin::Local(PathBuf::from(p));
    }
    let scp_like = !url.contains("://")
        && url
            .split_once(':')
            .is_some_and(|(host, _)| host.contains('@'));
    if url.contains("://") || scp_like {
        let name: String = url
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(100)
            .collect();
        return Origin::Remote {
            url: url.to_string(),
            clone: base.join(".callguard").join("git").join(name),
        };
    }
    Origin::Local(base.join(url))
}

/// What one poll found.
enum Found {
    /// The tip is the commit handled last time.
    Same,
    /// A new tip with the candidate list files read from its tree, or the
    /// reasons they could not be read.
    New(ObjectId, Result<Candidates, Refused>),
}

/// Polls the repository until `stop`.
pub(crate) async fn run(
    spec: SourceConfig,
    config_path: PathBuf,
    reloader: Arc<Reloader>,
    stop: CancellationToken,
) {
    let base = validate::base_dir(&config_path);
    let origin = origin(&spec.git, &base);
    let poll = spec.poll.max(MIN_POLL);
    // The last commit applied or refused: each commit is judged once.
    let mut seen: Option<ObjectId> = None;
    loop {
        if let Some(id) = poll_once(&spec, &origin, &config_path, &reloader, seen).await {
            seen = Some(id);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One poll; returns the commit it judged, if it judged one.
async fn poll_once(
    spec: &SourceConfig,
    origin: &Origin,
    config_path: &Path,
    reloader: &Reloader,
    seen: Option<ObjectId>,
) -> Option<ObjectId> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let job = {
        let (spec, origin, cfg, stop) = (
            spec.clone(),
            origin.clone(),
            config_path.to_path_buf(),
            interrupt.clone(),
        );
        tokio::task::spawn_blocking(move || find(&spec, &origin, &cfg, seen, &stop))
    };
    let found = match tokio::time::timeout(FETCH_TIMEOUT, job).await {
        Ok(Ok(Ok(found))) => found,
        Ok(Ok(Err(e))) => return fail(reloader, &spec.git, e),
        Ok(Err(e)) => return fail(reloader, &spec.git, GitError::PollTask(e.to_string())),
        Err(_) => {
            // The blocking fetch checks this flag and gives up.
            interrupt.store(true, Ordering::Relaxed);
            return fail(reloader, &spec.git, GitError::Timeout(FETCH_TIMEOUT));
        }
    };
    let (id, candidates) = match found {
        Found::Same => return None,
        Found::New(id, c) => (id, c),
    };
    let short = id.to_hex_with_len(8).to_string();
    let head = format!(
        "git {} commit {short} refused, the running rules stay",
        spec.git
    );
    let checked = match candidates {
        Ok(c) => {
            let cfg = config_path.to_path_buf();
            tokio::task::spawn_blocking(move || validate::validate(&cfg, &c).map(|()| c))
                .await
                .unwrap_or_else(|e| Err(Refused::one(format!("validation task failed: {e}"))))
        }
        Err(p) => Err(p),
    };
    let candidates = match checked {
        Ok(c) => c,
        Err(problems) => {
            tracing::error!(source = %spec.git, "{head}");
            for p in &problems.0 {
                tracing::error!(source = %spec.git, commit = %short, "{p}");
            }
            let mut all = vec![head];
            all.extend(problems.0);
            reloader.record_refusal(format!("git {}", spec.git), all);
            return Some(id);
        }
    };
    let cfg = config_path.to_path_buf();
    let written =
        match tokio::task::spawn_blocking(move || validate::apply(&cfg, &candidates)).await {
            Ok(Ok(w)) => w,
            Ok(Err(e)) => return fail(reloader, &spec.git, GitError::Write(e)),
            Err(e) => return fail(reloader, &spec.git, GitError::WriteTask(e.to_string())),
        };
    tracing::info!(source = %spec.git, commit = %short, files = ?written, "git commit applied");
    // A refused reload keeps the running rules and their commit label.
    let _ = reloader
        .reload(Trigger::Git {
            url: spec.git.clone(),
            id: id.to_string(),
            commit: short.to_string(),
        })
        .await;
    Some(id)
}

/// Logs and records a failure to reach or read the repository; nothing is
/// judged, so the same commit is tried again at the next poll.
fn fail(reloader: &Reloader, url: &str, e: GitError) -> Option<ObjectId> {
    let msg = format!("git {url}: {e}");
    tracing::warn!("{msg}");
    reloader.record_refusal(format!("git {url}"), vec![msg]);
    None
}

/// Looks up the branch's tip (fetching first for a remote), and if it is not
/// `seen`, reads the config's list files under `spec.path` from its tree.
fn find(
    spec: &SourceConfig,
    origin: &Origin,
    config_path: &Path,
    seen: Option<ObjectId>,
    interrupt: &AtomicBool,
) -> Result<Found, GitError> {
    let (repo, refname) = match origin {
        Origin::Local(path) => {
            let repo = gix::open(path).map_err(|e| GitError::Open(path.clone(), e.to_string()))?;
            (repo, format!("refs/heads/{}", spec.branch))
        }
        Origin::Remote { url, clone } => (
            fetch(url, clone, &spec.branch, interrupt)?,
            format!("refs/callguard/{}", spec.branch),
        ),
    };
    let branch = |e: &dyn std::fmt::Display| GitError::Branch(spec.branch.clone(), e.to_string());
    let id = repo
        .find_reference(refname.as_str())
        .map_err(|e| branch(&e))?
        .peel_to_id()
        .map_err(|e| branch(&e))?
        .detach();
    if seen == Some(id) {
        return Ok(Found::Same);
    }
    let lists = validate::list_paths(config_path);
    let files = lists.and_then(|lists| read_lists(&repo, id, &lists, &spec.path));
    Ok(Found::New(id, files))
}

/// Fetches `branch` of `url` into the bare clone at `clone` (created on first use).
fn fetch(
    url: &str,
    clone: &Path,
    branch: &str,
    interrupt: &AtomicBool,
) -> Result<gix::Repository, GitError> {
    let at = |e: &dyn std::fmt::Display| (clone.to_path_buf(), e.to_string());
    let repo = if clone.join("HEAD").exists() {
        gix::open(clone).map_err(|e| {
            let (path, e) = at(&e);
            GitError::OpenClone(path, e)
        })?
    } else {
        std::fs::create_dir_all(clone).map_err(|e| {
            let (path, e) = at(&e);
            GitError::CreateDir(path, e)
        })?;
        gix::init_bare(clone).map_err(|e| {
            let (path, e) = at(&e);
            GitError::CreateClone(path, e)
        })?
    };
    // gix builds its reqwest client on connect; see `install_tls_provider`.
    super::install_tls_provider();
    let spec = format!("+refs/heads/{branch}:refs/callguard/{branch}");
    let remote = repo
        .remote_at(url)
        .map_err(|e| GitError::BadUrl(e.to_string()))?
        .with_fetch_tags(gix::remote::fetch::Tags::None)
        .with_refspecs([spec.as_str()], gix::remote::Direction::Fetch)
        .map_err(|e| GitError::BadBranch(branch.to_string(), e.to_string()))?;
    remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| GitError::Connect(e.to_string()))?
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| GitError::Fetch(e.to_string()))?
        .receive(gix::progress::Discard, interrupt)
        .map_err(|e| GitError::Fetch(e.to_string()))?;
    Ok(repo)
}

/// The candidates: each list path under `prefix`, read from commit `id`.
/// A list the commit lacks is a problem, not an empty list.
fn read_lists(
    repo: &gix::Repository,
    id: ObjectId,
    lists: &[String],
    prefix: &str,
) -> Result<Candidates, Refused> {
    let short = id.to_hex_with_len(8).to_string();
    let tree = repo
        .find_commit(id)
        .map_err(|e| Refused::one(format!("commit {short}: {e}")))?
        .tree()
        .map_err(|e| Refused::one(format!("commit {short}: {e}")))?;
    let mut out = Candidates::new();
    let mut problems = Vec::new();
    for rel in lists {
        let Some(in_repo) = under(rel, prefix) else {
            continue;
        };
        match read_blob(repo, &tree, &in_repo) {
            Ok(bytes) => {
                out.insert(rel.clone(), bytes);
            }
            Err(e) => problems.push(format!("{in_repo} (commit {short}): {e}")),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Refused(problems))
    }
}

fn read_blob(
    repo: &gix::Repository,
    tree: &gix::Tree<'_>,
    path: &str,
) -> Result<Vec<u8>, BlobError> {
    let lookup = |e: &dyn std::fmt::Display| BlobError::Lookup(e.to_string());
    let entry = tree
        .lookup_entry_by_path(path)
        .map_err(|e| lookup(&e))?
        .ok_or(BlobError::Missing)?;
    if !entry.mode().is_blob() {
        return Err(BlobError::NotAFile);
    }
    let size = repo.find_header(entry.id()).map_err(|e| lookup(&e))?.size();
    if size > MAX_BLOB_BYTES {
        return Err(BlobError::TooLarge(MAX_BLOB_BYTES));
    }
    Ok(entry.object().map_err(|e| lookup(&e))?.detach().data)
}

/// The repository path of config-relative `rel` if it lies under `prefix`
/// (`.` or empty: the whole repository).
fn under(rel: &str, prefix: &str) -> Option<String> {
    let clean = |s: &str| {
        s.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect::<Vec<_>>()
            .join("/")
    };
    let rel = clean(rel);
    let prefix = clean(prefix);
    if rel.split('/').any(|c| c == "..") {
        return None;
    }
    if prefix.is_empty() || rel.starts_with(&format!("{prefix}/")) {
        Some(rel)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_prefix() {
        assert_eq!(
            under("rules/vip.csv", "rules/").as_deref(),
            Some("rules/vip.csv")
        );
        assert_eq!(
            under("./rules/vip.csv", "./rules").as_deref(),
            Some("rules/vip.csv")
        );
        assert_eq!(under("lists/x.csv", "rules/"), None);
        assert_eq!(under("rulesx/a.csv", "rules"), None);
        assert_eq!(under("a.csv", ".").as_deref(), Some("a.csv"));
        assert_eq!(under("../a.csv", "."), None);
    }

    #[test]
    fn origins() {
        let base = Path::new("/etc/callguard");
        assert!(
            matches!(origin("file:///srv/rules", base), Origin::Local(p) if p == Path::new("/srv/rules"))
        );
        assert!(matches!(origin("repo", base), Origin::Local(p) if p == base.join("repo")));
        match origin("https://example.org/r.git", base) {
            Origin::Remote { clone, .. } => assert!(clone.starts_with(base.join(".callguard/git"))),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            origin("git@host:r.git", base),
            Origin::Remote { .. }
        ));
    }
}
