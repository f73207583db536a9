//! One FastAGI session: Asterisk connects per call, sends its environment,
//! callguard decides, sets the CALLGUARD_* variables, drives the call with
//! EXEC commands and closes — promptly, because Asterisk never times out
//! waiting for us and a session left open holds the channel.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::codec::{AgiCodec, AgiCommand, AgiError, AgiFrame, Reply};
use super::env::AgiEnv;
use super::mset;
use super::recipe::{self, AgiOp};
use crate::action::{Challenge, Pbx, Step};
use crate::call::unscreened::{self, NotScreened};
use crate::call::{self, CallDriver, CallInfo, DriveError, ErrorKind, StepOutcome};
use crate::config::types::{AgiConfig, SetVars};
use crate::outcome::Unscreened;
use crate::policy::attest::IdentityInputs;
use crate::state::State;

/// Variable values are cut to this many bytes: the dialplan needs a short
/// reason, and every command must stay far below Asterisk's line buffer.
const MAX_VALUE: usize = 512;

/// Serves one connection from Asterisk.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: Arc<State>,
    settings: Arc<AgiConfig>,
) {
    let started = std::time::Instant::now();
    let mut framed = Framed::new(stream, AgiCodec::new());
    let failed = match tokio::time::timeout(settings.env_timeout, framed.next()).await {
        Ok(Some(Ok(AgiFrame::Env(env)))) => {
            return screen(framed, env, peer, &state, settings).await;
        }
        // A connection closed without a byte: a health check or port probe,
        // not a call (Asterisk always sends its environment at once).
        Ok(None) => return,
        Ok(Some(Ok(_))) => (
            ErrorKind::Protocol,
            Unscreened::BadEnvironment,
            "a reply before the environment".to_string(),
        ),
        Ok(Some(Err(e))) => {
            let why = match e {
                AgiError::Io(_) | AgiError::Truncated(_) => Unscreened::EnvironmentIncomplete,
                _ => Unscreened::BadEnvironment,
            };
            let text = e.to_string();
            (DriveError::from(e).kind(), why, text)
        }
        Err(_) => (
            ErrorKind::Timeout,
            Unscreened::EnvironmentIncomplete,
            format!("no complete environment within {:?}", settings.env_timeout),
        ),
    };
    let (kind, why, detail) = failed;
    state.metrics.count_session_error(Pbx::Asterisk, kind);
    // What arrived of the environment still names the call.
    let env = framed.codec().partial_env();
    let lines = env.as_ref().map_or(0, |e| e.pairs().len());
    let detail = format!("{detail}; {lines} environment lines read");
    let info = env.as_ref().map(call_info).unwrap_or_default();
    tracing::warn!(%peer, call = ?info.unique_id, "FastAGI session not started: {detail}");
    unscreened::not_screened(
        &state,
        NotScreened {
            pbx: Pbx::Asterisk,
            why,
            peer,
            info,
            detail: Some(detail),
            duration: started.elapsed(),
            suppressed: 0,
        },
    );
}

/// Screens the call whose environment has arrived, then closes.
async fn screen(
    framed: Framed<TcpStream, AgiCodec>,
    env: AgiEnv,
    peer: SocketAddr,
    state: &State,
    settings: Arc<AgiConfig>,
) {
    let info = call_info(&env);
    let mut session = AgiSession {
        framed,
        settings: settings.clone(),
        hung_up: false,
    };
    let outcome = call::handle(&mut session, &info, state, settings.decide_timeout).await;
    tracing::debug!(%peer, call = %info.unique_id, end = %outcome.end_state, "FastAGI session done");
    session.close().await;
}

/// FastAGI errors keep their kind up to the metrics: an I/O error (a peer
/// that vanished: `EPIPE`, `ECONNRESET`) is `kind="io"`, not a protocol error.
impl From<AgiError> for DriveError {
    fn from(e: AgiError) -> DriveError {
        match e {
            AgiError::Io(e) => DriveError::Io(e),
            other => DriveError::Protocol(other.to_string()),
        }
    }
}

/// What the environment tells about the call. Caller data comes from the
/// `agi_callerid*` lines, never from arguments (a comma in a caller name
/// shifts `agi_arg_N`).
pub(crate) fn call_info(env: &AgiEnv) -> CallInfo {
    let trunk_hint = env.query_param("trunk").map(str::to_string).or_else(|| {
        env.args()
            .into_iter()
            .find_map(|a| a.trim().strip_prefix("trunk=").map(str::to_string))
    });
    let tenant_hint = env.query_param("tenant").map(str::to_string).or_else(|| {
        env.args()
            .into_iter()
            .find_map(|a| a.trim().strip_prefix("tenant=").map(str::to_string))
    });
    CallInfo {
        unique_id: env.uniqueid().unwrap_or("").to_string(),
        caller: env.callerid().unwrap_or("").trim().to_string(),
        caller_name: env.calleridname().unwrap_or("").to_string(),
        presentation_restricted: env.presentation_restricted(),
        dids: [env.dnid(), env.extension()]
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect(),
        trunk_hint: trunk_hint.filter(|t| !t.trim().is_empty()),
        tenant_hint: tenant_hint.filter(|t| !t.trim().is_empty()),
        domain: None,
        pai: None,
        from: None,
        edge_action: env
            .query_param("edge_action")
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        feature: feature_request(env),
    }
}

/// `agi://…/feature?op=block-last&ext=101` (or `op=`, `ext=`, `number=` as
/// AGI arguments): a feature code or a dialplan note, not a call to screen.
fn feature_request(env: &AgiEnv) -> Option<crate::call::feature::FeatureRequest> {
    let script = env.network_script().or_else(|| {
        env.request()
            .and_then(|r| r.split_once("://")?.1.split_once('/').map(|(_, p)| p))
    })?;
    let path = script.split_once('?').map_or(script, |(p, _)| p);
    if path.trim_matches('/') != "feature" {
        return None;
    }
    let args = env.args();
    let param = |name: &str| {
        env.query_param(name).or_else(|| {
            let prefix = format!("{name}=");
            args.iter()
                .find_map(|a| a.trim().strip_prefix(prefix.as_str()))
        })
    };
    let op = param("op").unwrap_or("");
    Some(
        crate::call::feature::FeatureRequest::new(op, param("ext"), param("number"))
            .unwrap_or_else(crate::call::feature::FeatureRequest::unknown),
    )
}

/// The channel variable for a variable suffix (`VERDICT` → `CALLGUARD_VERDICT`): the
/// known ones spelled out, so a call allocates no name.
fn var_name(suffix: &str) -> Cow<'static, str> {
    Cow::Borrowed(match suffix {
        crate::call::CALLER_NAME_VAR => "CALLERID(name)",
        "VERDICT" => "CALLGUARD_VERDICT",
        "ACTION" => "CALLGUARD_ACTION",
        "RULE" => "CALLGUARD_RULE",
        "LIST" => "CALLGUARD_LIST",
        "REASON" => "CALLGUARD_REASON",
        "ERROR" => "CALLGUARD_ERROR",
        other => return Cow::Owned(format!("CALLGUARD_{other}")),
    })
}

struct AgiSession {
    framed: Framed<TcpStream, AgiCodec>,
    settings: Arc<AgiConfig>,
    /// Asterisk sent `HANGUP` while the session was running: the caller left.
    hung_up: bool,
}

fn cut(value: &str) -> &str {
    if value.len() <= MAX_VALUE {
        return value;
    }
    let mut end = MAX_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

impl AgiSession {
    /// Sends one command and returns its reply; `HANGUP` notices that arrive
    /// meanwhile (even before the reply) are noted, never taken as the reply.
    async fn command(
        &mut self,
        cmd: AgiCommand,
        lasts_the_call: bool,
    ) -> Result<Reply, DriveError> {
        let wait = (!lasts_the_call).then_some(self.settings.reply_timeout);
        self.command_within(cmd, wait).await
    }

    /// [`AgiSession::command`] with its own bound on the reply (`None`: none).
    async fn command_within(
        &mut self,
        cmd: AgiCommand,
        wait: Option<Duration>,
    ) -> Result<Reply, DriveError> {
        // A peer that stops reading must not hold the task: the write is
        // bounded like a reply, even for commands that last the call.
        tokio::time::timeout(self.settings.reply_timeout, self.framed.send(cmd))
            .await
            .map_err(|_| DriveError::Timeout("Asterisk to read a command"))??;
        // One deadline for the reply, not one per frame: a peer trickling
        // `HANGUP` lines cannot keep the session open past it.
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let next = self.framed.next();
            let frame = match deadline {
                None => next.await,
                Some(d) => tokio::time::timeout_at(d, next)
                    .await
                    .map_err(|_| DriveError::Timeout("a reply from Asterisk"))?,
            };
            match frame {
                Some(Ok(AgiFrame::Hangup)) => self.hung_up = true,
                Some(Ok(AgiFrame::Reply(r))) => {
                    if r.is_hangup() {
                        self.hung_up = true;
                    }
                    return Ok(r);
                }
                Some(Ok(AgiFrame::Env(_))) => {
                    return Err(DriveError::Protocol("a second environment block".into()));
                }
                Some(Err(e)) => return Err(e.into()),
                None if self.hung_up => return Err(DriveError::Hangup { cause: None }),
                None => return Err(DriveError::Closed),
            }
        }
    }

    /// Closes our side and reads Asterisk's closing `HANGUP` (briefly), so
    /// the connection ends with a FIN rather than a reset.
    async fn close(self) {
        let mut stream = self.framed.into_inner();
        let _ = stream.shutdown().await;
        let mut sink = [0u8; 256];
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
    }
}

impl AgiSession {
    /// `GET VARIABLE name`: the value, or `None` when unset.
    async fn get_var(&mut self, name: &str) -> Result<Option<String>, DriveError> {
        let r = self.command(AgiCommand::get_variable(name), false).await?;
        if self.hung_up {
            return Err(DriveError::Hangup { cause: None });
        }
        Ok(r.variable().map(str::to_string).filter(|v| !v.is_empty()))
    }

    /// One command of a challenge: a hangup (notice or `result=-1`) ends it,
    /// a reply without a result (510 / 511 / 520) is a protocol error.
    async fn challenge_command(
        &mut self,
        cmd: AgiCommand,
        wait: Duration,
    ) -> Result<Reply, DriveError> {
        if self.hung_up {
            return Err(DriveError::Hangup { cause: None });
        }
        let line = cmd.to_line().unwrap_or_default();
        let reply = self.command_within(cmd, Some(wait)).await?;
        if self.hung_up || reply.result() == Some(-1) {
            self.hung_up = true;
            return Err(DriveError::Hangup { cause: None });
        }
        if reply.result().is_none() {
            return Err(DriveError::Protocol(format!(
                "Asterisk refused {:?}",
                line.trim_end()
            )));
        }
        Ok(reply)
    }
}

impl CallDriver for AgiSession {
    fn pbx(&self) -> Pbx {
        Pbx::Asterisk
    }

    /// Asterisk's own verification first (`STIR_SHAKEN(count)`, then the
    /// first identity's result and level), else the PJSIP headers carrying
    /// the carrier's `verstat`. Each is one `GET VARIABLE`; a function or
    /// header that is not there answers `200 result=0`.
    async fn identity(&mut self, _info: &CallInfo) -> Result<IdentityInputs, DriveError> {
        let mut inputs = IdentityInputs::default();
        let count = self.get_var("STIR_SHAKEN(count)").await?;
        if count
            .as_deref()
            .and_then(|c| c.trim().parse::<u32>().ok())
            .unwrap_or(0)
            > 0
        {
            let result = self.get_var("STIR_SHAKEN(0,verify_result)").await?;
            let level = self.get_var("STIR_SHAKEN(0,attestation)").await?;
            inputs.stir_shaken = Some((result.unwrap_or_default(), level.unwrap_or_default()));
            if inputs.stir_decides() {
                return Ok(inputs);
            }
        }
        inputs.pai = self
            .get_var("PJSIP_HEADER(read,P-Asserted-Identity)")
            .await?;
        if inputs
            .pai
            .as_deref()
            .and_then(crate::policy::attest::verstat)
            .is_none()
        {
            inputs.from = self.get_var("PJSIP_HEADER(read,From)").await?;
        }
        Ok(inputs)
    }

    async fn challenge(&mut self, c: &Challenge, digit: u8) -> Result<bool, DriveError> {
        let want = char::from(b'0' + digit.min(9));
        // A prompt plays in well under the reply timeout; the wait for the
        // key gets its own timeout on top.
        let wait = self.settings.reply_timeout;
        let key_wait = wait + Duration::from_millis(u64::from(c.timeout_ms));
        let start = recipe::challenge_start(c);
        self.challenge_command(start, wait).await?;
        for attempt in 0..c.tries {
            if attempt > 0
                && let Some(cmd) = recipe::challenge_invalid(c)
            {
                self.challenge_command(cmd, wait).await?;
            }
            let mut key = None;
            for cmd in recipe::challenge_try(c, digit) {
                let bound = if matches!(cmd, AgiCommand::WaitForDigit { .. }) {
                    key_wait
                } else {
                    wait
                };
                let reply = self.challenge_command(cmd, bound).await?;
                key = recipe::pressed(reply.result());
                if key.is_some() {
                    break;
                }
            }
            if key == Some(want) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn set_vars(&mut self, vars: &[(&'static str, &str)]) -> Result<(), DriveError> {
        let names: Vec<Cow<'static, str>> = vars.iter().map(|(n, _)| var_name(n)).collect();
        let pairs: Vec<(&str, &str)> = names
            .iter()
            .zip(vars)
            .map(|(n, (_, v))| (&**n, cut(v)))
            .collect();
        let cmds = match self.settings.set_vars {
            // One round trip (more only when values are too long for one line).
            SetVars::OneCommand => mset::mset_commands(&pairs),
            SetVars::PerVariable => pairs
                .iter()
                .map(|(n, v)| AgiCommand::set_variable(*n, *v))
                .collect(),
        };
        for cmd in cmds {
            let reply = self.command(cmd, false).await?;
            if reply.result() == Some(-2) {
                return Err(DriveError::Protocol(
                    "Asterisk has no application MSet (set agi.set_vars: per_variable)".into(),
                ));
            }
        }
        if self.hung_up {
            return Err(DriveError::Hangup { cause: None });
        }
        Ok(())
    }

    async fn execute(&mut self, step: &Step) -> Result<StepOutcome, DriveError> {
        // Rejecting ends the call anyway: a caller gone meanwhile is no error,
        // and the Hangup still runs (511 / -1 on a dead channel is normal).
        let ending = matches!(step, Step::Reject { .. });
        let mut status = None;
        for op in recipe::commands(step) {
            let lasts = recipe::lasts_the_call(&op);
            // Our own `EXEC Hangup` ends the call: the HANGUP that follows is
            // the step done, not the caller leaving.
            let hangs_up = matches!(op, AgiOp::Exec { app: "Hangup", .. });
            // A caller who left during Dial or VoiceMail: stop there (only the
            // dial status is still read, for the log).
            if self.hung_up && !ending && !matches!(op, AgiOp::GetVar { .. }) {
                return Err(DriveError::Hangup { cause: None });
            }
            let reply = match &op {
                AgiOp::Exec { app, data } => {
                    self.command(AgiCommand::exec(*app, data.as_str()), lasts)
                        .await?
                }
                AgiOp::GetVar { name } => {
                    let r = self.command(AgiCommand::get_variable(*name), false).await?;
                    status = Some(r.variable().unwrap_or("").to_string());
                    continue;
                }
            };
            if let (AgiOp::Exec { app, .. }, Some(-2)) = (&op, reply.result()) {
                return Err(DriveError::Protocol(format!(
                    "Asterisk has no application {app}"
                )));
            }
            if hangs_up {
                return Ok(StepOutcome::Completed);
            }
            // Playback, Progress, Goto, VoiceMail… return -1 only when the
            // channel is gone (a missing sound returns 0); the HANGUP notice
            // may come after. Dial also returns -1 when the agent hangs up
            // after answering, so for Dial only that notice counts.
            let is_dial = matches!(op, AgiOp::Exec { app: "Dial", .. });
            if reply.result() == Some(-1) && !ending && !is_dial {
                self.hung_up = true;
            }
            if self.hung_up && !ending && !lasts {
                return Err(DriveError::Hangup { cause: None });
            }
        }
        match status {
            Some(s) if self.hung_up => Err(DriveError::Hangup { cause: Some(s) }),
            Some(s) if s == "ANSWER" => {
                // The VIP and the agent have talked and the agent hung up: the
                // call is over. Closing now would send the VIP on into the
                // dialplan (the normal destination would ring again), because
                // Dial under AGI does not end the channel as it does in a
                // dialplan.
                self.command(AgiCommand::exec("Hangup", "16"), false)
                    .await?;
                Ok(StepOutcome::Answered { status: s })
            }
            Some(s) => Ok(StepOutcome::NotAnswered { status: s }),
            None => Ok(StepOutcome::Completed),
        }
    }
}
