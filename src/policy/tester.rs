//! The bare pattern tester of the reference: does this pattern match these
//! numbers, why, with which captures, and how fast.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::index::{ListIndex, ListIndexBuilder, MatchError, MatchedOn, Subject};
use super::pattern::{self, CompiledPattern, Matcher, PatternError};
use crate::config::types::MatchType;

pub struct PatternTester {
    pub compiled: CompiledPattern,
    index: ListIndex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternResult {
    pub matched: bool,
    pub captures: Vec<(String, String)>,
}

impl PatternTester {
    pub fn new(
        pattern: &str,
        match_type: Option<MatchType>,
        case_insensitive: bool,
        backtrack_limit: usize,
    ) -> Result<PatternTester, PatternError> {
        let compiled = pattern::compile(pattern, match_type, case_insensitive)?;
        let mut b = ListIndexBuilder::default();
        b.add(0, &compiled, 0);
        let index = b.build(backtrack_limit).map_err(|e| PatternError {
            message: e,
            column: None,
        })?;
        Ok(PatternTester { compiled, index })
    }

    /// Tests one caller ID exactly as given.
    pub fn test(&self, subject: &str) -> Result<PatternResult, MatchError> {
        let subject = subject.trim();
        let mut matched = false;
        self.index.for_each_match(
            &[Subject::new(subject, MatchedOn::Raw)],
            false,
            |_, _| true,
            |_, _| matched = true,
        )?;
        let captures = if matched {
            self.index.captures(0, subject)
        } else {
            Vec::new()
        };
        Ok(PatternResult { matched, captures })
    }

    /// What the pattern means, in words.
    pub fn explain(&self) -> String {
        let c = &self.compiled;
        match (&c.matcher, c.match_type) {
            (Matcher::Exact(s), _) => format!("exactly {s}"),
            (Matcher::Prefix(s), _) => format!("starts with {s}"),
            (Matcher::Suffix(s), _) => format!("ends with {s}"),
            (Matcher::Contains(s), _) => format!("contains {s}"),
            (Matcher::Regex(re), MatchType::Wildcard) => {
                format!("wildcard {} (as regex {re})", describe_wildcard(&c.source))
            }
            (Matcher::Regex(re), _) => format!("regex {re} (searches anywhere unless anchored)"),
            (Matcher::Fancy(re), _) => format!("regex {re} with look-around (backtracking engine)"),
        }
    }
}

/// How much work one tester request may do: a time limit and a cancel flag,
/// checked between evaluations (one evaluation is itself bounded by the rule
/// set's backtracking limit). The tester runs patterns nobody has vetted, so
/// without this a request of a thousand numbers against a pathological regex
/// would run for minutes after its client had given up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget<'a> {
    start: Instant,
    limit: Option<Duration>,
    cancel: Option<&'a AtomicBool>,
}

/// Why a budgeted run stopped before it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The time limit (given here) ran out.
    TimeUp(Duration),
    /// Whoever asked is gone (the HTTP client disconnected).
    Cancelled,
}

impl<'a> Budget<'a> {
    /// No limit: `check` always passes.
    pub(crate) fn unlimited() -> Budget<'static> {
        Budget {
            start: Instant::now(),
            limit: None,
            cancel: None,
        }
    }

    /// `limit` from now, stopped early when `cancel` is set.
    pub(crate) fn new(limit: Duration, cancel: Option<&'a AtomicBool>) -> Budget<'a> {
        Budget {
            start: Instant::now(),
            limit: Some(limit),
            cancel,
        }
    }

    /// The time limit, if any.
    pub(crate) fn limit(&self) -> Option<Duration> {
        self.limit
    }

    /// `Err` once the work should stop: cancelled, or the time is up.
    pub(crate) fn check(&self) -> Result<(), Stop> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Stop::Cancelled);
        }
        match self.limit {
            Some(limit) if self.start.elapsed() >= limit => Err(Stop::TimeUp(limit)),
            _ => Ok(()),
        }
    }
}

fn describe_wildcard(p: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut lit = String::new();
    let mut chars = p.chars().peekable();
    let flush = |lit: &mut String, parts: &mut Vec<String>| {
        if !lit.is_empty() {
            parts.push(format!("\"{lit}\""));
            lit.clear();
        }
    };
    let mut first = true;
    while let Some(ch) = chars.next() {
        match ch {
            '^' if first => parts.push("start".into()),
            '$' if chars.peek().is_none() => {
                flush(&mut lit, &mut parts);
                parts.push("end".into());
            }
            '_' => {
                flush(&mut lit, &mut parts);
                parts.push("one digit".into());
            }
            '*' => {
                flush(&mut lit, &mut parts);
                parts.push("any run".into());
            }
            '[' => {
                flush(&mut lit, &mut parts);
                let mut class = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    class.push(c);
                }
                match class.strip_prefix('^') {
                    Some(neg) => parts.push(format!("one char not in [{neg}]")),
                    None => parts.push(format!("one char in [{class}]")),
                }
            }
            c => lit.push(c),
        }
        first = false;
    }
    flush(&mut lit, &mut parts);
    parts.join(", then ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `proptest_patterns` (`no_pattern_panics`): a regex rule `\¡` (an
    /// escaped multi-byte character, which fancy-regex takes) panicked the rule-set
    /// compiler; the index relaxes it whole (`index`'s tests) and the tester matches it.
    #[test]
    fn an_escaped_multibyte_character_is_tested_whole() {
        let tester = PatternTester::new(
            r"\¡",
            Some(crate::config::types::MatchType::Regex),
            true,
            1_000,
        )
        .expect("fancy-regex takes the escape");
        assert!(tester.test("¡").expect("within budget").matched);
    }

    #[test]
    fn budget_stops_on_time_and_on_cancel() {
        assert_eq!(Budget::unlimited().check(), Ok(()));
        let flag = AtomicBool::new(false);
        let b = Budget::new(Duration::from_secs(3600), Some(&flag));
        assert_eq!(b.check(), Ok(()));
        flag.store(true, Ordering::Relaxed);
        assert_eq!(b.check(), Err(Stop::Cancelled));
        let b = Budget::new(Duration::ZERO, None);
        assert_eq!(b.check(), Err(Stop::TimeUp(Duration::ZERO)));
    }
}
