//! Calls of every kind the shipped configuration can make, and the cut
//! points of each, for the chaos harness (`tests/chaos.rs`, `tests/chaos_http.rs`).
//!
//! A scenario is one action of the shipped file on one PBX, with the PBX's
//! side of it (the VIP team answers or not, the caller presses the right key,
//! a wrong one or none, the call carries a STIR/SHAKEN result). Its cut
//! points are not written down: the scenario is played once through the
//! relay and every message that crossed is a place to cut.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use callguard::action::Pbx;
use callguard::config::types::ActionKind;

use super::asterisk::{self, AsteriskSim};
use super::freeswitch::{self, BridgeOutcome, SimConfig};
use super::relay::{self, Cut, Dir, Fault, Proto, Relayed};
use super::shipped::Shipped;

/// The PBX's side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Plain,
    /// Asterisk verified a signature whose result does not decide: every
    /// attestation read is made (count, result, level, PAI, From).
    Attested,
    Answered,
    NoAnswer,
    KeyRight,
    KeyWrong,
    KeySilent,
}

/// The PBX sides each kind of action has.
pub fn variants(kind: ActionKind) -> &'static [Variant] {
    match kind {
        ActionKind::WhisperBridge => &[Variant::Answered, Variant::NoAnswer],
        ActionKind::Challenge => &[Variant::KeyRight, Variant::KeyWrong, Variant::KeySilent],
        _ => &[Variant::Plain],
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub pbx: Pbx,
    pub action: String,
    pub prefix: String,
    pub variant: Variant,
}

impl Scenario {
    pub fn name(&self) -> String {
        format!("{}/{}/{:?}", self.pbx.as_str(), self.action, self.variant)
    }
}

/// Every action of the shipped file on both PBXs, with each of its variants,
/// and the first action once more with a STIR/SHAKEN result on Asterisk.
pub fn scenarios(shipped: &Shipped) -> Vec<Scenario> {
    let mut out = Vec::new();
    for pbx in Pbx::ALL {
        for (action, kind) in &shipped.actions {
            for &variant in variants(*kind) {
                out.push(Scenario {
                    pbx,
                    action: action.clone(),
                    prefix: shipped.prefix(action),
                    variant,
                });
            }
        }
    }
    let (first, _) = &shipped.actions[0];
    out.push(Scenario {
        pbx: Pbx::Asterisk,
        action: first.clone(),
        prefix: shipped.prefix(first),
        variant: Variant::Attested,
    });
    out
}

/// What one call showed the PBX.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub unique_id: String,
    /// The commands, reduced to what does not change between calls
    /// (`EXEC Busy`, `GET VARIABLE STIR_SHAKEN(count)`, `sendmsg execute respond`).
    pub commands: Vec<String>,
    /// The action variable callguard set.
    pub action: Option<String>,
    /// The error variable callguard set (a call that failed open).
    pub error: Option<String>,
    pub failure: Option<String>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A caller and a unique id no other call of the run has: velocity rules
/// and learning count per caller, so each call is a first call.
pub fn fresh(prefix: &str) -> (String, String) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    (
        format!("{prefix}{:05}", n % 100_000),
        format!("chaos-{}-{n}", std::process::id()),
    )
}

fn agi_sim(s: &Scenario, caller: &str, uid: &str) -> AsteriskSim {
    let sim = AsteriskSim::new()
        .script("screen?trunk=support")
        .callerid(caller)
        .uniqueid(uid)
        .timeout(Duration::from_secs(20));
    match s.variant {
        Variant::Answered => sim.variable("DIALSTATUS", "ANSWER"),
        Variant::NoAnswer => sim.variable("DIALSTATUS", "NOANSWER"),
        Variant::KeyRight => sim.dtmf(asterisk::Dtmf::Heard),
        Variant::KeyWrong => sim.dtmf(asterisk::Dtmf::Wrong),
        Variant::KeySilent => sim.dtmf(asterisk::Dtmf::Silent),
        Variant::Attested => sim
            .variable("STIR_SHAKEN(count)", "1")
            .variable("STIR_SHAKEN(0,verify_result)", "missing_identity_hdr")
            .variable("STIR_SHAKEN(0,attestation)", "A"),
        Variant::Plain => sim,
    }
}

fn esl_sim(s: &Scenario, caller: &str, uid: &str) -> SimConfig {
    SimConfig {
        caller_number: caller.into(),
        unique_id: uid.into(),
        variables: vec![("callguard_trunk".into(), "support".into())],
        bridge: match s.variant {
            Variant::NoAnswer => BridgeOutcome::Unanswered {
                cause: "NO_ANSWER".into(),
            },
            _ => BridgeOutcome::Answered,
        },
        dtmf: match s.variant {
            Variant::KeyRight => freeswitch::Dtmf::Heard,
            Variant::KeyWrong => freeswitch::Dtmf::Wrong,
            _ => freeswitch::Dtmf::Silent,
        },
        overall_timeout: Duration::from_secs(20),
        ..SimConfig::default()
    }
}

/// `EXEC Busy 5` → `EXEC Busy`; `GET VARIABLE X` kept; others by their first two words.
fn agi_kind(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let n = if words.first() == Some(&"GET") { 3 } else { 2 };
    words[..n.min(words.len())].join(" ")
}

fn esl_kind(c: &freeswitch::SimCommand) -> String {
    let mut kind = c.line.clone();
    for h in ["call-command", "execute-app-name"] {
        if let Some(v) = c.header(h) {
            kind = format!("{kind} {v}");
        }
    }
    kind
}

/// Plays one call of `s` against `addr` (the service, or a relay).
pub async fn play(s: &Scenario, addr: SocketAddr) -> Seen {
    let (caller, uid) = fresh(&s.prefix);
    match s.pbx {
        Pbx::Asterisk => {
            let r = agi_sim(s, &caller, &uid).run(addr).await;
            Seen {
                unique_id: uid,
                commands: r.commands.iter().map(|c| agi_kind(c)).collect(),
                action: r.variables.get("CALLGUARD_ACTION").cloned(),
                error: r.variables.get("CALLGUARD_ERROR").cloned(),
                failure: r.error.clone().or(r.timed_out.then(|| "timed out".into())),
            }
        }
        Pbx::FreeSwitch => {
            let r = esl_sim(s, &caller, &uid).run(addr).await;
            Seen {
                unique_id: uid,
                commands: r.commands.iter().map(esl_kind).collect(),
                action: r.variable("callguard_action").map(str::to_owned),
                error: r.variable("callguard_error").map(str::to_owned),
                failure: r.error.clone().or(r.timed_out.then(|| "timed out".into())),
            }
        }
    }
}

pub fn proto(pbx: Pbx) -> Proto {
    match pbx {
        Pbx::Asterisk => Proto::Agi,
        Pbx::FreeSwitch => Proto::Esl,
    }
}

/// The scenario played through the relay, cut or not.
pub async fn play_relayed(
    s: &Scenario,
    service: SocketAddr,
    cut: Option<Cut>,
    stall_limit: Duration,
) -> (Seen, Relayed) {
    relay::relay(proto(s.pbx), service, cut, stall_limit, |addr| {
        play(s, addr)
    })
    .await
}

/// Checks a call was screened as the reference call of its scenario was:
/// the same action variable (for a challenge, its outcome's action), no
/// error variable, the same commands.
pub fn screened(s: &Scenario, seen: &Seen, reference: &Seen) -> Result<(), String> {
    if seen.action.is_none() || seen.action != reference.action || seen.error.is_some() {
        return Err(format!(
            "{}: action {:?} (expected {:?}), error {:?}, failure {:?}",
            s.name(),
            seen.action,
            reference.action,
            seen.error,
            seen.failure
        ));
    }
    if seen.commands != reference.commands {
        return Err(format!(
            "{}: commands {:?}, expected {:?}",
            s.name(),
            seen.commands,
            reference.commands
        ));
    }
    Ok(())
}

/// The reference call of a scenario, played directly: its rule's action
/// decided it (a challenge's variable names the outcome's action), nothing
/// failed.
pub async fn reference(s: &Scenario, addr: SocketAddr) -> Seen {
    let seen = play(s, addr).await;
    let challenge = matches!(
        s.variant,
        Variant::KeyRight | Variant::KeyWrong | Variant::KeySilent
    );
    assert!(
        seen.error.is_none()
            && seen.failure.is_none()
            && (challenge || seen.action.as_deref() == Some(s.action.as_str())),
        "{}: {seen:?}",
        s.name()
    );
    seen
}

/// Every place to cut a recorded session: after each whole message that
/// crossed before the service closed (0: at once), and halfway through each
/// of the PBX's messages, for each fault.
pub fn cuts(recorded: &Relayed) -> Vec<Cut> {
    let n = recorded
        .service_closed_at
        .unwrap_or(recorded.messages.len());
    let mut out = Vec::new();
    for fault in Fault::ALL {
        for after in 0..=n {
            out.push(Cut {
                after,
                half: false,
                fault,
            });
        }
        for (i, m) in recorded.messages[..n].iter().enumerate() {
            if m.dir == Dir::Up {
                out.push(Cut {
                    after: i,
                    half: true,
                    fault,
                });
            }
        }
    }
    out
}

/// The last command the service sent: to a stalled peer, or before the cut.
pub fn last_command(r: &Relayed) -> Option<String> {
    let stalled = String::from_utf8_lossy(&r.sent_while_stalled).into_owned();
    // A command is a line (FastAGI) or a block ending in a blank line (ESL).
    let sep = if stalled.contains("\n\n") {
        "\n\n"
    } else {
        "\n"
    };
    if let Some(last) = stalled.rsplit(sep).find(|c| !c.trim().is_empty()) {
        return Some(format!("{last}{sep}"));
    }
    r.messages
        .iter()
        .rev()
        .find(|m| m.dir == Dir::Down)
        .map(|m| String::from_utf8_lossy(&m.bytes).into_owned())
}
