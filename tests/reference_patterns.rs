//! Every pattern example of `shared/reference/call-filtering.txt`, with the
//! outcome the reference states (✓ match, ✗ no match).

use callguard::config::types::MatchType;
use callguard::policy::tester::PatternTester;

fn tester(pattern: &str, mt: Option<MatchType>) -> PatternTester {
    PatternTester::new(pattern, mt, false, 1_000_000)
        .unwrap_or_else(|e| panic!("pattern {pattern:?} should compile: {e}"))
}

/// Asserts ✓ for `yes` and ✗ for `no`.
fn check(pattern: &str, mt: Option<MatchType>, yes: &[&str], no: &[&str]) {
    let t = tester(pattern, mt);
    for n in yes {
        assert!(
            t.test(n).unwrap().matched,
            "{pattern:?} ({mt:?}) should match {n}"
        );
    }
    for n in no {
        assert!(
            !t.test(n).unwrap().matched,
            "{pattern:?} ({mt:?}) should not match {n}"
        );
    }
}

use MatchType::*;

#[test]
fn exact_match_blocks_one_number() {
    check(
        "+15551234567",
        Some(Exact),
        &["+15551234567"],
        &["+15551234568", "+155512345678", "5551234567"],
    );
}

#[test]
fn starts_with_country_and_premium_prefixes() {
    check(
        "+44",
        Some(StartsWith),
        &["+442071234567", "+44"],
        &["+14420712345"],
    );
    check(
        "+1900",
        Some(StartsWith),
        &["+19005551234"],
        &["+18005551234"],
    );
    // A trailing '*' is ignored for starts_with: `+44*` ≡ `+44`.
    check(
        "+44*",
        Some(StartsWith),
        &["+442071234567"],
        &["+33123456789"],
    );
    check(
        "+1",
        Some(StartsWith),
        &["+15551234567", "+14165550000"],
        &["+442071234567"],
    );
}

#[test]
fn contains_1234() {
    check(
        "*1234*",
        Some(Contains),
        &["+15551234567", "+1234", "991234"],
        &["+15551243567"],
    );
    // The same pattern without a match type is a wildcard with the same meaning.
    check("*1234*", None, &["+15551234567"], &["+15551243567"]);
}

#[test]
fn wildcard_range_of_ten_thousand() {
    check(
        "+1555123____",
        None,
        &["+15551230000", "+15551239999", "+15551234567"],
        &["+1555123999", "+15551240000", "+155512300000"],
    );
}

#[test]
fn single_digit_wildcard_every_tenth_number() {
    check(
        "+1555123___0",
        None,
        &["+15551230000", "+15551231230", "+15551239990"],
        &["+15551230001", "+155512300"],
    );
}

#[test]
fn multiple_digit_wildcard_ignores_prefix_variations() {
    check(
        "+1*5551234567",
        None,
        &["+15551234567", "+115551234567", "+12225551234567"],
        &["+15551234568"],
    );
}

#[test]
fn area_and_country_code_wildcards() {
    check("+1900*", None, &["+19005550000"], &["+18005550000"]);
    check("+1976*", None, &["+19765550000"], &["+19775550000"]);
    check("+44*", None, &["+442071234567"], &["+4"]);
    check("+86*", None, &["+8613800138000"], &["+85212345678"]);
    check("+234*", None, &["+2348012345678"], &["+2338012345678"]);
}

#[test]
fn multiple_digit_wildcard_reference_table() {
    check(
        "+1555*",
        None,
        &["+1555", "+15551234567", "+15559999999999"],
        &["+1556"],
    );
}

#[test]
fn start_and_end_anchors() {
    check("^+1555", None, &["+15551234567", "+1555"], &["+11555"]);
    check("4567$", None, &["+15551234567", "4567"], &["+15554567890"]);
}

#[test]
fn character_class_and_negation() {
    check(
        "+1555[0-5]*",
        None,
        &["+15550123", "+15555555"],
        &["+15556789"],
    );
    check(
        "+1555[^09]*",
        None,
        &["+15551234", "+15558888"],
        &["+15550123", "+15559999"],
    );
}

#[test]
fn whitelist_examples() {
    check(
        "+44207_______",
        None,
        &["+442071234567"],
        &["+44207123456", "+442081234567"],
    );
    check("+442071*", None, &["+442071234567"], &["+442081234567"]);
    check("+656*", None, &["+6561234567"], &["+6571234567"]);
}

#[test]
fn regex_international_except_north_america_needs_look_around() {
    let t = tester(r"^(?!\+1)[+][0-9]+$", Some(Regex));
    assert!(t.explain().contains("look-around"), "{}", t.explain());
    for n in ["+442071234567", "+2348012345678", "+33123456789"] {
        assert!(t.test(n).unwrap().matched, "{n}");
    }
    for n in ["+15551234567", "+18005550100", "5551234567", "Anonymous"] {
        assert!(!t.test(n).unwrap().matched, "{n}");
    }
}

#[test]
fn regex_premium_rate_numbers() {
    check(
        r"^(\+1900|\+1976|\+1809)",
        Some(Regex),
        &["+19005551234", "+19765551234", "+18095551234"],
        &["+18005551234"],
    );
    check(
        r"^(\+1900|\+1976|\+1809|\+1284|\+1649|\+1242)",
        Some(Regex),
        &["+12845550000", "+16495550000", "+12425550000"],
        &["+12125550000"],
    );
}

#[test]
fn regex_toll_fraud_countries() {
    check(
        r"^(\+234|\+252|\+225|\+223|\+233|\+254)",
        Some(Regex),
        &[
            "+2348012345678",
            "+252612345678",
            "+22507123456",
            "+22376123456",
            "+233201234567",
            "+254712345678",
        ],
        &["+2448012345678", "+15551234567"],
    );
}

#[test]
fn regex_us_mobile_numbers_only() {
    check(
        r"^(\+1[2-9]\d{2}[2-9]\d{6})$",
        Some(Regex),
        &["+12125551234", "+14155552671"],
        &["+11125551234", "+12121551234", "+121255512345"],
    );
}

#[test]
fn regex_anonymous_variations_are_case_sensitive() {
    let p = r"^(Anonymous|Private|Restricted|Unknown|Unavailable|Blocked)$";
    check(
        p,
        Some(Regex),
        &[
            "Anonymous",
            "Private",
            "Restricted",
            "Unknown",
            "Unavailable",
            "Blocked",
        ],
        &["anonymous", "PRIVATE", "+15551234567"],
    );
}

#[test]
fn regex_specific_area_codes_and_e164_validation() {
    check(
        r"^(\+1(555|800|888|877|866|855|844|833))",
        Some(Regex),
        &["+18005550100", "+15551234567", "+18335550000"],
        &["+12125550000"],
    );
    check(
        r"^\+[1-9]\d{1,14}$",
        Some(Regex),
        &["+15551234567", "+442071234567", "+12"],
        &["+05551234567", "5551234567", "+1234567890123456"],
    );
}

#[test]
fn pattern_tester_example() {
    check(
        "+1555*",
        None,
        &["+15551234567", "+15559999999"],
        &["+15561234567", "+4415551234567"],
    );
}

#[test]
fn anonymous_words_as_patterns() {
    check(
        "Anonymous",
        None,
        &["Anonymous"],
        &["anonymous", "+15551234567"],
    );
    check("Private", None, &["Private"], &["Anonymous"]);
    check("Restricted", None, &["Restricted"], &["Private"]);
    check(
        "Anonymous|Private|Restricted|Unknown",
        Some(Regex),
        &["Anonymous", "Private", "Restricted", "Unknown"],
        &["+15551234567"],
    );
}

#[test]
fn case_sensitivity_troubleshooting() {
    // "Pattern: anonymous, Caller ID: Anonymous → No match (case-sensitive)".
    check("anonymous", None, &["anonymous"], &["Anonymous"]);
    // "Solution: use regex with case-insensitive flag, or (anonymous|Anonymous|ANONYMOUS)".
    let ci = PatternTester::new("anonymous", None, true, 1_000_000).unwrap();
    assert!(ci.test("Anonymous").unwrap().matched);
    assert!(ci.test("ANONYMOUS").unwrap().matched);
    check(
        "(anonymous|Anonymous|ANONYMOUS)",
        Some(Regex),
        &["Anonymous", "ANONYMOUS"],
        &["AnonYmous"],
    );
}

#[test]
fn regex_escape_troubleshooting() {
    // "Incorrect: +1 (unescaped +)": not a valid regex, refused with the reason.
    let err = PatternTester::new("+1", Some(Regex), false, 1_000_000)
        .err()
        .expect("`+1` is not a valid regex");
    assert!(err.message.contains("invalid regex"), "{}", err.message);
    check(r"\+1", Some(Regex), &["+15551234567"], &["15551234567"]);
}

#[test]
fn wildcard_star_in_the_middle_and_at_the_end() {
    // The reference calls `+1555*123` a syntax error for "starts with +1555123"; in
    // callguard it is valid and means "starts +1555, ends 123" — so it does not
    // do what that user wanted, and `+1555123*` does.
    check("+1555*123", None, &["+15559999123"], &["+15551234567"]);
    check("+1555123*", None, &["+15551234567"], &["+15559999123"]);
}

#[test]
fn narrow_pattern_and_consolidation() {
    check("+15559*", None, &["+15559123456"], &["+15551234567"]);
    // Three prefixes and one regex decide the same numbers.
    let re = tester(r"^(\+1900|\+1976|\+1809)", Some(Regex));
    let prefixes: Vec<_> = ["+1900*", "+1976*", "+1809*"]
        .iter()
        .map(|p| tester(p, None))
        .collect();
    for n in [
        "+19005550000",
        "+19765550000",
        "+18095550000",
        "+18005550000",
        "+1900",
    ] {
        let any = prefixes.iter().any(|t| t.test(n).unwrap().matched);
        assert_eq!(any, re.test(n).unwrap().matched, "{n}");
    }
    // "Replace Regex with Wildcards": same numbers of the right length.
    let re = tester(r"^(\+1555[0-9]{7})$", Some(Regex));
    let wc = tester("+1555*", None);
    for n in ["+15551234567", "+15559999999"] {
        assert!(
            re.test(n).unwrap().matched && wc.test(n).unwrap().matched,
            "{n}"
        );
    }
}

#[test]
fn regex_captures_are_reported() {
    let t = tester(r"^\+(?<cc>44|33)(?<rest>\d+)$", Some(Regex));
    let r = t.test("+442071234567").unwrap();
    assert!(r.matched);
    assert_eq!(
        r.captures,
        vec![
            ("cc".to_string(), "44".to_string()),
            ("rest".to_string(), "2071234567".to_string())
        ]
    );
    let t = tester("+44207_______", None);
    assert!(t.test("+442071234567").unwrap().captures.is_empty());
}

#[test]
fn invalid_wildcards_are_refused_with_a_column() {
    let e = PatternTester::new("+1555[0-5", None, false, 1000)
        .err()
        .unwrap();
    assert_eq!(e.column, Some(6), "{e:?}");
    let e = PatternTester::new("+15]55", Some(Wildcard), false, 1000)
        .err()
        .unwrap();
    assert_eq!(e.column, Some(4), "{e:?}");
    assert!(PatternTester::new("+1555[9-0]", None, false, 1000).is_err());
    assert!(PatternTester::new("", None, false, 1000).is_err());
    assert!(PatternTester::new("*", Some(StartsWith), false, 1000).is_err());
}
