//! How each plan step is done on FreeSWITCH: `sendmsg` executes of the
//! dptools applications (`protocol/esl.md`). Pure functions, tested one by one.

use crate::action::{Cause, Step, Tone};

/// One `sendmsg` callguard sends, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EslOp {
    /// `call-command: execute` of a dialplan application.
    Execute { app: &'static str, arg: String },
    /// `call-command: hangup` with a cause name.
    Hangup { cause: &'static str },
}

fn execute(app: &'static str, arg: impl Into<String>) -> EslOp {
    EslOp::Execute {
        app,
        arg: arg.into(),
    }
}

/// The operations for one step, in order. After them the session exits, so
/// the dialplan goes on with its next action (or the call has ended).
pub fn commands(step: &Step) -> Vec<EslOp> {
    match step {
        Step::Reject { tone, cause, .. } => reject(*tone, *cause),
        Step::Play {
            sound, then_hangup, ..
        } => play(sound, *then_hangup),
        Step::Voicemail { mailbox } => vec![execute("voicemail", voicemail_arg(mailbox))],
        Step::Transfer { target } => vec![execute("transfer", transfer_arg(target))],
        Step::Bridge {
            dial,
            tone,
            timeout,
            ..
        } => vec![execute("bridge", bridge_arg(dial, tone, *timeout))],
        Step::Continue => Vec::new(),
    }
}

/// `respond` answers the INVITE with a final response before any answer;
/// a plain hangup carries the configured cause instead.
pub fn reject(tone: Tone, cause: Cause) -> Vec<EslOp> {
    match tone {
        Tone::Busy => vec![execute("respond", "486 Busy Here")],
        Tone::Congestion => vec![execute("respond", "503 Service Unavailable")],
        Tone::Hangup => vec![EslOp::Hangup {
            cause: cause.name(),
        }],
    }
}

/// `playback` pre-answers an unanswered call (early media), so the caller is
/// told without being billed; then the hangup, unless the dialplan continues.
pub fn play(sound: &str, then_hangup: bool) -> Vec<EslOp> {
    let mut ops = vec![execute("playback", sound)];
    if then_hangup {
        ops.push(EslOp::Hangup {
            cause: Cause::NORMAL_CLEARING.name(),
        });
    }
    ops
}

/// `voicemail [check] [auth] <profile> <domain> [<id>]`. A full argument (with
/// spaces) is used as written; `100@example.com` becomes `default example.com 100`.
pub fn voicemail_arg(mailbox: &str) -> String {
    let m = mailbox.trim();
    if m.contains(' ') {
        return m.to_string();
    }
    match m.split_once('@') {
        Some((id, domain)) if !domain.is_empty() && domain != "default" => {
            format!("default {domain} {id}")
        }
        Some((id, _)) => format!("default ${{domain_name}} {id}"),
        None => format!("default ${{domain_name}} {m}"),
    }
}

/// `transfer <exten> XML <context>`; an Asterisk-style `context,exten,prio`
/// is translated so one action can serve both PBXs.
pub fn transfer_arg(target: &str) -> String {
    let t = target.trim();
    let parts: Vec<&str> = t.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [context, exten, ..] if parts.len() <= 3 && !t.contains(' ') => {
            format!("{exten} XML {context}")
        }
        _ => t.to_string(),
    }
}

/// With `group_confirm_key=exec` the file string is "app args", run on the
/// answering agent before the bridge: only the agent hears the whisper tone.
pub fn bridge_arg(dial: &str, tone: &str, timeout: u32) -> String {
    format!(
        "{{originate_timeout={timeout},group_confirm_key=exec,group_confirm_file='playback {tone}'}}{dial}"
    )
}

/// Applications that may last the whole call (no completion timeout).
pub fn lasts_the_call(op: &EslOp) -> bool {
    matches!(
        op,
        EslOp::Execute {
            app: "bridge" | "voicemail",
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_tones() {
        assert_eq!(
            reject(Tone::Busy, Cause::USER_BUSY),
            vec![execute("respond", "486 Busy Here")]
        );
        assert_eq!(
            reject(Tone::Congestion, Cause::NORMAL_CIRCUIT_CONGESTION),
            vec![execute("respond", "503 Service Unavailable")]
        );
        assert_eq!(
            reject(Tone::Hangup, Cause::CALL_REJECTED),
            vec![EslOp::Hangup {
                cause: "CALL_REJECTED"
            }]
        );
    }

    #[test]
    fn play_then_hangup_or_continue() {
        assert_eq!(
            play("ivr/blocked.wav", true),
            vec![
                execute("playback", "ivr/blocked.wav"),
                EslOp::Hangup {
                    cause: "NORMAL_CLEARING"
                }
            ]
        );
        assert_eq!(
            play("ivr/notice.wav", false),
            vec![execute("playback", "ivr/notice.wav")]
        );
    }

    #[test]
    fn voicemail_and_transfer_arguments() {
        assert_eq!(
            voicemail_arg("default example.com 1000"),
            "default example.com 1000"
        );
        assert_eq!(
            voicemail_arg("1000@example.com"),
            "default example.com 1000"
        );
        assert_eq!(voicemail_arg("100@default"), "default ${domain_name} 100");
        assert_eq!(transfer_arg("5000 XML default"), "5000 XML default");
        assert_eq!(transfer_arg("ivr-main,s,1"), "s XML ivr-main");
    }

    #[test]
    fn bridge_whispers_to_the_agent_only() {
        let b = Step::Bridge {
            dial: "sofia/gateway/gw/15551234".into(),
            tone: "tone_stream://%(200,0,800)".into(),
            timeout: 30,
            on_no_answer: None,
        };
        let ops = commands(&b);
        assert_eq!(
            ops,
            vec![execute(
                "bridge",
                "{originate_timeout=30,group_confirm_key=exec,group_confirm_file='playback tone_stream://%(200,0,800)'}sofia/gateway/gw/15551234"
            )]
        );
        assert!(lasts_the_call(&ops[0]));
        assert!(commands(&Step::Continue).is_empty());
    }
}
