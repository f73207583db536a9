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
//! spaces dropped — for the one-variable `set` form too. `multiset` and `base_set` port
//! layer 3 (`callguard_sim::freeswitch::parse`): the tests and the simulator use them to prove
//! the values arrive intact.

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
    let mut v = String::with_capacity(value.len() + 8);
    v.extend(value.chars().map(|c| match c {
        '\r' | '\n' | '\0' => ' ',
        '\\' => '＼',
        '\'' => '’',
        c => c,
    }));
    if v.contains("${") {
        v = inert(&v);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_sim::freeswitch::parse::{base_set, multiset};
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
