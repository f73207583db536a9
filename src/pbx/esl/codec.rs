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

use bytes::{Buf, BufMut, BytesMut};
use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_till1},
    character::complete::space0,
};
use tokio_util::codec::{Decoder, Encoder};

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

/// Header lines in the order received. FreeSWITCH repeats some names
/// (`Hangup-Cause` twice in CHANNEL_HANGUP_COMPLETE), so this is a list, not a
/// map; lookups return the first match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push((name.into(), value.into()));
    }

    /// The first value of `name`, compared case-sensitively as FreeSWITCH does.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name` ignoring ASCII case, for the headers whose
    /// case differs between FreeSWITCH versions and clients.
    pub fn get_ignore_case(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One FreeSWITCH event, from `text/event-plain` or `text/event-json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub headers: Headers,
    /// The event's own body (its inner `Content-Length`, or JSON `_body`).
    pub body: Option<String>,
}

impl Event {
    /// `Event-Name`, e.g. `CHANNEL_EXECUTE_COMPLETE`.
    pub fn name(&self) -> Option<&str> {
        self.headers.get("Event-Name")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The `Event-UUID` callguard sent with `sendmsg`: completions are matched
    /// on it, never on order, because the dialplan's own apps interleave.
    pub fn application_uuid(&self) -> Option<&str> {
        self.headers.get("Application-UUID")
    }

    pub fn hangup_cause(&self) -> Option<&str> {
        self.headers.get("Hangup-Cause")
    }

    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

/// One frame from FreeSWITCH, typed by its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EslMessage {
    /// The reply to `connect`: the channel's data as a bare header block with
    /// `Content-Type: command/reply` and `Event-Name: CHANNEL_DATA`.
    ChannelData(Headers),
    /// The reply to any other command (`+OK …` / `-ERR …`).
    CommandReply {
        reply_text: String,
        headers: Headers,
    },
    ApiResponse {
        body: String,
    },
    Event(Event),
    /// `text/disconnect-notice`: `linger` once the channel is gone (more
    /// events may follow), `disconnect` just before FreeSWITCH closes.
    Disconnect {
        disposition: Option<String>,
        headers: Headers,
        body: String,
    },
    /// A content type callguard does not know, or an event body it could not
    /// read: skipped, never fatal, so a newer FreeSWITCH cannot break a call.
    Unknown {
        content_type: String,
    },
}

/// A command callguard sends to FreeSWITCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EslCommand {
    Connect,
    MyEvents,
    /// Keep the socket for this many seconds after the hangup so the final
    /// events (CHANNEL_HANGUP_COMPLETE) still arrive.
    Linger(u32),
    Exit,
    /// `sendmsg` + `call-command: execute`.
    Execute {
        app: String,
        arg: Option<String>,
        event_lock: bool,
        /// Comes back as `Application-UUID` in the app's completion event.
        event_uuid: String,
    },
    /// `sendmsg` + `call-command: hangup`.
    Hangup {
        cause: String,
    },
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
        let body = buf.split_to(length);
        Ok(Some(classify(headers, &body)))
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

    /// Writes the whole command into `dst` at once: FreeSWITCH reads a command
    /// up to its blank line, so a command split by an interleaved write would
    /// be a different command.
    fn encode(&mut self, command: EslCommand, dst: &mut BytesMut) -> Result<(), EslCodecError> {
        match command {
            EslCommand::Connect => dst.put_slice(b"connect\n\n"),
            EslCommand::MyEvents => dst.put_slice(b"myevents\n\n"),
            EslCommand::Linger(seconds) => {
                dst.put_slice(format!("linger {seconds}\n\n").as_bytes())
            }
            EslCommand::Exit => dst.put_slice(b"exit\n\n"),
            EslCommand::Execute {
                app,
                arg,
                event_lock,
                event_uuid,
            } => {
                dst.put_slice(b"sendmsg\ncall-command: execute\n");
                put_header(dst, "execute-app-name", &app);
                if let Some(arg) = arg {
                    put_header(dst, "execute-app-arg", &arg);
                }
                if event_lock {
                    dst.put_slice(b"event-lock: true\n");
                }
                put_header(dst, "Event-UUID", &event_uuid);
                dst.put_slice(b"\n");
            }
            EslCommand::Hangup { cause } => {
                dst.put_slice(b"sendmsg\ncall-command: hangup\n");
                put_header(dst, "hangup-cause", &cause);
                dst.put_slice(b"\n");
            }
        }
        Ok(())
    }
}

/// Writes `name: value\n` with CR and LF in the value replaced by spaces.
///
/// FreeSWITCH ends a header at LF and a command at a blank line, so a newline
/// in a value (a caller name passed to `set`) would let the caller append
/// headers such as `call-command: hangup` or whole commands. No value
/// callguard sends needs a line break, so flattening is lossless in practice;
/// a multi-line argument would need the `content-length` body form.
fn put_header(dst: &mut BytesMut, name: &str, value: &str) {
    dst.reserve(name.len() + value.len() + 3);
    dst.put_slice(name.as_bytes());
    dst.put_slice(b": ");
    dst.extend(
        value
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    dst.put_u8(b'\n');
}

/// Types a complete frame by its `Content-Type`.
fn classify(headers: Headers, body: &[u8]) -> EslMessage {
    let content_type = headers.get("Content-Type").unwrap_or_default().to_owned();
    match content_type.as_str() {
        "command/reply" if headers.get("Event-Name").is_some() => EslMessage::ChannelData(headers),
        "command/reply" => EslMessage::CommandReply {
            reply_text: headers.get("Reply-Text").unwrap_or_default().to_owned(),
            headers,
        },
        "api/response" => EslMessage::ApiResponse {
            body: String::from_utf8_lossy(body).into_owned(),
        },
        "text/event-plain" => EslMessage::Event(parse_plain_event(body)),
        "text/event-json" => match parse_json_event(body) {
            Some(event) => EslMessage::Event(event),
            None => {
                tracing::warn!(len = body.len(), "unreadable text/event-json body skipped");
                EslMessage::Unknown { content_type }
            }
        },
        "text/disconnect-notice" => EslMessage::Disconnect {
            disposition: headers.get("Content-Disposition").map(str::to_owned),
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        },
        _ => EslMessage::Unknown { content_type },
    }
}

/// `text/event-plain`: the body is a URL-encoded header block, optionally
/// followed by the event's own body of its inner `Content-Length`. The outer
/// frame is intact whatever this holds, so bad lines are skipped, not fatal.
fn parse_plain_event(body: &[u8]) -> Event {
    let mut event = Event::default();
    let mut rest = body;
    while !rest.is_empty() {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(newline) => (&rest[..newline], &rest[newline + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if let Ok((value, name)) = header_name(line) {
            event
                .headers
                .push(String::from_utf8_lossy(name), url_decode(value));
        }
    }
    let inner_length = event
        .headers
        .get("Content-Length")
        .and_then(|length| length.trim().parse::<usize>().ok());
    if let Some(length) = inner_length {
        let body = &rest[..length.min(rest.len())];
        event.body = Some(String::from_utf8_lossy(body).into_owned());
    }
    event
}

/// `text/event-json`: one object whose values are strings (not URL-encoded);
/// `_body` is the event's body.
fn parse_json_event(body: &[u8]) -> Option<Event> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    let mut event = Event::default();
    for (name, value) in object {
        let value = match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        if name == "_body" {
            event.body = Some(value);
        } else {
            event.headers.push(name, value);
        }
    }
    Some(event)
}

/// The outer header block: it frames the stream, so a malformed line means
/// the stream is out of step and is an error.
fn parse_header_block(block: &[u8]) -> Result<Headers, EslCodecError> {
    let mut headers = Headers::new();
    for (index, line) in block.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (value, name) = header_name(line).map_err(|_| EslCodecError::BadHeaderLine {
            line: index + 1,
            text: quote(line),
        })?;
        headers.push(String::from_utf8_lossy(name), url_decode(value));
    }
    Ok(headers)
}

/// `Name:` and the spaces after it; the remaining input is the value.
fn header_name(line: &[u8]) -> IResult<&[u8], &[u8]> {
    let (rest, name) = take_till1(|b| b == b':').parse(line)?;
    let (rest, _) = tag(&b":"[..]).parse(rest)?;
    let (value, _) = space0(rest)?;
    Ok((value, name))
}

/// Undoes FreeSWITCH's header encoding: `%XX` → byte, `_undef_` → empty.
/// `+` stays `+` (FreeSWITCH encodes it as `%2B`, so a bare `+` is literal, as
/// in unencoded command replies), and a `%` not followed by two hex digits is
/// kept as it is.
pub fn url_decode(value: &[u8]) -> String {
    if value == b"_undef_" {
        return String::new();
    }
    let mut decoded = Vec::with_capacity(value.len());
    let mut index = 0;
    while index < value.len() {
        let byte = value[index];
        if byte == b'%'
            && index + 2 < value.len()
            && let (Some(high), Some(low)) = (hex(value[index + 1]), hex(value[index + 2]))
        {
            decoded.push(high << 4 | low);
            index += 3;
            continue;
        }
        decoded.push(byte);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

fn quote(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTE_LIMIT)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURES: [(&str, &[u8], usize); 5] = [
        (
            "loopback-exit",
            include_bytes!("../../../tests/fixtures/transcripts/freeswitch-1.10-loopback-exit.bin"),
            12,
        ),
        (
            "loopback-busy",
            include_bytes!("../../../tests/fixtures/transcripts/freeswitch-1.10-loopback-busy.bin"),
            19,
        ),
        (
            "loopback-hangup-mid-playback",
            include_bytes!(
                "../../../tests/fixtures/transcripts/freeswitch-1.10-loopback-hangup-mid-playback.bin"
            ),
            19,
        ),
        (
            "sip-busy",
            include_bytes!("../../../tests/fixtures/transcripts/freeswitch-1.10-sip-busy.bin"),
            24,
        ),
        (
            "sip-cancel-mid-playback",
            include_bytes!(
                "../../../tests/fixtures/transcripts/freeswitch-1.10-sip-cancel-mid-playback.bin"
            ),
            19,
        ),
    ];

    /// Feeds `bytes` in chunks of the sizes `chunk_size` yields, then EOF.
    fn decode_chunked(
        codec: &mut EslCodec,
        bytes: &[u8],
        mut chunk_size: impl FnMut() -> usize,
    ) -> Result<Vec<EslMessage>, EslCodecError> {
        let mut buf = BytesMut::new();
        let mut messages = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = chunk_size().clamp(1, rest.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            while let Some(message) = codec.decode(&mut buf)? {
                messages.push(message);
            }
        }
        while let Some(message) = codec.decode_eof(&mut buf)? {
            messages.push(message);
        }
        Ok(messages)
    }

    fn decode_all(bytes: &[u8]) -> Vec<EslMessage> {
        decode_chunked(&mut EslCodec::default(), bytes, || usize::MAX).expect("decodes")
    }

    /// A deterministic pseudo-random chunk size in 1..=max (xorshift).
    fn random_sizes(seed: u64, max: usize) -> impl FnMut() -> usize {
        let mut state = seed;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % max as u64) as usize + 1
        }
    }

    fn event(message: &EslMessage) -> Option<&Event> {
        match message {
            EslMessage::Event(event) => Some(event),
            _ => None,
        }
    }

    #[test]
    fn captures_decode_identically_whole_byte_by_byte_and_in_random_chunks() {
        for (name, bytes, count) in CAPTURES {
            let whole = decode_all(bytes);
            assert_eq!(whole.len(), count, "{name}");
            let single = decode_chunked(&mut EslCodec::default(), bytes, || 1).unwrap();
            assert_eq!(single, whole, "{name} byte by byte");
            for seed in [1, 7, 42, 1234567] {
                let mut codec = EslCodec::default();
                let chunked = decode_chunked(&mut codec, bytes, random_sizes(seed, 700)).unwrap();
                assert_eq!(chunked, whole, "{name} random chunks, seed {seed}");
            }
            assert!(
                whole
                    .iter()
                    .all(|m| !matches!(m, EslMessage::Unknown { .. })),
                "{name}"
            );
        }
    }

    #[test]
    fn loopback_exit_capture_has_the_expected_messages() {
        let messages = decode_all(CAPTURES[0].1);
        let EslMessage::ChannelData(data) = &messages[0] else {
            panic!("first message is {:?}", messages[0]);
        };
        assert_eq!(data.len(), 113); // the README says 112; the capture has 113 lines
        assert_eq!(data.get("Caller-Caller-ID-Number"), Some("+15551234567"));
        assert_eq!(data.get("Caller-Destination-Number"), Some("+18005550100"));
        assert_eq!(data.get("Reply-Text"), Some("+OK\n"));
        assert_eq!(
            data.get("Unique-ID"),
            Some("a6057aed-35c3-45f2-98a3-4c8f5b441c7f")
        );
        assert_eq!(data.get("variable_callguard_trunk"), Some("support"));
        assert_eq!(data.get_ignore_case("unique-id"), data.get("Unique-ID"));
        let replies: Vec<&str> = messages
            .iter()
            .filter_map(|m| match m {
                EslMessage::CommandReply { reply_text, .. } => Some(reply_text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            replies,
            [
                "+OK Events Enabled",
                "+OK will linger 5 seconds",
                "+OK",
                "+OK",
                "+OK bye"
            ]
        );
        let playback_done = messages
            .iter()
            .filter_map(event)
            .find(|e| {
                e.application_uuid() == Some("30e4326d-7826-462d-a22a-da6bd86bef58")
                    && e.name() == Some("CHANNEL_EXECUTE_COMPLETE")
            })
            .expect("playback completion");
        assert_eq!(playback_done.get("Application"), Some("playback"));
        assert_eq!(
            playback_done.get("Application-Data"),
            Some("tone_stream://%(200,0,800)")
        );
        assert_eq!(
            playback_done.get("Application-Response"),
            Some("FILE PLAYED")
        );
        let Some(EslMessage::Disconnect {
            disposition, body, ..
        }) = messages.last()
        else {
            panic!("last message is {:?}", messages.last());
        };
        assert_eq!(disposition.as_deref(), Some("disconnect"));
        assert_eq!(body.len(), 67);
        assert_eq!(
            body,
            "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
        );
    }

    #[test]
    fn busy_capture_has_the_hangup_sequence() {
        let messages = decode_all(CAPTURES[1].1);
        let hangup = messages
            .iter()
            .filter_map(event)
            .find(|e| e.name() == Some("CHANNEL_HANGUP"))
            .expect("CHANNEL_HANGUP");
        assert_eq!(hangup.hangup_cause(), Some("USER_BUSY"));
        let socket_done = messages
            .iter()
            .filter_map(event)
            .find(|e| e.get("Application") == Some("socket"))
            .expect("the socket app's completion");
        assert_eq!(socket_done.name(), Some("CHANNEL_EXECUTE_COMPLETE"));
        assert_eq!(
            socket_done.get("Application-Data"),
            Some("127.0.0.1:8084 async full")
        );
        let complete = messages
            .iter()
            .filter_map(event)
            .find(|e| e.name() == Some("CHANNEL_HANGUP_COMPLETE"))
            .expect("CHANNEL_HANGUP_COMPLETE");
        assert_eq!(complete.get("variable_hangup_cause_q850"), Some("17"));
        let notices: Vec<(Option<&str>, usize, Option<&str>)> = messages
            .iter()
            .filter_map(|m| match m {
                EslMessage::Disconnect {
                    disposition,
                    headers,
                    body,
                } => Some((
                    disposition.as_deref(),
                    body.len(),
                    headers.get("Channel-Name"),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            notices,
            [
                (Some("linger"), 0, Some("loopback/+18005550100-b")),
                (Some("disconnect"), 67, None)
            ]
        );
    }

    #[test]
    fn url_decoding_keeps_plus_and_invalid_escapes() {
        assert_eq!(url_decode(b"%2B15551234567"), "+15551234567");
        assert_eq!(url_decode(b"1000%40192.0.2.10"), "1000@192.0.2.10");
        assert_eq!(url_decode(b"_undef_"), "");
        assert_eq!(url_decode(b"a+b"), "a+b");
        assert_eq!(url_decode(b"100%"), "100%");
        assert_eq!(url_decode(b"%4"), "%4");
        assert_eq!(url_decode(b"%zz%41"), "%zzA");
        assert_eq!(url_decode(b"%C3%A9%FF"), "é\u{FFFD}");
    }

    #[test]
    fn crlf_and_blank_lines_between_frames_are_tolerated() {
        let bytes = b"Content-Type: command/reply\r\nReply-Text: +OK\r\n\r\n\nContent-Type: api/response\r\nContent-Length: 3\r\n\r\nabc";
        let messages = decode_all(bytes);
        assert_eq!(messages.len(), 2);
        assert!(
            matches!(&messages[0], EslMessage::CommandReply { reply_text, .. } if reply_text == "+OK")
        );
        assert_eq!(messages[1], EslMessage::ApiResponse { body: "abc".into() });
    }

    #[test]
    fn unknown_content_type_is_skipped_and_the_stream_goes_on() {
        let bytes = b"Content-Type: text/rude-rejection\nContent-Length: 4\n\nnope\
Content-Type: command/reply\nReply-Text: +OK\n\n";
        let messages = decode_all(bytes);
        assert_eq!(
            messages[0],
            EslMessage::Unknown {
                content_type: "text/rude-rejection".into()
            }
        );
        assert!(
            matches!(&messages[1], EslMessage::CommandReply { reply_text, .. } if reply_text == "+OK")
        );
    }

    #[test]
    fn plain_event_with_nested_body() {
        let inner = "Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 5\n\n+OK\nx";
        let bytes = format!(
            "Content-Length: {}\nContent-Type: text/event-plain\n\n{inner}",
            inner.len()
        );
        let messages = decode_all(bytes.as_bytes());
        let event = event(&messages[0]).expect("event");
        assert_eq!(event.name(), Some("BACKGROUND_JOB"));
        assert_eq!(event.body(), Some("+OK\nx"));
    }

    #[test]
    fn json_event_maps_to_the_same_event_type() {
        let json = r#"{"Event-Name":"CHANNEL_HANGUP","Hangup-Cause":"USER_BUSY","Application-UUID":"u1","Event-Sequence":7,"_body":"b"}"#;
        let bytes = format!(
            "Content-Length: {}\nContent-Type: text/event-json\n\n{json}",
            json.len()
        );
        let messages = decode_all(bytes.as_bytes());
        let event = event(&messages[0]).expect("event");
        assert_eq!(event.name(), Some("CHANNEL_HANGUP"));
        assert_eq!(event.hangup_cause(), Some("USER_BUSY"));
        assert_eq!(event.application_uuid(), Some("u1"));
        assert_eq!(event.get("Event-Sequence"), Some("7"));
        assert_eq!(event.body(), Some("b"));
        let broken = b"Content-Length: 3\nContent-Type: text/event-json\n\n{x}";
        assert_eq!(
            decode_all(broken),
            [EslMessage::Unknown {
                content_type: "text/event-json".into()
            }]
        );
    }

    #[test]
    fn oversized_header_block_fails_before_its_terminator() {
        let mut codec = EslCodec::new(1024, 4096);
        let mut buf = BytesMut::from(&b"Content-Type: command/reply\n"[..]);
        buf.extend(std::iter::repeat_n(b'x', 2000));
        assert!(matches!(
            codec.decode(&mut buf),
            Err(EslCodecError::HeaderTooLarge { limit: 1024 })
        ));
        let mut codec = EslCodec::new(1024, 4096);
        let mut line = b"X-Long: ".to_vec();
        line.extend(std::iter::repeat_n(b'y', 2000));
        line.extend_from_slice(b"\n\n");
        assert!(matches!(
            decode_chunked(&mut codec, &line, || 1),
            Err(EslCodecError::HeaderTooLarge { .. })
        ));
    }

    /// Found by `proptest_decoders` / the `esl_decoder` fuzz oracle: a
    /// header block of exactly the limit, ended by `\r\n`, was accepted in
    /// one read but refused when the read ended between `\r` and `\n`.
    #[test]
    fn block_of_exactly_the_limit_is_accepted_however_it_is_cut() {
        let mut block = String::new();
        while block.len() < 86 {
            block.push_str("A: b\r\n");
        }
        let value = "v".repeat(96 - block.len() - 4);
        block.push_str(&format!("X: {value}\n"));
        assert_eq!(block.len(), 96);
        let bytes = format!("{block}\r\n");
        let whole = decode_chunked(&mut EslCodec::new(96, 64), bytes.as_bytes(), || usize::MAX)
            .expect("a block of exactly the limit");
        let single = decode_chunked(&mut EslCodec::new(96, 64), bytes.as_bytes(), || 1)
            .expect("the same, byte by byte");
        assert_eq!(single, whole);
        assert_eq!(whole.len(), 1);
        // One byte more is refused, whole or cut.
        let bytes = format!("{block}Y\r\n");
        for size in [usize::MAX, 1] {
            assert!(matches!(
                decode_chunked(&mut EslCodec::new(96, 64), bytes.as_bytes(), || size),
                Err(EslCodecError::HeaderTooLarge { limit: 96 })
            ));
        }
    }

    #[test]
    fn oversized_negative_or_garbage_content_length_is_an_error() {
        type IsExpected = fn(&EslCodecError) -> bool;
        let cases: [(&[u8], IsExpected); 4] = [
            (b"Content-Length: 4097\n\n", |e| {
                matches!(e, EslCodecError::BodyTooLarge { .. })
            }),
            (b"Content-Length: 99999999999999999999999999\n\n", |e| {
                matches!(e, EslCodecError::BodyTooLarge { .. })
            }),
            (b"Content-Length: -1\n\n", |e| {
                matches!(e, EslCodecError::BadContentLength(_))
            }),
            (b"Content-Length: 12abc\n\n", |e| {
                matches!(e, EslCodecError::BadContentLength(_))
            }),
        ];
        for (bytes, expected) in cases {
            let mut codec = EslCodec::new(1024, 4096);
            let error = codec.decode(&mut BytesMut::from(bytes)).unwrap_err();
            assert!(expected(&error), "{error}");
        }
    }

    #[test]
    fn malformed_line_non_utf8_and_truncation_are_errors_not_panics() {
        let mut codec = EslCodec::default();
        let error = codec
            .decode(&mut BytesMut::from(
                &b"Content-Type: x\nno colon here\n\n"[..],
            ))
            .unwrap_err();
        assert!(
            matches!(error, EslCodecError::BadHeaderLine { line: 2, .. }),
            "{error}"
        );
        let messages = decode_all(b"Content-Type: command/reply\nReply-Text: \xff\xfe\n\n");
        assert!(
            matches!(&messages[0], EslMessage::CommandReply { reply_text, .. } if reply_text == "\u{FFFD}\u{FFFD}")
        );
        let truncated =
            decode_chunked(&mut EslCodec::default(), b"Content-Length: 10\n\nabc", || 1);
        assert!(matches!(
            truncated,
            Err(EslCodecError::Truncated { pending: 3 })
        ));
        // Arbitrary bytes never panic.
        let mut noise = Vec::new();
        let mut next = random_sizes(99, 256);
        for _ in 0..20_000 {
            noise.push((next() - 1) as u8);
        }
        let _ = decode_chunked(&mut EslCodec::new(512, 512), &noise, random_sizes(5, 64));
    }

    fn encoded(command: EslCommand) -> String {
        let mut dst = BytesMut::new();
        EslCodec::default().encode(command, &mut dst).unwrap();
        String::from_utf8(dst.to_vec()).unwrap()
    }

    #[test]
    fn commands_are_encoded_as_in_the_transcripts() {
        assert_eq!(encoded(EslCommand::Connect), "connect\n\n");
        assert_eq!(encoded(EslCommand::MyEvents), "myevents\n\n");
        assert_eq!(encoded(EslCommand::Linger(5)), "linger 5\n\n");
        assert_eq!(encoded(EslCommand::Exit), "exit\n\n");
        assert_eq!(
            encoded(EslCommand::Execute {
                app: "set".into(),
                arg: Some("callguard_action=reject".into()),
                event_lock: true,
                event_uuid: "76133a04-bab0-4f14-85a4-8b1be7c60184".into(),
            }),
            "sendmsg\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: callguard_action=reject\nevent-lock: true\nEvent-UUID: 76133a04-bab0-4f14-85a4-8b1be7c60184\n\n"
        );
        assert_eq!(
            encoded(EslCommand::Execute {
                app: "playback".into(),
                arg: Some("tone_stream://%(200,0,800)".into()),
                event_lock: false,
                event_uuid: "30e4326d-7826-462d-a22a-da6bd86bef58".into(),
            }),
            "sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: tone_stream://%(200,0,800)\nEvent-UUID: 30e4326d-7826-462d-a22a-da6bd86bef58\n\n"
        );
        assert_eq!(
            encoded(EslCommand::Hangup {
                cause: "USER_BUSY".into()
            }),
            "sendmsg\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n"
        );
    }

    #[test]
    fn newlines_in_values_cannot_inject_headers_or_commands() {
        let wire = encoded(EslCommand::Execute {
            app: "set".into(),
            arg: Some("callguard_name=Eve\r\ncall-command: hangup\n\nexit\n".into()),
            event_lock: true,
            event_uuid: "u\n1".into(),
        });
        assert_eq!(
            wire,
            "sendmsg\ncall-command: execute\nexecute-app-name: set\nexecute-app-arg: callguard_name=Eve  call-command: hangup  exit \nevent-lock: true\nEvent-UUID: u 1\n\n"
        );
        assert_eq!(wire.matches('\n').count(), 7);
        let hangup = encoded(EslCommand::Hangup {
            cause: "X\n\nexit".into(),
        });
        assert_eq!(
            hangup,
            "sendmsg\ncall-command: hangup\nhangup-cause: X  exit\n\n"
        );
    }
}
