//! All callguard_* variables in one round trip: `multiset ^^Xname=valueXname=value…`.
//!
//! The argument passes several FreeSWITCH 1.10 layers before a variable is set. Measured on
//! the real FreeSWITCH 1.10.12 (`sendmsg` with `set` / `multiset`, its debug log and `info`):
//!
//! 1. the Event Socket header value is unescaped like `cleanup_separated_string`
//!    (`\\` → `\`, `\'` → `'`, `\s` → space, `\n` → newline, `'…'` quotes removed);
//! 2. the application data is expanded, and a lone `'` disappears there too
//!    (`set t=a'b` sets `ab`);
//! 3. `multiset` reads a leading `^^X` as the delimiter X and splits with
//!    `separate_string_char_delim` + `cleanup_separated_string` (the same escapes and
//!    quotes, leading/trailing spaces dropped); `base_set` cuts each token at its first `=`
//!    (an empty value unsets the variable) and expands the value again
//!    (mod_dptools.c, switch_utils.c, switch_channel.c).
//!
//! Escaping through all of these is fragile, so the encoder sends text that every layer
//! leaves alone: no `\`, no `'`, no `${`, no trailing space, and a delimiter that occurs in
//! no value. [`stored_value`] is what a value becomes: `${` → `$ {` (neither FreeSWITCH here
//! nor a later `${callguard_reason}` in the dialplan may run an API from text a caller or a
//! pattern chose), CR/LF/NUL → space, `\` → `＼` (U+FF3C), `'` → `’` (U+2019), trailing
//! spaces dropped — for the one-variable `set` form too. [`multiset`] and [`base_set`] port
//! layer 3: the tests and the simulator use them to prove the values arrive intact.

/// Delimiters tried in order; the first that no value contains is used.
const DELIMS: &[char] = &[
    '|', '~', ';', '!', '#', '@', '^', '`', '*', '+', '&', ':', ',',
];

/// `${` could run an API (`${system …}`) now or when the dialplan reads the variable.
pub(crate) fn inert(value: &str) -> String {
    value.replace("${", "$ {")
}

/// The value FreeSWITCH ends up with for `value` (both forms).
pub(crate) fn stored_value(value: &str) -> String {
    let v: String = value
        .chars()
        .map(|c| match c {
            '\r' | '\n' | '\0' => ' ',
            '\\' => '＼',
            '\'' => '’',
            c => c,
        })
        .collect();
    let mut v = inert(&v);
    v.truncate(v.trim_end_matches(' ').len());
    v
}

/// The argument of `set` for one variable: `name=value`.
pub(crate) fn set_arg(name: &str, value: &str) -> String {
    format!("{name}={}", stored_value(value))
}

/// The argument of `multiset` for all `pairs`, or `None` when every candidate delimiter
/// occurs in some value (then the caller sets them one by one).
pub(crate) fn multiset_arg(pairs: &[(&str, &str)]) -> Option<String> {
    let values: Vec<String> = pairs.iter().map(|(_, v)| stored_value(v)).collect();
    let delim = *DELIMS
        .iter()
        .find(|d| values.iter().all(|v| !v.contains(**d)))?;
    let mut arg = String::with_capacity(160);
    arg.push_str("^^");
    arg.push(delim);
    for (i, ((name, _), value)) in pairs.iter().zip(&values).enumerate() {
        if i > 0 {
            arg.push(delim);
        }
        arg.push_str(name);
        arg.push('=');
        arg.push_str(value);
    }
    Some(arg)
}

// ---- Ports of the FreeSWITCH code (tests, simulator) ----

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

    /// What the layers that are not ported need: nothing to unescape, unquote or expand.
    fn inert_for_every_layer(arg: &str) {
        assert!(!arg.contains(['\\', '\'', '\n', '\r', '\0']), "{arg:?}");
        assert!(!arg.contains("${"), "{arg:?}");
        assert!(!arg.ends_with(' '), "{arg:?}");
    }

    #[test]
    fn wire_form() {
        let pairs = [
            ("callguard_verdict", "block"),
            ("callguard_rule", "Spam, 'x'|y=z ^ \\ ${system ls} "),
            ("callguard_list", ""),
        ];
        let arg = multiset_arg(&pairs).unwrap();
        assert_eq!(
            arg,
            "^^~callguard_verdict=block~callguard_rule=Spam, ’x’|y=z ^ ＼ $ {system ls}~callguard_list="
        );
        inert_for_every_layer(&arg);
        assert_eq!(multiset(&arg).unwrap(), expected(&pairs));
    }

    #[test]
    fn plain_values_use_the_pipe() {
        let arg = multiset_arg(&[("a", "allow"), ("b", "x y")]).unwrap();
        assert_eq!(arg, "^^|a=allow|b=x y");
    }

    #[test]
    fn no_free_delimiter_means_one_by_one() {
        let all: String = DELIMS.iter().collect();
        assert_eq!(multiset_arg(&[("a", &all)]), None);
    }

    #[test]
    fn set_form_round_trips() {
        for v in [
            "a\\b",
            "\\'",
            "$\\{x}",
            "$$",
            "a\\nb",
            "${x}",
            "plain",
            "O'Brien  ",
        ] {
            let arg = set_arg("callguard_reason", v);
            inert_for_every_layer(&arg);
            let (name, value) = base_set(&arg).unwrap().unwrap();
            assert_eq!(name, "callguard_reason");
            let want = stored_value(v);
            assert_eq!(value, (!want.is_empty()).then_some(want), "{arg:?}");
        }
    }

    #[test]
    fn ports_match_freeswitch() {
        // Hand-checked against switch_utils.c / switch_channel.c.
        assert_eq!(
            separate_string_char_delim(b"a|b\\|c| d 'e|f' |\\s", b'|'),
            [
                b"a".to_vec(),
                b"b|c".to_vec(),
                b"d e|f".to_vec(),
                b" ".to_vec()
            ]
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
            ",", "\"", "=", "^", "\\", "|", "${", "$${", "}", " ", "\t", "'", "é", "名", "$", "{",
            "\\n", "\\s", "\n", "~", ";", "!", "#",
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
            if let Some(arg) = multiset_arg(&pairs) {
                inert_for_every_layer(&arg);
                prop_assert_eq!(multiset(&arg).unwrap(), expected(&pairs));
            }
            for (n, v) in &pairs {
                let arg = set_arg(n, v);
                inert_for_every_layer(&arg);
                let got = base_set(&arg).unwrap().unwrap();
                let want = stored_value(v);
                prop_assert_eq!(got, (n.to_string(), (!want.is_empty()).then_some(want)));
            }
        }
    }
}
