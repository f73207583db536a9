//! The Event Socket wire as FreeSWITCH writes and reads it: command framing, header blocks,
//! URL encoding.

use super::*;

/// The server closed or reset the connection while the simulator wrote.
pub(super) fn peer_gone(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(
        error.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted
    )
}

/// Reads the server's commands: a command line, `Name: value` lines, a blank
/// line, then `content-length` body bytes when given.
pub(super) struct CommandReader {
    pub(super) read: OwnedReadHalf,
    pub(super) buf: Vec<u8>,
}

impl CommandReader {
    /// The next command, or `None` at EOF.
    pub(super) async fn next(&mut self) -> std::io::Result<Option<SimCommand>> {
        loop {
            if let Some(command) = self.parse()? {
                return Ok(Some(command));
            }
            if self.buf.len() > MAX_COMMAND_BYTES {
                return Err(std::io::Error::other("command larger than 1 MiB"));
            }
            let mut chunk = [0u8; 4096];
            let read = self.read.read(&mut chunk).await?;
            if read == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    pub(super) fn parse(&mut self) -> std::io::Result<Option<SimCommand>> {
        while self.buf.first().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            self.buf.remove(0);
        }
        let text = &self.buf;
        let Some((end, terminator)) = find_blank_line(text) else {
            return Ok(None);
        };
        let head = String::from_utf8_lossy(&text[..end]).into_owned();
        let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
        let line = lines.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim_start().to_owned()))
            .collect();
        let mut command = SimCommand {
            line,
            headers,
            body: Vec::new(),
        };
        let length: usize = command
            .header("content-length")
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if length > MAX_COMMAND_BYTES {
            return Err(std::io::Error::other("command body larger than 1 MiB"));
        }
        let body_start = end + terminator;
        if self.buf.len() < body_start + length {
            return Ok(None);
        }
        command.body = self.buf[body_start..body_start + length].to_vec();
        self.buf.drain(..body_start + length);
        Ok(Some(command))
    }
}

/// The end of the header block and the terminator's length (LF LF or CRLF CRLF).
pub(super) fn find_blank_line(bytes: &[u8]) -> Option<(usize, usize)> {
    (0..bytes.len()).find_map(|i| {
        if bytes[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else if bytes[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else {
            None
        }
    })
}

/// The connect reply's headers, decoded, with the configured call data.
pub fn connect_reply_headers(config: &SimConfig) -> Vec<(String, String)> {
    let end = LOOPBACK_EXIT_CAPTURE
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("the capture has a header block");
    let template = String::from_utf8_lossy(&LOOPBACK_EXIT_CAPTURE[..end]);
    let mut headers = Vec::new();
    for line in template.lines() {
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        if name == "variable_callguard_trunk" {
            for (var, value) in &config.variables {
                headers.push((format!("variable_{var}"), value.clone()));
            }
            continue;
        }
        let value = url_decode(value)
            .replace(TEMPLATE_CALLER, &config.caller_number)
            .replace(TEMPLATE_DESTINATION, &config.destination_number)
            .replace(TEMPLATE_UNIQUE_ID, &config.unique_id);
        let value =
            if name.ends_with("Caller-ID-Name") || name == "variable_origination_caller_id_name" {
                config.caller_name.clone()
            } else if name.ends_with("Privacy-Hide-Number") {
                config.hide_number.to_string()
            } else {
                value
            };
        headers.push((name.to_owned(), value));
    }
    headers
}

/// The hangup cause FreeSWITCH gives a `respond` with a final status
/// (mod_sofia maps 486 to USER_BUSY, 503 to NORMAL_TEMPORARY_FAILURE).
pub(super) fn respond_cause(arg: &str) -> Option<&'static str> {
    match arg.split_whitespace().next()?.parse::<u16>().ok()? {
        0..=299 => None,
        486 => Some("USER_BUSY"),
        503 => Some("NORMAL_TEMPORARY_FAILURE"),
        403 | 603 => Some("CALL_REJECTED"),
        _ => Some("NORMAL_CLEARING"),
    }
}

/// A variable of an application argument's `%[name=value,...]` prefix:
/// FreeSWITCH sets those on the channel for the length of the application.
pub(super) fn scope_variable<'a>(arg: &'a str, name: &str) -> Option<&'a str> {
    let vars = arg.strip_prefix("%[")?.split_once(']')?.0;
    vars.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// `DIALSTATUS` as `switch_ivr_originate` derives it from the failure cause.
pub fn dial_status(cause: &str) -> &'static str {
    match cause {
        "SUCCESS" => "SUCCESS",
        "USER_BUSY" => "BUSY",
        "NO_ANSWER" | "NO_USER_RESPONSE" => "NOANSWER",
        "ORIGINATOR_CANCEL" => "CANCEL",
        "CALL_REJECTED" => "DONTCALL",
        "INVALID_NUMBER_FORMAT" => "INVALIDARGS",
        _ => "CHANUNAVAIL",
    }
}

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Replaces the value of `name`, or appends it before `Content-Type` so the
/// variables stay together as in the captures.
pub(super) fn set_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    if let Some(slot) = headers.iter_mut().find(|(n, _)| n == name) {
        slot.1 = value.to_owned();
        return;
    }
    let at = headers
        .iter()
        .position(|(n, _)| n == "Content-Type")
        .unwrap_or(headers.len());
    headers.insert(at, (name.to_owned(), value.to_owned()));
}

pub(super) fn reply(text: &str) -> Vec<u8> {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n").into_bytes()
}

pub(super) fn injection_frame(injection: &Injection) -> Vec<u8> {
    match injection {
        Injection::UnknownContentType => {
            b"Content-Type: text/rude-rejection\nContent-Length: 12\n\nAccess Deny\n".to_vec()
        }
        Injection::OversizedBody(length) => {
            let mut frame = format!("Content-Length: {length}\nContent-Type: text/event-plain\n\n")
                .into_bytes();
            frame.resize(frame.len() + length, b'x');
            frame
        }
    }
}

/// A header block with every value URL-encoded as `switch_event_serialize`
/// does, ending in a blank line.
pub fn encode_block(headers: &[(String, String)]) -> Vec<u8> {
    let mut block = String::new();
    for (name, value) in headers {
        block.push_str(name);
        block.push_str(": ");
        block.push_str(&url_encode(value));
        block.push('\n');
    }
    block.push('\n');
    block.into_bytes()
}

/// FreeSWITCH's `switch_url_encode`: bytes outside 0x20–0x7E and the reserved
/// characters become `%XX`, an existing `%XX` is kept, empty is `_undef_`.
pub fn url_encode(value: &str) -> String {
    const RESERVED: &[u8] = b"\r\n #%&+:;<=>?@[\\]^`{|}\"";
    if value.is_empty() {
        return "_undef_".into();
    }
    let bytes = value.as_bytes();
    let mut encoded = String::with_capacity(bytes.len());
    for (index, &byte) in bytes.iter().enumerate() {
        let escape_kept = byte == b'%'
            && bytes.len() > index + 2
            && bytes[index + 1].is_ascii_hexdigit()
            && bytes[index + 2].is_ascii_hexdigit();
        if escape_kept || ((0x20..=0x7e).contains(&byte) && !RESERVED.contains(&byte)) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

pub(super) fn url_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
