//! A TCP relay between a PBX simulator and the service that makes the PBX
//! vanish, reset or stall after any number of whole protocol messages.
//!
//! The simulators play a well-behaved PBX; the relay sits between them and
//! the service, frames both directions (FastAGI lines, ESL header blocks with
//! their bodies), forwards them one by one and records them. Recorded once
//! without a cut, a session's messages are the list of places a peer can go
//! away; each cut replays the same call and, once `after` messages have
//! crossed, closes (FIN), resets (SO_LINGER 0, RST) or stalls (stays
//! connected and silent) toward the service. The relay is protocol-aware only
//! enough to count messages, so a new action's commands are new cut points
//! without any change here.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Which framing the relay counts messages by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// The environment block up to its blank line, then one line per message.
    Agi,
    /// Header blocks up to a blank line, then `Content-Length` body bytes.
    Esl,
}

/// How the PBX goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// An orderly close (FIN): what an Asterisk restart looks like.
    Close,
    /// SO_LINGER 0 then close: an RST, the next write of the service fails.
    Reset,
    /// Connected and silent: the service's own timeouts must end it.
    Stall,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::Close, Fault::Reset, Fault::Stall];
}

/// Which way a message crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// PBX to service: environment, replies, events.
    Up,
    /// Service to PBX: commands.
    Down,
}

/// One whole message as it crossed the relay.
#[derive(Debug, Clone)]
pub struct Message {
    pub dir: Dir,
    pub bytes: Vec<u8>,
}

impl Message {
    /// The first line, for reports.
    pub fn head(&self) -> String {
        let end = self
            .bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[..end.min(80)]).into_owned()
    }
}

/// Where the peer goes away: after `after` whole messages, or, with `half`,
/// after `after` messages and the first half of the next one (which must be
/// the PBX's: a partial environment, reply or event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub after: usize,
    pub half: bool,
    pub fault: Fault,
}

/// What the relay saw.
#[derive(Debug, Default)]
pub struct Relayed {
    pub messages: Vec<Message>,
    /// Messages that had crossed when the service closed its side (None: it did not).
    pub service_closed_at: Option<usize>,
    /// The cut was applied.
    pub cut_fired: bool,
    /// Stall: the service closed the stalled connection this long after the stall.
    pub stall_ended_after: Option<Duration>,
    /// Stall: what the service still sent to the silent peer (the next command).
    pub sent_while_stalled: Vec<u8>,
    /// Connect or relay I/O failure.
    pub error: Option<String>,
}

/// Relays one simulated call to `service`, applying `cut` if given. `sim`
/// gets the relay's address and plays the PBX. A stalled connection is held
/// until the service closes it or `stall_limit` passes.
pub async fn relay<F, T>(
    proto: Proto,
    service: SocketAddr,
    cut: Option<Cut>,
    stall_limit: Duration,
    sim: impl FnOnce(SocketAddr) -> F,
) -> (T, Relayed)
where
    F: std::future::Future<Output = T>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay bind");
    let addr = listener.local_addr().unwrap();
    let pump = async {
        let mut out = Relayed::default();
        let accepted = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await;
        let pbx = match accepted {
            Ok(Ok((s, _))) => s,
            _ => {
                out.error = Some("the simulator did not connect".into());
                return out;
            }
        };
        match TcpStream::connect(service).await {
            Ok(svc) => run(proto, pbx, svc, cut, stall_limit, &mut out).await,
            Err(e) => out.error = Some(format!("connect to the service: {e}")),
        }
        out
    };
    tokio::join!(sim(addr), pump)
}

/// Frames bytes into whole messages for one direction.
struct Framer {
    proto: Proto,
    dir: Dir,
    buf: Vec<u8>,
    /// AGI upward: the environment block has been framed.
    env_done: bool,
}

impl Framer {
    fn next(&mut self) -> Option<Vec<u8>> {
        let len = match (self.proto, self.dir, self.env_done) {
            (Proto::Agi, Dir::Up, false) => {
                let end = find(&self.buf, b"\n\n")? + 2;
                self.env_done = true;
                end
            }
            (Proto::Agi, _, _) => self.buf.iter().position(|&b| b == b'\n')? + 1,
            (Proto::Esl, _, _) => {
                // Blank lines between frames belong to no message.
                let skip = self.buf.iter().take_while(|&&b| b == b'\n').count();
                self.buf.drain(..skip);
                let head = find(&self.buf, b"\n\n")? + 2;
                let text = String::from_utf8_lossy(&self.buf[..head]).to_ascii_lowercase();
                let body: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() < head + body {
                    return None;
                }
                head + body
            }
        };
        Some(self.buf.drain(..len).collect())
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// SO_LINGER 0: closing the socket sends an RST instead of a FIN.
pub fn linger_zero(s: &TcpStream) {
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this process owns, with a valid linger.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

async fn run(
    proto: Proto,
    mut pbx: TcpStream,
    mut svc: TcpStream,
    cut: Option<Cut>,
    stall_limit: Duration,
    out: &mut Relayed,
) {
    let _ = pbx.set_nodelay(true);
    let _ = svc.set_nodelay(true);
    let mut up = Framer {
        proto,
        dir: Dir::Up,
        buf: Vec::new(),
        env_done: false,
    };
    let mut down = Framer {
        proto,
        dir: Dir::Down,
        buf: Vec::new(),
        env_done: true,
    };
    let (mut pbx_eof, mut svc_eof) = (false, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut a = [0u8; 8192];
    let mut b = [0u8; 8192];
    if let Some(c) = cut
        && c.after == 0
        && !c.half
    {
        return fault(c.fault, pbx, svc, stall_limit, out).await;
    }
    while !(pbx_eof && svc_eof) {
        let read = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                r = pbx.read(&mut a), if !pbx_eof => (Dir::Up, r),
                r = svc.read(&mut b), if !svc_eof => (Dir::Down, r),
            }
        })
        .await;
        let Ok((dir, r)) = read else {
            out.error = Some("relayed session did not end within 20 s".into());
            return;
        };
        let n = r.unwrap_or(0);
        if n == 0 {
            // One side is done: pass the close on, keep relaying the other.
            match dir {
                Dir::Up => {
                    pbx_eof = true;
                    let _ = svc.shutdown().await;
                }
                Dir::Down => {
                    svc_eof = true;
                    out.service_closed_at.get_or_insert(out.messages.len());
                    let _ = pbx.shutdown().await;
                }
            }
            continue;
        }
        let (framer, chunk) = match dir {
            Dir::Up => (&mut up, &a[..n]),
            Dir::Down => (&mut down, &b[..n]),
        };
        framer.buf.extend_from_slice(chunk);
        while let Some(msg) = framer.next() {
            let index = out.messages.len();
            let to = if dir == Dir::Up { &mut svc } else { &mut pbx };
            if let Some(c) = cut
                && c.half
                && c.after == index
            {
                let _ = to.write_all(&msg[..msg.len() / 2]).await;
                return fault(c.fault, pbx, svc, stall_limit, out).await;
            }
            // A side already closed cannot take the message; it is still counted.
            let _ = to.write_all(&msg).await;
            out.messages.push(Message { dir, bytes: msg });
            if let Some(c) = cut
                && !c.half
                && c.after == index + 1
            {
                return fault(c.fault, pbx, svc, stall_limit, out).await;
            }
        }
    }
}

/// Applies the fault toward the service; the simulator side is closed in
/// every case so the simulated PBX ends at once.
async fn fault(
    fault: Fault,
    pbx: TcpStream,
    mut svc: TcpStream,
    stall_limit: Duration,
    out: &mut Relayed,
) {
    out.cut_fired = true;
    drop(pbx);
    match fault {
        Fault::Close => drop(svc),
        Fault::Reset => {
            linger_zero(&svc);
            drop(svc);
        }
        Fault::Stall => {
            // Read and keep: the service may still write (a command, the
            // exit); only its close ends the stall.
            let start = Instant::now();
            let mut sink = [0u8; 8192];
            let until = start + stall_limit;
            loop {
                match tokio::time::timeout_at(until, svc.read(&mut sink)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        out.stall_ended_after = Some(start.elapsed());
                        return;
                    }
                    Ok(Ok(n)) => out.sent_while_stalled.extend_from_slice(&sink[..n]),
                    Err(_) => return,
                }
            }
        }
    }
}
