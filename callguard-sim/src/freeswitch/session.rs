//! One call played against an outbound ESL server: the connect reply, then each command
//! answered with FreeSWITCH's replies and events.

use super::wire::*;
use super::*;

/// The channel as the simulator tracks it.
pub(super) struct Session<'r> {
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
    pub(super) async fn start(
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
                    super::parse::multiset(&arg)
                } else {
                    super::parse::base_set(&arg).map(|s| s.into_iter().collect())
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
