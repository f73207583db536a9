//! Catastrophic-backtracking patterns (ReDoS) as rules, against long
//! adversarial caller IDs.
//!
//! Rules without look-around run in the `regex` crate, whose matching is
//! linear in the input: the classic exponential patterns are just slow-free
//! regexes there, and must give the right answer. Rules with look-around or
//! backreferences run in `fancy-regex`, a backtracking engine: there the
//! budget `policy.regex_backtrack_limit` must end the evaluation with a
//! clean `MatchError`, which the server turns into a fail-open call.
//!
//! Nothing here measures time: the budget is a count of backtracking steps,
//! so "it stopped because of the budget" is asserted as the error it gives.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use callguard::config::load_str;
use callguard::policy::{RuleSet, Verdict, decide};
use chrono::{TimeZone, Utc};

/// Patterns from the ReDoS literature that the `regex` crate takes (OWASP's
/// "evil regexes", the Stack Overflow 2016 outage `\s+$` shape, nested and
/// overlapping quantifiers), with an input that makes a backtracker explode.
/// A pattern and the adversarial caller ID of a given length for it.
type Case = (&'static str, fn(usize) -> String);

const LINEAR: &[Case] = &[
    (r"(a+)+$", |n| format!("{}!", "a".repeat(n))),
    (r"^(\d+)*$", |n| format!("{}x", "1".repeat(n))),
    (r"^(\d|\d\d)+$", |n| format!("{}x", "1".repeat(n))),
    (r"^(\d|\d?)+$", |n| format!("{}x", "1".repeat(n))),
    (r"^(\+?\d+)*\+$", |n| format!("+{}x", "1".repeat(n))),
    (r"^(.*1){20}$", |n| format!("{}x", "1".repeat(n))),
    (r"^([0-9]+\s?)+$", |n| format!("{} x", "1 ".repeat(n / 2))),
    (r"\s+$", |n| format!("1{}1", " ".repeat(n))),
];

/// Look-around, atomic-group and backreference patterns around nested
/// quantifiers, with a caller ID that passes the look-around prefilter (it
/// matches the pattern with its assertions removed) so the backtracking engine
/// really runs, and must explore exponentially many ways before failing.
const BACKTRACKING: &[Case] = &[
    (r"^((?=\d)(1|11))*(?<!1)$", |n| "1".repeat(n)),
    (r"^(?:(1|11)(?=1|2))*3", |n| format!("{}3", "1".repeat(n))),
    (r"^(\d+)*\1x$", |n| "1".repeat(n)),
    // fancy-regex's own budget example, `(x+x+)+(?>y)`, in digits.
    (r"^(1+1+)+(?>3)", |n| format!("{}23", "1".repeat(n))),
];

fn ruleset(patterns: &[&str], limit: Option<usize>) -> RuleSet {
    let mut yaml = String::new();
    if let Some(l) = limit {
        yaml.push_str(&format!("policy: {{ regex_backtrack_limit: {l} }}\n"));
    }
    yaml.push_str("trunks:\n  support:\n    blacklist:\n");
    for (i, p) in patterns.iter().enumerate() {
        yaml.push_str(&format!(
            "      - {{ name: R{i}, pattern: '{}', match: regex }}\n",
            p.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let loaded = load_str(&yaml, &dir.path().join("callguard.yaml")).expect("parses");
    RuleSet::compile(&loaded).unwrap_or_else(|e| panic!("compiles:\n{e}\n{yaml}"))
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// Caller IDs as long as a FastAGI line can carry them, and shorter.
const LENGTHS: [usize; 3] = [30, 500, 4000];

/// For the default budget (each exhausted budget costs a second or two in a
/// debug build): short enough to decide, and long.
const DEFAULT_BUDGET_LENGTHS: [usize; 2] = [10, 4000];

#[test]
fn classic_redos_patterns_are_linear_and_exact() {
    for (pattern, evil) in LINEAR {
        let rs = ruleset(&[pattern], None);
        let trunk = rs.trunk_by_name("support").expect("trunk");
        let re = regex::Regex::new(pattern).expect("regex");
        for n in LENGTHS {
            let caller = evil(n);
            let d = decide(&rs, trunk, &caller, false, at())
                .unwrap_or_else(|e| panic!("{pattern} on {n} chars: {e}"));
            // The regex crate never gives up: the answer is the true one,
            // on the caller ID as received or its E.164 form.
            let truth = re.is_match(&d.caller.raw)
                || d.caller.e164.as_deref().is_some_and(|e| re.is_match(e));
            assert_eq!(
                d.verdict == Verdict::Block,
                truth,
                "{pattern} on a {n}-char caller"
            );
        }
    }
}

#[test]
fn backtracking_patterns_stop_at_the_budget_with_a_clean_error() {
    for (pattern, evil) in BACKTRACKING {
        let fancy = fancy_regex::Regex::new(pattern).expect("fancy regex");
        assert!(
            regex::Regex::new(pattern).is_err(),
            "{pattern} must route through fancy-regex for this test to mean anything"
        );
        // A small budget: the long caller must exhaust it, deterministically.
        let rs = ruleset(&[pattern], Some(10_000));
        let trunk = rs.trunk_by_name("support").expect("trunk");
        let err = decide(&rs, trunk, &evil(4000), false, at())
            .expect_err(&format!("{pattern} should exceed a 10,000-step budget"));
        assert!(
            err.message.to_lowercase().contains("backtrack"),
            "{pattern}: {err}"
        );
        // The default budget: a result or the same clean error, for every length.
        let rs = ruleset(&[pattern], None);
        let trunk = rs.trunk_by_name("support").expect("trunk");
        for n in DEFAULT_BUDGET_LENGTHS {
            let caller = evil(n);
            match decide(&rs, trunk, &caller, false, at()) {
                Ok(d) => {
                    let hit = |s: &str| fancy.is_match(s).expect("decided within the budget");
                    let truth = hit(&d.caller.raw) || d.caller.e164.as_deref().is_some_and(hit);
                    assert_eq!(d.verdict == Verdict::Block, truth, "{pattern} on {n}");
                }
                Err(e) => assert!(e.message.to_lowercase().contains("backtrack"), "{e}"),
            }
        }
    }
}

/// Many such rules in one list and a benign caller: the prefilter and the
/// linear engine keep them from running at all or from exploding.
#[test]
fn all_patterns_together_decide_a_normal_caller() {
    let patterns: Vec<&str> = LINEAR.iter().chain(BACKTRACKING).map(|(p, _)| *p).collect();
    let rs = ruleset(&patterns, None);
    let trunk = rs.trunk_by_name("support").expect("trunk");
    let d = decide(&rs, trunk, "+15550000001", false, at()).expect("decides");
    assert_eq!(d.verdict, Verdict::Allow);
}

/// Through the real server: a look-around rule that blows its budget on the
/// caller makes the call fail open on both PBXs, with the cause in
/// `CALLGUARD_ERROR`. The decision deadline is generous so that the cause is
/// the budget, not the clock.
#[tokio::test]
async fn redos_caller_fails_open_through_the_server() {
    let caller = "1".repeat(2000);
    let yaml = r#"
agi: { decide_timeout: 60s }
esl: { decide_timeout: 60s }
trunks:
  support:
    blacklist:
      - { name: Evil, pattern: '^((?=\d)(1|11))*(?<!1)$', match: regex }
      - { name: Plain, pattern: '+15550000001' }
"#;
    let mut srv = server::start(yaml).await;

    let r = asterisk::AsteriskSim::new()
        .callerid(&caller)
        .run(srv.agi())
        .await;
    assert_eq!(r.error, None);
    assert_eq!(
        r.variables["CALLGUARD_VERDICT"], "allow",
        "{:?}",
        r.commands
    );
    assert_eq!(r.variables["CALLGUARD_ERROR"], "error", "{:?}", r.commands);
    assert!(
        r.commands
            .iter()
            .all(|c| !c.starts_with("EXEC") || c.starts_with("EXEC MSet ")),
        "failing open drives no action: {:?}",
        r.commands
    );

    let r = freeswitch::SimConfig {
        caller_number: caller.clone(),
        ..freeswitch::SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(r.error, None);
    assert_eq!(r.variable("callguard_verdict"), Some("allow"));
    assert_eq!(r.variable("callguard_error"), Some("error"));

    // The same server still decides ordinary callers.
    let r = asterisk::AsteriskSim::new()
        .callerid("+15550000001")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    let metrics = srv.running().state.metrics.render();
    assert!(
        metrics.contains("callguard_fail_open_total{pbx=\"asterisk\",reason=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callguard_fail_open_total{pbx=\"freeswitch\",reason=\"error\"} 1"),
        "{metrics}"
    );
    srv.stop().await;
}

/// Only rule sets with a backtracking rule pay the blocking pool's thread hop
/// (issue 26): every LINEAR pattern is decided inline, any BACKTRACKING one
/// (look-around, backreference, atomic group) sends the whole rule set's
/// decisions to the pool, where the deadline can abandon them.
#[test]
fn only_backtracking_rules_leave_the_runtime() {
    let linear: Vec<&str> = LINEAR.iter().map(|(p, _)| *p).collect();
    assert!(ruleset(&linear, None).decides_in_linear_time());
    for (p, _) in BACKTRACKING {
        let mut patterns = linear.clone();
        patterns.push(p);
        assert!(!ruleset(&patterns, None).decides_in_linear_time(), "{p}");
    }
}
