//! `callguard-loadgen`: places calls the way Asterisk (FastAGI) and FreeSWITCH (outbound
//! ESL) do, byte-exact (the test suite's PBX simulators, built from the captures in
//! `../shared/protocol/`), and reports calls/s, errors and latency percentiles.
//!
//! ```sh
//! callguard-loadgen --pbx agi --target 127.0.0.1:4573 --calls 20000 --concurrency 50
//! callguard-loadgen --pbx esl --target 127.0.0.1:8084 --duration 10 --rate 1500 --json
//! ```
//!
//! Closed loop (no `--rate`): `--concurrency` callers each place calls back to back.
//! Open loop (`--rate`): call *i* is due at start + i/rate whatever happened before, and its
//! latencies are measured from when it was due, so a stalled server shows in the
//! percentiles instead of slowing the generator down (no coordinated omission);
//! `--concurrency` then only caps the calls in flight. Loopback use; every run is bounded
//! by `--calls` and/or `--duration`.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Pbx {
    Agi,
    Esl,
}

#[derive(Parser, Debug)]
#[command(
    name = "callguard-loadgen",
    about = "Places FastAGI / outbound-ESL calls and measures them"
)]
struct Cli {
    /// Which PBX to play.
    #[arg(long, value_enum)]
    pbx: Pbx,
    /// The server's FastAGI or ESL listener.
    #[arg(long)]
    target: SocketAddr,
    /// Calls to place (default 1000 when no --duration is given).
    #[arg(long)]
    calls: Option<u64>,
    /// Seconds to place calls for.
    #[arg(long)]
    duration: Option<f64>,
    /// Callers in flight at once (closed loop), or the cap on calls in flight (open loop).
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Calls per second, open loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Caller numbers, one per line (`#` comments); default: a built-in mix.
    #[arg(long)]
    callers: Option<PathBuf>,
    /// The dialled number (DID).
    #[arg(long, default_value = "+18005550100")]
    did: String,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// The built-in mix: the first 50 are listed in `bench/peers`' blacklist (`+1555000NNNN`),
/// the rest are not; two of three calls come from the unlisted half.
fn builtin_callers() -> Vec<String> {
    let mut v: Vec<String> = (0..50).map(|i| format!("+1555000{i:04}")).collect();
    v.extend((0..100).map(|i| format!("+1415555{i:04}")));
    v
}

fn load_callers(path: &PathBuf) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: Vec<String> = text
        .lines()
        .map(|l| l.split(',').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if v.is_empty() {
        return Err(format!("{}: no caller numbers", path.display()));
    }
    Ok(v)
}

/// One call's outcome: latencies from the intended start, in microseconds.
struct Outcome {
    verdict_us: Option<u64>,
    close_us: u64,
    error: Option<String>,
}

/// Calls placed so far by this process: each call's unique id.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A unique id of its own for every call, in the PBX's form: Asterisk's `<unix
/// seconds>.<sequence>`, FreeSWITCH's UUID (the run's start second, then the sequence),
/// so the decision log tells the calls apart.
fn unique_id(pbx: Pbx) -> String {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    match pbx {
        Pbx::Agi => format!("{start}.{n}"),
        Pbx::Esl => format!("{:08x}-0000-4000-8000-{:012x}", start as u32, n),
    }
}

async fn place(pbx: Pbx, target: SocketAddr, caller: &str, did: &str, late: Duration) -> Outcome {
    let late_us = late.as_micros() as u64;
    let unique_id = unique_id(pbx);
    match pbx {
        Pbx::Agi => {
            // The trunk by name, as the shipped dialplan passes it (ESL: `callguard_trunk`).
            let r = asterisk::AsteriskSim::new()
                .script("callfilter?trunk=support")
                .uniqueid(&unique_id)
                .callerid(caller)
                .set_env("agi_dnid", did)
                .run(target)
                .await;
            let error = r
                .error
                .clone()
                .or_else(|| r.timed_out.then(|| "timed out".to_string()))
                .or_else(|| r.commands.is_empty().then(|| "no command".to_string()))
                .or_else(|| (!r.saw_eof).then(|| "server did not close".to_string()));
            Outcome {
                verdict_us: r
                    .command_times
                    .first()
                    .map(|d| late_us + d.as_micros() as u64),
                close_us: late_us + r.elapsed.as_micros() as u64,
                error,
            }
        }
        Pbx::Esl => {
            let r = freeswitch::SimConfig {
                caller_number: caller.into(),
                destination_number: did.into(),
                unique_id,
                ..freeswitch::SimConfig::default()
            }
            .run(target)
            .await;
            let verdict = r
                .commands
                .iter()
                .position(|c| matches!(c.header("execute-app-name"), Some("multiset" | "set")));
            let error = r
                .error
                .clone()
                .or_else(|| r.timed_out.then(|| "timed out".to_string()))
                .or_else(|| (!r.connect_received).then(|| "no connect".to_string()))
                .or_else(|| verdict.is_none().then(|| "no variables set".to_string()));
            Outcome {
                verdict_us: verdict
                    .and_then(|i| r.command_times.get(i))
                    .map(|d| late_us + d.as_micros() as u64),
                close_us: late_us + r.elapsed.as_micros() as u64,
                error,
            }
        }
    }
}

/// Latencies in µs, every one kept for exact percentiles (4 bytes a call); past
/// [`Samples::CAP`] a uniform sample of them (reservoir sampling), so memory stays bounded
/// however long a run is.
struct Samples {
    kept: Vec<u32>,
    seen: u64,
    max: u32,
    rng: u64,
}

impl Samples {
    /// 16M samples: 64 MiB per series.
    const CAP: usize = 1 << 24;

    fn new() -> Self {
        Samples {
            kept: Vec::new(),
            seen: 0,
            max: 0,
            rng: 0x9E37_79B9_7F4A_7C15,
        }
    }

    fn record(&mut self, us: u64) {
        let v = u32::try_from(us).unwrap_or(u32::MAX);
        self.max = self.max.max(v);
        self.seen += 1;
        if self.kept.len() < Self::CAP {
            self.kept.push(v);
            return;
        }
        // Algorithm R: the n-th value replaces a kept one with probability CAP / n.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let slot = self.rng % self.seen;
        if let Some(k) = self.kept.get_mut(slot as usize) {
            *k = v;
        }
    }

    /// Nearest-rank percentiles and the maximum, in ms.
    fn percentiles(&mut self) -> serde_json::Value {
        self.kept.sort_unstable();
        let ms = |v: u32| f64::from(v) / 1000.0;
        let q = |p: f64| {
            let n = self.kept.len();
            if n == 0 {
                return 0.0;
            }
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            ms(self.kept[rank - 1])
        };
        serde_json::json!({
            "p50_ms": q(0.50),
            "p90_ms": q(0.90),
            "p99_ms": q(0.99),
            "p99_9_ms": q(0.999),
            "max_ms": ms(self.max),
        })
    }
}

struct Stats {
    verdict: Samples,
    close: Samples,
    errors: u64,
    first_errors: Vec<String>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            verdict: Samples::new(),
            close: Samples::new(),
            errors: 0,
            first_errors: Vec::new(),
        }
    }

    fn add(&mut self, o: Outcome) {
        if let Some(e) = o.error {
            self.errors += 1;
            if self.first_errors.len() < 5 {
                self.first_errors.push(e);
            }
            return;
        }
        if let Some(v) = o.verdict_us {
            self.verdict.record(v.max(1));
        }
        self.close.record(o.close_us.max(1));
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let callers = match &cli.callers {
        Some(p) => match load_callers(p) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("callguard-loadgen: {e}");
                std::process::exit(2);
            }
        },
        None => builtin_callers(),
    };
    if cli.concurrency == 0 || cli.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        eprintln!("callguard-loadgen: --concurrency and --rate must be positive");
        std::process::exit(2);
    }
    let max_calls = cli.calls.unwrap_or(if cli.duration.is_some() {
        u64::MAX
    } else {
        1000
    });
    let until = cli
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s.clamp(0.0, 86_400.0)));
    let callers = Arc::new(callers);
    let stats = Arc::new(Mutex::new(Stats::new()));
    let placed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    match cli.rate {
        None => {
            let mut workers = Vec::new();
            for _ in 0..cli.concurrency {
                let (callers, stats, placed, did) = (
                    callers.clone(),
                    stats.clone(),
                    placed.clone(),
                    cli.did.clone(),
                );
                let (pbx, target) = (cli.pbx, cli.target);
                workers.push(tokio::spawn(async move {
                    loop {
                        let i = placed.fetch_add(1, Ordering::Relaxed);
                        if i >= max_calls || until.is_some_and(|u| Instant::now() >= u) {
                            break;
                        }
                        let caller = &callers[(i as usize * 7919) % callers.len()];
                        let o = place(pbx, target, caller, &did, Duration::ZERO).await;
                        stats.lock().await.add(o);
                    }
                }));
            }
            for w in workers {
                let _ = w.await;
            }
        }
        Some(rate) => {
            let gate = Arc::new(Semaphore::new(cli.concurrency));
            let mut tasks = tokio::task::JoinSet::new();
            let mut i: u64 = 0;
            loop {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                if i >= max_calls || until.is_some_and(|u| due >= u) {
                    break;
                }
                tokio::time::sleep_until(due).await;
                let (callers, stats, gate, did) = (
                    callers.clone(),
                    stats.clone(),
                    gate.clone(),
                    cli.did.clone(),
                );
                let (pbx, target) = (cli.pbx, cli.target);
                tasks.spawn(async move {
                    let _slot = gate.acquire_owned().await;
                    let late = due.elapsed();
                    let caller = &callers[(i as usize * 7919) % callers.len()];
                    let o = place(pbx, target, caller, &did, late).await;
                    stats.lock().await.add(o);
                });
                i += 1;
                // Reap finished calls so a long run does not hold them all.
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
            placed.store(i, Ordering::Relaxed);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let mut s = stats.lock().await;
    let done = s.close.seen + s.errors;
    let out = serde_json::json!({
        "pbx": format!("{:?}", cli.pbx).to_lowercase(),
        "target": cli.target.to_string(),
        "calls": done,
        "errors": s.errors,
        "first_errors": s.first_errors,
        "seconds": wall,
        "calls_per_second": done as f64 / wall,
        "concurrency": cli.concurrency,
        "rate": cli.rate,
        "connect_to_verdict": s.verdict.percentiles(),
        "connect_to_close": s.close.percentiles(),
    });
    if cli.json {
        println!("{out}");
    } else {
        println!(
            "{} calls ({} errors) in {:.2} s: {:.0} calls/s",
            done,
            s.errors,
            wall,
            done as f64 / wall
        );
        for (name, key) in [
            ("connect->verdict", "connect_to_verdict"),
            ("connect->close", "connect_to_close"),
        ] {
            let p = &out[key];
            println!(
                "{name:17} p50 {:.3} ms  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
                p["p50_ms"].as_f64().unwrap_or(0.0),
                p["p90_ms"].as_f64().unwrap_or(0.0),
                p["p99_ms"].as_f64().unwrap_or(0.0),
                p["p99_9_ms"].as_f64().unwrap_or(0.0),
                p["max_ms"].as_f64().unwrap_or(0.0),
            );
        }
        for e in &s.first_errors {
            println!("error: {e}");
        }
    }
    if s.errors > 0 {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_bounded() {
        let mut s = Samples::new();
        for us in 1..=1000u64 {
            s.record(us * 1000);
        }
        let p = s.percentiles();
        assert_eq!(p["p50_ms"], 500.0);
        assert_eq!(p["p90_ms"], 900.0);
        assert_eq!(p["p99_9_ms"], 999.0);
        assert_eq!(p["max_ms"], 1000.0);
        assert_eq!(Samples::new().percentiles()["p50_ms"], 0.0);
    }

    /// Every call its own UNIQUE-ID / Unique-ID (issue 27: they were all the capture's).
    #[test]
    fn every_call_has_its_own_unique_id() {
        for pbx in [Pbx::Agi, Pbx::Esl] {
            let ids: std::collections::HashSet<String> = (0..100).map(|_| unique_id(pbx)).collect();
            assert_eq!(ids.len(), 100, "{pbx:?}");
        }
        assert!(unique_id(Pbx::Agi).split_once('.').is_some());
        assert_eq!(unique_id(Pbx::Esl).len(), 36);
    }
}
