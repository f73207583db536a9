//! The command line: thin subcommands over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod block;
mod check;
mod export;
mod history;
mod import;
mod log;
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
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration: exit 0 with a summary, or 2 with one line per problem.
    Check {
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
    }
}
