//! Calls the PBX sent that were never screened: the session never started
//! (no connect reply, no whole environment) or the connection was refused.
//!
//! Such a call goes on unscreened (the dialplan snippets fail open), so the
//! decision log and the metrics must still account for it: it is counted in
//! `callguard_unscreened_total{pbx, reason}` and gets one log row, verdict
//! `unscreened`, end state `not_screened`, the reason in words with the
//! peer's address, and the unique id when it was read (a partial AGI
//! environment's `agi_uniqueid`, the ESL connect reply's `Unique-ID`).

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;

use super::CallInfo;
use super::row::{Row, RowAction, RowList, RowVerdict};
use crate::action::Pbx;
use crate::calllog::{CallEnd, CallRecord};
use crate::outcome::{EndState, Unscreened};
use crate::state::State;

/// The verdict column of such a row: no decision was made, and the call
/// went on (the snippets' fail-open branch), so neither `allow` nor `block`.
pub(crate) const VERDICT: &str = RowVerdict::Unscreened.as_str();

/// One call that was never screened.
#[derive(Debug, Clone)]
pub(crate) struct NotScreened {
    pub pbx: Pbx,
    pub why: Unscreened,
    pub peer: SocketAddr,
    /// What was read of the call; empty fields when nothing was.
    pub info: CallInfo,
    /// The error that ended the session, for the reason.
    pub detail: Option<String>,
    /// From accept to the session's end.
    pub duration: Duration,
    /// Rows of the same kind left out before this one (rate limited).
    pub suppressed: u64,
}

/// The listener's configuration section, as the operator spells it.
pub(crate) fn section(pbx: Pbx) -> &'static str {
    match pbx {
        Pbx::Asterisk => "agi",
        Pbx::FreeSwitch => "esl",
    }
}

/// Counts the call and writes its row: the sessions' path, where every such
/// call is a real call from an allowed PBX.
pub(crate) fn not_screened(state: &State, n: NotScreened) {
    state.metrics.count_unscreened(n.pbx, n.why);
    log_row(state, n);
}

/// Writes the call's log row only (the caller counted it). Never blocks: the
/// log's bounded queue drops and counts a row it has no room for.
pub(crate) fn log_row(state: &State, n: NotScreened) {
    let Some(log) = &state.log else {
        return;
    };
    let (record, end) = row(&n);
    log.record_ended(record, end);
}

/// The row and its end for `n`.
pub(crate) fn row(n: &NotScreened) -> (CallRecord, CallEnd) {
    let mut reason = format!("not screened: {}", n.why.describe(section(n.pbx)));
    if let Some(detail) = n.detail.as_deref().filter(|d| !d.is_empty()) {
        reason.push_str(&format!(" ({detail})"));
    }
    reason.push_str(&format!("; peer {}", n.peer));
    if n.suppressed > 0 {
        reason.push_str(&format!(
            "; {} more since the last row, counted but not logged",
            n.suppressed
        ));
    }
    let i = &n.info;
    let did = i
        .dids
        .iter()
        .find(|d| !d.is_empty() && *d != "unknown")
        .cloned()
        .unwrap_or_default();
    let record = Row {
        time: Utc::now(),
        unique_id: i.unique_id.clone(),
        pbx: n.pbx.into(),
        trunk: String::new(),
        did,
        caller_raw: i.caller.clone(),
        caller_e164: None,
        caller_name: i.caller_name.clone(),
        anonymous: i.presentation_restricted,
        verdict: RowVerdict::Unscreened,
        list: RowList::NotScreened,
        list_name: String::new(),
        rule: None,
        action: RowAction::NotScreened,
        reason,
        decision_ns: 0,
        // The call went on without a decision: the report counts it as such.
        fail_open: true,
        // Never screened: no tenant was recognised (the default tenant's row).
        tenant: None,
        user: None,
    }
    .into_record();
    let end = CallEnd {
        unique_id: i.unique_id.clone(),
        end_state: EndState::NotScreened.as_str().into_owned(),
        hangup_cause: None,
        duration_ms: n.duration.as_millis() as u64,
    };
    (record, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_says_why_who_and_how_many_were_left_out() {
        let n = NotScreened {
            pbx: Pbx::Asterisk,
            why: Unscreened::NotAllowed,
            peer: "192.0.2.7:40000".parse().unwrap(),
            info: CallInfo::default(),
            detail: None,
            duration: Duration::ZERO,
            suppressed: 12,
        };
        let (r, e) = row(&n);
        assert_eq!(r.verdict, "unscreened");
        assert!(r.fail_open);
        assert_eq!(
            r.reason,
            "not screened: refused: not in agi.allow; peer 192.0.2.7:40000; \
             12 more since the last row, counted but not logged"
        );
        assert_eq!(e.end_state, "not_screened");
        let n = NotScreened {
            pbx: Pbx::FreeSwitch,
            why: Unscreened::NoConnectReply,
            detail: Some("timed out waiting for the connect reply".into()),
            suppressed: 0,
            info: CallInfo {
                unique_id: "u-1".into(),
                dids: vec!["unknown".into(), "+18005550100".into()],
                ..CallInfo::default()
            },
            ..n
        };
        let (r, e) = row(&n);
        assert_eq!(
            r.reason,
            "not screened: no connect reply (timed out waiting for the connect reply); \
             peer 192.0.2.7:40000"
        );
        assert_eq!((r.unique_id.as_str(), e.unique_id.as_str()), ("u-1", "u-1"));
        assert_eq!(r.did, "+18005550100");
    }
}
