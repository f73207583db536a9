//! A FreeSWITCH 1.10 simulator for outbound Event Socket tests.
//!
//! It connects to a server as `socket 127.0.0.1:PORT async full` does, sends
//! the connect reply built from the real capture
//! `captures/freeswitch-1.10-loopback-exit.bin` (in this crate: the service builds this library),
//! answers
//! commands with FreeSWITCH's replies and events in the captured layout, and
//! records what the server sent. Every wait is bounded, so a broken server
//! fails a test instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout, timeout_at};

/// The real session this simulator imitates; its first header block is the
/// connect reply template.
pub const LOOPBACK_EXIT_CAPTURE: &[u8] =
    include_bytes!("../captures/freeswitch-1.10-loopback-exit.bin");

/// The body of the final disconnect notice, 67 bytes.
pub const DISCONNECT_BODY: &str =
    "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// FreeSWITCH's limit on a command block is 16 MiB; the simulator's is lower
/// because no test needs more, and a runaway server must not eat memory.
const MAX_COMMAND_BYTES: usize = 1024 * 1024;

// Values in the template that the options replace.
const TEMPLATE_CALLER: &str = "+15551234567";
const TEMPLATE_DESTINATION: &str = "+18005550100";
const TEMPLATE_UNIQUE_ID: &str = "a6057aed-35c3-45f2-98a3-4c8f5b441c7f";
/// The `socket` application's own Application-UUID in its completion event.
const SOCKET_APP_UUID: &str = "01bd33f3-88b9-43bb-8785-4c529d2915c4";

/// How a `bridge` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeOutcome {
    /// The callee answered; the bridge completes with `originate_disposition`
    /// and `DIALSTATUS` = `SUCCESS`.
    Answered,
    /// Nobody answered: `cause` is a FreeSWITCH cause name (`NO_ANSWER`,
    /// `USER_BUSY`, …) as `switch_ivr_originate` reports it.
    Unanswered { cause: String },
}

/// Where the caller hangs up instead of the call going on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HangupAt {
    /// Right after the reply to the first command following `connect`.
    AfterFirstReply { cause: String },
    /// While `app` runs (the n-th execute of that app, from 1): it starts and
    /// then ends with the hangup, as in `freeswitch-1.10-loopback-hangup-mid-playback`.
    DuringExecute {
        app: String,
        nth: usize,
        cause: String,
    },
}

/// A frame FreeSWITCH would not normally send, to test the server's bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injection {
    /// A `text/rude-rejection` frame with a short body.
    UnknownContentType,
    /// A `text/event-plain` frame with a body of this many bytes.
    OversizedBody(usize),
}

/// What the caller keys in when `play_and_get_digits` asks for a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtmf {
    /// Nothing: every try times out.
    Silent,
    /// The digit the prompt said (the last digit file of the `file_string://`).
    Heard,
    /// Another digit, on every try.
    Wrong,
}

/// What the simulated call looks like and how the simulator misbehaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub caller_number: String,
    pub caller_name: String,
    pub destination_number: String,
    pub hide_number: bool,
    pub unique_id: String,
    /// Channel variables in the connect reply and events, without the
    /// `variable_` prefix; they replace the template's `callguard_trunk`.
    pub variables: Vec<(String, String)>,
    /// Write every byte on its own.
    pub split_bytes: bool,
    /// Put all frames answering one command into a single write.
    pub coalesce: bool,
    pub send_connect_reply: bool,
    pub hangup_at: Option<HangupAt>,
    pub bridge: BridgeOutcome,
    /// Before each completion, send events of other applications (the
    /// dialplan's own `set`, CHANNEL_PARK), as real FreeSWITCH interleaves them.
    pub interleave_foreign_events: bool,
    /// Sent after the reply to the first command following `connect`.
    pub injections: Vec<Injection>,
    /// How long after a `+OK` the app's events follow when no other command
    /// arrives first (about 20 ms in the captures): a server that sends its
    /// next command at once gets that reply before the earlier app's events.
    pub event_delay: Duration,
    /// How long the server has to send `connect`.
    pub connect_timeout: Duration,
    /// The longest time the simulator lingers after a hangup before the final
    /// disconnect notice (FreeSWITCH waits the full `linger N` seconds).
    pub linger_cap: Duration,
    pub overall_timeout: Duration,
    pub dtmf: Dtmf,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            caller_number: TEMPLATE_CALLER.into(),
            caller_name: "Test".into(),
            destination_number: TEMPLATE_DESTINATION.into(),
            hide_number: false,
            unique_id: TEMPLATE_UNIQUE_ID.into(),
            variables: vec![("callguard_trunk".into(), "support".into())],
            split_bytes: false,
            coalesce: false,
            send_connect_reply: true,
            hangup_at: None,
            bridge: BridgeOutcome::Answered,
            interleave_foreign_events: false,
            injections: Vec::new(),
            event_delay: Duration::from_millis(20),
            connect_timeout: Duration::from_secs(5),
            linger_cap: Duration::from_millis(200),
            overall_timeout: Duration::from_secs(10),
            dtmf: Dtmf::Silent,
        }
    }
}

/// One command the server sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCommand {
    /// The first line, e.g. `sendmsg` or `linger 5`.
    pub line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SimCommand {
    /// The first header named `name`, ignoring case as FreeSWITCH does.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What happened in one simulated session.
#[derive(Debug, Default)]
pub struct SimResult {
    pub connect_received: bool,
    /// Every command after `connect`, in order.
    pub commands: Vec<SimCommand>,
    /// Variables set by `set` / `export`, in order.
    pub variables: Vec<(String, String)>,
    /// The cause the call hung up with, if it did.
    pub hangup_cause: Option<String>,
    /// The server closed its side (EOF or reset) before the simulator gave up.
    pub server_closed: bool,
    /// Every byte the simulator wrote, to compare layouts with the captures.
    pub sent: Vec<u8>,
    pub timed_out: bool,
    pub error: Option<String>,
    /// When each command after `connect` arrived, since the run started (load generator).
    pub command_times: Vec<std::time::Duration>,
    /// From the start of the run to its end.
    pub elapsed: std::time::Duration,
    started: Option<Instant>,
}

impl SimResult {
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs one call against `addr` with the default configuration.
pub async fn run(addr: SocketAddr) -> SimResult {
    SimConfig::default().run(addr).await
}

impl SimConfig {
    /// Runs one call against the outbound-ESL server at `addr`.
    pub async fn run(self, addr: SocketAddr) -> SimResult {
        let mut result = SimResult {
            started: Some(Instant::now()),
            ..SimResult::default()
        };
        let deadline = Instant::now() + self.overall_timeout;
        match timeout_at(deadline, Session::start(self, addr, &mut result)).await {
            Err(_) => result.timed_out = true,
            Ok(Err(error)) if peer_gone(&error) => result.server_closed = true,
            Ok(Err(error)) => result.error = Some(error.to_string()),
            Ok(Ok(())) => {}
        }
        if let Some(s) = result.started {
            result.elapsed = s.elapsed();
        }
        result
    }
}

pub mod parse;
mod session;
mod wire;
use session::Session;
use wire::peer_gone;
pub use wire::{connect_reply_headers, dial_status, encode_block, url_encode};
