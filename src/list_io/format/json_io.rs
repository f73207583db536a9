//! JSON: an array of objects keyed like the CSV columns.
//!
//! serde_json reports syntax errors with line and column but not where each
//! array element starts, so a small scanner finds the elements first; an
//! element's problems are then reported at the element's line.

use serde_json::Value;

use super::{Field, LineIndex, MAX_ROW_BYTES, MAX_ROWS, ParsedList, RowFields};
use crate::list_io::RuleRow;

pub(super) fn read(bytes: &[u8], out: &mut ParsedList) {
    let lines = LineIndex::new(bytes);
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    match first {
        None => return out.fatal(1, None, "empty file: expected a JSON array of rules"),
        Some(i) if bytes[i] != b'[' => {
            let (l, c) = lines.line_col(i);
            return out.fatal(
                l,
                Some(c),
                "expected a JSON array of rules (`[ {...}, ... ]`)",
            );
        }
        Some(_) => {}
    }
    let spans = element_spans(bytes);
    if spans.len() > MAX_ROWS {
        let line = lines.line(spans[MAX_ROWS].0);
        out.rows_read = spans.len();
        return out.fatal(
            line,
            None,
            format!("more than {MAX_ROWS} rows: file refused"),
        );
    }
    let values: Vec<Value> = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let line = u32::try_from(e.line()).unwrap_or(u32::MAX);
            let col = u32::try_from(e.column()).unwrap_or(u32::MAX);
            // serde_json appends " at line L column C"; we print those ourselves.
            let msg = e.to_string();
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            return out.fatal(line, Some(col), format!("invalid JSON: {msg}"));
        }
    };
    // The scanner and serde_json agree on valid JSON; the fallback is defensive.
    for (i, value) in values.into_iter().enumerate() {
        let (start, end) = spans.get(i).copied().unwrap_or((0, 0));
        let line = lines.line(start);
        out.count_row(line);
        if end.saturating_sub(start) > MAX_ROW_BYTES {
            out.error(
                line,
                None,
                format!("rule longer than {MAX_ROW_BYTES} bytes"),
            );
            continue;
        }
        match element(value) {
            Ok(row) => out.rows.push((line, row)),
            Err(problems) => {
                for p in problems {
                    out.error(line, None, p);
                }
            }
        }
    }
}

fn element(value: Value) -> Result<RuleRow, Vec<String>> {
    let Value::Object(map) = value else {
        return Err(vec![format!("expected an object, found {}", kind(&value))]);
    };
    let mut fields = RowFields::default();
    let mut problems = Vec::new();
    for (key, v) in map {
        let Some(field) = Field::from_key(&key) else {
            problems.push(format!("unknown key {key:?} (expected rule_name, pattern, match_type, action, enabled, notes)"));
            continue;
        };
        let text = match (field, v) {
            (_, Value::Null) => continue,
            (_, Value::String(s)) => s,
            // CRM exports write phone numbers as numbers; integers are safe to take.
            (_, Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            (Field::Enabled, Value::Bool(b)) => b.to_string(),
            (_, other) => {
                problems.push(format!(
                    "{}: expected {}, found {}",
                    field.key(),
                    if field == Field::Enabled {
                        "true or false"
                    } else {
                        "a string"
                    },
                    kind(&other)
                ));
                continue;
            }
        };
        fields.set(field, text);
    }
    match fields.finish() {
        Ok(row) if problems.is_empty() => Ok(row),
        Ok(_) => Err(problems),
        Err(more) => {
            problems.extend(more.into_iter().map(|(_, m)| m));
            Err(problems)
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Byte spans of the top-level array's elements. Exact for valid JSON; on
/// invalid JSON the result is unused (serde_json reports the error).
fn element_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut current: Option<usize> = None;
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
                last = i + 1;
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => continue,
            b'[' | b'{' if depth == 0 => depth = 1,
            b',' | b']' if depth == 1 => {
                if let Some(start) = current.take() {
                    spans.push((start, last));
                }
                if b == b']' {
                    depth = 0;
                }
                continue;
            }
            _ => {
                if depth == 1 && current.is_none() {
                    current = Some(i);
                }
                match b {
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    b'"' => in_string = true,
                    _ => {}
                }
            }
        }
        last = i + 1;
    }
    spans
}

/// Pretty-printed array, keys in the export order of the reference.
pub(super) fn write(rows: &[RuleRow]) -> Vec<u8> {
    // Serialising strings and booleans into memory has no failure mode.
    serde_json::to_vec_pretty(rows).expect("RuleRow always serialises")
}

#[cfg(test)]
mod tests {
    use super::element_spans;

    #[test]
    fn spans_follow_top_level_elements() {
        let text = br#"[ {"a": "x,]"}, 12 , "s\"]" ,[1,[2]] ]"#;
        let spans = element_spans(text);
        let got: Vec<&str> = spans
            .iter()
            .map(|(s, e)| std::str::from_utf8(&text[*s..*e]).unwrap())
            .collect();
        assert_eq!(got, [r#"{"a": "x,]"}"#, "12", r#""s\"]""#, "[1,[2]]"]);
    }
}
