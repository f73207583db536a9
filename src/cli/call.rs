//! `callguard call`: one simulated call against a running `serve`, without a PBX.
//!
//! It plays the PBX over the real protocol, through the simulators of `callguard-sim` (the
//! ones the tests use, byte-exact from the captures): FastAGI as Asterisk's `AGI(agi://…)`
//! does, or FreeSWITCH's side of outbound ESL (the `socket` application connects to
//! callguard's ESL listener). It prints every command callguard sent, the variables it set
//! and what the PBX would do. Each call has a fresh unique id, so `callguard log` and
//! `block --from-call` find exactly this call.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};

use callguard_sim::{asterisk, freeswitch};

use super::CliError;

mod outcome;

/// Which PBX the call plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Pbx {
    /// Asterisk over FastAGI (`listen.agi`).
    Asterisk,
    /// FreeSWITCH over outbound Event Socket (`listen.esl`).
    Freeswitch,
}

#[derive(Args, Debug)]
pub struct CallArgs {
    /// The caller's number, as the PBX presents it (e.g. +442079999999, 5551234567, anonymous).
    pub caller: String,
    /// The dialled number (selects the trunk when --trunk does not name one).
    #[arg(long)]
    pub did: Option<String>,
    /// The trunk the dialplan names (`?trunk=` for Asterisk, `callguard_trunk` for FreeSWITCH).
    #[arg(long)]
    pub trunk: Option<String>,
    /// The PBX to play.
    #[arg(long, value_enum, default_value_t = Pbx::Asterisk)]
    pub pbx: Pbx,
    /// The running callguard, HOST:PORT (default: the config's listen.agi or listen.esl).
    #[arg(long)]
    pub server: Option<String>,
    /// The configuration whose listen address is used when --server is not given.
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// Seconds the whole call may take.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// What one call showed, PBX-neutral, for printing.
struct Played {
    /// Each command callguard sent, as one line.
    commands: Vec<String>,
    /// The variables callguard set, in order (the last value of each).
    variables: Vec<(String, String)>,
    /// What the PBX would do, e.g. "busy, then hang up (cause 17)".
    summary: String,
    /// Why the call could not be played (connection refused, time-out).
    failure: Option<String>,
}

pub(super) fn run(args: CallArgs) -> Result<(), CliError> {
    let addr = server_addr(&args)?;
    let unique_id = unique_id(args.pbx);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
    let timeout = Duration::from_secs(args.timeout.clamp(1, 600));
    let played = match args.pbx {
        Pbx::Asterisk => rt.block_on(play_asterisk(&args, addr, &unique_id, timeout)),
        Pbx::Freeswitch => rt.block_on(play_freeswitch(&args, addr, &unique_id, timeout)),
    };
    let (pbx, protocol) = match args.pbx {
        Pbx::Asterisk => ("Asterisk", "FastAGI"),
        Pbx::Freeswitch => ("FreeSWITCH", "outbound ESL"),
    };
    println!(
        "call {unique_id}: {} → callguard at {addr} ({pbx}, {protocol})",
        args.caller
    );
    println!("unique id: {unique_id}");
    println!("callguard sent:");
    for c in &played.commands {
        println!("  {c}");
    }
    if played.commands.is_empty() {
        println!("  (nothing)");
    }
    println!("variables:");
    for (name, value) in &played.variables {
        println!("  {name}={value}");
    }
    if played.variables.is_empty() {
        println!("  (none)");
    }
    println!("the PBX would: {}", played.summary);
    match played.failure {
        Some(why) => Err(CliError::failed(format!(
            "the call was not screened: {why}; a PBX would go on with the call (fail open)"
        ))),
        None => Ok(()),
    }
}

/// `--server`, else the config's listen address for the PBX (an unspecified address such
/// as 0.0.0.0 is reached on loopback).
fn server_addr(args: &CallArgs) -> Result<SocketAddr, CliError> {
    let (text, origin) = match &args.server {
        Some(s) => (s.clone(), "--server".to_string()),
        None => {
            let loaded = crate::config::load(&args.config).map_err(|p| {
                CliError::problems(&p)
                    .then("callguard call: name the running callguard with --server HOST:PORT")
            })?;
            let (key, value) = match args.pbx {
                Pbx::Asterisk => ("listen.agi", loaded.raw.listen.agi.clone()),
                Pbx::Freeswitch => ("listen.esl", loaded.raw.listen.esl.clone()),
            };
            let value = value.ok_or_else(|| {
                CliError::refused(format!(
                    "{}: {key} is off; name the running callguard with --server HOST:PORT",
                    args.config.display()
                ))
            })?;
            (value, format!("{} {key}", args.config.display()))
        }
    };
    let addr = text
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(super::running::reachable)
        .ok_or_else(|| CliError::refused(format!("{origin}: not a HOST:PORT: {text:?}")))?;
    if addr.port() == 0 {
        return Err(CliError::refused(format!(
            "{origin}: port 0 is not a running server; name it with --server HOST:PORT"
        )));
    }
    Ok(addr)
}

/// A fresh unique id in the PBX's own form: Asterisk's `<unix seconds>.<sequence>`,
/// FreeSWITCH's UUID.
pub(super) fn unique_id(pbx: Pbx) -> String {
    match pbx {
        Pbx::Asterisk => {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let n = u32::from_le_bytes(crate::random::bytes::<4>()) % 1_000_000;
            format!("{secs}.{n}")
        }
        Pbx::Freeswitch => crate::random::uuid_v4(),
    }
}

async fn play_asterisk(
    args: &CallArgs,
    addr: SocketAddr,
    unique_id: &str,
    timeout: Duration,
) -> Played {
    let script = match &args.trunk {
        Some(t) => format!("screen?trunk={t}"),
        None => "screen".to_string(),
    };
    let mut sim = asterisk::AsteriskSim::new()
        .callerid(&args.caller)
        .uniqueid(unique_id)
        .script(&script)
        .set_env("agi_request", &format!("agi://{addr}/{script}"))
        // A whisper bridge's agent answers (`GET VARIABLE DIALSTATUS`).
        .variable("DIALSTATUS", "ANSWER")
        .timeout(timeout);
    if args.caller.eq_ignore_ascii_case("anonymous") {
        sim = sim.calleridname("Anonymous");
    }
    if let Some(did) = &args.did {
        sim = sim.dnid(did).extension(did);
    }
    let r = sim.run(addr).await;
    // What callguard set: the channel's own DIALSTATUS (seeded above) is not.
    let mut variables: Vec<(String, String)> = r
        .variables
        .into_iter()
        .filter(|(name, _)| name != "DIALSTATUS")
        .collect();
    variables.sort();
    let failure = failure(r.error, r.timed_out, r.commands.is_empty());
    Played {
        summary: outcome::asterisk(&r.commands, r.timed_out),
        commands: r.commands,
        variables,
        failure,
    }
}

async fn play_freeswitch(
    args: &CallArgs,
    addr: SocketAddr,
    unique_id: &str,
    timeout: Duration,
) -> Played {
    let mut config = freeswitch::SimConfig {
        caller_number: args.caller.clone(),
        unique_id: unique_id.to_string(),
        variables: Vec::new(),
        overall_timeout: timeout,
        connect_timeout: timeout,
        ..freeswitch::SimConfig::default()
    };
    if let Some(t) = &args.trunk {
        config.variables.push(("callguard_trunk".into(), t.clone()));
    }
    if let Some(did) = &args.did {
        config.destination_number = did.clone();
    }
    let r = config.run(addr).await;
    let commands: Vec<String> = r.commands.iter().map(outcome::esl_line).collect();
    // The last value of each variable, in the order first set.
    let mut variables: Vec<(String, String)> = Vec::new();
    for (name, value) in &r.variables {
        match variables.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.clone(),
            None => variables.push((name.clone(), value.clone())),
        }
    }
    let failure = failure(r.error, r.timed_out, !r.connect_received);
    Played {
        summary: outcome::freeswitch(&r.commands, r.timed_out),
        commands,
        variables,
        failure,
    }
}

/// Why the call was not screened, if it was not.
fn failure(error: Option<String>, timed_out: bool, nothing: bool) -> Option<String> {
    match error {
        Some(e) => Some(e),
        None if timed_out && nothing => Some("no answer from callguard in time".into()),
        None if nothing => Some("callguard closed the connection without a command".into()),
        None => None,
    }
}
