//! What to do with a call, as a PBX-neutral plan.
//!
//! A named action from the config (`actions.NAME`) is resolved once per PBX
//! when the rule set is compiled, applying its `asterisk:` / `freeswitch:`
//! overrides, so executing a call needs no lookups and no string building
//! beyond the wire command itself. Each protocol driver has a recipe that
//! turns a [`Step`] into its own commands.

use std::sync::Arc;

/// Which PBX a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pbx {
    Asterisk,
    FreeSwitch,
}

impl Pbx {
    pub const ALL: [Pbx; 2] = [Pbx::Asterisk, Pbx::FreeSwitch];

    pub fn as_str(self) -> &'static str {
        match self {
            Pbx::Asterisk => "asterisk",
            Pbx::FreeSwitch => "freeswitch",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Pbx::Asterisk => 0,
            Pbx::FreeSwitch => 1,
        }
    }
}

/// Where a call was screened, as the `pbx` label of the metrics and the
/// decision log's `pbx` column name it: in a PBX's session, or at the SIP
/// proxy in front of the PBXs (`POST /api/v1/edge/decide`, `pbx="kamailio"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Via {
    Pbx(Pbx),
    /// The SIP edge (Kamailio): the call has not reached a PBX yet.
    Edge,
}

impl Via {
    /// Every place a call is screened, in the order of [`Via::index`].
    pub const ALL: [Via; 3] = [
        Via::Pbx(Pbx::Asterisk),
        Via::Pbx(Pbx::FreeSwitch),
        Via::Edge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Via::Pbx(p) => p.as_str(),
            Via::Edge => "kamailio",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Via::Pbx(p) => p.index(),
            Via::Edge => 2,
        }
    }

    /// The PBX whose plans are read for this call. The edge drives no plan:
    /// it answers from the action's [`EdgeStep`] and reads only the plan's
    /// name, the same for every PBX.
    pub fn plan_pbx(self) -> Pbx {
        match self {
            Via::Pbx(p) => p,
            Via::Edge => Pbx::Asterisk,
        }
    }
}

impl From<Pbx> for Via {
    fn from(p: Pbx) -> Via {
        Via::Pbx(p)
    }
}

/// What the SIP edge does with a call whose action this is, resolved once
/// from the action's own keys (a PBX's override does not apply at the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeStep {
    /// Refuse the INVITE with this SIP final code: `reject` with `tone: busy`
    /// → 486, `congestion` → 503, `hangup` → the code for its cause, or the
    /// action's own `sip_code`.
    Refuse { code: u16 },
    /// The action needs media (play, voicemail, transfer, whisper bridge,
    /// challenge, or `mode: advise`): relay the call to the PBX, which runs it.
    HandOn,
    /// Relay the call: nothing to do (`continue`, `pass`, `allow`).
    Pass,
}

impl EdgeStep {
    /// The reason phrase of a refusal's SIP code (RFC 3261 §21 and RFC 6665).
    pub fn reason_phrase(code: u16) -> &'static str {
        match code {
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            410 => "Gone",
            480 => "Temporarily Unavailable",
            484 => "Address Incomplete",
            486 => "Busy Here",
            487 => "Request Terminated",
            488 => "Not Acceptable Here",
            500 => "Server Internal Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            503 => "Service Unavailable",
            504 => "Server Time-out",
            600 => "Busy Everywhere",
            603 => "Decline",
            604 => "Does Not Exist Anywhere",
            606 => "Not Acceptable",
            607 => "Unwanted",
            608 => "Rejected",
            _ => "Call Refused",
        }
    }

    /// The SIP code a Q.850 cause maps to, as the PBXs map a hangup before
    /// answer (RFC 3398 §8.2, with 21 CALL_REJECTED → 603 Decline as
    /// FreeSWITCH answers it; a refused spam call is declined).
    pub fn code_for_cause(cause: Cause) -> u16 {
        match cause.0 {
            1..=3 => 404,
            17 => 486,
            18..=20 => 480,
            21 => 603,
            22 => 410,
            27 => 502,
            28 => 484,
            29 | 31 | 38 | 41 | 42 | 47 | 34 | 63 => 503,
            55 | 57 => 403,
            58 | 88 => 488,
            79 => 501,
            102 => 504,
            _ => 603,
        }
    }
}

/// The signal a rejected caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// 486 Busy Here (cause 17).
    Busy,
    /// 503 Service Unavailable (Asterisk cause 34, FreeSWITCH cause 41).
    Congestion,
    /// No tone: hang up with the cause.
    Hangup,
}

/// A Q.850 hangup cause. Each PBX spells some causes differently, so plans keep
/// the number and recipes name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause(pub u16);

impl Cause {
    pub const NORMAL_CLEARING: Cause = Cause(16);
    pub const USER_BUSY: Cause = Cause(17);
    pub const CALL_REJECTED: Cause = Cause(21);
    pub(crate) const NORMAL_CIRCUIT_CONGESTION: Cause = Cause(34);
    pub const NORMAL_TEMPORARY_FAILURE: Cause = Cause(41);

    /// The FreeSWITCH / Q.850 name of the cause.
    pub fn name(self) -> &'static str {
        CAUSES
            .iter()
            .find(|(c, _)| *c == self.0)
            .map(|(_, n)| *n)
            .unwrap_or("NORMAL_CLEARING")
    }

    /// Parses `21` or `CALL_REJECTED` (any case).
    pub fn parse(s: &str) -> Option<Cause> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u16>() {
            return (1..=127).contains(&n).then_some(Cause(n));
        }
        CAUSES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s))
            .map(|(c, _)| Cause(*c))
    }
}

/// Q.850 causes as FreeSWITCH names them (switch_channel.c CAUSE_CHART).
const CAUSES: &[(u16, &str)] = &[
    (1, "UNALLOCATED_NUMBER"),
    (2, "NO_ROUTE_TRANSIT_NET"),
    (3, "NO_ROUTE_DESTINATION"),
    (16, "NORMAL_CLEARING"),
    (17, "USER_BUSY"),
    (18, "NO_USER_RESPONSE"),
    (19, "NO_ANSWER"),
    (20, "SUBSCRIBER_ABSENT"),
    (21, "CALL_REJECTED"),
    (22, "NUMBER_CHANGED"),
    (27, "DESTINATION_OUT_OF_ORDER"),
    (28, "INVALID_NUMBER_FORMAT"),
    (29, "FACILITY_REJECTED"),
    (31, "NORMAL_UNSPECIFIED"),
    (34, "NORMAL_CIRCUIT_CONGESTION"),
    (38, "NETWORK_OUT_OF_ORDER"),
    (41, "NORMAL_TEMPORARY_FAILURE"),
    (42, "SWITCH_CONGESTION"),
    (47, "RESOURCE_UNAVAILABLE"),
    (50, "REQUESTED_CHAN_UNAVAIL"),
    (55, "INCOMING_CALL_BARRED"),
    (57, "BEARERCAPABILITY_NOTAUTH"),
    (58, "BEARERCAPABILITY_NOTAVAIL"),
    (63, "SERVICE_UNAVAILABLE"),
    (79, "SERVICE_NOT_IMPLEMENTED"),
    (88, "INCOMPATIBLE_DESTINATION"),
    (102, "RECOVERY_ON_TIMER_EXPIRE"),
    (127, "INTERWORKING"),
];

/// One thing to do to the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Refuse the call with a tone and a cause, without answering it.
    Reject {
        tone: Tone,
        cause: Cause,
        seconds: u32,
    },
    /// Play a sound; `answer: false` plays it as early media. `then_hangup`
    /// false hands the call back to the dialplan afterwards.
    Play {
        sound: String,
        answer: bool,
        then_hangup: bool,
    },
    Voicemail {
        mailbox: String,
    },
    /// Send the call to `target`: `context,exten,prio` (Asterisk) or
    /// `exten XML context` (FreeSWITCH).
    Transfer {
        target: String,
    },
    /// Ring `dial`; when the agent answers they alone hear `tone`, then the
    /// caller is bridged. If nobody answers, `on_no_answer` runs.
    Bridge {
        dial: String,
        tone: String,
        timeout: u32,
        on_no_answer: Option<Arc<Plan>>,
    },
    /// Ask the caller to press a digit chosen at random per call; the call
    /// flow runs `on_pass` or `on_fail` after it.
    Challenge(Box<Challenge>),
    /// Hand the call back to the dialplan unchanged.
    Continue,
}

/// A resolved `kind: challenge` action for one PBX.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    /// Asks for the digit; the digit is said after it.
    pub prompt: String,
    /// FreeSWITCH: the file saying the digit, `{digit}` replaced. Asterisk
    /// says the digit with `SAY DIGITS` and ignores it.
    pub digit_sound: String,
    /// Played after a wrong digit, before the next try.
    pub invalid: Option<String>,
    /// The digit is drawn from `low..=high` (both 0-9).
    pub low: u8,
    pub high: u8,
    pub tries: u32,
    /// Time to press the digit after each prompt.
    pub timeout_ms: u32,
    /// `answer: false`: the challenge runs as early media.
    pub answer: bool,
    pub on_pass: Arc<Plan>,
    /// `None`: the trunk's blocked action.
    pub on_fail: Option<Arc<Plan>>,
    /// The action's name, for the learning store and the log.
    pub learn: Option<Learn>,
}

/// What a challenge teaches the lists (opt-in).
#[derive(Debug, Clone, PartialEq)]
pub struct Learn {
    pub fails: u32,
    pub per: std::time::Duration,
    pub add_failed_to: Option<String>,
    pub block_for: std::time::Duration,
    pub add_passed_to: Option<String>,
    pub trust_for: std::time::Duration,
}

impl Challenge {
    /// The digit for one call, drawn from the range with the OS's randomness
    /// (`crate::random`), so a robot cannot predict it.
    pub fn draw(&self) -> u8 {
        let span = u16::from(self.high.saturating_sub(self.low)) + 1;
        let r = u16::from_le_bytes(crate::random::bytes::<2>());
        self.low + (r % span) as u8
    }

    /// The FreeSWITCH file that says `digit`.
    pub(crate) fn digit_file(&self, digit: u8) -> String {
        self.digit_sound.replace("{digit}", &digit.to_string())
    }
}

/// A resolved action for one PBX.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The action's name, as set in `CALLGUARD_ACTION`.
    pub action: Arc<str>,
    /// `mode: advise`: set the variables and return to the dialplan.
    pub advise: bool,
    pub step: Step,
}

mod resolve;
pub use resolve::resolve;
pub(crate) use resolve::{builtin_plans, edge_step};
