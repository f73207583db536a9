//! `actions:`: what is done with a call, per kind, with its PBX overrides and learning.

use super::*;

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
    /// reject: the SIP final code the SIP edge (Kamailio) refuses the call
    /// with, e.g. 603 (default: 486 for `tone: busy`, 503 for `congestion`,
    /// the cause's code for `hangup`). The PBXs use `tone` / `cause`.
    pub sip_code: Option<u16>,
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
    pub(crate) fn millis(&self) -> Result<u64, String> {
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
