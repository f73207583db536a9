//! CSV: a header row naming the columns (any order), one rule per record.
//!
//! Read with `csv::ByteRecord` and one reused record buffer, so a
//! million-row file costs only the strings we keep.

use csv::{ByteRecord, ReaderBuilder};

use super::{Field, MAX_ROW_BYTES, ParsedList, RowFields};
use crate::lists::RuleRow;

const REQUIRED: [Field; 5] = [
    Field::Name,
    Field::Pattern,
    Field::MatchType,
    Field::Action,
    Field::Enabled,
];

pub(super) fn read(bytes: &[u8], out: &mut ParsedList) {
    // `flexible`: a short or long record is that row's error, not the file's.
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => return out.fatal(1, None, "empty file: a header row is required (rule_name,pattern,match_type,action,enabled[,notes])"),
        Err(e) => return out.fatal(1, None, format!("unreadable CSV: {e}")),
    }
    let Some(columns) = header(bytes, &record, out) else {
        return;
    };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| clamp(p.line()));
                return out.fatal(line, None, format!("unreadable CSV: {e}"));
            }
        }
        let (line, start) = record
            .position()
            .map_or((0, 0), |p| (clamp(p.line()), p.byte() as usize));
        if !out.count_row(line) {
            return;
        }
        if record.as_slice().len() > MAX_ROW_BYTES {
            out.error(line, None, format!("row longer than {MAX_ROW_BYTES} bytes"));
            continue;
        }
        if record.len() != columns.len() {
            out.error(
                line,
                None,
                format!("expected {} fields, found {}", columns.len(), record.len()),
            );
            continue;
        }
        if let Some(row) = row(bytes, &record, &columns, line, start, out) {
            out.rows.push((line, row));
        }
    }
}

/// Maps each header column to its field; `None` (after a fatal error) when the
/// header is wrong, because then no row can be understood.
fn header(bytes: &[u8], record: &ByteRecord, out: &mut ParsedList) -> Option<Vec<Field>> {
    let start = record.position().map_or(0, |p| p.byte() as usize);
    let mut columns: Vec<Field> = Vec::with_capacity(record.len());
    for (i, raw) in record.iter().enumerate() {
        let name = String::from_utf8_lossy(raw);
        let col = Some(locate_field(bytes, start, 1, i).1);
        let Some(field) = Field::from_key(&name.trim().to_ascii_lowercase()) else {
            out.fatal(1, col, format!("unknown column {:?} (expected rule_name,pattern,match_type,action,enabled[,notes])", name.trim()));
            return None;
        };
        if columns.contains(&field) {
            out.fatal(1, col, format!("column {:?} appears twice", field.key()));
            return None;
        }
        columns.push(field);
    }
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|f| !columns.contains(f))
        .map(|f| f.key())
        .collect();
    if !missing.is_empty() {
        out.fatal(
            1,
            None,
            format!("header lacks required column(s): {}", missing.join(", ")),
        );
        return None;
    }
    Some(columns)
}

fn row(
    bytes: &[u8],
    record: &ByteRecord,
    columns: &[Field],
    line: u32,
    start: usize,
    out: &mut ParsedList,
) -> Option<RuleRow> {
    let mut fields = RowFields::default();
    for (i, (raw, field)) in record.iter().zip(columns).enumerate() {
        match std::str::from_utf8(raw) {
            Ok(s) => fields.set(*field, s.to_string()),
            Err(_) => {
                let (l, c) = locate_field(bytes, start, line, i);
                out.error(l, Some(c), format!("{}: not UTF-8 text", field.key()));
                return None;
            }
        }
    }
    match fields.finish() {
        Ok(row) => Some(row),
        Err(problems) => {
            for (field, message) in problems {
                let i = columns.iter().position(|c| *c == field).unwrap_or(0);
                let (l, c) = locate_field(bytes, start, line, i);
                out.error(l, Some(c), message);
            }
            None
        }
    }
}

fn clamp(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Line and character column where field `index` of the record starting at
/// byte `start` (on `line`) begins. Only used on the error path, so it
/// re-scans the raw bytes rather than slowing down every row.
fn locate_field(bytes: &[u8], start: usize, line: u32, index: usize) -> (u32, u32) {
    let (mut line, mut col, mut field, mut quoted) = (line, 1u32, 0usize, false);
    let mut i = start;
    while field < index && i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' if quoted && bytes.get(i + 1) == Some(&b'"') => {
                i += 1;
                col += 1;
            }
            b'"' => quoted = !quoted,
            b',' if !quoted => field += 1,
            b'\n' if !quoted => break,
            _ => {}
        }
        if b == b'\n' {
            line += 1;
            col = 1;
        } else if b & 0xC0 != 0x80 {
            col += 1;
        }
        i += 1;
    }
    (line, col)
}

/// CSV with the export header; fields quoted only when they must be.
pub(super) fn write(rows: &[RuleRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + rows.len() * 64);
    out.extend_from_slice(b"rule_name,pattern,match_type,action,enabled,notes\n");
    for r in rows {
        field(&mut out, &r.rule_name);
        out.push(b',');
        field(&mut out, &r.pattern);
        out.push(b',');
        field(&mut out, &r.match_type);
        out.push(b',');
        field(&mut out, &r.action);
        out.extend_from_slice(if r.enabled { b",true," } else { b",false," });
        field(&mut out, &r.notes);
        out.push(b'\n');
    }
    out
}

fn field(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for b in s.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}
