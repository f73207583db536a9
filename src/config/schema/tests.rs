//! The derived schema: what serde accepts, found through the types.
use super::*;
use crate::config::types::RawConfig;

/// The shape at `path`: a field name, `*` for a map entry, `[]` for an element.
fn at<'a>(mut shape: &'a Shape, path: &[&str]) -> &'a Shape {
    for step in path {
        shape = match (shape, *step) {
            (Shape::Named(s), "*") | (Shape::List(s), "[]") => s,
            (Shape::Struct(f), name) => {
                &f.iter()
                    .find(|(n, _)| *n == name)
                    .unwrap_or_else(|| panic!("no {name} in {path:?}"))
                    .1
            }
            _ => panic!("{step} of {shape:?} in {path:?}"),
        };
    }
    shape
}

fn sorted(mut v: Vec<&'static str>) -> Vec<&'static str> {
    v.sort_unstable();
    v
}

/// serde's own list of the fields a section accepts, from its error.
fn serde_fields(yaml: &str) -> Vec<String> {
    let err = serde_saphyr::from_str::<RawConfig>(yaml)
        .expect_err("unknown key must fail")
        .to_string();
    let tail = err
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("{err}"));
    let mut v: Vec<String> = tail
        .lines()
        .next()
        .unwrap_or("")
        .split(',')
        .map(|f| f.trim().trim_matches('`').to_string())
        .filter(|f| !f.is_empty())
        .collect();
    v.sort();
    v
}

/// Through `Spanned`, `Option`, `Vec` and `BTreeMap` the probe reaches every
/// struct: the shapes nest as the file does.
#[test]
fn the_probe_reaches_through_spans_options_lists_and_maps() {
    let root = root();
    let rule = at(root, &["trunks", "*", "blacklist", "[]"]);
    assert!(rule.fields().contains(&"match"), "{rule:?}");
    assert_eq!(
        sorted(at(rule, &["schedule"]).fields()),
        ["inside", "outside"]
    );
    assert_eq!(
        sorted(at(root, &["http", "tokens", "[]"]).fields()),
        ["name", "tenant", "token_env", "user"]
    );
    assert_eq!(
        sorted(at(root, &["schedules", "*", "open", "[]"]).fields()),
        ["days", "from", "to"]
    );
    assert!(
        at(root, &["actions", "*", "learn"])
            .fields()
            .contains(&"fails")
    );
    assert!(at(root, &["source"]).fields().contains(&"poll"));
    assert_eq!(at(root, &["protected"]), &Shape::List(Box::new(Shape::Any)));
    assert_eq!(at(root, &["fail"]), &Shape::Any);
}

/// The derived field lists are serde's: provoke its "expected one of" in
/// sections at every kind of nesting and compare.
#[test]
fn the_derived_fields_are_those_serde_accepts() {
    let z = "zz_unknown: 1";
    let cases: &[(String, &[&str])] = &[
        (z.to_string(), &[]),
        (
            format!("actions: {{ a: {{ kind: reject, {z} }} }}"),
            &["actions", "*"],
        ),
        (
            format!("actions: {{ a: {{ kind: reject, asterisk: {{ {z} }} }} }}"),
            &["actions", "*", "asterisk"],
        ),
        (
            format!(
                "schedules: {{ s: {{ timezone: UTC, open: [ {{ days: mon, from: '1', to: '2', {z} }} ] }} }}"
            ),
            &["schedules", "*", "open", "[]"],
        ),
        (
            format!("blacklist: [ {{ name: a, {z} }} ]"),
            &["blacklist", "[]"],
        ),
        (
            format!("lists: [ {{ as: blacklist, {z} }} ]"),
            &["lists", "[]"],
        ),
        (format!("trunks: {{ t: {{ {z} }} }}"), &["trunks", "*"]),
        (
            format!("velocity: [ {{ name: v, {z} }} ]"),
            &["velocity", "[]"],
        ),
    ];
    for (yaml, path) in cases {
        assert_eq!(
            serde_fields(yaml),
            sorted(at(root(), path).fields()),
            "{yaml}"
        );
    }
    for (name, shape) in match root() {
        Shape::Struct(f) => f,
        _ => panic!("the root is a struct"),
    } {
        if matches!(shape, Shape::Struct(_)) {
            let yaml = format!("{name}: {{ {z} }}");
            assert_eq!(serde_fields(&yaml), sorted(shape.fields()), "{yaml}");
        }
    }
}
