//! The one per-call flow that both PBX drivers share:
//! trunk selection → decide (with a deadline) → set variables → drive the plan
//! → record metrics and the log. A driver only knows its wire protocol and how
//! to execute one [`Step`]; it knows nothing of rules.

use crate::action::{Pbx, Step};

/// What a driver has read of a call before anything is decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallInfo {
    /// The PBX's id of the call.
    pub unique_id: String,
    /// The caller ID as received (trimmed); empty when absent.
    pub caller: String,
    pub caller_name: String,
    /// The PBX flagged the caller's presentation as restricted or unavailable.
    pub presentation_restricted: bool,
    /// Dialled-number candidates in order of preference (e.g. `agi_dnid`, then
    /// `agi_extension`); empty or `unknown` entries are skipped.
    pub dids: Vec<String>,
    /// A trunk named by the dialplan (`?trunk=`, `agi_arg_N`, `callguard_trunk`).
    pub trunk_hint: Option<String>,
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step ran; the call goes on (or was ended by the step itself).
    Completed,
    /// A bridge that nobody answered, with the PBX's dial status
    /// (`NOANSWER`, `BUSY`, `CHANUNAVAIL`, … / FreeSWITCH's cause).
    NotAnswered { status: String },
    /// A bridge that was answered and has ended.
    Answered { status: String },
}

/// Why a driver could not carry on.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The caller hung up while the session was running.
    #[error("caller hung up{}", cause.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Hangup { cause: Option<String> },
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("connection closed by the PBX")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Executes plans on one PBX session.
#[allow(async_fn_in_trait)]
pub trait CallDriver {
    fn pbx(&self) -> Pbx;

    /// Sets channel variables. `vars` are (suffix, value) pairs such as
    /// `("VERDICT", "block")`; the driver spells the full name its own way
    /// (`CALLGUARD_VERDICT` for Asterisk, `callguard_verdict` for FreeSWITCH)
    /// and escapes the value.
    async fn set_vars(&mut self, vars: &[(&'static str, &str)]) -> Result<(), DriveError>;

    /// Executes one step and waits until it is done.
    async fn execute(&mut self, step: &Step) -> Result<StepOutcome, DriveError>;
}
