//! Starts the real service in-process on loopback ports chosen by the kernel.

#![allow(dead_code)]

use std::path::PathBuf;

use callguard::app::{self, Running};

/// A config that exercises every action kind on both PBXs.
pub const SCREEN_YAML: &str = r#"
normalize: { default_region: US }
protected: ["911"]
default_trunk: support
actions:
  reject:  { kind: reject, tone: busy }
  congest: { kind: reject, tone: congestion, seconds: 3 }
  hang:    { kind: reject, tone: hangup, cause: 21 }
  msg:     { kind: play, sound: custom/blocked, freeswitch: { sound: "ivr/ivr-call_rejected.wav" } }
  early:   { kind: play, sound: custom/blocked, answer: false }
  notice:  { kind: play, sound: custom/notice, then: continue }
  vm:      { kind: voicemail, mailbox: "100@default", freeswitch: { mailbox: "default example.com 100" } }
  ivr:     { kind: transfer, target: "ivr-main,s,1" }
  vip:     { kind: whisper_bridge, tone: beep, dial: "PJSIP/vip-team", timeout: 30, on_no_answer: vm,
             freeswitch: { dial: "user/1000", tone: "tone_stream://%(200,0,800)" } }
  advise:  { kind: reject, mode: advise }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: VIP, pattern: "+15551234567", action: vip }
    blacklist:
      - { name: Busy, pattern: "+15550000001", action: reject }
      - { name: Congest, pattern: "+15550000002", action: congest }
      - { name: Hang, pattern: "+15550000003", action: hang }
      - { name: Msg, pattern: "+15550000004", action: msg }
      - { name: Early, pattern: "+15550000005", action: early }
      - { name: Notice, pattern: "+15550000006", action: notice }
      - { name: Voicemail, pattern: "+15550000007", action: vm }
      - { name: IVR, pattern: "+15550000008", action: ivr }
      - { name: Advise, pattern: "+15550000009", action: advise }
      - { name: UK, pattern: "+44*", action: reject }
      - { name: Hidden, anonymous: true, action: msg }
  vip-line:
    dids: ["+18005550199"]
    whitelist_mode: exclusive
    blocked_action: reject
    whitelist:
      - { name: CFO, pattern: "+15551111111" }
"#;

/// A config whose look-around rule cannot be evaluated: with a backtracking
/// budget of 0 every evaluation errors, as a pathological pattern would.
pub const BROKEN_REGEX: &str = r#"
policy: { regex_backtrack_limit: 0 }
trunks:
  support:
    blacklist:
      - { name: Intl, pattern: '^(?!\+1)[+][0-9]+$', match: regex }
"#;

/// Starts a service whose decisions cannot finish in time: 3,000
/// look-around rules that do not match take several milliseconds in a test
/// build, more than the 1 ms the decision is given. (20,000 took 100 s to
/// compile in a test build, for nothing the test needs.) `decide_timeout`
/// is the YAML of the PBX's settings, e.g. `agi: { decide_timeout: 1ms }`.
pub async fn start_slow_decisions(decide_timeout: &str) -> TestServer {
    let mut slow = String::from("rule_name,pattern,match_type,action,enabled\n");
    for i in 0..3_000 {
        slow.push_str(&format!(
            "slow-{i},^(?!\\+1)\\+99{i:05}[0-9]*$,regex,,true\n"
        ));
    }
    let yaml = format!(
        "trunks:\n  support:\n    lists: [ {{ path: slow.csv, as: blacklist }} ]\n{decide_timeout}\n"
    );
    start_with(&yaml, &[("slow.csv", &slow)]).await
}

pub struct TestServer {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl TestServer {
    pub fn agi(&self) -> std::net::SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.agi)
            .expect("agi listener")
    }
    pub fn esl(&self) -> std::net::SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.esl)
            .expect("esl listener")
    }
    pub fn http(&self) -> std::net::SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.http)
            .expect("http listener")
    }
    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("running")
    }
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// Writes `yaml` (plus loopback listeners on port 0 and a log in the temp
/// dir, unless it sets its own) and starts the service.
pub async fn start(yaml: &str) -> TestServer {
    start_with(yaml, &[]).await
}

/// Every server a test starts is then talked to with reqwest, which panics if
/// no rustls provider is installed in this process (a spawned binary installs
/// one in its own process only): ring, as the service's
/// `source::install_tls_provider` does. Each way a test starts a server calls it.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Writes `yaml` into a new temp dir with `files` beside it, adding loopback
/// listeners on port 0 and a log file in the dir unless it sets its own.
pub fn write_config(yaml: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let mut text = yaml.to_string();
    if !text.contains("\nlisten:") {
        text.push_str("\nlisten: { agi: 127.0.0.1:0, esl: 127.0.0.1:0, http: 127.0.0.1:0 }\n");
    }
    if !text.contains("\nlog:") {
        text.push_str("\nlog: { path: calls.db }\n");
    }
    let config = dir.path().join("callguard.yaml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

pub async fn start_with(yaml: &str, files: &[(&str, &str)]) -> TestServer {
    let (dir, config) = write_config(yaml, files);
    let running = app::start(&config)
        .await
        .unwrap_or_else(|e| panic!("start: {e}"));
    TestServer {
        running: Some(running),
        dir,
        config,
    }
}

/// The real `callguard serve` binary in its own process, as a PBX sees it.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub agi: Option<std::net::SocketAddr>,
    pub esl: Option<std::net::SocketAddr>,
    pub http: Option<std::net::SocketAddr>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl ServeProcess {
    /// Sends a signal (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit (bounded) and returns its status.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `callguard serve` on `yaml` (listeners on port 0 unless set) and
/// reads the bound addresses from its first line of output.
pub fn spawn_binary(yaml: &str, files: &[(&str, &str)]) -> ServeProcess {
    use std::io::BufRead;
    let (dir, config) = write_config(yaml, files);
    // Cargo names the binary only to callguard's own tests; callguard-sim's
    // (callguard-sim/tests/loadgen.rs) include this file too but start the
    // service in-process.
    let Some(bin) = option_env!("CARGO_BIN_EXE_callguard") else {
        panic!("spawn_binary is for callguard's own tests (CARGO_BIN_EXE_callguard)");
    };
    let mut child = std::process::Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn callguard serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("callguard listening"),
        "unexpected first line: {line:?}"
    );
    let addr = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|a| a.parse().ok())
    };
    ServeProcess {
        agi: addr("agi"),
        esl: addr("esl"),
        http: addr("http"),
        child,
        dir,
        config,
    }
}

/// Reads `/metrics` over HTTP and sums the samples of `family` whose labels
/// contain every `label="value"` in `with`.
pub async fn scrape_sum(http: std::net::SocketAddr, family: &str, with: &[&str]) -> f64 {
    let body = reqwest::get(format!("http://{http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{family}{{")) || l.starts_with(&format!("{family} ")))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Sessions the server has accepted so far (open + finished), from `/metrics`.
pub async fn accepted(http: std::net::SocketAddr, pbx: &str) -> f64 {
    let label = format!("pbx=\"{pbx}\"");
    scrape_sum(http, "callguard_sessions_active", &[&label]).await
        + scrape_sum(http, "callguard_session_duration_seconds_count", &[&label]).await
}

/// Waits (bounded) until fewer than `max_pending` of the `started` calls are
/// still waiting to be accepted, so a load test never overflows the kernel's
/// listen queue however slow the machine is: handshakes beyond it are
/// dropped silently, and a PBX that waits for the server to speak first (as
/// FreeSWITCH does) would then wait forever.
pub async fn pace(http: std::net::SocketAddr, pbx: &str, started: usize, max_pending: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while (started as f64) - accepted(http, pbx).await > max_pending as f64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the server stopped accepting"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
