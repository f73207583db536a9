//! The commands callguard sends to FreeSWITCH, and their bytes on the wire.
//!
//! Each command is written whole, ended by its blank line; caller data in a
//! header value is flattened onto one line so it cannot become another header
//! or another command. Byte formats: `tests/fixtures/esl.md`.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

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

impl EslCommand {
    /// Writes the whole command into `dst` at once: FreeSWITCH reads a command
    /// up to its blank line, so a command split by an interleaved write would
    /// be a different command.
    pub(crate) fn write_to(self, dst: &mut BytesMut) {
        match self {
            EslCommand::Connect => dst.put_slice(b"connect\n\n"),
            EslCommand::MyEvents => dst.put_slice(b"myevents\n\n"),
            EslCommand::Linger(seconds) => {
                // Straight into the buffer: no string per call.
                let _ = write!(dst, "linger {seconds}\n\n");
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
