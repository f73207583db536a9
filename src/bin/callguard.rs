//! The `callguard` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    callguard::cli::run(callguard::cli::Cli::parse())
}
