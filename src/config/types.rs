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

/// A value with its line and column in the YAML file.
pub type S<T> = Spanned<T>;

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
}

fn d100k() -> usize {
    100_000
}

/// `velocity_limits: { max_tracked: 100000 }`: the counters live in memory;
/// past `max_tracked` keys, those whose window has passed are dropped first,
/// then the least recently seen.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityLimits {
    #[serde(default = "d100k")]
    pub max_tracked: usize,
}

impl Default for VelocityLimits {
    fn default() -> Self {
        Self {
            max_tracked: d100k(),
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

/// The kind of a named action (`actions.NAME.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Reject,
    Play,
    Voicemail,
    Transfer,
    WhisperBridge,
    Continue,
    /// "Press N to be connected": a digit chosen at random per call.
    Challenge,
}

/// `then:` of a `play` action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Then {
    #[default]
    Hangup,
    Continue,
}

/// `mode:` of an action: `act` drives the call, `advise` only sets variables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionMode {
    #[default]
    Act,
    Advise,
}

/// A Q.850 cause, written as a number (`21`) or a name (`CALL_REJECTED`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CauseValue {
    Code(u16),
    Name(String),
}

/// One named action. A flat struct (rather than an enum per kind) so that a
/// misplaced key is reported by validation with the action's name and kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionConfig {
    pub kind: ActionKind,
    /// reject: busy | congestion | hangup. whisper_bridge: the sound the agent hears.
    pub tone: Option<String>,
    pub cause: Option<CauseValue>,
    /// reject tone duration in seconds before hanging up (Asterisk Busy/Congestion).
    pub seconds: Option<u32>,
    pub sound: Option<String>,
    pub then: Option<Then>,
    /// play: `false` plays the message as early media without answering.
    pub answer: Option<bool>,
    pub mailbox: Option<String>,
    pub target: Option<String>,
    pub dial: Option<String>,
    /// whisper_bridge: ring time in seconds (`30`). challenge: time to press
    /// the digit after each prompt (`5s`, or seconds as a number).
    pub timeout: Option<Seconds>,
    /// whisper_bridge: the action to run when the VIP team does not answer.
    pub on_no_answer: Option<String>,
    /// challenge: the sound asking for the digit ("please press"); the digit
    /// itself is said after it.
    pub prompt: Option<String>,
    /// challenge: the range the digit is drawn from, `1-9` (default).
    pub digits: Option<String>,
    /// challenge: how many prompts before the caller fails (default 2).
    pub tries: Option<u32>,
    /// challenge: the action after the right digit (default `pass`: on into the dialplan).
    pub on_pass: Option<String>,
    /// challenge: the action after a wrong digit or none (default: the trunk's blocked action).
    pub on_fail: Option<String>,
    /// challenge: a sound played after a wrong digit, before the next try.
    pub invalid: Option<String>,
    /// challenge: learn from the outcome (opt-in), see [`LearnConfig`].
    pub learn: Option<LearnConfig>,
    #[serde(default)]
    pub mode: ActionMode,
    pub asterisk: Option<PbxOverride>,
    pub freeswitch: Option<PbxOverride>,
}

/// Per-PBX replacements for the strings that differ between Asterisk and FreeSWITCH.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PbxOverride {
    pub sound: Option<String>,
    pub dial: Option<String>,
    pub tone: Option<String>,
    pub mailbox: Option<String>,
    pub target: Option<String>,
    /// challenge: the prompt on this PBX.
    pub prompt: Option<String>,
    /// challenge: the wrong-digit sound on this PBX.
    pub invalid: Option<String>,
    /// challenge (FreeSWITCH): the file saying the digit, `{digit}` replaced
    /// (default `digits/{digit}.wav`; Asterisk says it with `SAY DIGITS`).
    pub digit_sound: Option<String>,
}

/// A number of seconds written as a number (`30`) or a duration (`5s`, `1500ms`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    Number(u32),
    Text(String),
}

impl Seconds {
    /// The value in milliseconds, or why it is not a duration.
    pub fn millis(&self) -> Result<u64, String> {
        match self {
            Seconds::Number(n) => Ok(u64::from(*n) * 1000),
            Seconds::Text(t) => humantime::parse_duration(t.trim())
                .map(|d| d.as_millis().min(u128::from(u64::MAX)) as u64)
                .map_err(|e| format!("bad duration {t:?}: {e}")),
        }
    }
}

/// `learn:` of a challenge action (opt-in): a caller who fails `fails` times
/// within `per` is added to list `add_failed_to` for `block_for`; a caller who
/// passes is added to `add_passed_to` (a whitelist of verified humans) for
/// `trust_for`. The entries expire by themselves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnConfig {
    #[serde(default = "one")]
    pub fails: u32,
    #[serde(default = "d1h_learn", deserialize_with = "duration")]
    pub per: Duration,
    pub add_failed_to: Option<String>,
    #[serde(default = "d24h", deserialize_with = "duration")]
    pub block_for: Duration,
    pub add_passed_to: Option<String>,
    #[serde(default = "d30d", deserialize_with = "duration")]
    pub trust_for: Duration,
}

fn one() -> u32 {
    1
}
fn d24h() -> Duration {
    Duration::from_secs(86_400)
}
fn d30d() -> Duration {
    Duration::from_secs(30 * 86_400)
}
fn d1h_learn() -> Duration {
    Duration::from_secs(3_600)
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
pub struct ScheduleConfig {
    pub timezone: S<String>,
    #[serde(default)]
    pub open: Vec<WindowConfig>,
    #[serde(default)]
    pub closed_dates: Vec<S<String>>,
}

/// `{ days: mon-fri, from: "08:00", to: "18:00" }`; `days` takes a day, a range
/// (`mon-fri`, `fri-mon`), a comma list (`mon,wed,fri`) or `daily`, or a YAML
/// sequence of those (`[fri, sat]`). Each value keeps its place so a bad time
/// is reported on its own line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    pub days: S<DaysConfig>,
    pub from: S<String>,
    pub to: S<String>,
}

/// The `days:` of a window, as written: `"fri,sat"` or `[fri, sat]` (kept
/// as the comma list both mean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaysConfig(pub String);

impl From<&str> for DaysConfig {
    fn from(s: &str) -> Self {
        DaysConfig(s.to_string())
    }
}

impl<'de> Deserialize<'de> for DaysConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DaysConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("days as text (`mon-fri`, `fri,sat`, `daily`) or a list (`[fri, sat]`)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DaysConfig, E> {
                Ok(DaysConfig(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DaysConfig, A::Error> {
                let mut items: Vec<String> = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(DaysConfig(items.join(",")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `{ outside: NAME }` or `{ inside: NAME }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRef {
    pub inside: Option<String>,
    pub outside: Option<String>,
}

/// The match types of a rule, shared with the list files (`match_type`).
pub use crate::listfile::MatchType;

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
}

fn yes() -> bool {
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

fn default_agi_listen() -> Option<String> {
    Some("127.0.0.1:4573".into())
}
fn default_esl_listen() -> Option<String> {
    Some("127.0.0.1:8084".into())
}
fn default_http_listen() -> Option<String> {
    Some("127.0.0.1:9464".into())
}

/// Listener addresses; `null` turns a listener off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    #[serde(default = "default_agi_listen")]
    pub agi: Option<String>,
    #[serde(default = "default_esl_listen")]
    pub esl: Option<String>,
    #[serde(default = "default_http_listen")]
    pub http: Option<String>,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            agi: default_agi_listen(),
            esl: default_esl_listen(),
            http: default_http_listen(),
        }
    }
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

macro_rules! duration_default {
    ($name:ident, $ms:expr) => {
        fn $name() -> Duration {
            Duration::from_millis($ms)
        }
    };
}
duration_default!(d2s, 2_000);
duration_default!(d100ms, 100);
duration_default!(d10s, 10_000);
duration_default!(d30s, 30_000);

fn d10k() -> usize {
    10_000
}

/// Limits shared by both PBX listeners.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgiConfig {
    /// Time allowed for Asterisk to send the whole environment block.
    #[serde(default = "d2s", deserialize_with = "duration")]
    pub env_timeout: Duration,
    /// Time allowed for a decision before failing open (or closed).
    #[serde(default = "d100ms", deserialize_with = "duration")]
    pub decide_timeout: Duration,
    /// Time allowed for the reply to one command (except Dial / VoiceMail).
    #[serde(default = "d30s", deserialize_with = "duration")]
    pub reply_timeout: Duration,
    #[serde(default = "d10k")]
    pub max_connections: usize,
    /// Peers allowed to connect: addresses or CIDRs, each with its place
    /// in the file so a bad one is reported by `check`.
    #[serde(default = "loopback")]
    pub allow: Vec<S<String>>,
    /// How the CALLGUARD_* variables are set: `one_command` (one `EXEC MSet`, Asterisk 1.6+)
    /// or `per_variable` (one `SET VARIABLE` each, for a PBX without MSet or with
    /// `[compat] res_agi = 1.4`).
    #[serde(default)]
    pub set_vars: SetVars,
}

/// How the call's variables reach the PBX: each command is a round trip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetVars {
    /// All variables in one command (`EXEC MSet` / `multiset`).
    #[default]
    OneCommand,
    /// One command per variable (`SET VARIABLE` / `set`).
    PerVariable,
}

impl Default for AgiConfig {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults")
    }
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EslConfig {
    /// Time allowed for FreeSWITCH to answer `connect`.
    #[serde(default = "d2s", deserialize_with = "duration")]
    pub connect_timeout: Duration,
    #[serde(default = "d100ms", deserialize_with = "duration")]
    pub decide_timeout: Duration,
    /// Time allowed for a command reply or an application's completion
    /// (except bridge / voicemail, which last the call).
    #[serde(default = "d30s", deserialize_with = "duration")]
    pub reply_timeout: Duration,
    #[serde(default = "d10k")]
    pub max_connections: usize,
    /// Peers allowed to connect: addresses or CIDRs, each with its place
    /// in the file so a bad one is reported by `check`.
    #[serde(default = "loopback")]
    pub allow: Vec<S<String>>,
    #[serde(default = "d64k")]
    pub max_header_bytes: usize,
    #[serde(default = "d1m")]
    pub max_body_bytes: usize,
    /// Seconds FreeSWITCH keeps the socket after a hangup so the final events arrive.
    #[serde(default = "d5")]
    pub linger: u32,
    /// How the callguard_* variables are set: `one_command` (`multiset`) or `per_variable`
    /// (`set` each).
    #[serde(default)]
    pub set_vars: SetVars,
}

impl Default for EslConfig {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults")
    }
}

fn d32m() -> usize {
    32 * 1024 * 1024
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
    pub fn unset_token_warnings(&self) -> Vec<String> {
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
    /// there instead of `path` (which still holds the list history). Keep the password
    /// out of it: see `postgres_password_env`.
    #[serde(default)]
    pub postgres: Option<S<String>>,
    /// The environment variable holding the PostgreSQL password (else `PGPASSWORD`).
    #[serde(default)]
    pub postgres_password_env: Option<String>,
}

impl LogConfig {
    /// The parsed `log.postgres`, with its password from the environment; `None`
    /// when unset (the SQLite file is the log).
    pub fn postgres_target(&self) -> Option<Result<crate::store::PgTarget, String>> {
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

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}
