//! How each plan step is done on FreeSWITCH: `sendmsg` executes of the
//! dptools applications (`tests/fixtures/esl.md`). Pure functions, tested one by one.

use crate::action::{Cause, Challenge, Step, Tone};

/// One `sendmsg` callguard sends, before encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EslOp {
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
pub(crate) fn commands(step: &Step) -> Vec<EslOp> {
    match step {
        Step::Reject { tone, cause, .. } => reject(*tone, *cause),
        Step::Play {
            sound,
            answer,
            then_hangup,
        } => play(sound, *answer, *then_hangup),
        // Leaving a message is the end of the call: without the hangup the
        // dialplan would go on (and the shipped snippet's voicemail branch
        // would greet the caller a second time).
        // mod_voicemail does not answer before its greeting (the snippet's
        // own voicemail branch answers first too); Asterisk's VoiceMail does.
        Step::Voicemail { mailbox } => vec![
            execute("answer", ""),
            execute("voicemail", voicemail_arg(mailbox)),
            EslOp::Hangup {
                cause: Cause::NORMAL_CLEARING.name(),
            },
        ],
        Step::Transfer { target } => vec![execute("transfer", transfer_arg(target))],
        Step::Bridge {
            dial,
            tone,
            timeout,
            ..
        } => vec![execute("bridge", bridge_arg(dial, tone, *timeout))],
        // Interactive: the session runs it with `challenge_*` below.
        Step::Challenge(_) | Step::Continue => Vec::new(),
    }
}

/// The channel variable play_and_get_digits fills with the right digit (it
/// stays unset when every try failed; the wrong keys go to `…_invalid`).
pub(crate) const CHALLENGE_VAR: &str = "callguard_challenge";

/// Before the prompt: `answer`, or `pre_answer` (early media) for `answer: false`.
pub(crate) fn challenge_start(c: &Challenge) -> EslOp {
    execute(if c.answer { "answer" } else { "pre_answer" }, "")
}

/// `play_and_get_digits <min> <max> <tries> <timeout> <terminators> <file>
/// <invalid_file> <var_name> <regexp> <digit_timeout>` (mod_dptools): one
/// key, only `digit` accepted; the prompt and the digit's file are played as
/// one `file_string://`, any key interrupts them. Its CHANNEL_EXECUTE_COMPLETE
/// carries `variable_callguard_challenge` = the digit when the caller passed.
pub(crate) fn challenge_arg(c: &Challenge, digit: u8) -> String {
    let invalid = c.invalid.as_deref().unwrap_or("silence_stream://250");
    format!(
        "1 1 {tries} {ms} # file_string://{prompt}!{said} {invalid} {CHALLENGE_VAR} ^{digit}$ {ms}",
        tries = c.tries,
        ms = c.timeout_ms,
        prompt = c.prompt,
        said = c.digit_file(digit),
    )
}

/// `respond` answers the INVITE with a final response before any answer;
/// a plain hangup carries the configured cause instead.
pub(crate) fn reject(tone: Tone, cause: Cause) -> Vec<EslOp> {
    match tone {
        Tone::Busy => vec![execute("respond", "486 Busy Here")],
        Tone::Congestion => vec![execute("respond", "503 Service Unavailable")],
        Tone::Hangup => vec![EslOp::Hangup {
            cause: cause.name(),
        }],
    }
}

/// `playback` only pre-answers an unanswered call (early media, SIP 183), so
/// `answer: true` answers first, as Asterisk's Playback does; with
/// `answer: false` the caller is told without being billed. Then the hangup,
/// unless the dialplan continues.
pub(crate) fn play(sound: &str, answer: bool, then_hangup: bool) -> Vec<EslOp> {
    let mut ops = Vec::with_capacity(3);
    if answer {
        ops.push(execute("answer", ""));
    }
    ops.push(execute("playback", sound));
    if then_hangup {
        ops.push(EslOp::Hangup {
            cause: Cause::NORMAL_CLEARING.name(),
        });
    }
    ops
}

/// `voicemail [check] [auth] <profile> <domain> [<id>]`. A full argument (with
/// spaces) is used as written; `100@example.com` becomes `default example.com 100`.
pub(crate) fn voicemail_arg(mailbox: &str) -> String {
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
pub(crate) fn transfer_arg(target: &str) -> String {
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
///
/// The `%[...]` prefix sets variables on the caller's channel for the length
/// of this one application (scope variables), so nothing leaks into the rest
/// of the dialplan:
/// - `continue_on_fail=true`: after a failed originate mod_dptools' bridge
///   calls `switch_channel_handle_cause`, which hangs the caller up for every
///   cause except NO_ANSWER, NO_USER_RESPONSE and ORIGINATOR_CANCEL unless
///   `continue_on_fail` (or `failure_causes`) is set. A busy, unregistered or
///   unknown agent would drop the VIP (SIP 480 / 486) before `on_no_answer`
///   could run or the dialplan could go on.
/// - `hangup_after_bridge=false`: when an answered bridge ends, the bridge
///   application returns instead of hanging up on its own, whatever the
///   global default; callguard then ends the call itself, so the log tells a
///   bridge that ended (`dial:SUCCESS`) from a caller who hung up mid-bridge.
pub(crate) fn bridge_arg(dial: &str, tone: &str, timeout: u32) -> String {
    format!(
        "%[continue_on_fail=true,hangup_after_bridge=false]{{originate_timeout={timeout},group_confirm_key=exec,group_confirm_file='playback {tone}'}}{dial}"
    )
}

/// Whether the last operation of a step ends the call by our own hand, so a
/// hangup that arrives while it runs is the step completing, not the caller
/// leaving: `respond 486` / `503` answers the INVITE and hangs the channel up.
pub(crate) fn ends_the_call(op: &EslOp) -> bool {
    match op {
        EslOp::Hangup { .. } => true,
        EslOp::Execute { app, arg } => *app == "respond" && !arg.starts_with(['1', '2']),
    }
}

/// Applications that may last the whole call (no completion timeout).
pub(crate) fn lasts_the_call(op: &EslOp) -> bool {
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
    fn play_answers_unless_early_media_then_hangs_up_or_continues() {
        assert_eq!(
            play("ivr/blocked.wav", true, true),
            vec![
                execute("answer", ""),
                execute("playback", "ivr/blocked.wav"),
                EslOp::Hangup {
                    cause: "NORMAL_CLEARING"
                }
            ]
        );
        assert_eq!(
            play("ivr/blocked.wav", false, true),
            vec![
                execute("playback", "ivr/blocked.wav"),
                EslOp::Hangup {
                    cause: "NORMAL_CLEARING"
                }
            ]
        );
        assert_eq!(
            play("ivr/notice.wav", true, false),
            vec![execute("answer", ""), execute("playback", "ivr/notice.wav")]
        );
    }

    #[test]
    fn voicemail_ends_the_call() {
        assert_eq!(
            commands(&Step::Voicemail {
                mailbox: "1000@example.com".into()
            }),
            vec![
                execute("answer", ""),
                execute("voicemail", "default example.com 1000"),
                EslOp::Hangup {
                    cause: "NORMAL_CLEARING"
                }
            ]
        );
    }

    #[test]
    fn rejections_end_the_call_themselves() {
        assert!(ends_the_call(&execute("respond", "486 Busy Here")));
        assert!(ends_the_call(&execute(
            "respond",
            "503 Service Unavailable"
        )));
        assert!(ends_the_call(&EslOp::Hangup {
            cause: "CALL_REJECTED"
        }));
        assert!(!ends_the_call(&execute("respond", "183 Session Progress")));
        assert!(!ends_the_call(&execute("playback", "ivr/notice.wav")));
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
                "%[continue_on_fail=true,hangup_after_bridge=false]{originate_timeout=30,group_confirm_key=exec,group_confirm_file='playback tone_stream://%(200,0,800)'}sofia/gateway/gw/15551234"
            )]
        );
        assert!(lasts_the_call(&ops[0]));
        assert!(commands(&Step::Continue).is_empty());
    }

    #[test]
    fn challenge_is_one_play_and_get_digits() {
        let c = Challenge {
            prompt: "ivr/press.wav".into(),
            digit_sound: "digits/{digit}.wav".into(),
            invalid: None,
            low: 1,
            high: 9,
            tries: 2,
            timeout_ms: 5000,
            answer: true,
            on_pass: crate::action::builtin_plans("pass")[0].clone(),
            on_fail: None,
            learn: None,
        };
        assert_eq!(
            challenge_arg(&c, 4),
            "1 1 2 5000 # file_string://ivr/press.wav!digits/4.wav silence_stream://250 callguard_challenge ^4$ 5000"
        );
        assert_eq!(challenge_start(&c), execute("answer", ""));
        let early = Challenge { answer: false, ..c };
        assert_eq!(challenge_start(&early), execute("pre_answer", ""));
    }
}
