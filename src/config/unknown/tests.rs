//! Unknown keys: located, complete, with the rest of the file left in place.
use super::*;

#[test]
fn every_unknown_key_is_reported_with_its_place() {
    let yaml = "trunks:\n  main:\n    blacklsit: []\n    whitelist:\n      - { name: a, patern: '+1' }\nlog: { paht: x }\nnormalise: {}\n";
    let p = unknown_keys(yaml, "c.yaml");
    let lines: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(
        lines[0].starts_with("c.yaml:3:5: unknown key `trunks.main.blacklsit`"),
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("c.yaml:5:") && lines[1].contains("trunks.main.whitelist[0].patern"),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with("c.yaml:6:") && lines[2].contains("log.paht"),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with("c.yaml:7:1:") && lines[3].contains("`normalise`"),
        "{lines:#?}"
    );
}

/// Blanking keeps every other value at its line and column, so the typed
/// parse of the rest reports its own problems where they are.
#[test]
fn blanked_keys_leave_the_rest_in_place() {
    let yaml = "trunks:\n  main:\n    blacklsit:\n      - { name: a }\n      - b\n    blacklist:\n      - { name: a, patern: '+1, {x}', pattern: '+2' }\nlog: { paht: x }\n";
    let unknown = unknown_keys(yaml, "c.yaml");
    assert_eq!(unknown.len(), 3);
    let blanked = blank_keys(yaml, &unknown);
    assert_eq!(blanked.len(), yaml.len());
    let gone = " ".repeat("patern: '+1, {x}',".len());
    assert_eq!(
        blanked.lines().nth(6),
        Some(format!("      - {{ name: a, {gone} pattern: '+2' }}").as_str())
    );
    assert!(unknown_keys(&blanked, "c.yaml").is_empty(), "{blanked}");
    let raw: crate::config::types::RawConfig = serde_saphyr::from_str(&blanked).unwrap();
    let rule = &raw.trunks["main"].value.blacklist[0];
    assert_eq!(rule.value.pattern.as_ref().unwrap().referenced.line(), 7);
    assert_eq!(
        key_at(yaml, 7, 50).as_deref(),
        Some("trunks.main.blacklist[0].pattern")
    );
}

#[test]
fn the_shipped_config_has_no_unknown_key() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/callguard.yaml"
    ))
    .unwrap();
    assert!(unknown_keys(&text, "callguard.yaml").is_empty());
}

/// A close miss names the key it probably meant; a far one only lists them.
#[test]
fn a_near_miss_suggests_the_known_key() {
    let p = unknown_keys("log: { paht: x }\nagi: { zzzz: 1 }\n", "c.yaml");
    let lines: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert!(
        lines[0].contains("`log.paht` (did you mean `path`? expected one of: path,"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("`agi.zzzz` (expected one of: env_timeout,"),
        "{lines:#?}"
    );
    assert_eq!(
        did_you_mean("blacklsit", &["whitelist", "blacklist"]),
        Some("blacklist")
    );
    assert_eq!(did_you_mean("x", &["path"]), None);
}

/// Unknown keys after a value of the wrong type are still found: the walk
/// does not stop where serde does.
#[test]
fn unknown_keys_beyond_a_type_error_are_reported() {
    let yaml = "agi: { max_connections: lots }\nlog: { paht: x }\n";
    assert!(serde_saphyr::from_str::<crate::config::types::RawConfig>(yaml).is_err());
    let p = unknown_keys(yaml, "c.yaml");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].to_string()
            .starts_with("c.yaml:2:8: unknown key `log.paht`")
    );
}
