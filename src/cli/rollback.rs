//! `callguard rollback`. STUB.

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct RollbackArgs {}

pub fn run(_args: RollbackArgs) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::from(1)
}
