//! The decision explainer's machine-readable answer, shared by
//! `callguard test --json` and `POST /api/v1/test` so both say the same thing.
//!
//! Timing uses a monotonic stopwatch only; the decision time stays a parameter.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::RuleSet;
use super::attest::Attestation;
use super::decide::{SkipReason, decide_explained_attested};
use super::ruleset::TrunkId;
use super::tester::PatternTester;

/// Why a matching rule did not decide, in words.
pub fn why(w: &SkipReason) -> &'static str {
    match w {
        SkipReason::Disabled => "disabled",
        SkipReason::ScheduleInactive => "schedule inactive",
        SkipReason::Shadowed => "matched, but an earlier list or rule decided",
        SkipReason::AttestationMismatch => "matched, but its attestation condition does not hold",
    }
}

/// Decides `caller` on `trunk` at `at`; the JSON object of `test --json`.
/// `Err` carries the same object shape with an `error` field.
pub fn caller_json(
    rs: &RuleSet,
    trunk: TrunkId,
    caller: &str,
    anonymous: bool,
    at: DateTime<Utc>,
) -> Result<Value, Value> {
    caller_json_attested(rs, trunk, caller, anonymous, None, at)
}

/// [`caller_json`] for a call with this attestation (`test --attestation C`).
pub fn caller_json_attested(
    rs: &RuleSet,
    trunk: TrunkId,
    caller: &str,
    anonymous: bool,
    attestation: Option<&Attestation>,
    at: DateTime<Utc>,
) -> Result<Value, Value> {
    let start = Instant::now();
    let result = decide_explained_attested(rs, trunk, caller, anonymous, attestation, at);
    let eval_ns = start.elapsed().as_nanos() as u64;
    match result {
        Ok((d, skipped)) => {
            let skipped: Vec<_> = skipped
                .iter()
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
                "skipped": skipped,
                "at": at.to_rfc3339(),
                "eval_ns": eval_ns,
            }))
        }
        Err(e) => Err(json!({"caller": caller, "error": e.to_string(), "eval_ns": eval_ns})),
    }
}

/// Tests one number against a pattern; the JSON object of `test --pattern --json`.
/// `runs` evaluations are timed for a stable per-match figure.
pub fn pattern_json(tester: &PatternTester, pattern: &str, number: &str, runs: u32) -> Value {
    let runs = runs.max(1);
    let start = Instant::now();
    let mut result = tester.test(number);
    for _ in 1..runs {
        result = tester.test(number);
    }
    let per_match_ns = start.elapsed().as_nanos() as f64 / f64::from(runs);
    match result {
        Ok(r) => {
            json!({"number": number, "pattern": pattern, "match_type": tester.compiled.match_type.as_str(), "matched": r.matched,
               "captures": r.captures.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
               "eval_ns": per_match_ns.round() as u64})
        }
        Err(e) => json!({"number": number, "pattern": pattern, "error": e.to_string()}),
    }
}
