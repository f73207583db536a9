//! A test skipped for a missing real service is seen in a plain `cargo test` (issue 27): its
//! `SKIPPED:` line and the binary's summary line reach stderr although the harness captures
//! the test's output. Checked on this very test binary, run again as a child process without
//! `--nocapture`, for its one test that reports a skip.

#[path = "support/skip.rs"]
mod skip;

use std::process::Command;

/// Set in the child run: only then does `a_skipped_test` skip.
const CHILD: &str = "CALLGUARD_SKIP_REPORT_CHILD";

#[test]
fn a_skipped_test() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    skip::skipped("frobnicator not installed");
}

#[test]
fn a_skip_shows_without_nocapture_with_a_summary() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_skipped_test", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .expect("run this test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("test a_skipped_test ... ok"), "{stdout}");
    assert!(
        stderr.contains("SKIPPED: a_skipped_test: frobnicator not installed (run .ci/install-deps"),
        "{stderr}"
    );
    // The summary comes last, after the harness's own result line.
    let summary = "SKIPPED: 1 test(s) of this binary did not run for a missing service: \
                   a_skipped_test (frobnicator not installed)";
    assert!(stderr.trim_end().ends_with(summary), "{stderr}");
}
