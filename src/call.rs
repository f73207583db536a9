//! The one per-call flow that both PBX drivers share:
//! trunk selection → decide (with a deadline) → set variables → drive the plan
//! → record metrics and the log. A driver only knows its wire protocol and how
//! to execute one [`Step`]; it knows nothing of rules.

use crate::action::{Challenge, Pbx, Step};
use crate::policy::attest::{Attestation, IdentityInputs};

pub mod unscreened;

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
    /// SIP headers the driver had at hand (FreeSWITCH channel data), for
    /// the caller ID's attestation.
    pub pai: Option<String>,
    pub from: Option<String>,
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

    /// Asks the caller for `digit` (answering or in early media), up to the
    /// challenge's tries; true when the caller pressed it.
    async fn challenge(&mut self, c: &Challenge, digit: u8) -> Result<bool, DriveError>;

    /// What the PBX knows of the caller ID's signature (asked only when a
    /// rule of the call's trunk has an `attestation:` condition).
    async fn identity(&mut self, info: &CallInfo) -> Result<IdentityInputs, DriveError>;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::action::Plan;
use crate::calllog::{CallEnd, CallRecord};
use crate::config::types::FailMode;
pub use crate::outcome::{EndState, ErrorKind, FailReason};
use crate::policy::decide::{DecidedBy, Decision, Verdict, decide_attested};
use crate::state::{Snapshot, State};

/// How a call's session ended, for the log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    pub end_state: EndState,
    pub hangup_cause: Option<String>,
    pub verdict: &'static str,
}

impl DriveError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DriveError::Timeout(_) => ErrorKind::Timeout,
            DriveError::Protocol(_) => ErrorKind::Protocol,
            DriveError::Closed => ErrorKind::Closed,
            DriveError::Io(_) => ErrorKind::Io,
            DriveError::Hangup { .. } => ErrorKind::Hangup,
        }
    }
}

/// What screening decided for one call, before anything is sent: the plan
/// to drive and the log row, whose fields are also the channel variables.
struct Screened {
    record: CallRecord,
    /// `None`: fail open, nothing to drive.
    plan: Option<Arc<Plan>>,
    verdict: &'static str,
    /// Set when no decision was made.
    error: Option<FailReason>,
    /// The trunk's blocked action: a failed challenge's default `on_fail`.
    blocked: Option<Arc<Plan>>,
}

impl Screened {
    /// The variables every call gets, decided or not: VERDICT, ACTION, RULE,
    /// LIST, REASON, and ERROR when no decision was made (RULE and LIST then
    /// empty), so a dialplan can rely on each being set.
    fn vars(&self) -> ([(&'static str, &str); 6], usize) {
        let r = &self.record;
        let list = if self.error.is_some() { "" } else { &r.list };
        let vars = [
            ("VERDICT", r.verdict.as_str()),
            ("ACTION", r.action.as_str()),
            ("RULE", r.rule.as_deref().unwrap_or("")),
            ("LIST", list),
            ("REASON", r.reason.as_str()),
            ("ERROR", self.error.map_or("", FailReason::as_str)),
        ];
        (vars, if self.error.is_some() { 6 } else { 5 })
    }
}

/// Screens one call: the flow both PBX drivers share. Decides, sets the
/// variables, logs the decision, then drives the plan.
pub async fn handle<D: CallDriver>(
    driver: &mut D,
    info: &CallInfo,
    state: &State,
    decide_timeout: Duration,
) -> CallOutcome {
    let started = Instant::now();
    let pbx = driver.pbx();
    let screened = screen(driver, info, state, pbx, decide_timeout).await;
    let (vars, n) = screened.vars();
    let res = driver.set_vars(&vars[..n]).await;
    let Screened {
        record,
        plan,
        verdict,
        error,
        blocked,
    } = screened;
    let ctx = RunCtx {
        state,
        trunk: record.trunk.clone(),
        blocked,
        caller: match (&record.caller_e164, record.anonymous) {
            (_, true) => String::new(),
            (Some(e), _) => e.clone(),
            (None, _) => record.caller_raw.clone(),
        },
    };
    log_record(state, record);
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

/// Chooses the trunk and decides within the deadline; on failure applies
/// `fail:`. Counts the call and fills its log row.
async fn screen<D: CallDriver>(
    driver: &mut D,
    info: &CallInfo,
    state: &State,
    pbx: Pbx,
    decide_timeout: Duration,
) -> Screened {
    let snap: Arc<Snapshot> = state.snapshot();
    let rs = &snap.rules;
    let choice = rs.choose_trunk(
        info.trunk_hint.as_deref(),
        info.dids.iter().map(String::as_str),
    );
    let trunk = choice.trunk;
    // A trunk the dialplan names but the config lacks: warned, counted, and
    // said in the call's reason (the call goes on with the trunk chosen instead).
    let trunk_note = choice.note(rs);
    if let Some(note) = &trunk_note {
        warn_unknown_trunk(pbx, &info.unique_id, note);
        state
            .metrics
            .unknown_trunk_total
            .with_label_values(&[pbx.as_str()])
            .inc();
    }
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
                        tracing::info!(pbx = pbx.as_str(), call = ?info.unique_id, "caller ID attestation not read: {e}");
                        Attestation::unsigned()
                    }
                })
            } else {
                None
            };
            decide_with_deadline(&snap, t, info, attestation, decide_timeout)
                .await
                .map(|(d, elapsed)| {
                    let (d, note) = velocity(state, rs, d);
                    (d, elapsed, note)
                })
        }
    };
    let did = info
        .dids
        .iter()
        .find(|d| !d.is_empty() && *d != "unknown")
        .cloned()
        .unwrap_or_default();
    let mut record = CallRecord {
        time: Utc::now(),
        unique_id: info.unique_id.clone(),
        pbx: pbx.as_str().to_string(),
        trunk: trunk
            .map(|t| rs.trunk(t).name.to_string())
            .unwrap_or_default(),
        did,
        caller_raw: info.caller.clone(),
        caller_e164: None,
        caller_name: info.caller_name.clone(),
        anonymous: info.presentation_restricted,
        verdict: String::new(),
        list: String::new(),
        list_name: String::new(),
        rule: None,
        action: String::new(),
        reason: String::new(),
        decision_ns: 0,
        fail_open: false,
    };
    match decided {
        Ok((d, elapsed, velocity_note)) => {
            state
                .metrics
                .decision_duration
                .observe(elapsed.as_secs_f64());
            state.metrics.count_call(&snap.handles, rs, pbx, &d);
            let action = rs.action(d.action);
            let reason = match velocity_note {
                Some(v) => format!("{}: {v}", d.reason(rs)),
                None => d.reason(rs),
            };
            record.reason = match &trunk_note {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            };
            record.caller_e164 = d.caller.e164.clone();
            record.anonymous = d.caller.anonymous;
            record.verdict = d.verdict.as_str().into();
            record.list = d.list.as_str().into();
            record.rule = d.rule_name(rs).map(str::to_string);
            record.list_name = d
                .rule
                .map(|r| rs.rules.origin(r).list_name.to_string())
                .unwrap_or_default();
            record.action = action.name.to_string();
            record.decision_ns = elapsed.as_nanos() as u64;
            Screened {
                record,
                plan: Some(action.plan(pbx).clone()),
                verdict: d.verdict.as_str(),
                error: None,
                blocked: Some(
                    rs.action(rs.trunk(d.trunk).blocked_action)
                        .plan(pbx)
                        .clone(),
                ),
            }
        }
        Err((why, detail)) => {
            tracing::warn!(pbx = pbx.as_str(), call = ?info.unique_id, reason = why.as_str(), "cannot decide: {detail}");
            let closed = rs.fail == FailMode::Closed;
            let (verdict, plan) = if closed {
                let action = trunk.map_or(rs.system_blocked_action, |t| rs.trunk(t).blocked_action);
                ("block", Some(rs.action(action).plan(pbx).clone()))
            } else {
                ("allow", None)
            };
            let action_name = plan
                .as_ref()
                .map_or("pass".to_string(), |p| p.action.to_string());
            let trunk_name = trunk.map_or("", |t| &*rs.trunk(t).name);
            state
                .metrics
                .count_undecided(pbx, trunk_name, verdict, &action_name, why, closed);
            record.verdict = verdict.into();
            record.list = "fail".into();
            record.action = action_name;
            record.reason = format!("fail {}: {detail}", if closed { "closed" } else { "open" });
            record.fail_open = !closed;
            let blocked = trunk.map(|t| rs.action(rs.trunk(t).blocked_action).plan(pbx).clone());
            Screened {
                record,
                plan,
                verdict,
                error: Some(why),
                blocked,
            }
        }
    }
}

/// Warns of a trunk the dialplan names but the config lacks, at most once a
/// minute: a dialplan with that typo names it on every call, and
/// `callguard_unknown_trunk_total` counts them all (a warning per call would
/// flood the log, thousands of lines a minute on a busy line).
fn warn_unknown_trunk(pbx: crate::action::Pbx, unique_id: &str, note: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_WARNED: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_WARNED.load(Ordering::Relaxed);
    let due = last == 0 || now >= last.saturating_add(60);
    if due
        && LAST_WARNED
            .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(
            pbx = pbx.as_str(),
            call = ?unique_id,
            "{note} (said at most once a minute; callguard_unknown_trunk_total counts every call)"
        );
    }
}

/// What running a plan needs beyond the plan: where to count, and the
/// trunk's blocked action for a failed challenge.
struct RunCtx<'a> {
    state: &'a State,
    trunk: String,
    blocked: Option<Arc<Plan>>,
    /// The caller's number (E.164 when known), for learning from challenges.
    caller: String,
}

/// Runs the plan; a challenge runs `on_pass` / `on_fail` after it.
async fn run_plan<D: CallDriver>(
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
        learn_from(ctx, &plan.action, learn, passed);
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
        (_, true) => "allow",
        (Some(p), false) if matches!(p.step, Step::Continue) && !p.advise => "allow",
        _ => "block",
    };
    driver
        .set_vars(&[
            ("VERDICT", verdict),
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

/// Key prefixes of learned entries in the velocity store.
const LEARNED_BLOCK: &str = "learned-block";
const LEARNED_TRUST: &str = "learned-trust";

/// Opt-in learning from a challenge: `fails` failures within `per` put the
/// caller in `add_failed_to` for `block_for`; a pass puts it in
/// `add_passed_to` (verified humans) for `trust_for`. The entries are kept
/// with the velocity blocks (same store, same expiry), named by the list.
fn learn_from(ctx: &RunCtx<'_>, action: &str, learn: &crate::action::Learn, passed: bool) {
    if ctx.caller.is_empty() {
        return;
    }
    let tracker = &ctx.state.extras.velocity;
    let now = Utc::now();
    let entry = |kind: &str, list: &str, ttl: Duration| crate::velocity::Block {
        key: format!("{kind}|{}", ctx.caller),
        trunk: "*".into(),
        rule: list.to_string(),
        subject: ctx.caller.clone(),
        created: now,
        until: now + chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::days(1)),
    };
    if passed {
        if let Some(list) = &learn.add_passed_to {
            tracker.add_block(entry(LEARNED_TRUST, list, learn.trust_for));
        }
        return;
    }
    let Some(list) = &learn.add_failed_to else {
        return;
    };
    let key = format!("learn-fails|{action}|{}", ctx.caller);
    let n = tracker.count(
        &key,
        crate::velocity::millis(now),
        learn.per.as_millis() as i64,
        learn.fails,
    );
    if n >= learn.fails {
        tracker.add_block(entry(LEARNED_BLOCK, list, learn.block_for));
    }
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

fn finish(
    state: &State,
    info: &CallInfo,
    started: Instant,
    pbx: Pbx,
    result: Result<EndState, DriveError>,
    verdict: &'static str,
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

fn log_record(state: &State, record: CallRecord) {
    if let Some(log) = &state.log {
        log.record(record);
    }
}

/// Decides on a blocking thread so that a pathological pattern cannot stall
/// the runtime, and gives up after `timeout` (the thread finishes on its own).
async fn decide_with_deadline(
    snap: &Arc<Snapshot>,
    trunk: usize,
    info: &CallInfo,
    attestation: Option<Attestation>,
    timeout: Duration,
) -> Result<(crate::policy::Decision, Duration), (FailReason, String)> {
    let snap = snap.clone();
    let caller = info.caller.clone();
    let restricted = info.presentation_restricted;
    let job = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let d = decide_attested(
            &snap.rules,
            trunk,
            &caller,
            restricted,
            attestation.as_ref(),
            Utc::now(),
        );
        (d, start.elapsed())
    });
    match tokio::time::timeout(timeout, job).await {
        Ok(Ok((Ok(d), elapsed))) => Ok((d, elapsed)),
        Ok(Ok((Err(e), _))) => Err((FailReason::Error, e.to_string())),
        Ok(Err(e)) => Err((FailReason::Error, format!("decision task failed: {e}"))),
        Err(_) => Err((
            FailReason::Timeout,
            format!("no decision within {timeout:?}"),
        )),
    }
}

/// The trunk's velocity rules around a decision: a caller (range, trunk)
/// under a temporary block, or over a rule's rate now, gets the rule's
/// action instead. Protected numbers and whitelisted callers are exempt (an
/// operator's explicit trust). Returns the decision and what to add to its
/// reason.
fn velocity(state: &State, rs: &crate::policy::RuleSet, d: Decision) -> (Decision, Option<String>) {
    let t = rs.trunk(d.trunk);
    if matches!(d.list, DecidedBy::Protected | DecidedBy::Whitelist) {
        return (d, None);
    }
    let tracker = &state.extras.velocity;
    let now = Utc::now();
    if let Some(caller) = d.caller.e164.clone().or_else(|| Some(d.caller.raw.clone()))
        && !d.caller.anonymous
        && !caller.is_empty()
    {
        // Learned from challenges: a caller who kept failing is blocked; a
        // verified human skips the challenge.
        if let Some(b) = tracker.active_block(&format!("{LEARNED_BLOCK}|{caller}"), now) {
            let note = format!(
                "{caller} is in {} until {} (failed challenges)",
                b.rule,
                b.until.format("%Y-%m-%dT%H:%M:%SZ")
            );
            let d = Decision {
                verdict: Verdict::Block,
                list: DecidedBy::Velocity,
                rule: None,
                action: t.blocked_action,
                matched_on: None,
                captures: Vec::new(),
                ..d
            };
            return (d, Some(note));
        }
        let challenged = matches!(
            rs.action(d.action).kind,
            crate::config::types::ActionKind::Challenge
        );
        if challenged
            && let Some(b) = tracker.active_block(&format!("{LEARNED_TRUST}|{caller}"), now)
            && let Some(pass) = rs.actions.iter().position(|a| &*a.name == "pass")
        {
            let note = format!(
                "{caller} is in {} until {} (passed a challenge): not challenged again",
                b.rule,
                b.until.format("%Y-%m-%dT%H:%M:%SZ")
            );
            let d = Decision {
                verdict: Verdict::Allow,
                list: DecidedBy::Velocity,
                rule: None,
                action: pass as crate::policy::ruleset::ActionId,
                matched_on: None,
                captures: Vec::new(),
                ..d
            };
            return (d, Some(note));
        }
    }
    if t.velocity.is_empty() {
        return (d, None);
    }
    let mut over: Option<(usize, String)> = None;
    for (i, v) in t.velocity.iter().enumerate() {
        let Some(key) = v.counter_key(&t.name, &d.caller) else {
            continue;
        };
        if over.is_some() {
            // Still count this call for the other rules.
            tracker.count(
                &key,
                crate::velocity::millis(now),
                v.per.as_millis() as i64,
                v.max,
            );
            continue;
        }
        if let Some(b) = tracker.active_block(&key, now) {
            over = Some((
                i,
                format!(
                    "{} is blocked until {} (temporary, {} calls within {})",
                    b.subject,
                    b.until.format("%Y-%m-%dT%H:%M:%SZ"),
                    v.max + 1,
                    humantime::format_duration(v.per)
                ),
            ));
            continue;
        }
        let n = tracker.count(
            &key,
            crate::velocity::millis(now),
            v.per.as_millis() as i64,
            v.max,
        );
        if n > v.max {
            let subject = key.rsplit('|').next().unwrap_or("").to_string();
            state
                .metrics
                .velocity_blocks_total
                .with_label_values(&[&*t.name, &*v.name])
                .inc();
            let mut note = format!(
                "{n} calls from {subject} within {} (max {})",
                humantime::format_duration(v.per),
                v.max
            );
            if let Some(block_for) = v.block_for {
                let until = now
                    + chrono::TimeDelta::from_std(block_for).unwrap_or(chrono::TimeDelta::days(1));
                note.push_str(&format!(
                    "; blocked until {}",
                    until.format("%Y-%m-%dT%H:%M:%SZ")
                ));
                tracker.add_block(crate::velocity::Block {
                    key: key.clone(),
                    trunk: t.name.to_string(),
                    rule: v.name.to_string(),
                    subject,
                    created: now,
                    until,
                });
            }
            over = Some((i, note));
        }
    }
    let Some((i, note)) = over else {
        return (d, None);
    };
    let v = &t.velocity[i];
    let d = Decision {
        verdict: Verdict::Block,
        list: DecidedBy::Velocity,
        rule: Some(v.rule),
        action: v.action,
        matched_on: None,
        captures: Vec::new(),
        ..d
    };
    (d, Some(note))
}
