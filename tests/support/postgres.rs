//! A real, throwaway PostgreSQL cluster for tests of the `log.postgres` sink.
//!
//! `PgCluster::start()` runs Debian's server binaries (`/usr/lib/postgresql/*/bin`, installed
//! by `.ci/install-deps`; `PG_BIN` overrides the directory): `initdb` into a temporary
//! directory, then `pg_ctl start` on a free loopback port with its unix socket in that
//! directory, so it never meets a system cluster on 5432. TCP logins need a password
//! (scram-sha-256, [`PASSWORD`]): the tests prove the password travels by environment.
//! The server is stopped (`pg_ctl stop -m immediate`) and its directory removed on drop.
//!
//! PostgreSQL refuses to run as root: as root, every server command runs as `nobody`
//! (`runuser`), which owns the temporary directory.
//!
//! Without the binaries, `start` reports the test as skipped (`skip.rs`: a `SKIPPED:` line shown without `--nocapture`) and returns `None`, except under CI
//! (`CI=true`), where missing binaries are a broken machine and panic.

#![allow(dead_code)]

#[path = "skip.rs"]
pub mod skip;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The test role's password; only ever handed over through an environment variable.
pub const PASSWORD: &str = "s3cret-pg-Pa55";
/// The superuser `initdb` creates, and the database the tests use.
pub const USER: &str = "callguard";
/// Attempts when the chosen port was taken between picking it and the server binding it.
const START_ATTEMPTS: usize = 3;

pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_nobody: bool,
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` holding `initdb`.
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port");
    listener.local_addr().expect("local address").port()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl PgCluster {
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = find_bin() else {
            if under_ci() {
                panic!(
                    "PostgreSQL server binaries not found but CI=true: run .ci/install-deps \
                     (Debian package `postgresql`) or set PG_BIN"
                );
            }
            skip::skipped("PostgreSQL not installed");
            return None;
        };
        let as_nobody = is_root();
        let dir = tempfile::Builder::new()
            .prefix("callguard-pg.")
            .tempdir()
            .expect("temp dir");
        let mut cluster = PgCluster {
            bin,
            dir,
            port: 0,
            as_nobody,
        };
        std::fs::write(cluster.dir.path().join("pwfile"), PASSWORD).unwrap();
        if as_nobody {
            cluster.chown_nobody(cluster.dir.path());
            cluster.chown_nobody(&cluster.dir.path().join("pwfile"));
        }
        let data = cluster.data_dir();
        let init = cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "-U",
                USER,
                "--pwfile",
                path_str(&cluster.dir.path().join("pwfile")),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        assert!(init.status.success(), "initdb failed:\n{}", text(&init));
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_loopback_port();
            let start = cluster.pg_ctl_start();
            if start.status.success() {
                let created = Command::new(cluster.bin.join("createdb"))
                    .args(["-h", path_str(cluster.dir.path())])
                    .args(["-p", &cluster.port.to_string(), "-U", USER, USER])
                    .output()
                    .expect("run createdb");
                assert!(created.status.success(), "createdb:\n{}", text(&created));
                return Some(cluster);
            }
            let log =
                std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
            failures.push(format!("{}\n{log}", text(&start)));
        }
        panic!("PostgreSQL did not start:\n{}", failures.join("\n---\n"));
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn chown_nobody(&self, path: &Path) {
        let ok = Command::new("chown")
            .args(["nobody:", path_str(path)])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown nobody {}", path.display());
    }

    /// Runs a server binary, as `nobody` when we are root.
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {tool}: {e}"))
    }

    /// Stops the server as an operator's restart does (`-m fast`: sessions
    /// are ended); [`start_again`](Self::start_again) brings it back.
    pub fn stop_server(&self) {
        let data = self.data_dir();
        let stop = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "fast", "-w", "stop"],
        );
        assert!(stop.status.success(), "pg_ctl stop:\n{}", text(&stop));
    }

    /// Starts the stopped server again, on the same port and data.
    pub fn start_again(&self) {
        let start = self.pg_ctl_start();
        assert!(start.status.success(), "pg_ctl start:\n{}", text(&start));
    }

    /// `pg_ctl start` on this cluster's data, port and socket directory.
    fn pg_ctl_start(&self) -> Output {
        let data = self.data_dir();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            path_str(self.dir.path())
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data),
                "-l",
                path_str(&log),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL callguard is configured with: TCP on loopback, no password in it.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{USER}", self.port)
    }

    /// Runs SQL through `psql` over the unix socket (trusted): for assertions.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", path_str(self.dir.path())])
            .args(["-p", &self.port.to_string(), "-U", USER, "-d", USER])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "psql {sql}:\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self.run(
            "pg_ctl",
            &["-D", path_str(&data), "-m", "immediate", "-w", "stop"],
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
