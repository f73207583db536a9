//! How a screened call ended, and why one was not decided: plain values
//! shared by the call flow (`call`), the metrics and the decision log, kept
//! apart so that none of those depends on another for them.

use std::sync::Arc;

/// How a screened call's session ended. Its text (`as_str`) is what the
/// decision log's `end_state` column and `callguard log` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndState {
    /// The plan ran to its end.
    Completed,
    /// `mode: advise`: the variables were set, the dialplan acts.
    Advised,
    /// No decision in time (or no trunk): the call went on unscreened.
    FailOpen,
    /// No decision, and `fail: closed` ran the blocked action.
    FailClosed,
    /// The caller hung up while the session ran.
    CallerHangup,
    /// A bridge ended with the PBX's dial status; `then` is the
    /// `on_no_answer` action that ran when nobody answered.
    Dial {
        status: String,
        then: Option<Arc<str>>,
    },
    /// A challenge: the caller pressed the right digit (then `on_pass` ran).
    ChallengePassed,
    /// A challenge: a wrong digit or none (then `on_fail` ran).
    ChallengeFailed,
    /// The session broke off.
    Error(ErrorKind),
    /// The PBX sent the call but it was never screened: the session never
    /// started or the connection was refused ([`Unscreened`] says why).
    NotScreened,
    /// Screened at the SIP edge and refused there with this SIP code (`sip:486`).
    EdgeRefused(u16),
    /// Screened at the SIP edge; its action needs media, so the call was
    /// handed on to the PBX, which runs it (`handed_on`).
    HandedOn,
    /// Screened at the SIP edge and relayed to the PBX (`relayed`).
    Relayed,
}

impl EndState {
    pub(crate) fn as_str(&self) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match self {
            EndState::Completed => Cow::Borrowed("completed"),
            EndState::Advised => Cow::Borrowed("advised"),
            EndState::FailOpen => Cow::Borrowed("fail_open"),
            EndState::FailClosed => Cow::Borrowed("fail_closed"),
            EndState::CallerHangup => Cow::Borrowed("caller_hangup"),
            EndState::ChallengePassed => Cow::Borrowed("challenge_passed"),
            EndState::ChallengeFailed => Cow::Borrowed("challenge_failed"),
            EndState::Dial { status, then: None } => Cow::Owned(format!("dial:{status}")),
            EndState::Dial {
                status,
                then: Some(action),
            } => Cow::Owned(format!("dial:{status}:{action}")),
            EndState::Error(kind) => Cow::Owned(format!("{}_error", kind.as_str())),
            EndState::NotScreened => Cow::Borrowed("not_screened"),
            EndState::EdgeRefused(code) => Cow::Owned(format!("sip:{code}")),
            EndState::HandedOn => Cow::Borrowed("handed_on"),
            EndState::Relayed => Cow::Borrowed("relayed"),
        }
    }
}

impl std::fmt::Display for EndState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// What broke a session off: the `kind` label of
/// `callguard_protocol_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Timeout,
    Protocol,
    Closed,
    Io,
    Hangup,
}

impl ErrorKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Closed => "closed",
            ErrorKind::Io => "io",
            ErrorKind::Hangup => "hangup",
        }
    }
}

/// Why no decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailReason {
    NoTrunk,
    Timeout,
    Error,
}

impl FailReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailReason::NoTrunk => "no_trunk",
            FailReason::Timeout => "timeout",
            FailReason::Error => "error",
        }
    }
}

/// Why a call the PBX sent was never screened: its session never started
/// (no connect reply, no whole environment) or its connection was refused.
/// A fixed set, so that it can be the `reason` label of
/// `callguard_unscreened_total` (bounded) as well as the log row's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unscreened {
    /// ESL: FreeSWITCH never sent the channel data (timed out, or closed).
    NoConnectReply,
    /// ESL: what came instead of the channel data could not be read.
    BadConnectReply,
    /// ESL: the channel data came, `myevents` or `linger` then failed.
    SetupFailed,
    /// FastAGI: the environment never came whole (cut short, timed out).
    EnvironmentIncomplete,
    /// FastAGI: the environment could not be read (malformed, too long).
    BadEnvironment,
    /// Refused: the peer is not in the listener's `allow` list.
    NotAllowed,
    /// Refused: `max_connections` sessions were already open.
    MaxConnections,
}

impl Unscreened {
    pub(crate) const ALL: [Unscreened; 7] = [
        Unscreened::NoConnectReply,
        Unscreened::BadConnectReply,
        Unscreened::SetupFailed,
        Unscreened::EnvironmentIncomplete,
        Unscreened::BadEnvironment,
        Unscreened::NotAllowed,
        Unscreened::MaxConnections,
    ];

    /// The metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unscreened::NoConnectReply => "no_connect_reply",
            Unscreened::BadConnectReply => "bad_connect_reply",
            Unscreened::SetupFailed => "setup_failed",
            Unscreened::EnvironmentIncomplete => "environment_incomplete",
            Unscreened::BadEnvironment => "bad_environment",
            Unscreened::NotAllowed => "not_allowed",
            Unscreened::MaxConnections => "max_connections",
        }
    }

    /// The words of the log row's reason; `section` is the listener's
    /// configuration section (`agi`, `esl`), named by the allow-list refusal.
    pub(crate) fn describe(self, section: &str) -> String {
        match self {
            Unscreened::NoConnectReply => "no connect reply".into(),
            Unscreened::BadConnectReply => "bad connect reply".into(),
            Unscreened::SetupFailed => "session setup failed".into(),
            Unscreened::EnvironmentIncomplete => "environment incomplete".into(),
            Unscreened::BadEnvironment => "bad environment".into(),
            Unscreened::NotAllowed => format!("refused: not in {section}.allow"),
            Unscreened::MaxConnections => format!("refused: {section}.max_connections"),
        }
    }
}

/// A warning said at most once per interval, for a condition that repeats
/// on every call (a dialplan naming an unknown trunk): a counter counts
/// every occurrence, the log says it once in a while instead of flooding.
/// Owned by the running service (its `State`), not a process-wide static,
/// so that two services in one process (the tests) do not share it.
#[derive(Debug, Default)]
pub struct Throttle {
    /// Seconds since the epoch of the last time it was said; 0: never.
    last: std::sync::atomic::AtomicU64,
}

impl Throttle {
    /// Whether to say it now (`now_secs` since the epoch), at most once per
    /// `every_secs`; a true answer starts the next interval.
    pub fn due(&self, now_secs: u64, every_secs: u64) -> bool {
        use std::sync::atomic::Ordering;
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now_secs >= last.saturating_add(every_secs);
        due && self
            .last
            .compare_exchange(last, now_secs.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn a_throttle_says_once_per_interval() {
        let t = Throttle::default();
        assert!(t.due(1_000, 60));
        assert!(!t.due(1_001, 60));
        assert!(!t.due(1_059, 60));
        assert!(t.due(1_060, 60));
    }
}
