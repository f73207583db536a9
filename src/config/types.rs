//! The YAML shape of `callguard.yaml`, exactly as users write it.
//!
//! These types only describe the file; `config::load` turns them into a
//! validated [`super::LoadedConfig`], and `policy::RuleSet::compile` turns that into
//! indexes. Key names are a public contract: extend them, never rename them.
//! Values whose errors a user must be able to find carry their source location
//! (`Spanned`), so validation can answer `FILE:LINE:COL: message`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

// The sections with most types of their own, one file each.
macro_rules! duration_default {
    ($name:ident, $ms:expr) => {
        fn $name() -> Duration {
            Duration::from_millis($ms)
        }
    };
}

mod action;
mod feature;
mod listen;
mod reputation;
mod rules;
mod schedule;
mod tenant;
pub use action::*;
pub use feature::*;
pub use listen::*;
pub use reputation::*;
pub use rules::*;
pub use schedule::*;
pub use tenant::*;

/// A value with its line and column in the YAML file.
pub(crate) type S<T> = Spanned<T>;

fn default_region() -> String {
    "US".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub normalize: NormalizeConfig,
    /// Callers that are never blocked (emergency services): above every list.
    #[serde(default)]
    pub protected: Vec<S<String>>,
    #[serde(default)]
    pub default_trunk: Option<S<String>>,
    /// Default action for the system blacklist and for trunks that set none.
    #[serde(default)]
    pub blocked_action: Option<S<String>>,
    /// `open` (default): when callguard cannot decide, the call goes on as if no
    /// rule matched. `closed`: the trunk's blocked action is applied instead.
    #[serde(default)]
    pub fail: FailMode,
    #[serde(default)]
    pub actions: BTreeMap<String, S<ActionConfig>>,
    #[serde(default)]
    pub schedules: BTreeMap<String, S<ScheduleConfig>>,
    /// System blacklist: no trunk whitelist overrides it.
    #[serde(default)]
    pub blacklist: Vec<S<RuleConfig>>,
    /// Bulk list files feeding the system blacklist.
    #[serde(default)]
    pub lists: Vec<S<ListFileConfig>>,
    #[serde(default)]
    pub trunks: BTreeMap<String, S<TrunkConfig>>,
    #[serde(default)]
    pub listen: ListenConfig,
    #[serde(default)]
    pub agi: AgiConfig,
    #[serde(default)]
    pub esl: EslConfig,
    /// The SIP edge: proxies (Kamailio) asking `POST /api/v1/edge/decide`.
    #[serde(default)]
    pub edge: EdgeConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub policy: PolicyTuning,
    /// Rules managed in a git repository.
    #[serde(default)]
    pub source: Option<SourceConfig>,
    /// System-level velocity rules: every trunk's calls count.
    #[serde(default)]
    pub velocity: Vec<S<VelocityConfig>>,
    /// Bounds of the velocity counters.
    #[serde(default)]
    pub velocity_limits: VelocityLimits,
    /// The default tenant's users (extensions with their own lists).
    #[serde(default)]
    pub users: BTreeMap<String, S<UserConfig>>,
    /// Hosted PBXs: one section per customer; the rest of this file is the
    /// default tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, S<TenantConfig>>,
    /// The handset feature codes (*30 / *31 / *32, FreePBX's); a tenant
    /// without its own uses these.
    #[serde(default)]
    pub feature_codes: FeatureCodes,
    /// Numbers a user dialled are allowed for that user (opt-in; a tenant
    /// without its own uses this).
    #[serde(default)]
    pub dialled_numbers: Option<DialledNumbers>,
    /// Caller reputation and CNAM lookups.
    #[serde(default)]
    pub reputation: ReputationConfig,
    /// Prometheus metrics (`GET /metrics`).
    #[serde(default)]
    pub metrics: MetricsConfig,
}

fn d100k() -> usize {
    100_000
}

fn d5ms() -> Duration {
    Duration::from_millis(5)
}

/// `velocity_limits: { max_tracked: 100000 }`: the counters live in memory;
/// past `max_tracked` keys, those whose window has passed are dropped first,
/// then the least recently seen.
///
/// A fleet shares its counters in Redis (`redis: redis://host:6379/0`): a
/// burst spread over several instances is counted once, as on one instance.
/// Every Redis round trip of a call is bounded by `redis_timeout`; when Redis
/// is slow or down the instance counts in memory (and says so) until it
/// answers again.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityLimits {
    #[serde(default = "d100k")]
    pub max_tracked: usize,
    /// Shared counters: a Redis URL (`redis://host:port/db`). Keep the
    /// password out of it: see `redis_password_env`.
    #[serde(default)]
    pub redis: Option<S<String>>,
    /// The environment variable holding the Redis password (never printed).
    #[serde(default)]
    pub redis_password_env: Option<String>,
    /// The bound on a call's Redis round trips; past it the call is counted
    /// in memory and Redis is not asked again until it answers a ping.
    #[serde(default = "d5ms", deserialize_with = "duration")]
    pub redis_timeout: Duration,
}

impl VelocityLimits {
    /// The parsed `velocity_limits.redis`, with its password from the
    /// environment; `None` when unset (each instance counts alone).
    pub fn redis_target(&self) -> Option<Result<crate::store::RedisTarget, String>> {
        let url = self.redis.as_ref()?;
        Some(crate::store::RedisTarget::parse(
            &url.value,
            self.redis_password_env.as_deref(),
        ))
    }
}

impl Default for VelocityLimits {
    fn default() -> Self {
        Self {
            max_tracked: d100k(),
            redis: None,
            redis_password_env: None,
            redis_timeout: d5ms(),
        }
    }
}

fn default_branch() -> String {
    "main".into()
}
fn default_source_path() -> String {
    ".".into()
}
fn d30s_poll() -> Duration {
    Duration::from_secs(30)
}

/// `source: { git: PATH_OR_URL, branch: main, path: rules/, poll: 30s }`:
/// the list files under `path` in the repository replace the local ones of
/// the same relative path, commit by commit, when the commit validates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub git: String,
    #[serde(default = "default_branch")]
    pub branch: String,
    #[serde(default = "default_source_path")]
    pub path: String,
    #[serde(default = "d30s_poll", deserialize_with = "duration")]
    pub poll: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeConfig {
    #[serde(default = "default_region")]
    pub default_region: String,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            default_region: default_region(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    #[default]
    Open,
    Closed,
}

/// `velocity:` rule (per trunk or system-wide): more than `max` calls in `per`
/// from one `scope` gets `action` and, with `block_for`, a temporary block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityConfig {
    pub name: S<String>,
    /// `caller` (default), `prefix:N` (the first N digits of the E.164
    /// number) or `trunk` (every call of the trunk: a fraud burst).
    pub scope: Option<S<String>>,
    pub max: u32,
    #[serde(deserialize_with = "duration")]
    pub per: Duration,
    /// Default: the trunk's blocked action.
    pub action: Option<S<String>>,
    #[serde(default, deserialize_with = "opt_duration")]
    pub block_for: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default = "d32m")]
    pub max_body_bytes: usize,
    /// Reads that hold phone numbers (list exports, history, the call log,
    /// the tester) need a token too. Off by default: `listen.http` is on
    /// loopback unless the operator moves it.
    #[serde(default)]
    pub protect_reads: bool,
    /// Time one `POST /api/v1/test` request may spend evaluating patterns
    /// (nobody vetted them) before it stops and answers what it did.
    #[serde(default = "d2s_tester", deserialize_with = "duration")]
    pub tester_budget: Duration,
    /// Connections open at once; past it a connection is closed at once.
    /// Also held to an eighth of the open-file limit (`http::listener`), so
    /// that an HTTP flood leaves descriptors for calls.
    #[serde(default = "d256")]
    pub max_connections: usize,
    /// Time for a request's head, from the connection's start (first
    /// request) or from its first byte (later ones): a slow-header client
    /// cannot hold a connection.
    #[serde(default = "d10s", deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// Time for a whole request body; past it the answer is 408.
    #[serde(default = "d30s", deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request:
    /// longer than a 60 s Prometheus scrape interval, so the scraper reuses it.
    #[serde(default = "d75s", deserialize_with = "duration")]
    pub keep_alive_timeout: Duration,
    /// Host names (optionally `name:port`) accepted in `Host`, besides
    /// `localhost`, the name in `listen.http` and IP literals (DNS
    /// rebinding needs a name). `"*"` accepts any.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

fn d2s_tester() -> Duration {
    Duration::from_secs(2)
}

fn d256() -> usize {
    256
}
duration_default!(d75s, 75_000);

impl Default for HttpConfig {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults")
    }
}

impl HttpConfig {
    /// One warning per configured token whose secret is missing from the
    /// environment: such a token can never authorise anything, which an
    /// operator who just deployed it should hear about at start, not when
    /// the first change is refused. Names only the variable, never a value.
    pub(crate) fn unset_token_warnings(&self) -> Vec<String> {
        self.tokens
            .iter()
            .filter(|t| std::env::var(&t.token_env).map_or(true, |v| v.is_empty()))
            .map(|t| {
                format!(
                    "http.tokens: token {:?} cannot authorise anything: environment variable {} is not set",
                    t.name, t.token_env
                )
            })
            .collect()
    }
}

/// `{ name: crm-sync, token_env: CALLGUARD_TOKEN_CRM }`: the secret lives in the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub token_env: String,
    /// Scopes the token to one tenant (`default` is the top-level config):
    /// it reads and changes only that tenant's lists, calls and reports.
    /// Unscoped tokens are system-wide administrators.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Scopes the token to one user (an extension of `tenant`): their own
    /// lists and calls only.
    #[serde(default)]
    pub user: Option<String>,
}

fn default_log_path() -> String {
    "data/callguard.db".into()
}
fn d90() -> u32 {
    90
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// SQLite file, relative to the config file.
    #[serde(default = "default_log_path")]
    pub path: String,
    #[serde(default = "d90")]
    pub retention_days: u32,
    /// Rows waiting for the writer; past this a row is dropped and counted.
    #[serde(default = "d10k")]
    pub queue: usize,
    /// A fleet's shared log: a PostgreSQL connection URL
    /// (`postgres://callguard@db.example.net:5432/callguard`). When set, decisions go
    /// there instead of `path`, and it is the store of record for the lists, their
    /// history and the velocity blocks (docs/scaling.md; `path` then names where the
    /// instance caches the lists: `<path>.lists/`). Keep the password out of it: see
    /// `postgres_password_env`.
    #[serde(default)]
    pub postgres: Option<S<String>>,
    /// The environment variable holding the PostgreSQL password (else `PGPASSWORD`).
    #[serde(default)]
    pub postgres_password_env: Option<String>,
}

impl LogConfig {
    /// The parsed `log.postgres`, with its password from the environment; `None`
    /// when unset (the SQLite file is the log).
    pub(crate) fn postgres_target(&self) -> Option<Result<crate::store::PgTarget, String>> {
        let url = self.postgres.as_ref()?;
        Some(crate::store::PgTarget::parse(
            &url.value,
            self.postgres_password_env.as_deref(),
        ))
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            path: default_log_path(),
            retention_days: d90(),
            queue: d10k(),
            postgres: None,
            postgres_password_env: None,
        }
    }
}

/// `metrics:`, read once at start (the label sets of the families are fixed
/// for the life of the process; a change is reported as "restart required").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Add a `tenant` label to the decision metrics (`callguard_calls_total`,
    /// `callguard_rule_hits_total`): one series per tenant as well. Off by
    /// default, so the number of series stays bounded and existing
    /// dashboards keep their label sets.
    #[serde(default)]
    pub tenant_label: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    #[serde(default = "d90")]
    pub retention_days: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            retention_days: d90(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// On SIGTERM: how long calls in progress may take to finish.
    #[serde(default = "d10s", deserialize_with = "duration")]
    pub grace_period: Duration,
    /// Debounce for file-change events before a reload.
    #[serde(default = "d200ms", deserialize_with = "duration")]
    pub reload_debounce: Duration,
    /// How often rows past `log.retention_days` are purged.
    #[serde(default = "d1h", deserialize_with = "duration")]
    pub retention_interval: Duration,
}

duration_default!(d200ms, 200);
duration_default!(d1h, 3_600_000);

impl Default for ServerConfig {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults")
    }
}

fn d1m_steps() -> usize {
    1_000_000
}

/// Knobs of the matcher itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyTuning {
    /// Backtracking budget of a look-around regex per match; past it the
    /// decision errors and the call fails open (or closed).
    #[serde(default = "d1m_steps")]
    pub regex_backtrack_limit: usize,
}

impl Default for PolicyTuning {
    fn default() -> Self {
        Self {
            regex_backtrack_limit: d1m_steps(),
        }
    }
}

/// Durations as humans write them: `2s`, `100ms`, `1h`.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim())
        .map_err(|e| serde::de::Error::custom(format!("bad duration {s:?}: {e}")))
}

pub(crate) fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// Loopback only, unless the operator lists the PBX hosts.
fn loopback() -> Vec<S<String>> {
    ["127.0.0.0/8", "::1/128"]
        .into_iter()
        .map(|a| {
            Spanned::new(
                a.to_string(),
                serde_saphyr::Location::UNKNOWN,
                serde_saphyr::Location::UNKNOWN,
            )
        })
        .collect()
}
duration_default!(d2s, 2_000);
duration_default!(d100ms, 100);
duration_default!(d10s, 10_000);
duration_default!(d30s, 30_000);
fn d10k() -> usize {
    10_000
}
fn d64k() -> usize {
    64 * 1024
}
fn d1m() -> usize {
    1024 * 1024
}
fn d5() -> u32 {
    5
}
fn d32m() -> usize {
    32 * 1024 * 1024
}
