//! How each plan step is done on Asterisk: the command table of
//! `tests/fixtures/fastagi.md`. Pure functions, so each recipe is tested on its own.

use crate::action::{Step, Tone};

/// One FastAGI command callguard sends, before escaping and encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgiOp {
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
pub fn commands(step: &Step) -> Vec<AgiOp> {
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
        Step::Continue => Vec::new(),
    }
}

/// Busy/Congestion signal before answer (PJSIP sends 486 / 503 at once) and
/// never hang up themselves, so an explicit Hangup with the cause follows.
pub fn reject(tone: Tone, cause: u16, seconds: u32) -> Vec<AgiOp> {
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
pub fn play(sound: &str, answer: bool, then_hangup: bool) -> Vec<AgiOp> {
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
pub fn bridge(dial: &str, tone: &str, timeout: u32) -> Vec<AgiOp> {
    vec![
        exec("Dial", format!("{dial},{timeout},A({tone})")),
        AgiOp::GetVar { name: "DIALSTATUS" },
    ]
}

/// Whether a command may legitimately run for the length of the call, so its
/// reply must not be timed out.
pub fn lasts_the_call(op: &AgiOp) -> bool {
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
}
