//! CSV: a header row naming the columns (any order), one rule per record.
//!
//! Read with `csv::ByteRecord` and one reused record buffer, so a
//! million-row file costs only the strings we keep.

use csv::{ByteRecord, ReaderBuilder};

use super::csv_cell::{neutralise, restore};
use super::{Field, MAX_ROW_BYTES, ParsedList, RowFields};
use crate::list_io::RuleRow;

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
    let (mut base, mut base_line) = (
        clamp_usize(reader.position().byte()),
        clamp(reader.position().line()),
    );
    // A broken quote ends one segment; reading resumes on the line after it.
    while let Some((next, next_line)) = read_segment(bytes, base, base_line, &columns, out) {
        (base, base_line) = (next, next_line);
    }
}

/// Reads records from `bytes[base..]` (whose first line is `base_line`).
/// Returns where to resume when a quote that opens a field spans lines and is
/// never properly closed: the csv reader would otherwise swallow the rows
/// after it into that field, so that row is reported and the next line is read
/// as a row of its own.
fn read_segment(
    bytes: &[u8],
    base: usize,
    base_line: u32,
    columns: &[Field],
    out: &mut ParsedList,
) -> Option<(usize, u32)> {
    // A fresh csv reader drops a UTF-8 BOM at its start, which is right for
    // the file but would eat the first character of a row that begins with
    // one: start such a segment on the line terminator before it (an empty
    // line, which the reader skips without counting it).
    let base = if base > 0 && bytes.get(base..)?.starts_with(b"\xef\xbb\xbf") {
        base - 1
    } else {
        base
    };
    let text = bytes.get(base..)?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut record = ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                let line = e
                    .position()
                    .map_or(0, |p| clamp(p.line()).saturating_add(base_line - 1));
                out.fatal(line, None, format!("unreadable CSV: {e}"));
                return None;
            }
        }
        let (line, start) = record.position().map_or((0, base), |p| {
            (
                clamp(p.line()).saturating_add(base_line - 1),
                base + clamp_usize(p.byte()),
            )
        });
        let end = base + clamp_usize(reader.position().byte());
        if let Some((open_line, col)) = broken_quote(bytes, start, end.min(bytes.len()), line) {
            if !out.count_row(line) {
                return None;
            }
            out.error(
                open_line,
                Some(col),
                "unterminated quote: the quoted field runs into the next line(s) and is not closed \
                 properly (close it with \" or double a quote inside it as \"\"); \
                 the following lines are read as rows of their own",
            );
            // Resume on the line after the one where the quote opened.
            let resume = line_end(bytes, start, open_line - line)?;
            return Some((resume, open_line + 1));
        }
        if !out.count_row(line) {
            return None;
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
        if let Some(row) = row(bytes, &record, columns, line, start, out) {
            out.rows.push((line, row));
        }
    }
}

/// The byte after the newline that ends the `skip`-th line break from
/// `start` (0: the end of `start`'s own line); `None` at the end of the file.
fn line_end(bytes: &[u8], start: usize, skip: u32) -> Option<usize> {
    let mut seen = 0u32;
    for (i, b) in bytes.iter().enumerate().skip(start) {
        if *b == b'\n' {
            if seen == skip {
                return Some(i + 1).filter(|&n| n < bytes.len());
            }
            seen += 1;
        }
    }
    None
}

/// Where a quote opens a field that spans lines but is not closed the way
/// a CSV writer closes it (followed by `,`, a line end or the end of the
/// file): the line and column of that quote. A quoted field on one line, or
/// a properly quoted multi-line note (what `export` writes), is fine.
fn broken_quote(bytes: &[u8], start: usize, end: usize, line: u32) -> Option<(u32, u32)> {
    let rec = bytes.get(start..end)?;
    let (mut line, mut col) = (line, 1u32);
    let mut i = 0usize;
    let mut field_start = true;
    // Quote state: the position of the opening quote and whether the field
    // has run past a line end.
    let mut open: Option<((u32, u32), bool)> = None;
    while i < rec.len() {
        let b = rec[i];
        match (open, b) {
            (None, b'"') if field_start => open = Some(((line, col), false)),
            (None, b',') => {
                field_start = true;
                col += 1;
                i += 1;
                continue;
            }
            // The record's own end.
            (None, b'\n') => return None,
            (Some(_), b'"') if rec.get(i + 1) == Some(&b'"') => {
                col += 2;
                i += 2;
                continue;
            }
            (Some((at, spans)), b'"') => {
                open = None;
                if spans && !matches!(rec.get(i + 1), None | Some(b',' | b'\r' | b'\n')) {
                    return Some(at);
                }
            }
            (Some((at, _)), b'\n') => {
                open = Some((at, true));
                line += 1;
                col = 1;
                i += 1;
                field_start = false;
                continue;
            }
            _ => {}
        }
        field_start = false;
        if b & 0xC0 != 0x80 {
            col += 1;
        }
        i += 1;
    }
    match open {
        Some((at, true)) => Some(at),
        _ => None,
    }
}

fn clamp_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
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
            // A cell the writer quoted against formula injection reads back
            // as the value it stands for.
            Ok(s) => fields.set(*field, restore(s).to_string()),
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

/// CSV with the export header; fields quoted only when they must be, and a
/// cell a spreadsheet could run as a formula neutralised (see `csv_cell`).
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
    let s = &*neutralise(s);
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
