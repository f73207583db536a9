//! Floods and slow peers against the real service on loopback, for both
//! listeners: connection storms past `max_connections`, slowloris peers,
//! half-open connections, peers that never read and peers outside `allow`.
//!
//! Every test asserts on what the server counts (refused connections,
//! protocol errors, `sessions_active` back to 0), never on how long anything
//! took: the waits below are bounded guards that fail the test, not clocks.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use asterisk::AsteriskSim;
use freeswitch::SimConfig;
use server::{SCREEN_YAML, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// How long a guard waits for the server before the test fails.
const GUARD: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pbx {
    Asterisk,
    FreeSwitch,
}

impl Pbx {
    fn label(self) -> &'static str {
        match self {
            Pbx::Asterisk => "asterisk",
            Pbx::FreeSwitch => "freeswitch",
        }
    }
    fn addr(self, srv: &TestServer) -> SocketAddr {
        match self {
            Pbx::Asterisk => srv.agi(),
            Pbx::FreeSwitch => srv.esl(),
        }
    }
    /// The first bytes a real PBX of this kind sends: Asterisk's environment,
    /// FreeSWITCH's reply to `connect` (the channel data).
    fn greeting(self, caller: &str) -> Vec<u8> {
        match self {
            Pbx::Asterisk => AsteriskSim::new().callerid(caller).env_bytes(),
            Pbx::FreeSwitch => {
                let config = SimConfig {
                    caller_number: caller.into(),
                    ..SimConfig::default()
                };
                freeswitch::encode_block(&freeswitch::connect_reply_headers(&config))
            }
        }
    }
}

/// One real call through the matching simulator; returns the verdict set.
async fn verdict(pbx: Pbx, addr: SocketAddr, caller: &str) -> Option<String> {
    match pbx {
        Pbx::Asterisk => {
            let r = AsteriskSim::new().callerid(caller).run(addr).await;
            assert!(r.error.is_none() && !r.timed_out, "{r:?}");
            r.variables.get("CALLGUARD_VERDICT").cloned()
        }
        Pbx::FreeSwitch => {
            let r = SimConfig {
                caller_number: caller.into(),
                ..SimConfig::default()
            }
            .run(addr)
            .await;
            assert!(r.error.is_none() && !r.timed_out, "{r:?}");
            r.variable("callguard_verdict").map(str::to_string)
        }
    }
}

async fn metric(srv: &TestServer, family: &str, with: &[&str]) -> f64 {
    server::scrape_sum(srv.http(), family, with).await
}

async fn active(srv: &TestServer, pbx: Pbx) -> f64 {
    let label = format!("pbx=\"{}\"", pbx.label());
    metric(srv, "callguard_sessions_active", &[&label]).await
}

/// Waits (bounded) until the server holds exactly `n` sessions of `pbx`.
async fn sessions_become(srv: &TestServer, pbx: Pbx, n: f64) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        let now = active(srv, pbx).await;
        if now == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pbx:?}: {now} sessions open, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn refused(srv: &TestServer, pbx: Pbx, reason: &str) -> f64 {
    let p = format!("pbx=\"{}\"", pbx.label());
    let r = format!("reason=\"{reason}\"");
    metric(srv, "callguard_connections_refused_total", &[&p, &r]).await
}

async fn protocol_errors(srv: &TestServer, pbx: Pbx, kind: &str) -> f64 {
    let p = format!("pbx=\"{}\"", pbx.label());
    let k = format!("kind=\"{kind}\"");
    metric(srv, "callguard_protocol_errors_total", &[&p, &k]).await
}

/// What a peer saw of the server before its side closed.
#[derive(Debug)]
struct Seen {
    bytes: Vec<u8>,
    /// EOF or reset: the server closed the connection.
    closed: bool,
}

/// Reads until the server closes (or the guard expires: `closed` false).
async fn read_until_closed(stream: &mut TcpStream) -> Seen {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    Seen { bytes, closed }
}

fn config(pbx: Pbx, settings: &str) -> String {
    let section = match pbx {
        Pbx::Asterisk => "agi",
        Pbx::FreeSwitch => "esl",
    };
    format!("{SCREEN_YAML}\n{section}: {{ {settings} }}\n")
}

/// The calls a storm must not disturb: (caller, verdict).
const CALLS: &[(&str, &str)] = &[
    ("+15550000001", "block"),
    ("+15559876543", "allow"),
    ("+15550000002", "block"),
    ("+15554443333", "allow"),
];

async fn storm(pbx: Pbx) {
    const LIMIT: usize = 8;
    const STORM: usize = 300;
    let timeout_key = match pbx {
        Pbx::Asterisk => "env_timeout",
        Pbx::FreeSwitch => "connect_timeout",
    };
    let mut srv = server::start(&config(
        pbx,
        &format!("max_connections: {LIMIT}, {timeout_key}: 60s"),
    ))
    .await;
    let addr = pbx.addr(&srv);
    // Fill every slot with peers that connect and wait.
    let mut holders = Vec::new();
    for _ in 0..LIMIT {
        holders.push(TcpStream::connect(addr).await.unwrap());
    }
    sessions_become(&srv, pbx, LIMIT as f64).await;

    // The storm: every one refused at once. Asterisk connections are closed before a byte
    // is exchanged; FreeSWITCH ones are released (`connect`, and since these peers never
    // answer, closed after the release timeout) or, past the releases in flight, closed.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..STORM {
        set.spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            read_until_closed(&mut s).await
        });
    }
    while let Some(seen) = set.join_next().await {
        let seen = seen.unwrap();
        let released = pbx == Pbx::FreeSwitch && seen.bytes == b"connect\n\n";
        assert!(
            seen.closed && (seen.bytes.is_empty() || released),
            "{pbx:?}: {seen:?}"
        );
    }
    assert_eq!(refused(&srv, pbx, "too_many").await, STORM as f64);
    assert_eq!(active(&srv, pbx).await, LIMIT as f64);

    // Free two slots: calls within the limit are decided correctly, two at a time.
    holders.truncate(LIMIT - 2);
    sessions_become(&srv, pbx, (LIMIT - 2) as f64).await;
    for round in 0..4 {
        let mut lanes = tokio::task::JoinSet::new();
        for lane in 0..2 {
            let (caller, want) = CALLS[(round * 2 + lane) % CALLS.len()];
            lanes.spawn(async move { (caller, want, verdict(pbx, addr, caller).await) });
        }
        while let Some(r) = lanes.join_next().await {
            let (caller, want, got) = r.unwrap();
            assert_eq!(got.as_deref(), Some(want), "{pbx:?} caller {caller}");
        }
        // Each call has released its slot before the next round takes one.
        sessions_become(&srv, pbx, (LIMIT - 2) as f64).await;
    }
    assert_eq!(refused(&srv, pbx, "too_many").await, STORM as f64);

    drop(holders);
    sessions_become(&srv, pbx, 0.0).await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agi_connection_storm_above_max_connections() {
    storm(Pbx::Asterisk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esl_connection_storm_above_max_connections() {
    storm(Pbx::FreeSwitch).await;
}

/// Peers trickling their first block one byte every 20 ms are all closed by
/// the configured timeout, which covers the whole block, not one read.
async fn slowloris(pbx: Pbx) {
    const PEERS: usize = 20;
    let timeout_key = match pbx {
        Pbx::Asterisk => "env_timeout",
        Pbx::FreeSwitch => "connect_timeout",
    };
    let mut srv = server::start(&config(pbx, &format!("{timeout_key}: 300ms"))).await;
    let addr = pbx.addr(&srv);
    let greeting = pbx.greeting("+15550000001");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..PEERS {
        let greeting = greeting.clone();
        set.spawn(async move {
            let s = TcpStream::connect(addr).await.unwrap();
            let (mut rd, mut wr) = s.into_split();
            let reader = tokio::spawn(async move {
                let mut bytes = Vec::new();
                let closed = tokio::time::timeout(GUARD, rd.read_to_end(&mut bytes))
                    .await
                    .is_ok();
                assert!(closed, "the server kept a slowloris peer");
                bytes
            });
            // The whole block would take ~15 s at this pace; the writes fail
            // once the server has closed.
            let mut sent = 0;
            for b in &greeting {
                if wr.write_all(&[*b]).await.is_err() {
                    break;
                }
                sent += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if reader.is_finished() {
                    break;
                }
            }
            (sent, reader.await.unwrap())
        });
    }
    while let Some(r) = set.join_next().await {
        let (sent, bytes) = r.unwrap();
        assert!(sent < greeting.len(), "{pbx:?}: the whole block was sent");
        let text = String::from_utf8_lossy(&bytes);
        match pbx {
            // Nothing but `connect` is ever sent to a peer that has not answered it.
            Pbx::FreeSwitch => assert_eq!(text, "connect\n\n"),
            Pbx::Asterisk => assert_eq!(text, ""),
        }
    }
    sessions_become(&srv, pbx, 0.0).await;
    assert_eq!(protocol_errors(&srv, pbx, "timeout").await, PEERS as f64);
    // Still serving.
    assert_eq!(
        verdict(pbx, addr, "+15550000001").await.as_deref(),
        Some("block")
    );
    srv.stop().await;
}

#[tokio::test]
async fn agi_slowloris_environment_is_closed_by_env_timeout() {
    slowloris(Pbx::Asterisk).await;
}

#[tokio::test]
async fn esl_slowloris_connect_reply_is_closed_by_connect_timeout() {
    slowloris(Pbx::FreeSwitch).await;
}

/// A peer sending frames that are each on time but never the one awaited
/// (ESL frames of an unknown type before the channel data; AGI `HANGUP`
/// notices instead of a reply; ESL events instead of a command reply) is
/// closed by one deadline for the whole wait, not kept alive per frame.
/// A `text/event-plain` frame whose body is one CHANNEL_PARK event.
const PARK_EVENT: &[u8] =
    b"Content-Length: 26\nContent-Type: text/event-plain\n\nEvent-Name: CHANNEL_PARK\n\n";

async fn chatter(pbx: Pbx, settings: &str, first: Vec<u8>, filler: &'static [u8]) {
    let mut srv = server::start(&config(pbx, settings)).await;
    let addr = pbx.addr(&srv);
    let s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    // True when the server closed the connection within the guard.
    let reader = tokio::spawn(async move {
        let mut bytes = Vec::new();
        tokio::time::timeout(GUARD, rd.read_to_end(&mut bytes))
            .await
            .is_ok()
    });
    wr.write_all(&first).await.unwrap();
    // One filler frame every 50 ms for at most the guard: the server must
    // close well before the guard, whatever the machine's speed.
    let deadline = tokio::time::Instant::now() + GUARD;
    while !reader.is_finished() && tokio::time::Instant::now() < deadline {
        if wr.write_all(filler).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reader.await.unwrap(),
        "{pbx:?}: the server kept a peer that never progresses"
    );
    sessions_become(&srv, pbx, 0.0).await;
    srv.stop().await;
}

#[tokio::test]
async fn agi_hangup_notices_instead_of_a_reply_do_not_extend_the_reply_timeout() {
    chatter(
        Pbx::Asterisk,
        "reply_timeout: 300ms",
        Pbx::Asterisk.greeting("+15550000001"),
        b"HANGUP\n",
    )
    .await;
}

#[tokio::test]
async fn esl_frames_that_are_not_the_reply_do_not_extend_the_timeouts() {
    // Unknown frames before the channel data: the connect deadline holds.
    chatter(
        Pbx::FreeSwitch,
        "connect_timeout: 300ms",
        Vec::new(),
        b"Content-Type: text/rude-rejection\nContent-Length: 0\n\n",
    )
    .await;
    // Events instead of the reply to `myevents`: the reply deadline holds.
    chatter(
        Pbx::FreeSwitch,
        "reply_timeout: 300ms",
        Pbx::FreeSwitch.greeting("+15550000001"),
        PARK_EVENT,
    )
    .await;
}

/// Half-open peers: connected and silent, or gone silent after half the
/// first block with their write side shut down.
async fn half_open(pbx: Pbx) {
    const PEERS: usize = 10;
    let mut srv = server::start(&config(
        pbx,
        match pbx {
            Pbx::Asterisk => "env_timeout: 300ms",
            Pbx::FreeSwitch => "connect_timeout: 300ms",
        },
    ))
    .await;
    let addr = pbx.addr(&srv);
    let greeting = pbx.greeting("+15550000001");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..2 * PEERS {
        let half = greeting[..greeting.len() / 2].to_vec();
        set.spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 1 {
                s.write_all(&half).await.unwrap();
                s.shutdown().await.unwrap();
            }
            read_until_closed(&mut s).await
        });
    }
    while let Some(seen) = set.join_next().await {
        let seen = seen.unwrap();
        assert!(seen.closed, "{pbx:?}: a half-open peer was kept: {seen:?}");
        let text = String::from_utf8_lossy(&seen.bytes);
        assert!(
            text.is_empty() || text == "connect\n\n",
            "{pbx:?}: {text:?}"
        );
    }
    sessions_become(&srv, pbx, 0.0).await;
    // The silent ones time out; the ones that shut down mid-block are protocol errors (or,
    // for ESL, a closed peer): every one is counted.
    let counted = protocol_errors(&srv, pbx, "timeout").await
        + protocol_errors(&srv, pbx, "protocol").await
        + protocol_errors(&srv, pbx, "closed").await;
    let silent_timeouts = protocol_errors(&srv, pbx, "timeout").await;
    assert!(silent_timeouts >= PEERS as f64, "{silent_timeouts}");
    assert_eq!(counted, (2 * PEERS) as f64);
    srv.stop().await;
}

#[tokio::test]
async fn agi_half_open_connections_are_closed() {
    half_open(Pbx::Asterisk).await;
}

#[tokio::test]
async fn esl_half_open_connections_are_closed() {
    half_open(Pbx::FreeSwitch).await;
}

/// Peers that send their first block and then never read nor answer: the
/// server's command goes unanswered and the session ends at `reply_timeout`.
async fn never_read(pbx: Pbx) {
    const PEERS: usize = 30;
    let mut srv = server::start(&config(pbx, "reply_timeout: 300ms")).await;
    let addr = pbx.addr(&srv);
    let greeting = pbx.greeting("+15550000001");
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let socket = TcpSocket::new_v4().unwrap();
        // A small receive window: what the server writes is not read.
        socket.set_recv_buffer_size(1024).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(&greeting).await.unwrap();
        peers.push(s);
    }
    // The sockets stay open and unread until every session has ended.
    sessions_become(&srv, pbx, 0.0).await;
    assert_eq!(protocol_errors(&srv, pbx, "timeout").await, PEERS as f64);
    for mut s in peers {
        let seen = read_until_closed(&mut s).await;
        assert!(seen.closed, "{pbx:?}: {seen:?}");
    }
    assert_eq!(
        verdict(pbx, addr, "+15550000001").await.as_deref(),
        Some("block")
    );
    srv.stop().await;
}

#[tokio::test]
async fn agi_peers_that_never_read_are_timed_out() {
    never_read(Pbx::Asterisk).await;
}

#[tokio::test]
async fn esl_peers_that_never_read_are_timed_out() {
    never_read(Pbx::FreeSwitch).await;
}

/// Connects from `source` (any 127/8 address works on loopback).
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Only 127.0.0.1 is allowed: peers from 127.0.0.2 are refused and counted; the allowed
/// PBX is still served. A refused Asterisk peer gets nothing; a refused FreeSWITCH peer is
/// released so that its `socket` application returns (`connect` … `exit`: see
/// `pbx::esl::release`), and is never screened.
async fn outside_allow(pbx: Pbx) {
    const PEERS: usize = 50;
    let mut srv = server::start(&config(pbx, "allow: [\"127.0.0.1/32\"]")).await;
    let addr = pbx.addr(&srv);
    let greeting = pbx.greeting("+15550000001");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..PEERS {
        let greeting = greeting.clone();
        set.spawn(async move {
            let mut s = connect_from("127.0.0.2", addr).await;
            // The write may or may not land before the server's close.
            let _ = s.write_all(&greeting).await;
            read_until_closed(&mut s).await
        });
    }
    while let Some(seen) = set.join_next().await {
        let seen = seen.unwrap();
        assert!(seen.closed, "{pbx:?}: {seen:?}");
        match pbx {
            Pbx::Asterisk => assert!(seen.bytes.is_empty(), "{seen:?}"),
            // This peer answers nothing after its channel data: each step of the
            // release runs out its short bound and the peer still gets its `exit`.
            Pbx::FreeSwitch => {
                let text = String::from_utf8_lossy(&seen.bytes);
                assert!(
                    text.starts_with("connect\n\nmyevents\n\nsendmsg\n"),
                    "{text:?}"
                );
                assert!(text.contains("execute-app-name: log\n"), "{text:?}");
                assert!(text.ends_with("\n\nexit\n\n"), "{text:?}");
            }
        }
    }
    assert_eq!(refused(&srv, pbx, "not_allowed").await, PEERS as f64);
    assert_eq!(protocol_errors(&srv, pbx, "timeout").await, 0.0);
    assert_eq!(
        verdict(pbx, addr, "+15550000001").await.as_deref(),
        Some("block")
    );
    sessions_become(&srv, pbx, 0.0).await;
    srv.stop().await;
}

#[tokio::test]
async fn agi_peers_outside_allow_are_refused_before_any_byte() {
    outside_allow(Pbx::Asterisk).await;
}

#[tokio::test]
async fn esl_peers_outside_allow_are_refused_and_released() {
    outside_allow(Pbx::FreeSwitch).await;
}
