//! A test that cannot run because a real service (Prometheus, PostgreSQL, Chromium) is not
//! installed says so where it is seen: the harness captures `print!` / `eprint!` and shows
//! them only with `--nocapture` or on failure, so the skip goes straight to the stderr
//! handle (`SKIPPED: <test>: <why>`), and the test binary ends with one summary line after
//! its `test result:`. Under `CI=true` the helpers panic instead (a broken machine).
#![allow(dead_code)]

use std::io::Write;
use std::sync::Mutex;

/// The skips of this test binary, for the summary at exit.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Reports the running test as skipped because `what` (e.g. "prometheus not installed").
pub fn skipped(what: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let line = format!("SKIPPED: {test}: {what} (run .ci/install-deps; CI=true fails instead)\n");
    // Not `eprint!`: that is captured. The handle writes to fd 2 directly.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    let mut all = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if all.is_empty() {
        // SAFETY: registers a plain `extern "C"` function; it runs once, at exit.
        unsafe {
            libc::atexit(summary);
        }
    }
    all.push(format!("{test} ({what})"));
}

extern "C" fn summary() {
    let all = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let line = format!(
        "SKIPPED: {} test(s) of this binary did not run for a missing service: {}\n",
        all.len(),
        all.join(", ")
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
