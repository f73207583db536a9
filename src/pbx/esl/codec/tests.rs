//! Codec tests against the real FreeSWITCH 1.10 captures and the edge cases around them.

use super::*;

const CAPTURES: [(&str, &[u8], usize); 5] = [
    (
        "loopback-exit",
        include_bytes!("../../../../callguard-sim/captures/freeswitch-1.10-loopback-exit.bin"),
        12,
    ),
    (
        "loopback-busy",
        include_bytes!("../../../../tests/fixtures/transcripts/freeswitch-1.10-loopback-busy.bin"),
        19,
    ),
    (
        "loopback-hangup-mid-playback",
        include_bytes!(
            "../../../../tests/fixtures/transcripts/freeswitch-1.10-loopback-hangup-mid-playback.bin"
        ),
        19,
    ),
    (
        "sip-busy",
        include_bytes!("../../../../tests/fixtures/transcripts/freeswitch-1.10-sip-busy.bin"),
        24,
    ),
    (
        "sip-cancel-mid-playback",
        include_bytes!(
            "../../../../tests/fixtures/transcripts/freeswitch-1.10-sip-cancel-mid-playback.bin"
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
    let truncated = decode_chunked(&mut EslCodec::default(), b"Content-Length: 10\n\nabc", || 1);
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
