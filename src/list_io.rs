//! List files, the lower layer of rule lists: the row type, the import/export
//! formats of the reference (CSV, JSON, XML), diffs, import planning and
//! atomic writes.
//!
//! Nothing here knows the configuration, the rule set or the history: the
//! config loader and the policy read list files through this layer, and the
//! list store (`lists`), which validates a change against the whole
//! configuration, sits above all of them.

use serde::{Deserialize, Serialize};

pub(crate) mod atomic;
pub(crate) mod diff;
pub(crate) mod format;
pub(crate) mod import;
pub(crate) mod match_type;

pub(crate) use atomic::write_atomic;
pub(crate) use diff::{ChangeSummary, diff_rows};
pub use format::{Format, read_rows, write_rows};
pub(crate) use format::{ParsedList, RowError};
pub(crate) use import::{ImportPlan, OnDuplicate, plan_import};
pub use match_type::MatchType;

/// One rule as it appears in a list file. Columns:
/// `rule_name,pattern,match_type,action,enabled[,notes]`.
///
/// `match_type` and `action` may be empty: the match type is then inferred from
/// the pattern and the action is the list's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    pub rule_name: String,
    pub pattern: String,
    #[serde(default)]
    pub match_type: String,
    #[serde(default)]
    pub action: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub notes: String,
}

fn yes() -> bool {
    true
}
