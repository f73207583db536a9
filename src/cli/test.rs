//! `callguard test`: the decision explainer and the bare pattern tester.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Args;

use super::CliError;
use crate::config::types::MatchType;
use crate::policy::RuleSet;
use crate::policy::attest::{Attest, Attestation};
use crate::policy::decide::decide_explained_attested;
use crate::policy::explain::{self, why};
use crate::policy::reputation::{CallerFacts, RepAnswer};
use crate::policy::ruleset::Exclusive;
use crate::policy::tester::{Budget, PatternTester};

#[derive(Args, Debug)]
pub struct TestArgs {
    /// The configuration file (list paths and log.path are relative to it).
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// The trunk the call arrives on.
    #[arg(long, conflicts_with = "did")]
    pub trunk: Option<String>,
    /// The dialled number: selects the trunk as a call would.
    #[arg(long)]
    pub did: Option<String>,
    /// Decide as of this instant (RFC 3339), e.g. 2026-11-23T21:00:00-05:00.
    #[arg(long, value_parser = parse_at)]
    pub at: Option<DateTime<Utc>>,
    /// Treat the callers as presentation-restricted by the PBX.
    #[arg(long)]
    pub anonymous: bool,
    /// The caller ID's attestation: A, B, C, none or failed (default: as an
    /// unsigned call, for rules with an `attestation:` condition).
    #[arg(long, value_parser = parse_attestation)]
    pub attestation: Option<Attest>,
    /// The caller's name as the PBX delivers it (for `caller_name:` rules).
    #[arg(long, default_value = "")]
    pub caller_name: String,
    /// As if a reputation lookup answered this score (0-100), for
    /// `reputation:` rules (no provider is asked).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub score: Option<u8>,
    /// As if a reputation lookup answered this category (`category:` rules).
    #[arg(long)]
    pub category: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Test NUMBERs against this one pattern instead of a config.
    #[arg(long)]
    pub pattern: Option<String>,
    /// Match type for --pattern (default: inferred from the pattern).
    #[arg(long = "match", value_parser = parse_match_type)]
    pub match_type: Option<MatchType>,
    /// Case-insensitive matching for --pattern.
    #[arg(long)]
    pub case_insensitive: bool,
    /// Callers (or numbers, with --pattern).
    #[arg(required = true)]
    pub callers: Vec<String>,
}

/// An RFC 3339 instant; anything else is answered with the format wanted
/// (a bare `25:00` or `21:00` has no date and no offset).
fn parse_at(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!(
                "{s:?} is not an instant ({e}): use RFC 3339 with a date, a 24-hour time and an \
                 offset, e.g. 2026-11-23T21:00:00-05:00 or 2026-11-24T02:00:00Z"
            )
        })
}

fn parse_attestation(s: &str) -> Result<Attest, String> {
    Attest::parse(s).ok_or_else(|| format!("attestation {s:?}: use A, B, C, none or failed"))
}

fn parse_match_type(s: &str) -> Result<MatchType, String> {
    MatchType::parse(s).ok_or_else(|| {
        format!(
            "unknown match type {s:?} (exact, starts_with, contains, ends_with, wildcard, regex)"
        )
    })
}

pub(super) fn run(args: TestArgs) -> Result<(), CliError> {
    if let Some(p) = &args.pattern {
        return pattern(p, &args);
    }
    let rs = super::check::load(&args.config).map_err(|p| CliError::problems(&p))?;
    let at = args.at.unwrap_or_else(Utc::now);
    let dids: Vec<&str> = args.did.iter().map(String::as_str).collect();
    if let Some(t) = &args.trunk
        && rs.trunk_by_name(t).is_none()
    {
        return Err(CliError::refused(format!("no trunk named {t:?}")));
    }
    let Some(trunk) = rs.select_trunk(args.trunk.as_deref(), dids) else {
        return Err(CliError::refused(
            "no trunk selected: pass --trunk or --did, or set default_trunk (a call would fail open)",
        ));
    };
    let attestation = args.attestation.map(|level| Attestation {
        level,
        source: "callguard test --attestation".into(),
    });
    // An answer given on the command line, as a lookup would have answered.
    let answer = RepAnswer {
        score: args.score,
        name: None,
        category: args.category.as_deref().map(|c| c.to_lowercase().into()),
    };
    let facts = CallerFacts {
        pbx_name: &args.caller_name,
        answer: (!answer.is_empty()).then_some(&answer),
    };
    let mut code = Ok(());
    for caller in &args.callers {
        if args.json {
            match explain::caller_json_attested(
                &rs,
                trunk,
                caller,
                args.anonymous,
                (attestation.as_ref(), facts),
                at,
            ) {
                Ok(line) => println!("{line}"),
                Err(line) => {
                    code = Err(CliError::Reported);
                    println!("{line}");
                }
            }
            continue;
        }
        let start = Instant::now();
        let result = decide_explained_attested(
            &rs,
            (trunk, None),
            caller,
            args.anonymous,
            (attestation.as_ref(), facts),
            at,
        );
        let eval_ns = start.elapsed().as_nanos() as u64;
        match result {
            Ok((d, skipped)) => print_human(&rs, trunk, caller, &d, &skipped, at, eval_ns),
            Err(e) => {
                code = Err(CliError::Reported);
                println!(
                    "{caller}: cannot decide ({e}); a live call would fail {}",
                    match rs.fail {
                        crate::config::types::FailMode::Open => "open (allowed)",
                        crate::config::types::FailMode::Closed => "closed (blocked)",
                    }
                );
            }
        }
    }
    code
}

fn print_human(
    rs: &RuleSet,
    trunk: usize,
    caller: &str,
    d: &crate::policy::Decision,
    skipped: &[crate::policy::decide::Skipped],
    at: DateTime<Utc>,
    eval_ns: u64,
) {
    let t = rs.trunk(trunk);
    println!(
        "{caller} on trunk {} → {} ({}): {}",
        t.name,
        d.verdict.as_str().to_uppercase(),
        d.list.as_str(),
        d.reason(rs)
    );
    println!("  action:     {}", d.action_name(rs));
    println!(
        "  caller:     raw {:?}, E.164 {}, anonymous {}",
        d.caller.raw,
        d.caller.e164.as_deref().unwrap_or("none"),
        if d.caller.anonymous { "yes" } else { "no" }
    );
    if let Some(on) = d.matched_on {
        println!("  matched on: {}", on.as_str());
    }
    if !d.captures.is_empty() {
        let c: Vec<String> = d.captures.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("  captures:   {}", c.join(" "));
    }
    match t.exclusive {
        Exclusive::Never => {}
        Exclusive::Always => println!("  exclusive:  always on (whitelist only)"),
        Exclusive::When(c) => println!(
            "  exclusive:  {} ({} {}: {})",
            if d.exclusive_active {
                "active"
            } else {
                "inactive"
            },
            if c.inside { "inside" } else { "outside" },
            rs.schedule_name(c),
            rs.schedules[c.schedule].1.explain(at)
        ),
    }
    for s in skipped {
        println!(
            "  also matched: {} ({}) — {}",
            rs.rules.name(s.rule),
            s.list.as_str(),
            why(&s.why)
        );
    }
    println!(
        "  decided in: {:.1} µs at {}",
        eval_ns as f64 / 1000.0,
        at.to_rfc3339()
    );
}

fn pattern(p: &str, args: &TestArgs) -> Result<(), CliError> {
    let tester = PatternTester::new(p, args.match_type, args.case_insensitive, default_limit())
        .map_err(|e| match e.column {
            Some(c) => CliError::refused(format!("pattern {p:?}, column {c}: {e}")),
            None => CliError::refused(format!("pattern {p:?}: {e}")),
        })?;
    if !args.json {
        println!(
            "pattern {p:?} ({}): {}",
            tester.compiled.match_type.as_str(),
            tester.explain()
        );
    }
    // The CLI is its own process (no call waits on it, Ctrl-C stops it):
    // no overall budget, but each number's timing stops at an error (a
    // failing evaluation costs the whole backtracking limit every time) and
    // after `TIMING`, as the API's does.
    const RUNS: u32 = 1000;
    const TIMING: Duration = Duration::from_secs(1);
    let budget = Budget::unlimited();
    for n in &args.callers {
        if args.json {
            println!(
                "{}",
                explain::pattern_json(&tester, p, n, RUNS, TIMING, &budget)
            );
            continue;
        }
        let (result, per_match_ns) = explain::timed_test(&tester, n, RUNS, TIMING, &budget);
        match result {
            Ok(r) => {
                let caps = if r.captures.is_empty() {
                    String::new()
                } else {
                    let c: Vec<String> =
                        r.captures.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("  captures: {}", c.join(" "))
                };
                println!(
                    "  {n} → {}  ({:.3} µs per match){caps}",
                    if r.matched {
                        "✓ match"
                    } else {
                        "✗ no match"
                    },
                    per_match_ns / 1000.0
                );
            }
            Err(e) => println!("  {n} → error: {e}"),
        }
    }
    Ok(())
}

/// `--pattern` reads no configuration: the default backtracking limit of
/// `policy.regex_backtrack_limit`.
fn default_limit() -> usize {
    crate::config::types::PolicyTuning::default().regex_backtrack_limit
}
