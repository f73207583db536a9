//! The commands callguard sends, and the quoting that keeps caller data inside its argument.
//!
//! Asterisk splits a command line with `parse_args()` (res_agi.c): space and tab separate
//! arguments unless inside `"…"` or escaped; `"` toggles quoting (and, coming off whitespace,
//! starts an argument, so `""` is an empty argument); `\` makes the next byte literal
//! (`\"`, `\\`, `\ `). Nothing else is special, and single quotes are ordinary bytes. The line
//! ends at the first `\n`, and `\r` is not stripped. So a value is safe when it is wrapped in
//! `"…"` with every `"` and `\` preceded by `\`, and with CR/LF (which cannot travel inside a
//! line at all) replaced by a space. NUL would end the C string early, so it becomes a space too.

use std::fmt::Write;

/// Longest command line callguard writes, `\n` included. Asterisk reads commands into an
/// 8192-byte buffer (2048 before 1.6) and runs a longer line *in pieces, each as its own
/// command*; staying under 2048 keeps every supported release on the one-line path.
pub const MAX_COMMAND_LEN: usize = 2000;

/// A FastAGI command. Build it from typed fields; [`AgiCommand::to_line`] does all quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgiCommand {
    /// `SET VARIABLE <name> "<value>"`: the value is always quoted.
    SetVariable { name: String, value: String },
    /// `GET VARIABLE <name>`.
    GetVariable { name: String },
    /// `EXEC <app> <data>`: the data is one argument (Asterisk drops extra unquoted tokens
    /// silently), quoted only when it has to be.
    Exec { app: String, data: String },
    /// `STREAM FILE <file> "<escape digits>"`.
    StreamFile { file: String, escape_digits: String },
    /// `WAIT FOR DIGIT <ms>` (-1 waits forever).
    WaitForDigit { timeout_ms: i64 },
    /// `SAY DIGITS <digits> "<escape digits>"`.
    SayDigits {
        digits: String,
        escape_digits: String,
    },
    /// `VERBOSE "<message>" <level>`.
    Verbose { message: String, level: u8 },
    /// `NOOP`.
    Noop,
}

impl AgiCommand {
    pub fn set_variable(name: impl Into<String>, value: impl Into<String>) -> Self {
        AgiCommand::SetVariable {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn get_variable(name: impl Into<String>) -> Self {
        AgiCommand::GetVariable { name: name.into() }
    }

    pub fn exec(app: impl Into<String>, data: impl Into<String>) -> Self {
        AgiCommand::Exec {
            app: app.into(),
            data: data.into(),
        }
    }

    pub fn stream_file(file: impl Into<String>, escape_digits: impl Into<String>) -> Self {
        AgiCommand::StreamFile {
            file: file.into(),
            escape_digits: escape_digits.into(),
        }
    }

    #[cfg(test)]
    pub(crate) fn verbose(message: impl Into<String>, level: u8) -> Self {
        AgiCommand::Verbose {
            message: message.into(),
            level,
        }
    }

    /// The wire line, `\n` included.
    ///
    /// A line over [`MAX_COMMAND_LEN`] is refused rather than truncated: a cut Dial string or
    /// mailbox would silently do something else, so the caller must shorten the value it
    /// chose (a driver trims a caller name before putting it in a variable).
    pub fn to_line(&self) -> Result<String, CommandTooLong> {
        let cap = match self {
            AgiCommand::Exec { .. } | AgiCommand::SetVariable { .. } => self.line_len(),
            _ => 64,
        };
        let mut line = String::with_capacity(cap);
        match self {
            AgiCommand::SetVariable { name, value } => {
                line.push_str("SET VARIABLE ");
                push_word(&mut line, name);
                line.push(' ');
                push_quoted(&mut line, value);
            }
            AgiCommand::GetVariable { name } => {
                line.push_str("GET VARIABLE ");
                push_word(&mut line, name);
            }
            AgiCommand::Exec { app, data } => {
                line.push_str("EXEC ");
                push_word(&mut line, app);
                line.push(' ');
                push_word(&mut line, data);
            }
            AgiCommand::StreamFile {
                file,
                escape_digits,
            } => {
                line.push_str("STREAM FILE ");
                push_word(&mut line, file);
                line.push(' ');
                push_quoted(&mut line, escape_digits);
            }
            AgiCommand::WaitForDigit { timeout_ms } => {
                let _ = write!(line, "WAIT FOR DIGIT {timeout_ms}");
            }
            AgiCommand::SayDigits {
                digits,
                escape_digits,
            } => {
                line.push_str("SAY DIGITS ");
                push_word(&mut line, digits);
                line.push(' ');
                push_quoted(&mut line, escape_digits);
            }
            AgiCommand::Verbose { message, level } => {
                line.push_str("VERBOSE ");
                push_quoted(&mut line, message);
                let _ = write!(line, " {level}");
            }
            AgiCommand::Noop => line.push_str("NOOP"),
        }
        line.push('\n');
        if line.len() > MAX_COMMAND_LEN {
            return Err(CommandTooLong { len: line.len() });
        }
        Ok(line)
    }
}

impl AgiCommand {
    /// The length of [`to_line`](Self::to_line)'s line, without writing it (`EXEC` and
    /// `SET VARIABLE`, the commands that carry variables; others are measured by writing).
    pub(crate) fn line_len(&self) -> usize {
        match self {
            AgiCommand::Exec { app, data } => {
                "EXEC ".len() + word_len(app) + 1 + word_len(data) + 1
            }
            AgiCommand::SetVariable { name, value } => {
                "SET VARIABLE ".len() + word_len(name) + 1 + quoted_len(value) + 1
            }
            other => other.to_line().map_or_else(|e| e.len, |l| l.len()),
        }
    }
}

/// What [`push_word`] writes, in bytes.
fn word_len(value: &str) -> usize {
    if needs_quotes(value) {
        quoted_len(value)
    } else {
        value.len()
    }
}

/// What [`push_quoted`] writes, in bytes.
fn quoted_len(value: &str) -> usize {
    2 + value
        .chars()
        .map(|c| match c {
            '"' | '\\' => 2,
            c if is_unsendable(c) => 1,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// A command line would exceed [`MAX_COMMAND_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AGI command of {len} bytes exceeds the {MAX_COMMAND_LEN}-byte limit")]
pub struct CommandTooLong {
    pub len: usize,
}

/// Bytes that cannot travel inside a line (or would end the C string early).
fn is_unsendable(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\0')
}

/// Writes `value` as one argument: bare when parse_args would read it back unchanged as a
/// single argument, otherwise quoted. Bare needs it non-empty and free of the bytes
/// parse_args treats specially (space, tab, `"`, `\`) and of the unsendable ones.
fn push_word(line: &mut String, value: &str) {
    if needs_quotes(value) {
        push_quoted(line, value);
    } else {
        line.push_str(value);
    }
}

/// A word must be quoted: empty, or holding a byte parse_args treats specially.
fn needs_quotes(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| matches!(c, ' ' | '\t' | '"' | '\\') || is_unsendable(c))
}

/// Writes `"value"` with `"` and `\` escaped and CR/LF/NUL replaced by a space.
fn push_quoted(line: &mut String, value: &str) {
    line.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                line.push('\\');
                line.push(c);
            }
            c if is_unsendable(c) => line.push(' '),
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use callguard_sim::asterisk::parse::parse_args;

    fn line(cmd: AgiCommand) -> String {
        cmd.to_line().expect("fits")
    }

    /// The line is one line, and Asterisk would split it into `argv`.
    fn assert_argv(cmd: AgiCommand, argv: &[&str]) {
        let l = line(cmd);
        let body = l.strip_suffix('\n').expect("ends in \\n");
        assert!(!body.contains(['\n', '\r', '\0']), "{l:?}");
        assert_eq!(parse_args(body), argv, "{l:?}");
    }

    #[test]
    fn transcript_lines_byte_exact() {
        assert_eq!(
            line(AgiCommand::set_variable("FILTER_ACTION", "reject")),
            "SET VARIABLE FILTER_ACTION \"reject\"\n"
        );
        assert_eq!(
            line(AgiCommand::set_variable("FILTER_ACTION", "after-hangup")),
            "SET VARIABLE FILTER_ACTION \"after-hangup\"\n"
        );
        assert_eq!(
            line(AgiCommand::exec("Playback", "beep")),
            "EXEC Playback beep\n"
        );
        assert_eq!(
            line(AgiCommand::stream_file("beep", "")),
            "STREAM FILE beep \"\"\n"
        );
        assert_eq!(
            line(AgiCommand::get_variable("FILTER_ACTION")),
            "GET VARIABLE FILTER_ACTION\n"
        );
        assert_eq!(
            line(AgiCommand::WaitForDigit { timeout_ms: 10000 }),
            "WAIT FOR DIGIT 10000\n"
        );
    }

    #[test]
    fn other_commands() {
        assert_eq!(line(AgiCommand::exec("Busy", "5")), "EXEC Busy 5\n");
        assert_eq!(line(AgiCommand::Noop), "NOOP\n");
        assert_eq!(
            line(AgiCommand::verbose("screened 42", 3)),
            "VERBOSE \"screened 42\" 3\n"
        );
        assert_eq!(
            line(AgiCommand::get_variable("CALLERID(num)")),
            "GET VARIABLE CALLERID(num)\n"
        );
        // Commas and parentheses are not special to parse_args: no quotes needed.
        assert_eq!(
            line(AgiCommand::exec("Dial", "PJSIP/vip-team,30,A(beep)")),
            "EXEC Dial PJSIP/vip-team,30,A(beep)\n"
        );
        assert_eq!(
            line(AgiCommand::exec("VoiceMail", "100@default,u")),
            "EXEC VoiceMail 100@default,u\n"
        );
        assert_eq!(line(AgiCommand::exec("Hangup", "")), "EXEC Hangup \"\"\n");
        assert_eq!(
            line(AgiCommand::exec("Playback", "custom/blocked call")),
            "EXEC Playback \"custom/blocked call\"\n"
        );
    }

    #[test]
    fn caller_name_injection_stays_one_argument() {
        let evil = "x\"\nEXEC Dial evil";
        let l = line(AgiCommand::set_variable("CALLGUARD_NAME", evil));
        assert_eq!(l, "SET VARIABLE CALLGUARD_NAME \"x\\\" EXEC Dial evil\"\n");
        assert_argv(
            AgiCommand::set_variable("CALLGUARD_NAME", evil),
            &["SET", "VARIABLE", "CALLGUARD_NAME", "x\" EXEC Dial evil"],
        );
    }

    #[test]
    fn hostile_values_round_trip_through_parse_args() {
        let values = [
            "",
            " ",
            "\"",
            "\\",
            "\\\"",
            "a\\",
            "ends with backslash\\",
            "\"quoted\" \\\"esc\\\"",
            "tab\there",
            "cr\rlf\nnul\0",
            "\r\nHANGUP\r\n",
            "x\"\nEXEC Dial evil",
            "x\" \"y",
            "'single' quotes",
            "Ünïcødé 名前",
        ];
        for v in values {
            let expected: String = v
                .chars()
                .map(|c| if is_unsendable(c) { ' ' } else { c })
                .collect();
            assert_argv(
                AgiCommand::set_variable("V", v),
                &["SET", "VARIABLE", "V", &expected],
            );
            assert_argv(
                AgiCommand::exec("Playback", v),
                &["EXEC", "Playback", &expected],
            );
            assert_argv(AgiCommand::exec(v, "x"), &["EXEC", &expected, "x"]);
            assert_argv(AgiCommand::get_variable(v), &["GET", "VARIABLE", &expected]);
            assert_argv(AgiCommand::verbose(v, 1), &["VERBOSE", &expected, "1"]);
        }
    }

    #[test]
    fn over_long_command_is_refused() {
        let fits = "a".repeat(MAX_COMMAND_LEN - "SET VARIABLE V \"\"\n".len());
        assert_eq!(
            line(AgiCommand::set_variable("V", fits.as_str())).len(),
            MAX_COMMAND_LEN
        );
        let too_long = format!("{fits}a");
        assert_eq!(
            AgiCommand::set_variable("V", too_long).to_line(),
            Err(CommandTooLong {
                len: MAX_COMMAND_LEN + 1
            })
        );
        // Escaping counts: 1000 quotes become 2000 bytes.
        assert!(
            AgiCommand::set_variable("V", "\"".repeat(1000))
                .to_line()
                .is_err()
        );
    }

    /// `line_len` is the length `to_line` writes, for every kind of byte a value can hold.
    #[test]
    fn line_len_is_the_line_written() {
        for v in [
            "",
            "plain",
            "a b",
            "q\"uote",
            "back\\slash",
            "cr\r lf\n nul\0",
            "é 🕴\t",
        ] {
            for cmd in [
                AgiCommand::exec("MSet", format!("A={v},B={v}")),
                AgiCommand::exec(v, v),
                AgiCommand::set_variable("X", v),
                AgiCommand::stream_file(v, "#"),
            ] {
                assert_eq!(cmd.line_len(), line(cmd.clone()).len(), "{cmd:?}");
            }
        }
    }
}
