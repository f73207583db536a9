//! `reputation:` — caller reputation and CNAM lookups (issue 25): the
//! providers asked in order, the cache and the time a lookup may take; and
//! the rule conditions on the answer (`reputation:`, `category:`,
//! `caller_name:` beside a rule's `pattern:`).

use super::*;

fn d30ms() -> Duration {
    Duration::from_millis(30)
}
fn d2s() -> Duration {
    Duration::from_secs(2)
}
fn d1d() -> Duration {
    Duration::from_secs(86_400)
}
fn d1h() -> Duration {
    Duration::from_secs(3_600)
}
fn d7d() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn d30s() -> Duration {
    Duration::from_secs(30)
}
fn d100k() -> usize {
    100_000
}
fn d8() -> usize {
    8
}
fn d5() -> u32 {
    5
}
fn d3() -> u32 {
    3
}
fn d100() -> f64 {
    100.0
}

/// `reputation: { budget: 30ms, providers: [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReputationConfig {
    /// Asked in order; the first with an answer within the budget decides.
    #[serde(default)]
    pub providers: Vec<S<ProviderConfig>>,
    /// The most a call waits for a lookup (never more than what is left of
    /// the PBX's `decide_timeout`); a later answer is cached for the next call.
    #[serde(default = "d30ms", deserialize_with = "duration")]
    pub budget: Duration,
    /// Cached answers kept in memory (and in the log's SQLite file).
    #[serde(default = "d100k")]
    pub max_entries: usize,
    /// How long an expired answer is still served while it is refreshed in
    /// the background (stale-while-revalidate); older ones are dropped.
    #[serde(default = "d7d", deserialize_with = "duration")]
    pub serve_stale: Duration,
    /// An entry hit this many times is refreshed before it expires.
    #[serde(default = "d3")]
    pub prefetch_hits: u32,
    /// Set the looked-up name on the channel (Asterisk `CALLERID(name)`,
    /// FreeSWITCH `effective_caller_id_name`) in the same round trip as the
    /// verdict.
    #[serde(default)]
    pub set_caller_name: bool,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            budget: d30ms(),
            max_entries: d100k(),
            serve_stale: d7d(),
            prefetch_hits: d3(),
            set_caller_name: false,
        }
    }
}

/// One provider: `url:` (HTTP JSON) or `file:` (a CSV of
/// `number,score,name,category`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The provider's name in metrics, logs and the cache.
    pub name: String,
    /// `https://api.example/v1/{e164}` (`{e164}`: `+15551234567`,
    /// `{number}`: `15551234567`).
    pub url: Option<String>,
    /// Request headers; `${VAR}` in a value is read from the environment
    /// (secrets stay out of the file).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON pointers (RFC 6901) into the answer.
    #[serde(default)]
    pub score: Option<String>,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    /// The provider's highest score (normalised to 100).
    #[serde(default = "d100")]
    pub score_max: f64,
    /// A CSV file (relative to the config) instead of `url`.
    pub file: Option<String>,
    /// The provider's own limit for one request (a late answer still fills
    /// the cache within it).
    #[serde(default = "d2s", deserialize_with = "duration")]
    pub timeout: Duration,
    /// How long an answer is fresh.
    #[serde(default = "d1d", deserialize_with = "duration")]
    pub ttl: Duration,
    /// How long "unknown number" is cached.
    #[serde(default = "d1h", deserialize_with = "duration")]
    pub negative_ttl: Duration,
    /// Requests in flight at most; when all are busy a lookup skips the
    /// provider (it costs the call nothing).
    #[serde(default = "d8")]
    pub max_concurrent: usize,
    /// Consecutive failures (errors, timeouts) that open the circuit breaker.
    #[serde(default = "d5")]
    pub breaker_failures: u32,
    /// How long an open breaker stays open before one probe is let through.
    #[serde(default = "d30s", deserialize_with = "duration")]
    pub breaker_cool_down: Duration,
}

/// A rule's `reputation: { above: 80 }` / `{ below: 20 }` condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreCond {
    pub above: Option<u8>,
    pub below: Option<u8>,
}

/// A rule's `caller_name: { pattern: "*SPAM*", match: wildcard }` condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerNameCond {
    pub pattern: String,
    #[serde(rename = "match")]
    pub match_type: Option<MatchType>,
    /// Names compare case-insensitively unless this is `false`.
    #[serde(default = "super::rules::yes")]
    pub case_insensitive: bool,
}
