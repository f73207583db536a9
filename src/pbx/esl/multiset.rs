//! All callguard_* variables in one round trip: `multiset ^^|name=value|name=value…`.
//!
//! What FreeSWITCH 1.10 does with the argument (mod_dptools.c `multiset_function` and
//! `base_set`, switch_utils.c `switch_separate_string`, switch_channel.c
//! `switch_channel_expand_variables_check`):
//!
//! 1. A leading `^^X` makes X the delimiter (we use `|`).
//! 2. `separate_string_char_delim` splits at X, where `\` makes the next byte part of the
//!    token and `'…'` quotes (when a closing `'` follows); then `cleanup_separated_string`
//!    drops leading and trailing spaces and undoes `\\` `\'` `\"` `\X` `\n` `\r` `\t` `\s`.
//! 3. `base_set` cuts each token at its first `=`; an empty value unsets the variable.
//! 4. The value is expanded — but only when it holds `$`…`{` (backslashes between allowed)
//!    or one of `\\` `\n` `\s` `\t` `\'`. Expansion then reads `\$` as `$`, `\\` as `\`, drops
//!    `\'`, and runs `${…}` / `$${…}`.
//!
//! The encoding undoes those steps in reverse: values first lose `${` (→ `$ {`, so neither
//! FreeSWITCH here nor a later `${callguard_reason}` in the dialplan can run an API from text
//! a caller or a pattern chose) and CR/LF/NUL (→ space, as the single `set` form does), then
//! get expansion escapes only if FreeSWITCH would expand them, then the split escapes.
//! [`multiset`] and [`base_set`] are ports of the FreeSWITCH code, used by the tests and
//! the simulator to prove the values arrive as [`stored_value`] says.

/// The delimiter after `^^`. Any byte works (it is escaped in values); `|` reads well in logs.
pub const DELIM: u8 = b'|';

/// `${` could run an API (`${system …}`) now or when the dialplan reads the variable.
pub fn inert(value: &str) -> String {
    value.replace("${", "$ {")
}

/// The value FreeSWITCH ends up with for `value` (both forms).
pub fn stored_value(value: &str) -> String {
    inert(value).replace(['\r', '\n', '\0'], " ")
}

/// switch_utils.h `switch_string_var_check_const`: `$`, any backslashes, `{`.
fn var_check_const(s: &[u8]) -> bool {
    let mut dol = false;
    for &c in s {
        if c == b'$' {
            dol = true;
        } else if dol {
            if c == b'{' {
                return true;
            } else if c != b'\\' {
                dol = false;
            }
        }
    }
    false
}

/// switch_utils.h `switch_string_has_escaped_data`.
fn has_escaped_data(s: &[u8]) -> bool {
    let mut i = s.iter().position(|&c| c == b'\\');
    while let Some(at) = i {
        let j = at + 1;
        if matches!(s.get(j), Some(b'\\' | b'n' | b's' | b't' | b'\'')) {
            return true;
        }
        i = s[j.min(s.len())..]
            .iter()
            .position(|&c| c == b'\\')
            .map(|k| j + k);
    }
    false
}

/// Whether `switch_channel_expand_variables` rewrites `s` at all.
fn expands(s: &[u8]) -> bool {
    var_check_const(s) || has_escaped_data(s)
}

/// The text `base_set` must receive so that expansion yields `value` (already inert).
fn expansion_escaped(value: &str) -> String {
    if !expands(value.as_bytes()) {
        return value.to_string();
    }
    // Expanded anyway: make every `\` and `$` literal. The result still expands (it keeps a
    // `\\`, or a `$` with backslashes and then `{`), so the escapes are read.
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c == '\\' || c == '$' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The argument of `set` for one variable: `name=value`.
pub fn set_arg(name: &str, value: &str) -> String {
    format!("{name}={}", expansion_escaped(&stored_value(value)))
}

/// The argument of `multiset` for all `pairs`.
pub fn multiset_arg(pairs: &[(&str, &str)]) -> String {
    let mut arg = String::with_capacity(160);
    arg.push_str("^^");
    arg.push(DELIM as char);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            arg.push(DELIM as char);
        }
        arg.push_str(name);
        arg.push('=');
        let v = expansion_escaped(&stored_value(value));
        // Trailing spaces would be trimmed by cleanup_separated_string: `\s` keeps them.
        let keep = v.trim_end_matches(' ').len();
        for (at, c) in v.char_indices() {
            match c {
                '\\' | '\'' => {
                    arg.push('\\');
                    arg.push(c);
                }
                c if c == DELIM as char => {
                    arg.push('\\');
                    arg.push(c);
                }
                ' ' if at >= keep => arg.push_str("\\s"),
                c => arg.push(c),
            }
        }
    }
    arg
}

// ---- Ports of the FreeSWITCH code (tests, simulator) ----

fn unescape_char(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b's' => b' ',
        c => c,
    }
}

/// switch_utils.c `cleanup_separated_string`.
fn cleanup_separated_string(s: &[u8], delim: u8) -> Vec<u8> {
    let mut p = s.iter().take_while(|&&c| c == b' ').count();
    let mut dest: Vec<u8> = Vec::with_capacity(s.len());
    let mut end: Option<usize> = None;
    let mut inside_quotes = false;
    while p < s.len() {
        let mut esc = false;
        if s[p] == b'\\' {
            let e = s.get(p + 1).copied().unwrap_or(0);
            if e == b'\'' || e == b'"' || e == delim || e == b'\\' || unescape_char(e) != e {
                p += 1;
                dest.push(unescape_char(e));
                end = Some(dest.len());
                esc = true;
            }
        }
        if !esc {
            let c = s[p];
            if c == b'\'' && (inside_quotes || s[p + 1..].contains(&b'\'')) {
                inside_quotes = !inside_quotes;
                if inside_quotes {
                    end = Some(dest.len());
                }
            } else {
                dest.push(c);
                if c != b' ' || inside_quotes {
                    end = Some(dest.len());
                }
            }
        }
        p += 1;
    }
    dest.truncate(end.unwrap_or(0));
    dest
}

/// switch_utils.c `separate_string_char_delim` (delimiter not a space), 256 slots.
fn separate_string_char_delim(buf: &[u8], delim: u8) -> Vec<Vec<u8>> {
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let mut start = true;
    let mut inside_quotes = false;
    let mut p = 0;
    // As in C, the loop stops once 256 tokens exist: the last one keeps the unsplit rest.
    while p < buf.len() && tokens.len() < 256 {
        if start {
            tokens.push((p, buf.len()));
            start = false;
            continue;
        }
        let c = buf[p];
        if c == b'\\' {
            p += 1;
        } else if c == b'\'' && (inside_quotes || buf[p + 1..].contains(&b'\'')) {
            inside_quotes = !inside_quotes;
        } else if c == delim && !inside_quotes {
            if let Some(last) = tokens.last_mut() {
                last.1 = p;
            }
            start = true;
        }
        p += 1;
    }
    tokens
        .into_iter()
        .map(|(a, b)| cleanup_separated_string(&buf[a..b.min(buf.len())], delim))
        .collect()
}

/// switch_channel.c `switch_channel_expand_variables` for text that must not name a
/// variable: `Err` if it would run `${…}`.
pub fn expand(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    if !expands(b) {
        return Ok(s.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut p = 0;
    while p < b.len() {
        let mut nv = false;
        if b[p] == b'\\' {
            match b.get(p + 1) {
                Some(b'$') => {
                    nv = true;
                    p += 1;
                    if b.get(p + 1) == Some(&b'$') {
                        p += 1;
                    }
                }
                Some(b'\'') => {
                    p += 2;
                    continue;
                }
                Some(b'\\') => {
                    out.push(b'\\');
                    p += 2;
                    continue;
                }
                _ => {}
            }
        }
        if b[p] == b'$' && !nv {
            if b.get(p + 1) == Some(&b'$') {
                p += 1;
            }
            match b.get(p + 1) {
                Some(b'{') => return Err(format!("{s:?} would expand a variable")),
                _ => nv = true,
            }
        }
        let _ = nv;
        out.push(b[p]);
        p += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// mod_dptools.c `base_set`: the variable and its value (`None`: unset).
pub fn base_set(data: &str) -> Result<Option<(String, Option<String>)>, String> {
    if data.is_empty() {
        return Ok(None);
    }
    let (name, val) = match data.find('=').or_else(|| data.find(',')) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let val = match val.filter(|v| !v.is_empty()) {
        Some(v) => Some(expand(v)?),
        None => None,
    };
    Ok(Some((name.to_string(), val)))
}

/// mod_dptools.c `multiset_function`: every variable it sets, in order.
pub fn multiset(data: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let b = data.as_bytes();
    let (delim, rest) = if b.len() >= 3 && b[0] == b'^' && b[1] == b'^' {
        (b[2], &b[3..])
    } else {
        (b' ', b)
    };
    if delim == b' ' {
        return Err("the space-delimited form is not ported".into());
    }
    let mut out = Vec::new();
    for token in separate_string_char_delim(rest, delim) {
        if let Some(set) = base_set(&String::from_utf8_lossy(&token))? {
            out.push(set);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn expected(pairs: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(n, v)| {
                let v = stored_value(v);
                (n.to_string(), (!v.is_empty()).then_some(v))
            })
            .collect()
    }

    #[test]
    fn wire_form() {
        let pairs = [
            ("callguard_verdict", "block"),
            ("callguard_rule", "Spam, 'x'|y=z ^ \\ ${system ls} "),
            ("callguard_list", ""),
        ];
        let arg = multiset_arg(&pairs);
        assert_eq!(
            arg,
            "^^|callguard_verdict=block|callguard_rule=Spam, \\'x\\'\\|y=z ^ \\\\ $ {system ls}\\s|callguard_list="
        );
        assert_eq!(multiset(&arg).unwrap(), expected(&pairs));
    }

    #[test]
    fn set_form_round_trips() {
        for v in ["a\\b", "\\'", "$\\{x}", "$$", "a\\nb", "${x}", "plain"] {
            let arg = set_arg("callguard_reason", v);
            let (name, value) = base_set(&arg).unwrap().unwrap();
            assert_eq!(name, "callguard_reason");
            assert_eq!(value.as_deref(), Some(stored_value(v).as_str()), "{arg:?}");
        }
    }

    #[test]
    fn ports_match_freeswitch() {
        // Hand-checked against switch_utils.c / switch_channel.c.
        assert_eq!(
            separate_string_char_delim(b"a|b\\|c| d 'e|f' |\\s", b'|'),
            [b"a".to_vec(), b"b|c".to_vec(), b"d e|f".to_vec(), b" ".to_vec()]
        );
        assert_eq!(expand("a\\\\b").unwrap(), "a\\b");
        assert_eq!(expand("a\\b").unwrap(), "a\\b");
        assert_eq!(expand("\\$$x").unwrap(), "\\$$x");
        assert_eq!(expand("\\$$x\\\\").unwrap(), "$x\\");
        assert_eq!(expand("it\\'s \\\\").unwrap(), "its \\");
        assert!(expand("${x}").is_err());
        assert!(expand("$\\{x}").is_ok());
    }

    fn value() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            ",", "\"", "=", "^", "\\", "|", "${", "$${", "}", " ", "\t", "'", "é", "名", "$",
            "{", "\\n", "\\s", "\n",
        ]);
        prop::collection::vec(
            prop_oneof![special.prop_map(str::to_string), "[^\0]{0,4}"],
            0..24,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_values_arrive_intact(values in prop::collection::vec(value(), 1..8)) {
            let names: Vec<String> = (0..values.len()).map(|i| format!("callguard_v{i}")).collect();
            let pairs: Vec<(&str, &str)> =
                names.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
            prop_assert_eq!(multiset(&multiset_arg(&pairs)).unwrap(), expected(&pairs));
            for (n, v) in &pairs {
                let got = base_set(&set_arg(n, v)).unwrap().unwrap();
                let want = stored_value(v);
                prop_assert_eq!(got, (n.to_string(), (!want.is_empty()).then_some(want)));
            }
        }
    }
}
