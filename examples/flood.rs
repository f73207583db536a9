//! The attacker of `bench/flood.sh`: connection storms past
//! `max_connections`, slowloris peers, half-open peers and peers that never
//! read, against a running `callguard serve` on loopback, on both listeners.
//! Samples the server's RSS and open fds (from /proc) before, during and
//! after each phase, checks real calls are still decided afterwards, and
//! prints a table. Bounded in count (clamped) and time (every wait).
//!
//! ```sh
//! cargo run --release --example flood -- --agi A --esl E --http H --pid PID --storm 2000
//! ```

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "../tests/support/soak.rs"]
mod soak;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    agi: SocketAddr,
    #[arg(long)]
    esl: SocketAddr,
    #[arg(long)]
    http: SocketAddr,
    #[arg(long)]
    pid: u32,
    /// Connections per listener in the storm.
    #[arg(long, default_value_t = 2000)]
    storm: usize,
    /// Slowloris peers per listener.
    #[arg(long, default_value_t = 200)]
    slow: usize,
    /// Half-open peers per listener (half silent, half shut mid-block).
    #[arg(long, default_value_t = 200)]
    half_open: usize,
    /// Peers per listener that send their block and then never read.
    #[arg(long, default_value_t = 200)]
    deaf: usize,
    /// Times the phases are repeated: a second round that does not grow
    /// RSS or fds shows the first round's growth is allocator reuse, not a leak.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// How long never-reading peers hold their socket (past `reply_timeout`).
    #[arg(long, default_value_t = 5000)]
    hold_ms: u64,
}

/// Every wait of the attacker ends by this.
const GUARD: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Pbx {
    Agi,
    Esl,
}

fn greeting(pbx: Pbx) -> Vec<u8> {
    match pbx {
        Pbx::Agi => asterisk::AsteriskSim::new()
            .script("callguard?trunk=support")
            .callerid("+15550000001")
            .env_bytes(),
        Pbx::Esl => {
            freeswitch::encode_block(&freeswitch::connect_reply_headers(&freeswitch::SimConfig {
                caller_number: "+15550000001".into(),
                ..Default::default()
            }))
        }
    }
}

struct Row {
    phase: String,
    peers: usize,
    refused: f64,
    timeouts: f64,
    before: (u64, u64),
    during: (u64, u64),
    after: (u64, u64),
    calls_ok: usize,
}

async fn counters(http: SocketAddr) -> (f64, f64, f64) {
    let refused = soak::scrape(http, "callguard_connections_refused_total", &[]).await;
    let errors = soak::scrape(http, "callguard_protocol_errors_total", &[]).await;
    let active = soak::scrape(http, "callguard_sessions_active", &[]).await;
    (refused, errors, active)
}

/// Waits (bounded) until the server holds no session.
async fn drained(http: SocketAddr) -> bool {
    let deadline = Instant::now() + GUARD;
    while Instant::now() < deadline {
        if counters(http).await.2 == 0.0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Real calls on both listeners: how many were decided correctly (of 10).
async fn calls_ok(cli: &Cli) -> usize {
    let mut ok = 0;
    for i in 0..5 {
        let caller = if i % 2 == 0 {
            "+15550000001"
        } else {
            "+15554000001"
        };
        let want = if i % 2 == 0 { "block" } else { "allow" };
        let r = asterisk::AsteriskSim::new()
            .script("callguard?trunk=support")
            .callerid(caller)
            .run(cli.agi)
            .await;
        if r.variables.get("CALLGUARD_VERDICT").map(String::as_str) == Some(want) {
            ok += 1;
        }
        let r = freeswitch::SimConfig {
            caller_number: caller.into(),
            ..Default::default()
        }
        .run(cli.esl)
        .await;
        if r.variable("callguard_verdict") == Some(want) {
            ok += 1;
        }
    }
    ok
}

/// Reads until the server closes, bounded.
async fn until_closed(mut s: TcpStream) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(GUARD, async {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// Runs one phase: `attack` spawns peers per listener; samples are taken
/// before, once every peer is connected (during), and after the server drained.
async fn phase<F, Fut>(cli: &Cli, name: String, peers: usize, attack: F) -> Row
where
    F: Fn(Pbx, SocketAddr, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let before = soak::sample_proc(cli.pid).unwrap_or_default();
    let (r0, e0, _) = counters(cli.http).await;
    let mut set = tokio::task::JoinSet::new();
    for (pbx, addr) in [(Pbx::Agi, cli.agi), (Pbx::Esl, cli.esl)] {
        for i in 0..peers {
            set.spawn(attack(pbx, addr, i));
        }
    }
    // "During": shortly after the peers are launched, while they hold sockets.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = soak::sample_proc(cli.pid).unwrap_or_default();
    let deadline = Instant::now() + GUARD * 2;
    while Instant::now() < deadline && !set.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), set.join_next()).await;
    }
    set.abort_all();
    let drained = drained(cli.http).await;
    let (r1, e1, _) = counters(cli.http).await;
    let calls = calls_ok(cli).await;
    let after = soak::sample_proc(cli.pid).unwrap_or_default();
    Row {
        phase: if drained {
            name.to_string()
        } else {
            format!("{name} (NOT DRAINED)")
        },
        peers: peers * 2,
        refused: r1 - r0,
        timeouts: e1 - e0,
        before,
        during,
        after,
        calls_ok: calls,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let storm = cli.storm.clamp(1, 10_000);
    let slow = cli.slow.clamp(1, 2_000);
    let half = cli.half_open.clamp(1, 2_000);
    let deaf = cli.deaf.clamp(1, 2_000);
    let rounds = cli.rounds.clamp(1, 10);
    let hold = Duration::from_millis(cli.hold_ms.clamp(100, 60_000));
    let start = soak::sample_proc(cli.pid).unwrap_or_default();
    let mut rows = Vec::new();

    for round in 1..=rounds {
        let tag = if rounds > 1 {
            format!(", round {round}")
        } else {
            String::new()
        };
        // Storm: every connection opened at once and held until the server closes it.
        rows.push(
            phase(
                &cli,
                format!("connection storm{tag}"),
                storm,
                |_, addr, _| async move {
                    if let Ok(s) = TcpStream::connect(addr).await {
                        until_closed(s).await;
                    }
                },
            )
            .await,
        );
        // Slowloris: the first block one byte every 100 ms.
        rows.push(
            phase(
                &cli,
                format!("slowloris (1 byte / 100 ms){tag}"),
                slow,
                |pbx, addr, _| {
                    let block = greeting(pbx);
                    async move {
                        let Ok(s) = TcpStream::connect(addr).await else {
                            return;
                        };
                        let (rd, mut wr) = s.into_split();
                        let reader = tokio::spawn(async move {
                            let mut rd = rd;
                            let mut buf = [0u8; 256];
                            let _ = tokio::time::timeout(GUARD, async {
                                while let Ok(n) = rd.read(&mut buf).await {
                                    if n == 0 {
                                        break;
                                    }
                                }
                            })
                            .await;
                        });
                        for b in block {
                            if reader.is_finished() || wr.write_all(&[b]).await.is_err() {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        let _ = reader.await;
                    }
                },
            )
            .await,
        );
        // Half-open: silent after connect, or half the block then the write side shut.
        rows.push(
            phase(&cli, format!("half-open{tag}"), half, |pbx, addr, i| {
                let block = greeting(pbx);
                async move {
                    let Ok(mut s) = TcpStream::connect(addr).await else {
                        return;
                    };
                    if i % 2 == 1 {
                        let _ = s.write_all(&block[..block.len() / 2]).await;
                        let _ = s.shutdown().await;
                    }
                    until_closed(s).await;
                }
            })
            .await,
        );
        // Never reading: the whole block, a tiny receive window, no reads, no replies.
        rows.push(
            phase(
                &cli,
                format!("never-reading peers{tag}"),
                deaf,
                move |pbx, addr, _| {
                    let block = greeting(pbx);
                    async move {
                        let Ok(socket) = TcpSocket::new_v4() else {
                            return;
                        };
                        let _ = socket.set_recv_buffer_size(1024);
                        let Ok(mut s) = socket.connect(addr).await else {
                            return;
                        };
                        let _ = s.write_all(&block).await;
                        // Hold the socket unread past the server's reply timeout.
                        tokio::time::sleep(hold).await;
                        drop(s);
                    }
                },
            )
            .await,
        );
    }
    let end = soak::sample_proc(cli.pid).unwrap_or_default();

    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "| phase | peers | refused | protocol errors | RSS before → during → after (MiB) | fds before → during → after | calls decided after (of 10) |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut ok = true;
    for r in &rows {
        ok &= r.calls_ok == 10 && !r.phase.contains("NOT DRAINED");
        println!(
            "| {} | {} | {} | {} | {:.1} → {:.1} → {:.1} | {} → {} → {} | {} |",
            r.phase,
            r.peers,
            r.refused,
            r.timeouts,
            mib(r.before.0),
            mib(r.during.0),
            mib(r.after.0),
            r.before.1,
            r.during.1,
            r.after.1,
            r.calls_ok
        );
    }
    println!(
        "\nserver overall: RSS {:.1} → {:.1} MiB, open fds {} → {}",
        mib(start.0),
        mib(end.0),
        start.1,
        end.1
    );
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
