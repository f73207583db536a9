//! `callguard block`. STUB.

use std::process::ExitCode;

use clap::Args;

#[derive(Args, Debug)]
pub struct BlockArgs {}

pub fn run(_args: BlockArgs) -> ExitCode {
    eprintln!("not implemented yet");
    ExitCode::from(1)
}
