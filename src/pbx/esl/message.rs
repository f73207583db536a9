//! What FreeSWITCH sends, typed: [`EslMessage`]s, their [`Headers`] and
//! [`Event`]s, and the parsing of a complete frame's content.
//!
//! Only the content lives here; framing (bytes → header block + body, the
//! size bounds) is the codec's job. A frame that frames correctly but whose
//! content is odd is skipped or kept as [`EslMessage::Unknown`], never fatal.

use nom::{
    IResult, Parser,
    bytes::complete::{tag, take_till1},
    character::complete::space0,
};

/// Header lines in the order received. FreeSWITCH repeats some names
/// (`Hangup-Cause` twice in CHANNEL_HANGUP_COMPLETE), so this is a list, not a
/// map; lookups return the first match. Every name and value lives in one
/// string: a connect reply's 200-odd headers cost two allocations, not two
/// per header (issue 26's allocations per call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    /// Per header: where its name ends (and its value starts), where its
    /// value ends; the name starts where the previous value ended.
    ends: Vec<(u32, u32)>,
}

impl Headers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` headers of about `bytes` bytes in all.
    pub(crate) fn with_capacity(n: usize, bytes: usize) -> Self {
        Headers {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) {
        self.text.push_str(name.as_ref());
        self.end_name();
        self.text.push_str(value.as_ref());
        self.end_value();
    }

    /// Appends a header whose value is URL-encoded (as FreeSWITCH sends
    /// them), decoding it in place (see [`url_decode`]). `scratch` holds
    /// the decoded bytes on their way; reused across headers.
    pub(crate) fn push_encoded(&mut self, name: &[u8], value: &[u8], scratch: &mut Vec<u8>) {
        self.text.push_str(&String::from_utf8_lossy(name));
        self.end_name();
        // Most values have nothing encoded: copied as they are.
        if !value.contains(&b'%')
            && value != b"_undef_"
            && let Ok(v) = std::str::from_utf8(value)
        {
            self.text.push_str(v);
            self.end_value();
            return;
        }
        decode_into(scratch, value);
        match std::str::from_utf8(scratch) {
            Ok(v) => self.text.push_str(v),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(scratch)),
        }
        self.end_value();
    }

    // A header block is bounded by the codec (far below 4 GiB), so the
    // offsets fit in `u32`.
    fn end_name(&mut self) {
        self.ends.push((self.text.len() as u32, 0));
    }

    fn end_value(&mut self) {
        if let Some(last) = self.ends.last_mut() {
            last.1 = self.text.len() as u32;
        }
    }

    /// The first value of `name`, compared case-sensitively as FreeSWITCH does.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The first value of `name` ignoring ASCII case, for the headers whose
    /// case differs between FreeSWITCH versions and clients.
    #[cfg(test)]
    pub(crate) fn get_ignore_case(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(n, e)| {
            let (n, e) = (n as usize, e as usize);
            let pair = (&self.text[start..n], &self.text[n..e]);
            start = e;
            pair
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(n, _)| n)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
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
/// Types a complete frame by its `Content-Type`.
pub(super) fn classify(headers: Headers, body: &[u8]) -> EslMessage {
    let content_type = headers.get("Content-Type").unwrap_or_default();
    // Owned only for the frames that keep it.
    let unknown = |content_type: &str| EslMessage::Unknown {
        content_type: content_type.to_owned(),
    };
    match content_type {
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
                unknown(content_type)
            }
        },
        "text/disconnect-notice" => EslMessage::Disconnect {
            disposition: headers.get("Content-Disposition").map(str::to_owned),
            headers,
            body: String::from_utf8_lossy(body).into_owned(),
        },
        _ => unknown(content_type),
    }
}

/// `text/event-plain`: the body is a URL-encoded header block, optionally
/// followed by the event's own body of its inner `Content-Length`. The outer
/// frame is intact whatever this holds, so bad lines are skipped, not fatal.
fn parse_plain_event(body: &[u8]) -> Event {
    let mut event = Event {
        headers: Headers::with_capacity(32, body.len()),
        body: None,
    };
    let mut scratch = Vec::new();
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
            event.headers.push_encoded(name, value, &mut scratch);
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

/// `Name:` and the spaces after it; the remaining input is the value.
pub(super) fn header_name(line: &[u8]) -> IResult<&[u8], &[u8]> {
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
    let mut decoded = Vec::with_capacity(value.len());
    decode_into(&mut decoded, value);
    String::from_utf8_lossy(&decoded).into_owned()
}

/// [`url_decode`]'s bytes into `out` (cleared first).
fn decode_into(out: &mut Vec<u8>, value: &[u8]) {
    out.clear();
    if value == b"_undef_" {
        return;
    }
    out.reserve(value.len());
    let mut index = 0;
    while index < value.len() {
        let byte = value[index];
        if byte == b'%'
            && index + 2 < value.len()
            && let (Some(high), Some(low)) = (hex(value[index + 1]), hex(value[index + 2]))
        {
            out.push(high << 4 | low);
            index += 3;
            continue;
        }
        out.push(byte);
        index += 1;
    }
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}
