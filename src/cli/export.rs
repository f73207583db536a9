//! `callguard export`. STUB.

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct ExportArgs {}

pub fn run(_args: ExportArgs) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::from(1)
}
