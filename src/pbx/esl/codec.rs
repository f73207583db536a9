//! The outbound Event Socket wire format: FreeSWITCH's frames in, callguard's
//! commands out.
//!
//! A frame is a header block (`Name: value` lines, then a blank line) followed
//! by exactly `Content-Length` body bytes when that header is present. The
//! decoder frames by bytes, never by reads, because FreeSWITCH often puts
//! several frames into one write and TCP may split one anywhere. Every size is
//! bounded *before* the terminator arrives so a peer cannot make us buffer
//! without limit. Byte formats: `tests/fixtures/esl.md` and the captures in
//! `tests/fixtures/transcripts/`.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

pub use super::command::EslCommand;
pub use super::message::{EslMessage, Event, Headers, url_decode};
use super::message::{classify, header_name};

/// Default bound of one header block (`esl.max_header_bytes`). A SIP call's
/// connect reply is about 8 KiB, so 64 KiB leaves room for many variables.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// Default bound of one body (`esl.max_body_bytes`). Events seen are < 10 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Header lines quoted in errors are cut to this many bytes, so that an error
/// message cannot itself become large.
const QUOTE_LIMIT: usize = 80;

/// Why the byte stream from FreeSWITCH cannot be framed any further. All of
/// these are terminal for the session: the stream is out of step or hostile.
#[derive(Debug, thiserror::Error)]
pub enum EslCodecError {
    #[error("header block longer than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    #[error("Content-Length {declared:?} exceeds the {limit}-byte body limit")]
    BodyTooLarge { declared: String, limit: usize },
    #[error("invalid Content-Length {0:?}")]
    BadContentLength(String),
    #[error("malformed header line {line}: {text:?}")]
    BadHeaderLine { line: usize, text: String },
    #[error("connection closed in the middle of a frame ({pending} bytes pending)")]
    Truncated { pending: usize },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}
/// Decoder of FreeSWITCH frames and encoder of [`EslCommand`]s.
#[derive(Debug)]
pub struct EslCodec {
    max_header_bytes: usize,
    max_body_bytes: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Looking for the blank line; `scanned` bytes of the buffer hold no
    /// terminator yet (so a byte-by-byte stream is scanned once), and the
    /// current line starts at `line_start`.
    Header { scanned: usize, line_start: usize },
    /// The header block was consumed; waiting for `length` body bytes.
    Body { headers: Headers, length: usize },
}

const HEADER_START: State = State::Header {
    scanned: 0,
    line_start: 0,
};

impl Default for EslCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_BODY_BYTES)
    }
}

impl EslCodec {
    pub fn new(max_header_bytes: usize, max_body_bytes: usize) -> Self {
        Self {
            max_header_bytes,
            max_body_bytes,
            state: HEADER_START,
        }
    }

    /// Finds the end of the header block. Returns `(block_len, consumed)`:
    /// the block without its terminating blank line, and the block with it.
    /// Leading blank lines between frames are dropped from `buf`.
    fn find_header_end(&mut self, buf: &mut BytesMut) -> Option<(usize, usize)> {
        let State::Header {
            scanned,
            line_start,
        } = &mut self.state
        else {
            return None;
        };
        while let Some(offset) = buf[*scanned..].iter().position(|&b| b == b'\n') {
            let newline = *scanned + offset;
            let line = &buf[*line_start..newline];
            if line.is_empty() || line == b"\r" {
                if *line_start == 0 {
                    buf.advance(newline + 1);
                    *scanned = 0;
                    continue;
                }
                let end = (*line_start, newline + 1);
                *scanned = 0;
                *line_start = 0;
                return Some(end);
            }
            *line_start = newline + 1;
            *scanned = newline + 1;
        }
        *scanned = buf.len();
        None
    }

    fn body_length(&self, headers: &Headers) -> Result<usize, EslCodecError> {
        let Some(declared) = headers.get("Content-Length") else {
            return Ok(0);
        };
        let digits = declared.trim();
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EslCodecError::BadContentLength(quote(declared.as_bytes())));
        }
        match digits.parse::<usize>() {
            Ok(length) if length <= self.max_body_bytes => Ok(length),
            _ => Err(EslCodecError::BodyTooLarge {
                declared: quote(declared.as_bytes()),
                limit: self.max_body_bytes,
            }),
        }
    }
}

impl Decoder for EslCodec {
    type Item = EslMessage;
    type Error = EslCodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<EslMessage>, EslCodecError> {
        if let State::Header { .. } = self.state {
            let Some((block_len, consumed)) = self.find_header_end(buf) else {
                // One byte of slack: a block of exactly the limit may be
                // waiting for the `\n` of its `\r\n` terminator, and must not
                // be refused when TCP cuts there but accepted when it does not.
                if buf.len() > self.max_header_bytes + 1 {
                    return Err(EslCodecError::HeaderTooLarge {
                        limit: self.max_header_bytes,
                    });
                }
                return Ok(None);
            };
            if block_len > self.max_header_bytes {
                return Err(EslCodecError::HeaderTooLarge {
                    limit: self.max_header_bytes,
                });
            }
            let headers = parse_header_block(&buf[..block_len])?;
            let length = self.body_length(&headers)?;
            buf.advance(consumed);
            self.state = State::Body { headers, length };
        }
        let State::Body { length, .. } = self.state else {
            return Ok(None);
        };
        if buf.len() < length {
            buf.reserve(length - buf.len());
            return Ok(None);
        }
        let State::Body { headers, .. } = std::mem::replace(&mut self.state, HEADER_START) else {
            return Ok(None);
        };
        // Read in place, then dropped: no split (a split makes the buffer shared, and
        // its next growth a fresh allocation).
        let message = classify(headers, &buf[..length]);
        buf.advance(length);
        Ok(Some(message))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<EslMessage>, EslCodecError> {
        if let Some(message) = self.decode(buf)? {
            return Ok(Some(message));
        }
        let only_blank = buf.iter().all(|b| matches!(b, b'\r' | b'\n'));
        if only_blank && matches!(self.state, State::Header { .. }) {
            buf.clear();
            self.state = HEADER_START;
            return Ok(None);
        }
        Err(EslCodecError::Truncated { pending: buf.len() })
    }
}
impl Encoder<EslCommand> for EslCodec {
    type Error = EslCodecError;

    fn encode(&mut self, command: EslCommand, dst: &mut BytesMut) -> Result<(), EslCodecError> {
        command.write_to(dst);
        Ok(())
    }
}

/// The outer header block: it frames the stream, so a malformed line means
/// the stream is out of step and is an error.
fn parse_header_block(block: &[u8]) -> Result<Headers, EslCodecError> {
    let mut headers = Headers::with_capacity(16, block.len());
    let mut scratch = Vec::new();
    for (index, line) in block.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (value, name) = header_name(line).map_err(|_| EslCodecError::BadHeaderLine {
            line: index + 1,
            text: quote(line),
        })?;
        headers.push_encoded(name, value, &mut scratch);
    }
    Ok(headers)
}
fn quote(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE_LIMIT)]).into_owned()
}
#[cfg(test)]
mod tests;
