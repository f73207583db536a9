//! TEMPORARY stub (replaced by the lists branch): CSV only.
use super::RuleRow;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Xml,
}

impl Format {
    pub fn from_path(p: &Path) -> Option<Format> {
        match p.extension()?.to_str()? {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "xml" => Some(Format::Xml),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RowError {
    pub source: String,
    pub line: u32,
    pub column: Option<u32>,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct ParsedList {
    pub rows: Vec<(u32, RuleRow)>,
    pub errors: Vec<RowError>,
}

pub fn read_rows(bytes: &[u8], _format: Format, source: &str) -> ParsedList {
    let mut out = ParsedList::default();
    let mut rdr = csv::Reader::from_reader(bytes);
    for (i, r) in rdr.deserialize::<RuleRow>().enumerate() {
        match r {
            Ok(row) => out.rows.push((i as u32 + 2, row)),
            Err(e) => out.errors.push(RowError {
                source: source.into(),
                line: i as u32 + 2,
                column: None,
                message: e.to_string(),
            }),
        }
    }
    out
}
