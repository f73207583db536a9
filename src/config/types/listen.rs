//! The listeners' settings: addresses (`listen:`), FastAGI (`agi:`), outbound
//! ESL (`esl:`) and the SIP edge (`edge:`).

use std::time::Duration;

use serde::Deserialize;

use super::*;

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

/// `edge:`: the decision endpoint for SIP proxies (`POST /api/v1/edge/decide`
/// on `listen.http`). Proxies are allowed by source address, not by token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Proxies allowed to ask: addresses or CIDRs (loopback by default).
    /// Any other source gets 403. Not subject to `http.protect_reads`.
    #[serde(default = "loopback")]
    pub allow: Vec<S<String>>,
    /// Time allowed for a decision before failing open (or closed).
    #[serde(default = "d100ms", deserialize_with = "duration")]
    pub decide_timeout: Duration,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults")
    }
}

impl Default for EslConfig {
    fn default() -> Self {
        serde_saphyr::from_str("{}").expect("defaults")
    }
}
