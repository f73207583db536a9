//! What can go wrong with a rule source, as types.
//!
//! Two kinds matter to the caller: the source could not be reached or read
//! (nothing was judged, so the same content is tried again at the next poll)
//! and the content was judged and refused (its located problems are recorded
//! and the running rules stay). The messages are the lines the reloader
//! records for `/api/v1/status` and the console.

use std::path::PathBuf;
use std::time::Duration;

/// Located problems that refuse a candidate set, one line each
/// (`FILE:LINE:COL: message`, or a file and why it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub(crate) struct Refused(pub Vec<String>);

/// The problem lines, as a slice.
impl std::ops::Deref for Refused {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl Refused {
    pub(crate) fn one(line: impl Into<String>) -> Self {
        Refused(vec![line.into()])
    }
}

/// Why a git poll could not reach or read the repository.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GitError {
    #[error("cannot open {}: {}", .0.display(), .1)]
    Open(PathBuf, String),
    #[error("cannot open clone {}: {}", .0.display(), .1)]
    OpenClone(PathBuf, String),
    #[error("cannot create {}: {}", .0.display(), .1)]
    CreateDir(PathBuf, String),
    #[error("cannot create clone {}: {}", .0.display(), .1)]
    CreateClone(PathBuf, String),
    #[error("bad URL: {0}")]
    BadUrl(String),
    #[error("bad branch {0:?}: {1}")]
    BadBranch(String, String),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("fetch: {0}")]
    Fetch(String),
    /// The branch does not exist or does not point at a commit.
    #[error("branch {0}: {1}")]
    Branch(String, String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("poll task failed: {0}")]
    PollTask(String),
    #[error("cannot write list files: {0}")]
    Write(std::io::Error),
    #[error("write task failed: {0}")]
    WriteTask(String),
}

/// Why one list file could not be read from a commit's tree.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlobError {
    #[error("{0}")]
    Lookup(String),
    #[error("not in the commit")]
    Missing,
    #[error("not a file")]
    NotAFile,
    #[error("larger than {} MiB", .0 >> 20)]
    TooLarge(u64),
}

/// Why a subscription's refresh keeps the last good copy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubscriptionError {
    /// The server could not be reached or gave no usable list.
    #[error("subscription {url} ({rel}): {why}")]
    Fetch {
        url: String,
        rel: String,
        why: FetchFailure,
    },
    /// The list, or the configuration with it in place, does not load.
    #[error(transparent)]
    Refused(#[from] Refused),
}

impl SubscriptionError {
    /// The lines the reloader records, one per problem.
    pub(crate) fn lines(&self) -> Vec<String> {
        match self {
            SubscriptionError::Refused(r) => r.0.clone(),
            fetch => vec![fetch.to_string()],
        }
    }
}

/// What went wrong fetching or storing a subscription's body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchFailure {
    /// The request failed: the whole cause chain (refused, timed out, TLS…).
    #[error("{0}")]
    Transport(String),
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("body larger than {} MiB", .0 >> 20)]
    TooLarge(usize),
    #[error("empty body")]
    Empty,
    #[error("validation task failed: {0}")]
    ValidationTask(String),
    #[error("cannot write {}: {}", .0.display(), .1)]
    Write(PathBuf, std::io::Error),
}
