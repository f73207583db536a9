//! Ports of the Asterisk 22 code that splits what a FastAGI server sends: res_agi.c
//! `parse_args()` (a command line into arguments) and MSet's parsing (main/app.c
//! `__ast_app_separate_args`, main/pbx_variables.c `pbx_builtin_setvar_multiple`). The
//! simulator sets variables with them; callguard's tests check its escaping against them.

/// A port of res_agi.c `parse_args()` (Asterisk 1.4–22; MAX_ARGS truncation left out):
/// how Asterisk splits the line it received, minus the trailing `\n`. Used to
/// check that escaping keeps every value one argument (tests, simulators).
pub fn parse_args(line: &str) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    let (mut quoted, mut escaped, mut whitespace) = (false, false, true);
    for c in line.chars() {
        match c {
            '"' if !escaped => {
                quoted = !quoted;
                if quoted && whitespace {
                    argv.push(String::new());
                    whitespace = false;
                }
            }
            ' ' | '\t' if !quoted && !escaped => whitespace = true,
            '\\' if !escaped => escaped = true,
            _ => {
                if whitespace {
                    argv.push(String::new());
                    whitespace = false;
                }
                if let Some(last) = argv.last_mut() {
                    last.push(c);
                }
                escaped = false;
            }
        }
    }
    argv
}

/// A port of main/app.c `__ast_app_separate_args()` (Asterisk 22): split `buf` at `delim`
/// into at most `arraylen` arguments, the last taking the unsplit rest.
pub fn ast_app_separate_args(
    buf: &str,
    delim: char,
    remove_chars: bool,
    arraylen: usize,
) -> Vec<String> {
    let s: Vec<char> = buf.chars().collect();
    let mut out: Vec<String> = Vec::new();
    let (mut paren, mut quote, mut bracket) = (0u32, false, 0u32);
    let mut i = 0;
    let mut wasdelim: Option<usize> = None;
    if arraylen == 0 {
        return out;
    }
    while i < s.len() && out.len() < arraylen - 1 {
        let mut arg = String::new();
        while i < s.len() {
            let c = s[i];
            if c == '(' {
                paren += 1;
            } else if c == ')' {
                paren = paren.saturating_sub(1);
            } else if c == '[' {
                bracket += 1;
            } else if c == ']' {
                bracket = bracket.saturating_sub(1);
            } else if c == '"' && delim != '"' {
                quote = !quote;
                if remove_chars {
                    i += 1;
                    continue;
                }
            } else if c == '\\' {
                if remove_chars {
                    // memmove drops the backslash; the loop's scan++ then skips the next byte.
                    if let Some(&n) = s.get(i + 1) {
                        arg.push(n);
                    }
                    i += 2;
                    continue;
                }
                arg.push(c);
                if let Some(&n) = s.get(i + 1) {
                    arg.push(n);
                }
                i += 2;
                continue;
            } else if c == delim && paren == 0 && !quote && bracket == 0 {
                wasdelim = Some(i);
                i += 1;
                break;
            }
            arg.push(c);
            i += 1;
        }
        out.push(arg);
    }
    // The rest (or an empty argument after a trailing delimiter).
    if i < s.len() || (i > 0 && wasdelim == Some(i - 1)) {
        out.push(s[i.min(s.len())..].iter().collect());
    }
    out
}

/// A port of `pbx_builtin_setvar_multiple()`: the (name, value) pairs MSet sets from `data`
/// (entries without `=` are ignored, as Asterisk does with a warning).
pub fn mset_pairs(data: &str) -> Vec<(String, String)> {
    if data.is_empty() {
        return Vec::new();
    }
    ast_app_separate_args(data, ',', true, 99)
        .into_iter()
        .filter_map(|pair| {
            let mut p = ast_app_separate_args(&pair, '=', true, 2).into_iter();
            match (p.next(), p.next()) {
                (Some(name), Some(value)) => Some((name, value)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_args_port_matches_asterisk() {
        // Hand-checked against main/app.c.
        assert_eq!(
            ast_app_separate_args("a,b(c,d),\"e,f\",g\\,h,", ',', true, 99),
            ["a", "b(c,d)", "e,f", "g,h", ""]
        );
        assert_eq!(ast_app_separate_args("N=v=w", '=', true, 2), ["N", "v=w"]);
        assert_eq!(ast_app_separate_args("N=", '=', true, 2), ["N", ""]);
        assert_eq!(ast_app_separate_args("N", '=', true, 2), ["N"]);
        // An unbalanced parenthesis hides every later comma: why values escape them.
        assert_eq!(
            ast_app_separate_args("A=(x,B=y", ',', true, 99),
            ["A=(x,B=y"]
        );
    }
}
