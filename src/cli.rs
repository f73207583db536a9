//! The command line: thin subcommands over the library.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::Problems;
use crate::list_edit::store::StoreError;

mod block;
mod call;
mod check;
mod export;
mod history;
mod import;
mod init;
mod log;
mod report;
mod rollback;
mod running;
mod serve;
mod store;
mod test;

/// Default config path, relative to the working directory.
pub(crate) const DEFAULT_CONFIG: &str = "config/callguard.yaml";

/// The system-wide config path (packages, the systemd unit, the container).
pub(crate) const SYSTEM_CONFIG: &str = "/etc/callguard/callguard.yaml";

/// The environment variable that names the config when `--config` does not.
pub(crate) const CONFIG_ENV: &str = "CALLGUARD_CONFIG";

/// The config used when neither `--config` nor `$CALLGUARD_CONFIG` names one:
/// `./config/callguard.yaml` (a checkout, the README's commands), else
/// `/etc/callguard/callguard.yaml` (an installed service). When neither
/// exists it is the first, so the error names the file a new user expects.
pub(crate) fn default_config() -> PathBuf {
    discover_default(Path::new(DEFAULT_CONFIG), Path::new(SYSTEM_CONFIG))
}

/// [`default_config`] over explicit candidates, for tests.
pub(crate) fn discover_default(local: &Path, system: &Path) -> PathBuf {
    if !local.exists() && system.exists() {
        system.to_path_buf()
    } else {
        local.to_path_buf()
    }
}

/// Where a config path came from, for `serve`'s start-up log line.
pub(crate) fn config_origin(path: &Path) -> &'static str {
    let from_env = std::env::var_os(CONFIG_ENV).is_some_and(|v| Path::new(&v) == path);
    if from_env {
        "$CALLGUARD_CONFIG"
    } else if path == Path::new(DEFAULT_CONFIG) || path == Path::new(SYSTEM_CONFIG) {
        "default"
    } else {
        "--config"
    }
}

/// When `path` does not exist: every place the configuration was looked for, in order, and
/// what to do (`check` and `serve` say it rather than a bare "cannot open"). A file named by
/// `--config` or `$CALLGUARD_CONFIG` is the only place tried: naming one turns the fallbacks
/// off.
pub(crate) fn config_not_found(path: &Path) -> Option<CliError> {
    if path.exists() {
        return None;
    }
    let shown = path.display();
    let mut lines = vec![format!(
        "{shown}: no such file; the configuration was looked for in this order:"
    )];
    match config_origin(path) {
        "--config" => lines.push(format!("  1. --config {shown}: not found")),
        "$CALLGUARD_CONFIG" => {
            lines.push("  1. --config: not given".into());
            lines.push(format!("  2. ${CONFIG_ENV} = {shown}: not found"));
        }
        _ => {
            lines.push("  1. --config: not given".into());
            lines.push(format!("  2. ${CONFIG_ENV}: not set"));
            for (i, p) in [DEFAULT_CONFIG, SYSTEM_CONFIG].iter().enumerate() {
                let p = Path::new(p);
                let state = if p.exists() { "found" } else { "not found" };
                let shown = if p.is_relative() {
                    format!("./{}", p.display())
                } else {
                    p.display().to_string()
                };
                lines.push(format!("  {}. {shown}: {state}", i + 3));
            }
        }
    }
    lines.push(
        "name one with --config FILE, or write a starter one with `callguard init DIR`".into(),
    );
    Some(CliError::Refused(lines))
}

/// How `serve` writes its log lines (always to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; colours only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Parser, Debug)]
#[command(
    name = "callguard",
    version,
    about = "Screens inbound calls for Asterisk (FastAGI) and FreeSWITCH (outbound ESL)."
)]
pub struct Cli {
    /// Log lines as text or as one JSON object per line (journald, Loki, Elasticsearch).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Screen live calls: FastAGI, outbound ESL and HTTP listeners from the config.
    ///
    /// The config is --config, else $CALLGUARD_CONFIG, else ./config/callguard.yaml, else
    /// /etc/callguard/callguard.yaml (the same for every command).
    Serve {
        /// The configuration file (list paths and log.path are relative to it).
        #[arg(long, short, env = CONFIG_ENV, default_value_os_t = default_config())]
        config: PathBuf,
    },
    /// Validate a configuration: exit 0 with a summary, or 2 with one line per problem.
    Check {
        /// The configuration file (list paths and log.path are relative to it).
        #[arg(long, short, env = CONFIG_ENV, default_value_os_t = default_config())]
        config: PathBuf,
    },
    /// Decide test callers against a configuration and explain why; or, with
    /// --pattern, test numbers against one pattern.
    Test(test::TestArgs),
    /// Show logged calls: which rule decided them and how they ended.
    Log(log::LogArgs),
    /// Add the caller of a logged call to a list ("block the last caller").
    ///
    /// With a `serve` of this config running (found at its listen.http), waits until it has
    /// installed the change and says so.
    Block(block::BlockArgs),
    /// Import rules into a list file, with a preview.
    ///
    /// With a `serve` of this config running (found at its listen.http), waits until it has
    /// installed the change and says so.
    Import(import::ImportArgs),
    /// Export a list as CSV, JSON or XML.
    Export(export::ExportArgs),
    /// Restore a list to an earlier version from its history.
    ///
    /// With a `serve` of this config running (found at its listen.http), waits until it has
    /// installed the change and says so.
    Rollback(rollback::RollbackArgs),
    /// List the versions of the list files (time, author, summary): what `rollback --to` takes.
    History(history::HistoryArgs),
    /// Blocking activity over a period (default the last 24h): by trunk, rule, list and country, top blocked callers, fail-open/closed, rule changes.
    Report(report::ReportArgs),
    /// Move the lists into the store of record (`log.postgres`) or back to the files.
    Store(store::StoreArgs),
    /// Place one simulated call against a running `serve` (no PBX needed) and show what
    /// callguard sent, the variables it set and what the PBX would do.
    Call(call::CallArgs),
    /// Write a starter directory to try callguard in: the example config and its lists,
    /// and a broken.yaml to try `check` on.
    Init(init::InitArgs),
}

impl Command {
    /// Whether this subcommand is a one-shot tool whose output may go to a
    /// pipe (`callguard log | head`), so SIGPIPE's default action (exit quietly)
    /// suits it. `serve` is the one that must never take it: a PBX peer that
    /// vanishes before a write would end the service.
    pub fn writes_to_pipe(&self) -> bool {
        !matches!(self, Command::Serve { .. })
    }
}

/// Why a subcommand failed: the lines it writes to stderr, and by its kind
/// the exit code. Scripts rely on the codes: 2 when the input was refused
/// (an argument, a configuration with problems, a change the list store
/// refused), 1 when the work could not be done.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Exit 2: nothing was done because the input is wrong.
    Refused(Vec<String>),
    /// Exit 1: the input was fine but the work failed (I/O, the log).
    Failed(Vec<String>),
    /// Exit 1 with nothing more to say: the command already printed, on
    /// stdout, which of its items failed (`test` with undecidable callers).
    Reported,
}

impl CliError {
    pub(crate) fn refused(msg: impl Display) -> Self {
        CliError::Refused(vec![msg.to_string()])
    }

    pub(crate) fn failed(msg: impl Display) -> Self {
        CliError::Failed(vec![msg.to_string()])
    }

    /// A configuration that does not load: one line per problem.
    pub(crate) fn problems(problems: &Problems) -> Self {
        CliError::Refused(problems.0.iter().map(ToString::to_string).collect())
    }

    /// What the list store refused, then its details indented.
    pub(crate) fn store(e: &StoreError) -> Self {
        Self::store_with(e.to_string(), e)
    }

    /// A store refusal under a headline of the command's own.
    pub(crate) fn store_with(headline: impl Display, e: &StoreError) -> Self {
        let mut lines = vec![headline.to_string()];
        lines.extend(e.details().into_iter().map(|d| format!("  {d}")));
        CliError::Refused(lines)
    }

    /// The same error with `line` written after its own lines.
    pub(crate) fn then(mut self, line: impl Display) -> Self {
        if let CliError::Refused(lines) | CliError::Failed(lines) = &mut self {
            lines.push(line.to_string());
        }
        self
    }

    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused(_) => 2,
            CliError::Failed(_) | CliError::Reported => 1,
        }
    }

    fn lines(&self) -> &[String] {
        match self {
            CliError::Refused(lines) | CliError::Failed(lines) => lines,
            CliError::Reported => &[],
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::store(&e)
    }
}

/// Runs the subcommand; the one place an error becomes stderr lines and an
/// exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve { config } => serve::run(&config, cli.log_format),
        Command::Check { config } => check::run(&config),
        Command::Test(args) => test::run(args),
        Command::Log(args) => log::run(args),
        Command::Block(args) => block::run(args),
        Command::Import(args) => import::run(args),
        Command::Export(args) => export::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::History(args) => history::run(args),
        Command::Report(args) => report::run(args),
        Command::Store(args) => store::run(args),
        Command::Call(args) => call::run(args),
        Command::Init(args) => init::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Issue 10.12: every option and argument of every subcommand says what
    /// it is in `--help`.
    #[test]
    fn every_option_has_a_description() {
        let cli = Cli::command();
        let mut missing = Vec::new();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{} --{id}", sub.get_name()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "options without a description: {missing:?}"
        );
    }

    #[test]
    fn the_local_config_wins_then_the_system_one() {
        let dir = std::env::temp_dir().join(format!("callguard-discovery-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("config")).unwrap();
        let local = dir.join("config/callguard.yaml");
        let system = dir.join("etc/callguard.yaml");
        // Neither exists: the local path, so the error names what the README uses.
        assert_eq!(discover_default(&local, &system), local);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(&system, "").unwrap();
        assert_eq!(discover_default(&local, &system), system);
        std::fs::write(&local, "").unwrap();
        assert_eq!(discover_default(&local, &system), local);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn log_format_is_a_global_option() {
        let cli = Cli::try_parse_from(["callguard", "serve", "--log-format", "json"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        let cli = Cli::try_parse_from(["callguard", "--log-format", "json", "check"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        let cli = Cli::try_parse_from(["callguard", "check", "--config", "x.yaml"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Text);
        assert!(matches!(cli.command, Command::Check { config } if config == Path::new("x.yaml")));
        assert!(Cli::try_parse_from(["callguard", "serve", "--log-format", "xml"]).is_err());
    }
}
