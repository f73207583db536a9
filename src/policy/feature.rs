//! The policy side of the feature codes (issue 22 items 4 and 5), pure:
//! which number a handset's code means for a tenant, whether it is a
//! protected number (never blocked, also not by a user), and the
//! numbers-you-called allowance in the precedence.

use super::decide::{DecidedBy, Decision, Verdict};
use super::index::{MatchedOn, Subject};
use super::number::Caller;
use super::ruleset::{RuleSet, TenantId};

/// `number` as the tenant's calls see it: normalised by the tenant's default
/// trunk's dialing rules (else its first trunk's, else the top level's), so
/// the rule written is the E.164 a later call is matched on.
pub(crate) fn normalize(rs: &RuleSet, tenant: TenantId, number: &str) -> Caller {
    let t = rs.tenant(tenant);
    let trunk = t
        .default_trunk
        .or_else(|| t.trunk_by_name.values().min().copied())
        .or(rs.default_trunk)
        .unwrap_or(0);
    match rs.trunks.get(trunk) {
        Some(tr) => tr.dialing.normalize(number, false),
        None => Caller {
            raw: number.trim().to_string(),
            e164: None,
            anonymous: false,
        },
    }
}

/// Whether a protected number (`protected:`) matches the caller: a user
/// cannot block an emergency number from a handset either.
pub(crate) fn is_protected(rs: &RuleSet, caller: &Caller) -> bool {
    let mut subjects = vec![Subject::new(&caller.raw, MatchedOn::Raw)];
    if let Some(e) = caller.e164.as_deref() {
        subjects.push(Subject::new(e, MatchedOn::E164));
    }
    let mut hit = false;
    // A pattern that fails to evaluate counts as protected: refusing a
    // handset's block is the safe side.
    let res = rs
        .protected
        .for_each_match(&subjects, false, |_, _| true, |_, _| hit = true);
    hit || res.is_err()
}

/// The called user dialled the caller within `dialled_numbers.allow_for`:
/// the call is allowed unless a list above the user's own allow list
/// decided (protected, system blacklist, the user's allow list). So the
/// precedence is protected → system blacklist → user allow → **dialled** →
/// user block → …: a number the user called back is theirs to trust, even
/// when their own block list or the tenant's lists would block it (a user who
/// dials a number they had blocked has changed their mind); the operator's
/// system blacklist still wins.
pub(crate) fn allow_dialled(rs: &RuleSet, mut d: Decision) -> Decision {
    if matches!(
        d.list,
        DecidedBy::Protected | DecidedBy::SystemBlacklist | DecidedBy::UserAllow
    ) {
        return d;
    }
    d.verdict = Verdict::Allow;
    d.list = DecidedBy::Dialled;
    d.rule = None;
    d.matched_on = None;
    d.captures.clear();
    d.action = rs.trunk(d.trunk).allowed_action;
    d
}
