//! The decision log's rows as every consumer sees them, whichever backend
//! holds them: what the writer stores ([`CallRecord`], [`CallEnd`]), what
//! readers get back ([`LoggedCall`], [`Stats`], [`TrunkCounts`]) and the
//! filters ([`LogQuery`]).

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// What is known of a call once it has been decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallRecord {
    pub time: DateTime<Utc>,
    /// The PBX's id of the call (Asterisk `agi_uniqueid`, FreeSWITCH `Unique-ID`).
    pub unique_id: String,
    /// `asterisk` or `freeswitch`.
    pub pbx: String,
    pub trunk: String,
    pub did: String,
    pub caller_raw: String,
    pub caller_e164: Option<String>,
    pub caller_name: String,
    pub anonymous: bool,
    /// `allow`, `block`, or `unscreened` (a session that never reached a decision).
    pub verdict: String,
    /// `protected`, `system_blacklist`, `whitelist`, `blacklist`, `exclusive`, `default`.
    pub list: String,
    /// The name of the list whose rule decided (`spam`, `exec-vip`,
    /// `support.blacklist`); empty when no rule decided.
    pub list_name: String,
    pub rule: Option<String>,
    pub action: String,
    pub reason: String,
    pub decision_ns: u64,
    pub fail_open: bool,
    /// The tenant whose rules screened the call; empty for the default
    /// tenant (the top level of the file, and every call of a config without
    /// `tenants:`).
    pub tenant: String,
    /// The user (extension of `users:`) the call was for; empty when none.
    pub user: String,
}

/// How a call's session ended, recorded when it ends.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEnd {
    pub unique_id: String,
    /// e.g. `completed`, `caller_hangup`, `dial:NOANSWER`, `protocol_error`.
    pub end_state: String,
    /// The hangup cause when the PBX told it (`NORMAL_CLEARING`, `16`).
    pub hangup_cause: Option<String>,
    pub duration_ms: u64,
}

/// A row of a writer batch, in queue order. Nearly every row is a Record:
/// boxing it would allocate once per call.
#[allow(clippy::large_enum_variant)]
pub(crate) enum LogRow {
    Record(CallRecord),
    /// The end, stamped with the time it was reported (not when written).
    End(CallEnd, DateTime<Utc>),
    /// A call that ended before it was screened: inserted with its end.
    Ended(CallRecord, CallEnd, DateTime<Utc>),
}

/// Digits both numbers must have before one may match as the tail of the other
/// (`5551234567` ↔ `+15551234567`): fewer would match unrelated numbers.
pub(crate) const MIN_SUFFIX_DIGITS: usize = 7;

/// How stats name blocked calls that no rule decided (e.g. `default`).
pub const NO_RULE: &str = "(none)";

/// Filters for [`query`] and [`stats`]; every field narrows, `None` ignores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Calls at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Calls strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// `allow` or `block` (exact).
    pub verdict: Option<String>,
    pub trunk: Option<String>,
    pub rule: Option<String>,
    /// Matches `caller_raw` or `caller_e164` exactly (so `anonymous` works), or
    /// by digits only: equal digits, or with at least [`MIN_SUFFIX_DIGITS`]
    /// digits on both sides one ending with the other, so `+1 555-123-4567`
    /// finds a call stored as `5551234567`.
    pub caller: Option<String>,
    /// The tenant (exact; `Some("")` is the default tenant).
    pub tenant: Option<String>,
    /// The user (extension) the calls were for (exact).
    pub user: Option<String>,
    /// Most rows [`query`] returns, newest first; 0 means no limit.
    pub limit: usize,
}

/// One row of the log as the CLI and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedCall {
    pub id: i64,
    #[serde(serialize_with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub unique_id: String,
    pub pbx: String,
    pub trunk: String,
    pub did: String,
    #[serde(rename = "caller")]
    pub caller_raw: String,
    pub caller_e164: Option<String>,
    pub caller_name: String,
    pub anonymous: bool,
    pub verdict: String,
    pub list: String,
    /// The deciding list's name (`spam`, `exec-vip`); empty when no rule decided.
    pub list_name: String,
    /// The deciding rule; `exclusive` for an exclusive-mode block.
    pub rule: Option<String>,
    pub action: String,
    pub reason: String,
    pub decision_ns: u64,
    pub fail_open: bool,
    pub end_state: Option<String>,
    pub hangup_cause: Option<String>,
    pub duration_ms: Option<u64>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub ended_at: Option<DateTime<Utc>>,
    /// The tenant whose rules screened the call; empty for the default tenant.
    pub tenant: String,
    /// The user (extension) the call was for; empty when none.
    pub user: String,
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// A count for one rule, list or trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatCount {
    pub key: String,
    pub calls: u64,
}

/// Blocking activity over a period: the daily report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total: u64,
    pub blocked: u64,
    pub allowed: u64,
    /// Calls let through without a decision (callguard failed open).
    pub fail_open: u64,
    /// Calls blocked without a decision (`fail: closed`).
    pub fail_closed: u64,
    /// Blocked calls per rule, most first; `exclusive` for exclusive-mode
    /// blocks; [`NO_RULE`] for none.
    pub blocked_by_rule: Vec<StatCount>,
    /// Blocked calls per list, by the list's name (`spam`, `support.blacklist`: as the report
    /// and the log's LIST column name it), else its kind (`exclusive`, `fail`).
    pub blocked_by_list: Vec<StatCount>,
    pub blocked_by_trunk: Vec<StatCount>,
}

/// Calls, blocks and fail-opens of one trunk over one period (the overview).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub calls: u64,
    pub blocked: u64,
    pub fail_open: u64,
}

/// One trunk's counts today and in the last hour (`GET /api/v1/overview`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TrunkCounts {
    pub trunk: String,
    pub today: Counts,
    pub last_hour: Counts,
}

/// One tenant's calls over a period (the report's per-tenant section).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TenantCounts {
    /// Empty for the default tenant.
    pub tenant: String,
    pub calls: u64,
    pub blocked: u64,
    pub allowed: u64,
    pub fail_open: u64,
}

/// (trunk, deciding list's name, rule) → calls it decided (the trunks screen).
pub(crate) type HitCounts = HashMap<(String, String, String), u64>;

/// How the log stores a tenant's name: the default tenant (`default`, the
/// top level of the file) is stored empty, as every row before tenants.
pub fn stored_tenant(name: &str) -> &str {
    if name == "default" { "" } else { name }
}

/// The digits of a number as typed anywhere (`+1 (555) 123-4567` → `15551234567`).
pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Stored integers are signed; a u64 past i64::MAX (never a real duration)
/// is stored saturated rather than failing the row.
pub(crate) fn sat(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored count back as the unsigned number it is.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
