//! The reply lines Asterisk writes after each FastAGI command (res_agi.c), parsed with nom.
//!
//! Only the line grammar lives here; framing (bytes → lines, the multi-line `520-` block, the
//! `HANGUP` notice) is the codec's job.

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::tag;
use nom::character::complete::i64 as int;
use nom::combinator::{all_consuming, rest};
use nom::sequence::preceded;

/// One reply to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `200 result=<n> [(<data>)] [endpos=<n>]`. `data` is what stood between the outer
    /// parentheses (a GET VARIABLE value, `hangup`, `timeout`, `dtmf`…); free text after the
    /// result that is not parenthesised (`200 result=0 Gosub complete`) is kept as data too.
    Success {
        result: i64,
        data: Option<String>,
        endpos: Option<i64>,
    },
    /// `100 result=0 Trying...`: the command (GOSUB) has started; its real reply follows.
    Trying,
    /// `510 Invalid or unknown command`.
    InvalidCommand,
    /// `511 Command Not Permitted on a dead channel[ or intercept routine]`.
    DeadChannel,
    /// `520 …` or a whole `520-` … `520 …` block: the command's arguments were wrong. Holds
    /// the block's text without the `520-`/`520 ` prefixes, lines joined by `\n`.
    Usage(String),
}

impl Reply {
    /// True when the reply says the channel is gone: `200 result=-1 (hangup)` (a command
    /// interrupted by the hangup) or 511 (a command refused because the channel is dead).
    ///
    /// A bare `200 result=-1` is not counted: it also means "file not found" (STREAM FILE,
    /// with `endpos=0`) or an application's failure, so only the `HANGUP` notice that follows
    /// can confirm a hangup in that case.
    pub(crate) fn is_hangup(&self) -> bool {
        match self {
            Reply::Success { result, data, .. } => {
                *result == -1 && data.as_deref() == Some("hangup")
            }
            Reply::DeadChannel => true,
            _ => false,
        }
    }

    /// The `result=` value of a 200 reply.
    pub fn result(&self) -> Option<i64> {
        match self {
            Reply::Success { result, .. } => Some(*result),
            _ => None,
        }
    }

    /// The value of a GET VARIABLE reply: `Some` only for `200 result=1 (value)`
    /// (`200 result=0` means the variable is unset).
    pub fn variable(&self) -> Option<&str> {
        match self {
            Reply::Success {
                result: 1,
                data: Some(d),
                ..
            } => Some(d),
            _ => None,
        }
    }
}

/// The texts res_agi.c writes for the fixed replies (both 511 spellings are in the field).
const TRYING: &str = "100 result=0 Trying...";
const INVALID: &str = "510 Invalid or unknown command";
const DEAD_OLD: &str = "511 Command Not Permitted on a dead channel";
const DEAD: &str = "511 Command Not Permitted on a dead channel or intercept routine";

/// Parses one single-line reply (no `\n`). `520-` block lines are handled by the codec.
/// Returns `None` for anything that is not a reply Asterisk sends.
pub(crate) fn parse_reply_line(line: &str) -> Option<Reply> {
    match line {
        TRYING => return Some(Reply::Trying),
        INVALID => return Some(Reply::InvalidCommand),
        DEAD | DEAD_OLD => return Some(Reply::DeadChannel),
        _ => {}
    }
    if let Some(text) = line.strip_prefix("520 ") {
        return Some(Reply::Usage(text.to_owned()));
    }
    success(line).ok().map(|(_, r)| r)
}

/// A signed decimal that fits an i64.
fn integer(input: &str) -> IResult<&str, i64> {
    int(input)
}

/// `200 result=<int>` followed by the optional data / endpos tail.
fn success(input: &str) -> IResult<&str, Reply> {
    let (input, result) = preceded(tag("200 result="), integer).parse(input)?;
    let (input, tail) = all_consuming(rest).parse(input)?;
    let (data, endpos) = success_tail(tail).ok_or_else(|| {
        nom::Err::Error(nom::error::Error::new(tail, nom::error::ErrorKind::Verify))
    })?;
    Ok((
        input,
        Reply::Success {
            result,
            data,
            endpos,
        },
    ))
}

/// Splits what follows `result=<n>`: `""`, ` endpos=N`, ` (data)`, ` (data) endpos=N`, or
/// ` free text`. The data may itself hold spaces and parentheses (a caller name
/// `"Alice (home)" <100>`), so it is delimited by the first `(` and the last `)`, not by
/// nesting. A tail ending in `)` has no endpos (an endpos ends in a digit), which keeps a
/// value such as `x) endpos=5` as data.
fn success_tail(tail: &str) -> Option<(Option<String>, Option<i64>)> {
    if tail.is_empty() {
        return Some((None, None));
    }
    let tail = tail.strip_prefix(' ')?;
    if let Some(inner) = tail.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        return Some((Some(inner.to_owned()), None));
    }
    if let Some((before, pos)) = tail.rsplit_once("endpos=") {
        let (_, endpos) = all_consuming(integer).parse(pos).ok()?;
        let before = before.strip_suffix(' ').unwrap_or(before);
        if before.is_empty() {
            return Some((None, Some(endpos)));
        }
        let inner = before.strip_prefix('(')?.strip_suffix(')')?;
        return Some((Some(inner.to_owned()), Some(endpos)));
    }
    if tail.starts_with('(') {
        return None; // an unclosed data field
    }
    Some((Some(tail.to_owned()), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(result: i64, data: Option<&str>, endpos: Option<i64>) -> Option<Reply> {
        Some(Reply::Success {
            result,
            data: data.map(str::to_owned),
            endpos,
        })
    }

    #[test]
    fn success_shapes() {
        assert_eq!(parse_reply_line("200 result=1"), ok(1, None, None));
        assert_eq!(parse_reply_line("200 result=-1"), ok(-1, None, None));
        assert_eq!(
            parse_reply_line("200 result=1 (reject)"),
            ok(1, Some("reject"), None)
        );
        assert_eq!(
            parse_reply_line("200 result=0 endpos=2000"),
            ok(0, None, Some(2000))
        );
        assert_eq!(
            parse_reply_line("200 result=-1 endpos=0"),
            ok(-1, None, Some(0))
        );
        assert_eq!(
            parse_reply_line("200 result=-1 (hangup) endpos=8640"),
            ok(-1, Some("hangup"), Some(8640))
        );
        assert_eq!(
            parse_reply_line("200 result=0 (timeout)"),
            ok(0, Some("timeout"), None)
        );
        assert_eq!(
            parse_reply_line("200 result=1 (\"Alice (home)\" <2233>)"),
            ok(1, Some("\"Alice (home)\" <2233>"), None)
        );
        assert_eq!(
            parse_reply_line("200 result=1 (x) endpos=5)"),
            ok(1, Some("x) endpos=5"), None)
        );
        assert_eq!(parse_reply_line("200 result=1 ()"), ok(1, Some(""), None));
        assert_eq!(
            parse_reply_line("200 result=0 Gosub complete"),
            ok(0, Some("Gosub complete"), None)
        );
    }

    #[test]
    fn fixed_replies() {
        assert_eq!(parse_reply_line(TRYING), Some(Reply::Trying));
        assert_eq!(parse_reply_line(INVALID), Some(Reply::InvalidCommand));
        assert_eq!(parse_reply_line(DEAD), Some(Reply::DeadChannel));
        assert_eq!(parse_reply_line(DEAD_OLD), Some(Reply::DeadChannel));
        assert_eq!(
            parse_reply_line("520 Invalid command syntax.  Proper usage not available."),
            Some(Reply::Usage(
                "Invalid command syntax.  Proper usage not available.".into()
            ))
        );
    }

    #[test]
    fn rejects_what_asterisk_never_sends() {
        for line in [
            "",
            "200",
            "200 result=",
            "200 result=abc",
            "200 result=1(x)",
            "200 result=1 (x",
            "200 result=1 endpos=",
            "200 result=1 (x) endpos=y",
            "200 result=99999999999999999999999",
            "300 result=1",
            "510 Something else",
            "HANGUP",
        ] {
            assert_eq!(parse_reply_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn hangup_detection() {
        assert!(
            parse_reply_line("200 result=-1 (hangup)")
                .unwrap()
                .is_hangup()
        );
        assert!(parse_reply_line(DEAD).unwrap().is_hangup());
        assert!(!parse_reply_line("200 result=-1").unwrap().is_hangup());
        assert!(
            !parse_reply_line("200 result=-1 endpos=0")
                .unwrap()
                .is_hangup()
        );
        assert!(
            !parse_reply_line("200 result=1 (hangup)")
                .unwrap()
                .is_hangup()
        );
    }

    #[test]
    fn variable_value() {
        let hit = parse_reply_line("200 result=1 (NOANSWER)").unwrap();
        assert_eq!(hit.variable(), Some("NOANSWER"));
        assert_eq!(parse_reply_line("200 result=0").unwrap().variable(), None);
    }
}
