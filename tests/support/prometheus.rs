//! A real Prometheus server for integration tests.
//!
//! `PrometheusServer::start(target)` runs the `prometheus` binary (Debian's package, installed by
//! `.ci/install-deps`; `PROMETHEUS_BIN` overrides the path) with a config that scrapes `target`
//! every second as job `callguard`, on a free loopback port and a temporary storage directory,
//! and waits until `/-/ready` answers. The process is killed when the value is dropped.
//!
//! Without the binary, `start` reports the test as skipped (`skip.rs`: a `SKIPPED:` line shown without `--nocapture`) and returns `None`, except under CI
//! (`CI=true`), where a missing binary is a broken machine and panics.

#![allow(dead_code)]

#[path = "skip.rs"]
pub mod skip;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Prometheus may take to answer `/-/ready` (it replays an empty WAL: normally < 1 s).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between polls of `/-/ready` and of `wait_for` queries.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Attempts to start when the chosen port was taken between picking it and Prometheus binding it.
const START_ATTEMPTS: usize = 3;

pub struct PrometheusServer {
    child: Child,
    addr: SocketAddr,
    client: reqwest::Client,
    dir: tempfile::TempDir,
}

/// True when running under CI (`CI=true`), where missing tools must fail the run.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Finds an executable on `PATH` (or the path in `env_override`, when set).
pub fn find_binary(name: &str, env_override: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env_override) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

impl PrometheusServer {
    /// Starts Prometheus scraping `scrape_target` (`GET /metrics`) every second, job `callguard`.
    pub async fn start(scrape_target: SocketAddr) -> Option<PrometheusServer> {
        let Some(binary) = find_binary("prometheus", "PROMETHEUS_BIN") else {
            if under_ci() {
                panic!(
                    "prometheus is not installed but CI=true: run .ci/install-deps \
                     (Debian package `prometheus`) or set PROMETHEUS_BIN"
                );
            }
            skip::skipped("prometheus not installed");
            return None;
        };
        // reqwest needs the rustls provider before its first client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .expect("HTTP client");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&binary, scrape_target, client.clone()).await {
                Ok(server) => return Some(server),
                Err(reason) => failures.push(reason),
            }
        }
        panic!(
            "prometheus ({}) did not become ready:\n{}",
            binary.display(),
            failures.join("\n---\n")
        );
    }

    async fn try_start(
        binary: &Path,
        scrape_target: SocketAddr,
        client: reqwest::Client,
    ) -> Result<PrometheusServer, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: callguard\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: [\"{scrape_target}\"]\n"
            ),
        )
        .map_err(|e| format!("write config: {e}"))?;
        let storage = dir.path().join("data");
        let log_path = dir.path().join("prometheus.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_loopback_port()));
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut server = PrometheusServer {
            child,
            addr,
            client,
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "exited with {status} before ready; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ));
            }
            let ready = server
                .client
                .get(format!("http://{addr}/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                // `server` is dropped here, which kills the process.
                return Err(format!(
                    "not ready after {READY_TIMEOUT:?}; log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The address of Prometheus's web API.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs an instant query; the `data` object of a successful answer, or Prometheus's error
    /// (`errorType: error`) or the transport error.
    pub async fn query_raw(&self, expr: &str) -> Result<serde_json::Value, String> {
        let response = self
            .client
            .get(format!("http://{}/api/v1/query", self.addr))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| format!("query {expr:?}: {e}"))?;
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("query {expr:?}: bad JSON: {e}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!(
                "query {expr:?}: {}: {}",
                body["errorType"].as_str().unwrap_or("?"),
                body["error"].as_str().unwrap_or("?")
            ))
        }
    }

    /// The value of an instant query: a scalar, or the first sample of a vector. `None` when the
    /// query fails or the vector is empty.
    pub async fn query(&self, expr: &str) -> Option<f64> {
        let data = self.query_raw(expr).await.ok()?;
        let value = match data["resultType"].as_str()? {
            "scalar" => &data["result"],
            "vector" => &data["result"].as_array()?.first()?["value"],
            _ => return None,
        };
        value[1].as_str()?.parse().ok()
    }

    /// Polls `expr` until it equals `expected` or `timeout` passes; returns the last value seen
    /// (NaN when the query never gave one).
    pub async fn wait_for(&self, expr: &str, expected: f64, timeout: Duration) -> f64 {
        let deadline = Instant::now() + timeout;
        let mut last = f64::NAN;
        loop {
            if let Some(value) = self.query(expr).await {
                last = value;
                if value == expected {
                    return value;
                }
            }
            if Instant::now() >= deadline {
                return last;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Prometheus's own log so far (warnings and errors), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
