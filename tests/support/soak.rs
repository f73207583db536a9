//! The soak load driver, shared by `tests/soak.rs` (a few hundred calls) and
//! `examples/soak.rs` (the `bench/soak.sh` run, minutes long).
//!
//! Steady calls through both protocols, byte-exact through the PBX
//! simulators (`callguard_sim::asterisk`, `::freeswitch`), while one list is replaced
//! through the admin API (PUT) at a fixed pace and the config file is edited
//! (written beside, renamed over). Every call must be decided: a verdict, no
//! `CALLGUARD_ERROR`, no protocol error. Where no list change overlapped a
//! call, its verdict must be the one the current list gives.
//!
//! Needs `asterisk` and `freeswitch` (the simulators) at the crate root:
//! `use callguard_sim::{asterisk, freeswitch};`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::asterisk::AsteriskSim;
use crate::freeswitch::SimConfig;

/// Numbers the churning list rotates through.
pub const CHURN_SPAN: u64 = 100;
/// How many of them each generation of the list blocks.
pub const CHURN_BLOCKED: u64 = 50;
/// The token variable the soak config names.
pub const TOKEN_ENV: &str = "CALLGUARD_SOAK_TOKEN";
/// The line of the config that edits replace.
const EDIT_MARK: &str = "# soak-edit";

/// The soak config; `listen:` and `log:` are the caller's to add.
pub fn config_yaml() -> String {
    format!(
        r#"normalize: {{ default_region: US }}
default_trunk: support
# The machine is shared: a decision gets 1 s before failing open, so that
# CPU contention from elsewhere is not counted as an undecided call.
agi: {{ decide_timeout: 1s }}
esl: {{ decide_timeout: 1s }}
http:
  tokens:
    - {{ name: soak, token_env: {TOKEN_ENV} }}
trunks:
  support:
    dids: ["+18005550100"]
    blacklist:
      - {{ name: Static, pattern: "+15550000001" }}
      - {{ name: Edited, pattern: "+15559990000" }} {EDIT_MARK}
    lists:
      - {{ path: lists/churn.csv, as: blacklist, name: churn }}
"#
    )
}

/// The churn list's caller number `i` (0 ≤ i < CHURN_SPAN).
pub fn churn_number(i: u64) -> String {
    format!("+1555300{:04}", i)
}

/// Whether generation `g` of the churn list blocks churn number `i`.
pub fn churn_blocks(g: u64, i: u64) -> bool {
    (i + CHURN_SPAN - g % CHURN_SPAN) % CHURN_SPAN < CHURN_BLOCKED
}

/// Generation `g` of the churn list, in the import CSV format.
pub fn churn_csv(g: u64) -> String {
    let mut csv = String::from("rule_name,pattern,match_type,action,enabled,notes\n");
    for i in 0..CHURN_SPAN {
        if churn_blocks(g, i) {
            csv.push_str(&format!(
                "churn-{i},{},exact,reject,true,generation {g}\n",
                churn_number(i)
            ));
        }
    }
    csv
}

/// Writes the soak config (with `extra` appended) and generation 0 of the
/// list into `dir`; returns the config path.
pub fn write_config(dir: &Path, extra: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("lists"))?;
    std::fs::write(dir.join("lists/churn.csv"), churn_csv(0))?;
    let config = dir.join("callguard.yaml");
    std::fs::write(&config, format!("{}{extra}", config_yaml()))?;
    Ok(config)
}

/// Rewrites the edited rule of the config at `path` to `n`, the way an
/// editor or a deploy tool does: a new file beside it, renamed over it.
pub fn edit_config(path: &Path, n: u64) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut out = String::with_capacity(text.len());
    let mut found = false;
    for line in text.lines() {
        if line.contains(EDIT_MARK) {
            found = true;
            out.push_str(&format!(
                "      - {{ name: Edited, pattern: \"+1555999{:04}\" }} {EDIT_MARK}\n",
                n % 10_000
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !found {
        return Err(std::io::Error::other(format!(
            "{}: no line marked {EDIT_MARK}",
            path.display()
        )));
    }
    let tmp = path.with_extension("yaml.soak-tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

/// Where and how hard to drive.
#[derive(Clone, Debug)]
pub struct Plan {
    pub agi: SocketAddr,
    pub esl: SocketAddr,
    pub http: SocketAddr,
    pub token: String,
    /// The config file to edit (None: no edits).
    pub config: Option<PathBuf>,
    /// Stop after this long …
    pub duration: Option<Duration>,
    /// … or after this many calls per protocol, whichever first.
    pub calls: Option<u64>,
    /// Concurrent callers per protocol.
    pub lanes: usize,
    /// At most this many calls per second per protocol (None: as fast as
    /// the lanes go). A soak is steady load, not a saturation test.
    pub rate: Option<f64>,
    pub put_every: Duration,
    pub edit_every: Duration,
    /// The server's pid, for RSS and open-fd samples (None: no samples).
    pub pid: Option<u32>,
}

/// RSS and open fds of the server at one moment.
#[derive(Clone, Debug)]
pub struct Sample {
    pub label: &'static str,
    pub at: Duration,
    pub rss_kb: u64,
    pub fds: u64,
}

/// What the run did.
#[derive(Debug, Default)]
pub struct Report {
    pub agi_calls: u64,
    pub esl_calls: u64,
    pub blocked: u64,
    /// Calls that went wrong in any way (error, timeout, no verdict, fail-open).
    pub failed: u64,
    /// Calls whose verdict was checked against the list generation.
    pub checked: u64,
    pub puts: u64,
    pub put_failures: u64,
    pub edits: u64,
    /// `callguard_config_reloads_total` during the run, by result.
    pub reloads: u64,
    pub reload_failures: u64,
    pub samples: Vec<Sample>,
    /// The first few failures, described.
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn calls(&self) -> u64 {
        self.agi_calls + self.esl_calls
    }

    /// The table `bench/soak.sh` prints and docs/reliability.md records.
    pub fn table(&self) -> String {
        let mut t = String::new();
        t.push_str("| measure | value |\n|---|---|\n");
        let rows: Vec<(String, String)> = vec![
            (
                "duration".into(),
                format!("{:.0} s", self.elapsed.as_secs_f64()),
            ),
            (
                "calls (FastAGI + ESL)".into(),
                format!("{} ({} + {})", self.calls(), self.agi_calls, self.esl_calls),
            ),
            ("calls blocked".into(), self.blocked.to_string()),
            (
                "verdicts checked against the current list".into(),
                self.checked.to_string(),
            ),
            ("failed or undecided calls".into(), self.failed.to_string()),
            (
                "list replacements (PUT), failed".into(),
                format!("{}, {}", self.puts, self.put_failures),
            ),
            ("config file edits".into(), self.edits.to_string()),
            (
                "reloads (success, failure)".into(),
                format!("{}, {}", self.reloads, self.reload_failures),
            ),
        ];
        for (k, v) in rows {
            t.push_str(&format!("| {k} | {v} |\n"));
        }
        if !self.samples.is_empty() {
            t.push_str("\n| sample | at | RSS | open fds |\n|---|---|---|---|\n");
            for s in &self.samples {
                t.push_str(&format!(
                    "| {} | {:.0} s | {:.1} MiB | {} |\n",
                    s.label,
                    s.at.as_secs_f64(),
                    s.rss_kb as f64 / 1024.0,
                    s.fds
                ));
            }
        }
        t
    }
}

/// RSS (kB) and open fds of `pid`, from /proc.
pub fn sample_proc(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// Sums the samples of `family` with every `label="value"` of `with`.
pub async fn scrape(http: SocketAddr, family: &str, with: &[&str]) -> f64 {
    let Ok(r) = reqwest::get(format!("http://{http}/metrics")).await else {
        return f64::NAN;
    };
    let body = r.text().await.unwrap_or_default();
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[derive(Default)]
struct Shared {
    /// PUTs sent (the generation of the newest one).
    put_started: AtomicU64,
    /// The newest generation answered 200 (applied: a PUT answers after its reload).
    put_applied: AtomicU64,
    /// Calls claimed per protocol.
    calls: [AtomicU64; 2],
    stop: AtomicBool,
    report: Mutex<Report>,
}

impl Shared {
    fn fail(&self, what: String) {
        let mut r = self.report.lock().unwrap();
        r.failed += 1;
        if r.failures.len() < 20 {
            r.failures.push(what);
        }
    }

    /// Claims the next call; false once the plan's count is reached.
    fn claim(&self, plan: &Plan, proto: Proto) -> bool {
        if self.stop.load(Ordering::SeqCst) {
            return false;
        }
        let n = self.calls[proto as usize].fetch_add(1, Ordering::SeqCst);
        plan.calls.is_none_or(|max| n < max)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Agi,
    Esl,
}

/// The caller of call `n`, and the verdict it must get if `Some(g)` is the
/// list generation in force throughout (None: any verdict will do).
fn caller(n: u64) -> (String, Box<dyn Fn(u64) -> &'static str + Send>) {
    match n % 4 {
        0 => ("+15550000001".into(), Box::new(|_| "block")),
        1 => (format!("+1555400{:04}", n % 10_000), Box::new(|_| "allow")),
        _ => {
            let i = (n / 4 * 7 + n) % CHURN_SPAN;
            (
                churn_number(i),
                Box::new(move |g| if churn_blocks(g, i) { "block" } else { "allow" }),
            )
        }
    }
}

/// One call; Ok(verdict) or a description of what went wrong.
async fn one_call(proto: Proto, plan: &Plan, caller: &str, id: u64) -> Result<String, String> {
    match proto {
        Proto::Agi => {
            let r = AsteriskSim::new()
                .script("callguard?trunk=support")
                .callerid(caller)
                .uniqueid(&format!("1795432537.{id}"))
                .timeout(Duration::from_secs(30))
                .run(plan.agi)
                .await;
            if r.error.is_some() || r.timed_out || !r.saw_eof {
                return Err(format!(
                    "FastAGI {caller}: error {:?}, timed out {}, closed {}",
                    r.error, r.timed_out, r.saw_eof
                ));
            }
            if let Some(e) = r.variables.get("CALLGUARD_ERROR") {
                return Err(format!("FastAGI {caller}: undecided ({e})"));
            }
            r.variables
                .get("CALLGUARD_VERDICT")
                .cloned()
                .ok_or_else(|| format!("FastAGI {caller}: no verdict: {:?}", r.commands))
        }
        Proto::Esl => {
            let r = SimConfig {
                caller_number: caller.into(),
                unique_id: format!("soak-{id:012}"),
                overall_timeout: Duration::from_secs(30),
                ..SimConfig::default()
            }
            .run(plan.esl)
            .await;
            if r.error.is_some() || r.timed_out {
                return Err(format!(
                    "ESL {caller}: error {:?}, timed out {}",
                    r.error, r.timed_out
                ));
            }
            if let Some(e) = r.variable("callguard_error") {
                return Err(format!("ESL {caller}: undecided ({e})"));
            }
            r.variable("callguard_verdict")
                .map(str::to_string)
                .ok_or_else(|| format!("ESL {caller}: no verdict"))
        }
    }
}

async fn lane(proto: Proto, index: u64, plan: Arc<Plan>, shared: Arc<Shared>) {
    let mut n = 0u64;
    let mut pace = plan.rate.map(|r| {
        let mut t = tokio::time::interval(Duration::from_secs_f64(plan.lanes as f64 / r.max(0.1)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    while shared.claim(&plan, proto) {
        if let Some(t) = pace.as_mut() {
            t.tick().await;
        }
        n += 1;
        // Unique per call: the decision log keys calls by their id.
        let id = (n * 64 + index) * 2 + proto as u64;
        let (number, expect) = caller(n + index);
        let started = shared.put_started.load(Ordering::SeqCst);
        let applied = shared.put_applied.load(Ordering::SeqCst);
        let result = one_call(proto, &plan, &number, id).await;
        let still = shared.put_started.load(Ordering::SeqCst);
        match result {
            Err(e) => shared.fail(e),
            Ok(verdict) => {
                let mut r = shared.report.lock().unwrap();
                match proto {
                    Proto::Agi => r.agi_calls += 1,
                    Proto::Esl => r.esl_calls += 1,
                }
                if verdict == "block" {
                    r.blocked += 1;
                }
                // No list change began or was pending during the call: the
                // generation in force is known.
                if started == applied && still == started {
                    r.checked += 1;
                    let want = expect(started);
                    if verdict != want {
                        drop(r);
                        shared.fail(format!(
                            "{proto:?} {number}: verdict {verdict}, list generation {started} says {want}"
                        ));
                    }
                }
            }
        }
    }
}

async fn put_loop(plan: Arc<Plan>, shared: Arc<Shared>) {
    let client = reqwest::Client::new();
    let url = format!("http://{}/api/v1/lists/churn", plan.http);
    let mut tick = tokio::time::interval(plan.put_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    while !shared.stop.load(Ordering::SeqCst) {
        tick.tick().await;
        let g = shared.put_started.fetch_add(1, Ordering::SeqCst) + 1;
        let r = client
            .put(&url)
            .bearer_auth(&plan.token)
            .header("content-type", "text/csv")
            .body(churn_csv(g))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let mut rep = shared.report.lock().unwrap();
        match r {
            Ok(r) if r.status().is_success() => {
                rep.puts += 1;
                shared.put_applied.store(g, Ordering::SeqCst);
            }
            Ok(r) => {
                rep.put_failures += 1;
                if rep.failures.len() < 20 {
                    rep.failures
                        .push(format!("PUT generation {g}: {}", r.status()));
                }
                // The list is unknown now: no call is checked until the next PUT.
            }
            Err(e) => {
                rep.put_failures += 1;
                if rep.failures.len() < 20 {
                    rep.failures.push(format!("PUT generation {g}: {e}"));
                }
            }
        }
    }
}

async fn edit_loop(plan: Arc<Plan>, shared: Arc<Shared>, config: PathBuf) {
    let mut tick = tokio::time::interval(plan.edit_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut n = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        tick.tick().await;
        n += 1;
        let done = edit_config(&config, n);
        let mut rep = shared.report.lock().unwrap();
        match done {
            Ok(()) => rep.edits += 1,
            Err(e) => {
                rep.failed += 1;
                rep.failures.push(format!("config edit {n}: {e}"));
            }
        }
    }
}

fn sample(plan: &Plan, label: &'static str, t0: Instant) -> Option<Sample> {
    let (rss_kb, fds) = sample_proc(plan.pid?)?;
    Some(Sample {
        label,
        at: t0.elapsed(),
        rss_kb,
        fds,
    })
}

/// Drives the plan to its end and reports.
pub async fn run(plan: Plan) -> Report {
    let plan = Arc::new(plan);
    let shared = Arc::new(Shared::default());
    let t0 = Instant::now();
    let reloads = |result: &'static str| {
        let http = plan.http;
        async move { scrape(http, "callguard_config_reloads_total", &[result]).await }
    };
    let ok0 = reloads("result=\"success\"").await;
    let bad0 = reloads("result=\"failure\"").await;
    let mut samples: Vec<Sample> = sample(&plan, "start", t0).into_iter().collect();

    let mut lanes = tokio::task::JoinSet::new();
    for i in 0..plan.lanes as u64 {
        lanes.spawn(lane(Proto::Agi, i, plan.clone(), shared.clone()));
        lanes.spawn(lane(Proto::Esl, i, plan.clone(), shared.clone()));
    }
    let mut background = tokio::task::JoinSet::new();
    background.spawn(put_loop(plan.clone(), shared.clone()));
    if let Some(config) = plan.config.clone() {
        background.spawn(edit_loop(plan.clone(), shared.clone(), config));
    }
    // The clock: a middle sample, then stop at the end of the duration.
    if let Some(d) = plan.duration {
        let (plan2, shared2) = (plan.clone(), shared.clone());
        let clock = tokio::spawn(async move {
            let mid = tokio::time::sleep(d / 2);
            tokio::select! {
                _ = mid => {}
                _ = wait_stop(&shared2) => return None,
            }
            let s = sample(&plan2, "middle", t0);
            tokio::select! {
                _ = tokio::time::sleep(d - d / 2) => {}
                _ = wait_stop(&shared2) => {}
            }
            shared2.stop.store(true, Ordering::SeqCst);
            s
        });
        while lanes.join_next().await.is_some() {}
        shared.stop.store(true, Ordering::SeqCst);
        if let Ok(Some(s)) = clock.await {
            samples.push(s);
        }
    } else {
        while lanes.join_next().await.is_some() {}
    }
    shared.stop.store(true, Ordering::SeqCst);
    while background.join_next().await.is_some() {}
    // Let the service settle (sessions closed, the last reload done) before
    // the end sample: the last PUT has been answered already.
    tokio::time::sleep(Duration::from_millis(500)).await;
    samples.extend(sample(&plan, "end", t0));
    let ok1 = reloads("result=\"success\"").await;
    let bad1 = reloads("result=\"failure\"").await;

    let mut report = std::mem::take(&mut *shared.report.lock().unwrap());
    report.reloads = (ok1 - ok0).max(0.0) as u64;
    report.reload_failures = (bad1 - bad0).max(0.0) as u64;
    report.samples = samples;
    report.elapsed = t0.elapsed();
    report
}

async fn wait_stop(shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// SIGTERM under load: a file of its own (this one would pass 600 lines).
#[path = "soak/shutdown.rs"]
mod shutdown;
#[allow(unused_imports)] // examples/flood.rs includes this file but runs no shutdown
pub use shutdown::{ShutdownReport, sigterm_under_load};
