//! An Asterisk 22 stand-in for FastAGI integration tests.
//!
//! It connects to a FastAGI server the way `AGI(agi://…)` does, sends the environment laid out
//! exactly as in `tests/fixtures/transcripts/asterisk-22-pjsip-sip-call.txt`, answers commands
//! with the reply texts res_agi.c writes, and, like the real thing, writes `HANGUP\n` once when
//! the server closes its side. Hangups, stalls and broken peers can be injected. It splits each
//! command with its own port of res_agi.c `parse_args()`, independent of callguard's encoder,
//! so quoting mistakes show up as wrong arguments or 520 replies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Picks commands by their line (without `\n`).
pub type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Matches commands starting with `prefix`, ignoring case (Asterisk's words are).
pub fn starts_with(prefix: &str) -> Matcher {
    let prefix = prefix.to_ascii_uppercase();
    Box::new(move |line| line.to_ascii_uppercase().starts_with(&prefix))
}

/// How the caller's hangup meets the command that triggers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupStyle {
    /// The command is interrupted: its reply (`200 result=-1` for a waiting command), then
    /// `HANGUP\n` in a second write — the cancel-mid-agi captures.
    AfterReply,
    /// `HANGUP\n` first, then the command's dead-channel reply, in two writes.
    BeforeReply,
    /// `HANGUP\n` and the dead-channel reply in one write (`HANGUP\n511 …\n`).
    Glued,
}

/// How the environment reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvDelivery {
    /// One write, as Asterisk does.
    Whole,
    /// Writes of at most this many bytes.
    Chunks(usize),
    /// One byte per write.
    ByteByByte,
    /// One byte per write, this long apart (a slow-loris peer).
    Trickle(Duration),
}

/// A broken peer, instead of a well-formed environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// These bytes in place of the environment.
    Garbage(Vec<u8>),
    /// Half the environment, then EOF (write side shut down).
    EofMidEnvironment,
    /// A first environment line whose value is this many bytes long.
    OverlongLine(usize),
}

/// What the caller keys in when asked for a digit (`SAY DIGITS` then `WAIT FOR DIGIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtmf {
    /// Nothing: `WAIT FOR DIGIT` times out (`200 result=0`).
    Silent,
    /// The digit just said, during `WAIT FOR DIGIT` (`200 result=51` for 3).
    Heard,
    /// Another digit than the one said.
    Wrong,
    /// The digit just said, interrupting `SAY DIGITS` itself.
    HeardEarly,
}

/// What happened during one run.
#[derive(Debug, Default)]
pub struct SimResult {
    /// Every command line received, without `\n`, in order.
    pub commands: Vec<String>,
    /// When each command arrived, since connect.
    pub command_times: Vec<Duration>,
    /// Every byte the simulator wrote (or tried to write), in order.
    pub sent: Vec<u8>,
    /// The server closed its side.
    pub saw_eof: bool,
    /// The channel went dead (injected hangup or a HANGUP command).
    pub hung_up: bool,
    /// The run hit the simulator's own timeout.
    pub timed_out: bool,
    /// From connect to the end of the run.
    pub elapsed: Duration,
    /// A connect/read/write failure, if any.
    pub error: Option<String>,
    /// The channel variables at the end (initial ones plus every SET VARIABLE).
    pub variables: HashMap<String, String>,
}

/// The configurable fake Asterisk. Build, adjust, then [`AsteriskSim::run`].
pub struct AsteriskSim {
    env: Vec<(String, String)>,
    delivery: EnvDelivery,
    fault: Option<Fault>,
    variables: HashMap<String, String>,
    exec_replies: HashMap<String, String>,
    overrides: Vec<(Matcher, Vec<u8>)>,
    hangup: Option<(Matcher, HangupStyle)>,
    stall: Option<Matcher>,
    stream_file_reply: String,
    timeout: Duration,
    /// Waited before answering each command: a call that lasts (load and shutdown tests).
    reply_delay: Duration,
    dtmf: Dtmf,
}

/// The environment of `asterisk-22-pjsip-sip-call.txt`, in its order.
const SIP_CALL_ENV: &[(&str, &str)] = &[
    ("agi_network", "yes"),
    ("agi_network_script", "callfilter?trunk=main"),
    ("agi_request", "agi://127.0.0.1:4573/callfilter?trunk=main"),
    ("agi_channel", "PJSIP/trunk-00000000"),
    ("agi_language", "en"),
    ("agi_type", "PJSIP"),
    ("agi_uniqueid", "1795432537.14"),
    ("agi_version", "22.10.1"),
    ("agi_callerid", "+15551234567"),
    ("agi_calleridname", "SIP Caller"),
    ("agi_callingpres", "0"),
    ("agi_callingani2", "0"),
    ("agi_callington", "0"),
    ("agi_callingtns", "0"),
    ("agi_dnid", "+18005550100"),
    ("agi_rdnis", "unknown"),
    ("agi_context", "incoming"),
    ("agi_extension", "+18005550100"),
    ("agi_priority", "2"),
    ("agi_enhanced", "0.0"),
    ("agi_accountcode", ""),
    ("agi_threadid", "139791817029312"),
];

pub const DEAD_CHANNEL: &str = "511 Command Not Permitted on a dead channel or intercept routine";
pub const INVALID_COMMAND: &str = "510 Invalid or unknown command";
/// A server sending more than this without `\n` is broken; Asterisk's own buffer is 8 KiB.
const MAX_COMMAND_LINE: usize = 64 * 1024;

impl Default for AsteriskSim {
    fn default() -> Self {
        Self::new()
    }
}

impl AsteriskSim {
    /// The SIP call of the capture, answering like Asterisk 22, 10 s run timeout.
    pub fn new() -> Self {
        AsteriskSim {
            env: SIP_CALL_ENV
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            delivery: EnvDelivery::Whole,
            fault: None,
            variables: HashMap::new(),
            exec_replies: HashMap::new(),
            overrides: Vec::new(),
            hangup: None,
            stall: None,
            stream_file_reply: "200 result=0 endpos=2000".into(),
            timeout: Duration::from_secs(10),
            reply_delay: Duration::ZERO,
            dtmf: Dtmf::Silent,
        }
    }

    /// Sets an environment value, keeping its place, or appends it.
    pub fn set_env(mut self, name: &str, value: &str) -> Self {
        match self.env.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.env.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    pub fn callerid(self, v: &str) -> Self {
        self.set_env("agi_callerid", v)
    }
    pub fn calleridname(self, v: &str) -> Self {
        self.set_env("agi_calleridname", v)
    }
    pub fn callingpres(self, v: u8) -> Self {
        self.set_env("agi_callingpres", &v.to_string())
    }
    pub fn dnid(self, v: &str) -> Self {
        self.set_env("agi_dnid", v)
    }
    pub fn extension(self, v: &str) -> Self {
        self.set_env("agi_extension", v)
    }
    pub fn uniqueid(self, v: &str) -> Self {
        self.set_env("agi_uniqueid", v)
    }

    /// The URL path and query (`callfilter?trunk=main`): sets `agi_network_script` and the
    /// matching `agi_request`.
    pub fn script(self, script: &str) -> Self {
        self.set_env("agi_network_script", script)
            .set_env("agi_request", &format!("agi://127.0.0.1:4573/{script}"))
    }

    /// Appends the next `agi_arg_N` (after `agi_threadid`, as Asterisk orders them).
    pub fn arg(self, value: &str) -> Self {
        let n = self
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("agi_arg_"))
            .count()
            + 1;
        self.set_env(&format!("agi_arg_{n}"), value)
    }

    pub fn delivery(mut self, delivery: EnvDelivery) -> Self {
        self.delivery = delivery;
        self
    }

    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// A channel variable that GET VARIABLE returns (e.g. `DIALSTATUS` = `NOANSWER`).
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.insert(name.to_owned(), value.to_owned());
        self
    }

    /// The reply line (without `\n`) to `EXEC <app>`, e.g. `Busy` → `200 result=-1`.
    pub fn exec_reply(mut self, app: &str, reply: &str) -> Self {
        self.exec_replies
            .insert(app.to_ascii_lowercase(), reply.to_owned());
        self
    }

    /// The reply to a live `STREAM FILE` (default `200 result=0 endpos=2000`).
    pub fn stream_file_reply(mut self, reply: &str) -> Self {
        self.stream_file_reply = reply.to_owned();
        self
    }

    /// Raw bytes (garbage allowed, `\n` not added) written instead of the reply to a command.
    pub fn reply_raw(mut self, matcher: Matcher, bytes: &[u8]) -> Self {
        self.overrides.push((matcher, bytes.to_vec()));
        self
    }

    /// The caller hangs up at the first command matching `matcher`.
    pub fn hangup_on(mut self, matcher: Matcher, style: HangupStyle) -> Self {
        self.hangup = Some((matcher, style));
        self
    }

    /// Never reply to the first command matching `matcher`, nor to any after it.
    pub fn stall_on(mut self, matcher: Matcher) -> Self {
        self.stall = Some(matcher);
        self
    }

    /// What the caller keys in when asked for a digit.
    pub fn dtmf(mut self, dtmf: Dtmf) -> Self {
        self.dtmf = dtmf;
        self
    }

    /// Bound on the whole run, so a server that never closes cannot hang a test.
    /// Waits this long before answering each command.
    pub fn reply_delay(mut self, delay: Duration) -> Self {
        self.reply_delay = delay;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The environment block as it goes on the wire.
    pub fn env_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.env {
            out.extend_from_slice(format!("{name}: {value}\n").as_bytes());
        }
        out.push(b'\n');
        out
    }

    /// Connects to `addr` and plays one session until the server closes or the timeout.
    pub async fn run(&self, addr: SocketAddr) -> SimResult {
        let start = Instant::now();
        let mut session = Session {
            sim: self,
            start,
            result: SimResult {
                variables: self.variables.clone(),
                ..SimResult::default()
            },
            hangup_fired: false,
            stalled: false,
            said: None,
        };
        match tokio::time::timeout(self.timeout, session.play(addr)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => session.result.error = Some(e.to_string()),
            Err(_) => session.result.timed_out = true,
        }
        session.result.elapsed = start.elapsed();
        session.result
    }
}

mod session;
use session::Session;

pub mod parse;
/// How Asterisk splits a command line (res_agi.c `parse_args()`).
pub use parse::parse_args;

/// The wire bytes of a transcript's lines with `marker` (`"< "` or `"> "`), unescaped.
pub fn transcript_lines(transcript: &str, marker: &str) -> Vec<Vec<u8>> {
    transcript
        .lines()
        .filter_map(|l| l.strip_prefix(marker))
        .map(unescape)
        .collect()
}

/// Unescapes a transcript string: `\n`, `\r`, `\t`, `\0`, `\xNN`, `\\`, `\"`.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut tmp = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            Some(other) => {
                let mut tmp = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut tmp).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}
