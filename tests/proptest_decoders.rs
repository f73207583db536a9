//! Property tests of the two PBX decoders, the `cargo test` counterpart of the
//! `agi_decoder` and `esl_decoder` fuzz targets (same oracles, bounded cases,
//! no nightly toolchain):
//! - any bytes, cut into reads anywhere: no panic, the buffer within its
//!   bound, and the same frames and error as in one read;
//! - every real capture, cut anywhere: the same frames as in one read, no error;
//! - captures with random edits: the first two again;
//! - frames written as Asterisk and FreeSWITCH write them (the simulators'
//!   encoders) decode to what was encoded;
//! - commands callguard encodes parse back (Asterisk's `parse_args`) to the
//!   same arguments.

use callguard_sim::freeswitch;
#[path = "support/oracles.rs"]
mod oracles;

use bytes::BytesMut;
use callguard::pbx::agi::codec::{AgiCodec, AgiCommand, AgiFrame, Reply};
use callguard::pbx::esl::codec::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADER_BYTES, EslCodec, EslCommand, EslMessage,
};
use callguard_sim::asterisk::parse_args;
use proptest::prelude::*;
use tokio_util::codec::Encoder;

const AGI_CAPTURES: [&[u8]; 2] = [
    include_bytes!("fixtures/transcripts/asterisk-22-pjsip-session.bin"),
    include_bytes!("fixtures/transcripts/asterisk-22-pjsip-cancel-session.bin"),
];

const ESL_CAPTURES: [&[u8]; 5] = [
    include_bytes!("../callguard-sim/captures/freeswitch-1.10-loopback-exit.bin"),
    include_bytes!("fixtures/transcripts/freeswitch-1.10-loopback-busy.bin"),
    include_bytes!("fixtures/transcripts/freeswitch-1.10-loopback-hangup-mid-playback.bin"),
    include_bytes!("fixtures/transcripts/freeswitch-1.10-sip-busy.bin"),
    include_bytes!("fixtures/transcripts/freeswitch-1.10-sip-cancel-mid-playback.bin"),
];

/// Small limits make short inputs reach the bounds; the defaults are what runs.
fn agi_limits(small: bool) -> (usize, usize) {
    if small { (48, 6) } else { (8192, 256) }
}

fn esl_limits(small: bool) -> (usize, usize) {
    if small {
        (96, 64)
    } else {
        (DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_BODY_BYTES)
    }
}

/// Bytes that look like protocol text more often than uniform bytes do.
fn wire_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => any::<u8>(),
        4 => prop::sample::select(b"\n\r :%_-0123456789".to_vec()),
        1 => Just(b'\n'),
    ];
    prop::collection::vec(piece, 0..max)
}

/// Splices words of the protocol in, so the decoders' branches are reached.
fn agi_stream() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(b"agi_callerid: 123\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"200 result=1 (x) endpos=5\n".to_vec()),
        Just(b"HANGUP\n".to_vec()),
        Just(b"520-Invalid\n".to_vec()),
        Just(b"520 End of proper usage.\n".to_vec()),
        Just(b"511 Command Not Permitted on a dead channel\n".to_vec()),
        wire_bytes(24),
    ];
    prop::collection::vec(word, 0..24).prop_map(|w| w.concat())
}

fn esl_stream() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just(b"Content-Type: text/event-plain\n".to_vec()),
        Just(b"Content-Type: command/reply\nReply-Text: +OK\n".to_vec()),
        Just(b"Content-Type: text/event-json\n".to_vec()),
        Just(b"Content-Type: text/disconnect-notice\n".to_vec()),
        Just(b"Content-Length: 12\n".to_vec()),
        Just(b"Event-Name: CHANNEL_DATA\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"{\"Event-Name\":\"X\",\"_body\":\"b\"}".to_vec()),
        wire_bytes(24),
    ];
    prop::collection::vec(word, 0..24).prop_map(|w| w.concat())
}

/// Random replacements, insertions and deletions.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = base.to_vec();
    for &(at, kind, byte) in edits {
        if out.is_empty() {
            break;
        }
        let at = at % out.len();
        match kind % 3 {
            0 => out[at] = byte,
            1 => out.insert(at, byte),
            _ => {
                out.remove(at);
            }
        }
    }
    out
}

fn cuts(max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..max, 0..24)
}

fn decode_all_agi(bytes: &[u8]) -> oracles::Decoded<AgiFrame> {
    oracles::decode_stream(AgiCodec::new(), bytes, &[], 8192, oracles::agi_error_kind)
}

fn decode_all_esl(bytes: &[u8]) -> oracles::Decoded<EslMessage> {
    oracles::decode_stream(
        EslCodec::default(),
        bytes,
        &[],
        DEFAULT_MAX_BODY_BYTES,
        oracles::esl_error_kind,
    )
}

/// One thing Asterisk sends after the environment.
#[derive(Debug, Clone)]
enum AgiOut {
    Reply(Reply),
    Hangup,
    /// A `520-` block: its lines.
    Usage(Vec<String>),
}

/// Free text without line ends (what a value in one line can hold).
fn line_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range(' ', '~'),
            1 => any::<char>().prop_filter("one line", |c| !matches!(c, '\n' | '\r')),
        ],
        0..max,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn agi_out() -> impl Strategy<Value = AgiOut> {
    prop_oneof![
        (
            any::<i64>(),
            prop::option::of(line_text(30)),
            prop::option::of(any::<i64>())
        )
            .prop_map(|(result, data, endpos)| AgiOut::Reply(Reply::Success {
                result,
                data,
                endpos
            })),
        Just(AgiOut::Reply(Reply::Trying)),
        Just(AgiOut::Reply(Reply::InvalidCommand)),
        Just(AgiOut::Reply(Reply::DeadChannel)),
        Just(AgiOut::Hangup),
        prop::collection::vec("[A-Za-z0-9 ()<>=.-]{0,30}", 2..6)
            .prop_filter("a middle line starting `520 ` ends the block", |lines| {
                lines[1..lines.len() - 1]
                    .iter()
                    .all(|l| !l.starts_with("520 "))
            })
            .prop_map(AgiOut::Usage),
    ]
}

/// The wire form of `out`, as res_agi.c writes it.
fn agi_wire(out: &AgiOut) -> String {
    match out {
        AgiOut::Hangup => "HANGUP\n".into(),
        AgiOut::Usage(lines) => {
            let last = lines.len() - 1;
            let mut s = format!("520-{}\n", lines[0]);
            for l in &lines[1..last] {
                s.push_str(l);
                s.push('\n');
            }
            s.push_str(&format!("520 {}\n", lines[last]));
            s
        }
        AgiOut::Reply(Reply::Trying) => "100 result=0 Trying...\n".into(),
        AgiOut::Reply(Reply::InvalidCommand) => "510 Invalid or unknown command\n".into(),
        AgiOut::Reply(Reply::DeadChannel) => {
            "511 Command Not Permitted on a dead channel or intercept routine\n".into()
        }
        AgiOut::Reply(Reply::Success {
            result,
            data,
            endpos,
        }) => {
            let mut s = format!("200 result={result}");
            if let Some(d) = data {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(e) = endpos {
                s.push_str(&format!(" endpos={e}"));
            }
            s + "\n"
        }
        AgiOut::Reply(Reply::Usage(_)) => unreachable!("generated as AgiOut::Usage"),
    }
}

fn agi_frame(out: &AgiOut) -> AgiFrame {
    match out {
        AgiOut::Hangup => AgiFrame::Hangup,
        AgiOut::Usage(lines) => AgiFrame::Reply(Reply::Usage(lines.join("\n"))),
        AgiOut::Reply(r) => AgiFrame::Reply(r.clone()),
    }
}

/// FreeSWITCH does not escape a value that already holds `%XX`, and writes
/// an empty value as `_undef_`: such values do not survive its encoding (in
/// FreeSWITCH either), so they are not generated.
fn esl_value() -> impl Strategy<Value = String> {
    line_text(40).prop_filter("survives switch_url_encode", |v| {
        let b = v.as_bytes();
        v != "_undef_"
            && !b
                .windows(3)
                .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
    })
}

fn esl_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Z][A-Za-z0-9-]{0,24}", esl_value()), 0..12).prop_map(|h| {
        h.into_iter()
            .filter(|(n, _)| n != "Content-Length" && n != "Content-Type")
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn agi_any_bytes_any_split(bytes in agi_stream(), cuts in cuts(512), small: bool) {
        let (max_line, max_env) = agi_limits(small);
        oracles::check_agi(&bytes, &cuts, max_line, max_env);
    }

    #[test]
    fn esl_any_bytes_any_split(bytes in esl_stream(), cuts in cuts(512), small: bool) {
        let (max_header, max_body) = esl_limits(small);
        oracles::check_esl(&bytes, &cuts, max_header, max_body);
    }

    #[test]
    fn agi_captures_split_anywhere(which in 0..AGI_CAPTURES.len(), cuts in cuts(800)) {
        let capture = AGI_CAPTURES[which];
        oracles::check_agi(capture, &cuts, 8192, 256);
        prop_assert_eq!(decode_all_agi(capture).error, None);
    }

    #[test]
    fn esl_captures_split_anywhere(which in 0..ESL_CAPTURES.len(), cuts in cuts(90_000)) {
        let capture = ESL_CAPTURES[which];
        let (max_header, max_body) = esl_limits(false);
        oracles::check_esl(capture, &cuts, max_header, max_body);
        prop_assert_eq!(decode_all_esl(capture).error, None);
    }

    #[test]
    fn agi_edited_captures(
        which in 0..AGI_CAPTURES.len(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
        cuts in cuts(800),
        small: bool,
    ) {
        let (max_line, max_env) = agi_limits(small);
        oracles::check_agi(&mutate(AGI_CAPTURES[which], &edits), &cuts, max_line, max_env);
    }

    #[test]
    fn esl_edited_captures(
        which in 0..ESL_CAPTURES.len(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8),
        cuts in cuts(90_000),
        small: bool,
    ) {
        let (max_header, max_body) = esl_limits(small);
        let bytes = mutate(ESL_CAPTURES[which], &edits);
        oracles::check_esl(&bytes, &cuts, max_header, max_body);
    }

    /// What the Asterisk simulator sends (environment, then replies, `520-`
    /// blocks and `HANGUP` notices) decodes to exactly those frames, however
    /// the stream is cut.
    #[test]
    fn agi_frames_roundtrip(
        env in prop::collection::vec(("agi_[a-z_]{1,16}", line_text(40)), 0..30),
        outs in prop::collection::vec(agi_out(), 0..12),
        cuts in cuts(4096),
    ) {
        // A value's trailing `\r` would be taken for the line's CR.
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(n, v)| (n, v.trim_end_matches('\r').to_string()))
            .collect();
        let mut wire = String::new();
        for (n, v) in &env {
            wire.push_str(&format!("{n}: {v}\n"));
        }
        wire.push('\n');
        let mut want = vec![AgiFrame::Env(callguard::pbx::agi::codec::AgiEnv::new(env))];
        for out in &outs {
            wire.push_str(&agi_wire(out));
            want.push(agi_frame(out));
        }
        let got = oracles::decode_stream(AgiCodec::new(), wire.as_bytes(), &cuts, 8192, oracles::agi_error_kind);
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(got.frames, want);
    }

    /// `text/event-plain` events as FreeSWITCH writes them (URL-encoded
    /// header block, optional inner body), between command replies and API
    /// responses, decode to the same headers and bodies.
    #[test]
    fn esl_frames_roundtrip(
        events in prop::collection::vec((esl_headers(), prop::option::of(line_text(60))), 1..6),
        cuts in cuts(8192),
    ) {
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for (i, (headers, body)) in events.iter().enumerate() {
            let mut inner_headers = headers.clone();
            if let Some(b) = body {
                inner_headers.push(("Content-Length".into(), b.len().to_string()));
            }
            let mut inner = freeswitch::encode_block(&inner_headers);
            if let Some(b) = body {
                inner.extend_from_slice(b.as_bytes());
            }
            wire.extend_from_slice(
                format!("Content-Length: {}\nContent-Type: text/event-plain\n\n", inner.len()).as_bytes(),
            );
            wire.extend_from_slice(&inner);
            let mut event = callguard::pbx::esl::codec::Event::default();
            for (n, v) in &inner_headers {
                event.headers.push(n.clone(), v.clone());
            }
            event.body = body.clone();
            want.push(EslMessage::Event(event));
            // Replies and API responses in between, as in the captures.
            if i % 2 == 0 {
                wire.extend_from_slice(b"Content-Type: command/reply\nReply-Text: +OK\n\n");
                let mut reply_headers = callguard::pbx::esl::codec::Headers::new();
                reply_headers.push("Content-Type", "command/reply");
                reply_headers.push("Reply-Text", "+OK");
                want.push(EslMessage::CommandReply { reply_text: "+OK".into(), headers: reply_headers });
            } else if let Some(b) = body {
                wire.extend_from_slice(format!("Content-Type: api/response\nContent-Length: {}\n\n{b}", b.len()).as_bytes());
                want.push(EslMessage::ApiResponse { body: b.clone() });
            }
        }
        let got = oracles::decode_stream(
            EslCodec::default(), &wire, &cuts, DEFAULT_MAX_BODY_BYTES, oracles::esl_error_kind,
        );
        prop_assert_eq!(got.error, None);
        prop_assert_eq!(got.frames, want);
    }

    /// `url_decode` undoes FreeSWITCH's `switch_url_encode` (as the
    /// simulator implements it) for every value it can carry.
    #[test]
    fn esl_url_decoding_roundtrips(value in esl_value()) {
        let encoded = freeswitch::url_encode(&value);
        prop_assert!(!encoded.contains(['\n', '\r', ' ']));
        prop_assert_eq!(callguard::pbx::esl::codec::url_decode(encoded.as_bytes()), value);
    }

    /// Whatever a caller puts into a variable, Asterisk's own argument
    /// splitting reads `SET VARIABLE name value` back as exactly those two
    /// arguments (line ends become spaces: they cannot travel in a line).
    #[test]
    fn agi_commands_parse_back(name in "[A-Za-z_][A-Za-z0-9_]{0,20}", value in any::<String>()) {
        let command = AgiCommand::set_variable(name.clone(), value.clone());
        let line = match command.to_line() {
            Ok(line) => line,
            // Over the command length limit: refused, never cut.
            Err(e) => {
                prop_assert!(e.len > callguard::pbx::agi::codec::MAX_COMMAND_LEN);
                return Ok(());
            }
        };
        prop_assert!(line.ends_with('\n'));
        prop_assert_eq!(line.matches('\n').count(), 1);
        let sent: String = value
            .chars()
            .map(|c| if matches!(c, '\n' | '\r' | '\0') { ' ' } else { c })
            .collect();
        prop_assert_eq!(
            parse_args(line.trim_end_matches('\n')),
            vec!["SET".to_string(), "VARIABLE".into(), name, sent]
        );
        let mut wire = BytesMut::new();
        AgiCodec::new().encode(&command, &mut wire).expect("encodes");
        prop_assert_eq!(&wire[..], line.as_bytes());
    }

    /// The same for ESL: a value with line breaks cannot add a header or a
    /// command to `sendmsg`.
    #[test]
    fn esl_commands_stay_one_block(app in "[a-z_]{1,12}", arg in any::<String>(), uuid in "[0-9a-f-]{36}") {
        let mut wire = BytesMut::new();
        EslCodec::default()
            .encode(
                EslCommand::Execute { app: app.clone(), arg: Some(arg), event_lock: true, event_uuid: uuid },
                &mut wire,
            )
            .expect("encodes");
        let text = String::from_utf8_lossy(&wire);
        prop_assert!(text.ends_with("\n\n"));
        prop_assert_eq!(text.matches("\n\n").count(), 1, "one command: {:?}", text);
        let lines: Vec<&str> = text.trim_end().split('\n').collect();
        prop_assert_eq!(lines.len(), 6, "{:?}", lines);
        prop_assert_eq!(lines[2], format!("execute-app-name: {app}"));
    }
}
