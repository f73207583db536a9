use super::*;

fn row(name: &str, pattern: &str, mt: &str, action: &str, enabled: bool, notes: &str) -> RuleRow {
    RuleRow {
        rule_name: name.into(),
        pattern: pattern.into(),
        match_type: mt.into(),
        action: action.into(),
        enabled,
        notes: notes.into(),
    }
}

fn rows_of(p: &ParsedList) -> Vec<RuleRow> {
    p.rows.iter().map(|(_, r)| r.clone()).collect()
}

fn errors_of(p: &ParsedList) -> Vec<String> {
    p.errors.iter().map(ToString::to_string).collect()
}

/// "Bulk Import Blocking Rules" of the reference, lines restored.
const BULK_CSV: &str = "rule_name,pattern,match_type,action,enabled
Block-UK-Numbers,+44*,starts_with,reject,true
Block-Premium-900,+1900*,starts_with,reject,true
Block-Spam-1,+15551234567,exact,reject,true
Block-International,^(?!\\+1)[+][0-9]+$,regex,play_message,true
";

/// "Import and Export" CSV example of the reference.
const EXPORT_CSV: &str = "rule_name,pattern,match_type,action,enabled,notes
Block-International,^(?!\\+1)[+][0-9]+$,regex,reject,true,Block all except US/Canada
Block-Premium,+1900*,starts_with,reject,true,Premium rate numbers
Allow-VIP-1,+15551234567,exact,allow,true,VIP Client Alpha Corp
";

const EXPORT_JSON: &str = r#"[
{
"rule_name": "Block-International",
"pattern": "^(?!\\+1)[+][0-9]+$",
"match_type": "regex",
"action": "reject",
"enabled": true,
"notes": "Block all except US/Canada"
}
]"#;

const EXPORT_XML: &str = r"<rules>
<rule>
<name>Block-International</name>
<pattern>^(?!\+1)[+][0-9]+$</pattern>
<type>regex</type>
<action>reject</action>
</rule>
</rules>";

const INTL: &str = r"^(?!\+1)[+][0-9]+$";

#[test]
fn format_detection() {
    assert_eq!(Format::from_name("CSV"), Some(Format::Csv));
    assert_eq!(Format::from_name("yaml"), None);
    assert_eq!(Format::from_path("exports/rules.Json"), Some(Format::Json));
    assert_eq!(Format::from_path("rules"), None);
    assert_eq!(
        Format::from_content_type("text/csv; charset=utf-8"),
        Some(Format::Csv)
    );
    assert_eq!(
        Format::from_content_type("application/json"),
        Some(Format::Json)
    );
    assert_eq!(
        Format::from_content_type("application/xml"),
        Some(Format::Xml)
    );
    assert_eq!(Format::from_content_type("text/xml"), Some(Format::Xml));
    assert_eq!(Format::from_content_type("text/plain"), None);
}

#[test]
fn reference_bulk_csv() {
    let p = read_rows(BULK_CSV.as_bytes(), Format::Csv, "bulk.csv");
    assert!(p.errors.is_empty(), "{:?}", errors_of(&p));
    assert_eq!(p.rows_read, 4);
    assert_eq!(
        p.rows[0],
        (
            2,
            row(
                "Block-UK-Numbers",
                "+44*",
                "starts_with",
                "reject",
                true,
                ""
            )
        )
    );
    assert_eq!(
        p.rows[3],
        (
            5,
            row(
                "Block-International",
                INTL,
                "regex",
                "play_message",
                true,
                ""
            )
        )
    );
}

#[test]
fn reference_export_examples() {
    let csv = read_rows(EXPORT_CSV.as_bytes(), Format::Csv, "e.csv");
    assert!(csv.errors.is_empty(), "{:?}", errors_of(&csv));
    assert_eq!(csv.rows.len(), 3);
    assert_eq!(
        csv.rows[2].1,
        row(
            "Allow-VIP-1",
            "+15551234567",
            "exact",
            "allow",
            true,
            "VIP Client Alpha Corp"
        )
    );
    let intl = row(
        "Block-International",
        INTL,
        "regex",
        "reject",
        true,
        "Block all except US/Canada",
    );
    assert_eq!(csv.rows[0].1, intl);

    let json = read_rows(EXPORT_JSON.as_bytes(), Format::Json, "e.json");
    assert!(json.errors.is_empty(), "{:?}", errors_of(&json));
    assert_eq!(json.rows, vec![(2, intl.clone())]);

    let xml = read_rows(EXPORT_XML.as_bytes(), Format::Xml, "e.xml");
    assert!(xml.errors.is_empty(), "{:?}", errors_of(&xml));
    assert_eq!(
        xml.rows,
        vec![(
            2,
            row("Block-International", INTL, "regex", "reject", true, "")
        )]
    );
}

fn tricky_rows() -> Vec<RuleRow> {
    vec![
        row(
            "Notes-Punctuation",
            "+1555*",
            "starts_with",
            "reject",
            true,
            "a, \"quoted\" note\nsecond line\r\nthird",
        ),
        row(
            "Regex-Escapes",
            r"^\+1(900|976)\d{7}$",
            "regex",
            "play_message",
            false,
            "x < y && y > z; 'single'",
        ),
        row("Lt-Amp", "<&>", "contains", "", true, ""),
        row(
            "Comma-Regex",
            r"^\+[0-9]{1,3}$",
            "regex",
            "reject",
            true,
            "  padded notes  ",
        ),
        row("Inferred", "+44*", "", "", false, "ünïcödé ☎"),
    ]
}

#[test]
fn export_import_round_trip_is_lossless() {
    let rows = tricky_rows();
    for format in [Format::Csv, Format::Json, Format::Xml] {
        let bytes = write_rows(&rows, format);
        let p = read_rows(&bytes, format, "rt");
        assert!(p.errors.is_empty(), "{format}: {:?}", errors_of(&p));
        assert_eq!(rows_of(&p), rows, "{format}");
        assert_eq!(
            read_rows(&write_rows(&[], format), format, "e").errors,
            vec![],
            "{format} empty"
        );
    }
}

#[test]
fn writers_match_reference_layout() {
    let r = [row(
        "Block-Premium",
        "+1900*",
        "starts_with",
        "reject",
        true,
        "Premium rate numbers",
    )];
    let csv = String::from_utf8(write_rows(&r, Format::Csv)).unwrap();
    assert_eq!(
        csv,
        "rule_name,pattern,match_type,action,enabled,notes\nBlock-Premium,+1900*,starts_with,reject,true,Premium rate numbers\n"
    );
    let json = String::from_utf8(write_rows(&r, Format::Json)).unwrap();
    let keys: Vec<usize> = [
        "rule_name",
        "pattern",
        "match_type",
        "action",
        "enabled",
        "notes",
    ]
    .iter()
    .map(|k| json.find(k).unwrap())
    .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "{json}");
    let xml = String::from_utf8(write_rows(&r, Format::Xml)).unwrap();
    assert!(xml.contains("<rules>\n  <rule>\n    <name>Block-Premium</name>\n    <pattern>+1900*</pattern>\n    <type>starts_with</type>\n    <action>reject</action>\n    <enabled>true</enabled>\n"), "{xml}");
    let quoted = String::from_utf8(write_rows(
        &[row("A,B", "x\"y", "", "", false, "")],
        Format::Csv,
    ))
    .unwrap();
    assert!(
        quoted.ends_with("\"A,B\",\"x\"\"y\",,,false,\n"),
        "{quoted}"
    );
}

#[test]
fn csv_columns_any_order_and_value_spellings() {
    let text = "Enabled, notes ,pattern,action,match_type,rule_name\n\
                no,n1,+1,reject,Exact,A\n\
                YES,,+2,,prefix,B\n\
                ,,+3,,,C\n\
                0,,+4,,,D\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "x.csv");
    assert!(p.errors.is_empty(), "{:?}", errors_of(&p));
    assert_eq!(
        rows_of(&p),
        vec![
            row("A", "+1", "exact", "reject", false, "n1"),
            row("B", "+2", "starts_with", "", true, ""),
            row("C", "+3", "", "", true, ""),
            row("D", "+4", "", "", false, ""),
        ]
    );
}

#[test]
fn csv_bad_rows_are_located_and_others_kept() {
    let text = "rule_name,pattern,match_type,action,enabled\n\
                Good-1,+1,exact,reject,true\n\
                ,+2,exact,reject,true\n\
                Bad-Type,+3,fuzzy,reject,true\n\
                \"Multi\nLine\",+4,exact,reject,maybe\n\
                Short,+5\n\
                Good-2,+6,,,\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "up.csv");
    assert_eq!(p.rows_read, 6);
    assert_eq!(
        p.rows
            .iter()
            .map(|(l, r)| (*l, r.rule_name.as_str()))
            .collect::<Vec<_>>(),
        [(2, "Good-1"), (8, "Good-2")]
    );
    let errs = errors_of(&p);
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert_eq!(errs[0], "up.csv:3:1: missing rule_name");
    assert!(
        errs[1].starts_with("up.csv:4:13: unknown match_type \"fuzzy\""),
        "{}",
        errs[1]
    );
    // The bad `enabled` sits on the record's second physical line.
    assert!(
        errs[2].starts_with("up.csv:6:23: bad enabled \"maybe\""),
        "{}",
        errs[2]
    );
    assert_eq!(errs[3], "up.csv:7: expected 5 fields, found 2");
}

#[test]
fn csv_header_problems_are_fatal() {
    let cases = [
        ("", "h.csv:1: empty file"),
        (
            "rule_name,pattern,match_type,action,enabled,colour\nA,+1,,,,red\n",
            "h.csv:1:45: unknown column \"colour\"",
        ),
        (
            "rule_name,pattern,action\nA,+1,reject\n",
            "h.csv:1: header lacks required column(s): match_type, enabled",
        ),
        (
            "rule_name,pattern,match_type,action,enabled,pattern\n",
            "h.csv:1:45: column \"pattern\" appears twice",
        ),
    ];
    for (text, want) in cases {
        let p = read_rows(text.as_bytes(), Format::Csv, "h.csv");
        assert!(p.rows.is_empty());
        assert!(
            errors_of(&p)[0].starts_with(want),
            "{:?} vs {want}",
            p.errors
        );
    }
}

#[test]
fn csv_bom_and_crlf() {
    let text = "\u{feff}rule_name,pattern,match_type,action,enabled\r\nA,+1,exact,reject,true\r\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "b.csv");
    assert!(p.errors.is_empty(), "{:?}", errors_of(&p));
    assert_eq!(
        rows_of(&p),
        vec![row("A", "+1", "exact", "reject", true, "")]
    );
}

#[test]
fn csv_overlong_row_is_refused_without_panic() {
    let long = "x".repeat(MAX_ROW_BYTES + 1);
    let text = format!("rule_name,pattern,match_type,action,enabled\nA,{long},,,\nB,+1,,,\n");
    let p = read_rows(text.as_bytes(), Format::Csv, "l.csv");
    assert_eq!(rows_of(&p), vec![row("B", "+1", "", "", true, "")]);
    assert_eq!(
        errors_of(&p),
        vec![format!("l.csv:2: row longer than {MAX_ROW_BYTES} bytes")]
    );
}

#[test]
fn csv_non_utf8_field_is_a_row_error() {
    let mut bytes = b"rule_name,pattern,match_type,action,enabled\nA,+1,,,\nB,".to_vec();
    bytes.extend_from_slice(b"\xff\xfe,,,\n");
    let p = read_rows(&bytes, Format::Csv, "u.csv");
    assert_eq!(p.rows.len(), 1);
    assert_eq!(errors_of(&p), vec!["u.csv:3:3: pattern: not UTF-8 text"]);
}

#[test]
fn json_errors_have_line_and_column() {
    let p = read_rows(
        b"[\n  {\"rule_name\": \"A\",\n   \"pattern\": }\n]",
        Format::Json,
        "s.json",
    );
    assert!(p.rows.is_empty());
    assert_eq!(
        errors_of(&p),
        vec!["s.json:3:15: invalid JSON: expected value"]
    );

    let p = read_rows(b"{\"rules\": []}", Format::Json, "o.json");
    assert_eq!(
        errors_of(&p),
        vec!["o.json:1:1: expected a JSON array of rules (`[ {...}, ... ]`)"]
    );
}

#[test]
fn json_element_errors_use_the_element_line() {
    let text = r#"[
  {"rule_name": "A", "pattern": "+1", "enabled": "no"},
  {"rule_name": "B", "pattern": "+2", "match_type": "fuzzy"},
  "not an object",
  {"rule_name": "C", "pattern": 15551234567, "enabled": 0, "colour": "red"},
  {"rule_name": "D", "pattern": 15551234567, "enabled": null, "notes": null}
]"#;
    let p = read_rows(text.as_bytes(), Format::Json, "e.json");
    assert_eq!(p.rows_read, 5);
    assert_eq!(
        p.rows,
        vec![
            (2, row("A", "+1", "", "", false, "")),
            (6, row("D", "15551234567", "", "", true, ""))
        ]
    );
    let errs = errors_of(&p);
    assert!(
        errs[0].starts_with("e.json:3: unknown match_type \"fuzzy\""),
        "{errs:?}"
    );
    assert_eq!(errs[1], "e.json:4: expected an object, found a string");
    assert!(
        errs[2].starts_with("e.json:5: unknown key \"colour\""),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 3);
}

#[test]
fn xml_entities_cdata_and_optional_fields() {
    let text = "<?xml version=\"1.0\"?>\n<!-- export -->\n<rules>\n  <rule><name>A&amp;B</name><pattern><![CDATA[<+1&>]]></pattern>\
                <type/><action>reject</action><enabled>No</enabled><notes>x&#13;&#x41;&lt;</notes></rule>\n  <rule/>\n</rules>\n";
    let p = read_rows(text.as_bytes(), Format::Xml, "x.xml");
    assert_eq!(
        rows_of(&p),
        vec![row("A&B", "<+1&>", "", "reject", false, "x\rA<")]
    );
    assert_eq!(p.rows_read, 2);
    let errs = errors_of(&p);
    assert_eq!(
        errs,
        vec!["x.xml:5:3: missing rule_name", "x.xml:5:3: missing pattern"]
    );
}

#[test]
fn xml_rule_errors_are_located() {
    let text = "<rules>\n<rule>\n  <name>A</name>\n  <pattern>+1</pattern>\n  <colour>red</colour>\n</rule>\n\
                <rule><name>B</name><pattern>+2</pattern>\n<type>fuzzy</type></rule>\n\
                <rule><name>C</name><pattern>&bogus;</pattern></rule>\n<rule><name>D</name><pattern>+4</pattern></rule>\n</rules>";
    let p = read_rows(text.as_bytes(), Format::Xml, "r.xml");
    assert_eq!(p.rows, vec![(10, row("D", "+4", "", "", true, ""))]);
    let errs = errors_of(&p);
    assert_eq!(errs[0], "r.xml:5:3: unknown element <colour> in <rule>");
    assert!(
        errs[1].starts_with("r.xml:8:1: unknown match_type \"fuzzy\""),
        "{errs:?}"
    );
    assert_eq!(errs[2], "r.xml:9:21: <pattern>: unknown entity &bogus;");
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn xml_syntax_errors_are_fatal() {
    for (text, want) in [
        ("<rules>\n<rule><name>A</name></rul>\n</rules>", "m.xml:2:"),
        ("<rules>\n<rule><name>A</name>", "m.xml:2:"),
        ("<list></list>", "m.xml:1:1: expected <rules>"),
        ("", "m.xml:1:1: empty file"),
    ] {
        let p = read_rows(text.as_bytes(), Format::Xml, "m.xml");
        assert!(p.rows.is_empty(), "{text}");
        assert!(
            errors_of(&p).first().is_some_and(|e| e.starts_with(want)),
            "{text}: {:?}",
            errors_of(&p)
        );
    }
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 8] = [
        b"\xff\xfe\x00",
        b"[",
        b"[{]",
        b"<",
        b"<rules><rule>",
        b"\"",
        b"a,\"b",
        b"]]]]",
    ];
    for input in inputs {
        for format in [Format::Csv, Format::Json, Format::Xml] {
            let p = read_rows(input, format, "g");
            assert!(
                p.rows.is_empty() || !p.errors.is_empty() || format == Format::Csv,
                "{format} {input:?}"
            );
        }
    }
}

/// Issue 10.1: an unterminated quote used to swallow the rows after it into
/// the notes of its own row ("6 rows read" for 7). It is that row's error,
/// and every following line is still read as a row.
#[test]
fn csv_unterminated_quote_is_a_bad_row_and_the_rest_is_read() {
    let text = "rule_name,pattern,match_type,action,enabled,notes\n\
                R1,+1,exact,reject,true,one\n\
                R2,+2,exact,reject,true,two\n\
                R3,+3,exact,reject,true,\"call back later\n\
                R4,+4,exact,reject,true,\"quoted\"\n\
                R5,+5,exact,reject,true,five\n\
                R6,+6,exact,reject,true,\"six, with a comma\"\n\
                R7,+7,exact,reject,true,\"multi\nline note\"\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "q.csv");
    assert_eq!(p.rows_read, 7, "{:?}", errors_of(&p));
    let names: Vec<(u32, &str)> = p
        .rows
        .iter()
        .map(|(l, r)| (*l, r.rule_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (2, "R1"),
            (3, "R2"),
            (5, "R4"),
            (6, "R5"),
            (7, "R6"),
            (8, "R7")
        ]
    );
    let errs = errors_of(&p);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("q.csv:4:25: unterminated quote"),
        "{errs:?}"
    );
    assert_eq!(p.rows[2].1.notes, "quoted");
    assert_eq!(p.rows[5].1.notes, "multi\nline note");

    // A quote left open to the end of the file swallows nothing either.
    let text = "rule_name,pattern,match_type,action,enabled,notes\n\
                A,+1,exact,reject,true,\"open\n\
                B,+2,exact,reject,true,\n\
                C,+3,exact,reject,true,\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "e.csv");
    assert_eq!(p.rows_read, 3, "{:?}", errors_of(&p));
    assert_eq!(
        p.rows
            .iter()
            .map(|(l, r)| (*l, r.rule_name.as_str()))
            .collect::<Vec<_>>(),
        [(3, "B"), (4, "C")]
    );
    assert_eq!(errors_of(&p).len(), 1);
    assert!(errors_of(&p)[0].starts_with("e.csv:2:24: unterminated quote"));

    // A field count that does not match the header is that row's error.
    let text =
        "rule_name,pattern,match_type,action,enabled\nA,+1,exact,reject,true,extra\nB,+2,,,\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "f.csv");
    assert_eq!(errors_of(&p), vec!["f.csv:2: expected 5 fields, found 6"]);
    assert_eq!(p.rows.len(), 1);
}

#[test]
fn csv_bom_inside_the_file_is_data() {
    // Only the file's first three bytes can be a BOM; a row that starts with
    // U+FEFF keeps it (found by tests/proptest_lists.rs).
    let text = "rule_name,pattern,match_type,action,enabled\n\u{feff}X,+1,exact,reject,true\nB,+2,exact,reject,true\n";
    let p = read_rows(text.as_bytes(), Format::Csv, "b.csv");
    assert!(p.errors.is_empty(), "{:?}", errors_of(&p));
    assert_eq!(
        rows_of(&p),
        vec![
            row("\u{feff}X", "+1", "exact", "reject", true, ""),
            row("B", "+2", "exact", "reject", true, "")
        ]
    );
    assert_eq!(p.rows[0].0, 2, "line of the row");
}
