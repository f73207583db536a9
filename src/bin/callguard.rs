//! The `callguard` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = callguard::cli::Cli::parse();
    // Rust ignores SIGPIPE, so `callguard log | head` would panic on a closed
    // pipe; the default action makes the stdout-writing subcommands exit quietly
    // like any Unix tool. `serve` must keep it ignored: there the default action
    // would let one PBX peer that hangs up before a `writev` kill the whole
    // service (exit 141) — with it ignored that write fails with EPIPE and ends
    // only that connection.
    if cli.command.writes_to_pipe() {
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    callguard::cli::run(cli)
}
