//! The SIP edge as one more driver of the shared flow: a proxy (Kamailio)
//! asks before the call reaches a PBX. The call is screened by the same
//! [`screen`] as a PBX session (trunk, attestation, decide with a deadline,
//! velocity, metrics under `pbx="kamailio"`, the decision log), and its plan
//! becomes a SIP answer instead of PBX commands: the action's
//! [`EdgeStep`] refuses the INVITE with a code, hands the call on to the
//! PBX (actions that need media), or lets it through.

use std::time::{Duration, Instant};

use super::screen::{Screened, screen};
use super::{CallDriver, CallInfo, DriveError, StepOutcome};
use crate::action::{Challenge, EdgeStep, Pbx, Step, Via};
use crate::calllog::CallEnd;
use crate::outcome::EndState;
use crate::policy::attest::IdentityInputs;
use crate::state::State;

/// The headers an answer asks the proxy to add to a relayed INVITE.
pub(crate) const VERDICT_HEADER: &str = "X-Callguard-Verdict";
pub(crate) const RULE_HEADER: &str = "X-Callguard-Rule";
pub(crate) const REASON_HEADER: &str = "X-Callguard-Reason";
pub(crate) const ACTION_HEADER: &str = "X-Callguard-Action";

/// The edge's answer for one INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EdgeAnswer {
    /// `allow` or `block`, as decided (a handed-on voicemail is a block).
    pub verdict: &'static str,
    pub step: EdgeStep,
    pub action: String,
    pub rule: String,
    pub list: String,
    pub reason: String,
    /// No decision was made (`fail:` applied).
    pub undecided: bool,
}

impl EdgeAnswer {
    /// The SIP final code and reason phrase of a refusal.
    pub(crate) fn refusal(&self) -> Option<(u16, &'static str)> {
        match self.step {
            EdgeStep::Refuse { code } => Some((code, EdgeStep::reason_phrase(code))),
            _ => None,
        }
    }

    /// The headers for the PBX on a relayed call (none on a refusal):
    /// verdict, rule and reason, and the action when the PBX must run it.
    /// Values are single-line and bounded, safe to append to a SIP message.
    pub(crate) fn headers(&self) -> Vec<(&'static str, String)> {
        if self.refusal().is_some() {
            return Vec::new();
        }
        let mut h = vec![
            (VERDICT_HEADER, self.verdict.to_string()),
            (RULE_HEADER, header_value(&self.rule)),
            (REASON_HEADER, header_value(&self.reason)),
        ];
        if self.step == EdgeStep::HandOn {
            h.push((ACTION_HEADER, header_value(&self.action)));
        }
        h
    }
}

/// A header value: control characters (CR, LF, …) become spaces, at most
/// 200 bytes (cut on a character boundary), trimmed.
pub(crate) fn header_value(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > 200 {
        let mut end = 200;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out.trim().to_string()
}

/// The driver the shared screening sees for an edge call: it knows the
/// caller ID's signature from the request and drives nothing.
struct EdgeCall {
    identity: IdentityInputs,
}

impl CallDriver for EdgeCall {
    fn pbx(&self) -> Pbx {
        Via::Edge.plan_pbx()
    }

    async fn set_vars(&mut self, _vars: &[(&'static str, &str)]) -> Result<(), DriveError> {
        Ok(())
    }

    async fn execute(&mut self, _step: &Step) -> Result<StepOutcome, DriveError> {
        Err(DriveError::Protocol("the SIP edge drives no plan".into()))
    }

    async fn challenge(&mut self, _c: &Challenge, _digit: u8) -> Result<bool, DriveError> {
        Err(DriveError::Protocol(
            "the SIP edge runs no challenge".into(),
        ))
    }

    async fn identity(&mut self, _info: &CallInfo) -> Result<IdentityInputs, DriveError> {
        Ok(self.identity.clone())
    }
}

/// Screens one INVITE at the edge: the shared screening, one log row
/// (`pbx = kamailio`, ended `sip:CODE`, `handed_on`, `relayed` or
/// `fail_open`), and the answer for the proxy.
pub(crate) async fn decide(
    info: &CallInfo,
    identity: IdentityInputs,
    state: &State,
    decide_timeout: Duration,
) -> EdgeAnswer {
    let started = Instant::now();
    let mut driver = EdgeCall { identity };
    let Screened {
        row, error, edge, ..
    } = screen(&mut driver, info, state, Via::Edge, decide_timeout).await;
    let step = edge.unwrap_or(EdgeStep::Pass);
    let end = match step {
        EdgeStep::Refuse { code } => EndState::EdgeRefused(code),
        EdgeStep::HandOn => EndState::HandedOn,
        EdgeStep::Pass if error.is_some() => EndState::FailOpen,
        EdgeStep::Pass => EndState::Relayed,
    };
    let answer = EdgeAnswer {
        verdict: row.verdict.as_str(),
        step,
        action: row.action.as_str().to_string(),
        rule: row.rule.clone().unwrap_or_default(),
        list: if error.is_some() {
            String::new()
        } else {
            row.list.as_str().to_string()
        },
        reason: row.reason.clone(),
        undecided: error.is_some(),
    };
    if let Some(log) = &state.log {
        log.record(row.into_record());
        log.finish(CallEnd {
            unique_id: info.unique_id.clone(),
            end_state: end.as_str().into_owned(),
            hangup_cause: None,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    answer
}

/// Runs the plan of `action`, which the edge decided and handed on
/// (`X-Callguard-Action`), on the PBX: the call was screened, counted and
/// logged once, at the edge, so nothing is decided, counted or logged here.
/// `None` when the rules have no such action (any more): the call is then
/// screened as usual.
pub(crate) async fn hand_over<D: CallDriver>(
    driver: &mut D,
    action: &str,
    state: &State,
) -> Option<super::CallOutcome> {
    let snap = state.snapshot();
    let plan = snap
        .rules
        .actions
        .iter()
        .find(|a| &*a.name == action.trim())?
        .plan(driver.pbx())
        .clone();
    drop(snap);
    let vars = [
        ("VERDICT", "block"),
        ("ACTION", &*plan.action),
        ("RULE", ""),
        ("LIST", ""),
        ("REASON", "decided at the SIP edge"),
    ];
    let ctx = super::run::RunCtx {
        state,
        trunk: String::new(),
        blocked: None,
        caller: String::new(),
    };
    let result = match driver.set_vars(&vars).await {
        Ok(()) => super::run::run_plan(driver, &plan, &ctx).await,
        Err(e) => Err(e),
    };
    let (end_state, hangup_cause) = match result {
        Ok(s) => (s, None),
        Err(DriveError::Hangup { cause }) => (EndState::CallerHangup, cause),
        Err(e) => {
            tracing::info!(pbx = driver.pbx().as_str(), "handed-on call ended: {e}");
            (EndState::Error(e.kind()), None)
        }
    };
    Some(super::CallOutcome {
        end_state,
        hangup_cause,
        verdict: super::RowVerdict::Block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(step: EdgeStep) -> EdgeAnswer {
        EdgeAnswer {
            verdict: "block",
            step,
            action: "vm".into(),
            rule: "spam\r\nX-Callguard-Verdict: allow".into(),
            list: "blacklist".into(),
            reason: "blacklist rule".into(),
            undecided: false,
        }
    }

    #[test]
    fn a_refusal_has_a_code_and_no_headers() {
        let a = answer(EdgeStep::Refuse { code: 603 });
        assert_eq!(a.refusal(), Some((603, "Decline")));
        assert!(a.headers().is_empty());
    }

    #[test]
    fn headers_are_single_line_and_name_a_handed_on_action() {
        let h = answer(EdgeStep::HandOn).headers();
        assert_eq!(h[0], (VERDICT_HEADER, "block".to_string()));
        assert_eq!(
            h[1],
            (RULE_HEADER, "spam  X-Callguard-Verdict: allow".to_string())
        );
        assert_eq!(h[3], (ACTION_HEADER, "vm".to_string()));
        assert_eq!(answer(EdgeStep::Pass).headers().len(), 3);
        assert_eq!(header_value(&"é".repeat(150)).len(), 200);
    }
}
