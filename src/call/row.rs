//! A screened call's log row as the call flow builds it: verdict, list and
//! action are typed here and become the decision log's strings only at the
//! storage boundary ([`Row::into_record`]), so no part of the flow can
//! invent a value the log's readers do not know.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::action::Via;
use crate::calllog::CallRecord;
use crate::outcome::FailReason;
use crate::policy::decide::{DecidedBy, Verdict};

/// The row's `verdict` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowVerdict {
    Allow,
    Block,
    /// The call was never screened and went on (the snippets' fail-open
    /// branch): neither allowed nor blocked by a decision.
    Unscreened,
}

impl RowVerdict {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            RowVerdict::Allow => "allow",
            RowVerdict::Block => "block",
            RowVerdict::Unscreened => "unscreened",
        }
    }
}

impl From<Verdict> for RowVerdict {
    fn from(v: Verdict) -> RowVerdict {
        match v {
            Verdict::Allow => RowVerdict::Allow,
            Verdict::Block => RowVerdict::Block,
        }
    }
}

/// The row's `list` column: the list (or mode) that decided, or that no
/// decision was made (`fail:` applied), or that the call was never screened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RowList {
    Decided(DecidedBy),
    /// No decision: no trunk, an error or the deadline (stored as `fail`).
    Failed,
    /// Never screened (stored empty).
    NotScreened,
}

impl RowList {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            RowList::Decided(by) => by.as_str(),
            RowList::Failed => "fail",
            RowList::NotScreened => "",
        }
    }
}

/// The row's `action` column: the action that ran, or none (fail open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RowAction {
    Named(Arc<str>),
    /// Fail open: nothing was run, the call passes (stored as `pass`).
    NoneFailOpen,
    /// Never screened: nothing was decided nor run (stored empty).
    NotScreened,
}

impl RowAction {
    pub(super) fn as_str(&self) -> &str {
        match self {
            RowAction::Named(name) => name,
            RowAction::NoneFailOpen => "pass",
            RowAction::NotScreened => "",
        }
    }
}

/// One screened call's row, typed.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub time: DateTime<Utc>,
    pub unique_id: String,
    pub pbx: Via,
    pub trunk: String,
    pub did: String,
    pub caller_raw: String,
    pub caller_e164: Option<String>,
    pub caller_name: String,
    pub anonymous: bool,
    pub verdict: RowVerdict,
    pub list: RowList,
    pub list_name: String,
    pub rule: Option<String>,
    pub action: RowAction,
    pub reason: String,
    pub decision_ns: u64,
    pub fail_open: bool,
    /// The named tenant whose rules screened the call; `None` for the
    /// default one (stored empty).
    pub tenant: Option<Arc<str>>,
    /// The user (extension) the call was for.
    pub user: Option<Arc<str>>,
}

impl Row {
    /// The variables every call gets, decided or not: VERDICT, ACTION, RULE,
    /// LIST, REASON, and ERROR when no decision was made (RULE and LIST then
    /// empty), so a dialplan can rely on each being set.
    pub(super) fn vars(&self, error: Option<FailReason>) -> ([(&'static str, &str); 6], usize) {
        let list = if error.is_some() {
            ""
        } else {
            self.list.as_str()
        };
        let vars = [
            ("VERDICT", self.verdict.as_str()),
            ("ACTION", self.action.as_str()),
            ("RULE", self.rule.as_deref().unwrap_or("")),
            ("LIST", list),
            ("REASON", self.reason.as_str()),
            ("ERROR", error.map_or("", FailReason::as_str)),
        ];
        (vars, if error.is_some() { 6 } else { 5 })
    }

    /// The caller's number to learn from a challenge: E.164 when known,
    /// none for a hidden caller.
    pub(super) fn learnable_caller(&self) -> String {
        match (&self.caller_e164, self.anonymous) {
            (_, true) => String::new(),
            (Some(e), _) => e.clone(),
            (None, _) => self.caller_raw.clone(),
        }
    }

    /// The decision log's row: the typed columns become their stored text.
    pub(super) fn into_record(self) -> CallRecord {
        CallRecord {
            time: self.time,
            unique_id: self.unique_id,
            pbx: self.pbx.as_str().to_string(),
            trunk: self.trunk,
            did: self.did,
            caller_raw: self.caller_raw,
            caller_e164: self.caller_e164,
            caller_name: self.caller_name,
            anonymous: self.anonymous,
            verdict: self.verdict.as_str().to_string(),
            list: self.list.as_str().to_string(),
            list_name: self.list_name,
            rule: self.rule,
            action: self.action.as_str().to_string(),
            reason: self.reason,
            decision_ns: self.decision_ns,
            fail_open: self.fail_open,
            tenant: self.tenant.as_deref().unwrap_or("").to_string(),
            user: self.user.as_deref().unwrap_or("").to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Pbx;

    /// The typed columns keep the exact text the log has always stored
    /// (readers, filters and the console match on it).
    #[test]
    fn stored_text_is_unchanged() {
        assert_eq!(RowVerdict::from(Verdict::Allow).as_str(), "allow");
        assert_eq!(RowVerdict::from(Verdict::Block).as_str(), "block");
        assert_eq!(RowVerdict::Unscreened.as_str(), "unscreened");
        assert_eq!(RowList::Failed.as_str(), "fail");
        assert_eq!(RowList::NotScreened.as_str(), "");
        assert_eq!(
            RowList::Decided(DecidedBy::SystemBlacklist).as_str(),
            "system_blacklist"
        );
        assert_eq!(RowAction::NoneFailOpen.as_str(), "pass");
        assert_eq!(RowAction::NotScreened.as_str(), "");
        let row = Row {
            time: Utc::now(),
            unique_id: "u-1".into(),
            pbx: Via::Pbx(Pbx::FreeSwitch),
            trunk: "support".into(),
            did: String::new(),
            caller_raw: "5551234567".into(),
            caller_e164: None,
            caller_name: String::new(),
            anonymous: false,
            verdict: RowVerdict::Allow,
            list: RowList::Failed,
            list_name: String::new(),
            rule: None,
            action: RowAction::NoneFailOpen,
            reason: "fail open: no decision within 1ms".into(),
            decision_ns: 0,
            fail_open: true,
            tenant: Some("acme".into()),
            user: Some("101".into()),
        };
        let (vars, n) = row.vars(Some(FailReason::Timeout));
        assert_eq!(n, 6);
        assert_eq!(vars[3], ("LIST", ""), "no list is named without a decision");
        assert_eq!(vars[5], ("ERROR", "timeout"));
        let r = row.into_record();
        assert_eq!(
            (
                r.pbx.as_str(),
                r.verdict.as_str(),
                r.list.as_str(),
                r.action.as_str()
            ),
            ("freeswitch", "allow", "fail", "pass")
        );
        assert_eq!((r.tenant.as_str(), r.user.as_str()), ("acme", "101"));
    }
}
