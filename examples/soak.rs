//! The load driver of `bench/soak.sh`: steady calls through FastAGI and ESL
//! (byte-exact, through the test suite's PBX simulators) while a list is
//! replaced through the admin API and the config file is edited; then
//! SIGTERM under load. Loopback only, bounded in time and count.
//!
//! ```sh
//! cargo run --release --example soak -- init DIR
//! cargo run --release --example soak -- run --agi A --esl E --http H --config DIR/callguard.yaml --pid PID --minutes 10
//! cargo run --release --example soak -- sigterm --agi A --esl E --http H --pid PID
//! ```

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "../tests/support/soak.rs"]
mod soak;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the soak config and generation 0 of its list into DIR.
    Init {
        dir: PathBuf,
        /// YAML appended to the config (listeners, log path).
        #[arg(long, default_value = "")]
        extra: String,
    },
    /// Drives steady load with list PUTs and config edits, prints the table.
    Run {
        #[arg(long)]
        agi: SocketAddr,
        #[arg(long)]
        esl: SocketAddr,
        #[arg(long)]
        http: SocketAddr,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        pid: Option<u32>,
        /// Length of the run (fractions allowed).
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Concurrent callers per protocol.
        #[arg(long, default_value_t = 8)]
        lanes: usize,
        /// Calls per second per protocol, at most.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Milliseconds between list replacements.
        #[arg(long, default_value_t = 1000)]
        put_ms: u64,
        /// Milliseconds between config edits.
        #[arg(long, default_value_t = 10_000)]
        edit_ms: u64,
    },
    /// Long calls on both protocols, SIGTERM to PID once they are open:
    /// they must finish, new connections must be refused.
    Sigterm {
        #[arg(long)]
        agi: SocketAddr,
        #[arg(long)]
        esl: SocketAddr,
        #[arg(long)]
        http: SocketAddr,
        #[arg(long)]
        pid: i32,
        #[arg(long, default_value_t = 8)]
        lanes: usize,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let ok = match Cli::parse().command {
        Command::Init { dir, extra } => match soak::write_config(&dir, &extra) {
            Ok(path) => {
                println!("{}", path.display());
                true
            }
            Err(e) => {
                eprintln!("soak init: {e}");
                false
            }
        },
        Command::Run {
            agi,
            esl,
            http,
            config,
            pid,
            minutes,
            lanes,
            rate,
            put_ms,
            edit_ms,
        } => {
            let Ok(token) = std::env::var(soak::TOKEN_ENV) else {
                eprintln!("soak run: set {} to the admin token", soak::TOKEN_ENV);
                return std::process::ExitCode::from(2);
            };
            let report = soak::run(soak::Plan {
                agi,
                esl,
                http,
                token,
                config: Some(config),
                duration: Some(Duration::from_secs_f64(
                    (minutes * 60.0).clamp(1.0, 86_400.0),
                )),
                calls: None,
                lanes: lanes.clamp(1, 64),
                rate: Some(rate.clamp(0.1, 100_000.0)),
                put_every: Duration::from_millis(put_ms.max(10)),
                edit_every: Duration::from_millis(edit_ms.max(100)),
                pid,
            })
            .await;
            println!("{}", report.table());
            for f in &report.failures {
                println!("FAILURE: {f}");
            }
            report.failed == 0
                && report.put_failures == 0
                && report.reload_failures == 0
                && report.calls() > 0
                && report.reloads > 0
        }
        Command::Sigterm {
            agi,
            esl,
            http,
            pid,
            lanes,
        } => {
            let r = soak::sigterm_under_load(
                agi,
                esl,
                http,
                lanes.clamp(1, 64),
                Duration::from_millis(150),
                || {
                    // SAFETY: kill(2) on the pid we were given.
                    unsafe {
                        libc::kill(pid, libc::SIGTERM);
                    }
                },
            )
            .await;
            println!("| SIGTERM under load | value |\n|---|---|");
            println!(
                "| calls open on the server at SIGTERM | {} |",
                r.in_progress
            );
            println!(
                "| calls in progress that finished with a verdict | {} |",
                r.in_progress_completed
            );
            println!(
                "| calls started after SIGTERM and still served | {} |",
                r.served_after
            );
            println!(
                "| calls refused after SIGTERM (PBX fails over) | {} |",
                r.refused_after
            );
            println!("| new connect refused | {} |", r.connect_refused);
            println!("| calls cut or broken | {} |", r.broken.len());
            for b in &r.broken {
                println!("BROKEN: {b}");
            }
            r.broken.is_empty() && r.connect_refused && r.in_progress_completed > 0
        }
    };
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
