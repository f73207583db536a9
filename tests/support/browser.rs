//! A real headless Chromium for the web console's tests, driven over
//! WebDriver (chromedriver), with the few commands of `webdriver.rs`.
//!
//! `Browser::start()` runs Debian's `chromedriver` (`CHROMEDRIVER_BIN`
//! overrides the path) on a free loopback port and opens a session on
//! Debian's `chromium` (`CHROMIUM_BIN`) headless, with a fresh profile
//! directory and everything that would reach the network switched off. Both
//! are installed by `.ci/install-deps`. Without them `start` prints a
//! `SKIPPED:` line (`skip.rs`, shown without `--nocapture`) and returns `None`, except under CI (`CI=true`), where a
//! missing browser is a broken machine and panics — as
//! `support/prometheus.rs` does for Prometheus.

#![allow(dead_code)]

#[path = "skip.rs"]
pub mod skip;
#[path = "webdriver.rs"]
pub mod webdriver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use webdriver::{Client, Element};

/// How long chromedriver may take to answer `/status`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a page may take to show what a test waits for.
pub const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);
/// Attempts when the chosen port was taken between picking and binding it.
const START_ATTEMPTS: usize = 3;

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

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// A headless Chromium session with a 1280×800 window, or `None` (skip).
    pub async fn start() -> Option<Browser> {
        let chromium = find_binary("chromium", "CHROMIUM_BIN");
        let driver = find_binary("chromedriver", "CHROMEDRIVER_BIN");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            if under_ci() {
                panic!(
                    "chromium or chromedriver is not installed but CI=true: run .ci/install-deps \
                     (Debian packages `chromium` and `chromium-driver`) or set CHROMIUM_BIN / CHROMEDRIVER_BIN"
                );
            }
            skip::skipped("chromium/chromedriver not installed");
            return None;
        };
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&chromium, &driver).await {
                Ok(b) => return Some(b),
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "headless chromium did not start:\n{}",
            failures.join("\n---\n")
        );
    }

    async fn try_start(chromium: &Path, driver_bin: &Path) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| format!("profile dir: {e}"))?;
        let port = free_loopback_port();
        let log = profile.path().join("chromedriver.log");
        let mut driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", driver_bin.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        // reqwest needs the rustls provider before its first client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Ok(Some(status)) = driver.try_wait() {
                return Err(format!(
                    "chromedriver exited: {status}; log: {}",
                    read(&log)
                ));
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                return Err(format!("chromedriver not ready; log: {}", read(&log)));
            }
            tokio::time::sleep(POLL).await;
        }
        let user_data = profile.path().join("chromium");
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--hide-scrollbars".into(),
            "--window-size=1280,800".into(),
            format!("--user-data-dir={}", user_data.display()),
        ];
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
        });
        // Every WebDriver command is bounded (a screenshot of a tall page takes a while).
        let driver_http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        let client = Client::connect(driver_http, &url, caps).await;
        match client {
            Ok(client) => Ok(Browser {
                client,
                driver,
                _profile: profile,
            }),
            Err(e) => {
                let _ = driver.kill();
                let _ = driver.wait();
                Err(format!("new session: {e}; log: {}", read(&log)))
            }
        }
    }

    /// Ends the session (closing Chromium), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Opens `url` and waits for the console's screen heading.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(css).await {
                Ok(e) => return e,
                Err(e) if Instant::now() > deadline => {
                    panic!("no element {css:?} within {WAIT:?}: {e}")
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Waits until the text of the first element matching `css` contains
    /// `needle`; returns that text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        loop {
            if let Ok(e) = self.client.find(css).await
                && let Ok(t) = e.text().await
            {
                if t.contains(needle) {
                    return t;
                }
                last = t;
            }
            assert!(
                Instant::now() < deadline,
                "{css:?} never contained {needle:?}; last text: {last:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css:?}: {e}"));
    }

    /// Replaces the value of the input matching `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css:?}: {e}"));
        e.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css:?}: {e}"));
    }

    /// Chooses the option with value `value` of the select matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value:?} in {css:?}: {e}"));
    }

    /// Saves a PNG of the viewport as `NAME.png` and checks it is one: under
    /// `target/tmp/console/`, so that `cargo test` leaves the tree clean, or,
    /// with `CALLGUARD_REFRESH_SCREENSHOTS=1`, as `docs/console/NAME.png` of
    /// the source tree (the README shows them): the command that refreshes them.
    /// The window grows to the page's height first (at most 2400 px), so
    /// the picture shows the whole screen, then returns to its size.
    pub async fn screenshot(&self, name: &str) {
        let (w, h) = self.client.get_window_size().await.expect("window size");
        let (w, h) = (w as u32, h as u32);
        let page = self
            .client
            .execute("return document.documentElement.scrollHeight")
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0) as u32;
        // The outer window is taller than the page area by the (headless) frame.
        let inner = self
            .client
            .execute("return window.innerHeight")
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(u64::from(h)) as u32;
        let frame = h.saturating_sub(inner);
        let grow = page > inner;
        if grow {
            let _ = self
                .client
                .set_window_size(w, (page + frame).min(2400))
                .await;
        }
        let png = self.client.screenshot().await.expect("screenshot");
        if grow {
            let _ = self.client.set_window_size(w, h).await;
        }
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let dir = if std::env::var_os("CALLGUARD_REFRESH_SCREENSHOTS").is_some_and(|v| v == "1") {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console")
        } else {
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("console")
        };
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.lines().rev().take(20).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}
