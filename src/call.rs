//! The one per-call flow that both PBX drivers share:
//! trunk selection → decide (with a deadline) → set variables → drive the plan
//! → record metrics and the log. A driver only knows its wire protocol and how
//! to execute one [`Step`]; it knows nothing of rules.

use crate::action::{Challenge, Pbx, Step};
use crate::policy::attest::IdentityInputs;

pub(crate) mod edge;
pub(crate) mod feature;
mod lookup;
mod row;
mod run;
mod screen;
pub(crate) mod unscreened;

/// What a driver has read of a call before anything is decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CallInfo {
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
    /// A tenant named by the dialplan (`?tenant=`, `tenant=`, `callguard_tenant`).
    pub tenant_hint: Option<String>,
    /// The FreeSWITCH domain of the call (`variable_domain_name`): selects
    /// the tenant whose `domains:` has it.
    pub domain: Option<String>,
    /// SIP headers the driver had at hand (FreeSWITCH channel data), for
    /// the caller ID's attestation.
    pub pai: Option<String>,
    pub from: Option<String>,
    /// The action the SIP edge already decided and handed on to the PBX
    /// (`X-Callguard-Action`, passed by the snippet as `?edge_action=` /
    /// `callguard_edge_action` for calls from the proxy): run its plan
    /// without deciding or logging the call a second time.
    pub edge_action: Option<String>,
    /// A feature code or a note from the dialplan (`agi://…/feature?op=…`,
    /// `callguard_feature`), not a call to screen.
    pub feature: Option<feature::FeatureRequest>,
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StepOutcome {
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
pub(crate) enum DriveError {
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
pub(crate) trait CallDriver {
    fn pbx(&self) -> Pbx;

    /// Sets channel variables. `vars` are (suffix, value) pairs such as
    /// `("VERDICT", "block")`; the driver spells the full name its own way
    /// (`CALLGUARD_VERDICT` for Asterisk, `callguard_verdict` for FreeSWITCH)
    /// and escapes the value.
    async fn set_vars(&mut self, vars: &[(&'static str, &str)]) -> Result<(), DriveError>;

    /// Executes one step and waits until it is done.
    async fn execute(&mut self, step: &Step) -> Result<StepOutcome, DriveError>;

    /// Asks the caller for `digit` (answering or in early media), up to the
    /// challenge's tries; true when the caller pressed it.
    async fn challenge(&mut self, c: &Challenge, digit: u8) -> Result<bool, DriveError>;

    /// What the PBX knows of the caller ID's signature (asked only when a
    /// rule of the call's trunk has an `attestation:` condition).
    async fn identity(&mut self, info: &CallInfo) -> Result<IdentityInputs, DriveError>;
}

use std::time::{Duration, Instant};

use crate::calllog::CallEnd;
pub(crate) use crate::outcome::{EndState, ErrorKind};
use crate::state::State;
pub(crate) use lookup::CALLER_NAME_VAR;
pub(crate) use row::RowVerdict;
use run::{RunCtx, run_plan};
use screen::{Screened, screen};

/// How a call's session ended, for the log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallOutcome {
    pub end_state: EndState,
    pub hangup_cause: Option<String>,
    pub verdict: RowVerdict,
}

impl DriveError {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            DriveError::Timeout(_) => ErrorKind::Timeout,
            DriveError::Protocol(_) => ErrorKind::Protocol,
            DriveError::Closed => ErrorKind::Closed,
            DriveError::Io(_) => ErrorKind::Io,
            DriveError::Hangup { .. } => ErrorKind::Hangup,
        }
    }
}

/// Screens one call: the flow both PBX drivers share. Screens (trunk,
/// decision, velocity), sets the variables, logs the decision, then drives
/// the plan and records how the session ended.
pub(crate) async fn handle<D: CallDriver>(
    driver: &mut D,
    info: &CallInfo,
    state: &State,
    decide_timeout: Duration,
) -> CallOutcome {
    let started = Instant::now();
    let pbx = driver.pbx();
    if let Some(req) = &info.feature {
        return feature::serve(driver, req, info, state).await;
    }
    if let Some(name) = &info.edge_action
        && let Some(outcome) = edge::hand_over(driver, name, state).await
    {
        return outcome;
    }
    let screened = screen(driver, info, state, pbx.into(), decide_timeout).await;
    let (vars, n) = screened.row.vars(screened.error);
    let res = match &screened.caller_name {
        // The looked-up name in the same round trip.
        Some(name) => {
            let mut all = vars[..n].to_vec();
            all.push((lookup::CALLER_NAME_VAR, name.as_str()));
            driver.set_vars(&all).await
        }
        None => driver.set_vars(&vars[..n]).await,
    };
    let Screened {
        row,
        plan,
        error,
        blocked,
        ..
    } = screened;
    let verdict = row.verdict;
    let ctx = RunCtx {
        state,
        trunk: row.trunk.clone(),
        blocked,
        caller: row.learnable_caller(),
    };
    if let Some(log) = &state.log {
        log.record(row.into_record());
    }
    let result = match (res, plan) {
        (Err(e), _) => Err(e),
        (Ok(()), None) => Ok(EndState::FailOpen),
        (Ok(()), Some(plan)) => run_plan(driver, &plan, &ctx).await.map(|end| match end {
            EndState::Completed if error.is_some() => EndState::FailClosed,
            end => end,
        }),
    };
    finish(state, info, started, pbx, result, verdict)
}

fn finish(
    state: &State,
    info: &CallInfo,
    started: Instant,
    pbx: Pbx,
    result: Result<EndState, DriveError>,
    verdict: RowVerdict,
) -> CallOutcome {
    let (end_state, hangup_cause) = match result {
        Ok(s) => (s, None),
        Err(DriveError::Hangup { cause }) => (EndState::CallerHangup, cause),
        Err(e) => {
            let kind = e.kind();
            state.metrics.count_session_error(pbx, kind);
            tracing::info!(pbx = pbx.as_str(), call = ?info.unique_id, "session ended: {e}");
            (EndState::Error(kind), None)
        }
    };
    if let Some(log) = &state.log {
        log.finish(CallEnd {
            unique_id: info.unique_id.clone(),
            end_state: end_state.as_str().into_owned(),
            hangup_cause: hangup_cause.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    CallOutcome {
        end_state,
        hangup_cause,
        verdict,
    }
}
