//! "Block the caller who just called": the caller of a logged call becomes
//! an exact rule in a list file, through the list store. `callguard block
//! --from-call` and `POST /api/v1/calls/{id}/block` are this one function.

use std::path::Path;
use std::sync::Arc;

use super::store::{Applied, ListStore, StoreError};
use crate::calllog::LogReader;
use crate::config;
use crate::config::types::MatchType;
use crate::list_io::RuleRow;
use crate::policy::pattern::infer_match_type;
use crate::policy::tester::PatternTester;
use crate::store::ListVersions;

/// What to block: the caller of the logged call `from_call`, as an exact
/// rule of `list` (the API's `POST /api/v1/calls/{id}/block` takes the same).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlockRequest {
    #[serde(default)]
    pub from_call: String,
    pub list: String,
    pub name: Option<String>,
    pub action: Option<String>,
    /// Answer what a call from the number would get after the change,
    /// without writing anything (the API's `"check": true`).
    #[serde(default)]
    pub check: bool,
}

/// What [`block_from_call`] did.
#[derive(Debug)]
pub(crate) enum Blocked {
    /// The rule was written to the list.
    Added {
        number: String,
        applied: Applied,
        rule: RuleRow,
    },
    /// The list already matches the caller: nothing was written.
    AlreadyMatched {
        number: String,
        list: String,
        rule: String,
        match_type: String,
        pattern: String,
    },
}

impl Blocked {
    /// The one-line answer the CLI prints and the API returns.
    pub(crate) fn message(&self) -> String {
        match self {
            Blocked::Added {
                number,
                applied,
                rule,
            } => format!(
                "{number} added to {} as {}: {}",
                applied.list, rule.rule_name, applied.summary
            ),
            Blocked::AlreadyMatched {
                number,
                list,
                rule,
                match_type,
                pattern,
            } => format!(
                "{number} is already matched by rule {rule} ({match_type} {pattern}) of {list}: nothing was added"
            ),
        }
    }
}

/// Why nothing could be blocked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BlockError {
    /// The configuration does not load.
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Log(String),
    #[error("no logged call with unique id {id:?} in {log}")]
    NoSuchCall { id: String, log: String },
    #[error(
        "call {0} came from an anonymous caller: there is no number to block (use an `anonymous: true` rule instead)"
    )]
    Anonymous(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The `block --from-call` path, shared by the CLI and the admin API: finds
/// the logged call, and unless `list` already matches its caller, appends an
/// exact rule for the caller through the list store (validated, written
/// atomically, recorded in the history as `author`). `store` is the
/// service's list store; the CLI passes `None` to open the one beside the log.
pub(crate) fn block_from_call(
    config_path: &Path,
    req: &BlockRequest,
    author: &str,
    store: Option<ListStore>,
) -> Result<Blocked, BlockError> {
    let cfg = config::load(config_path).map_err(|p| BlockError::Config(p.to_string()))?;
    let log_path = cfg.resolve(&cfg.raw.log.path);
    let postgres = cfg
        .raw
        .log
        .postgres_target()
        .transpose()
        .map_err(BlockError::Log)?;
    let call = match LogReader::open_either(&log_path, postgres.as_ref())
        .and_then(|r| r.find_by_unique_id(&req.from_call))
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(BlockError::NoSuchCall {
                id: req.from_call.clone(),
                log: log_path.display().to_string(),
            });
        }
        Err(e) => return Err(BlockError::Log(format!("{}: {e}", log_path.display()))),
    };
    let number = call
        .caller_e164
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| call.caller_raw.trim().to_string());
    if call.anonymous || number.is_empty() {
        return Err(BlockError::Anonymous(req.from_call.clone()));
    }
    let row = RuleRow {
        rule_name: req
            .name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("Block-{number}")),
        pattern: number.clone(),
        match_type: "exact".into(),
        action: req.action.clone().unwrap_or_default(),
        enabled: true,
        notes: format!(
            "blocked from call {} at {}",
            call.unique_id,
            call.time.to_rfc3339()
        ),
    };
    let store = match store {
        Some(s) => s,
        // The fleet's lists: written to the store of record.
        None if cfg.raw.log.postgres.is_some() => ListStore::open(config_path)?,
        None => {
            let history = ListVersions::open(&log_path).ok().map(Arc::new);
            ListStore::new(config_path, history)
        }
    };
    // A second rule for a caller the list already matches would only clutter
    // it (and the log would still name the first rule): say so instead.
    if let Ok(cur) = store.current(&req.list) {
        let subjects = [number.as_str(), call.caller_raw.trim()];
        let limit = cfg.raw.policy.regex_backtrack_limit;
        if let Some(r) = cur
            .list
            .rows
            .iter()
            .map(|(_, r)| r)
            .find(|r| row_matches(r, &subjects, limit))
        {
            return Ok(Blocked::AlreadyMatched {
                number,
                list: req.list.clone(),
                rule: r.rule_name.clone(),
                match_type: if r.match_type.is_empty() {
                    "pattern".into()
                } else {
                    r.match_type.clone()
                },
                pattern: r.pattern.clone(),
            });
        }
    }
    let applied = store.add(&req.list, vec![row.clone()], author)?;
    Ok(Blocked::Added {
        number,
        applied,
        rule: row,
    })
}

/// Whether an enabled row matches any of `subjects` (the caller as E.164 and
/// as received), by the same pattern compiler and matcher a call uses.
fn row_matches(row: &RuleRow, subjects: &[&str], backtrack_limit: usize) -> bool {
    if !row.enabled {
        return false;
    }
    let mt = match row.match_type.trim() {
        "" => None,
        m => match MatchType::parse(m) {
            Some(m) => Some(m),
            None => return false,
        },
    };
    // Most list rows are exact numbers: compared directly, so a large list
    // does not build a matcher per row.
    if mt.unwrap_or_else(|| infer_match_type(&row.pattern)) == MatchType::Exact {
        let p = row.pattern.trim();
        return subjects.iter().any(|s| !s.is_empty() && *s == p);
    }
    let Ok(tester) = PatternTester::new(&row.pattern, mt, false, backtrack_limit) else {
        return false;
    };
    subjects
        .iter()
        .filter(|s| !s.is_empty())
        .any(|s| tester.test(s).is_ok_and(|r| r.matched))
}
