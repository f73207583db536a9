//! Feature codes and the dialplan's notes (issue 22 items 4 and 5), served
//! on the same listeners as screening: a FastAGI request to
//! `agi://…/feature?op=…` or an outbound ESL session whose channel has
//! `callguard_feature=…`. Not a call to screen: nothing is decided nor
//! logged as a call; the answer is one variable, `CALLGUARD_FEATURE` /
//! `callguard_feature` (`blocked`, `removed`, `refused`, `nothing`, `noted`,
//! `failed`), which the shipped snippets turn into a confirmation prompt.
//!
//! - `block-last` (`*32`): the last screened call attributed to the
//!   extension (see `delivered`) has its caller added to that user's block
//!   list; `block` (`*30` + number) and `unblock` (`*31` + number) add or
//!   remove a number; `code`: the digits dialled, read with the tenant's
//!   `feature_codes:`. Writes go through the one validated, versioned list
//!   write path ([`ListStore`]), authored `ext 101` in the history, and are
//!   applied at once (a reload), so the very next call sees them. A protected
//!   number, an anonymous last caller, or an extension that is not a
//!   configured user with a block list is `refused`.
//! - `delivered`: the dialplan delivered this screened call (its unique id is
//!   the session's) to `ext`: it is now that extension's last caller.
//!   callguard screens at the DID and cannot know which phone finally rang
//!   (ring group, queue, IVR choice); a call whose DID is a user's is
//!   attributed when it is screened, too.
//! - `dialled`: the user `ext` (default: the caller ID of the outbound
//!   channel) dialled `number` (default: the dialled extension): with
//!   `dialled_numbers:` on, that number is allowed for calls to that user
//!   for `allow_for` (`policy::feature::allow_dialled`).

use std::sync::Arc;

use super::row::RowVerdict;
use super::{CallDriver, CallInfo, CallOutcome, DriveError, EndState};
use crate::list_edit::RuleRow;
use crate::list_edit::store::{ListStore, StoreError};
use crate::policy::RuleSet;
use crate::policy::feature::{is_protected, normalize};
use crate::policy::number::Caller;
use crate::policy::ruleset::TenantId;
use crate::service::TenantFeatures;
use crate::state::State;
use crate::store::features::LastCaller;

/// What the dialplan asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    BlockLast,
    Block,
    Unblock,
    /// The digits dialled (`*32`, `*305551234567`), read with the
    /// tenant's `feature_codes:`.
    Code,
    Delivered,
    Dialled,
    /// `agi://…/feature` with no or an unknown `op=`: answered `refused`
    /// (not screened as a call).
    Unknown,
}

impl Op {
    /// `block-last`, `block`, `unblock`, `code`, `delivered`, `dialled`
    /// (`dialed` too); anything else is no feature.
    pub(crate) fn parse(s: &str) -> Option<Op> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "block-last" | "block_last" => Op::BlockLast,
            "block" => Op::Block,
            "unblock" => Op::Unblock,
            "code" => Op::Code,
            "delivered" => Op::Delivered,
            "dialled" | "dialed" => Op::Dialled,
            _ => return None,
        })
    }
}

/// A feature request as the driver read it from the PBX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeatureRequest {
    pub op: Op,
    /// `ext=` / `callguard_ext`: the extension (default: the caller ID).
    pub ext: Option<String>,
    /// `number=` / `callguard_number` (default: the dialled number).
    pub number: Option<String>,
}

/// A value read from the PBX is cut to this many bytes.
const MAX_ARG: usize = 64;

impl FeatureRequest {
    /// A request to the feature endpoint that names no feature.
    pub(crate) fn unknown() -> Self {
        FeatureRequest {
            op: Op::Unknown,
            ext: None,
            number: None,
        }
    }

    /// From the driver's strings; `None` when `op` names no feature.
    pub(crate) fn new(op: &str, ext: Option<&str>, number: Option<&str>) -> Option<Self> {
        let clean = |v: Option<&str>| {
            v.map(str::trim)
                .filter(|v| !v.is_empty() && *v != "_undef_" && v.len() <= MAX_ARG)
                .map(str::to_string)
        };
        Some(FeatureRequest {
            op: Op::parse(op)?,
            ext: clean(ext),
            number: clean(number),
        })
    }
}

/// The answer, set as `CALLGUARD_FEATURE` / `callguard_feature`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Blocked,
    Removed,
    Refused,
    /// Nothing to do: no last caller, a number not in the list, a
    /// feature that is off.
    Nothing,
    Noted,
    /// The write or the reload failed (the list is unchanged or the change
    /// is not in force yet): the snippet says so.
    Failed,
}

impl Answer {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Answer::Blocked => "blocked",
            Answer::Removed => "removed",
            Answer::Refused => "refused",
            Answer::Nothing => "nothing",
            Answer::Noted => "noted",
            Answer::Failed => "failed",
        }
    }
}

/// Serves one feature request and sets its answer on the channel.
pub(super) async fn serve<D: CallDriver>(
    driver: &mut D,
    req: &FeatureRequest,
    info: &CallInfo,
    state: &State,
) -> CallOutcome {
    let answer = answer(req, info, state).await;
    tracing::info!(pbx = driver.pbx().as_str(), call = %info.unique_id, op = ?req.op, ext = ?req.ext, answer = answer.as_str(), "feature");
    let end_state = match driver.set_vars(&[("FEATURE", answer.as_str())]).await {
        Ok(()) => EndState::Completed,
        Err(DriveError::Hangup { .. }) => EndState::CallerHangup,
        Err(e) => {
            state.metrics.count_session_error(driver.pbx(), e.kind());
            EndState::Error(e.kind())
        }
    };
    CallOutcome {
        end_state,
        hangup_cause: None,
        verdict: RowVerdict::Unscreened,
    }
}

async fn answer(req: &FeatureRequest, info: &CallInfo, state: &State) -> Answer {
    let snap = state.snapshot();
    let rs = &snap.rules;
    let (tenant, _) = rs.choose_tenant(info.tenant_hint.as_deref(), info.domain.as_deref());
    let settings = snap.service.features.of_tenant(&rs.tenant(tenant).name);
    let dialled = info.dids.first().map(String::as_str).unwrap_or("");
    let (op, number) = match req.op {
        Op::Code => match code(&settings.codes, req.number.as_deref().unwrap_or(dialled)) {
            Some((op, n)) => (op, n),
            None => return Answer::Refused,
        },
        Op::Dialled => (
            Op::Dialled,
            req.number.clone().or(Some(dialled.to_string())),
        ),
        Op::Unknown => return Answer::Refused,
        op => (op, req.number.clone()),
    };
    // The extension: named, else the caller ID of the handset dialling (not
    // for `delivered`, whose caller is the outside caller).
    let ext = match (&req.ext, op) {
        (Some(e), _) => e.clone(),
        (None, Op::Delivered) => return Answer::Refused,
        (None, _) => info.caller.trim().to_string(),
    };
    let t = rs.tenant(tenant);
    let Some(user) = t.user_for([ext.as_str()]) else {
        return Answer::Refused;
    };
    let ext: Arc<str> = t.user(user).ext.clone();
    let features = state.extras.features.clone();
    let tname = t.name.to_string();
    match op {
        Op::Delivered => {
            let last = LastCaller {
                caller: if info.presentation_restricted {
                    String::new()
                } else {
                    info.caller.trim().to_string()
                },
                unique_id: info.unique_id.clone(),
                at: chrono::Utc::now().timestamp(),
            };
            blocking(move || {
                features
                    .attribute(&tname, &ext, last)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_or(Answer::Failed, |()| Answer::Noted)
        }
        Op::Dialled => {
            if settings.dialled_allow_for.is_none() {
                return Answer::Nothing;
            }
            let Some(n) = number_of(rs, tenant, number.as_deref()) else {
                return Answer::Refused;
            };
            let key = n.e164.unwrap_or(n.raw);
            let at = chrono::Utc::now().timestamp();
            blocking(move || {
                features
                    .dialled(&tname, &ext, &key, at)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_or(Answer::Failed, |()| Answer::Noted)
        }
        Op::BlockLast => {
            let last = features.last_caller(&tname, &ext);
            let Some(last) = last else {
                return Answer::Nothing;
            };
            let Some(n) = number_of(rs, tenant, Some(&last.caller)) else {
                return Answer::Refused;
            };
            let note = format!(
                "*32: the last caller to ext {ext} (call {})",
                last.unique_id
            );
            write(state, rs, (tenant, &ext), true, n, note).await
        }
        Op::Block | Op::Unblock => {
            let Some(n) = number_of(rs, tenant, number.as_deref()) else {
                return Answer::Refused;
            };
            let block = op == Op::Block;
            write(
                state,
                rs,
                (tenant, &ext),
                block,
                n,
                format!("from ext {ext}"),
            )
            .await
        }
        Op::Code | Op::Unknown => Answer::Refused,
    }
}

/// The operation and number of the digits dialled, by the tenant's codes
/// (the longest code that starts them; `block_last` takes no number).
fn code(codes: &crate::config::types::FeatureCodes, dialled: &str) -> Option<(Op, Option<String>)> {
    let d = dialled.trim();
    let mut found: Option<(Op, &str)> = None;
    for (op, c) in [
        (Op::BlockLast, codes.block_last.as_str()),
        (Op::Block, codes.block.as_str()),
        (Op::Unblock, codes.unblock.as_str()),
    ] {
        if !c.is_empty() && d.starts_with(c) && found.is_none_or(|(_, f)| c.len() > f.len()) {
            found = Some((op, c));
        }
    }
    let (op, c) = found?;
    let rest = d[c.len()..].trim_start_matches(['#', '*']);
    match op {
        Op::BlockLast if rest.is_empty() => Some((op, None)),
        Op::BlockLast => None,
        _ if rest.is_empty() => None,
        _ => Some((op, Some(rest.to_string()))),
    }
}

/// A number to write: a caller ID with digits, not anonymous.
fn number_of(rs: &RuleSet, tenant: TenantId, number: Option<&str>) -> Option<Caller> {
    let n = number?.trim();
    if n.is_empty() || !n.bytes().any(|b| b.is_ascii_digit()) || n.len() > MAX_ARG {
        return None;
    }
    let c = normalize(rs, tenant, n);
    (!c.anonymous).then_some(c)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("feature task failed: {e}")))
}

/// Adds `n` to (or removes it from) the user's block list through the list
/// store, then applies the change at once.
async fn write(
    state: &State,
    rs: &RuleSet,
    (tenant, ext): (TenantId, &str),
    block: bool,
    n: Caller,
    note: String,
) -> Answer {
    if block && is_protected(rs, &n) {
        return Answer::Refused;
    }
    let prefix = match tenant {
        0 => String::new(),
        t => format!("{}.", rs.tenant(t).name),
    };
    let list = format!("{prefix}user.{ext}.block");
    if !rs.lists.iter().any(|l| l.name == list) {
        // The user has no `block:` list file configured.
        return Answer::Refused;
    }
    let Some(config) = state.extras.config_path.clone() else {
        return Answer::Failed;
    };
    let store = ListStore::new(config, state.extras.history.clone())
        .with_lock(state.extras.list_lock.clone())
        .with_fleet(state.extras.fleet.clone());
    let number = n.e164.clone().unwrap_or_else(|| n.raw.clone());
    let raw = n.raw.clone();
    let author = format!("ext {ext}");
    let l = list.clone();
    let changed = blocking(move || {
        let same = |r: &RuleRow| {
            let p = r.pattern.trim();
            (p == number || p == raw) && matches!(r.match_type.trim(), "" | "exact")
        };
        let res = store.apply(&l, &author, true, |cur| {
            let mut rows: Vec<RuleRow> = cur.to_vec();
            if block {
                // Already blocked: unchanged, nothing is written.
                if rows.iter().any(|r| r.enabled && same(r)) {
                    return Ok(rows);
                }
                // A disabled rule for the number is replaced by an enabled one.
                rows.retain(|r| !same(r));
                rows.push(RuleRow {
                    rule_name: format!("Block-{number}"),
                    pattern: number.clone(),
                    match_type: "exact".into(),
                    action: String::new(),
                    enabled: true,
                    notes: note,
                });
            } else {
                rows.retain(|r| !same(r));
            }
            Ok(rows)
        });
        res.map(|applied| !applied.summary.is_empty())
            .map_err(|e: StoreError| e.to_string())
    })
    .await;
    let done = if block {
        Answer::Blocked
    } else {
        Answer::Removed
    };
    match changed {
        Ok(false) if block => Answer::Blocked,
        Ok(false) => Answer::Nothing,
        Ok(true) => match state.extras.apply_now.get() {
            Some(apply) => match apply(format!("feature: ext {ext} changed list {list}")).await {
                Ok(_) => done,
                Err(e) => {
                    tracing::warn!("feature code: {list} was written but not applied: {e}");
                    Answer::Failed
                }
            },
            // No reloader (embedded): the watcher applies it.
            None => done,
        },
        Err(e) => {
            tracing::warn!("feature code: cannot change {list}: {e}");
            Answer::Failed
        }
    }
}

/// The screening side: a call whose DID is user `ext`'s is attributed to it
/// at once (the snippets' `delivered` note may follow and says the same or
/// moves it), and whether the user dialled the caller within
/// `dialled_numbers.allow_for`.
pub(super) fn on_screen(
    state: &State,
    (tenant, ext): (&str, &str),
    settings: &TenantFeatures,
    info: &CallInfo,
    caller: &Caller,
) -> bool {
    let features = state.extras.features.clone();
    let last = LastCaller {
        caller: if caller.anonymous {
            String::new()
        } else {
            info.caller.trim().to_string()
        },
        unique_id: info.unique_id.clone(),
        at: chrono::Utc::now().timestamp(),
    };
    let (t, e) = (tenant.to_string(), ext.to_string());
    let f = features.clone();
    // Off the call's path: the memory is updated inside, the file after.
    tokio::task::spawn_blocking(move || {
        if let Err(err) = f.attribute(&t, &e, last) {
            tracing::warn!("the last caller of ext {e} is not stored: {err}");
        }
    });
    let Some(allow_for) = settings.dialled_allow_for else {
        return false;
    };
    if caller.anonymous {
        return false;
    }
    let numbers = [caller.e164.as_deref().unwrap_or(""), caller.raw.as_str()];
    let now = chrono::Utc::now().timestamp();
    features
        .last_dialled(tenant, ext, &numbers)
        .is_some_and(|at| now.saturating_sub(at) <= allow_for.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::types::FeatureCodes;

    #[test]
    fn codes_read_with_the_tenants_codes() {
        let c = FeatureCodes::default();
        assert_eq!(code(&c, "*32"), Some((Op::BlockLast, None)));
        assert_eq!(code(&c, "*321"), None);
        assert_eq!(
            code(&c, "*305551234567"),
            Some((Op::Block, Some("5551234567".into())))
        );
        assert_eq!(
            code(&c, "*31#+15551234567"),
            Some((Op::Unblock, Some("+15551234567".into())))
        );
        assert_eq!(code(&c, "*30"), None);
        assert_eq!(code(&c, "*99"), None);
        let own = FeatureCodes {
            block: "*3".into(),
            unblock: "*31".into(),
            block_last: "*69".into(),
        };
        // The longest code wins: *31… is unblock, not block of 1….
        assert_eq!(
            code(&own, "*315550"),
            Some((Op::Unblock, Some("5550".into())))
        );
        assert_eq!(code(&own, "*25550"), None);
        assert_eq!(code(&own, "*69"), Some((Op::BlockLast, None)));
    }

    #[test]
    fn requests_are_bounded() {
        assert_eq!(FeatureRequest::new("nope", None, None), None);
        let r = FeatureRequest::new("Block-Last", Some(" 101 "), Some("_undef_")).unwrap();
        assert_eq!(r.op, Op::BlockLast);
        assert_eq!(r.ext.as_deref(), Some("101"));
        assert_eq!(r.number, None);
        let long = "1".repeat(MAX_ARG + 1);
        let r = FeatureRequest::new("block", None, Some(&long)).unwrap();
        assert_eq!(r.number, None);
    }
}
