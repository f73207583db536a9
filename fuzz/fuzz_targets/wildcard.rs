//! The wildcard compiler: the first line is the pattern, the other lines are
//! caller IDs to test; byte 0 bit 0 asks for `case_insensitive`. The compiled
//! pattern must refuse what the grammar refuses (with a column inside the
//! pattern) and agree with the reference matcher on every caller ID
//! (`oracles::check_wildcard`). The same pattern is then compiled with no
//! match type and as a regex, which must only never panic.
#![no_main]

use callguard::config::types::MatchType;
use callguard::policy::tester::PatternTester;
use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/oracles.rs"]
mod oracles;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut lines = text.split('\n');
    let pattern = lines.next().unwrap_or_default();
    // Patterns are rule cells; keep the regex compile cheap.
    if pattern.len() > 256 {
        return;
    }
    let subjects: Vec<&str> = lines.take(16).collect();
    let ci = mode & 1 != 0;
    oracles::check_wildcard(pattern, ci, &subjects);
    for match_type in [None, Some(MatchType::Regex)] {
        if let Ok(tester) = PatternTester::new(pattern, match_type, ci, 10_000) {
            let _ = tester.explain();
            for s in &subjects {
                // A look-around regex may run out of budget: a clean error.
                let _ = tester.test(s);
            }
        }
    }
});
