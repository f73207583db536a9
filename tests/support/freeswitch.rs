//! A FreeSWITCH 1.10 simulator for outbound Event Socket tests.
//!
//! It connects to a server as `socket 127.0.0.1:PORT async full` does, sends
//! the connect reply built from the real capture
//! `tests/fixtures/transcripts/freeswitch-1.10-loopback-exit.bin`, answers
//! commands with FreeSWITCH's replies and events in the captured layout, and
//! records what the server sent. Every wait is bounded, so a broken server
//! fails a test instead of hanging it.
#![allow(dead_code)] // each test file uses a different part of the simulator

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout, timeout_at};

/// The real session this simulator imitates; its first header block is the
/// connect reply template.
pub const LOOPBACK_EXIT_CAPTURE: &[u8] =
    include_bytes!("../fixtures/transcripts/freeswitch-1.10-loopback-exit.bin");

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

/// The channel as the simulator tracks it.
struct Session<'r> {
    config: SimConfig,
    result: &'r mut SimResult,
    reader: CommandReader,
    writer: OwnedWriteHalf,
    /// The connect reply's headers, decoded: the source of every event's
    /// channel headers.
    channel: Vec<(String, String)>,
    sequence: u64,
    lingering: Option<u64>,
    hung_up: bool,
    pre_answered: bool,
    executions: Vec<String>,
    injected: bool,
    /// Events of running apps not yet sent (see `SimConfig::event_delay`).
    pending: Vec<Vec<u8>>,
}

impl<'r> Session<'r> {
    async fn start(
        config: SimConfig,
        addr: SocketAddr,
        result: &'r mut SimResult,
    ) -> std::io::Result<()> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        let channel = connect_reply_headers(&config);
        let mut session = Session {
            config,
            result,
            reader: CommandReader {
                read,
                buf: Vec::new(),
            },
            writer,
            channel,
            sequence: 626,
            lingering: None,
            hung_up: false,
            pre_answered: false,
            executions: Vec::new(),
            injected: false,
            pending: Vec::new(),
        };
        session.serve().await
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let first = match timeout(self.config.connect_timeout, self.reader.next()).await {
            Ok(first) => first?,
            Err(_) => return Ok(()),
        };
        let Some(first) = first else {
            self.result.server_closed = true;
            return Ok(());
        };
        if first.line != "connect" {
            self.result.commands.push(first);
            return self.finish_after_close().await;
        }
        self.result.connect_received = true;
        if !self.config.send_connect_reply {
            // Silent, as a stuck FreeSWITCH would be, until the server gives up.
            while let Some(command) = self.reader.next().await? {
                self.result.commands.push(command);
            }
            self.result.server_closed = true;
            return Ok(());
        }
        let reply = encode_block(&self.channel);
        self.send(vec![reply]).await?;
        loop {
            let next = if self.pending.is_empty() {
                self.reader.next().await?
            } else {
                match timeout(self.config.event_delay, self.reader.next()).await {
                    Ok(next) => next?,
                    Err(_) => {
                        let events = std::mem::take(&mut self.pending);
                        self.send(events).await?;
                        continue;
                    }
                }
            };
            let Some(command) = next else { break };
            if let Some(s) = self.result.started {
                self.result.command_times.push(s.elapsed());
            }
            self.result.commands.push(command.clone());
            let mut frames = self.answer(&command);
            let first_reply = !self.injected;
            if first_reply {
                self.injected = true;
                frames.extend(self.config.injections.iter().map(injection_frame));
                if let Some(HangupAt::AfterFirstReply { cause }) = self.config.hangup_at.clone() {
                    frames.append(&mut self.pending);
                    frames.extend(self.hangup_sequence(&cause, None));
                }
            }
            let ends = command.line == "exit";
            self.send(frames).await?;
            if ends {
                return self.finish_after_close().await;
            }
            if self.hung_up {
                return self.linger_then_disconnect().await;
            }
        }
        self.result.server_closed = true;
        Ok(())
    }

    /// The frames FreeSWITCH sends for one command.
    fn answer(&mut self, command: &SimCommand) -> Vec<Vec<u8>> {
        let mut words = command.line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("myevents"), _) => vec![reply("+OK Events Enabled")],
            // Libraries subscribe explicitly too (modesl: `event plain BACKGROUND_JOB …`).
            (Some("event"), Some(format)) => {
                vec![reply(&format!("+OK event listener enabled {format}"))]
            }
            (Some("linger"), seconds) => {
                let seconds = seconds.and_then(|s| s.parse().ok()).unwrap_or(600);
                self.lingering = Some(seconds);
                vec![reply(&format!("+OK will linger {seconds} seconds"))]
            }
            (Some("nolinger"), _) => {
                self.lingering = None;
                vec![reply("+OK will not linger")]
            }
            (Some("exit"), _) => {
                // Events still queued are dropped: the session ends at once.
                self.pending.clear();
                vec![reply("+OK bye"), self.disconnect_notice()]
            }
            (Some("sendmsg"), _) => {
                let mut frames = vec![reply("+OK")];
                if !self.hung_up {
                    let events = self.sendmsg(command);
                    if self.hung_up {
                        frames.append(&mut self.pending);
                        frames.extend(events);
                    } else {
                        self.pending.extend(events);
                    }
                }
                frames
            }
            _ => vec![reply("-ERR command not found")],
        }
    }

    fn sendmsg(&mut self, command: &SimCommand) -> Vec<Vec<u8>> {
        match command.header("call-command") {
            Some("execute") => self.execute(command),
            Some("hangup") => {
                let cause = command.header("hangup-cause").unwrap_or("NORMAL_CLEARING");
                self.hangup_sequence(cause, None)
            }
            _ => Vec::new(),
        }
    }

    fn execute(&mut self, command: &SimCommand) -> Vec<Vec<u8>> {
        let app = command
            .header("execute-app-name")
            .unwrap_or_default()
            .to_owned();
        let arg = match command.header("execute-app-arg") {
            Some(arg) => arg.to_owned(),
            None => String::from_utf8_lossy(&command.body).into_owned(),
        };
        let uuid = command.header("Event-UUID").unwrap_or_default().to_owned();
        self.executions.push(app.clone());
        let nth = self.executions.iter().filter(|a| **a == app).count();
        let mut frames = Vec::new();
        if self.config.interleave_foreign_events {
            frames.extend(self.foreign_events());
        }
        if (app == "playback" || app == "bridge") && !self.pre_answered {
            self.pre_answered = true;
            set_header(&mut self.channel, "Answer-State", "early");
            self.set_variable("endpoint_disposition", "EARLY MEDIA");
            frames.push(self.event("CHANNEL_PROGRESS_MEDIA", &[]));
        }
        self.set_variable("current_application", &app);
        self.set_variable("current_application_data", &arg);
        let app_headers = [
            ("Application", app.as_str()),
            ("Application-Data", arg.as_str()),
            ("Application-UUID", uuid.as_str()),
        ];
        frames.push(self.event("CHANNEL_EXECUTE", &app_headers));
        if let Some(HangupAt::DuringExecute {
            app: at_app,
            nth: at_nth,
            cause,
        }) = self.config.hangup_at.clone()
            && at_app == app
            && at_nth == nth
        {
            let response = if app == "playback" {
                "PLAYBACK ERROR"
            } else {
                cause.as_str()
            };
            let interrupted = (app.clone(), arg.clone(), uuid.clone(), response.to_owned());
            frames.extend(self.hangup_sequence(&cause, Some(interrupted)));
            return frames;
        }
        // `respond 4xx-6xx` answers the INVITE with a final response, which
        // ends the channel: the hangup comes before the app's completion.
        if app == "respond"
            && let Some(cause) = respond_cause(&arg)
        {
            let interrupted = (app.clone(), arg.clone(), uuid.clone(), "_none_".to_owned());
            frames.extend(self.hangup_sequence(cause, Some(interrupted)));
            return frames;
        }
        // mod_dptools' bridge after a failed originate calls
        // switch_channel_handle_cause: the caller is hung up with the cause
        // unless it is NO_ANSWER, NO_USER_RESPONSE or ORIGINATOR_CANCEL or
        // `continue_on_fail` is set (here: in the `%[...]` scope variables).
        if app == "bridge"
            && let BridgeOutcome::Unanswered { cause } = self.config.bridge.clone()
            && !matches!(
                cause.as_str(),
                "NO_ANSWER" | "NO_USER_RESPONSE" | "ORIGINATOR_CANCEL"
            )
            && scope_variable(&arg, "continue_on_fail") != Some("true")
        {
            self.set_variable("originate_disposition", &cause);
            self.set_variable("DIALSTATUS", dial_status(&cause));
            let interrupted = (app.clone(), arg.clone(), uuid.clone(), cause.clone());
            frames.extend(self.hangup_sequence(&cause, Some(interrupted)));
            return frames;
        }
        let response = match app.as_str() {
            // As mod_dptools' base_set / multiset_function read the argument (an unset
            // variable is recorded as "").
            "set" | "export" | "multiset" => {
                let sets = if app == "multiset" {
                    callguard::pbx::esl::multiset::multiset(&arg)
                } else {
                    callguard::pbx::esl::multiset::base_set(&arg).map(|s| s.into_iter().collect())
                };
                for (name, value) in sets.expect("a value FreeSWITCH would expand") {
                    let value = value.unwrap_or_default();
                    self.set_variable(&name, &value);
                    self.result.variables.push((name, value));
                }
                "_none_".to_owned()
            }
            "playback" => "FILE PLAYED".to_owned(),
            "bridge" => self.bridge_outcome(),
            "play_and_get_digits" => {
                frames.extend(self.play_and_get_digits(&arg));
                "_none_".to_owned()
            }
            _ => "_none_".to_owned(),
        };
        if self.config.interleave_foreign_events {
            frames.push(self.event("CHANNEL_PARK", &[]));
        }
        self.set_variable("current_application_response", &response);
        let mut complete = app_headers.to_vec();
        complete.insert(2, ("Application-Response", response.as_str()));
        frames.push(self.event("CHANNEL_EXECUTE_COMPLETE", &complete));
        frames
    }

    /// `play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file>
    /// <invalid_file> <var_name> <regexp> [<digit_timeout>]`, as
    /// switch_play_and_get_digits leaves the channel: `var_name` = the digits
    /// when they matched the regexp (unset after the last failed try, the
    /// wrong keys in `<var_name>_invalid`), `read_result`; a DTMF event per key.
    fn play_and_get_digits(&mut self, arg: &str) -> Vec<Vec<u8>> {
        let argv: Vec<&str> = arg.split(' ').collect();
        let (Some(file), Some(var), Some(regexp)) = (argv.get(5), argv.get(7), argv.get(8)) else {
            return Vec::new();
        };
        let tries: usize = argv.get(2).and_then(|t| t.parse().ok()).unwrap_or(1);
        let said = file
            .rsplit('!')
            .next()
            .and_then(|last| last.bytes().rev().find(u8::is_ascii_digit));
        let key = match (self.config.dtmf, said) {
            (Dtmf::Heard, Some(d)) => Some(d),
            (Dtmf::Wrong, Some(d)) => Some(if d == b'9' { b'1' } else { d + 1 }),
            _ => None,
        };
        let mut frames = Vec::new();
        let Some(key) = key else {
            self.set_variable("read_result", "timeout");
            self.unset_variable(var);
            return frames;
        };
        let digit = (key as char).to_string();
        let matched = regex::Regex::new(regexp).is_ok_and(|r| r.is_match(&digit));
        for _ in 0..if matched { 1 } else { tries } {
            frames.push(self.event(
                "DTMF",
                &[
                    ("DTMF-Digit", digit.as_str()),
                    ("DTMF-Duration", "2000"),
                    ("DTMF-Source", "RTP"),
                ],
            ));
        }
        self.set_variable("read_result", "success");
        if matched {
            self.set_variable(var, &digit);
        } else {
            self.unset_variable(var);
            self.set_variable(&format!("{var}_invalid"), &digit);
        }
        frames
    }

    fn unset_variable(&mut self, name: &str) {
        let key = format!("variable_{name}");
        self.channel.retain(|(n, _)| *n != key);
    }

    /// Sets the variables `switch_ivr_originate` and mod_dptools' bridge leave
    /// on the caller's channel, and returns the Application-Response.
    fn bridge_outcome(&mut self) -> String {
        match self.config.bridge.clone() {
            BridgeOutcome::Answered => {
                self.set_variable("originate_disposition", "SUCCESS");
                self.set_variable("DIALSTATUS", "SUCCESS");
                self.set_variable("last_bridge_hangup_cause", "NORMAL_CLEARING");
                "_none_".into()
            }
            BridgeOutcome::Unanswered { cause } => {
                self.set_variable("originate_disposition", &cause);
                self.set_variable("DIALSTATUS", dial_status(&cause));
                self.set_variable("originate_failed_cause", &cause);
                cause
            }
        }
    }

    /// The dialplan's own `set` and a park, with Application-UUIDs that are
    /// not the server's: completions must be matched by UUID, not by order.
    fn foreign_events(&mut self) -> Vec<Vec<u8>> {
        let foreign = [
            ("Application", "set"),
            ("Application-Data", "dialplan_flag=1"),
            ("Application-UUID", "f0f0f0f0-0000-4000-8000-000000000001"),
        ];
        let mut complete = foreign.to_vec();
        complete.insert(2, ("Application-Response", "_none_"));
        vec![
            self.event("CHANNEL_EXECUTE", &foreign),
            self.event("CHANNEL_EXECUTE_COMPLETE", &complete),
        ]
    }

    /// CHANNEL_HANGUP, the interrupted app's completion (if any), the socket
    /// app's completion, CHANNEL_HANGUP_COMPLETE and, when lingering, the
    /// `linger` notice — the order of the captures.
    fn hangup_sequence(
        &mut self,
        cause: &str,
        interrupted: Option<(String, String, String, String)>,
    ) -> Vec<Vec<u8>> {
        self.hung_up = true;
        self.result.hangup_cause = Some(cause.to_owned());
        set_header(&mut self.channel, "Answer-State", "hangup");
        let mut frames = vec![self.event("CHANNEL_HANGUP", &[("Hangup-Cause", cause)])];
        if let Some((app, arg, uuid, response)) = interrupted {
            self.set_variable("current_application_response", &response);
            frames.push(self.event(
                "CHANNEL_EXECUTE_COMPLETE",
                &[
                    ("Hangup-Cause", cause),
                    ("Application", &app),
                    ("Application-Data", &arg),
                    ("Application-Response", &response),
                    ("Application-UUID", &uuid),
                ],
            ));
        }
        let socket_response = self
            .channel
            .iter()
            .find(|(n, _)| n == "variable_current_application_response")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "_none_".into());
        frames.push(self.event(
            "CHANNEL_EXECUTE_COMPLETE",
            &[
                ("Hangup-Cause", cause),
                ("Application", "socket"),
                ("Application-Data", "127.0.0.1:8084 async full"),
                ("Application-Response", &socket_response),
                ("Application-UUID", SOCKET_APP_UUID),
            ],
        ));
        self.set_variable("hangup_cause", cause);
        frames.push(self.event("CHANNEL_HANGUP_COMPLETE", &[("Hangup-Cause", cause)]));
        if let Some(seconds) = self.lingering {
            frames.push(self.linger_notice(seconds));
        }
        frames
    }

    /// After a hangup: without linger, FreeSWITCH disconnects at once; with
    /// linger it keeps answering commands (`+OK`) for the linger time (capped
    /// here) and then sends the final notice and closes.
    async fn linger_then_disconnect(&mut self) -> std::io::Result<()> {
        if self.lingering.is_some() {
            let until = Instant::now() + self.config.linger_cap;
            while let Ok(command) = timeout_at(until, self.reader.next()).await {
                let Some(command) = command? else {
                    self.result.server_closed = true;
                    break;
                };
                self.result.commands.push(command.clone());
                let frames = self.answer(&command);
                self.send(frames).await?;
                if command.line == "exit" {
                    return self.finish_after_close().await;
                }
            }
        }
        let notice = self.disconnect_notice();
        self.send(vec![notice]).await?;
        self.finish_after_close().await
    }

    /// Closes the simulator's side and notes whether the server closes too,
    /// recording anything it still sends.
    async fn finish_after_close(&mut self) -> std::io::Result<()> {
        let _ = self.writer.shutdown().await;
        loop {
            match self.reader.next().await {
                Ok(Some(command)) => self.result.commands.push(command),
                Ok(None) | Err(_) => {
                    self.result.server_closed = true;
                    return Ok(());
                }
            }
        }
    }

    fn event(&mut self, name: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        self.sequence += 1;
        let (file, function, line) = match name {
            "CHANNEL_EXECUTE" => ("switch_core_session.c", "switch_core_session_exec", "2944"),
            "CHANNEL_EXECUTE_COMPLETE" => {
                ("switch_core_session.c", "switch_core_session_exec", "2967")
            }
            "CHANNEL_HANGUP" => ("switch_channel.c", "switch_channel_perform_hangup", "3445"),
            "CHANNEL_HANGUP_COMPLETE" => (
                "switch_core_state_machine.c",
                "switch_core_session_reporting_state",
                "943",
            ),
            "CHANNEL_PROGRESS_MEDIA" => (
                "switch_channel.c",
                "switch_channel_perform_mark_pre_answered",
                "3560",
            ),
            _ => ("switch_ivr.c", "switch_ivr_park", "1000"),
        };
        let sequence = self.sequence.to_string();
        let mut headers: Vec<(String, String)> = vec![("Event-Name".into(), name.into())];
        let leading = ["Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname"];
        let leading = leading
            .iter()
            .chain(&["FreeSWITCH-IPv4", "FreeSWITCH-IPv6"]);
        let leading =
            leading.chain(&["Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp"]);
        for key in leading {
            if let Some(value) = header(&self.channel, key) {
                headers.push(((*key).into(), value.into()));
            }
        }
        for (key, value) in [
            ("Event-Calling-File", file),
            ("Event-Calling-Function", function),
            ("Event-Calling-Line-Number", line),
            ("Event-Sequence", &sequence),
        ] {
            headers.push((key.into(), value.into()));
        }
        // The channel part: from Channel-State to the last variable, as in the
        // captured events; connect-only headers are left out.
        let start = self
            .channel
            .iter()
            .position(|(n, _)| n == "Channel-State")
            .unwrap_or(0);
        for (key, value) in &self.channel[start..] {
            if key == "Content-Type" {
                break;
            }
            headers.push((key.clone(), value.clone()));
        }
        for (key, value) in extra {
            headers.push(((*key).into(), (*value).into()));
        }
        let mut body = encode_block(&headers);
        let mut frame = format!(
            "Content-Length: {}\nContent-Type: text/event-plain\n\n",
            body.len()
        )
        .into_bytes();
        frame.append(&mut body);
        frame
    }

    fn linger_notice(&self, seconds: u64) -> Vec<u8> {
        // Channel-Name is written raw here, unlike everywhere else.
        let channel_name = header(&self.channel, "Channel-Name").unwrap_or_default();
        format!(
            "Content-Type: text/disconnect-notice\nControlled-Session-UUID: {}\nContent-Disposition: linger\nChannel-Name: {channel_name}\nLinger-Time: {seconds}\nContent-Length: 0\n\n",
            self.config.unique_id
        )
        .into_bytes()
    }

    fn disconnect_notice(&self) -> Vec<u8> {
        format!(
            "Content-Type: text/disconnect-notice\nControlled-Session-UUID: {}\nContent-Disposition: disconnect\nContent-Length: {}\n\n{DISCONNECT_BODY}",
            self.config.unique_id,
            DISCONNECT_BODY.len()
        )
        .into_bytes()
    }

    fn set_variable(&mut self, name: &str, value: &str) {
        let key = format!("variable_{name}");
        set_header(&mut self.channel, &key, value);
    }

    async fn send(&mut self, frames: Vec<Vec<u8>>) -> std::io::Result<()> {
        let writes = if self.config.coalesce {
            vec![frames.concat()]
        } else {
            frames
        };
        for write in writes {
            self.result.sent.extend_from_slice(&write);
            if self.config.split_bytes {
                for byte in write {
                    self.writer.write_all(&[byte]).await?;
                    self.writer.flush().await?;
                }
            } else {
                self.writer.write_all(&write).await?;
            }
        }
        self.writer.flush().await
    }
}

/// The server closed or reset the connection while the simulator wrote.
fn peer_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(
        error.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted
    )
}

/// Reads the server's commands: a command line, `Name: value` lines, a blank
/// line, then `content-length` body bytes when given.
struct CommandReader {
    read: OwnedReadHalf,
    buf: Vec<u8>,
}

impl CommandReader {
    /// The next command, or `None` at EOF.
    async fn next(&mut self) -> std::io::Result<Option<SimCommand>> {
        loop {
            if let Some(command) = self.parse()? {
                return Ok(Some(command));
            }
            if self.buf.len() > MAX_COMMAND_BYTES {
                return Err(std::io::Error::other("command larger than 1 MiB"));
            }
            let mut chunk = [0u8; 4096];
            let read = self.read.read(&mut chunk).await?;
            if read == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    fn parse(&mut self) -> std::io::Result<Option<SimCommand>> {
        while self.buf.first().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            self.buf.remove(0);
        }
        let text = &self.buf;
        let Some((end, terminator)) = find_blank_line(text) else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&text[..end]).into_owned();
        let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
        let line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim_start().to_owned()))
            .collect();
        let mut command = SimCommand {
            line,
            headers,
            body: Vec::new(),
        };
        let length: usize = command
            .header("content-length")
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if length > MAX_COMMAND_BYTES {
            return Err(std::io::Error::other("command body larger than 1 MiB"));
        }
        let body_start = end + terminator;
        if self.buf.len() < body_start + length {
            return Ok(None);
        }
        command.body = self.buf[body_start..body_start + length].to_vec();
        self.buf.drain(..body_start + length);
        Ok(Some(command))
    }
}

/// The end of the header block and the terminator's length (LF LF or CRLF CRLF).
fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    (0..bytes.len()).find_map(|i| {
        if bytes[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else if bytes[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else {
            None
        }
    })
}

/// The connect reply's headers, decoded, with the configured call data.
pub fn connect_reply_headers(config: &SimConfig) -> Vec<(String, String)> {
    let end = LOOPBACK_EXIT_CAPTURE
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("the capture has a header block");
    let template = String::from_utf8_lossy(&LOOPBACK_EXIT_CAPTURE[..end]);
    let mut headers = Vec::new();
    for line in template.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if name == "variable_callguard_trunk" {
            for (var, value) in &config.variables {
                headers.push((format!("variable_{var}"), value.clone()));
            }
            continue;
        }
        let value = url_decode(value)
            .replace(TEMPLATE_CALLER, &config.caller_number)
            .replace(TEMPLATE_DESTINATION, &config.destination_number)
            .replace(TEMPLATE_UNIQUE_ID, &config.unique_id);
        let value =
            if name.ends_with("Caller-ID-Name") || name == "variable_origination_caller_id_name" {
                config.caller_name.clone()
            } else if name.ends_with("Privacy-Hide-Number") {
                config.hide_number.to_string()
            } else {
                value
            };
        headers.push((name.to_owned(), value));
    }
    headers
}

/// The hangup cause FreeSWITCH gives a `respond` with a final status
/// (mod_sofia maps 486 to USER_BUSY, 503 to NORMAL_TEMPORARY_FAILURE).
fn respond_cause(arg: &str) -> Option<&'static str> {
    match arg.split_whitespace().next()?.parse::<u16>().ok()? {
        0..=299 => None,
        486 => Some("USER_BUSY"),
        503 => Some("NORMAL_TEMPORARY_FAILURE"),
        403 | 603 => Some("CALL_REJECTED"),
        _ => Some("NORMAL_CLEARING"),
    }
}

/// A variable of an application argument's `%[name=value,...]` prefix:
/// FreeSWITCH sets those on the channel for the length of the application.
fn scope_variable<'a>(arg: &'a str, name: &str) -> Option<&'a str> {
    let vars = arg.strip_prefix("%[")?.split_once(']')?.0;
    vars.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// `DIALSTATUS` as `switch_ivr_originate` derives it from the failure cause.
pub fn dial_status(cause: &str) -> &'static str {
    match cause {
        "SUCCESS" => "SUCCESS",
        "USER_BUSY" => "BUSY",
        "NO_ANSWER" | "NO_USER_RESPONSE" => "NOANSWER",
        "ORIGINATOR_CANCEL" => "CANCEL",
        "CALL_REJECTED" => "DONTCALL",
        "INVALID_NUMBER_FORMAT" => "INVALIDARGS",
        _ => "CHANUNAVAIL",
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Replaces the value of `name`, or appends it before `Content-Type` so the
/// variables stay together as in the captures.
fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    if let Some(slot) = headers.iter_mut().find(|(n, _)| n == name) {
        slot.1 = value.to_owned();
        return;
    }
    let at = headers
        .iter()
        .position(|(n, _)| n == "Content-Type")
        .unwrap_or(headers.len());
    headers.insert(at, (name.to_owned(), value.to_owned()));
}

fn reply(text: &str) -> Vec<u8> {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n").into_bytes()
}

fn injection_frame(injection: &Injection) -> Vec<u8> {
    match injection {
        Injection::UnknownContentType => {
            b"Content-Type: text/rude-rejection\nContent-Length: 12\n\nAccess Deny\n".to_vec()
        }
        Injection::OversizedBody(length) => {
            let mut frame = format!("Content-Length: {length}\nContent-Type: text/event-plain\n\n")
                .into_bytes();
            frame.resize(frame.len() + length, b'x');
            frame
        }
    }
}

/// A header block with every value URL-encoded as `switch_event_serialize`
/// does, ending in a blank line.
pub fn encode_block(headers: &[(String, String)]) -> Vec<u8> {
    let mut block = String::new();
    for (name, value) in headers {
        block.push_str(name);
        block.push_str(": ");
        block.push_str(&url_encode(value));
        block.push('\n');
    }
    block.push('\n');
    block.into_bytes()
}

/// FreeSWITCH's `switch_url_encode`: bytes outside 0x20–0x7E and the reserved
/// characters become `%XX`, an existing `%XX` is kept, empty is `_undef_`.
pub fn url_encode(value: &str) -> String {
    const RESERVED: &[u8] = b"\r\n #%&+:;<=>?@[\\]^`{|}\"";
    if value.is_empty() {
        return "_undef_".into();
    }
    let bytes = value.as_bytes();
    let mut encoded = String::with_capacity(bytes.len());
    for (index, &byte) in bytes.iter().enumerate() {
        let escape_kept = byte == b'%'
            && bytes.len() > index + 2
            && bytes[index + 1].is_ascii_hexdigit()
            && bytes[index + 2].is_ascii_hexdigit();
        if escape_kept || ((0x20..=0x7e).contains(&byte) && !RESERVED.contains(&byte)) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn url_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
