//! The FreeSWITCH simulator against a tiny scripted outbound-ESL server built
//! on callguard's codec: the simulator must produce the captured layout, and
//! the codec must read whatever the simulator sends.

use callguard_sim::freeswitch;

use std::net::SocketAddr;
use std::time::Duration;

use callguard::pbx::esl::codec::{EslCodec, EslCodecError, EslCommand, EslMessage, Event, Headers};
use freeswitch::{BridgeOutcome, HangupAt, Injection, LOOPBACK_EXIT_CAPTURE, SimConfig, SimResult};
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const SET_UUID: &str = "76133a04-bab0-4f14-85a4-8b1be7c60184";
const PLAYBACK_UUID: &str = "30e4326d-7826-462d-a22a-da6bd86bef58";
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// One accepted session, driven step by step by a test.
struct Server {
    framed: Framed<TcpStream, EslCodec>,
    received: Vec<EslMessage>,
    /// Events that arrived while waiting for a reply.
    backlog: Vec<Event>,
}

impl Server {
    async fn accept(listener: &TcpListener, codec: EslCodec) -> Server {
        let (stream, _) = tokio::time::timeout(STEP_TIMEOUT, listener.accept())
            .await
            .expect("the simulator connects")
            .expect("accept");
        Server {
            framed: Framed::new(stream, codec),
            received: Vec::new(),
            backlog: Vec::new(),
        }
    }

    async fn send(&mut self, command: EslCommand) {
        self.framed.send(command).await.expect("write command");
    }

    /// The next message; `None` at EOF.
    async fn next(&mut self) -> Option<Result<EslMessage, EslCodecError>> {
        let message = tokio::time::timeout(STEP_TIMEOUT, self.framed.next())
            .await
            .expect("FreeSWITCH answers in time");
        if let Some(Ok(message)) = &message {
            self.received.push(message.clone());
        }
        message
    }

    async fn expect(&mut self) -> EslMessage {
        self.next()
            .await
            .expect("a message")
            .expect("a valid frame")
    }

    /// The next command reply; events before it (FreeSWITCH may send a
    /// running app's events first) are kept for `until_event`.
    async fn expect_reply(&mut self, text: &str) {
        loop {
            match self.expect().await {
                EslMessage::CommandReply { reply_text, .. } => {
                    assert_eq!(reply_text, text);
                    return;
                }
                EslMessage::Event(event) => self.backlog.push(event),
                other => panic!("expected reply {text:?}, got {other:?}"),
            }
        }
    }

    /// Reads until the event `name` for `application_uuid`, skipping others.
    async fn until_event(&mut self, name: &str, application_uuid: &str) -> Event {
        let wanted =
            |e: &Event| e.name() == Some(name) && e.application_uuid() == Some(application_uuid);
        if let Some(at) = self.backlog.iter().position(wanted) {
            return self.backlog.remove(at);
        }
        loop {
            if let EslMessage::Event(event) = self.expect().await
                && event.name() == Some(name)
                && event.application_uuid() == Some(application_uuid)
            {
                return event;
            }
        }
    }

    /// Reads everything up to EOF.
    async fn drain(&mut self) {
        while let Some(message) = self.next().await {
            message.expect("a valid frame");
        }
    }

    async fn handshake(&mut self) -> Headers {
        self.send(EslCommand::Connect).await;
        let EslMessage::ChannelData(data) = self.expect().await else {
            panic!("the connect reply is CHANNEL_DATA");
        };
        self.send(EslCommand::MyEvents).await;
        self.expect_reply("+OK Events Enabled").await;
        self.send(EslCommand::Linger(5)).await;
        self.expect_reply("+OK will linger 5 seconds").await;
        data
    }

    async fn execute(&mut self, app: &str, arg: &str, event_lock: bool, uuid: &str) {
        self.send(EslCommand::Execute {
            app: app.into(),
            arg: Some(arg.into()),
            event_lock,
            event_uuid: uuid.into(),
        })
        .await;
        self.expect_reply("+OK").await;
    }
}

async fn listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// The server of the `freeswitch-1.10-loopback-exit` capture: set, playback,
/// wait for the playback by Application-UUID, exit.
async fn exit_script(listener: TcpListener) -> Vec<EslMessage> {
    let mut server = Server::accept(&listener, EslCodec::default()).await;
    server.handshake().await;
    server
        .execute("set", "callguard_action=reject", true, SET_UUID)
        .await;
    server
        .execute(
            "playback",
            "tone_stream://%(200,0,800)",
            false,
            PLAYBACK_UUID,
        )
        .await;
    let done = server
        .until_event("CHANNEL_EXECUTE_COMPLETE", PLAYBACK_UUID)
        .await;
    assert_eq!(done.get("Application-Response"), Some("FILE PLAYED"));
    server.send(EslCommand::Exit).await;
    server.expect_reply("+OK bye").await;
    server.drain().await;
    server.received
}

async fn run_exit_script(config: SimConfig) -> (SimResult, Vec<EslMessage>) {
    let (listener, addr) = listener().await;
    tokio::join!(config.run(addr), exit_script(listener))
}

/// Splits a FreeSWITCH byte stream into raw frames (header block + body).
fn raw_frames(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let end = bytes.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
        let head = std::str::from_utf8(&bytes[..end]).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |l| l.parse().unwrap());
        frames.push(&bytes[..end + length]);
        bytes = &bytes[end + length..];
    }
    frames
}

fn header_names(block: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(block);
    let head = text.split("\n\n").next().unwrap_or_default().to_owned();
    head.lines()
        .map(|l| l.split_once(": ").map_or(l, |(n, _)| n).to_owned())
        .collect()
}

/// What a frame is, without the values that differ between sessions.
fn shape(frame: &[u8]) -> (Vec<String>, Option<String>, Option<String>) {
    let mut codec = EslCodec::default();
    let mut buf = bytes::BytesMut::from(frame);
    let message = tokio_util::codec::Decoder::decode(&mut codec, &mut buf)
        .unwrap()
        .unwrap();
    let (name, application) = match &message {
        EslMessage::Event(event) => (
            event.name().map(str::to_owned),
            event.get("Application").map(str::to_owned),
        ),
        _ => (None, None),
    };
    (header_names(frame), name, application)
}

#[tokio::test]
async fn simulator_reproduces_the_loopback_exit_capture() {
    let (sim, received) = run_exit_script(SimConfig::default()).await;
    assert!(sim.error.is_none() && !sim.timed_out, "{sim:?}");
    assert!(sim.connect_received && sim.server_closed);
    let lines: Vec<&str> = sim.commands.iter().map(|c| c.line.as_str()).collect();
    assert_eq!(
        lines,
        ["myevents", "linger 5", "sendmsg", "sendmsg", "exit"]
    );
    assert_eq!(sim.commands[2].header("Event-UUID"), Some(SET_UUID));
    assert_eq!(sim.commands[3].header("execute-app-name"), Some("playback"));
    assert_eq!(sim.variable("callguard_action"), Some("reject"));
    assert_eq!(sim.hangup_cause, None);

    let captured = raw_frames(LOOPBACK_EXIT_CAPTURE);
    let simulated = raw_frames(&sim.sent);
    assert_eq!(simulated.len(), captured.len());
    // With the template's call data the connect reply is the captured one.
    assert_eq!(simulated[0], captured[0]);
    // Replies and the disconnect notice are byte-identical and in the same
    // order; where an app's events fall between replies depends on timing.
    let is_reply = |f: &&&[u8]| f.starts_with(b"Content-Type: ");
    let sim_replies: Vec<&&[u8]> = simulated[1..].iter().filter(is_reply).collect();
    let real_replies: Vec<&&[u8]> = captured[1..].iter().filter(is_reply).collect();
    assert_eq!(sim_replies, real_replies);
    let events = |frames: &[&[u8]]| -> Vec<_> {
        frames
            .iter()
            .filter(|f| f.starts_with(b"Content-Length: "))
            .map(|f| shape(f))
            .collect()
    };
    let sim_events = events(&simulated);
    let real_events = events(&captured);
    assert_eq!(sim_events.len(), real_events.len());
    for (sim_event, real_event) in sim_events.iter().zip(&real_events) {
        assert_eq!(sim_event.0[..2], real_event.0[..2], "outer header order");
        assert_eq!(sim_event.1, real_event.1, "event name");
        assert_eq!(sim_event.2, real_event.2, "application");
    }
    assert_eq!(received.len(), captured.len());
}

/// Events apart from the rest: where events fall between replies depends on
/// timing, their order among themselves does not.
fn by_kind(messages: &[EslMessage]) -> (Vec<&EslMessage>, Vec<&EslMessage>) {
    messages
        .iter()
        .partition(|m| matches!(m, EslMessage::Event(_)))
}

#[tokio::test]
async fn byte_split_and_coalesced_writes_decode_to_the_same_messages() {
    let (_, plain) = run_exit_script(SimConfig::default()).await;
    let split = SimConfig {
        split_bytes: true,
        ..SimConfig::default()
    };
    let (sim, split_messages) = run_exit_script(split).await;
    assert!(sim.error.is_none() && sim.server_closed, "{sim:?}");
    let coalesced = SimConfig {
        coalesce: true,
        ..SimConfig::default()
    };
    let (sim, coalesced_messages) = run_exit_script(coalesced).await;
    assert!(sim.error.is_none() && sim.server_closed, "{sim:?}");
    assert_eq!(by_kind(&split_messages), by_kind(&plain));
    assert_eq!(by_kind(&coalesced_messages), by_kind(&plain));
}

#[tokio::test]
async fn connect_reply_carries_the_configured_call_encoded_like_freeswitch() {
    let (listener, addr) = listener().await;
    let config = SimConfig {
        caller_number: "+49 30 1234".into(),
        caller_name: "Eve & Co: \"50%\" é".into(),
        destination_number: "1000".into(),
        hide_number: true,
        unique_id: "11111111-2222-4333-8444-555555555555".into(),
        variables: vec![
            ("callguard_trunk".into(), "sales".into()),
            ("empty_one".into(), String::new()),
        ],
        ..SimConfig::default()
    };
    let script = async move {
        let mut server = Server::accept(&listener, EslCodec::default()).await;
        let data = server.handshake().await;
        server.send(EslCommand::Exit).await;
        server.drain().await;
        data
    };
    let (sim, data) = tokio::join!(config.run(addr), script);
    assert!(sim.server_closed);
    assert_eq!(data.get("Caller-Caller-ID-Number"), Some("+49 30 1234"));
    assert_eq!(
        data.get("Caller-Caller-ID-Name"),
        Some("Eve & Co: \"50%\" é")
    );
    assert_eq!(data.get("Caller-Destination-Number"), Some("1000"));
    assert_eq!(data.get("Caller-Privacy-Hide-Number"), Some("true"));
    assert_eq!(
        data.get("Unique-ID"),
        Some("11111111-2222-4333-8444-555555555555")
    );
    assert_eq!(data.get("variable_callguard_trunk"), Some("sales"));
    assert_eq!(data.get("variable_empty_one"), Some(""));
    assert_eq!(data.get("Reply-Text"), Some("+OK\n"));
    let wire = String::from_utf8_lossy(&sim.sent);
    assert!(wire.contains("Caller-Caller-ID-Number: %2B49%2030%201234\n"));
    assert!(wire.contains("Caller-Caller-ID-Name: Eve%20%26%20Co%3A%20%2250%25%22%20%C3%A9\n"));
    assert!(wire.contains("variable_empty_one: _undef_\n"));
}

#[tokio::test]
async fn hangup_command_gives_the_captured_hangup_sequence() {
    let (listener, addr) = listener().await;
    let script = async move {
        let mut server = Server::accept(&listener, EslCodec::default()).await;
        server.handshake().await;
        server
            .send(EslCommand::Hangup {
                cause: "USER_BUSY".into(),
            })
            .await;
        server.expect_reply("+OK").await;
        server.drain().await;
        server.received
    };
    let (sim, received) = tokio::join!(SimConfig::default().run(addr), script);
    assert_eq!(sim.hangup_cause.as_deref(), Some("USER_BUSY"));
    assert!(sim.server_closed);
    let tail: Vec<String> = received[4..]
        .iter()
        .map(|m| match m {
            EslMessage::Event(e) => format!(
                "{} {} {}",
                e.name().unwrap_or_default(),
                e.get("Application").unwrap_or_default(),
                e.hangup_cause().unwrap_or_default()
            ),
            EslMessage::Disconnect {
                disposition, body, ..
            } => format!(
                "notice {} {}",
                disposition.as_deref().unwrap_or_default(),
                body.len()
            ),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        tail,
        [
            "CHANNEL_HANGUP  USER_BUSY",
            "CHANNEL_EXECUTE_COMPLETE socket USER_BUSY",
            "CHANNEL_HANGUP_COMPLETE  USER_BUSY",
            "notice linger 0",
            "notice disconnect 67",
        ]
    );
}

#[tokio::test]
async fn hangup_during_playback_ends_the_playback_with_playback_error() {
    let (listener, addr) = listener().await;
    let config = SimConfig {
        hangup_at: Some(HangupAt::DuringExecute {
            app: "playback".into(),
            nth: 1,
            cause: "ORIGINATOR_CANCEL".into(),
        }),
        ..SimConfig::default()
    };
    let script = async move {
        let mut server = Server::accept(&listener, EslCodec::default()).await;
        server.handshake().await;
        server
            .execute("playback", "/sounds/blocked.wav", true, PLAYBACK_UUID)
            .await;
        let done = server
            .until_event("CHANNEL_EXECUTE_COMPLETE", PLAYBACK_UUID)
            .await;
        // A command after the hangup still gets +OK while lingering.
        server
            .send(EslCommand::Hangup {
                cause: "USER_BUSY".into(),
            })
            .await;
        server.drain().await;
        (done, server.received)
    };
    let (sim, (done, received)) = tokio::join!(config.run(addr), script);
    assert_eq!(done.get("Application-Response"), Some("PLAYBACK ERROR"));
    assert_eq!(done.hangup_cause(), Some("ORIGINATOR_CANCEL"));
    assert_eq!(sim.hangup_cause.as_deref(), Some("ORIGINATOR_CANCEL"));
    assert_eq!(
        sim.commands.last().unwrap().header("hangup-cause"),
        Some("USER_BUSY")
    );
    let hangup_at = received
        .iter()
        .position(|m| matches!(m, EslMessage::Event(e) if e.name() == Some("CHANNEL_HANGUP")))
        .expect("CHANNEL_HANGUP");
    let done_at = received
        .iter()
        .position(|m| matches!(m, EslMessage::Event(e) if e.application_uuid() == Some(PLAYBACK_UUID) && e.name() == Some("CHANNEL_EXECUTE_COMPLETE")))
        .unwrap();
    assert!(hangup_at < done_at);
    assert!(
        matches!(received.last(), Some(EslMessage::Disconnect { disposition: Some(d), .. }) if d == "disconnect")
    );
}

#[tokio::test]
async fn unanswered_bridge_sets_the_originate_variables() {
    let (listener, addr) = listener().await;
    let config = SimConfig {
        bridge: BridgeOutcome::Unanswered {
            cause: "NO_ANSWER".into(),
        },
        interleave_foreign_events: true,
        ..SimConfig::default()
    };
    let script = async move {
        let mut server = Server::accept(&listener, EslCodec::default()).await;
        server.handshake().await;
        server
            .execute("bridge", "sofia/gateway/gw/15551234", true, "b-1")
            .await;
        let done = server.until_event("CHANNEL_EXECUTE_COMPLETE", "b-1").await;
        server.send(EslCommand::Exit).await;
        server.drain().await;
        (done, server.received)
    };
    let (sim, (done, received)) = tokio::join!(config.run(addr), script);
    assert!(sim.server_closed);
    assert_eq!(done.get("Application-Response"), Some("NO_ANSWER"));
    assert_eq!(
        done.get("variable_originate_disposition"),
        Some("NO_ANSWER")
    );
    assert_eq!(done.get("variable_DIALSTATUS"), Some("NOANSWER"));
    assert_eq!(
        done.get("variable_originate_failed_cause"),
        Some("NO_ANSWER")
    );
    let foreign_completions = received
        .iter()
        .filter(|m| matches!(m, EslMessage::Event(e) if e.name() == Some("CHANNEL_EXECUTE_COMPLETE") && e.application_uuid() != Some("b-1")))
        .count();
    assert_eq!(foreign_completions, 1);
    assert!(
        received
            .iter()
            .any(|m| matches!(m, EslMessage::Event(e) if e.name() == Some("CHANNEL_PARK")))
    );
}

#[tokio::test]
async fn unknown_content_type_is_skipped_and_oversized_body_is_refused() {
    let (listener, addr) = listener().await;
    let config = SimConfig {
        injections: vec![
            Injection::UnknownContentType,
            Injection::OversizedBody(8192),
        ],
        ..SimConfig::default()
    };
    let script = async move {
        let mut server = Server::accept(&listener, EslCodec::new(65536, 4096)).await;
        server.send(EslCommand::Connect).await;
        server.expect().await;
        server.send(EslCommand::MyEvents).await;
        server.expect_reply("+OK Events Enabled").await;
        let unknown = server.expect().await;
        let oversized = server.next().await;
        (unknown, oversized)
    };
    let (sim, (unknown, oversized)) = tokio::join!(config.run(addr), script);
    assert_eq!(
        unknown,
        EslMessage::Unknown {
            content_type: "text/rude-rejection".into()
        }
    );
    assert!(matches!(
        oversized,
        Some(Err(EslCodecError::BodyTooLarge { limit: 4096, .. }))
    ));
    assert!(sim.server_closed, "{sim:?}");
}

#[tokio::test]
async fn without_a_connect_reply_the_server_waits_and_gives_up() {
    let (listener, addr) = listener().await;
    let config = SimConfig {
        send_connect_reply: false,
        ..SimConfig::default()
    };
    let script = async move {
        let mut server = Server::accept(&listener, EslCodec::default()).await;
        server.send(EslCommand::Connect).await;
        tokio::time::timeout(Duration::from_millis(300), server.framed.next()).await
    };
    let (sim, waited) = tokio::join!(config.run(addr), script);
    assert!(sim.connect_received);
    // The simulator stays silent: the server's own timeout fires.
    assert!(waited.is_err(), "{waited:?}");
    assert!(sim.server_closed);
    assert!(sim.sent.is_empty());
}
