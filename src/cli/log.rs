//! `callguard log`. STUB.

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct LogArgs {}

pub fn run(_args: LogArgs) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::from(1)
}
