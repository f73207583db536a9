//! Every unknown key of a config file, with its line and column.
//!
//! Serde stops at the first unknown key; an operator who mistyped three keys
//! would fix them one run at a time. When the typed parse fails, this second
//! pass walks the YAML as a generic tree and reports every key that is not
//! in the schema, which `schema` derives from the serde types themselves.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::problem::Problem;
use super::schema::{self, Shape};

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

/// Every key of `text` that the configuration does not know, located.
/// Returns nothing when the text is not even YAML (the parser said why).
pub(crate) fn unknown_keys(text: &str, file: &str) -> Vec<Problem> {
    let Ok(root) = serde_saphyr::from_str::<Node>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(&root, schema::root(), "", file, &mut out);
    out
}

/// The dotted path of the key whose value holds position `line:column` (the
/// last key that starts at or before it), so a type error the parser reports
/// as `invalid u32` can name `agi.max_connections`.
pub(crate) fn key_at(text: &str, line: u64, column: u64) -> Option<String> {
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
pub(crate) fn blank_keys(text: &str, unknown: &[Problem]) -> String {
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

fn walk(node: &Node, shape: &Shape, path: &str, file: &str, out: &mut Vec<Problem>) {
    match (node, shape) {
        (Node::Map(entries), Shape::Struct(fields)) => {
            for (k, v) in entries {
                let name = k.value.0.as_str();
                let here = if path.is_empty() {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                };
                match fields.iter().find(|(f, _)| *f == name) {
                    Some((_, sub)) => walk(v, sub, &here, file, out),
                    None => {
                        let known = shape.fields();
                        let hint = match did_you_mean(name, &known) {
                            Some(m) => format!("did you mean `{m}`? "),
                            None => String::new(),
                        };
                        out.push(Problem::at(
                            file,
                            &k.referenced,
                            format!(
                                "unknown key `{here}` ({hint}expected one of: {})",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
        (Node::Map(entries), Shape::Named(sub)) => {
            for (k, v) in entries {
                let here = if path.is_empty() {
                    k.value.0.clone()
                } else {
                    format!("{path}.{}", k.value.0)
                };
                walk(v, sub, &here, file, out);
            }
        }
        (Node::Seq(items), Shape::List(sub)) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, sub, &format!("{path}[{i}]"), file, out);
            }
        }
        // Wrong kinds of node are the typed parser's to report.
        _ => {}
    }
}

/// The known key closest to a mistyped one, when it is close enough to be
/// the likely intent: at most a third of its letters (at least one) differ.
fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, with a swap of two neighbours counting as one edit
/// (`paht` → `path`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests;
