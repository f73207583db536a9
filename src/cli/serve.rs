//! `callguard serve`: run until SIGINT/SIGTERM; SIGHUP reloads the rules.

use std::path::Path;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

use crate::app::{self, StartError};
use crate::reload::Trigger;

pub fn run(config: &Path) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(serve(config))
}

async fn serve(config: &Path) -> ExitCode {
    // Before any listener exists: a SIGTERM during start-up must stop us
    // gracefully, not kill us with calls in progress.
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("cannot install signal handlers");
        return ExitCode::from(1);
    };
    let running = match app::start(config).await {
        Ok(r) => r,
        Err(StartError::Config(problems)) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
    // One line on stdout that scripts (and tests) can read the ports from.
    println!(
        "callguard listening agi={} esl={} http={}",
        show(running.agi),
        show(running.esl),
        show(running.http)
    );
    tracing::info!(config = %config.display(), "callguard started");
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                let _ = running.reloader.reload(Trigger::Signal).await;
            }
        }
    }
    tracing::info!("shutting down: no new calls; waiting for calls in progress");
    running.shutdown().await;
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
