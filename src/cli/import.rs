//! `callguard import`. STUB.

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct ImportArgs {}

pub fn run(_args: ImportArgs) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::from(1)
}
