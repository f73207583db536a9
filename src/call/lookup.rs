//! The call's reputation lookup before the decision: the caller's E.164 on
//! its trunk, looked up within `reputation.budget` and never past the PBX's
//! `decide_timeout` (the decision keeps at least half of it).

use std::time::Duration;

use super::CallInfo;
use crate::policy::RuleSet;
use crate::reputation::{Lookup, Reputation};
use crate::state::State;

/// The suffix of `CallDriver::set_vars` that sets the caller's name on the
/// channel (Asterisk `CALLERID(name)`, FreeSWITCH `effective_caller_id_name`)
/// instead of a `CALLGUARD_` variable.
pub(crate) const CALLER_NAME_VAR: &str = "CALLERID(name)";

/// Looks the caller up when providers are configured and the caller has a
/// number; `None` otherwise.
pub(super) async fn lookup(
    state: &State,
    rs: &RuleSet,
    trunk: usize,
    info: &CallInfo,
    decide_timeout: Duration,
) -> Option<Lookup> {
    let rep: &std::sync::Arc<Reputation> = state.extras.reputation.as_ref()?;
    let caller = rs
        .trunk(trunk)
        .dialing
        .normalize(&info.caller, info.presentation_restricted);
    if caller.anonymous {
        return None;
    }
    let e164 = caller.e164?;
    let budget = rep.budget().min(decide_timeout / 2);
    Some(rep.lookup(&e164, budget).await)
}

/// The looked-up name to set on the channel, when `set_caller_name` is on.
pub(super) fn name_to_set(state: &State, lookup: Option<&Lookup>) -> Option<String> {
    let rep = state.extras.reputation.as_ref()?;
    if !rep.set_caller_name {
        return None;
    }
    lookup?.answer.as_ref()?.name.as_deref().map(str::to_string)
}
