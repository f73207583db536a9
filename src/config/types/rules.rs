//! Rules, trunks and the list files that feed them.

use super::*;

/// The match types of a rule, shared with the list files (`match_type`).
pub use crate::list_io::MatchType;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: S<String>,
    pub pattern: Option<S<String>>,
    #[serde(rename = "match")]
    pub match_type: Option<MatchType>,
    /// Matches callers whose ID is hidden.
    #[serde(default)]
    pub anonymous: bool,
    pub action: Option<S<String>>,
    #[serde(default)]
    pub priority: i64,
    pub schedule: Option<ScheduleRef>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub notes: Option<String>,
    #[serde(default)]
    pub case_insensitive: bool,
    /// Caller-ID attestation condition: `[A, B, C, none, failed]`; AND-ed
    /// with `pattern`, or alone (then it matches every caller so attested).
    pub attestation: Option<S<Vec<String>>>,
    /// Reputation score condition: `{ above: 80 }` (needs `reputation.providers`).
    pub reputation: Option<S<ScoreCond>>,
    /// The looked-up category is one of these: `[fraud, telemarketing]`.
    pub category: Option<S<Vec<String>>>,
    /// The caller's name (looked up, or as the PBX delivered it) matches.
    pub caller_name: Option<S<CallerNameCond>>,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhitelistMode {
    #[default]
    Additive,
    Exclusive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListRole {
    Blacklist,
    Whitelist,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    #[serde(default)]
    pub dids: Vec<String>,
    pub region: Option<S<String>>,
    #[serde(default)]
    pub whitelist_mode: WhitelistMode,
    /// Exclusive only while this schedule condition holds.
    pub exclusive: Option<ScheduleRef>,
    pub blocked_action: Option<S<String>>,
    pub allowed_action: Option<S<String>>,
    #[serde(default)]
    pub whitelist: Vec<S<RuleConfig>>,
    #[serde(default)]
    pub blacklist: Vec<S<RuleConfig>>,
    #[serde(default)]
    pub lists: Vec<S<ListFileConfig>>,
    #[serde(default)]
    pub velocity: Vec<S<VelocityConfig>>,
}

/// A bulk list file (CSV or JSON in the import format), or a remote subscription.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFileConfig {
    /// Local file, relative to the config file. For a `url` list: where the
    /// last good copy is kept.
    pub path: Option<String>,
    #[serde(rename = "as")]
    pub role: ListRole,
    /// The list's name in the API and CLI (default: the file stem).
    pub name: Option<String>,
    /// Default action for rows that name none (located, so an unknown one is
    /// reported on its own line).
    pub action: Option<S<String>>,
    pub url: Option<String>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub refresh: Option<Duration>,
}
