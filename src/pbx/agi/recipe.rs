//! How each plan step is done on Asterisk: the command table of
//! `tests/fixtures/fastagi.md`. Pure functions, so each recipe is tested on its own.

use super::command::AgiCommand;
use crate::action::{Challenge, Step, Tone};

/// One FastAGI command callguard sends, before escaping and encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgiOp {
    /// `EXEC <app> <data>`
    Exec { app: &'static str, data: String },
    /// `GET VARIABLE <name>`: read after Dial to learn whether the VIP answered.
    GetVar { name: &'static str },
}

fn exec(app: &'static str, data: impl Into<String>) -> AgiOp {
    AgiOp::Exec {
        app,
        data: data.into(),
    }
}

/// The commands for one step, in order.
pub(crate) fn commands(step: &Step) -> Vec<AgiOp> {
    match step {
        Step::Reject {
            tone,
            cause,
            seconds,
        } => reject(*tone, cause.0, *seconds),
        Step::Play {
            sound,
            answer,
            then_hangup,
        } => play(sound, *answer, *then_hangup),
        // `u`: the caller hears the "unavailable" greeting. Leaving a message
        // ends the call: without the Hangup the dialplan would go on (and the
        // shipped snippet's voicemail branch would greet the caller again).
        Step::Voicemail { mailbox } => vec![
            exec("VoiceMail", format!("{mailbox},u")),
            exec("Hangup", "16"),
        ],
        // Execution resumes exactly at context,exten,priority once we close.
        Step::Transfer { target } => vec![exec("Goto", target.clone())],
        Step::Bridge {
            dial,
            tone,
            timeout,
            ..
        } => bridge(dial, tone, *timeout),
        // Interactive: the session runs it with `challenge_*` below.
        Step::Challenge(_) | Step::Continue => Vec::new(),
    }
}

/// The digits a caller may press during a challenge's prompts: any of them
/// stops the sound at once (a robot that presses early is answered too).
pub(crate) const ESCAPE_DIGITS: &str = "0123456789*#";

/// Before the first prompt: answer (`EXEC Answer`), or early media
/// (`EXEC Progress`) when `answer: false`. STREAM FILE does neither.
pub(crate) fn challenge_start(c: &Challenge) -> AgiCommand {
    AgiCommand::exec(if c.answer { "Answer" } else { "Progress" }, "")
}

/// One try: the prompt and the digit (both interruptible by a key), then
/// `WAIT FOR DIGIT` for the timeout. Each reply's `result` is the ASCII code
/// of the key pressed (0: none yet), see [`pressed`].
pub(crate) fn challenge_try(c: &Challenge, digit: u8) -> [AgiCommand; 3] {
    [
        AgiCommand::stream_file(c.prompt.as_str(), ESCAPE_DIGITS),
        AgiCommand::SayDigits {
            digits: digit.to_string(),
            escape_digits: ESCAPE_DIGITS.into(),
        },
        AgiCommand::WaitForDigit {
            timeout_ms: i64::from(c.timeout_ms),
        },
    ]
}

/// After a wrong key, before the next try.
pub(crate) fn challenge_invalid(c: &Challenge) -> Option<AgiCommand> {
    c.invalid.as_deref().map(|s| AgiCommand::stream_file(s, ""))
}

/// The key a STREAM FILE / SAY DIGITS / WAIT FOR DIGIT reply reports:
/// `200 result=51` is `3`; 0 is none, -1 a hangup.
pub(crate) fn pressed(result: Option<i64>) -> Option<char> {
    let r = u8::try_from(result?).ok().filter(|&r| r > 0)?;
    Some(char::from(r)).filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#')
}

/// Busy/Congestion signal before answer (PJSIP sends 486 / 503 at once) and
/// never hang up themselves, so an explicit Hangup with the cause follows.
pub(crate) fn reject(tone: Tone, cause: u16, seconds: u32) -> Vec<AgiOp> {
    let mut ops = Vec::with_capacity(2);
    match tone {
        Tone::Busy => ops.push(exec("Busy", seconds.to_string())),
        Tone::Congestion => ops.push(exec("Congestion", seconds.to_string())),
        Tone::Hangup => {}
    }
    ops.push(exec("Hangup", cause.to_string()));
    ops
}

/// Playback answers the call (the caller is billed); without answering, the
/// message goes out as early media: Progress, then Playback with `noanswer`.
pub(crate) fn play(sound: &str, answer: bool, then_hangup: bool) -> Vec<AgiOp> {
    let mut ops = Vec::with_capacity(3);
    if answer {
        ops.push(exec("Playback", sound));
    } else {
        ops.push(exec("Progress", ""));
        ops.push(exec("Playback", format!("{sound},noanswer")));
    }
    if then_hangup {
        ops.push(exec("Hangup", "16"));
    }
    ops
}

/// `A(x)` plays x to the answering agent only, before the bridge; Dial lasts
/// the call and DIALSTATUS tells whether anyone answered.
pub(crate) fn bridge(dial: &str, tone: &str, timeout: u32) -> Vec<AgiOp> {
    vec![
        exec("Dial", format!("{dial},{timeout},A({tone})")),
        AgiOp::GetVar { name: "DIALSTATUS" },
    ]
}

/// Whether a command may legitimately run for the length of the call, so its
/// reply must not be timed out.
pub(crate) fn lasts_the_call(op: &AgiOp) -> bool {
    matches!(
        op,
        AgiOp::Exec {
            app: "Dial" | "VoiceMail",
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Cause;

    fn e(app: &'static str, data: &str) -> AgiOp {
        exec(app, data)
    }

    #[test]
    fn reject_busy_then_hangup_with_the_cause() {
        let step = Step::Reject {
            tone: Tone::Busy,
            cause: Cause::USER_BUSY,
            seconds: 5,
        };
        assert_eq!(commands(&step), vec![e("Busy", "5"), e("Hangup", "17")]);
    }

    #[test]
    fn reject_congestion_and_plain_hangup() {
        assert_eq!(
            reject(Tone::Congestion, 34, 3),
            vec![e("Congestion", "3"), e("Hangup", "34")]
        );
        assert_eq!(reject(Tone::Hangup, 21, 5), vec![e("Hangup", "21")]);
    }

    #[test]
    fn play_answers_unless_told_not_to() {
        assert_eq!(
            play("custom/blocked", true, true),
            vec![e("Playback", "custom/blocked"), e("Hangup", "16")]
        );
        assert_eq!(
            play("custom/blocked", false, true),
            vec![
                e("Progress", ""),
                e("Playback", "custom/blocked,noanswer"),
                e("Hangup", "16")
            ]
        );
        assert_eq!(
            play("custom/notice", true, false),
            vec![e("Playback", "custom/notice")]
        );
    }

    #[test]
    fn voicemail_transfer_bridge_continue() {
        assert_eq!(
            commands(&Step::Voicemail {
                mailbox: "100@default".into()
            }),
            vec![e("VoiceMail", "100@default,u"), e("Hangup", "16")]
        );
        assert_eq!(
            commands(&Step::Transfer {
                target: "ivr-main,s,1".into()
            }),
            vec![e("Goto", "ivr-main,s,1")]
        );
        let b = Step::Bridge {
            dial: "PJSIP/vip-team".into(),
            tone: "beep".into(),
            timeout: 30,
            on_no_answer: None,
        };
        assert_eq!(
            commands(&b),
            vec![
                e("Dial", "PJSIP/vip-team,30,A(beep)"),
                AgiOp::GetVar { name: "DIALSTATUS" }
            ]
        );
        assert!(lasts_the_call(&commands(&b)[0]));
        assert!(commands(&Step::Continue).is_empty());
    }

    fn challenge() -> Challenge {
        Challenge {
            prompt: "custom/press".into(),
            digit_sound: "digits/{digit}.wav".into(),
            invalid: Some("custom/wrong".into()),
            low: 1,
            high: 9,
            tries: 2,
            timeout_ms: 5000,
            answer: true,
            on_pass: crate::action::builtin_plans("pass")[0].clone(),
            on_fail: None,
            learn: None,
        }
    }

    #[test]
    fn challenge_lines_are_what_res_agi_parses() {
        let c = challenge();
        let lines: Vec<String> = challenge_try(&c, 7)
            .iter()
            .map(|c| c.to_line().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "STREAM FILE custom/press \"0123456789*#\"\n",
                "SAY DIGITS 7 \"0123456789*#\"\n",
                "WAIT FOR DIGIT 5000\n"
            ]
        );
        assert_eq!(challenge_start(&c).to_line().unwrap(), "EXEC Answer \"\"\n");
        let early = Challenge {
            answer: false,
            ..challenge()
        };
        assert_eq!(
            challenge_start(&early).to_line().unwrap(),
            "EXEC Progress \"\"\n"
        );
        assert_eq!(
            challenge_invalid(&c).unwrap().to_line().unwrap(),
            "STREAM FILE custom/wrong \"\"\n"
        );
    }

    #[test]
    fn keys_from_results() {
        assert_eq!(pressed(Some(51)), Some('3'));
        assert_eq!(pressed(Some(35)), Some('#'));
        assert_eq!(pressed(Some(0)), None);
        assert_eq!(pressed(Some(-1)), None);
        assert_eq!(pressed(Some(65)), None);
        assert_eq!(pressed(None), None);
    }
}
