//! The three list file formats of the reference (CSV, JSON, XML): detection,
//! reading into [`RuleRow`]s with per-row errors, and writing.
//!
//! Every reader applies the same row rules ([`RowFields::finish`]) so that a
//! file means the same thing whatever its format, and every writer emits all
//! six fields so that export → import is lossless.

use std::fmt;
use std::path::Path;

use super::MatchType;
use super::RuleRow;

mod csv_cell;
mod csv_io;
mod json_io;
mod xml_io;

/// Rows accepted in one file. Far above any real list, low enough that a
/// hostile upload cannot make us build an unbounded vector.
pub(crate) const MAX_ROWS: usize = 5_000_000;

/// Bytes accepted in one row (a CSV record, a JSON element, an XML `<rule>`).
/// A legitimate rule is a few hundred bytes; anything this large is garbage.
pub(crate) const MAX_ROW_BYTES: usize = 64 * 1024;

/// A list file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    Json,
    Xml,
}

impl Format {
    /// `csv`, `json` or `xml`, any case (CLI `--format`, API `?format=`).
    pub(crate) fn from_name(name: &str) -> Option<Format> {
        match name.trim().to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }

    /// From the file extension (`rules.CSV` → CSV).
    pub(crate) fn from_path(path: impl AsRef<Path>) -> Option<Format> {
        Format::from_name(path.as_ref().extension()?.to_str()?)
    }

    /// From an HTTP `Content-Type`, ignoring parameters such as `charset`.
    pub(crate) fn from_content_type(content_type: &str) -> Option<Format> {
        let mime = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match mime.as_str() {
            "text/csv" | "application/csv" => Some(Format::Csv),
            "application/json" | "text/json" => Some(Format::Json),
            "application/xml" | "text/xml" => Some(Format::Xml),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }

    /// The `Content-Type` to answer an export with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A problem in a list file, located so the operator can fix it in an editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The file name (or upload name) as the operator knows it.
    pub source: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column in characters, when the format lets us know it.
    pub column: Option<u32>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(col) = self.column {
            write!(f, ":{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

// Written by hand: thiserror would take the `source` field for an error cause.
impl std::error::Error for RowError {}

/// The outcome of reading one file: the good rows with their line, and every
/// problem found.
///
/// A file-level problem (bad header, syntax error, too many rows) leaves
/// `rows` empty on purpose: a half-read file must never replace a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedList {
    /// The name used in the errors, kept so later stages (import planning)
    /// can report against the same file.
    pub source: String,
    /// Data rows met in the file, valid or not (for the preview's totals).
    pub rows_read: usize,
    pub rows: Vec<(u32, RuleRow)>,
    pub errors: Vec<RowError>,
}

impl ParsedList {
    fn new(source: &str) -> ParsedList {
        ParsedList {
            source: source.to_string(),
            ..ParsedList::default()
        }
    }

    fn error(&mut self, line: u32, column: Option<u32>, message: impl Into<String>) {
        self.errors.push(RowError {
            source: self.source.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Records a file-level error and drops the rows read so far.
    fn fatal(&mut self, line: u32, column: Option<u32>, message: impl Into<String>) {
        self.rows = Vec::new();
        self.error(line, column, message);
    }

    /// Counts one more data row; false (after a fatal error) past [`MAX_ROWS`].
    fn count_row(&mut self, line: u32) -> bool {
        self.rows_read += 1;
        if self.rows_read > MAX_ROWS {
            self.fatal(
                line,
                None,
                format!("more than {MAX_ROWS} rows: file refused"),
            );
            return false;
        }
        true
    }
}

/// Reads a list file. Never panics and never fails as a whole: problems are
/// in [`ParsedList::errors`].
pub fn read_rows(bytes: &[u8], format: Format, source: &str) -> ParsedList {
    // Spreadsheet exports (Excel "CSV UTF-8") start with a byte order mark.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = ParsedList::new(source);
    match format {
        Format::Csv => csv_io::read(bytes, &mut out),
        Format::Json => json_io::read(bytes, &mut out),
        Format::Xml => xml_io::read(bytes, &mut out),
    }
    out
}

/// Writes rows in `format`, every field included.
pub fn write_rows(rows: &[RuleRow], format: Format) -> Vec<u8> {
    match format {
        Format::Csv => csv_io::write(rows),
        Format::Json => json_io::write(rows),
        Format::Xml => xml_io::write(rows),
    }
}

/// The columns / keys / elements of a row, as the readers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Name,
    Pattern,
    MatchType,
    Action,
    Enabled,
    Notes,
}

impl Field {
    pub(crate) const ALL: [Field; 6] = [
        Field::Name,
        Field::Pattern,
        Field::MatchType,
        Field::Action,
        Field::Enabled,
        Field::Notes,
    ];

    /// The CSV column / JSON key.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Field::Name => "rule_name",
            Field::Pattern => "pattern",
            Field::MatchType => "match_type",
            Field::Action => "action",
            Field::Enabled => "enabled",
            Field::Notes => "notes",
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == key)
    }
}

/// The raw text of one row's fields, before the shared rules are applied.
#[derive(Debug, Default)]
pub(crate) struct RowFields {
    pub(crate) fields: [Option<String>; 6],
}

impl RowFields {
    pub(crate) fn set(&mut self, field: Field, value: String) {
        self.fields[field as usize] = Some(value);
    }

    pub(crate) fn has(&self, field: Field) -> bool {
        self.fields[field as usize].is_some()
    }

    /// Applies the rules every format shares. `Err` lists each problem with
    /// the field it is about, so the reader can locate it.
    ///
    /// Names and patterns are trimmed (spreadsheets pad cells); notes are kept
    /// verbatim because they are free text.
    pub(crate) fn finish(mut self) -> Result<RuleRow, Vec<(Field, String)>> {
        let mut take = |f: Field| self.fields[f as usize].take().unwrap_or_default();
        let (name, pattern, match_type, action, enabled, notes) = (
            take(Field::Name),
            take(Field::Pattern),
            take(Field::MatchType),
            take(Field::Action),
            take(Field::Enabled),
            take(Field::Notes),
        );
        let mut problems = Vec::new();
        let name = trimmed(name);
        if name.is_empty() {
            problems.push((Field::Name, "missing rule_name".to_string()));
        }
        let pattern = trimmed(pattern);
        if pattern.is_empty() {
            problems.push((Field::Pattern, "missing pattern".to_string()));
        }
        let match_type = match canonical_match_type(&match_type) {
            Some(mt) => mt.to_string(),
            None => {
                problems.push((
                    Field::MatchType,
                    format!(
                        "unknown match_type {:?} (expected exact, starts_with, contains, ends_with, wildcard, regex or empty)",
                        match_type.trim()
                    ),
                ));
                String::new()
            }
        };
        let enabled = parse_enabled(&enabled).unwrap_or_else(|| {
            problems.push((
                Field::Enabled,
                format!(
                    "bad enabled {:?} (expected true/false, yes/no, 1/0 or empty)",
                    enabled.trim()
                ),
            ));
            true
        });
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(RuleRow {
            rule_name: name,
            pattern,
            match_type,
            action: trimmed(action),
            enabled,
            notes,
        })
    }
}

fn trimmed(s: String) -> String {
    if s.len() == s.trim().len() {
        s
    } else {
        s.trim().to_string()
    }
}

/// `true/false/yes/no/1/0` in any case; empty means enabled (the default of
/// a rule nobody switched off).
pub(crate) fn parse_enabled(s: &str) -> Option<bool> {
    let s = s.trim();
    if s.is_empty() {
        return Some(true);
    }
    for (word, value) in [
        ("true", true),
        ("yes", true),
        ("1", true),
        ("false", false),
        ("no", false),
        ("0", false),
    ] {
        if s.eq_ignore_ascii_case(word) {
            return Some(value);
        }
    }
    None
}

/// The canonical spelling of a match type (`Prefix` → `starts_with`), `""`
/// for "infer from the pattern", `None` if unknown.
pub(crate) fn canonical_match_type(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Some("");
    }
    // Lower-casing allocates: only for the rare `Exact`-style spelling.
    MatchType::parse(s)
        .or_else(|| MatchType::parse(&s.to_ascii_lowercase()))
        .map(MatchType::as_str)
}

/// Byte offset → 1-based line and character column, for formats whose
/// parsers report offsets.
pub(crate) struct LineIndex<'a> {
    text: &'a [u8],
    /// Offset of the first byte of each line.
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub(crate) fn new(text: &'a [u8]) -> LineIndex<'a> {
        let mut starts = vec![0];
        starts.extend(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { text, starts }
    }

    pub(crate) fn line(&self, offset: usize) -> u32 {
        let idx = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(idx.max(1)).unwrap_or(u32::MAX)
    }

    pub(crate) fn line_col(&self, offset: usize) -> (u32, u32) {
        let line = self.line(offset);
        let start = self.starts[line as usize - 1];
        let end = offset.min(self.text.len());
        let chars = self.text[start.min(end)..end]
            .iter()
            .filter(|b| (**b & 0xC0) != 0x80)
            .count();
        (line, u32::try_from(chars + 1).unwrap_or(u32::MAX))
    }
}

/// Location of the first invalid UTF-8 byte, for "not UTF-8" errors.
pub(crate) fn utf8_error(bytes: &[u8], err: std::str::Utf8Error, out: &mut ParsedList) {
    let (line, col) = LineIndex::new(bytes).line_col(err.valid_up_to());
    out.fatal(
        line,
        Some(col),
        "the file is not UTF-8 text (save it as UTF-8)",
    );
}

#[cfg(test)]
mod tests;
