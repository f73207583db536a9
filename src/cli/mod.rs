//! The command line: thin subcommands over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod block;
mod check;
mod export;
mod history;
mod import;
mod log;
pub mod report;
mod rollback;
mod serve;
mod test;

/// Default config path, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/callguard.yaml";

#[derive(Parser, Debug)]
#[command(
    name = "callguard",
    version,
    about = "Screens inbound calls for Asterisk (FastAGI) and FreeSWITCH (outbound ESL)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Screen live calls: FastAGI, outbound ESL and HTTP listeners from the config.
    Serve {
        /// The configuration file (list paths and log.path are relative to it).
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration: exit 0 with a summary, or 2 with one line per problem.
    Check {
        /// The configuration file (list paths and log.path are relative to it).
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Decide test callers against a configuration and explain why; or, with
    /// --pattern, test numbers against one pattern.
    Test(test::TestArgs),
    /// Show logged calls: which rule decided them and how they ended.
    Log(log::LogArgs),
    /// Add the caller of a logged call to a list ("block the last caller").
    Block(block::BlockArgs),
    /// Import rules into a list file, with a preview.
    Import(import::ImportArgs),
    /// Export a list as CSV, JSON or XML.
    Export(export::ExportArgs),
    /// Restore a list to an earlier version from its history.
    Rollback(rollback::RollbackArgs),
    /// List the versions of the list files (time, author, summary): what `rollback --to` takes.
    History(history::HistoryArgs),
    /// Blocking activity over a period (default the last 24h): by trunk, rule, list and country, top blocked callers, fail-open/closed, rule changes.
    Report(report::ReportArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve { config } => serve::run(&config),
        Command::Check { config } => check::run(&config),
        Command::Test(args) => test::run(args),
        Command::Log(args) => log::run(args),
        Command::Block(args) => block::run(args),
        Command::Import(args) => import::run(args),
        Command::Export(args) => export::run(args),
        Command::Rollback(args) => rollback::run(args),
        Command::History(args) => history::run(args),
        Command::Report(args) => report::run(args),
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
}
