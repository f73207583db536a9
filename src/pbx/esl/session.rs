//! One outbound Event Socket session: FreeSWITCH connects per call, callguard
//! reads the channel data, decides, sets the variables and drives the call
//! with `sendmsg`, then exits so the dialplan goes on — or closes after the
//! hangup. The socket is never left parked.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::Framed;

use super::codec::{EslCodec, EslCodecError, EslCommand, EslMessage, Event, Headers};
use super::multiset;
use super::recipe::{self, EslOp};
use crate::action::{Cause, Challenge, Pbx, Step};
use crate::call::unscreened::{self, NotScreened};
use crate::call::{self, CallDriver, CallInfo, DriveError, EndState, ErrorKind, StepOutcome};
use crate::config::types::{EslConfig, SetVars};
use crate::outcome::Unscreened;
use crate::policy::attest::IdentityInputs;
use crate::state::State;

/// Serves one connection from FreeSWITCH until the call is handed back or over.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    settings: Arc<EslConfig>,
) {
    let codec = EslCodec::new(settings.max_header_bytes, settings.max_body_bytes);
    let mut session = EslSession {
        framed: Framed::new(stream, codec),
        settings: settings.clone(),
        peer,
        hangup: None,
    };
    let started = std::time::Instant::now();
    let not_started = |e: &DriveError, why: Option<Unscreened>, info: CallInfo| {
        // Before the session has started there is no call to hang up (a
        // hangup is the peer closing); an I/O error stays one (kind="io").
        let kind = match e.kind() {
            ErrorKind::Hangup => ErrorKind::Closed,
            k => k,
        };
        state.metrics.count_session_error(Pbx::FreeSwitch, kind);
        tracing::warn!(%peer, call = ?info.unique_id, "ESL session not started: {e}");
        let Some(why) = why else { return };
        unscreened::not_screened(
            &state,
            NotScreened {
                pbx: Pbx::FreeSwitch,
                why,
                peer,
                info,
                detail: Some(e.to_string()),
                duration: started.elapsed(),
                suppressed: 0,
            },
        );
    };
    let info = match session.connect().await {
        Ok(info) => info,
        Err(e) => {
            let why = match e {
                // Closed before a byte came: a health check or port probe,
                // not a call (as for FastAGI); FreeSWITCH answers at once.
                DriveError::Closed => None,
                DriveError::Protocol(_) => Some(Unscreened::BadConnectReply),
                _ => Some(Unscreened::NoConnectReply),
            };
            return not_started(&e, why, CallInfo::default());
        }
    };
    if let Err(e) = session.subscribe().await {
        // The connect reply named the call: its row carries the unique id.
        return not_started(&e, Some(Unscreened::SetupFailed), info);
    }
    let outcome = call::handle(&mut session, &info, &state, settings.decide_timeout).await;
    if session.hangup.is_none() && outcome.end_state != EndState::CallerHangup {
        // Hand the call back: the dialplan runs its next action.
        let _ = session.exit().await;
    }
    tracing::debug!(%peer, call = %info.unique_id, end = %outcome.end_state, "ESL session closed");
}

/// Hands a refused FreeSWITCH connection back so that the call goes on
/// unscreened (fail open), filling `info` from the channel data as it comes.
///
/// FreeSWITCH 1.10's `socket … async` launches the listener thread and only
/// then parks the channel; an `exit` that ends the listener before the park
/// has begun leaves the channel parked until the caller gives up (seen in the
/// lab, row f50, when the release answered within a millisecond). So the
/// release waits for proof that the park loop runs — the completion event of
/// one `log` application, which only the parked session executes, and which
/// also tells the FreeSWITCH log why the call was not screened — then exits.
/// The caller bounds the whole release.
pub(crate) async fn release(stream: TcpStream, peer: SocketAddr, why: &str, info: &mut CallInfo) {
    // Short bounds: a peer that is not FreeSWITCH, or one too busy to answer,
    // still gets its `exit` within about two seconds.
    let settings = EslConfig {
        connect_timeout: Duration::from_secs(1),
        reply_timeout: Duration::from_millis(300),
        ..EslConfig::default()
    };
    let codec = EslCodec::new(settings.max_header_bytes, settings.max_body_bytes);
    let mut session = EslSession {
        framed: Framed::new(stream, codec),
        settings: Arc::new(settings),
        peer,
        hangup: None,
    };
    match session.connect().await {
        Ok(got) => *info = got,
        Err(_) => return,
    }
    let answered = |r: Result<(), DriveError>| matches!(r, Ok(()) | Err(DriveError::Timeout(_)));
    if !answered(session.command(EslCommand::MyEvents).await.map(drop)) {
        return;
    }
    let note = format!("WARNING callguard: {why}; the call goes on unscreened");
    let bound = Some(Duration::from_millis(500));
    let logged = session.execute_app_within("log", &note, bound).await;
    if !answered(logged.map(drop)) {
        return;
    }
    let _ = session.exit().await;
}

/// ESL errors keep their kind up to the metrics: an I/O error (a peer that
/// vanished: `EPIPE`, `ECONNRESET`) is `kind="io"`, not a protocol error.
impl From<EslCodecError> for DriveError {
    fn from(e: EslCodecError) -> DriveError {
        match e {
            EslCodecError::Io(e) => DriveError::Io(e),
            other => DriveError::Protocol(other.to_string()),
        }
    }
}

struct EslSession {
    framed: Framed<TcpStream, EslCodec>,
    settings: Arc<EslConfig>,
    peer: SocketAddr,
    /// Set once the channel hung up, with the cause FreeSWITCH gave.
    hangup: Option<Option<String>>,
}

impl EslSession {
    /// `connect` and its reply, the channel data.
    async fn connect(&mut self) -> Result<CallInfo, DriveError> {
        // One deadline for `connect` and its whole reply: a peer trickling
        // bytes or sending frames we skip cannot keep the session open.
        let deadline = Instant::now() + self.settings.connect_timeout;
        timeout_at(deadline, self.framed.send(EslCommand::Connect))
            .await
            .map_err(|_| DriveError::Timeout("FreeSWITCH to read connect"))??;
        let headers = loop {
            match self.next(Some(deadline), "the connect reply").await? {
                EslMessage::ChannelData(h) => break h,
                EslMessage::Unknown { content_type } => {
                    tracing::debug!(peer = %self.peer, "skipped frame of type {content_type}");
                }
                other => {
                    return Err(DriveError::Protocol(format!(
                        "expected the channel data, got {}",
                        kind(&other)
                    )));
                }
            }
        };
        Ok(call_info(&headers))
    }

    /// `myevents` and `linger`, once the channel data has come.
    async fn subscribe(&mut self) -> Result<(), DriveError> {
        self.command(EslCommand::MyEvents).await?;
        self.command(EslCommand::Linger(self.settings.linger))
            .await?;
        Ok(())
    }

    /// Writes one command within `reply_timeout`: a peer that stops reading
    /// must not hold the task once the socket buffers are full.
    async fn send(&mut self, cmd: EslCommand) -> Result<(), DriveError> {
        tokio::time::timeout(self.settings.reply_timeout, self.framed.send(cmd))
            .await
            .map_err(|_| DriveError::Timeout("FreeSWITCH to read a command"))?
            .map_err(DriveError::from)
    }

    /// The next frame, before `deadline` (None: no limit, for apps that last the call).
    async fn next(
        &mut self,
        deadline: Option<Instant>,
        what: &'static str,
    ) -> Result<EslMessage, DriveError> {
        let read = self.framed.next();
        let frame = match deadline {
            Some(d) => timeout_at(d, read)
                .await
                .map_err(|_| DriveError::Timeout(what))?,
            None => read.await,
        };
        match frame {
            Some(Ok(m)) => Ok(m),
            Some(Err(EslCodecError::Io(e))) => Err(DriveError::Io(e)),
            Some(Err(e)) => Err(DriveError::Protocol(format!("from {}: {e}", self.peer))),
            None => Err(match &self.hangup {
                Some(cause) => DriveError::Hangup {
                    cause: cause.clone(),
                },
                None => DriveError::Closed,
            }),
        }
    }

    /// Notes hangups and disconnects in events that are not the one awaited.
    fn observe(&mut self, m: &EslMessage) {
        match m {
            // The first event that names a cause wins.
            EslMessage::Event(e)
                if matches!(e.name(), Some("CHANNEL_HANGUP" | "CHANNEL_HANGUP_COMPLETE"))
                    && matches!(self.hangup, None | Some(None)) =>
            {
                self.hangup = Some(e.hangup_cause().map(str::to_string));
            }
            EslMessage::Disconnect { .. } if self.hangup.is_none() => self.hangup = Some(None),
            _ => {}
        }
    }

    /// Sends a command and waits for its `command/reply`.
    async fn command(&mut self, cmd: EslCommand) -> Result<String, DriveError> {
        self.send(cmd).await?;
        // One deadline for the reply, however many events come first.
        let deadline = Instant::now() + self.settings.reply_timeout;
        loop {
            let m = self.next(Some(deadline), "a command reply").await?;
            self.observe(&m);
            if let EslMessage::CommandReply { reply_text, .. } = m {
                if reply_text.starts_with("-ERR") {
                    return Err(DriveError::Protocol(format!(
                        "FreeSWITCH refused: {reply_text}"
                    )));
                }
                return Ok(reply_text);
            }
        }
    }

    /// Executes an application and waits for its completion event.
    async fn execute_app(
        &mut self,
        app: &str,
        arg: &str,
        lasts: bool,
    ) -> Result<Event, DriveError> {
        let wait = (!lasts).then_some(self.settings.reply_timeout);
        self.execute_app_within(app, arg, wait).await
    }

    /// [`EslSession::execute_app`] with its own bound on the completion.
    async fn execute_app_within(
        &mut self,
        app: &str,
        arg: &str,
        wait: Option<Duration>,
    ) -> Result<Event, DriveError> {
        let uuid = crate::random::uuid_v4();
        self.command(EslCommand::Execute {
            app: app.to_string(),
            arg: (!arg.is_empty()).then(|| arg.to_string()),
            event_lock: true,
            event_uuid: uuid.clone(),
        })
        .await?;
        let wait = wait.map(|w| Instant::now() + w);
        loop {
            if let Some(cause) = &self.hangup {
                return Err(DriveError::Hangup {
                    cause: cause.clone(),
                });
            }
            match self.next(wait, "an application to complete").await? {
                EslMessage::Event(e)
                    if e.name() == Some("CHANNEL_EXECUTE_COMPLETE")
                        && e.application_uuid() == Some(uuid.as_str()) =>
                {
                    return Ok(e);
                }
                m => self.observe(&m),
            }
        }
    }

    async fn exit(&mut self) -> Result<(), DriveError> {
        self.send(EslCommand::Exit).await?;
        // Read the "+OK bye" and the disconnect notice, briefly; then close.
        let deadline = Duration::from_secs(2);
        let _ = tokio::time::timeout(deadline, async {
            while let Some(Ok(m)) = self.framed.next().await {
                if matches!(m, EslMessage::Disconnect { .. }) {
                    break;
                }
            }
        })
        .await;
        Ok(())
    }
}

/// The FreeSWITCH channel variable for a variable suffix (`VERDICT` →
/// `callguard_verdict`): the known ones spelled out, so a call allocates no name.
fn var_name(suffix: &str) -> Cow<'static, str> {
    Cow::Borrowed(match suffix {
        crate::call::CALLER_NAME_VAR => "effective_caller_id_name",
        "VERDICT" => "callguard_verdict",
        "ACTION" => "callguard_action",
        "RULE" => "callguard_rule",
        "LIST" => "callguard_list",
        "REASON" => "callguard_reason",
        "ERROR" => "callguard_error",
        other => return Cow::Owned(format!("callguard_{}", other.to_ascii_lowercase())),
    })
}

fn kind(m: &EslMessage) -> &'static str {
    match m {
        EslMessage::ChannelData(_) => "channel data",
        EslMessage::CommandReply { .. } => "a command reply",
        EslMessage::ApiResponse { .. } => "an api response",
        EslMessage::Event(_) => "an event",
        EslMessage::Disconnect { .. } => "a disconnect notice",
        EslMessage::Unknown { .. } => "an unknown frame",
    }
}

/// What the connect reply tells about the call.
pub(crate) fn call_info(h: &Headers) -> CallInfo {
    let get = |n: &str| h.get(n).unwrap_or("").trim().to_string();
    let unique_id = h
        .get("Unique-ID")
        .or_else(|| h.get("Channel-Unique-ID"))
        .unwrap_or("")
        .to_string();
    CallInfo {
        unique_id,
        caller: get("Caller-Caller-ID-Number"),
        caller_name: get("Caller-Caller-ID-Name"),
        presentation_restricted: h
            .get("Caller-Privacy-Hide-Number")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        dids: vec![get("Caller-Destination-Number")],
        trunk_hint: h
            .get("variable_callguard_trunk")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        tenant_hint: h
            .get("variable_callguard_tenant")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        domain: h
            .get("variable_domain_name")
            .map(str::trim)
            .filter(|t| !t.is_empty() && *t != "_undef_")
            .map(str::to_string),
        // mod_sofia's copies of the INVITE's headers (values URL-decoded).
        pai: h
            .get("variable_sip_P-Asserted-Identity")
            .filter(|v| !v.is_empty() && *v != "_undef_")
            .map(str::to_string),
        from: from_header(h),
        edge_action: h
            .get("variable_callguard_edge_action")
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "_undef_")
            .map(str::to_string),
        // `callguard_feature=block-last` (and `callguard_ext`,
        // `callguard_number`) set before `socket`: a feature code or note.
        feature: h.get("variable_callguard_feature").and_then(|op| {
            crate::call::feature::FeatureRequest::new(
                op,
                h.get("variable_callguard_ext"),
                h.get("variable_callguard_number"),
            )
        }),
    }
}

/// The From text to read a `verstat` from. mod_sofia rebuilds
/// `sip_full_from` without the user part's parameters, so the 3GPP form
/// `sip:+15551234567;verstat=TN-Validation-Failed@carrier` arrives only in
/// `sip_from_uri` (`+15551234567;verstat=…@carrier`, seen on FreeSWITCH
/// 1.10.12 in the lab); a verstat after the host stays in `sip_full_from`.
fn from_header(h: &Headers) -> Option<String> {
    let set = |name: &str| {
        h.get(name)
            .filter(|v| !v.is_empty() && *v != "_undef_")
            .map(str::to_string)
    };
    let full = set("variable_sip_full_from");
    let has_verstat = |v: &Option<String>| {
        v.as_deref()
            .and_then(crate::policy::attest::verstat)
            .is_some()
    };
    if has_verstat(&full) {
        return full;
    }
    let uri = set("variable_sip_from_uri").map(|u| format!("<sip:{u}>"));
    if has_verstat(&uri) { uri } else { full }
}

impl CallDriver for EslSession {
    fn pbx(&self) -> Pbx {
        Pbx::FreeSwitch
    }

    /// FreeSWITCH sent the headers with the channel data: no round trip.
    async fn identity(&mut self, info: &CallInfo) -> Result<IdentityInputs, DriveError> {
        Ok(IdentityInputs {
            stir_shaken: None,
            pai: info.pai.clone(),
            from: info.from.clone(),
        })
    }

    async fn challenge(&mut self, c: &Challenge, digit: u8) -> Result<bool, DriveError> {
        let EslOp::Execute { app, arg } = recipe::challenge_start(c) else {
            return Err(DriveError::Protocol("no start for the challenge".into()));
        };
        self.execute_app(app, &arg, false).await?;
        // Every try plays the prompt and waits for the key: bounded by the
        // tries, each with the reply timeout for the sound and the key's own.
        let per_try = self.settings.reply_timeout + Duration::from_millis(u64::from(c.timeout_ms));
        let wait = per_try * c.tries.max(1);
        let done = self
            .execute_app_within(
                "play_and_get_digits",
                &recipe::challenge_arg(c, digit),
                Some(wait),
            )
            .await?;
        let got = done.get(&format!("variable_{}", recipe::CHALLENGE_VAR));
        Ok(got == Some(char::from(b'0' + digit.min(9)).encode_utf8(&mut [0; 4])))
    }

    async fn set_vars(&mut self, vars: &[(&'static str, &str)]) -> Result<(), DriveError> {
        let names: Vec<Cow<'static, str>> = vars.iter().map(|(n, _)| var_name(n)).collect();
        // One round trip for the whole block, unless configured otherwise or (never with
        // real names) every delimiter occurs in some value.
        let one = match self.settings.set_vars {
            SetVars::OneCommand => {
                let pairs: Vec<(&str, &str)> = names
                    .iter()
                    .zip(vars)
                    .map(|(n, (_, v))| (&**n, *v))
                    .collect();
                multiset::multiset_arg(&pairs)
            }
            SetVars::PerVariable => None,
        };
        match one {
            Some(arg) => {
                self.execute_app("multiset", &arg, false).await?;
            }
            None => {
                for (name, (_, value)) in names.iter().zip(vars) {
                    self.execute_app("set", &multiset::set_arg(name, value), false)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn execute(&mut self, step: &Step) -> Result<StepOutcome, DriveError> {
        let ops = recipe::commands(step);
        let mut outcome = StepOutcome::Completed;
        for op in &ops {
            match op {
                EslOp::Execute { app, arg } => {
                    let done = match self.execute_app(app, arg, recipe::lasts_the_call(op)).await {
                        Ok(done) => done,
                        // `respond 486` hangs the channel up itself: that
                        // hangup is the rejection done, not the caller leaving.
                        Err(DriveError::Hangup { .. }) if recipe::ends_the_call(op) => {
                            return Ok(StepOutcome::Completed);
                        }
                        Err(e) => return Err(e),
                    };
                    if *app == "bridge" {
                        let status = done
                            .get("variable_DIALSTATUS")
                            .or_else(|| done.get("variable_originate_disposition"))
                            .unwrap_or("UNKNOWN")
                            .to_string();
                        if !matches!(status.as_str(), "SUCCESS" | "ANSWER") {
                            outcome = StepOutcome::NotAnswered { status };
                            continue;
                        }
                        // The VIP and the agent have talked and the agent hung
                        // up: the call is over. Handing it back would send the
                        // VIP on into the dialplan (the normal destination
                        // would ring again), so end it, as Asterisk's Dial does.
                        self.hang_up(Cause::NORMAL_CLEARING.name()).await?;
                        return Ok(StepOutcome::Answered { status });
                    }
                }
                EslOp::Hangup { cause } => {
                    self.hang_up(cause).await?;
                    return Ok(StepOutcome::Completed);
                }
            }
        }
        Ok(outcome)
    }
}

impl EslSession {
    /// `call-command: hangup`; the call is over by our own hand, so the
    /// session closes without handing the call back (no `exit`).
    async fn hang_up(&mut self, cause: &str) -> Result<(), DriveError> {
        self.command(EslCommand::Hangup {
            cause: cause.to_string(),
        })
        .await?;
        if self.hangup.is_none() {
            self.hangup = Some(Some(cause.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::multiset::inert;
    use super::*;

    #[test]
    fn set_values_cannot_expand() {
        assert_eq!(inert("${system rm -rf /}"), "$ {system rm -rf /}");
        assert_eq!(inert("$${hostname}"), "$$ {hostname}");
        assert_eq!(inert("+15551234567"), "+15551234567");
    }

    #[test]
    fn call_info_from_the_connect_reply() {
        let mut h = Headers::new();
        for (n, v) in [
            ("Unique-ID", "a6057aed"),
            ("Caller-Caller-ID-Number", "+15551234567"),
            ("Caller-Caller-ID-Name", "Test"),
            ("Caller-Destination-Number", "+18005550100"),
            ("Caller-Privacy-Hide-Number", "true"),
            ("variable_callguard_trunk", "support"),
        ] {
            h.push(n, v);
        }
        let i = call_info(&h);
        assert_eq!(i.unique_id, "a6057aed");
        assert_eq!(i.caller, "+15551234567");
        assert!(i.presentation_restricted);
        assert_eq!(i.dids, vec!["+18005550100".to_string()]);
        assert_eq!(i.trunk_hint.as_deref(), Some("support"));
    }
}
