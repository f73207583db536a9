//! The Asterisk simulator against a tiny scripted FastAGI server built on callguard's codec:
//! the simulator must reproduce the real captures byte for byte, and the codec must read them.

use callguard_sim::asterisk;

use std::net::SocketAddr;
use std::time::Duration;

use asterisk::{AsteriskSim, EnvDelivery, Fault, HangupStyle, starts_with, transcript_lines};
use callguard::pbx::agi::codec::{AgiCodec, AgiCommand, AgiEnv, AgiFrame, Reply};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

const SIP_CALL: &str = include_str!("fixtures/transcripts/asterisk-22-pjsip-sip-call.txt");
const CANCEL: &str = include_str!("fixtures/transcripts/asterisk-22-pjsip-cancel-mid-agi.txt");
const CANCEL_BIN: &[u8] =
    include_bytes!("fixtures/transcripts/asterisk-22-pjsip-cancel-session.bin");
const DEAD: &str = "511 Command Not Permitted on a dead channel or intercept routine";

/// What the scripted server saw.
#[derive(Debug, Default)]
struct ServerLog {
    env: Option<AgiEnv>,
    frames: Vec<AgiFrame>,
    error: Option<String>,
}

/// A FastAGI server that reads the environment, sends each line and waits for its reply
/// (collecting any HANGUP notices on the way), then half-closes and reads to EOF, so the
/// closing HANGUP is seen too. A reply that takes over 2 s counts as a stall.
async fn scripted_server(lines: Vec<String>) -> (SocketAddr, JoinHandle<ServerLog>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = tokio::spawn(async move {
        let mut log = ServerLog::default();
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut frames = FramedRead::new(read, AgiCodec::new());
        let wait = Duration::from_secs(2);
        match frames.next().await {
            Some(Ok(AgiFrame::Env(env))) => log.env = Some(env),
            Some(Err(e)) => {
                log.error = Some(e.to_string());
                return log;
            }
            other => {
                log.error = Some(format!("{other:?}"));
                return log;
            }
        }
        for line in lines {
            write.write_all(line.as_bytes()).await.unwrap();
            loop {
                match tokio::time::timeout(wait, frames.next()).await {
                    Ok(Some(Ok(frame))) => {
                        let is_reply = matches!(frame, AgiFrame::Reply(_));
                        log.frames.push(frame);
                        if is_reply {
                            break;
                        }
                    }
                    Ok(Some(Err(e))) => {
                        log.error = Some(e.to_string());
                        return log;
                    }
                    Ok(None) => {
                        log.error = Some("eof".into());
                        return log;
                    }
                    Err(_) => {
                        log.error = Some("no reply".into());
                        return log;
                    }
                }
            }
        }
        drop(write);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(wait, frames.next()).await {
            log.frames.push(frame);
        }
        log
    });
    (addr, handle)
}

fn line(cmd: AgiCommand) -> String {
    cmd.to_line().unwrap()
}

fn text_lines(transcript: &str, marker: &str) -> Vec<String> {
    transcript_lines(transcript, marker)
        .into_iter()
        .map(|l| String::from_utf8(l).unwrap())
        .collect()
}

fn ok(result: i64, data: Option<&str>, endpos: Option<i64>) -> AgiFrame {
    AgiFrame::Reply(Reply::Success {
        result,
        data: data.map(str::to_owned),
        endpos,
    })
}

#[tokio::test]
async fn reproduces_the_sip_call_capture() {
    let script = vec![
        line(AgiCommand::set_variable("FILTER_ACTION", "reject")),
        line(AgiCommand::exec("Playback", "beep")),
        line(AgiCommand::stream_file("beep", "")),
        line(AgiCommand::get_variable("FILTER_ACTION")),
    ];
    assert_eq!(
        script,
        text_lines(SIP_CALL, "> "),
        "the script is the capture's"
    );
    let (addr, server) = scripted_server(script).await;
    let sim = AsteriskSim::new().run(addr).await;
    let log = server.await.unwrap();

    assert_eq!(sim.error, None);
    assert!(sim.saw_eof && !sim.timed_out && !sim.hung_up);
    assert_eq!(sim.sent, transcript_lines(SIP_CALL, "< ").concat());
    let expected_commands: Vec<String> = text_lines(SIP_CALL, "> ")
        .iter()
        .map(|l| l.trim_end_matches('\n').to_owned())
        .collect();
    assert_eq!(sim.commands, expected_commands);
    assert_eq!(sim.command_times.len(), 4);

    assert_eq!(log.error, None);
    let env = log.env.unwrap();
    assert_eq!(env.pairs().len(), 22);
    assert_eq!(env.calleridname(), Some("SIP Caller"));
    assert_eq!(
        log.frames,
        [
            ok(1, None, None),
            ok(0, None, None),
            ok(0, None, Some(2000)),
            ok(1, Some("reject"), None),
            AgiFrame::Hangup,
        ]
    );
}

#[tokio::test]
async fn reproduces_the_cancel_capture() {
    let sim = AsteriskSim::new()
        .script("callfilter?trunk=main&mode=hangup")
        .set_env("agi_channel", "PJSIP/trunk-00000003")
        .uniqueid("1795432624.17")
        .set_env("agi_context", "incoming-hanguptest")
        .hangup_on(starts_with("WAIT FOR DIGIT"), HangupStyle::AfterReply);
    let (addr, server) = scripted_server(text_lines(CANCEL, "> ")).await;
    let result = sim.run(addr).await;
    let log = server.await.unwrap();

    assert_eq!(result.error, None);
    assert!(result.hung_up && result.saw_eof);
    assert_eq!(result.sent, transcript_lines(CANCEL, "< ").concat());
    assert_eq!(result.sent, CANCEL_BIN);
    assert_eq!(log.error, None);
    assert_eq!(
        log.frames,
        [
            ok(1, None, None),
            ok(-1, None, None),
            AgiFrame::Hangup,
            ok(1, Some("reject"), None),
            ok(1, None, None),
            AgiFrame::Reply(Reply::DeadChannel),
            AgiFrame::Reply(Reply::DeadChannel),
            AgiFrame::Hangup,
        ]
    );
}

#[tokio::test]
async fn hangup_before_the_reply() {
    let script = vec![
        line(AgiCommand::set_variable("A", "1")),
        line(AgiCommand::exec("Playback", "beep")),
    ];
    let (addr, server) = scripted_server(script).await;
    let sim = AsteriskSim::new()
        .hangup_on(starts_with("EXEC"), HangupStyle::BeforeReply)
        .run(addr)
        .await;
    let log = server.await.unwrap();
    assert!(sim.hung_up);
    assert_eq!(log.error, None);
    // EXEC still runs on a dead channel.
    assert_eq!(
        log.frames,
        [
            ok(1, None, None),
            AgiFrame::Hangup,
            ok(0, None, None),
            AgiFrame::Hangup
        ]
    );
}

#[tokio::test]
async fn hangup_glued_to_the_reply() {
    let script = vec![
        line(AgiCommand::set_variable("A", "1")),
        line(AgiCommand::stream_file("beep", "")),
        line(AgiCommand::get_variable("A")),
    ];
    let (addr, server) = scripted_server(script).await;
    let sim = AsteriskSim::new()
        .hangup_on(starts_with("STREAM FILE"), HangupStyle::Glued)
        .run(addr)
        .await;
    let log = server.await.unwrap();
    let sent = String::from_utf8(sim.sent).unwrap();
    assert!(sent.contains(&format!(
        "\n\n200 result=1\nHANGUP\n{DEAD}\n200 result=1 (1)\nHANGUP\n"
    )));
    assert_eq!(log.error, None);
    assert_eq!(
        log.frames,
        [
            ok(1, None, None),
            AgiFrame::Hangup,
            AgiFrame::Reply(Reply::DeadChannel),
            ok(1, Some("1"), None),
            AgiFrame::Hangup,
        ]
    );
}

#[tokio::test]
async fn answers_like_asterisk() {
    let script = vec![
        line(AgiCommand::get_variable("DIALSTATUS")),
        line(AgiCommand::get_variable("UNSET")),
        line(AgiCommand::exec("Busy", "5")),
        line(AgiCommand::exec("Hangup", "USER_BUSY")),
        "FOO BAR\n".to_owned(),
        "SET VARIABLE ONLY_NAME\n".to_owned(),
        line(AgiCommand::Noop),
        "ANSWER\n".to_owned(),
    ];
    let (addr, server) = scripted_server(script).await;
    let sim = AsteriskSim::new()
        .variable("DIALSTATUS", "NOANSWER")
        .exec_reply("Busy", "200 result=-1")
        .run(addr)
        .await;
    let log = server.await.unwrap();
    assert_eq!(sim.commands.len(), 8);
    assert_eq!(log.error, None);
    let Some(AgiFrame::Reply(Reply::Usage(usage))) = log.frames.get(5) else {
        panic!("{:?}", log.frames);
    };
    assert!(usage.contains("SET VARIABLE"), "{usage}");
    assert_eq!(
        log.frames[..5],
        [
            ok(1, Some("NOANSWER"), None),
            ok(0, None, None),
            ok(-1, None, None),
            ok(0, None, None),
            AgiFrame::Reply(Reply::InvalidCommand),
        ]
    );
    assert_eq!(
        log.frames[6..],
        [ok(0, None, None), ok(0, None, None), AgiFrame::Hangup]
    );
}

#[tokio::test]
async fn injected_caller_name_stays_one_variable() {
    let evil = "x\"\nEXEC Dial evil";
    let script = vec![
        line(AgiCommand::set_variable("CALLGUARD_NAME", evil)),
        line(AgiCommand::get_variable("CALLGUARD_NAME")),
    ];
    let (addr, server) = scripted_server(script).await;
    let sim = AsteriskSim::new()
        .calleridname(evil.replace('\n', " ").as_str())
        .run(addr)
        .await;
    let log = server.await.unwrap();
    assert_eq!(sim.commands.len(), 2, "{:?}", sim.commands);
    let stored = "x\" EXEC Dial evil";
    assert_eq!(
        sim.variables.get("CALLGUARD_NAME").map(String::as_str),
        Some(stored)
    );
    assert_eq!(log.frames[1], ok(1, Some(stored), None));
    assert_eq!(log.env.unwrap().calleridname(), Some("x\" EXEC Dial evil"));
}

#[tokio::test]
async fn environment_in_small_writes_reads_the_same() {
    for delivery in [
        EnvDelivery::ByteByByte,
        EnvDelivery::Chunks(7),
        EnvDelivery::Trickle(Duration::from_micros(50)),
    ] {
        let sim = AsteriskSim::new()
            .script("callfilter?trunk=sales")
            .arg("a,b")
            .arg("c");
        let expected = sim.env_bytes();
        let (addr, server) = scripted_server(vec![line(AgiCommand::Noop)]).await;
        let result = sim.delivery(delivery).run(addr).await;
        let log = server.await.unwrap();
        assert_eq!(result.sent[..expected.len()], expected[..]);
        let env = log.env.expect("environment read");
        assert_eq!(env.query_param("trunk"), Some("sales"));
        assert_eq!(env.args(), ["a,b", "c"]);
        assert_eq!(env.pairs().last().unwrap().0, "agi_arg_2");
    }
}

#[tokio::test]
async fn broken_peers_are_errors_for_the_server() {
    let cases = [
        (Fault::EofMidEnvironment, "environment"),
        (
            Fault::Garbage(b"\xff\xfe\x00\x01 binary\n\n".to_vec()),
            "UTF-8",
        ),
        (
            Fault::Garbage(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            "malformed",
        ),
        (Fault::OverlongLine(9000), "longer than 8192"),
    ];
    for (fault, message) in cases {
        let (addr, server) = scripted_server(vec![line(AgiCommand::Noop)]).await;
        let sim = AsteriskSim::new().fault(fault.clone()).run(addr).await;
        let log = server.await.unwrap();
        let error = log.error.unwrap_or_default();
        assert!(error.contains(message), "{fault:?}: {error}");
        assert!(sim.commands.is_empty(), "{fault:?}");
        assert!(!sim.timed_out);
    }
}

#[tokio::test]
async fn a_stalled_command_gets_no_reply() {
    let script = vec![
        line(AgiCommand::set_variable("A", "1")),
        line(AgiCommand::exec("Dial", "PJSIP/vip,30")),
    ];
    let (addr, server) = scripted_server(script).await;
    let sim = AsteriskSim::new()
        .stall_on(starts_with("EXEC Dial"))
        .run(addr)
        .await;
    let log = server.await.unwrap();
    assert_eq!(log.error.as_deref(), Some("no reply"));
    assert_eq!(log.frames, [ok(1, None, None)]);
    assert_eq!(sim.commands.len(), 2);
    assert!(sim.saw_eof);
    assert!(sim.sent.ends_with(b"200 result=1\nHANGUP\n"));
}

#[tokio::test]
async fn a_server_that_never_closes_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut frames = FramedRead::new(stream, AgiCodec::new());
        // Read and never answer nor close, until the simulator gives up.
        while let Some(Ok(_)) = frames.next().await {}
    });
    let sim = AsteriskSim::new()
        .timeout(Duration::from_millis(300))
        .run(addr)
        .await;
    assert!(sim.timed_out);
    assert!(!sim.saw_eof);
    server.await.unwrap();
}
