//! Heap allocations per screened call (issue 26 item 3): the real service
//! in-process (as `bench/compare.sh` configures it: a 100,000-number
//! blacklist, its decision log, half the callers listed), driven over real
//! loopback sockets by the PBX simulators and a keep-alive HTTP client for the
//! SIP edge. A counting global allocator counts every allocation (and
//! reallocation) made on any thread but the client's, so the figure is the
//! server's whole cost per call: accept, session, decision, variables, plan,
//! metrics and the decision log's writer (flushed before each reading).
//!
//!     cargo bench --bench allocs
//!     CALLS=5000 cargo bench --bench allocs
//!     ONLY=esl LISTED=1000 CALLS=200 valgrind --tool=dhat target/release/deps/allocs-*  # where
//!
//! Goal: at most 20 allocations per screened call. Not a timing: the counts
//! are the same on a loaded machine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use callguard::app;
use callguard_sim::{asterisk::AsteriskSim, freeswitch};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the client's thread: its allocations are not the server's.
    static CLIENT: Cell<bool> = const { Cell::new(false) };
}

fn counted(bytes: usize) {
    if !CLIENT.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Numbers on the list (`LISTED`, default 100,000 as in `bench/compare.sh`): a smaller list
/// only starts faster (under valgrind's dhat, to see where the allocations are).
fn listed() -> u64 {
    std::env::var("LISTED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}
const CONC: usize = 16;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("rule_name,pattern,match_type,action,enabled,notes\n");
    for i in 0..listed() {
        csv.push_str(&format!("B{i},+1555{i:07},exact,reject,true,\n"));
    }
    std::fs::write(dir.join("blocked.csv"), csv).unwrap();
    let yaml = "normalize: { default_region: US }\n\
default_trunk: support\n\
trunks:\n  support:\n    dids: [\"+18005550100\"]\n    lists:\n      - { path: blocked.csv, as: blacklist, name: blocked }\n\
listen: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }\n\
log: { path: calls.db }\n";
    let cfg = dir.join("callguard.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    cfg
}

/// The caller of call `i`: even calls listed (blocked), odd ones not.
fn caller(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("+1555{:07}", (i * 7919) as u64 % listed())
    } else {
        format!("+1415555{:04}", i % 10_000)
    }
}

type Job = fn(SocketAddr, usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>>;

fn agi_call(
    addr: SocketAddr,
    i: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>> {
    Box::pin(async move {
        let r = AsteriskSim::new()
            .callerid(&caller(i))
            .dnid("+18005550100")
            .script("callfilter?trunk=support")
            .uniqueid(&format!("agi-{i}"))
            .run(addr)
            .await;
        r.error.is_none() && r.variables.contains_key("CALLGUARD_VERDICT")
    })
}

fn esl_call(
    addr: SocketAddr,
    i: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>> {
    Box::pin(async move {
        let r = freeswitch::SimConfig {
            caller_number: caller(i),
            destination_number: "+18005550100".into(),
            unique_id: format!("esl-{i}"),
            event_delay: Duration::from_millis(1),
            ..freeswitch::SimConfig::default()
        }
        .run(addr)
        .await;
        r.error.is_none() && r.variable("callguard_verdict").is_some()
    })
}

/// `n` calls of `job`, `CONC` at a time, on the client's (uncounted) thread.
fn drive(rt: &tokio::runtime::Runtime, addr: SocketAddr, n: usize, job: Job) -> usize {
    rt.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut ok = 0;
                let mut next = 0;
                let mut running = tokio::task::JoinSet::new();
                while next < n || !running.is_empty() {
                    while next < n && running.len() < CONC {
                        running.spawn_local(job(addr, next));
                        next += 1;
                    }
                    if let Some(Ok(true)) = running.join_next().await {
                        ok += 1;
                    }
                }
                ok
            })
            .await
    })
}

/// `n` edge decisions over `CONC` keep-alive connections (blocking sockets,
/// one thread each, all marked as the client).
fn edge(addr: SocketAddr, n: usize) -> usize {
    let per = n / CONC;
    let threads: Vec<_> = (0..CONC)
        .map(|t| {
            std::thread::spawn(move || {
                CLIENT.with(|c| c.set(true));
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.set_nodelay(true).unwrap();
                let mut ok = 0;
                let mut buf = vec![0u8; 16 * 1024];
                for k in 0..per {
                    let i = t * per + k;
                    let body = format!(
                        "{{\"call_id\":\"edge-{i}\",\"caller\":\"{}\",\"callee\":\"+18005550100\"}}",
                        caller(i)
                    );
                    let req = format!(
                        "POST /api/v1/edge/decide HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    s.write_all(req.as_bytes()).unwrap();
                    if read_response(&mut s, &mut buf) {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).sum()
}

/// Reads one HTTP/1.1 response (Content-Length framed); true on 200.
fn read_response(s: &mut TcpStream, buf: &mut [u8]) -> bool {
    let mut have = 0;
    loop {
        let Ok(n) = s.read(&mut buf[have..]) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        have += n;
        let text = &buf[..have];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if have >= end + 4 + len {
                return head.starts_with("http/1.1 200");
            }
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let calls: usize = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
        / CONC
        * CONC;
    CLIENT.with(|c| c.set(true));
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let running = server.block_on(app::start(&cfg)).expect("start");
    let log = running.state.log.clone().expect("the decision log");
    let flush = || {
        server.block_on(async {
            // Lets the sessions' last writes land, then the log's batch.
            tokio::time::sleep(Duration::from_millis(100)).await;
            log.flush().await.expect("flush");
        })
    };
    println!(
        "allocations per screened call ({calls} calls, {CONC} in flight, half listed; server threads only)"
    );
    let jobs: [(&str, Option<SocketAddr>, Option<Job>); 3] = [
        ("FastAGI", running.agi, Some(agi_call as Job)),
        ("ESL", running.esl, Some(esl_call as Job)),
        ("edge", running.http, None),
    ];
    let only = std::env::var("ONLY").unwrap_or_default();
    for (name, addr, job) in jobs {
        if !only.is_empty() && !name.eq_ignore_ascii_case(&only) {
            continue;
        }
        let addr = addr.expect("listener");
        let run = |n: usize| match job {
            Some(job) => drive(&client, addr, n, job),
            None => edge(addr, n),
        };
        // Warm up: lazily built handles, pools, the log's statement cache.
        run(CONC * 20);
        flush();
        let (a0, b0) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        let ok = run(calls);
        flush();
        let (a1, b1) = (
            ALLOCS.load(Ordering::Relaxed),
            BYTES.load(Ordering::Relaxed),
        );
        let n = calls.max(1) as f64;
        println!(
            "{name:8} {:7.1} allocations, {:8.0} bytes per call ({ok}/{calls} calls answered)",
            (a1 - a0) as f64 / n,
            (b1 - b0) as f64 / n,
        );
    }
    server.block_on(running.shutdown());
}
