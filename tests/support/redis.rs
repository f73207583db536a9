//! A real, throwaway Redis server for tests of the shared velocity counters
//! (`velocity_limits.redis`).
//!
//! `RedisServer::start()` runs Debian's `redis-server` (installed by `.ci/install-deps`;
//! `REDIS_SERVER` names another binary) as a child on a free loopback port, with nothing
//! written to disk (`--save '' --appendonly no`, its directory a temporary one). It can be
//! stopped and started again on the same port mid-test (`stop`, `restart`), and is killed
//! on drop: nothing is left listening.
//!
//! Without the binary, `start` prints a "skipping" line and returns `None`, except under CI
//! (`CI=true`), where a missing binary is a broken machine and panics.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Attempts when the chosen port was taken between picking it and the server binding it.
const START_ATTEMPTS: usize = 3;

pub struct RedisServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `REDIS_SERVER`, else `redis-server` on the PATH or in /usr/bin.
fn find_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("REDIS_SERVER") {
        let bin = PathBuf::from(bin);
        return bin.is_file().then_some(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        let Some(bin) = find_bin() else {
            if under_ci() {
                panic!(
                    "redis-server not found but CI=true: run .ci/install-deps \
                     (Debian package `redis-server`) or set REDIS_SERVER"
                );
            }
            println!("skipping: redis-server not installed (run .ci/install-deps)");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer {
            bin,
            dir,
            port: 0,
            child: None,
        };
        for attempt in 1..=START_ATTEMPTS {
            server.port = free_loopback_port();
            if server.spawn() {
                return Some(server);
            }
            println!(
                "redis-server did not start on port {} (attempt {attempt})",
                server.port
            );
        }
        panic!("redis-server did not start in {START_ATTEMPTS} attempts");
    }

    /// Starts the child on `self.port`; true once it answers PING.
    fn spawn(&mut self) -> bool {
        let child = Command::new(&self.bin)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if self.command(&["PING"]).is_ok_and(|r| r == "+PONG") {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0`, for `velocity_limits.redis`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL, as a crash would) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (nothing was saved).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.spawn() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start again on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends one command and returns the first line of the answer (RESP:
    /// `+PONG`, `:3`, `*1`, `$12`, `-ERR …`). Bounded by a 5 s timeout.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes())?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while !answer.ends_with(b"\r\n") && answer.len() < 1 << 20 {
            let n = s.read(&mut buf)?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        Ok(text.lines().next().unwrap_or_default().to_string())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
