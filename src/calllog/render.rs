//! Fixed-width text for the terminal (`callguard log`, `callguard log
//! --stats`), and the sanitiser every text table and report shares
//! ([`terminal_safe`], [`terminal_cell`]).
//!
//! Cells come from callers and PBXs, so control characters (an escape
//! sequence or a newline in a caller ID) become visible escapes and long
//! text is cut on a character boundary: one call stays one line, and a
//! caller cannot clear the screen, retitle the terminal or widen a column.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::{LoggedCall, StatCount, Stats};

/// Widest a free-text field (a caller ID, a trunk, rule or list name, an
/// author) grows in a text table or report: one long caller ID must not pad
/// every row of its column.
pub(crate) const FIELD_WIDTH: usize = 40;
/// Widest a change summary (`+1 −0 ~0 (added: …)`, which names rules) grows.
pub(crate) const SUMMARY_WIDTH: usize = 120;

/// Columns before the reason.
const N: usize = 9;
/// Widest a column grows; the reason, last, is cut at [`REASON_WIDTH`].
/// The unique id is never cut in practice (Asterisk `1795432537.14`,
/// FreeSWITCH's 36-character UUID): `block --from-call` takes it.
const CAPS: [usize; N] = [19, 36, 14, 20, 10, 30, 20, 12, 28];
const HEADERS: [&str; N] = [
    "TIME",
    "UNIQUE-ID",
    "TRUNK",
    "CALLER",
    "VERDICT",
    "LIST",
    "RULE",
    "ACTION",
    "END",
];
pub(crate) const REASON_WIDTH: usize = 48;

/// Where the USER column goes (after TRUNK) when a call was for a user, and
/// how wide it grows (an extension).
const USER_AT: usize = 3;
const USER_CAP: usize = 12;

/// One line per call under a header, newest first as given. A USER column
/// (the extension the call was for) appears only when a call has one, so a
/// log without per-user lists reads as it always has.
pub fn render_table(calls: &[LoggedCall]) -> String {
    let with_user = calls.iter().any(|c| !c.user.is_empty());
    let mut headers: Vec<&str> = HEADERS.to_vec();
    let mut caps: Vec<usize> = CAPS.to_vec();
    if with_user {
        headers.insert(USER_AT, "USER");
        caps.insert(USER_AT, USER_CAP);
    }
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            let mut row = cells(c).to_vec();
            if with_user {
                row.insert(USER_AT, terminal_safe(&c.user).into_owned());
            }
            row
        })
        .collect();
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, w) in widths.iter_mut().enumerate() {
            *w = (*w).max(row[i].chars().count()).min(caps[i]);
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    push_line(&mut out, &header, &widths, "REASON");
    for row in &rows {
        push_line(&mut out, &row[..n], &widths, &fit(&row[n], REASON_WIDTH));
    }
    if rows.is_empty() {
        out.push_str("(no calls)\n");
    }
    out
}

fn push_line(out: &mut String, cols: &[String], widths: &[usize], last: &str) {
    for (cell, &w) in cols.iter().zip(widths) {
        let cell = fit(cell, w);
        let pad = w - cell.chars().count();
        out.push_str(&cell);
        out.push_str(&" ".repeat(pad + 2));
    }
    out.push_str(last);
    // No trailing spaces when the reason is empty.
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
    out.push('\n');
}

/// The deciding list's kind with its name beside it when that says more:
/// `blacklist (spam)`, `whitelist (exec-vip)`, `system_blacklist`.
/// `-` when no list decided (a call that was never screened).
fn list_cell(c: &LoggedCall) -> String {
    if c.list.is_empty() {
        "-".to_string()
    } else if c.list_name.is_empty() || c.list_name == c.list {
        c.list.clone()
    } else {
        format!("{} ({})", c.list, c.list_name)
    }
}

fn cells(c: &LoggedCall) -> [String; N + 1] {
    let caller = if c.caller_raw.is_empty() && c.anonymous {
        "anonymous".to_string()
    } else {
        c.caller_raw.clone()
    };
    let end = match (&c.end_state, &c.hangup_cause) {
        (Some(s), Some(h)) => format!("{s} ({h})"),
        (Some(s), None) => s.clone(),
        (None, _) => "-".to_string(),
    };
    [
        c.time.format("%Y-%m-%d %H:%M:%S").to_string(),
        c.unique_id.clone(),
        c.trunk.clone(),
        caller,
        c.verdict.clone(),
        list_cell(c),
        c.rule.clone().unwrap_or_else(|| "-".into()),
        if c.action.is_empty() {
            "-".to_string()
        } else {
            c.action.clone()
        },
        end,
        c.reason.clone(),
    ]
    .map(|s| terminal_safe(&s).into_owned())
}

/// Characters a terminal acts on or that reorder or break the text around
/// them: C0 (tab, CR, LF, ESC, BEL…), DEL and C1 (`char::is_control`), the
/// Unicode bidirectional controls (U+061C, U+200E/F, U+202A–E, U+2066–9,
/// "Trojan Source") and the line and paragraph separators (U+2028/9).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
}

/// `s` with every unsafe character (see [`is_unsafe`]) written as a visible
/// escape (`\x1b`, `\r`, `\u{202e}`), so text from a caller can be printed
/// to a terminal or a mail: it stays on its line and cannot send the
/// terminal an escape sequence. Borrowed when there is nothing to escape.
pub(crate) fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`terminal_safe`], then cut to at most `width` characters ending in `…`;
/// reads no further than it shows, so a huge value costs only `width`.
pub(crate) fn terminal_cell(s: &str, width: usize) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    let mut cut = false;
    for c in s.chars() {
        let before = out.len();
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
        count += out[before..].chars().count();
        if count > width {
            cut = true;
            break;
        }
    }
    if cut { fit(&out, width) } else { out }
}

/// At most `width` characters, ending in `…` when cut.
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The period's totals, then blocked calls by rule, list and trunk.
pub(crate) fn render_stats(stats: &Stats) -> String {
    let mut out = format!(
        "calls: {}  blocked: {}  allowed: {}  fail-open: {}  fail-closed: {}\n",
        stats.total, stats.blocked, stats.allowed, stats.fail_open, stats.fail_closed
    );
    for (title, counts) in [
        ("blocked by rule", &stats.blocked_by_rule),
        ("blocked by list", &stats.blocked_by_list),
        ("blocked by trunk", &stats.blocked_by_trunk),
    ] {
        out.push('\n');
        out.push_str(title);
        out.push_str(":\n");
        section(&mut out, counts);
    }
    out
}

fn section(out: &mut String, counts: &[StatCount]) {
    if counts.is_empty() {
        out.push_str("  (none)\n");
        return;
    }
    let keys: Vec<String> = counts
        .iter()
        .map(|c| terminal_cell(&c.key, FIELD_WIDTH))
        .collect();
    let kw = keys.iter().map(|k| k.chars().count()).max().unwrap_or(0);
    let nw = counts
        .iter()
        .map(|c| c.calls.to_string().len())
        .max()
        .unwrap_or(0);
    for (key, c) in keys.iter().zip(counts) {
        let pad = kw - key.chars().count();
        out.push_str(&format!("  {key}{}  {:>nw$}\n", " ".repeat(pad), c.calls));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn call(reason: &str) -> LoggedCall {
        LoggedCall {
            id: 1,
            time: Utc.with_ymd_and_hms(2026, 11, 1, 8, 5, 9).unwrap(),
            unique_id: "1730448309.42".into(),
            pbx: "asterisk".into(),
            trunk: "sip-main".into(),
            did: "18005550100".into(),
            caller_raw: "5551234567".into(),
            caller_e164: Some("+15551234567".into()),
            caller_name: "Line\nBreak".into(),
            anonymous: false,
            verdict: "block".into(),
            list: "blacklist".into(),
            list_name: "spam".into(),
            rule: Some("spam-555".into()),
            action: "hangup".into(),
            reason: reason.into(),
            decision_ns: 1200,
            fail_open: false,
            end_state: Some("completed".into()),
            hangup_cause: Some("NORMAL_CLEARING".into()),
            duration_ms: Some(1500),
            ended_at: None,
            tenant: String::new(),
            user: String::new(),
        }
    }

    /// A USER column only when a call was for a user; none otherwise.
    #[test]
    fn user_column_only_when_a_call_has_a_user() {
        let plain = render_table(&[call("ok")]);
        assert!(!plain.contains("USER"), "{plain}");
        let mut c = call("ok");
        c.user = "101".into();
        let t = render_table(&[c, call("ok")]);
        let header = t.lines().next().unwrap();
        assert!(header.starts_with("TIME"), "{t}");
        let cols: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(cols[3], "USER", "{t}");
        assert!(t.lines().nth(1).unwrap().contains(" 101 "), "{t}");
    }

    #[test]
    fn table_has_a_header_and_one_line_per_call() {
        let t = render_table(&[call("matched\nblacklist \"spam\""), call("ok")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("TIME"));
        assert!(lines[0].ends_with("REASON"));
        assert!(lines[1].starts_with("2026-11-01 08:05:09  1730448309.42  sip-main"));
        // The list's name beside its kind (issue 10.8).
        assert!(lines[1].contains("blacklist (spam)"), "{t}");
        assert!(lines[1].contains("spam-555"));
        assert!(lines[1].contains("completed (NORMAL_CLEARING)"));
        // A line break in a field is shown, not obeyed.
        assert!(lines[1].ends_with("matched\\nblacklist \"spam\""), "{t}");
        // Columns line up: the verdict starts at the same place on each line.
        let col = lines[0].find("VERDICT").unwrap();
        assert_eq!(&lines[1][col..col + 5], "block");
    }

    #[test]
    fn long_unicode_reason_is_cut_on_a_character_boundary() {
        let long = "é☎".repeat(100);
        let t = render_table(&[call(&long)]);
        let line = t.lines().nth(1).unwrap();
        assert!(line.ends_with('…'));
        let reason = line.rsplit("  ").next().unwrap();
        assert_eq!(reason.chars().count(), REASON_WIDTH);
    }

    #[test]
    fn control_characters_become_visible_escapes() {
        let hostile = "\x1b[2J\x1b]0;pwned\x07\r+1\u{7f}\u{9b}\u{202e}x\u{2066}\t\n";
        assert_eq!(
            terminal_safe(hostile),
            "\\x1b[2J\\x1b]0;pwned\\x07\\r+1\\x7f\\u{009b}\\u{202e}x\\u{2066}\\t\\n"
        );
        assert!(matches!(terminal_safe("+15551234567 é☎"), Cow::Borrowed(_)));
        let cell = terminal_cell(hostile, 12);
        assert_eq!(cell, "\\x1b[2J\\x1b…");
        assert_eq!(cell.chars().count(), 12);
        assert_eq!(terminal_cell("short", 12), "short");
        assert_eq!(
            terminal_cell(&"9".repeat(4096), FIELD_WIDTH)
                .chars()
                .count(),
            FIELD_WIDTH
        );
        let mut t = call("ok");
        t.caller_raw = hostile.into();
        t.trunk = "\u{1b}]0;title\u{7}".into();
        let table = render_table(&[t]);
        assert!(
            !table.chars().any(|c| is_unsafe(c) && c != '\n'),
            "{table:?}"
        );
        assert_eq!(table.lines().count(), 2, "{table}");
    }

    #[test]
    fn a_call_never_screened_shows_dashes_not_blanks() {
        let mut c = call("not screened: no connect reply");
        c.unique_id = String::new();
        c.verdict = "unscreened".into();
        c.list = String::new();
        c.list_name = String::new();
        c.rule = None;
        c.action = String::new();
        c.end_state = Some("not_screened".into());
        c.hangup_cause = None;
        let t = render_table(&[c]);
        let line = t.lines().nth(1).unwrap();
        assert!(
            line.contains("unscreened  -     -     -       not_screened"),
            "{t}"
        );
        assert!(line.ends_with("not_screened  not screened: no connect reply"));
    }

    #[test]
    fn empty_table_says_so() {
        assert!(render_table(&[]).contains("(no calls)"));
    }

    #[test]
    fn stats_lists_each_section() {
        let s = Stats {
            total: 10,
            blocked: 4,
            allowed: 6,
            fail_open: 2,
            fail_closed: 1,
            blocked_by_rule: vec![
                StatCount {
                    key: "spam".into(),
                    calls: 3,
                },
                StatCount {
                    key: "(none)".into(),
                    calls: 1,
                },
            ],
            blocked_by_list: vec![StatCount {
                key: "blacklist".into(),
                calls: 4,
            }],
            blocked_by_trunk: vec![],
        };
        let text = render_stats(&s);
        assert!(
            text.starts_with("calls: 10  blocked: 4  allowed: 6  fail-open: 2  fail-closed: 1\n")
        );
        assert!(
            text.contains("blocked by rule:\n  spam    3\n  (none)  1\n"),
            "{text}"
        );
        assert!(text.contains("blocked by list:\n  blacklist  4\n"));
        assert!(text.contains("blocked by trunk:\n  (none)\n"));
    }
}
