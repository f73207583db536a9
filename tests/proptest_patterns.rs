//! Property tests of the wildcard compiler against a reference matcher
//! written from the README's grammar (`support/oracles.rs`), the `cargo test`
//! counterpart of the `wildcard` fuzz target:
//! - every well-formed wildcard compiles, and matches exactly the caller IDs
//!   the reference matches (IDs drawn from the pattern itself, mutated, and
//!   random numbers), with and without `case_insensitive`;
//! - any string either is refused with a column inside the pattern, or (when
//!   the grammar defines it) matches like the reference;
//! - no pattern of any match type panics the compiler or the tester.

#[path = "support/oracles.rs"]
mod oracles;

use callguard::config::types::MatchType;
use callguard::policy::tester::PatternTester;
use oracles::Tok;
use proptest::prelude::*;

/// A member of a class: digits mostly, `+`, some letters.
fn member() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('0', '9'),
        1 => Just('+'),
        2 => prop::char::range('a', 'f'),
        1 => prop::char::range('A', 'F'),
    ]
}

fn tok() -> impl Strategy<Value = Tok> {
    let class = (
        any::<bool>(),
        prop::collection::vec(
            (member(), member()).prop_map(|(a, b)| if a <= b { (a, b) } else { (b, a) }),
            1..4,
        ),
    )
        .prop_map(|(negated, ranges)| Tok::Class { negated, ranges });
    prop_oneof![
        8 => prop::char::range('0', '9').prop_map(Tok::Lit),
        1 => Just(Tok::Lit('+')),
        1 => prop::char::range('a', 'c').prop_map(Tok::Lit),
        1 => prop::char::range('A', 'C').prop_map(Tok::Lit),
        4 => Just(Tok::Digit),
        2 => Just(Tok::Any),
        2 => class,
    ]
}

/// A well-formed wildcard as text; singles and ranges as the README shows them.
fn render(toks: &[Tok], caret: bool, dollar: bool) -> String {
    let mut s = String::new();
    if caret {
        s.push('^');
    }
    for t in toks {
        match t {
            Tok::Digit => s.push('_'),
            Tok::Any => s.push('*'),
            Tok::Lit(c) => s.push(*c),
            Tok::Class { negated, ranges } => {
                s.push('[');
                if *negated {
                    s.push('^');
                }
                for (lo, hi) in ranges {
                    s.push(*lo);
                    if lo != hi {
                        s.push('-');
                        s.push(*hi);
                    }
                }
                s.push(']');
            }
        }
    }
    if dollar {
        s.push('$');
    }
    s
}

fn wildcard() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(tok(), 1..10),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(toks, caret, dollar)| render(&toks, caret, dollar))
}

/// A caller ID the pattern is likely to match: each element instantiated
/// (seeded by `choices`), then padded so open ends are exercised.
fn instance(pattern: &str, choices: &[u8], pad_front: &str, pad_back: &str) -> String {
    let Ok(r) = oracles::RefWildcard::parse(pattern, false) else {
        return pattern.to_string();
    };
    let mut out = String::from(pad_front);
    let mut pick = choices.iter().cycle().copied();
    for t in &r.toks {
        let n = pick.next().unwrap_or(0);
        match t {
            Tok::Digit => out.push(char::from(b'0' + n % 10)),
            Tok::Lit(c) => out.push(*c),
            Tok::Any => {
                for _ in 0..n % 4 {
                    out.push(char::from(b'0' + pick.next().unwrap_or(0) % 10));
                }
            }
            Tok::Class { ranges, .. } => {
                let (lo, hi) = ranges[usize::from(n) % ranges.len()];
                let span = u32::from(hi) - u32::from(lo) + 1;
                out.push(char::from_u32(u32::from(lo) + u32::from(n) % span).unwrap_or(lo));
            }
        }
    }
    out.push_str(pad_back);
    out
}

fn mutate(s: &str, edits: &[(usize, u8)]) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for &(at, what) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % chars.len()
        };
        match what % 4 {
            0 if !chars.is_empty() => {
                chars.remove(at);
            }
            1 => chars.insert(at, char::from(b'0' + what % 10)),
            2 if !chars.is_empty() => chars[at] = char::from(b'0' + what % 10),
            _ => chars.insert(at, ['+', 'a', 'B', '*', '_'][usize::from(what) % 5]),
        }
    }
    chars.into_iter().collect()
}

fn subjects(
    pattern: &str,
    choices: &[u8],
    edits: &[(usize, u8)],
    numbers: &[String],
) -> Vec<String> {
    let exact = instance(pattern, choices, "", "");
    let mut out = vec![
        exact.clone(),
        instance(pattern, choices, "+1", ""),
        instance(pattern, choices, "", "9"),
        instance(pattern, choices, "44", "01"),
        mutate(&exact, edits),
        mutate(&exact, &edits[..edits.len() / 2]),
        exact.to_uppercase(),
        exact.to_lowercase(),
    ];
    out.extend(numbers.iter().cloned());
    out
}

/// Strings rich in the grammar's special characters, and a few others.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vec![
                '_', '*', '[', ']', '^', '$', '-', '+', '\\', ' ', '0', '1', '5', '9', 'a', 'Z', '(', '?', '!', '.',
            ]),
            1 => any::<char>(),
        ],
        0..16,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn wildcards_match_like_the_reference(
        pattern in wildcard(),
        choices in prop::collection::vec(any::<u8>(), 1..12),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        numbers in prop::collection::vec("[+]?[0-9]{0,14}", 0..6),
        case_insensitive: bool,
    ) {
        let tester = PatternTester::new(&pattern, Some(MatchType::Wildcard), case_insensitive, 1_000_000);
        prop_assert!(tester.is_ok(), "{pattern:?} is in the grammar but refused: {:?}", tester.err());
        let subjects = subjects(&pattern, &choices, &edits, &numbers);
        let subjects: Vec<&str> = subjects.iter().map(String::as_str).collect();
        oracles::check_wildcard(&pattern, case_insensitive, &subjects);
        // Without a match type, a pattern with wildcard syntax is a wildcard.
        if pattern.contains(['_', '*', '[', '^', '$']) {
            let inferred = PatternTester::new(&pattern, None, case_insensitive, 1_000_000).expect("compiles");
            let explicit = tester.expect("compiles");
            for s in &subjects {
                prop_assert_eq!(
                    inferred.test(s).expect("no budget").matched,
                    explicit.test(s).expect("no budget").matched
                );
            }
        }
    }

    #[test]
    fn any_string_is_refused_cleanly_or_matches_like_the_reference(
        pattern in soup(),
        numbers in prop::collection::vec("[+]?[0-9a-z]{0,12}", 0..8),
        case_insensitive: bool,
    ) {
        let subjects: Vec<&str> = numbers.iter().map(String::as_str).collect();
        oracles::check_wildcard(&pattern, case_insensitive, &subjects);
    }

    /// Every match type, with a small backtracking budget: the compiler
    /// answers Ok or a message, the tester Ok or a clean `MatchError`.
    #[test]
    fn no_pattern_panics(
        pattern in soup(),
        match_type in prop::sample::select(vec![
            None, Some(MatchType::Exact), Some(MatchType::StartsWith), Some(MatchType::EndsWith),
            Some(MatchType::Contains), Some(MatchType::Wildcard), Some(MatchType::Regex),
        ]),
        case_insensitive: bool,
        subject in "[+]?[0-9a-z]{0,40}",
    ) {
        match PatternTester::new(&pattern, match_type, case_insensitive, 1_000) {
            Ok(tester) => {
                let _ = tester.explain();
                let _ = tester.test(&subject);
            }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}

/// The corners the generators above found or could miss, pinned.
#[test]
fn grammar_corners() {
    let numbers = [
        "", "1", "12", "123", "+1", "+12", "a", "A", "\\", "12\\", "x12", "5", "0", "-",
    ];
    for pattern in [
        "^", "$", "^$", "*", "**", "^*", "*$", "^*$", "_", "[0-5]", "[^09]", "[+]", "[a-c]", "12$",
        "^12", "^12$", "*12*", "1*2", "[5-0]", "[]", "[^]", "[-1]", "[1-]", "]", "[", "1^2", "1$2",
        "12\\$", "1_\\$", "[1-2-3]", "[1-23]",
    ] {
        for ci in [false, true] {
            oracles::check_wildcard(pattern, ci, &numbers);
        }
    }
}
