//! Reputation as a rule condition (pure): what a lookup answered for a
//! caller ([`RepAnswer`]), a rule's condition on it ([`RepCond`]: a score
//! range, categories, a caller-name pattern) and whether it holds. The
//! lookup itself (HTTP, files, cache, breaker) is `crate::reputation`'s; the
//! policy only sees its answer, or none when there was none in time.

use std::sync::Arc;

use super::pattern::{self, Matcher, PatternError};
use crate::config::types::MatchType;

/// What a provider said of a number. A number the provider does not know
/// is `None` at the lookup level (a negative answer), never a zero score.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepAnswer {
    /// 0 (clean) … 100 (certainly unwanted), normalised from the provider's scale.
    pub score: Option<u8>,
    /// The caller's name (CNAM) as the provider knows it.
    pub name: Option<Box<str>>,
    /// The provider's category (`fraud`, `telemarketing`, …), lower case.
    pub category: Option<Box<str>>,
}

impl RepAnswer {
    /// An answer that says nothing (a negative answer).
    pub fn is_empty(&self) -> bool {
        self.score.is_none() && self.name.is_none() && self.category.is_none()
    }
}

/// What a decision knows of the caller besides the number: the name the PBX
/// delivered and the lookup's answer (`None`: no lookup, or none in time).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallerFacts<'a> {
    pub pbx_name: &'a str,
    pub answer: Option<&'a RepAnswer>,
}

/// A caller-name pattern: the rule list's match types, case-insensitive
/// unless the rule says otherwise.
#[derive(Debug, Clone)]
pub struct NameMatcher {
    pub source: Box<str>,
    pub match_type: MatchType,
    matcher: NameMatch,
}

#[derive(Debug, Clone)]
enum NameMatch {
    Regex(regex::Regex),
    Fancy(Arc<fancy_regex::Regex>),
}

impl NameMatcher {
    /// Compiles `pattern` as `match_type` (wildcard when `None`: `*SPAM*`).
    pub(crate) fn compile(
        pattern: &str,
        match_type: Option<MatchType>,
        case_insensitive: bool,
        backtrack_limit: usize,
    ) -> Result<NameMatcher, PatternError> {
        let mt = match_type.unwrap_or(MatchType::Wildcard);
        let c = pattern::compile(pattern, Some(mt), false)?;
        let re = match c.matcher {
            Matcher::Exact(s) => format!("^{}$", regex::escape(&s)),
            Matcher::Prefix(s) => format!("^{}", regex::escape(&s)),
            Matcher::Suffix(s) => format!("{}$", regex::escape(&s)),
            Matcher::Contains(s) => regex::escape(&s),
            Matcher::Regex(r) | Matcher::Fancy(r) => r,
        };
        let re = if case_insensitive {
            format!("(?i){re}")
        } else {
            re
        };
        let matcher = match regex::Regex::new(&re) {
            Ok(r) => NameMatch::Regex(r),
            Err(_) => NameMatch::Fancy(Arc::new(
                fancy_regex::RegexBuilder::new(&re)
                    .backtrack_limit(backtrack_limit)
                    .build()
                    .map_err(|e| PatternError {
                        message: e.to_string(),
                        column: None,
                    })?,
            )),
        };
        Ok(NameMatcher {
            source: c.source.into(),
            match_type: mt,
            matcher,
        })
    }

    /// Whether `name` matches; a look-around pattern that gives up on its
    /// backtracking budget does not match.
    pub fn is_match(&self, name: &str) -> bool {
        match &self.matcher {
            NameMatch::Regex(r) => r.is_match(name),
            NameMatch::Fancy(r) => r.is_match(name).unwrap_or(false),
        }
    }
}

/// A rule's reputation condition; every part present must hold (AND).
#[derive(Debug, Clone, Default)]
pub struct RepCond {
    /// `reputation: { above: 80 }`: score strictly above.
    pub above: Option<u8>,
    /// `reputation: { below: 20 }`: score strictly below.
    pub below: Option<u8>,
    /// `category: [fraud, telemarketing]` (lower case).
    pub categories: Vec<Box<str>>,
    /// `caller_name: { pattern: "*SPAM*" }`: on the looked-up name or the
    /// name the PBX delivered.
    pub name: Option<NameMatcher>,
}

impl RepCond {
    /// Whether the condition holds for the call. A part that needs the
    /// lookup's answer does not hold without one: a late lookup never blocks.
    pub fn holds(&self, facts: &CallerFacts<'_>) -> bool {
        let a = facts.answer;
        if self.above.is_some() || self.below.is_some() {
            let Some(score) = a.and_then(|a| a.score) else {
                return false;
            };
            if self.above.is_some_and(|t| score <= t) || self.below.is_some_and(|t| score >= t) {
                return false;
            }
        }
        if !self.categories.is_empty() {
            let Some(cat) = a.and_then(|a| a.category.as_deref()) else {
                return false;
            };
            if !self.categories.iter().any(|c| c.eq_ignore_ascii_case(cat)) {
                return false;
            }
        }
        if let Some(m) = &self.name {
            let looked_up = a
                .and_then(|a| a.name.as_deref())
                .is_some_and(|n| m.is_match(n));
            let delivered = !facts.pbx_name.is_empty() && m.is_match(facts.pbx_name);
            if !looked_up && !delivered {
                return false;
            }
        }
        true
    }

    /// The condition as a user wrote it: `reputation above 80, category
    /// [fraud], caller_name wildcard *SPAM*`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (self.above, self.below) {
            (Some(a), Some(b)) => parts.push(format!("reputation above {a} below {b}")),
            (Some(a), None) => parts.push(format!("reputation above {a}")),
            (None, Some(b)) => parts.push(format!("reputation below {b}")),
            (None, None) => {}
        }
        if !self.categories.is_empty() {
            let c: Vec<&str> = self.categories.iter().map(|c| &**c).collect();
            parts.push(format!("category [{}]", c.join(", ")));
        }
        if let Some(m) = &self.name {
            parts.push(format!(
                "caller_name {} {}",
                m.match_type.as_str(),
                m.source
            ));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(score: Option<u8>, name: Option<&str>, cat: Option<&str>) -> RepAnswer {
        RepAnswer {
            score,
            name: name.map(Into::into),
            category: cat.map(Into::into),
        }
    }

    #[test]
    fn score_category_and_name_conditions() {
        let cond = RepCond {
            above: Some(80),
            ..Default::default()
        };
        let hi = answer(Some(81), None, None);
        let edge = answer(Some(80), None, None);
        fn facts(a: Option<&RepAnswer>) -> CallerFacts<'_> {
            CallerFacts {
                pbx_name: "",
                answer: a,
            }
        }
        assert!(cond.holds(&facts(Some(&hi))));
        assert!(!cond.holds(&facts(Some(&edge))));
        assert!(!cond.holds(&facts(None)), "no answer never matches");

        let cat = RepCond {
            categories: vec!["fraud".into(), "telemarketing".into()],
            ..Default::default()
        };
        assert!(cat.holds(&facts(Some(&answer(None, None, Some("Fraud"))))));
        assert!(!cat.holds(&facts(Some(&answer(None, None, Some("survey"))))));

        let name = RepCond {
            name: Some(NameMatcher::compile("*spam*", None, true, 1000).unwrap()),
            ..Default::default()
        };
        assert!(name.holds(&facts(Some(&answer(None, Some("SPAM LIKELY"), None)))));
        // The PBX's own name counts without any lookup.
        assert!(name.holds(&CallerFacts {
            pbx_name: "Likely Spam",
            answer: None,
        }));
        assert!(!name.holds(&CallerFacts {
            pbx_name: "Alice",
            answer: Some(&answer(Some(99), Some("BOB"), None)),
        }));
        assert_eq!(name.describe(), "caller_name wildcard *spam*");
    }

    #[test]
    fn name_match_types() {
        let m = |p: &str, t: MatchType| NameMatcher::compile(p, Some(t), true, 1000).unwrap();
        assert!(m("acme", MatchType::Exact).is_match("ACME"));
        assert!(!m("acme", MatchType::Exact).is_match("ACME CORP"));
        assert!(m("acme", MatchType::StartsWith).is_match("Acme corp"));
        assert!(m("corp", MatchType::EndsWith).is_match("Acme Corp"));
        assert!(m("V[0-9]+$", MatchType::Regex).is_match("WIRELESS CALLER V12"));
        assert!(m("^(?!ACME).*LTD", MatchType::Regex).is_match("Scam Ltd"));
        assert!(NameMatcher::compile("(", Some(MatchType::Regex), true, 10).is_err());
    }
}
