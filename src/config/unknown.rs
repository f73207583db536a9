//! Every unknown key of a config file, with its line and column.
//!
//! Serde stops at the first unknown key; an operator who mistyped three keys
//! would fix them one run at a time. When the typed parse fails, this second
//! pass walks the YAML as a generic tree and reports every key that is not
//! in the schema below. A test keeps the schema equal to the serde types.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::problem::Problem;

/// A YAML node: only the structure and the keys' positions matter here.
enum Node {
    Map(Vec<(Spanned<Key>, Node)>),
    Seq(Vec<Node>),
    Scalar,
}

/// A mapping key as text, whatever scalar it was written as.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key("~".into()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                while let Some(k) = m.next_key::<Spanned<Key>>()? {
                    entries.push((k, m.next_value::<Node>()?));
                }
                Ok(Node::Map(entries))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(n) = s.next_element::<Node>()? {
                    items.push(n);
                }
                Ok(Node::Seq(items))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_none<E: de::Error>(self) -> Result<Node, E> {
                Ok(Node::Scalar)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Node, D2::Error> {
                Node::deserialize(d)
            }
        }
        d.deserialize_any(V)
    }
}

/// What a mapping at some place in the file may contain.
#[derive(Clone, Copy)]
enum Shape {
    /// A struct: these keys, each with its own shape.
    Struct(&'static [(&'static str, Shape)]),
    /// A map of user-chosen names to values of one shape (`actions`, `trunks`).
    Named(&'static Shape),
    /// A list of values of one shape.
    List(&'static Shape),
    /// Anything: scalars and lists of scalars.
    Any,
}

use Shape::{Any, List, Named, Struct};

const SCHEDULE_REF: Shape = Struct(&[("inside", Any), ("outside", Any)]);
const OVERRIDE: Shape = Struct(&[
    ("sound", Any),
    ("dial", Any),
    ("tone", Any),
    ("mailbox", Any),
    ("target", Any),
    ("prompt", Any),
    ("invalid", Any),
    ("digit_sound", Any),
]);
const LEARN: Shape = Struct(&[
    ("fails", Any),
    ("per", Any),
    ("add_failed_to", Any),
    ("block_for", Any),
    ("add_passed_to", Any),
    ("trust_for", Any),
]);
const VELOCITY: Shape = Struct(&[
    ("name", Any),
    ("scope", Any),
    ("max", Any),
    ("per", Any),
    ("action", Any),
    ("block_for", Any),
]);
const ACTION: Shape = Struct(&[
    ("kind", Any),
    ("tone", Any),
    ("cause", Any),
    ("seconds", Any),
    ("sound", Any),
    ("then", Any),
    ("answer", Any),
    ("mailbox", Any),
    ("target", Any),
    ("dial", Any),
    ("timeout", Any),
    ("on_no_answer", Any),
    ("prompt", Any),
    ("digits", Any),
    ("tries", Any),
    ("on_pass", Any),
    ("on_fail", Any),
    ("invalid", Any),
    ("learn", LEARN),
    ("mode", Any),
    ("asterisk", OVERRIDE),
    ("freeswitch", OVERRIDE),
]);
const WINDOW: Shape = Struct(&[("days", Any), ("from", Any), ("to", Any)]);
const SCHEDULE: Shape = Struct(&[
    ("timezone", Any),
    ("open", List(&WINDOW)),
    ("closed_dates", Any),
]);
const RULE: Shape = Struct(&[
    ("name", Any),
    ("pattern", Any),
    ("match", Any),
    ("anonymous", Any),
    ("action", Any),
    ("priority", Any),
    ("schedule", SCHEDULE_REF),
    ("enabled", Any),
    ("notes", Any),
    ("case_insensitive", Any),
    ("attestation", Any),
]);
const LIST_FILE: Shape = Struct(&[
    ("path", Any),
    ("as", Any),
    ("name", Any),
    ("action", Any),
    ("url", Any),
    ("refresh", Any),
]);
const TRUNK: Shape = Struct(&[
    ("dids", Any),
    ("region", Any),
    ("whitelist_mode", Any),
    ("exclusive", SCHEDULE_REF),
    ("blocked_action", Any),
    ("allowed_action", Any),
    ("whitelist", List(&RULE)),
    ("blacklist", List(&RULE)),
    ("lists", List(&LIST_FILE)),
    ("velocity", List(&VELOCITY)),
]);
const TOKEN: Shape = Struct(&[("name", Any), ("token_env", Any)]);

/// The whole file (mirrors `types::RawConfig`).
const ROOT: Shape = Struct(&[
    ("normalize", Struct(&[("default_region", Any)])),
    ("protected", Any),
    ("default_trunk", Any),
    ("blocked_action", Any),
    ("fail", Any),
    ("actions", Named(&ACTION)),
    ("schedules", Named(&SCHEDULE)),
    ("blacklist", List(&RULE)),
    ("lists", List(&LIST_FILE)),
    ("trunks", Named(&TRUNK)),
    (
        "listen",
        Struct(&[("agi", Any), ("esl", Any), ("http", Any)]),
    ),
    (
        "agi",
        Struct(&[
            ("env_timeout", Any),
            ("decide_timeout", Any),
            ("reply_timeout", Any),
            ("max_connections", Any),
            ("allow", Any),
            ("set_vars", Any),
        ]),
    ),
    (
        "esl",
        Struct(&[
            ("connect_timeout", Any),
            ("decide_timeout", Any),
            ("reply_timeout", Any),
            ("max_connections", Any),
            ("allow", Any),
            ("max_header_bytes", Any),
            ("max_body_bytes", Any),
            ("linger", Any),
            ("set_vars", Any),
        ]),
    ),
    (
        "http",
        Struct(&[
            ("tokens", List(&TOKEN)),
            ("max_body_bytes", Any),
            ("protect_reads", Any),
            ("tester_budget", Any),
            ("max_connections", Any),
            ("header_timeout", Any),
            ("body_timeout", Any),
            ("keep_alive_timeout", Any),
            ("allowed_hosts", Any),
        ]),
    ),
    (
        "log",
        Struct(&[
            ("path", Any),
            ("retention_days", Any),
            ("queue", Any),
            ("postgres", Any),
            ("postgres_password_env", Any),
        ]),
    ),
    ("history", Struct(&[("retention_days", Any)])),
    (
        "server",
        Struct(&[
            ("grace_period", Any),
            ("reload_debounce", Any),
            ("retention_interval", Any),
        ]),
    ),
    ("policy", Struct(&[("regex_backtrack_limit", Any)])),
    (
        "source",
        Struct(&[("git", Any), ("branch", Any), ("path", Any), ("poll", Any)]),
    ),
    ("velocity", List(&VELOCITY)),
    ("velocity_limits", Struct(&[("max_tracked", Any)])),
]);

/// Every key of `text` that the configuration does not know, located.
/// Returns nothing when the text is not even YAML (the parser said why).
pub fn unknown_keys(text: &str, file: &str) -> Vec<Problem> {
    let Ok(root) = serde_saphyr::from_str::<Node>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(&root, ROOT, "", file, &mut out);
    out
}

/// The dotted path of the key whose value holds position `line:column` (the
/// last key that starts at or before it), so a type error the parser reports
/// as `invalid u32` can name `agi.max_connections`.
pub fn key_at(text: &str, line: u64, column: u64) -> Option<String> {
    let root = serde_saphyr::from_str::<Node>(text).ok()?;
    let mut keys = Vec::new();
    collect_keys(&root, "", &mut keys);
    keys.into_iter()
        .filter(|(l, c, _)| (*l, *c) <= (line, column))
        .max_by_key(|(l, c, _)| (*l, *c))
        .map(|(_, _, path)| path)
}

fn collect_keys(node: &Node, path: &str, out: &mut Vec<(u64, u64, String)>) {
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                let here = if path.is_empty() {
                    k.value.0.clone()
                } else {
                    format!("{path}.{}", k.value.0)
                };
                out.push((k.referenced.line(), k.referenced.column(), here.clone()));
                collect_keys(v, &here, out);
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_keys(item, &format!("{path}[{i}]"), out);
            }
        }
        Node::Scalar => {}
    }
}

/// `text` with every key of `unknown` and its value replaced by spaces, so
/// the typed parser can read the rest and report its own problems at their
/// unchanged lines and columns. Block-style entries are blanked to the end
/// of the line plus every more-indented line after it; entries inside a
/// flow mapping (`{ a: 1, b: 2 }`) up to and including their comma.
pub fn blank_keys(text: &str, unknown: &[Problem]) -> String {
    let mut lines: Vec<Vec<char>> = text.split('\n').map(|l| l.chars().collect()).collect();
    for p in unknown {
        let (Some(l), Some(c)) = (
            usize::try_from(p.line).ok().and_then(|l| l.checked_sub(1)),
            usize::try_from(p.column)
                .ok()
                .and_then(|c| c.checked_sub(1)),
        ) else {
            continue;
        };
        if l >= lines.len() || c > lines[l].len() {
            continue;
        }
        let before: String = lines[l][..c].iter().collect();
        let block = before.trim_start_matches([' ', '-']).trim().is_empty();
        if block {
            let indent = c;
            lines[l][c..].iter_mut().for_each(|ch| *ch = ' ');
            for line in lines.iter_mut().skip(l + 1) {
                let first = line.iter().position(|ch| !ch.is_whitespace());
                match first {
                    Some(i) if i <= indent && line[i] != '#' => break,
                    _ => line.iter_mut().for_each(|ch| *ch = ' '),
                }
            }
        } else {
            blank_flow_entry(&mut lines, l, c);
        }
    }
    lines
        .into_iter()
        .map(|l| l.into_iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Blanks a flow-mapping entry from `(l, c)` to the comma that ends it
/// (included) or the closing brace (kept), skipping nested brackets and quotes.
fn blank_flow_entry(lines: &mut [Vec<char>], mut l: usize, mut c: usize) {
    let (mut depth, mut quote) = (0i32, None::<char>);
    while l < lines.len() {
        while c < lines[l].len() {
            let ch = lines[l][c];
            match (quote, ch) {
                (Some(q), _) if ch == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(ch),
                (None, '{' | '[') => depth += 1,
                (None, '}' | ']') if depth == 0 => return,
                (None, '}' | ']') => depth -= 1,
                (None, ',') if depth == 0 => {
                    lines[l][c] = ' ';
                    return;
                }
                _ => {}
            }
            lines[l][c] = ' ';
            c += 1;
        }
        l += 1;
        c = 0;
    }
}

fn walk(node: &Node, shape: Shape, path: &str, file: &str, out: &mut Vec<Problem>) {
    match (node, shape) {
        (Node::Map(entries), Struct(fields)) => {
            for (k, v) in entries {
                let name = k.value.0.as_str();
                let here = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                match fields.iter().find(|(f, _)| *f == name) {
                    Some((_, sub)) => walk(v, *sub, &here, file, out),
                    None => {
                        let known: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
                        out.push(Problem::at(
                            file,
                            &k.referenced,
                            format!(
                                "unknown key `{here}` (expected one of: {})",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        (Node::Map(entries), Named(sub)) => {
            for (k, v) in entries {
                let here = if path.is_empty() {
                    k.value.0.clone()
                } else {
                    format!("{path}.{}", k.value.0)
                };
                walk(v, *sub, &here, file, out);
            }
        }
        (Node::Seq(items), List(sub)) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, *sub, &format!("{path}[{i}]"), file, out);
            }
        }
        // Wrong kinds of node are the typed parser's to report.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
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
            lines[1].starts_with("c.yaml:5:")
                && lines[1].contains("trunks.main.whitelist[0].patern"),
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

    /// The schema above must list exactly the fields serde accepts: provoke
    /// serde's "expected one of" for every section and compare.
    #[test]
    fn schema_matches_the_serde_types() {
        fn serde_fields(yaml: &str) -> Vec<String> {
            let err = serde_saphyr::from_str::<crate::config::types::RawConfig>(yaml)
                .expect_err("unknown key must fail")
                .to_string();
            let tail = err
                .split("expected one of")
                .nth(1)
                .unwrap_or_else(|| panic!("{err}"));
            let tail = tail.lines().next().unwrap_or("");
            let mut v: Vec<String> = tail
                .split(',')
                .map(|f| f.trim().trim_matches('`').to_string())
                .filter(|f| !f.is_empty())
                .collect();
            v.sort();
            v
        }
        fn schema_fields(shape: Shape) -> Vec<String> {
            match shape {
                Struct(f) => {
                    let mut v: Vec<String> = f.iter().map(|(n, _)| n.to_string()).collect();
                    v.sort();
                    v
                }
                _ => panic!("not a struct"),
            }
        }
        let z = "zz_unknown: 1";
        let cases: &[(String, Shape)] = &[
            (z.to_string(), ROOT),
            (
                format!("normalize: {{ {z} }}"),
                Struct(&[("default_region", Any)]),
            ),
            (format!("actions: {{ a: {{ kind: reject, {z} }} }}"), ACTION),
            (
                format!("actions: {{ a: {{ kind: reject, asterisk: {{ {z} }} }} }}"),
                OVERRIDE,
            ),
            (
                format!("schedules: {{ s: {{ timezone: UTC, {z} }} }}"),
                SCHEDULE,
            ),
            (
                format!(
                    "schedules: {{ s: {{ timezone: UTC, open: [ {{ days: mon, from: '1', to: '2', {z} }} ] }} }}"
                ),
                WINDOW,
            ),
            (format!("blacklist: [ {{ name: a, {z} }} ]"), RULE),
            (
                format!("blacklist: [ {{ name: a, schedule: {{ {z} }} }} ]"),
                SCHEDULE_REF,
            ),
            (format!("lists: [ {{ as: blacklist, {z} }} ]"), LIST_FILE),
            (format!("trunks: {{ t: {{ {z} }} }}"), TRUNK),
            (
                format!("http: {{ tokens: [ {{ name: a, token_env: B, {z} }} ] }}"),
                TOKEN,
            ),
        ];
        for (yaml, shape) in cases {
            assert_eq!(serde_fields(yaml), schema_fields(*shape), "{yaml}");
        }
        // The remaining sections of the root.
        if let Struct(root) = ROOT {
            for (name, shape) in root {
                if let Struct(_) = shape
                    && !["normalize"].contains(name)
                {
                    let yaml = format!("{name}: {{ {z} }}");
                    assert_eq!(serde_fields(&yaml), schema_fields(*shape), "{yaml}");
                }
            }
        }
    }
}
