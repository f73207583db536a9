//! The config loader and the rule-set compiler on any text, as
//! `callguard check` and a reload run them: `load_str` (the YAML parser, the
//! unknown-key finder, the list files it names) then `RuleSet::compile`
//! (patterns, schedules, actions, trunks). Either a rule set or problems that
//! each name a file and say what is wrong (`oracles::config_outcome`).
//!
//! The config sits in a temporary directory holding one list of each format,
//! so `lists: [{ path: l.csv }]` reaches the importers too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/oracles.rs"]
mod oracles;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let files: [(&str, &str); 3] = [
            (
                "l.csv",
                "rule_name,pattern,match_type,action,enabled\nA,+1555*,,,true\nB,^(?!\\+1)[+][0-9]+$,regex,,yes\n",
            ),
            (
                "l.json",
                r#"[{"rule_name":"J","pattern":"+44_[0-5]*","match_type":"wildcard"}]"#,
            ),
            (
                "l.xml",
                "<rules><rule><name>X</name><pattern>*666</pattern><type>ends_with</type></rule></rules>",
            ),
        ];
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write list");
        }
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    // `load` refuses non-UTF-8 before anything else; the text is what matters.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = oracles::config_outcome(text, dir());
});
