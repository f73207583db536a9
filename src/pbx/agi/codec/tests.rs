//! Codec tests against the real Asterisk 22 captures and the edge cases around them.

use super::*;
use callguard_sim::asterisk::parse::parse_args;

const SESSION: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/transcripts/asterisk-22-pjsip-session.bin"
));
const CANCEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/transcripts/asterisk-22-pjsip-cancel-session.bin"
));
const TRANSCRIPTS: &[&str] = &[
    include_str!("../../../../tests/fixtures/transcripts/asterisk-22-local-hangup-mid-agi.txt"),
    include_str!("../../../../tests/fixtures/transcripts/asterisk-22-local-playback.txt"),
    include_str!("../../../../tests/fixtures/transcripts/asterisk-22-local-unknown-caller.txt"),
    include_str!("../../../../tests/fixtures/transcripts/asterisk-22-pjsip-cancel-mid-agi.txt"),
    include_str!("../../../../tests/fixtures/transcripts/asterisk-22-pjsip-minimal.txt"),
    include_str!("../../../../tests/fixtures/transcripts/asterisk-22-pjsip-sip-call.txt"),
];
const DEAD: &str = "511 Command Not Permitted on a dead channel or intercept routine";

/// Decodes `chunks` fed one after another, then EOF; panics (the test fails) on an error.
fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<AgiFrame> {
    try_decode_chunks(AgiCodec::new(), chunks).expect("decodes")
}

fn try_decode_chunks<'a>(
    mut codec: AgiCodec,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<AgiFrame>, AgiError> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(f) = codec.decode(&mut buf)? {
            frames.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf)? {
        frames.push(f);
    }
    Ok(frames)
}

/// Splits `bytes` into pseudo-random chunk sizes 1..=max (deterministic per seed).
fn random_chunks(bytes: &[u8], seed: u64, max: usize) -> Vec<&[u8]> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = ((state >> 33) as usize % max + 1).min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

fn success(result: i64, data: Option<&str>, endpos: Option<i64>) -> AgiFrame {
    AgiFrame::Reply(Reply::Success {
        result,
        data: data.map(str::to_owned),
        endpos,
    })
}

fn env_of(frames: &[AgiFrame]) -> &AgiEnv {
    match &frames[0] {
        AgiFrame::Env(env) => env,
        other => panic!("first frame is {other:?}"),
    }
}

fn session_frames_after_env() -> Vec<AgiFrame> {
    vec![
        success(1, None, None),
        success(0, None, None),
        success(0, None, Some(2000)),
        success(1, Some("reject"), None),
        AgiFrame::Hangup,
    ]
}

fn cancel_frames_after_env() -> Vec<AgiFrame> {
    vec![
        success(1, None, None),
        success(-1, None, None),
        AgiFrame::Hangup,
        success(1, Some("reject"), None),
        success(1, None, None),
        AgiFrame::Reply(Reply::DeadChannel),
        AgiFrame::Reply(Reply::DeadChannel),
        AgiFrame::Hangup,
    ]
}

#[test]
fn session_capture_decodes() {
    let frames = decode_chunks([SESSION]);
    assert_eq!(frames[1..], session_frames_after_env());
    let env = env_of(&frames);
    assert_eq!(env.pairs().len(), 22);
    assert_eq!(env.pairs()[0], ("agi_network", "yes"));
    assert_eq!(env.get("agi_accountcode"), Some(""));
    assert_eq!(env.get("agi_threadid"), Some("139791817029312"));
    assert_eq!(env.uniqueid(), Some("1795432537.14"));
    assert_eq!(env.callerid(), Some("+15551234567"));
    assert_eq!(env.calleridname(), Some("SIP Caller"));
    assert_eq!(env.dnid(), Some("+18005550100"));
    assert_eq!(env.extension(), Some("+18005550100"));
    assert!(!env.presentation_restricted());
    assert_eq!(env.query_param("trunk"), Some("main"));
    assert_eq!(
        env.request(),
        Some("agi://127.0.0.1:4573/callfilter?trunk=main")
    );
    assert!(env.args().is_empty());
}

#[test]
fn cancel_capture_decodes() {
    let frames = decode_chunks([CANCEL]);
    assert_eq!(frames[1..], cancel_frames_after_env());
    assert_eq!(env_of(&frames).query_param("mode"), Some("hangup"));
}

#[test]
fn captures_decode_the_same_whatever_the_reads() {
    for capture in [SESSION, CANCEL] {
        let whole = decode_chunks([capture]);
        let bytewise = decode_chunks(capture.chunks(1));
        assert_eq!(bytewise, whole);
        for seed in 0..50 {
            let chunks = random_chunks(capture, seed, 40);
            assert_eq!(decode_chunks(chunks), whole, "seed {seed}");
        }
    }
}

#[test]
fn every_reply_shape() {
    let input = [
        "agi_network: yes\n\n",
        "200 result=1\n",
        "200 result=-1 (hangup)\n",
        "200 result=0 (timeout)\n",
        "200 result=1 (reject)\n",
        "200 result=49 (dtmf) endpos=8640\n",
        "200 result=-1 endpos=0\n",
        "100 result=0 Trying...\n",
        "510 Invalid or unknown command\n",
        "511 Command Not Permitted on a dead channel\n",
        DEAD,
        "\n",
        "520 Invalid command syntax.  Proper usage not available.\n",
        "520-Invalid command syntax.  Proper usage follows:\n",
        " Usage: SET VARIABLE <variablename> <value>\n",
        "HANGUP\n",
        "520 End of proper usage.\n",
        "200 result=0\r\n",
    ]
    .concat();
    let frames = decode_chunks([input.as_bytes()]);
    let expected = vec![
        success(1, None, None),
        success(-1, Some("hangup"), None),
        success(0, Some("timeout"), None),
        success(1, Some("reject"), None),
        success(49, Some("dtmf"), Some(8640)),
        success(-1, None, Some(0)),
        AgiFrame::Reply(Reply::Trying),
        AgiFrame::Reply(Reply::InvalidCommand),
        AgiFrame::Reply(Reply::DeadChannel),
        AgiFrame::Reply(Reply::DeadChannel),
        AgiFrame::Reply(Reply::Usage(
            "Invalid command syntax.  Proper usage not available.".into(),
        )),
        // A `HANGUP` line inside a 520 block is usage text, not a notice.
        AgiFrame::Reply(Reply::Usage(
            "Invalid command syntax.  Proper usage follows:\n Usage: SET VARIABLE <variablename> <value>\nHANGUP\nEnd of proper usage."
                .into(),
        )),
        success(0, None, None),
    ];
    assert_eq!(frames[1..], expected);
}

#[test]
fn hangup_before_the_reply_and_glued_to_it() {
    let mut codec = AgiCodec::new();
    let mut buf = BytesMut::from("agi_callerid: 100\n\n");
    assert!(matches!(codec.decode(&mut buf), Ok(Some(AgiFrame::Env(_)))));

    // Arrives alone, before the reply to a command already sent.
    buf.extend_from_slice(b"HANGUP\n");
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(AgiFrame::Hangup));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);

    // Glued to the next reply in one read.
    buf.extend_from_slice(format!("HANGUP\n{DEAD}\n").as_bytes());
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(AgiFrame::Hangup));
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(AgiFrame::Reply(Reply::DeadChannel))
    );
    assert!(buf.is_empty());
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
}

#[test]
fn environment_line_variants() {
    let input = "agi_accountcode: \nagi_empty:\nagi_request: agi://h/s?a=b: c\r\nagi_arg_2: b\nagi_arg_1: a,b\n\n";
    let frames = decode_chunks([input.as_bytes()]);
    let env = env_of(&frames);
    assert_eq!(env.get("agi_accountcode"), Some(""));
    assert_eq!(env.get("agi_empty"), Some(""));
    assert_eq!(env.get("agi_request"), Some("agi://h/s?a=b: c"));
    assert_eq!(env.args(), ["a,b", "b"]);
}

#[test]
fn eof_handling() {
    // Nothing at all: the end of the stream, not an error.
    assert_eq!(decode_chunks([]), vec![]);
    // Cut environment, with and without a partial line.
    for cut in ["agi_network: yes\n", "agi_network: yes\nagi_ch", "agi_net"] {
        let err = try_decode_chunks(AgiCodec::new(), [cut.as_bytes()]).unwrap_err();
        assert!(
            matches!(err, AgiError::Truncated("the environment")),
            "{cut:?}: {err}"
        );
    }
    // Half a reply line.
    let err = try_decode_chunks(AgiCodec::new(), [b"a: b\n\n200 res".as_slice()]).unwrap_err();
    assert!(matches!(err, AgiError::Truncated("a reply line")), "{err}");
    // An unfinished 520 block.
    let err = try_decode_chunks(AgiCodec::new(), [b"a: b\n\n520-x\ny\n".as_slice()]).unwrap_err();
    assert!(matches!(err, AgiError::Truncated(_)), "{err}");
}

#[test]
fn over_long_lines_are_refused_before_the_newline() {
    let mut codec = AgiCodec::with_limits(16, 4);
    let mut buf = BytesMut::from(&b"agi_x: 0123456789"[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(AgiError::LineTooLong { limit: 16, .. })
    ));

    // Exactly at the limit is fine; one more byte is not.
    let ok = try_decode_chunks(
        AgiCodec::with_limits(16, 4),
        [b"agi_x: 012345678\n\n".as_slice()],
    );
    assert!(ok.is_ok(), "{ok:?}");
    let err = try_decode_chunks(
        AgiCodec::with_limits(16, 4),
        [b"agi_x: 0123456789\n\n".as_slice()],
    );
    assert!(matches!(err, Err(AgiError::LineTooLong { .. })));

    // Default limit: 8 KiB of value without a newline, fed in small reads.
    let big = vec![b'a'; DEFAULT_MAX_LINE + 1];
    let err = try_decode_chunks(AgiCodec::new(), big.chunks(1000)).unwrap_err();
    assert!(matches!(
        err,
        AgiError::LineTooLong {
            limit: DEFAULT_MAX_LINE,
            ..
        }
    ));

    // Also after the environment.
    let reply = [b"a: b\n\n".as_slice(), &[b'2'; 40], b"\n"].concat();
    let err = try_decode_chunks(AgiCodec::with_limits(16, 4), [reply.as_slice()]).unwrap_err();
    assert!(matches!(err, AgiError::LineTooLong { .. }));
}

#[test]
fn too_many_environment_lines() {
    let lines: String = (0..DEFAULT_MAX_ENV_LINES)
        .map(|i| format!("agi_arg_{i}: x\n"))
        .collect();
    let ok = try_decode_chunks(AgiCodec::new(), [lines.as_bytes(), b"\n"]);
    assert!(ok.is_ok());
    let over = format!("{lines}agi_one_more: x\n\n");
    let err = try_decode_chunks(AgiCodec::new(), [over.as_bytes()]).unwrap_err();
    assert!(matches!(err, AgiError::TooManyEnvLines { limit: 256 }));
    let err = try_decode_chunks(
        AgiCodec::with_limits(100, 2),
        [b"a: 1\nb: 2\nc: 3\n\n".as_slice()],
    );
    assert!(matches!(err, Err(AgiError::TooManyEnvLines { limit: 2 })));
}

#[test]
fn garbage_is_an_error_naming_the_line() {
    let cases: [&[u8]; 6] = [
        b"\xff\xfe\x00garbage\n",
        b"no colon here\n\n",
        b": empty name\n\n",
        b"a: b\n\n\xc3\x28\n",
        b"a: b\n\nEHLO mail.example.com\n",
        b"a: b\n\n200 result=1 (unclosed\n",
    ];
    for case in cases {
        let err = try_decode_chunks(AgiCodec::new(), [case]).unwrap_err();
        assert!(
            matches!(
                err,
                AgiError::NotUtf8 { .. } | AgiError::BadEnvLine { .. } | AgiError::BadReply { .. }
            ),
            "{case:?}: {err}"
        );
    }
    let long_garbage = format!("a: b\n\n{}\n", "x".repeat(500));
    let err = try_decode_chunks(AgiCodec::new(), [long_garbage.as_bytes()]).unwrap_err();
    let AgiError::BadReply { line } = err else {
        panic!("{err}")
    };
    assert!(
        line.starts_with("xxx") && line.chars().count() <= 81,
        "{line}"
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 7u64;
    for round in 0..300 {
        let mut bytes = Vec::new();
        // Half the rounds start with a valid environment so the reply parser gets fuzzed too.
        if round % 2 == 0 {
            bytes.extend_from_slice(b"agi_network: yes\n\n");
        }
        for _ in 0..200 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = (state >> 56) as u8;
            // Bias towards the bytes the grammar cares about.
            bytes.push(match b % 8 {
                0 => b'\n',
                1 => b' ',
                2 => b'(',
                3 => b')',
                _ => b,
            });
        }
        let mut codec = AgiCodec::with_limits(64, 8);
        let mut buf = BytesMut::new();
        for chunk in random_chunks(&bytes, round, 17) {
            buf.extend_from_slice(chunk);
            let mut errored = false;
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        errored = true;
                        break;
                    }
                }
            }
            if errored {
                break;
            }
            assert!(buf.len() <= 64, "buffer grew past the line limit");
        }
    }
}

/// Unescapes a transcript line: `\n`, `\r`, `\t`, `\\`, `\"`, `\'`, `\0`, `\xNN`.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut tmp = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).expect("hex escape"));
            }
            Some(other) => out.push(other as u8),
            None => panic!("dangling backslash in {s:?}"),
        }
    }
    out
}

/// Rebuilds each `> ` line of every transcript from a typed command and compares the bytes.
#[test]
fn encoder_reproduces_every_transcript_command() {
    let mut checked = 0;
    for transcript in TRANSCRIPTS {
        for wire in transcript.lines().filter_map(|l| l.strip_prefix("> ")) {
            let wire = String::from_utf8(unescape(wire)).unwrap();
            let argv = parse_args(wire.trim_end_matches('\n'));
            let words: Vec<&str> = argv.iter().map(String::as_str).collect();
            let cmd = match words.as_slice() {
                ["SET", "VARIABLE", name, value] => AgiCommand::set_variable(*name, *value),
                ["GET", "VARIABLE", name] => AgiCommand::get_variable(*name),
                ["EXEC", app, data] => AgiCommand::exec(*app, *data),
                ["STREAM", "FILE", file, digits] => AgiCommand::stream_file(*file, *digits),
                ["WAIT", "FOR", "DIGIT", ms] => AgiCommand::WaitForDigit {
                    timeout_ms: ms.parse().unwrap(),
                },
                other => panic!("unexpected command {other:?}"),
            };
            let mut dst = BytesMut::new();
            AgiCodec::new().encode(&cmd, &mut dst).unwrap();
            assert_eq!(dst, wire.as_bytes(), "{cmd:?}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} commands found");
}

#[test]
fn encoder_refuses_over_long_commands() {
    let mut dst = BytesMut::new();
    let cmd = AgiCommand::set_variable("V", "x".repeat(MAX_COMMAND_LEN));
    let err = AgiCodec::new().encode(cmd, &mut dst).unwrap_err();
    assert!(matches!(err, AgiError::CommandTooLong(_)));
    assert!(dst.is_empty(), "nothing half-written");
}

#[test]
fn injected_caller_name_is_one_line_and_one_argument() {
    let mut dst = BytesMut::new();
    let name = "x\"\nEXEC Dial evil";
    AgiCodec::new()
        .encode(AgiCommand::set_variable("CALLGUARD_NAME", name), &mut dst)
        .unwrap();
    assert_eq!(dst.iter().filter(|&&b| b == b'\n').count(), 1);
    let line = std::str::from_utf8(&dst).unwrap().trim_end_matches('\n');
    assert_eq!(
        parse_args(line),
        ["SET", "VARIABLE", "CALLGUARD_NAME", "x\" EXEC Dial evil"]
    );
}
