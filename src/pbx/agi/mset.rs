//! All CALLGUARD_* variables in one round trip: `EXEC MSet NAME=value,NAME=value,…`.
//!
//! Each command is a round trip and a wake-up on both sides, so five `SET VARIABLE`s cost five
//! times what one `MSet` costs. What Asterisk does with the data (main/pbx_variables.c
//! `pbx_builtin_setvar_multiple`, main/app.c `__ast_app_separate_args`, Asterisk 1.6–22):
//!
//! 1. res_agi `parse_args()` takes the data as one argument (handled by
//!    [`super::command::AgiCommand::to_line`]); `handle_exec` hands it to `pbx_exec` as is — no
//!    `${…}` substitution.
//! 2. `AST_STANDARD_APP_ARGS` splits at `,` with `remove_chars`: `\X` makes X literal (the
//!    backslash is removed), `"` toggles quoting and is removed, `(`…`)` and `[`…`]` nest and
//!    hide commas. At most 99 pairs; past that the rest is one raw argument.
//! 3. Each pair is split at its first `=` (`AST_NONSTANDARD_APP_ARGS`, two slots): the name is
//!    scanned like step 2, the value is the raw remainder — later `=` are ordinary bytes.
//!
//! So a value is safe when every `\ " , ( ) [ ]` in it is preceded by `\`. `=` needs nothing.
//! An empty value sets the variable to "" (as `SET VARIABLE X ""` does).
//!
//! Not for `asterisk.conf` `[compat] res_agi = 1.4`: that rewrites `,` to `\,` and `|` to `,`
//! in EXEC data; such a PBX needs `agi.set_vars: per_variable`.
//!
//! The ports of Asterisk's side (`parse_args`, `mset_pairs`) are the simulator's:
//! `callguard_sim::asterisk::parse`; the tests here check the encoder against them.

use super::command::{AgiCommand, MAX_COMMAND_LEN};

/// Pairs per `MSet`: Asterisk parses 99; the last slot would take the rest unsplit.
pub(crate) const MAX_PAIRS: usize = 90;

/// Bytes `__ast_app_separate_args` treats specially in a value.
fn is_special(c: char) -> bool {
    matches!(c, '\\' | '"' | ',' | '(' | ')' | '[' | ']')
}

/// Appends `name=value` (with a leading `,` unless first) to MSet data.
fn push_pair(data: &mut String, name: &str, value: &str) {
    if !data.is_empty() {
        data.push(',');
    }
    data.push_str(name);
    data.push('=');
    for c in value.chars() {
        if is_special(c) {
            data.push('\\');
        }
        data.push(c);
    }
}

/// MSet data for `pairs`. Names must be plain dialplan names (letters, digits, `_`).
pub(crate) fn mset_data(pairs: &[(&str, &str)]) -> String {
    // Room for every pair with a few escapes: one allocation, no regrowth.
    let len: usize = pairs.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut data = String::with_capacity(len + len / 8);
    for (name, value) in pairs {
        push_pair(&mut data, name, value);
    }
    data
}

/// The commands that set `pairs`: as few `EXEC MSet` lines as fit under
/// [`MAX_COMMAND_LEN`], in order; a pair too long for an MSet line of its own goes as
/// `SET VARIABLE` (whose quoting is cheaper).
pub(crate) fn mset_commands(pairs: &[(&str, &str)]) -> Vec<AgiCommand> {
    // Nearly always every pair fits one line: built once and measured without writing the
    // line (its prefixes fit too, so the loop below would send exactly this command).
    if pairs.len() <= MAX_PAIRS {
        let cmd = AgiCommand::exec("MSet", mset_data(pairs));
        if cmd.line_len() <= MAX_COMMAND_LEN {
            return vec![cmd];
        }
    }
    let mut out = Vec::with_capacity(1);
    let mut batch: Vec<(&str, &str)> = Vec::new();
    let fits = |b: &[(&str, &str)]| {
        AgiCommand::exec("MSet", mset_data(b))
            .to_line()
            .is_ok_and(|l| l.len() <= MAX_COMMAND_LEN)
    };
    for &(name, value) in pairs {
        batch.push((name, value));
        if batch.len() <= MAX_PAIRS && fits(&batch) {
            continue;
        }
        batch.pop();
        if !batch.is_empty() {
            out.push(AgiCommand::exec("MSet", mset_data(&batch)));
            batch.clear();
        }
        if fits(&[(name, value)]) {
            batch.push((name, value));
        } else {
            out.push(AgiCommand::set_variable(name, value));
        }
    }
    if !batch.is_empty() {
        out.push(AgiCommand::exec("MSet", mset_data(&batch)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use callguard_sim::asterisk::parse::{mset_pairs, parse_args};
    use proptest::prelude::*;

    /// What Asterisk sets from the line: res_agi parse_args, then MSet's own parsing.
    fn asterisk_sets(cmd: &AgiCommand) -> Vec<(String, String)> {
        let line = cmd.to_line().expect("fits");
        let body = line.strip_suffix('\n').expect("one line");
        assert!(!body.contains(['\n', '\r', '\0']));
        let argv = parse_args(body);
        match argv.as_slice() {
            [exec, app, data] if exec == "EXEC" && app == "MSet" => mset_pairs(data),
            [set, var, name, value] if set == "SET" && var == "VARIABLE" => {
                vec![(name.clone(), value.clone())]
            }
            other => panic!("unexpected argv {other:?} from {line:?}"),
        }
    }

    fn round_trip(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        mset_commands(pairs)
            .iter()
            .flat_map(asterisk_sets)
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn one_command_for_the_five_variables() {
        let pairs = [
            ("CALLGUARD_VERDICT", "block"),
            ("CALLGUARD_ACTION", "reject"),
            ("CALLGUARD_RULE", "Spam, \"bad\" (x=1) ^[a]|${Y}"),
            ("CALLGUARD_LIST", "blacklist"),
            ("CALLGUARD_REASON", "a\\b = c"),
        ];
        let cmds = mset_commands(&pairs);
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0].to_line().unwrap(),
            "EXEC MSet \"CALLGUARD_VERDICT=block,CALLGUARD_ACTION=reject,\
             CALLGUARD_RULE=Spam\\\\, \\\\\\\"bad\\\\\\\" \\\\(x=1\\\\) ^\\\\[a\\\\]|${Y},\
             CALLGUARD_LIST=blacklist,CALLGUARD_REASON=a\\\\\\\\b = c\"\n"
        );
        assert_eq!(round_trip(&pairs), owned(&pairs));
    }

    #[test]
    fn plain_values_need_no_quoting() {
        let cmds = mset_commands(&[("A", "allow"), ("B", "")]);
        assert_eq!(cmds[0].to_line().unwrap(), "EXEC MSet A=allow,B=\n");
        assert_eq!(
            round_trip(&[("A", "allow"), ("B", "")]),
            owned(&[("A", "allow"), ("B", "")])
        );
    }

    #[test]
    fn long_values_split_into_several_commands() {
        let big = "\"".repeat(512);
        let pairs = [
            ("A", "x"),
            ("B", big.as_str()),
            ("C", big.as_str()),
            ("D", "y"),
        ];
        let cmds = mset_commands(&pairs);
        assert!(cmds.len() > 1, "{cmds:?}");
        for c in &cmds {
            assert!(c.to_line().unwrap().len() <= MAX_COMMAND_LEN);
        }
        assert_eq!(round_trip(&pairs), owned(&pairs));
    }

    fn value() -> impl Strategy<Value = String> {
        // The bytes that matter to either parser, plus any Unicode.
        let special = prop::sample::select(vec![
            ",", "\"", "=", "^", "\\", "|", "${", "}", " ", "\t", "(", ")", "[", "]", "'", "é",
            "名", "$", "{",
        ]);
        prop::collection::vec(
            prop_oneof![special.prop_map(str::to_string), "[^\n\r\0]{0,4}"],
            0..24,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_values_arrive_intact(values in prop::collection::vec(value(), 1..8)) {
            let names: Vec<String> = (0..values.len()).map(|i| format!("CALLGUARD_V{i}")).collect();
            let pairs: Vec<(&str, &str)> =
                names.iter().map(String::as_str).zip(values.iter().map(String::as_str)).collect();
            prop_assert_eq!(round_trip(&pairs), owned(&pairs));
        }
    }
}
