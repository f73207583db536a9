//! Driving a decided call's plan: one step, a bridge's `on_no_answer`, or a
//! challenge and what follows it (`on_pass` / `on_fail`, and learning from
//! it through `crate::velocity::learn`).

use std::sync::Arc;

use chrono::Utc;

use super::{CallDriver, DriveError, StepOutcome};
use crate::action::{Plan, Step};
use crate::outcome::EndState;
use crate::policy::decide::Verdict;
use crate::state::State;

/// What running a plan needs beyond the plan: where to count, and the
/// trunk's blocked action for a failed challenge.
pub(super) struct RunCtx<'a> {
    pub state: &'a State,
    pub trunk: String,
    pub blocked: Option<Arc<Plan>>,
    /// The caller's number (E.164 when known), for learning from challenges.
    pub caller: String,
}

/// Runs the plan; a challenge runs `on_pass` / `on_fail` after it.
pub(super) async fn run_plan<D: CallDriver>(
    driver: &mut D,
    plan: &Plan,
    ctx: &RunCtx<'_>,
) -> Result<EndState, DriveError> {
    if plan.advise {
        return Ok(EndState::Advised);
    }
    let Step::Challenge(c) = &plan.step else {
        return run_simple(driver, plan).await;
    };
    let digit = c.draw();
    let count = |result: &str| {
        ctx.state
            .metrics
            .challenges_total
            .with_label_values(&[ctx.trunk.as_str(), result])
            .inc();
    };
    let passed = match driver.challenge(c, digit).await {
        Ok(p) => p,
        Err(e) => {
            if matches!(e, DriveError::Hangup { .. }) {
                count("abandoned");
            }
            return Err(e);
        }
    };
    count(if passed { "passed" } else { "failed" });
    if let Some(learn) = &c.learn {
        crate::velocity::learn(
            &ctx.state.extras.velocity,
            learn,
            &plan.action,
            &ctx.caller,
            passed,
            Utc::now(),
        )
        .await;
    }
    let next = if passed {
        Some(c.on_pass.clone())
    } else {
        c.on_fail.clone().or_else(|| ctx.blocked.clone())
    };
    // The dialplan sees the outcome: a passed caller must not be taken for
    // blocked by the snippet when the call goes back to it.
    let next_name = next.as_ref().map_or("pass", |p| &*p.action);
    let verdict = match (&next, passed) {
        (_, true) => Verdict::Allow,
        (Some(p), false) if matches!(p.step, Step::Continue) && !p.advise => Verdict::Allow,
        _ => Verdict::Block,
    };
    driver
        .set_vars(&[
            ("VERDICT", verdict.as_str()),
            ("ACTION", next_name),
            ("CHALLENGE", if passed { "passed" } else { "failed" }),
        ])
        .await?;
    if let Some(next) = next
        && !next.advise
    {
        run_simple(driver, &next).await?;
    }
    Ok(if passed {
        EndState::ChallengePassed
    } else {
        EndState::ChallengeFailed
    })
}

/// Runs a plan without a challenge; a bridge nobody answered falls back to
/// `on_no_answer`.
async fn run_simple<D: CallDriver>(driver: &mut D, plan: &Plan) -> Result<EndState, DriveError> {
    if plan.advise {
        return Ok(EndState::Advised);
    }
    match driver.execute(&plan.step).await? {
        StepOutcome::Completed => Ok(EndState::Completed),
        StepOutcome::Answered { status } => Ok(EndState::Dial { status, then: None }),
        StepOutcome::NotAnswered { status } => match &plan.step {
            Step::Bridge {
                on_no_answer: Some(next),
                ..
            } => {
                driver.execute(&next.step).await?;
                Ok(EndState::Dial {
                    status,
                    then: Some(next.action.clone()),
                })
            }
            _ => Ok(EndState::Dial { status, then: None }),
        },
    }
}
