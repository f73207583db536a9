//! The decision explainer's machine-readable answer, shared by
//! `callguard test --json` and `POST /api/v1/test` so both say the same thing.
//!
//! Timing uses a monotonic stopwatch only; the decision time stays a parameter.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::RuleSet;
use super::attest::Attestation;
use super::decide::{SkipReason, decide_explained_attested};
use super::index::MatchError;
use super::ruleset::TrunkId;
use super::tester::{Budget, PatternResult, PatternTester, Stop};

mod matching;
pub(crate) use matching::{looks_like_number, rules_matching};

/// Why a matching rule did not decide, in words.
pub(crate) fn why(w: &SkipReason) -> &'static str {
    match w {
        SkipReason::Disabled => "disabled",
        SkipReason::ScheduleInactive => "schedule inactive",
        SkipReason::Shadowed => "matched, but an earlier list or rule decided",
        SkipReason::AttestationMismatch => "matched, but its attestation condition does not hold",
        SkipReason::ReputationMismatch => "matched, but its reputation condition does not hold",
    }
}

/// The decision explainer's answer for one caller, as `callguard test
/// --json` prints it, with the call's attestation (`test --attestation C`)
/// and what else is known of the caller (the API's reputation lookup).
pub(crate) fn caller_json_attested(
    rs: &RuleSet,
    trunk: TrunkId,
    caller: &str,
    anonymous: bool,
    attestation: (Option<&Attestation>, super::reputation::CallerFacts<'_>),
    at: DateTime<Utc>,
) -> Result<Value, Value> {
    caller_json_for(rs, (trunk, None), caller, anonymous, attestation, at)
}

/// Whether a skipped rule is worth telling: not a condition-only rule
/// (attestation, reputation) whose condition does not hold, since such a
/// rule "matches" every caller and would be listed on every answer.
fn worth_telling(rs: &RuleSet, s: &super::decide::Skipped) -> bool {
    let condition_only = matches!(
        rs.rules.kind(s.rule),
        Some(super::ruleset::RuleKind::Attestation(_) | super::ruleset::RuleKind::Reputation)
    );
    !(condition_only
        && matches!(
            s.why,
            SkipReason::AttestationMismatch | SkipReason::ReputationMismatch
        ))
}

/// [`caller_json_attested`] for a call to `user` (a DID or extension's
/// user) on `trunk`: the answer names what decided (`decided_by`) and only
/// the skipped rules whose reason matters.
pub(crate) fn caller_json_for(
    rs: &RuleSet,
    (trunk, user): (TrunkId, Option<super::ruleset::UserId>),
    caller: &str,
    anonymous: bool,
    attestation: (Option<&Attestation>, super::reputation::CallerFacts<'_>),
    at: DateTime<Utc>,
) -> Result<Value, Value> {
    let start = Instant::now();
    let result = decide_explained_attested(rs, (trunk, user), caller, anonymous, attestation, at);
    let eval_ns = start.elapsed().as_nanos() as u64;
    match result {
        Ok((d, skipped)) => {
            let skipped: Vec<_> = skipped
                .iter()
                .filter(|s| worth_telling(rs, s))
                .map(|s| json!({"rule": rs.rules.name(s.rule), "list": s.list.as_str(), "why": why(&s.why)}))
                .collect();
            Ok(json!({
                "caller": caller,
                "normalized": d.caller.e164,
                "anonymous": d.caller.anonymous,
                "trunk": &*rs.trunk(trunk).name,
                "verdict": d.verdict.as_str(),
                "list": d.list.as_str(),
                "rule": d.rule_name(rs),
                "action": d.action_name(rs),
                "reason": d.reason(rs),
                "matched_on": d.matched_on.map(|m| m.as_str()),
                "pattern": d.pattern(rs).map(|(p, _)| p),
                "match_type": d.pattern(rs).map(|(_, m)| m),
                "captures": d.captures.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "exclusive_active": d.exclusive_active,
                "attestation": d.attestation.as_ref().map(|a| a.level.as_str()),
                "decided_by": {
                    "list": d.list.as_str(),
                    "list_name": d.rule.map(|r| &*rs.rules.origin(r).list_name),
                    "rule": d.rule_name(rs),
                    "action": d.action_name(rs),
                },
                "skipped": skipped,
                "at": at.to_rfc3339(),
                "eval_ns": eval_ns,
            }))
        }
        Err(e) => Err(json!({"caller": caller, "error": e.to_string(), "eval_ns": eval_ns})),
    }
}

/// Evaluates `number` up to `runs` times for a stable per-match figure (in
/// ns). The first evaluation always runs (the answer needs it); the timing
/// stops early on an error (a failing evaluation costs the whole
/// backtracking limit every time), once `timing` has been spent, or when
/// `budget` says stop.
pub(crate) fn timed_test(
    tester: &PatternTester,
    number: &str,
    runs: u32,
    timing: Duration,
    budget: &Budget<'_>,
) -> (Result<PatternResult, MatchError>, f64) {
    let start = Instant::now();
    let mut result = tester.test(number);
    let mut done = 1u32;
    while done < runs && result.is_ok() && start.elapsed() < timing && budget.check().is_ok() {
        result = tester.test(number);
        done += 1;
    }
    (result, start.elapsed().as_nanos() as f64 / f64::from(done))
}

/// Tests one number against a pattern; the JSON object of `test --pattern --json`.
/// See [`timed_test`] for `runs`, `timing` and `budget`.
pub(crate) fn pattern_json(
    tester: &PatternTester,
    pattern: &str,
    number: &str,
    runs: u32,
    timing: Duration,
    budget: &Budget<'_>,
) -> Value {
    match timed_test(tester, number, runs, timing, budget) {
        (Ok(r), per_match_ns) => {
            json!({"number": number, "pattern": pattern, "match_type": tester.compiled.match_type.as_str(), "matched": r.matched,
               "captures": r.captures.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
               "eval_ns": per_match_ns.round() as u64})
        }
        (Err(e), _) => json!({"number": number, "pattern": pattern, "error": e.to_string()}),
    }
}

/// Timing of one number when the budget has no time limit.
const UNLIMITED_TIMING: Duration = Duration::from_secs(1);

/// [`pattern_json`] for each of `numbers` while `budget` lasts: the results
/// of the numbers tested, and why it stopped before the end if it did. Each
/// number's timing runs get at most an equal share of half the time limit,
/// so that timing alone never exhausts it: only evaluations that are slow
/// once do.
pub(crate) fn patterns_json(
    tester: &PatternTester,
    pattern: &str,
    numbers: &[String],
    runs: u32,
    budget: &Budget<'_>,
) -> (Vec<Value>, Option<Stop>) {
    let share = u32::try_from(numbers.len().max(1) * 2).unwrap_or(u32::MAX);
    let timing = budget.limit().map_or(UNLIMITED_TIMING, |l| l / share);
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        if let Err(stop) = budget.check() {
            return (out, Some(stop));
        }
        out.push(pattern_json(tester, pattern, n, runs, timing, budget));
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::config::types::MatchType;

    /// A back-reference makes this a fancy-regex pattern that backtracks
    /// exponentially on a run of digits without the `x`.
    const PATHOLOGICAL: &str = r"^(\d+)*\1x$";

    fn ones() -> String {
        "1".repeat(40)
    }

    #[test]
    fn a_failing_evaluation_is_not_repeated_for_timing() {
        // A small backtracking limit: each evaluation errors quickly.
        let t = PatternTester::new(PATHOLOGICAL, Some(MatchType::Regex), false, 1_000).unwrap();
        let start = Instant::now();
        let (r, _) = timed_test(&t, &ones(), u32::MAX, Duration::MAX, &Budget::unlimited());
        assert!(r.is_err(), "the backtracking limit applies to the tester");
        // u32::MAX runs would never end; one failing run ends it.
        assert!(start.elapsed() < Duration::from_secs(60));
    }

    #[test]
    fn the_budget_stops_between_numbers_and_says_why() {
        let t = PatternTester::new(PATHOLOGICAL, Some(MatchType::Regex), false, 1_000).unwrap();
        let numbers = vec![ones(); 5];
        let (done, stop) = patterns_json(
            &t,
            PATHOLOGICAL,
            &numbers,
            100,
            &Budget::new(Duration::ZERO, None),
        );
        assert!(done.is_empty());
        assert_eq!(stop, Some(Stop::TimeUp(Duration::ZERO)));

        let cancel = AtomicBool::new(false);
        let budget = Budget::new(Duration::from_secs(3600), Some(&cancel));
        let (done, stop) = patterns_json(&t, PATHOLOGICAL, &numbers, 100, &budget);
        assert_eq!((done.len(), stop), (5, None));
        assert!(
            done.iter().all(|v| v["error"].as_str().is_some()),
            "{done:?}"
        );
        cancel.store(true, Ordering::Relaxed);
        let (done, stop) = patterns_json(&t, PATHOLOGICAL, &numbers, 100, &budget);
        assert_eq!((done.len(), stop), (0, Some(Stop::Cancelled)));
    }

    #[test]
    fn timing_runs_share_the_budget() {
        let t = PatternTester::new("+1555*", None, false, 1_000).unwrap();
        let numbers = vec!["+15551234567".to_string(); 3];
        let budget = Budget::new(Duration::from_secs(3600), None);
        let (done, stop) = patterns_json(&t, "+1555*", &numbers, 10, &budget);
        assert_eq!(stop, None);
        assert!(done.iter().all(|v| v["matched"] == true), "{done:?}");
    }
}
