//! `callguard serve`: run until SIGINT/SIGTERM; SIGHUP reloads the rules.

use std::fmt;
use std::io::IsTerminal;
use std::path::Path;

use tokio::signal::unix::{SignalKind, signal};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::{CliError, LogFormat};
use crate::app::{self, StartError};
use crate::reload::Trigger;

pub(super) fn run(config: &Path, format: LogFormat) -> Result<(), CliError> {
    if let Some(e) = super::config_not_found(config) {
        return Err(e);
    }
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Escape codes only for a person at a terminal: journald, files and
        // pipes get plain text.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.with_ansi(false).event_format(JsonLines).init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the runtime: {e}")))?;
    rt.block_on(serve(config))
}

async fn serve(config: &Path) -> Result<(), CliError> {
    // Before any listener exists: a SIGTERM during start-up must stop us
    // gracefully, not kill us with calls in progress.
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return Err(CliError::failed("cannot install signal handlers"));
    };
    let running = app::start(config).await.map_err(|e| match e {
        StartError::Config(problems) => CliError::problems(&problems),
        e => CliError::failed(e),
    })?;
    let show = |a: Option<std::net::SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
    // One line on stdout that scripts (and tests) can read the ports from.
    println!(
        "callguard listening agi={} esl={} http={}",
        show(running.agi),
        show(running.esl),
        show(running.http)
    );
    let shown = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    tracing::info!(
        config = %shown.display(),
        from = super::config_origin(config),
        "callguard started"
    );
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
    Ok(())
}

/// One JSON object per event: `timestamp` (RFC 3339, UTC), `level`, `target`,
/// `message` and the event's fields, for log shippers. Built on serde_json so
/// that no further dependency is needed; spans are not recorded (callguard
/// logs with fields, not spans).
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        event.record(&mut JsonFields(&mut line));
        let text = serde_json::Value::Object(line).to_string();
        writeln!(writer, "{text}")
    }
}

/// Collects an event's fields into the JSON object, keeping their types.
struct JsonFields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}
