//! The baseline of issue 15: a bare tokio server that speaks just enough FastAGI and outbound
//! ESL to send the commands callguard sends, each waiting for its reply, and does nothing
//! else (no rules, no log, no metrics). What callguard costs beyond this is its own.
//!
//! ```sh
//! cargo run --release --example bare -- --agi 127.0.0.1:4583 --esl 127.0.0.1:8094 --mode same
//! ```
//!
//! Modes: `one` sends one variable (AGI `SET VARIABLE`; ESL one `set`) and closes / exits;
//! `same` sends what callguard sends by default (AGI `EXEC MSet` of the five variables,
//! ESL `myevents`, `linger 5`, one `multiset`), then for a blocked caller (the built-in mix
//! of `callguard-loadgen`: `+1555000…`) `EXEC Busy 5` + `EXEC Hangup 17` /
//! `respond 486 Busy Here`, then closes / `exit`; `per-variable` is `same` with one
//! `SET VARIABLE` / `set` per variable (callguard before issue 15).

use std::net::SocketAddr;

use clap::{Parser, ValueEnum};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    One,
    Same,
    PerVariable,
}

#[derive(Parser, Debug)]
struct Cli {
    #[arg(long)]
    agi: Option<SocketAddr>,
    #[arg(long)]
    esl: Option<SocketAddr>,
    #[arg(long, value_enum, default_value = "same")]
    mode: Mode,
}

fn blocked(caller: &str) -> bool {
    caller.starts_with("+1555000")
}

const VARS: [(&str, &str); 5] = [
    ("VERDICT", "block"),
    ("ACTION", "reject"),
    ("RULE", "Busy"),
    ("LIST", "blacklist"),
    (
        "REASON",
        "blacklist rule Busy (exact +15550000001) on trunk support",
    ),
];

async fn agi(stream: TcpStream, mode: Mode) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let mut caller = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if line == "\n" {
            break;
        }
        if let Some(v) = line.strip_prefix("agi_callerid: ") {
            caller = v.trim().to_string();
        }
    }
    let mut cmds: Vec<String> = Vec::new();
    match mode {
        Mode::One => cmds.push("SET VARIABLE CALLGUARD_VERDICT \"block\"\n".into()),
        Mode::Same => {
            let data: Vec<String> = VARS
                .iter()
                .map(|(n, v)| format!("CALLGUARD_{n}={}", v.replace(['(', ')'], "")))
                .collect();
            cmds.push(format!("EXEC MSet \"{}\"\n", data.join(",")));
        }
        Mode::PerVariable => {
            for (n, v) in VARS {
                cmds.push(format!("SET VARIABLE CALLGUARD_{n} \"{v}\"\n"));
            }
        }
    }
    if mode != Mode::One && blocked(&caller) {
        cmds.push("EXEC Busy 5\n".into());
        cmds.push("EXEC Hangup 17\n".into());
    }
    for c in cmds {
        w.write_all(c.as_bytes()).await?;
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
    }
    w.shutdown().await?;
    // Drain until the PBX closes, as callguard does.
    let mut sink = [0u8; 256];
    while r.read(&mut sink).await? > 0 {}
    Ok(())
}

/// Reads one ESL frame: headers to a blank line, then `Content-Length` bytes.
async fn frame(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<String> {
    let mut head = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\n" {
            if head.is_empty() {
                continue;
            }
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    if len > 0 {
        let mut body = vec![0u8; len.min(1 << 20)];
        r.read_exact(&mut body).await?;
        head.push_str(&String::from_utf8_lossy(&body));
    }
    Ok(head)
}

type Rd = BufReader<tokio::net::tcp::OwnedReadHalf>;

/// `sendmsg execute` with event-lock, then waits for its CHANNEL_EXECUTE_COMPLETE.
async fn execute(
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    r: &mut Rd,
    n: &mut u32,
    app: &str,
    arg: &str,
) -> std::io::Result<()> {
    *n += 1;
    let uuid = format!("bare-{n}");
    w.write_all(
        format!(
            "sendmsg\ncall-command: execute\nexecute-app-name: {app}\nexecute-app-arg: {arg}\nevent-lock: true\nEvent-UUID: {uuid}\n\n"
        )
        .as_bytes(),
    )
    .await?;
    loop {
        let f = frame(r).await?;
        if f.contains("CHANNEL_EXECUTE_COMPLETE") && f.contains(&uuid) {
            return Ok(());
        }
    }
}

async fn esl(stream: TcpStream, mode: Mode) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"connect\n\n").await?;
    let data = frame(&mut r).await?;
    let caller = data
        .lines()
        .find_map(|l| l.strip_prefix("Caller-Caller-ID-Number: "))
        .unwrap_or("")
        .to_string();
    let mut n = 0u32;
    if mode != Mode::One {
        for cmd in ["myevents\n\n", "linger 5\n\n"] {
            w.write_all(cmd.as_bytes()).await?;
            frame(&mut r).await?;
        }
    }
    match mode {
        Mode::One => execute(&mut w, &mut r, &mut n, "set", "callguard_verdict=block").await?,
        Mode::Same => {
            let arg: Vec<String> = VARS
                .iter()
                .map(|(n, v)| format!("callguard_{}={v}", n.to_ascii_lowercase()))
                .collect();
            execute(
                &mut w,
                &mut r,
                &mut n,
                "multiset",
                &format!("^^|{}", arg.join("|")),
            )
            .await?
        }
        Mode::PerVariable => {
            for (name, v) in VARS {
                let arg = format!("callguard_{}={v}", name.to_ascii_lowercase());
                execute(&mut w, &mut r, &mut n, "set", &arg).await?;
            }
        }
    }
    if mode != Mode::One && blocked(&caller) {
        execute(&mut w, &mut r, &mut n, "respond", "486 Busy Here").await?;
    }
    w.write_all(b"exit\n\n").await?;
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Ok(k) = r.read(&mut sink).await {
            if k == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let mut tasks = Vec::new();
    if let Some(addr) = cli.agi {
        let l = TcpListener::bind(addr).await?;
        let mode = cli.mode;
        tasks.push(tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(agi(s, mode));
            }
        }));
    }
    if let Some(addr) = cli.esl {
        let l = TcpListener::bind(addr).await?;
        let mode = cli.mode;
        tasks.push(tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let _ = s.set_nodelay(true);
                tokio::spawn(esl(s, mode));
            }
        }));
    }
    eprintln!(
        "bare ({:?}) listening agi={:?} esl={:?}",
        cli.mode, cli.agi, cli.esl
    );
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
