//! Ports of the FreeSWITCH 1.10 code that reads a `set` / `multiset` argument (mod_dptools.c
//! `base_set`, `multiset_function`; switch_utils.c `separate_string_char_delim`,
//! `cleanup_separated_string`; switch_channel.c `switch_channel_expand_variables`): what the
//! simulator stores, and what callguard's own tests use to prove values arrive intact.

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
}
