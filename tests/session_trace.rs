//! Issue 19 (survival), items 1 and 5, over real loopback sockets:
//! - a FastAGI or ESL peer that vanishes mid-call (a reset after the
//!   environment / after the first command) is that connection's error,
//!   counted as `callguard_protocol_errors_total{kind="io"}` on the real
//!   `/metrics`, and the next call is screened as usual;
//! - every session leaves a trace: a call whose session never started (no
//!   connect reply, half an environment) or whose connection was refused gets
//!   a decision-log row (verdict `unscreened`, end `not_screened`, the reason,
//!   the peer, the unique id when it was read) and
//!   `callguard_unscreened_total{pbx, reason}`.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use asterisk::AsteriskSim;
use callguard::calllog::{LogQuery, LogReader, LoggedCall};
use freeswitch::SimConfig;
use server::{SCREEN_YAML, TestServer, scrape_sum};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// Every row of the service's decision log, newest first, once what was
/// queued has been written.
async fn rows(srv: &TestServer) -> Vec<LoggedCall> {
    let state = srv.running().state.clone();
    state.log.as_ref().unwrap().flush().await.unwrap();
    let path = state.extras.log_path.clone().unwrap();
    LogReader::open(&path)
        .unwrap()
        .query(&LogQuery::default())
        .unwrap()
}

/// Waits (bounded) until the scraped sum of `family` with `labels` is `want`.
async fn wait_metric(http: SocketAddr, family: &str, labels: &[&str], want: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = scrape_sum(http, family, labels).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{family}{labels:?} is {got}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until the log has a row `pick` finds.
async fn wait_row(srv: &TestServer, pick: impl Fn(&LoggedCall) -> bool) -> LoggedCall {
    let deadline = Instant::now() + WAIT;
    loop {
        let all = rows(srv).await;
        if let Some(r) = all.iter().find(|r| pick(r)) {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no such row in {all:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Closes with a reset (SO_LINGER 0): the peer is gone, as when a PBX host
/// crashes; the server's next read or write fails (ECONNRESET / EPIPE).
fn vanish(stream: TcpStream) {
    #[allow(deprecated)]
    stream.set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// One line (FastAGI command), without the `\n`.
async fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = Vec::new();
    loop {
        let b = tokio::time::timeout(WAIT, r.read_u8())
            .await
            .unwrap()
            .unwrap();
        if b == b'\n' {
            return String::from_utf8_lossy(&line).into_owned();
        }
        line.push(b);
    }
}

/// One ESL command: the bytes up to the blank line.
async fn read_block(r: &mut BufReader<TcpStream>) -> String {
    let mut block = Vec::new();
    while !block.ends_with(b"\n\n") {
        let b = tokio::time::timeout(WAIT, r.read_u8())
            .await
            .unwrap()
            .unwrap();
        block.push(b);
    }
    String::from_utf8_lossy(&block).into_owned()
}

fn ok(text: &str) -> Vec<u8> {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n").into_bytes()
}

/// An ESL peer that answers `connect` (as call `uid`) and then the commands
/// in `answers`, one each, and vanishes after reading the next command.
async fn esl_peer_vanishing(addr: SocketAddr, uid: &str, answers: &[&str]) -> Vec<String> {
    let config = SimConfig {
        unique_id: uid.into(),
        caller_number: "+15550000001".into(),
        ..SimConfig::default()
    };
    let mut r = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut seen = vec![read_block(&mut r).await];
    r.get_mut()
        .write_all(&freeswitch::encode_block(
            &freeswitch::connect_reply_headers(&config),
        ))
        .await
        .unwrap();
    for answer in answers {
        seen.push(read_block(&mut r).await);
        r.get_mut().write_all(&ok(answer)).await.unwrap();
    }
    seen.push(read_block(&mut r).await);
    vanish(r.into_inner());
    seen
}

#[tokio::test]
async fn agi_peer_vanishing_after_the_environment_is_an_io_error_and_the_next_call_is_screened() {
    let mut srv = server::start(SCREEN_YAML).await;
    let http = srv.http();
    let env = AsteriskSim::new()
        .callerid("+15550000001")
        .uniqueid("1700000000.1")
        .env_bytes();
    let mut r = BufReader::new(TcpStream::connect(srv.agi()).await.unwrap());
    r.get_mut().write_all(&env).await.unwrap();
    // The first command (the variables) is on its way: then the peer is gone.
    let first = read_line(&mut r).await;
    assert!(first.starts_with("EXEC MSet "), "{first}");
    vanish(r.into_inner());
    wait_metric(
        http,
        "callguard_protocol_errors_total",
        &["pbx=\"asterisk\"", "kind=\"io\""],
        1.0,
    )
    .await;
    let row = wait_row(&srv, |r| {
        r.unique_id == "1700000000.1" && r.end_state.is_some()
    })
    .await;
    assert_eq!(row.verdict, "block");
    assert_eq!(row.end_state.as_deref(), Some("io_error"), "{row:#?}");
    assert_eq!(
        scrape_sum(
            http,
            "callguard_protocol_errors_total",
            &["pbx=\"asterisk\"", "kind=\"protocol\""]
        )
        .await,
        0.0,
        "a vanished peer is not a protocol error"
    );

    // The service goes on screening.
    let next = AsteriskSim::new()
        .callerid("+15550000001")
        .run(srv.agi())
        .await;
    assert!(next.error.is_none() && !next.timed_out, "{next:?}");
    assert_eq!(
        next.variables.get("CALLGUARD_VERDICT").map(String::as_str),
        Some("block")
    );
    assert!(next.commands.iter().any(|c| c == "EXEC Busy 5"), "{next:?}");
    srv.stop().await;
}

#[tokio::test]
async fn esl_peer_vanishing_after_the_first_command_is_an_io_error_and_the_next_call_is_screened() {
    let mut srv = server::start(SCREEN_YAML).await;
    let http = srv.http();
    // connect, myevents, linger answered; the first command of the call
    // (setting the variables) read, then the peer is gone.
    let seen = esl_peer_vanishing(
        srv.esl(),
        "mid-call-1",
        &["+OK Events Enabled", "+OK will linger"],
    )
    .await;
    assert!(seen[3].contains("execute"), "{seen:?}");
    wait_metric(
        http,
        "callguard_protocol_errors_total",
        &["pbx=\"freeswitch\"", "kind=\"io\""],
        1.0,
    )
    .await;
    let row = wait_row(&srv, |r| {
        r.unique_id == "mid-call-1" && r.end_state.is_some()
    })
    .await;
    assert_eq!(row.verdict, "block");
    assert_eq!(row.end_state.as_deref(), Some("io_error"), "{row:#?}");

    let next = SimConfig {
        caller_number: "+15550000001".into(),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(
        next.variable("callguard_verdict"),
        Some("block"),
        "{next:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn esl_peer_that_never_answers_connect_leaves_a_row_and_is_counted() {
    let yaml = format!("{SCREEN_YAML}\nesl: {{ connect_timeout: 200ms }}\n");
    let mut srv = server::start(&yaml).await;
    let http = srv.http();
    let r = SimConfig {
        send_connect_reply: false,
        overall_timeout: Duration::from_secs(5),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert!(r.connect_received && r.server_closed, "{r:?}");
    wait_metric(
        http,
        "callguard_unscreened_total",
        &["pbx=\"freeswitch\"", "reason=\"no_connect_reply\""],
        1.0,
    )
    .await;
    let row = wait_row(&srv, |r| r.verdict == "unscreened").await;
    assert_eq!(row.pbx, "freeswitch");
    assert_eq!(row.unique_id, "", "no connect reply, so no unique id");
    assert_eq!(row.end_state.as_deref(), Some("not_screened"));
    assert!(row.fail_open, "the call went on without a decision");
    assert!(
        row.reason.starts_with(
            "not screened: no connect reply (timed out waiting for the connect reply); peer 127.0.0.1:"
        ),
        "{row:#?}"
    );
    // Exactly one row: the call, not one per failure path.
    assert_eq!(rows(&srv).await.len(), 1);
    srv.stop().await;
}

#[tokio::test]
async fn esl_setup_failing_after_the_connect_reply_keeps_its_unique_id() {
    let mut srv = server::start(SCREEN_YAML).await;
    let http = srv.http();
    // The connect reply came (it names the call), then the peer vanished
    // after reading `myevents`: a vanished peer, io, before any decision.
    esl_peer_vanishing(srv.esl(), "setup-1", &[]).await;
    wait_metric(
        http,
        "callguard_unscreened_total",
        &["pbx=\"freeswitch\"", "reason=\"setup_failed\""],
        1.0,
    )
    .await;
    let row = wait_row(&srv, |r| r.unique_id == "setup-1").await;
    assert_eq!(row.verdict, "unscreened");
    assert_eq!(row.caller_raw, "+15550000001");
    assert!(
        row.reason.starts_with("not screened: session setup failed"),
        "{row:#?}"
    );
    assert_eq!(
        scrape_sum(
            http,
            "callguard_protocol_errors_total",
            &["pbx=\"freeswitch\"", "kind=\"io\""]
        )
        .await,
        1.0
    );
    srv.stop().await;
}

#[tokio::test]
async fn agi_peer_sending_half_an_environment_leaves_a_row_with_its_unique_id() {
    let mut srv = server::start(SCREEN_YAML).await;
    let http = srv.http();
    let mut s = TcpStream::connect(srv.agi()).await.unwrap();
    s.write_all(
        b"agi_network: yes\nagi_request: agi://127.0.0.1/callguard\n\
          agi_channel: PJSIP/trunk-00000001\nagi_uniqueid: 1700000000.42\n\
          agi_callerid: +15557654321\nagi_dnid: +18005550100\nagi_ext",
    )
    .await
    .unwrap();
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "no command to a call never screened");
    wait_metric(
        http,
        "callguard_unscreened_total",
        &["pbx=\"asterisk\"", "reason=\"environment_incomplete\""],
        1.0,
    )
    .await;
    let row = wait_row(&srv, |r| r.unique_id == "1700000000.42").await;
    assert_eq!(row.verdict, "unscreened");
    assert_eq!(row.pbx, "asterisk");
    assert_eq!(row.caller_raw, "+15557654321");
    assert_eq!(row.did, "+18005550100");
    assert_eq!(row.end_state.as_deref(), Some("not_screened"));
    assert!(
        row.reason.starts_with(
            "not screened: environment incomplete (connection closed in the middle of the \
             environment; 6 environment lines read); peer 127.0.0.1:"
        ),
        "{row:#?}"
    );
    // `callguard log` shows it on one line with its unique id and reason.
    let table = callguard::calllog::render_table(&[row]);
    let line = table.lines().nth(1).unwrap();
    assert!(line.contains("1700000000.42"), "{table}");
    assert!(line.contains("unscreened"), "{table}");
    assert!(line.contains("not_screened"), "{table}");
    // The API, its stats and the report take the row in: a call that went on
    // without a decision, neither blocked nor allowed.
    let http = srv.http();
    let calls: serde_json::Value = reqwest::get(format!("http://{http}/api/v1/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls[0]["unique_id"], "1700000000.42", "{calls}");
    assert_eq!(calls[0]["verdict"], "unscreened", "{calls}");
    let stats: serde_json::Value = reqwest::get(format!("http://{http}/api/v1/calls/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &stats["total"],
            &stats["blocked"],
            &stats["allowed"],
            &stats["fail_open"]
        ),
        (&1.into(), &0.into(), &0.into(), &1.into()),
        "{stats}"
    );
    let report = reqwest::get(format!("http://{http}/api/v1/report?since=1h"))
        .await
        .unwrap();
    assert_eq!(report.status(), 200);
    let report: serde_json::Value = report.json().await.unwrap();
    assert_eq!(report["fail_open"], 1, "{report}");
    srv.stop().await;
}

#[tokio::test]
async fn refused_peers_are_all_counted_and_their_rows_are_bounded() {
    // Loopback is not in the allow list.
    let mut srv = server::start(&format!(
        "{SCREEN_YAML}\nagi: {{ allow: [\"10.0.0.0/8\"] }}\n"
    ))
    .await;
    let http = srv.http();
    // `server::REFUSED_ROWS_PER_WINDOW` (crate-private): rows a minute.
    let max = 10;
    let n = max + 5;
    for _ in 0..n {
        let r = AsteriskSim::new()
            .callerid("+15550000001")
            .run(srv.agi())
            .await;
        assert!(r.commands.is_empty(), "{r:?}");
    }
    wait_metric(
        http,
        "callguard_unscreened_total",
        &["pbx=\"asterisk\"", "reason=\"not_allowed\""],
        n as f64,
    )
    .await;
    wait_metric(
        http,
        "callguard_connections_refused_total",
        &["pbx=\"asterisk\"", "reason=\"not_allowed\""],
        n as f64,
    )
    .await;
    let deadline = Instant::now() + WAIT;
    let all = loop {
        let all = rows(&srv).await;
        if all.len() >= max || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(all.len(), max, "rows are bounded per minute: {all:#?}");
    for r in &all {
        assert_eq!(r.verdict, "unscreened");
        assert_eq!(r.end_state.as_deref(), Some("not_screened"));
        assert!(
            r.reason
                .starts_with("not screened: refused: not in agi.allow; peer 127.0.0.1:"),
            "{r:#?}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn refused_esl_peer_row_carries_the_unique_id_of_its_channel_data() {
    let mut srv = server::start(&format!(
        "{SCREEN_YAML}\nesl: {{ allow: [\"10.0.0.0/8\"] }}\n"
    ))
    .await;
    // The release, against the simulator that answers as FreeSWITCH 1.10 does:
    // `connect`, the channel data, `myevents`, one `log` application (whose
    // completion proves the channel is parked, see `pbx::esl::release`), `exit`.
    let config = SimConfig {
        unique_id: "refused-1".into(),
        ..SimConfig::default()
    };
    let res = config.run(srv.esl()).await;
    assert!(res.connect_received && res.error.is_none(), "{res:?}");
    let lines: Vec<&str> = res.commands.iter().map(|c| c.line.as_str()).collect();
    assert_eq!(lines, ["myevents", "sendmsg", "exit"], "{res:?}");
    assert_eq!(res.commands[1].header("execute-app-name"), Some("log"));
    assert!(
        res.commands[1]
            .header("execute-app-arg")
            .is_some_and(|a| a.contains("refused: not in esl.allow")),
        "{res:?}"
    );
    let row = wait_row(&srv, |r| r.unique_id == "refused-1").await;
    assert_eq!(row.verdict, "unscreened");
    assert!(
        row.reason
            .starts_with("not screened: refused: not in esl.allow; peer 127.0.0.1:"),
        "{row:#?}"
    );
    assert_eq!(
        scrape_sum(
            srv.http(),
            "callguard_unscreened_total",
            &["pbx=\"freeswitch\"", "reason=\"not_allowed\""]
        )
        .await,
        1.0
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_call_refused_for_max_connections_gets_its_row() {
    let mut srv = server::start(&format!(
        "{SCREEN_YAML}\nagi: {{ max_connections: 1, env_timeout: 3s }}\n"
    ))
    .await;
    let http = srv.http();
    // A session holding the only slot (silent until its env timeout).
    let _held = TcpStream::connect(srv.agi()).await.unwrap();
    wait_metric(
        http,
        "callguard_sessions_active",
        &["pbx=\"asterisk\""],
        1.0,
    )
    .await;
    let r = AsteriskSim::new()
        .callerid("+15550000001")
        .run(srv.agi())
        .await;
    assert!(r.commands.is_empty(), "{r:?}");
    wait_metric(
        http,
        "callguard_unscreened_total",
        &["pbx=\"asterisk\"", "reason=\"max_connections\""],
        1.0,
    )
    .await;
    let row = wait_row(&srv, |r| r.reason.contains("max_connections")).await;
    assert_eq!(row.verdict, "unscreened");
    assert!(
        row.reason
            .starts_with("not screened: refused: agi.max_connections; peer 127.0.0.1:"),
        "{row:#?}"
    );
    srv.stop().await;
}
