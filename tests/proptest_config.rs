//! Property tests of the config loader and the rule-set compiler, the
//! `cargo test` counterpart of the `config_load` fuzz target: any bytes in
//! `callguard.yaml` (a real file, read by `config::load` as `callguard check`
//! and a reload read it) give a rule set or located problems, never a panic.

#[path = "support/oracles.rs"]
mod oracles;

use std::path::Path;

use callguard::config::load;
use callguard::policy::RuleSet;
use proptest::prelude::*;

const SHIPPED: &str = include_str!("../config/callguard.yaml");

/// Loads `bytes` as `dir/callguard.yaml` from disk and compiles it: a rule
/// set, or problems that each name the config (or a list it names), say what
/// is wrong and, for a YAML error, where.
fn check_file(dir: &Path, bytes: &[u8]) {
    let path = dir.join("callguard.yaml");
    std::fs::write(&path, bytes).expect("write config");
    let problems = match load(&path) {
        Ok(loaded) => match RuleSet::compile(&loaded) {
            Ok(_) => return,
            Err(p) => p,
        },
        Err(p) => p,
    };
    assert!(!problems.0.is_empty(), "an error without a problem");
    for p in &problems.0 {
        assert!(!p.message.trim().is_empty(), "no message: {p:?}");
        assert!(
            p.file.starts_with(&dir.display().to_string()) || p.file.ends_with(".csv"),
            "problem not located in a file: {p}"
        );
    }
    // The same text through the in-memory entry point gives the same answer.
    if let Ok(text) = std::str::from_utf8(bytes) {
        let again = oracles::config_outcome(text, dir).expect_err("failed from disk");
        let from_disk: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        assert_eq!(again, from_disk);
    }
}

/// YAML-shaped text from the config's own vocabulary.
fn yamlish() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("trunks:\n".to_string()),
        Just("  t:\n".to_string()),
        Just("    blacklist:\n".to_string()),
        Just("      - { name: A, pattern: '+1555*' }\n".to_string()),
        Just("      - { name: R, pattern: '^(?!\\+1)[+][0-9]+$', match: regex }\n".to_string()),
        Just("      - { name: W, pattern: '[5-0]_', match: wildcard }\n".to_string()),
        Just("actions: { x: { kind: reject, tone: busy } }\n".to_string()),
        Just("schedules: { s: { timezone: Europe/Paris, open: [ { days: mon-fri, from: '09:00', to: '17:00' } ] } }\n".to_string()),
        Just("normalize: { default_region: US }\n".to_string()),
        Just("policy: { regex_backtrack_limit: 0 }\n".to_string()),
        Just("lists: [ { path: l.csv, as: blacklist } ]\n".to_string()),
        Just("fail: closed\n".to_string()),
        Just("agi: { decide_timeout: 1ms }\n".to_string()),
        Just("&a x: *a\n".to_string()),
        Just("- ".to_string()),
        Just(": ".to_string()),
        Just("\t".to_string()),
        Just("'".to_string()),
        Just("{".to_string()),
        "[a-z_]{1,12}: [a-zA-Z0-9+*_^$\\[\\]-]{0,12}\n",
        "[ -~]{0,16}",
    ];
    prop::collection::vec(word, 0..16).prop_map(|w| w.concat())
}

fn edited_shipped() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6).prop_map(|edits| {
        let mut bytes = SHIPPED.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at % bytes.len();
            match kind {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        bytes
    })
}

fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("l.csv"),
        "rule_name,pattern,match_type,action,enabled\nA,+1555*,,,true\nB,[9-,wildcard,,true\n",
    )
    .expect("list");
    dir
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let dir = temp_dir();
        check_file(dir.path(), &bytes);
    }

    #[test]
    fn yaml_shaped_text(text in yamlish()) {
        let dir = temp_dir();
        check_file(dir.path(), text.as_bytes());
    }

    #[test]
    fn edited_shipped_config(bytes in edited_shipped()) {
        let dir = temp_dir();
        check_file(dir.path(), &bytes);
    }
}

/// A YAML syntax error is reported at its line and column.
#[test]
fn yaml_errors_are_located() {
    let dir = temp_dir();
    let err = oracles::config_outcome("trunks:\n  t: {\n", dir.path()).expect_err("invalid");
    let path = dir.path().join("callguard.yaml").display().to_string();
    assert!(
        err[0].starts_with(&format!("{path}:2:")) || err[0].starts_with(&format!("{path}:3:")),
        "{err:?}"
    );
}
