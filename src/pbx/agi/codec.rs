//! FastAGI framing: bytes from Asterisk → [`AgiFrame`]s, [`AgiCommand`]s → bytes.
//!
//! Asterisk sends two things on one socket: first the environment (`name: value` lines ended
//! by an empty line), then one reply per command, with the out-of-band `HANGUP` notice
//! between them at any point — even before the reply to a command already sent, and in the
//! same TCP read as the next reply. So frames are cut at `\n` from the byte buffer, never per
//! read, and `HANGUP` is its own frame rather than a kind of reply.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

pub use super::command::{AgiCommand, CommandTooLong, MAX_COMMAND_LEN};
pub use super::env::AgiEnv;
pub use super::reply::Reply;
pub(crate) use super::reply::parse_reply_line;

/// Default bound on one line, in bytes without the `\n`: Asterisk's own line buffer size.
pub const DEFAULT_MAX_LINE: usize = 8 * 1024;
/// Default bound on the environment's lines: ~25 fixed ones plus at most 127 `agi_arg_N`.
pub const DEFAULT_MAX_ENV_LINES: usize = 256;

/// How much of an offending line an error quotes.
const QUOTE_LEN: usize = 80;

/// One thing read from Asterisk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgiFrame {
    /// The whole environment; always the first frame.
    Env(AgiEnv),
    /// The reply to the oldest unanswered command.
    Reply(Reply),
    /// The `HANGUP` notice: the caller left (or, after the server closed, the session ended).
    Hangup,
}

/// Why a FastAGI stream could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AgiError {
    #[error("line longer than {limit} bytes (starts {start:?})")]
    LineTooLong { limit: usize, start: String },
    #[error("environment has more than {limit} lines")]
    TooManyEnvLines { limit: usize },
    #[error("line is not UTF-8: {line:?}")]
    NotUtf8 { line: String },
    #[error("malformed environment line: {line:?}")]
    BadEnvLine { line: String },
    #[error("unrecognised reply: {line:?}")]
    BadReply { line: String },
    #[error("connection closed in the middle of {0}")]
    Truncated(&'static str),
    #[error(transparent)]
    CommandTooLong(#[from] CommandTooLong),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the decoder is in the session.
#[derive(Debug)]
enum Phase {
    /// Reading the environment; the pairs seen so far.
    Env(AgiEnv),
    /// Reading replies and notices.
    Replies,
    /// Inside a `520-` block; its lines so far.
    Usage(Vec<String>),
}

/// The FastAGI codec; one per connection.
#[derive(Debug)]
pub struct AgiCodec {
    max_line: usize,
    max_env_lines: usize,
    phase: Phase,
    /// Bytes at the front of the buffer already searched for `\n`, so a line trickling in
    /// one byte per read is scanned once, not once per read.
    scanned: usize,
}

impl Default for AgiCodec {
    fn default() -> Self {
        Self::new()
    }
}

impl AgiCodec {
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_LINE, DEFAULT_MAX_ENV_LINES)
    }

    /// `max_line`: bytes per line without `\n`; `max_env_lines`: environment lines (also the
    /// bound on the lines of one `520-` block).
    pub fn with_limits(max_line: usize, max_env_lines: usize) -> Self {
        AgiCodec {
            max_line,
            max_env_lines,
            phase: Phase::Env(AgiEnv::with_capacity()),
            scanned: 0,
        }
    }

    /// Finds the next complete line at the front of `buf`: its length without `\n` and one
    /// trailing `\r`, and the bytes to consume with it; `None` when it has not fully arrived.
    /// Errors as soon as a line is over the limit, newline or not, so a peer that never
    /// sends `\n` cannot grow the buffer. The line is read in place (no copy, no allocation).
    fn next_line(&mut self, buf: &BytesMut) -> Result<Option<(usize, usize)>, AgiError> {
        let Some(offset) = buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            if buf.len() > self.max_line {
                return Err(self.too_long(buf));
            }
            self.scanned = buf.len();
            return Ok(None);
        };
        let end = self.scanned + offset;
        self.scanned = 0;
        if end > self.max_line {
            return Err(self.too_long(buf));
        }
        let len = if end > 0 && buf[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        Ok(Some((len, end + 1)))
    }

    /// One complete line.
    fn line(&mut self, raw: &[u8]) -> Result<Option<AgiFrame>, AgiError> {
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(AgiError::NotUtf8 {
                line: quote(&String::from_utf8_lossy(raw)),
            });
        };
        match &mut self.phase {
            Phase::Env(env) => Ok(env_line(env, self.max_env_lines, line)?.map(|env| {
                self.phase = Phase::Replies;
                AgiFrame::Env(env)
            })),
            Phase::Replies | Phase::Usage(_) => self.reply_line(line),
        }
    }

    /// The environment lines read so far while the environment is still
    /// incomplete (the peer went away or fell silent in the middle of it):
    /// what the session's log row can still tell of the call, such as
    /// `agi_uniqueid`. `None` once it is complete or before its first line.
    pub(crate) fn partial_env(&self) -> Option<AgiEnv> {
        match &self.phase {
            Phase::Env(env) if env.len() > 0 => Some(env.clone()),
            _ => None,
        }
    }

    fn too_long(&self, buf: &BytesMut) -> AgiError {
        let start = &buf[..buf.len().min(QUOTE_LEN)];
        AgiError::LineTooLong {
            limit: self.max_line,
            start: String::from_utf8_lossy(start).into_owned(),
        }
    }

    /// One line after the environment.
    fn reply_line(&mut self, line: &str) -> Result<Option<AgiFrame>, AgiError> {
        if let Phase::Usage(lines) = &mut self.phase {
            if let Some(last) = line.strip_prefix("520 ") {
                lines.push(last.to_owned());
                let text = std::mem::take(lines).join("\n");
                self.phase = Phase::Replies;
                return Ok(Some(AgiFrame::Reply(Reply::Usage(text))));
            }
            if lines.len() >= self.max_env_lines {
                return Err(AgiError::BadReply {
                    line: format!("520- block longer than {} lines", self.max_env_lines),
                });
            }
            lines.push(line.to_owned());
            return Ok(None);
        }
        if line == "HANGUP" {
            return Ok(Some(AgiFrame::Hangup));
        }
        if let Some(first) = line.strip_prefix("520-") {
            self.phase = Phase::Usage(vec![first.to_owned()]);
            return Ok(None);
        }
        match parse_reply_line(line) {
            Some(reply) => Ok(Some(AgiFrame::Reply(reply))),
            None => Err(AgiError::BadReply { line: quote(line) }),
        }
    }
}

/// One environment line into `pairs`; the finished environment once the empty line ends it.
fn env_line(env: &mut AgiEnv, max_lines: usize, line: &str) -> Result<Option<AgiEnv>, AgiError> {
    if line.is_empty() {
        return Ok(Some(std::mem::take(env)));
    }
    if env.len() >= max_lines {
        return Err(AgiError::TooManyEnvLines { limit: max_lines });
    }
    // Split on the first ": " (a value may contain ": "); `name:` alone is an empty value.
    let (name, value) = match line.split_once(": ") {
        Some((name, value)) => (name, value),
        None => match line.strip_suffix(':') {
            Some(name) => (name, ""),
            None => return Err(AgiError::BadEnvLine { line: quote(line) }),
        },
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(AgiError::BadEnvLine { line: quote(line) });
    }
    env.push(name, value);
    Ok(None)
}

/// A line for an error message: at most [`QUOTE_LEN`] characters.
fn quote(line: &str) -> String {
    match line.char_indices().nth(QUOTE_LEN) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

impl Decoder for AgiCodec {
    type Item = AgiFrame;
    type Error = AgiError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<AgiFrame>, AgiError> {
        while let Some((len, used)) = self.next_line(buf)? {
            let frame = self.line(&buf[..len]);
            buf.advance(used);
            if let Some(frame) = frame? {
                return Ok(Some(frame));
            }
        }
        Ok(None)
    }

    /// At EOF, bytes that never became a frame are an error: a cut environment, a `520-`
    /// block without its end, or half a line. A connection closed before sending anything
    /// is just the end of the stream (a port probe), which the session reports itself.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<AgiFrame>, AgiError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        match &self.phase {
            Phase::Env(env) if env.len() > 0 || !buf.is_empty() => {
                Err(AgiError::Truncated("the environment"))
            }
            Phase::Usage(_) => Err(AgiError::Truncated("a 520 usage block")),
            _ if !buf.is_empty() => {
                buf.advance(buf.len());
                Err(AgiError::Truncated("a reply line"))
            }
            _ => Ok(None),
        }
    }
}

impl Encoder<&AgiCommand> for AgiCodec {
    type Error = AgiError;

    /// Appends the whole line at once so the framed writer sends it in one write: Asterisk
    /// reads a command until `\n`, but a single write keeps captures and timing simple.
    fn encode(&mut self, cmd: &AgiCommand, dst: &mut BytesMut) -> Result<(), AgiError> {
        let line = cmd.to_line()?;
        dst.extend_from_slice(line.as_bytes());
        Ok(())
    }
}

impl Encoder<AgiCommand> for AgiCodec {
    type Error = AgiError;

    fn encode(&mut self, cmd: AgiCommand, dst: &mut BytesMut) -> Result<(), AgiError> {
        self.encode(&cmd, dst)
    }
}

#[cfg(test)]
mod tests;
