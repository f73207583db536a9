//! The `callguard` binary: parses the command line and hands over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so `callguard log | head` would panic on a closed
    // pipe; the default action makes it exit quietly like any Unix tool.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    callguard::cli::run(callguard::cli::Cli::parse())
}
