//! What must hold for any input to the untrusted-input parsers, shared by the
//! property tests (`tests/proptest_*.rs`) and the fuzz targets (`fuzz/`, which
//! include this file by path) so that both check the same things.
//!
//! - [`decode_stream`]: drives a `tokio_util` decoder the way `FramedRead`
//!   does, over any split of the bytes, and checks the buffer bound.
//! - [`RefWildcard`]: an independent matcher for the wildcard grammar as the
//!   README states it, to compare the compiled pattern against.
//! - [`list_roundtrip`]: export → import of rows is lossless, in every format.
//! - [`config_outcome`]: loading and compiling a config gives a rule set or
//!   located problems.

#![allow(dead_code)]

use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Everything a decoder produced from one stream: its frames, then the kind
/// of the error that ended it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    pub frames: Vec<T>,
    pub error: Option<&'static str>,
}

/// Feeds `bytes` to `codec` in pieces ending at each of `cuts` (offsets,
/// any order, out-of-range ones ignored), decoding every frame after each
/// piece as `FramedRead` does, then signals EOF.
///
/// Panics (a finding) when, after the decoder asked for more bytes, its buffer
/// holds more than `bound` bytes: a peer could then grow it without limit.
/// Also when it yields more frames than bytes (each frame consumes at least
/// one byte, so more means a loop that does not advance).
pub fn decode_stream<D: Decoder>(
    mut codec: D,
    bytes: &[u8],
    cuts: &[usize],
    bound: usize,
    kind: impl Fn(&D::Error) -> &'static str,
) -> Decoded<D::Item> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .copied()
        .filter(|&c| c > 0 && c < bytes.len())
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    cuts.push(bytes.len());
    let mut out = Decoded {
        frames: Vec::new(),
        error: None,
    };
    let mut buf = BytesMut::new();
    let mut from = 0;
    for to in cuts {
        buf.extend_from_slice(&bytes[from..to]);
        from = to;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    out.frames.push(frame);
                    assert!(
                        out.frames.len() <= bytes.len(),
                        "more frames than input bytes: the decoder does not advance"
                    );
                }
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(kind(&e));
                    return out;
                }
            }
        }
        assert!(
            buf.len() <= bound,
            "decoder waits for more with {} bytes buffered (bound {bound})",
            buf.len()
        );
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(frame)) => {
                out.frames.push(frame);
                assert!(
                    out.frames.len() <= bytes.len(),
                    "more frames than input bytes at EOF: the decoder does not advance"
                );
            }
            Ok(None) => return out,
            Err(e) => {
                out.error = Some(kind(&e));
                return out;
            }
        }
    }
}

/// The error kinds of the FastAGI decoder, for comparing two runs.
pub fn agi_error_kind(e: &callguard::pbx::agi::codec::AgiError) -> &'static str {
    use callguard::pbx::agi::codec::AgiError::*;
    match e {
        LineTooLong { .. } => "LineTooLong",
        TooManyEnvLines { .. } => "TooManyEnvLines",
        NotUtf8 { .. } => "NotUtf8",
        BadEnvLine { .. } => "BadEnvLine",
        BadReply { .. } => "BadReply",
        Truncated(_) => "Truncated",
        CommandTooLong(_) => "CommandTooLong",
        Io(_) => "Io",
    }
}

/// The error kinds of the Event Socket decoder, for comparing two runs.
pub fn esl_error_kind(e: &callguard::pbx::esl::codec::EslCodecError) -> &'static str {
    use callguard::pbx::esl::codec::EslCodecError::*;
    match e {
        HeaderTooLarge { .. } => "HeaderTooLarge",
        BodyTooLarge { .. } => "BodyTooLarge",
        BadContentLength(_) => "BadContentLength",
        BadHeaderLine { .. } => "BadHeaderLine",
        Truncated { .. } => "Truncated",
        Io(_) => "Io",
    }
}

/// The FastAGI decoder's whole contract on `bytes` split at `cuts`: within
/// its bounds, and the same frames and error as when all bytes arrive in one
/// read (TCP may cut a stream anywhere).
pub fn check_agi(bytes: &[u8], cuts: &[usize], max_line: usize, max_env_lines: usize) {
    use callguard::pbx::agi::codec::AgiCodec;
    let whole = decode_stream(
        AgiCodec::with_limits(max_line, max_env_lines),
        bytes,
        &[],
        max_line,
        agi_error_kind,
    );
    let split = decode_stream(
        AgiCodec::with_limits(max_line, max_env_lines),
        bytes,
        cuts,
        max_line,
        agi_error_kind,
    );
    assert_eq!(
        whole, split,
        "splitting the stream changed what was decoded"
    );
}

/// The Event Socket decoder's whole contract, as [`check_agi`]. While
/// waiting it may hold a header block of at most `max_header` bytes plus the
/// `\r` of its terminator, or a body of at most `max_body`.
pub fn check_esl(bytes: &[u8], cuts: &[usize], max_header: usize, max_body: usize) {
    use callguard::pbx::esl::codec::EslCodec;
    let bound = (max_header + 1).max(max_body);
    let whole = decode_stream(
        EslCodec::new(max_header, max_body),
        bytes,
        &[],
        bound,
        esl_error_kind,
    );
    let split = decode_stream(
        EslCodec::new(max_header, max_body),
        bytes,
        cuts,
        bound,
        esl_error_kind,
    );
    assert_eq!(
        whole, split,
        "splitting the stream changed what was decoded"
    );
}

/// One element of a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// `_`: one ASCII digit.
    Digit,
    /// `*`: any run (as the regex `.*`: not across a line feed).
    Any,
    /// `[…]` / `[^…]`: one character in (or not in) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Lit(char),
}

/// Why the reference does not take a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefError {
    /// Not in the grammar: the real compiler must refuse it too.
    Invalid,
    /// A corner the README leaves open (`[1-2-3]`): no verdict.
    Unspecified,
}

/// The wildcard grammar of the README, written from its text, not from
/// `policy::pattern`: `_` one digit, `*` any run, `[0-5]` / `[^09]` one
/// character of / not of a class (digits, letters, `+`, ranges), anchored at
/// both ends unless it starts with `^` (then only at the start) or ends with
/// `$` (then only at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefWildcard {
    pub toks: Vec<Tok>,
    pub anchor_start: bool,
    pub anchor_end: bool,
    pub case_insensitive: bool,
}

fn class_member(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+'
}

impl RefWildcard {
    pub fn parse(pattern: &str, case_insensitive: bool) -> Result<RefWildcard, RefError> {
        let p = pattern.trim();
        if p.is_empty() {
            return Err(RefError::Invalid);
        }
        let (caret, body) = match p.strip_prefix('^') {
            Some(b) => (true, b),
            None => (false, p),
        };
        let (dollar, body) = match body.strip_suffix('$') {
            Some(b) => (true, b),
            None => (false, body),
        };
        let chars: Vec<char> = body.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '_' => toks.push(Tok::Digit),
                '*' => toks.push(Tok::Any),
                ']' | '^' | '$' => return Err(RefError::Invalid),
                '[' => {
                    i += 1;
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    loop {
                        let Some(&c) = chars.get(i) else {
                            return Err(RefError::Invalid);
                        };
                        if c == ']' {
                            break;
                        }
                        if !class_member(c) {
                            return Err(RefError::Invalid);
                        }
                        if chars.get(i + 1) == Some(&'-') {
                            match chars.get(i + 2) {
                                Some(&hi) if class_member(hi) => {
                                    if hi < c {
                                        return Err(RefError::Invalid);
                                    }
                                    if chars.get(i + 3) == Some(&'-') {
                                        return Err(RefError::Unspecified);
                                    }
                                    ranges.push((c, hi));
                                    i += 3;
                                    continue;
                                }
                                _ => return Err(RefError::Invalid),
                            }
                        }
                        ranges.push((c, c));
                        i += 1;
                    }
                    if ranges.is_empty() {
                        return Err(RefError::Invalid);
                    }
                    toks.push(Tok::Class { negated, ranges });
                }
                c => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        let (anchor_start, anchor_end) = match (caret, dollar) {
            (true, false) => (true, false),
            (false, true) => (false, true),
            _ => (true, true),
        };
        Ok(RefWildcard {
            toks,
            anchor_start,
            anchor_end,
            case_insensitive,
        })
    }

    fn same(&self, a: char, b: char) -> bool {
        a == b || (self.case_insensitive && a.eq_ignore_ascii_case(&b))
    }

    fn one(&self, tok: &Tok, c: char) -> bool {
        match tok {
            Tok::Digit => c.is_ascii_digit(),
            Tok::Lit(l) => self.same(*l, c),
            Tok::Class { negated, ranges } => {
                let variants = if self.case_insensitive {
                    [c, c.to_ascii_lowercase(), c.to_ascii_uppercase()]
                } else {
                    [c; 3]
                };
                let hit = variants
                    .iter()
                    .any(|v| ranges.iter().any(|(lo, hi)| lo <= v && v <= hi));
                hit != *negated
            }
            Tok::Any => unreachable!("handled by the caller"),
        }
    }

    /// Positions of `s` where a match starting at `start` can end.
    fn ends(&self, s: &[char], start: usize) -> Vec<bool> {
        let mut reach = vec![false; s.len() + 1];
        reach[start] = true;
        for tok in &self.toks {
            let mut next = vec![false; s.len() + 1];
            if *tok == Tok::Any {
                let mut open = false;
                for p in 0..=s.len() {
                    open |= reach[p];
                    if open {
                        next[p] = true;
                    }
                    if p < s.len() && s[p] == '\n' {
                        open = false;
                    }
                }
            } else {
                for p in 0..s.len() {
                    if reach[p] && self.one(tok, s[p]) {
                        next[p + 1] = true;
                    }
                }
            }
            reach = next;
        }
        reach
    }

    /// Whether the pattern matches the caller ID `subject` (already trimmed).
    /// Only ASCII subjects are meaningful when case-insensitive (the real
    /// matcher folds Unicode case, the reference only ASCII).
    pub fn is_match(&self, subject: &str) -> bool {
        let s: Vec<char> = subject.chars().collect();
        let n = s.len();
        match (self.anchor_start, self.anchor_end) {
            (true, true) => self.ends(&s, 0)[n],
            (true, false) => self.ends(&s, 0).iter().any(|&e| e),
            (false, true) => (0..=n).any(|i| self.ends(&s, i)[n]),
            (false, false) => (0..=n).any(|i| self.ends(&s, i).iter().any(|&e| e)),
        }
    }
}

/// Compiles `pattern` as a wildcard the way a rule does and checks it against
/// the reference on every subject: the compiler refuses what the grammar
/// refuses, and where both accept, they agree on every subject.
pub fn check_wildcard(pattern: &str, case_insensitive: bool, subjects: &[&str]) {
    use callguard::config::types::MatchType;
    use callguard::policy::tester::PatternTester;
    let real = PatternTester::new(
        pattern,
        Some(MatchType::Wildcard),
        case_insensitive,
        1_000_000,
    );
    let reference = RefWildcard::parse(pattern, case_insensitive);
    match (&real, &reference) {
        (Err(e), _) => {
            let len = pattern.trim().chars().count();
            if let Some(col) = e.column {
                assert!(
                    (1..=len).contains(&col),
                    "error column {col} outside the pattern {pattern:?} ({len} chars): {e}"
                );
            }
            assert!(!e.message.is_empty());
            assert!(
                reference.is_err(),
                "refused {pattern:?} ({e}) which the grammar allows: {reference:?}"
            );
        }
        (Ok(_), Err(RefError::Invalid)) => {
            panic!("accepted {pattern:?} which the grammar refuses")
        }
        (Ok(_), Err(RefError::Unspecified)) => {}
        (Ok(tester), Ok(reference)) => {
            for subject in subjects {
                let subject = subject.trim();
                if case_insensitive && !(subject.is_ascii() && pattern.is_ascii()) {
                    continue;
                }
                let got = tester
                    .test(subject)
                    .map(|r| r.matched)
                    .expect("a wildcard never needs backtracking");
                assert_eq!(
                    got,
                    reference.is_match(subject),
                    "wildcard {pattern:?} (ci {case_insensitive}) on {subject:?}; reference {reference:?}"
                );
            }
        }
    }
}

/// Export → import is lossless: the rows read back from `rows` written in
/// each format are `rows`, with no errors. `rows` must be what an import can
/// produce (names and patterns trimmed and non-empty, canonical match types).
pub fn list_roundtrip(rows: &[callguard::list_edit::RuleRow]) {
    use callguard::list_edit::{Format, read_rows, write_rows};
    for format in [Format::Csv, Format::Json, Format::Xml] {
        let bytes = write_rows(rows, format);
        let back = read_rows(&bytes, format, "export");
        assert!(
            back.errors.is_empty(),
            "{format}: export of {rows:?} does not import: {:?}\n{}",
            back.errors,
            String::from_utf8_lossy(&bytes)
        );
        let got: Vec<_> = back.rows.into_iter().map(|(_, r)| r).collect();
        assert_eq!(
            got,
            rows,
            "{format}: export → import changed the rows\n{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

/// Reads `bytes` as a list file of `format` and checks what any input must
/// give: never more rows than were read, every error located on a line, no
/// rows at all after a file-level error, and the rows it kept survive export
/// → import in every format.
pub fn check_list(bytes: &[u8], format: callguard::list_edit::Format) {
    let parsed = callguard::list_edit::read_rows(bytes, format, "fuzz");
    assert!(parsed.rows.len() <= parsed.rows_read);
    for e in &parsed.errors {
        assert!(!e.message.is_empty());
        assert_eq!(e.source, "fuzz");
    }
    for (line, _) in &parsed.rows {
        assert!(*line >= 1, "row without a line");
    }
    let rows: Vec<_> = parsed.rows.into_iter().map(|(_, r)| r).collect();
    list_roundtrip(&rows);
}

/// What loading and compiling `text` as `dir/callguard.yaml` gave: a rule set,
/// or the problems (each with its file and message).
pub fn config_outcome(text: &str, dir: &std::path::Path) -> Result<(), Vec<String>> {
    use callguard::config::load_str;
    use callguard::policy::RuleSet;
    let path = dir.join("callguard.yaml");
    let problems = match load_str(text, &path) {
        Ok(loaded) => match RuleSet::compile(&loaded) {
            Ok(_) => return Ok(()),
            Err(p) => p,
        },
        Err(p) => p,
    };
    assert!(!problems.0.is_empty(), "an error without any problem");
    Err(problems
        .0
        .iter()
        .map(|p| {
            assert!(!p.message.trim().is_empty(), "problem without a message");
            assert!(!p.file.is_empty(), "problem without a file");
            p.to_string()
        })
        .collect())
}
