//! Screening one call before anything is sent to the PBX: choose the trunk,
//! read the attestation when a rule needs it, decide within the deadline,
//! apply velocity (`crate::velocity::apply`), or apply `fail:` when no
//! decision was made. Counts the call and fills its typed log row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::CallDriver;
use super::CallInfo;
use super::row::{Row, RowAction, RowList, RowVerdict};
use crate::action::{EdgeStep, Plan, Via};
use crate::config::types::FailMode;
use crate::outcome::FailReason;
use crate::policy::attest::Attestation;
use crate::policy::decide::{Decision, Verdict, decide_screened};
use crate::policy::index::MatchError;
use crate::policy::reputation::{CallerFacts, RepAnswer};
use crate::policy::ruleset::{TenantBy, TrunkId, UserId};
use crate::state::{Snapshot, State};

/// What screening decided for one call, before anything is sent: the plan
/// to drive and the log row, whose fields are also the channel variables.
pub(super) struct Screened {
    pub row: Row,
    /// `None`: fail open, nothing to drive.
    pub plan: Option<Arc<Plan>>,
    /// Set when no decision was made.
    pub error: Option<FailReason>,
    /// The trunk's blocked action: a failed challenge's default `on_fail`.
    pub blocked: Option<Arc<Plan>>,
    /// What the SIP edge does with the action decided (or applied by
    /// `fail: closed`); `None`: fail open.
    pub edge: Option<EdgeStep>,
    /// The looked-up caller name to set on the channel (`reputation.set_caller_name`).
    pub caller_name: Option<String>,
}

/// Chooses the trunk and decides within the deadline; on failure applies
/// `fail:`. Counts the call and fills its log row.
pub(super) async fn screen<D: CallDriver>(
    driver: &mut D,
    info: &CallInfo,
    state: &State,
    via: Via,
    decide_timeout: Duration,
) -> Screened {
    let pbx = via.plan_pbx();
    let snap: Arc<Snapshot> = state.snapshot();
    let rs = &snap.rules;
    // The tenant (named by the dialplan, or by the FreeSWITCH domain), then
    // the trunk within it: map lookups, no round trip.
    let (tenant, by) = rs.choose_tenant(info.tenant_hint.as_deref(), info.domain.as_deref());
    if by == TenantBy::Unknown {
        tracing::info!(pbx = pbx.as_str(), call = ?info.unique_id, tenant = ?info.tenant_hint, "no such tenant: the default tenant screens the call");
    }
    let choice = rs.choose_trunk_in(
        tenant,
        info.trunk_hint.as_deref(),
        info.dids.iter().map(String::as_str),
    );
    // The user the call is for, in the trunk's tenant.
    let user = choice.trunk.and_then(|t| {
        rs.tenant(rs.trunk(t).tenant)
            .user_for(info.dids.iter().map(String::as_str))
    });
    let trunk = choice.trunk;
    // A call to a user: attributed to the user's extension (what `*32`
    // blocks), and whether the user dialled the caller (`dialled_numbers`).
    let dialled = match (trunk, user) {
        (Some(t), Some(u)) => {
            let tenant = rs.tenant(rs.trunk(t).tenant);
            let caller = rs
                .trunk(t)
                .dialing
                .normalize(&info.caller, info.presentation_restricted);
            let settings = snap.service.features.of_tenant(&tenant.name);
            let who = (&*tenant.name, &*tenant.user(u).ext);
            super::feature::on_screen(state, who, settings, info, &caller)
        }
        _ => false,
    };
    // A trunk the dialplan names but the config lacks: warned, counted, and
    // said in the call's reason (the call goes on with the trunk chosen instead).
    let trunk_note = choice.note(rs);
    if let Some(note) = &trunk_note {
        warn_unknown_trunk(state, via, &info.unique_id, note);
        state
            .metrics
            .unknown_trunk_total
            .with_label_values(&[via.as_str()])
            .inc();
    }
    let mut looked_up = None;
    let decided = match trunk {
        None => Err((
            FailReason::NoTrunk,
            match &trunk_note {
                Some(note) => format!("no trunk selected ({note})"),
                None => "no trunk selected (no trunk named, no DID matched, no default_trunk)"
                    .to_string(),
            },
        )),
        Some(t) => {
            let attestation = if rs.trunk(t).needs_attestation {
                Some(match driver.identity(info).await {
                    Ok(inputs) => crate::policy::attest::attestation(&inputs),
                    Err(e) => {
                        tracing::info!(pbx = via.as_str(), call = ?info.unique_id, "caller ID attestation not read: {e}");
                        Attestation::unsigned()
                    }
                })
            } else {
                None
            };
            let started = Instant::now();
            looked_up = super::lookup::lookup(state, rs, t, info, decide_timeout).await;
            let answer = looked_up.as_ref().and_then(|l| l.answer.clone());
            // The decision gets what the lookup left of the deadline.
            let left = match &looked_up {
                Some(_) => decide_timeout.saturating_sub(started.elapsed()),
                None => decide_timeout,
            };
            match decide_with_deadline(&snap, (t, user), info, (attestation, answer), left).await {
                // Velocity counts in the async flow: a shared counter in Redis
                // is bounded by `velocity_limits.redis_timeout`, in memory past it.
                Ok((d, elapsed)) => {
                    let d = match dialled {
                        true => crate::policy::feature::allow_dialled(rs, d),
                        false => d,
                    };
                    let applied =
                        crate::velocity::apply(&state.extras.velocity, rs, d, Utc::now()).await;
                    if let Some((trunk, rule)) = &applied.tripped {
                        state
                            .metrics
                            .velocity_blocks_total
                            .with_label_values(&[&**trunk, &**rule])
                            .inc();
                    }
                    Ok((applied.decision, elapsed, applied.note))
                }
                Err(e) => Err(e),
            }
        }
    };
    let did = info
        .dids
        .iter()
        .find(|d| !d.is_empty() && *d != "unknown")
        .cloned()
        .unwrap_or_default();
    // The tenant of the trunk (else the one recognised) and the user, named
    // in the log row; the default tenant is stored empty.
    let tenant_id = trunk.map_or(tenant, |t| rs.trunk(t).tenant);
    let scope_tenant = (tenant_id != 0).then(|| rs.tenant(tenant_id).name.clone());
    let scope_user = user.map(|u| rs.tenant(tenant_id).user(u).ext.clone());
    let mut row = Row {
        time: Utc::now(),
        unique_id: info.unique_id.clone(),
        pbx: via,
        trunk: trunk
            .map(|t| rs.trunk(t).name.to_string())
            .unwrap_or_default(),
        did,
        caller_raw: info.caller.clone(),
        caller_e164: None,
        caller_name: info.caller_name.clone(),
        anonymous: info.presentation_restricted,
        verdict: RowVerdict::Allow,
        list: RowList::Failed,
        list_name: String::new(),
        rule: None,
        action: RowAction::NoneFailOpen,
        reason: String::new(),
        decision_ns: 0,
        fail_open: false,
        tenant: scope_tenant,
        user: scope_user,
    };
    match decided {
        Ok((d, elapsed, velocity_note)) => {
            state
                .metrics
                .decision_duration
                .observe(elapsed.as_secs_f64());
            state.metrics.count_call(&snap.handles, rs, via, &d);
            let action = rs.action(d.action);
            let reason = match velocity_note {
                Some(v) => format!("{}: {v}", d.reason(rs)),
                None => d.reason(rs),
            };
            row.reason = match &trunk_note {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            };
            if let Some(l) = &looked_up {
                row.reason = format!("{}; {}", row.reason, l.note());
            }
            row.caller_e164 = d.caller.e164.clone();
            row.anonymous = d.caller.anonymous;
            row.verdict = d.verdict.into();
            row.list = RowList::Decided(d.list);
            row.rule = d.rule_name(rs).map(str::to_string);
            row.list_name = d
                .rule
                .map(|r| rs.rules.origin(r).list_name.to_string())
                .unwrap_or_default();
            row.action = RowAction::Named(action.name.clone());
            row.decision_ns = elapsed.as_nanos() as u64;
            Screened {
                row,
                plan: Some(action.plan(pbx).clone()),
                error: None,
                blocked: Some(
                    rs.action(rs.trunk(d.trunk).blocked_action)
                        .plan(pbx)
                        .clone(),
                ),
                edge: Some(action.edge),
                caller_name: super::lookup::name_to_set(state, looked_up.as_ref()),
            }
        }
        Err((why, detail)) => {
            tracing::warn!(pbx = via.as_str(), call = ?info.unique_id, reason = why.as_str(), "cannot decide: {detail}");
            let closed = rs.fail == FailMode::Closed;
            let (verdict, plan, edge) = if closed {
                let action = trunk.map_or(rs.system_blocked_action, |t| rs.trunk(t).blocked_action);
                (
                    Verdict::Block,
                    Some(rs.action(action).plan(pbx).clone()),
                    Some(rs.action(action).edge),
                )
            } else {
                (Verdict::Allow, None, None)
            };
            let action = plan.as_ref().map_or(RowAction::NoneFailOpen, |p| {
                RowAction::Named(p.action.clone())
            });
            let trunk_name = trunk.map_or("", |t| &*rs.trunk(t).name);
            state.metrics.count_undecided(
                via,
                (trunk_name, &rs.tenant(tenant_id).name),
                verdict.as_str(),
                action.as_str(),
                why,
                closed,
            );
            row.verdict = verdict.into();
            row.list = RowList::Failed;
            row.action = action;
            row.reason = format!("fail {}: {detail}", if closed { "closed" } else { "open" });
            row.fail_open = !closed;
            let blocked = trunk.map(|t| rs.action(rs.trunk(t).blocked_action).plan(pbx).clone());
            if let Some(l) = &looked_up {
                row.reason = format!("{}; {}", row.reason, l.note());
            }
            Screened {
                row,
                plan,
                error: Some(why),
                blocked,
                edge,
                caller_name: super::lookup::name_to_set(state, looked_up.as_ref()),
            }
        }
    }
}

/// Warns of a trunk the dialplan names but the config lacks, at most once a
/// minute: a dialplan with that typo names it on every call, and
/// `callguard_unknown_trunk_total` counts them all (a warning per call would
/// flood the log, thousands of lines a minute on a busy line).
fn warn_unknown_trunk(state: &State, via: Via, unique_id: &str, note: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if state.unknown_trunk_warning.due(now, 60) {
        tracing::warn!(
            pbx = via.as_str(),
            call = ?unique_id,
            "{note} (said at most once a minute; callguard_unknown_trunk_total counts every call)"
        );
    }
}

/// Decides within `timeout`. A rule set with no look-around rule decides in
/// time linear in the caller (microseconds): on the runtime, inline, with no
/// thread hop (issue 26); past the deadline its decision still counts as
/// none, as it would have on the blocking pool. Otherwise on a blocking
/// thread, so that a pathological pattern cannot stall the runtime, giving
/// up after `timeout` (the thread finishes on its own).
async fn decide_with_deadline(
    snap: &Arc<Snapshot>,
    (trunk, user): (TrunkId, Option<UserId>),
    info: &CallInfo,
    (attestation, answer): (Option<Attestation>, Option<Arc<RepAnswer>>),
    timeout: Duration,
) -> Result<(Decision, Duration), (FailReason, String)> {
    let timed_out = || {
        Err((
            FailReason::Timeout,
            format!("no decision within {timeout:?}"),
        ))
    };
    let done = |d: Result<Decision, MatchError>, elapsed| match d {
        Ok(d) => Ok((d, elapsed)),
        Err(e) => Err((FailReason::Error, e.to_string())),
    };
    if snap.decide_inline {
        let start = Instant::now();
        let facts = CallerFacts {
            pbx_name: &info.caller_name,
            answer: answer.as_deref(),
        };
        let d = decide_screened(
            &snap.rules,
            (trunk, user),
            &info.caller,
            info.presentation_restricted,
            attestation.as_ref(),
            facts,
            Utc::now(),
        );
        let elapsed = start.elapsed();
        return if elapsed > timeout {
            timed_out()
        } else {
            done(d, elapsed)
        };
    }
    let snap = snap.clone();
    let caller = info.caller.clone();
    let pbx_name = info.caller_name.clone();
    let restricted = info.presentation_restricted;
    let job = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let facts = CallerFacts {
            pbx_name: &pbx_name,
            answer: answer.as_deref(),
        };
        let d = decide_screened(
            &snap.rules,
            (trunk, user),
            &caller,
            restricted,
            attestation.as_ref(),
            facts,
            Utc::now(),
        );
        (d, start.elapsed())
    });
    match tokio::time::timeout(timeout, job).await {
        Ok(Ok((d, elapsed))) => done(d, elapsed),
        Ok(Err(e)) => Err((FailReason::Error, format!("decision task failed: {e}"))),
        Err(_) => timed_out(),
    }
}
