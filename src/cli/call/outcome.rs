//! What the PBX would do with the commands callguard sent, in one line:
//! `busy, then hang up (cause 17)`.

use callguard_sim::asterisk::parse_args;
use callguard_sim::freeswitch::SimCommand;

const DIALPLAN: &str = "continue in the dialplan";

/// Joins the steps; a call that did not end in a hang-up goes on in the dialplan.
fn sentence(mut steps: Vec<String>, hung_up: bool, timed_out: bool) -> String {
    if timed_out {
        steps.push("(no end: the call was still running at --timeout)".into());
    } else if !hung_up {
        steps.push(DIALPLAN.into());
    }
    match steps.split_first() {
        Some((first, rest)) if !rest.is_empty() => {
            format!("{first}, then {}", rest.join(", then "))
        }
        Some((first, _)) => first.clone(),
        None => DIALPLAN.into(),
    }
}

/// Asterisk: each `EXEC` application and the other commands that act on the call.
pub(super) fn asterisk(commands: &[String], timed_out: bool) -> String {
    let mut steps = Vec::new();
    let mut hung_up = false;
    for line in commands {
        let argv = parse_args(line);
        let word = |i: usize| argv.get(i).map(String::as_str).unwrap_or("");
        let verb = (word(0).to_ascii_uppercase(), word(1).to_ascii_uppercase());
        let step = match (verb.0.as_str(), verb.1.as_str()) {
            ("EXEC", _) => {
                let data = word(2);
                match word(1).to_ascii_lowercase().as_str() {
                    "mset" | "set" | "noop" | "verbose" | "log" => None,
                    "busy" => Some("busy".to_string()),
                    "congestion" => Some("congestion".to_string()),
                    "hangup" => {
                        hung_up = true;
                        Some(match data {
                            "" => "hang up".to_string(),
                            cause => format!("hang up (cause {cause})"),
                        })
                    }
                    "progress" => Some("early media".to_string()),
                    "answer" => Some("answer".to_string()),
                    "playback" => Some(format!("play {data}")),
                    "voicemail" => Some(format!("voicemail {data}")),
                    "goto" => Some(format!("go to {data}")),
                    "dial" => Some(format!("dial {data}")),
                    app => Some(format!("{app}({data})")),
                }
            }
            ("HANGUP", _) => {
                hung_up = true;
                Some("hang up".to_string())
            }
            ("STREAM", "FILE") => Some(format!("play {}", word(2))),
            ("SAY", "DIGITS") => Some(format!("say the digits {}", word(2))),
            ("WAIT", _) | ("GET", "DATA") => Some("wait for a key".to_string()),
            ("ANSWER", _) => Some("answer".to_string()),
            _ => None,
        };
        steps.extend(step);
    }
    sentence(steps, hung_up, timed_out)
}

/// One line of an ESL command: `sendmsg execute respond 486 Busy Here`, `linger 5`.
pub(super) fn esl_line(c: &SimCommand) -> String {
    if !c.line.eq_ignore_ascii_case("sendmsg") {
        return c.line.clone();
    }
    let mut out = "sendmsg".to_string();
    if let Some(cmd) = c.header("call-command") {
        out.push(' ');
        out.push_str(cmd);
    }
    for h in ["execute-app-name", "execute-app-arg", "hangup-cause"] {
        if let Some(v) = c.header(h) {
            out.push(' ');
            out.push_str(v);
        }
    }
    if c.header("execute-app-arg").is_none() && !c.body.is_empty() {
        out.push(' ');
        out.push_str(&String::from_utf8_lossy(&c.body));
    }
    out
}

/// FreeSWITCH: each executed application or hangup; without one that ends the call, callguard
/// let the dialplan go on (`exit`).
pub(super) fn freeswitch(commands: &[SimCommand], timed_out: bool) -> String {
    let mut steps = Vec::new();
    let mut hung_up = false;
    for c in commands {
        if !c.line.eq_ignore_ascii_case("sendmsg") {
            continue;
        }
        match c.header("call-command") {
            Some(cmd) if cmd.eq_ignore_ascii_case("hangup") => {
                hung_up = true;
                steps.push(format!(
                    "hang up ({})",
                    c.header("hangup-cause").unwrap_or("NORMAL_CLEARING")
                ));
            }
            Some(cmd) if cmd.eq_ignore_ascii_case("execute") => {
                let app = c.header("execute-app-name").unwrap_or_default();
                let body = String::from_utf8_lossy(&c.body);
                let arg = c.header("execute-app-arg").unwrap_or(body.trim_end());
                match app {
                    "set" | "multiset" | "export" | "unset" | "log" => {}
                    "respond" => {
                        // A final response (3xx-6xx) ends the call; 18x does not.
                        hung_up |= !arg.starts_with('1');
                        steps.push(format!("respond {arg}"));
                    }
                    "hangup" => {
                        hung_up = true;
                        steps.push(format!("hang up ({arg})"));
                    }
                    "answer" => steps.push("answer".into()),
                    "pre_answer" => steps.push("early media".into()),
                    "playback" => steps.push(format!("play {arg}")),
                    "play_and_get_digits" => steps.push("ask for a key".into()),
                    "voicemail" => steps.push(format!("voicemail {arg}")),
                    "transfer" => steps.push(format!("transfer {arg}")),
                    "bridge" => steps.push(format!("bridge {arg}")),
                    app => steps.push(format!("{app} {arg}").trim_end().to_string()),
                }
            }
            _ => {}
        }
    }
    sentence(steps, hung_up, timed_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asterisk_busy_then_hangup() {
        let cmds = [
            "EXEC MSet CALLGUARD_VERDICT=block".to_string(),
            "EXEC Busy 5".to_string(),
            "EXEC Hangup 17".to_string(),
        ];
        assert_eq!(asterisk(&cmds, false), "busy, then hang up (cause 17)");
        assert_eq!(
            asterisk(&cmds[..1], false),
            "continue in the dialplan",
            "variables only"
        );
    }

    #[test]
    fn freeswitch_respond_then_dialplan() {
        let exec = |app: &str, arg: &str| SimCommand {
            line: "sendmsg".into(),
            headers: vec![
                ("call-command".into(), "execute".into()),
                ("execute-app-name".into(), app.into()),
                ("execute-app-arg".into(), arg.into()),
            ],
            body: Vec::new(),
        };
        let cmds = [
            exec("multiset", "^^|callguard_verdict=block"),
            exec("respond", "486 Busy Here"),
        ];
        assert_eq!(freeswitch(&cmds, false), "respond 486 Busy Here");
        assert_eq!(esl_line(&cmds[1]), "sendmsg execute respond 486 Busy Here");
    }
}
