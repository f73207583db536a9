//! The shipped `config/callguard.yaml` and its lists, served by the built
//! binary, as a new user runs it.
//!
//! Copied into a temp dir with two changes a test needs: the listeners on
//! port 0, and one rule per configured action in the first system blacklist
//! list file (caller prefix `+1555NN`, NN the action's index), so every
//! action of the shipped file can be reached by a call. The rules are read
//! from the file's own `actions:`, so an action added there is reached
//! without editing a test.
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use callguard::config::types::ActionKind;

use super::server::ServeProcess;

/// The shipped configuration's directory in the source tree.
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

pub struct Shipped {
    pub proc: ServeProcess,
    /// Every action of the shipped file, in file order of names, with its kind.
    pub actions: Vec<(String, ActionKind)>,
    /// The service's stderr (RUST_LOG=warn).
    pub stderr: PathBuf,
    pub db: PathBuf,
}

impl Shipped {
    /// The caller prefix whose rule applies `action`.
    pub fn prefix(&self, action: &str) -> String {
        let i = self
            .actions
            .iter()
            .position(|(a, _)| a == action)
            .expect("a configured action");
        format!("+1555{i:02}")
    }

    /// Panics with the exit status and the end of stderr unless the process runs.
    pub fn assert_alive(&mut self, after: &str) {
        if let Ok(Some(status)) = self.proc.child.try_wait() {
            let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("callguard serve died ({status}) after {after}; stderr ends:\n{tail}");
        }
    }

    /// Open file descriptors of the service, from /proc.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.proc.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Lines of the service's stderr that report a panic.
    pub fn panics(&self) -> Vec<String> {
        std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// `(unique_id, action, end_state)` of every row of the decision log.
    pub fn log_rows(&self) -> Vec<(String, String, Option<String>)> {
        let db = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the decision log");
        let mut st = db
            .prepare("SELECT unique_id, action, end_state FROM calls")
            .unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts `callguard serve` on a copy of the shipped configuration, with
/// `RLIMIT_NOFILE` lowered to `nofile` when given.
pub fn spawn(nofile: Option<u64>) -> Shipped {
    use std::io::BufRead;
    super::server::install_tls_provider();
    let dir = tempfile::tempdir().unwrap();
    let conf_dir = dir.path().join("config");
    copy_dir(Path::new(SHIPPED), &conf_dir);
    let config = conf_dir.join("callguard.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    for port in ["4573", "8084", "9464"] {
        let from = format!(": 127.0.0.1:{port}\n");
        assert_eq!(text.matches(&from).count(), 1, "shipped listen {port}");
        text = text.replace(&from, ": 127.0.0.1:0\n");
    }
    std::fs::write(&config, &text).unwrap();

    let loaded = callguard::config::load(&config).expect("the shipped config loads");
    let actions: Vec<(String, ActionKind)> = loaded
        .raw
        .actions
        .iter()
        .map(|(name, a)| (name.clone(), a.value.kind))
        .collect();
    let system_list = loaded
        .raw
        .lists
        .iter()
        .find_map(|l| l.value.path.clone())
        .expect("the shipped config has a system list file");
    let list = conf_dir.join(system_list);
    let mut csv = std::fs::read_to_string(&list).unwrap();
    if !csv.ends_with('\n') {
        csv.push('\n');
    }
    for (i, (name, _)) in actions.iter().enumerate() {
        csv.push_str(&format!(
            "Chaos-{name},+1555{i:02}*,starts_with,{name},true,chaos harness\n"
        ));
    }
    std::fs::write(&list, csv).unwrap();
    // The log's directory (`../data`), as an install creates it.
    let db = loaded.resolve(&loaded.raw.log.path);
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();

    let stderr = dir.path().join("serve.log");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"));
    cmd.args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    if let Some(n) = nofile {
        // SAFETY: setrlimit only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().expect("spawn callguard serve");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("callguard listening"),
        "unexpected first line: {line:?}; stderr: {}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let addr = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|a| a.parse().ok())
    };
    let proc = ServeProcess {
        agi: addr("agi"),
        esl: addr("esl"),
        http: addr("http"),
        child,
        dir,
        config,
    };
    Shipped {
        proc,
        actions,
        stderr,
        db,
    }
}

/// Waits (bounded) until the service has no session open.
pub async fn settle(http: std::net::SocketAddr, within: Duration) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if super::server::scrape_sum(http, "callguard_sessions_active", &[]).await == 0.0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
