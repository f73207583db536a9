//! Property tests of the list importers (CSV, JSON, XML), the `cargo test`
//! counterpart of the `list_*` fuzz targets:
//! - any rows an import can produce survive export → import in every format;
//! - any bytes, and the shipped lists with random edits, give rows and
//!   located errors, never a panic, and what was kept round-trips too.

#[path = "support/oracles.rs"]
mod oracles;

use callguard::list_edit::{Format, RuleRow, read_rows, write_rows};
use proptest::prelude::*;

/// Text as people and spreadsheets put into cells: mostly printable, with
/// quotes, separators, markup, non-ASCII and line breaks.
fn cell() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::char::range(' ', '~'),
            2 => prop::sample::select(vec![',', '"', '<', '>', '&', '\'', ';', '\n', '\t', ']', '{']),
            1 => prop::char::range('\u{a0}', '\u{2fff}'),
            1 => prop::sample::select(vec!['é', 'ß', '€', '😀', '\u{feff}']),
            1 => any::<char>(),
        ],
        0..24,
    )
    .prop_map(|v| v.into_iter().collect())
}

/// A non-empty field that an import keeps as it is (names, patterns and
/// actions are trimmed by every reader).
fn trimmed_cell() -> impl Strategy<Value = String> {
    cell().prop_map(|s| s.trim().to_string())
}

fn row() -> impl Strategy<Value = RuleRow> {
    (
        trimmed_cell().prop_filter("a name is required", |s| !s.is_empty()),
        trimmed_cell().prop_filter("a pattern is required", |s| !s.is_empty()),
        prop::sample::select(vec![
            "",
            "exact",
            "starts_with",
            "contains",
            "ends_with",
            "wildcard",
            "regex",
        ]),
        trimmed_cell(),
        any::<bool>(),
        cell(),
    )
        .prop_map(
            |(rule_name, pattern, match_type, action, enabled, notes)| RuleRow {
                rule_name,
                pattern,
                match_type: match_type.to_string(),
                action,
                enabled,
                notes,
            },
        )
}

const SHIPPED: [&[u8]; 5] = [
    include_bytes!("../config/lists/anonymous.csv"),
    include_bytes!("../config/lists/high-fraud-countries.csv"),
    include_bytes!("../config/lists/premium-rate.csv"),
    include_bytes!("../config/lists/spam.csv"),
    include_bytes!("../config/lists/vip.csv"),
];

fn format() -> impl Strategy<Value = Format> {
    prop::sample::select(vec![Format::Csv, Format::Json, Format::Xml])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn export_then_import_is_lossless(rows in prop::collection::vec(row(), 0..12)) {
        oracles::list_roundtrip(&rows);
    }

    #[test]
    fn any_bytes_give_rows_or_located_errors(bytes in prop::collection::vec(any::<u8>(), 0..512), format in format()) {
        oracles::check_list(&bytes, format);
    }

    /// Exports of generated rows, then edited: near-valid files of every
    /// format, the ones most likely to reach deep into a reader.
    #[test]
    fn edited_exports(
        rows in prop::collection::vec(row(), 1..6),
        written in format(),
        read_as in format(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = write_rows(&rows, written);
        for (at, kind, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = at % bytes.len();
            match kind % 3 {
                0 => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        oracles::check_list(&bytes, read_as);
    }

    #[test]
    fn edited_shipped_lists(
        which in 0..SHIPPED.len(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = SHIPPED[which].to_vec();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        oracles::check_list(&bytes, Format::Csv);
    }
}

/// The shipped lists import without an error and survive the round trip.
#[test]
fn shipped_lists_roundtrip() {
    for bytes in SHIPPED {
        let parsed = read_rows(bytes, Format::Csv, "shipped");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(!parsed.rows.is_empty());
        oracles::check_list(bytes, Format::Csv);
    }
}
