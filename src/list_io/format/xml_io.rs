//! XML: `<rules><rule><name/><pattern/><type/><action/>[<enabled/>][<notes/>]</rule></rules>`.
//!
//! quick-xml reports byte offsets; [`LineIndex`] turns them into lines and
//! columns. Only the five predefined entities and character references are
//! decoded: no DTD is ever expanded, so an upload cannot smuggle in external
//! entities.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};

use super::{Field, LineIndex, MAX_ROW_BYTES, ParsedList, RowFields, utf8_error};
use crate::list_io::RuleRow;

/// Why parsing stopped early.
enum Stop {
    Xml(quick_xml::Error),
    /// A structural error at a byte offset.
    At(usize, String),
    /// The error is already recorded (too many rows).
    Recorded,
}

impl From<quick_xml::Error> for Stop {
    fn from(e: quick_xml::Error) -> Stop {
        Stop::Xml(e)
    }
}

struct Ctx<'a> {
    reader: Reader<&'a [u8]>,
    lines: LineIndex<'a>,
}

impl Ctx<'_> {
    fn pos(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    fn at(&self, offset: usize) -> (u32, Option<u32>) {
        let (l, c) = self.lines.line_col(offset);
        (l, Some(c))
    }
}

pub(super) fn read(bytes: &[u8], out: &mut ParsedList) {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return utf8_error(bytes, e, out),
    };
    let mut reader = Reader::from_str(text);
    reader.config_mut().expand_empty_elements = true;
    let mut cx = Ctx {
        reader,
        lines: LineIndex::new(bytes),
    };
    match document(&mut cx, out) {
        Ok(()) | Err(Stop::Recorded) => {}
        Err(Stop::Xml(e)) => {
            let offset = usize::try_from(cx.reader.error_position()).unwrap_or(0);
            let (l, c) = cx.at(offset);
            out.fatal(l, c, format!("invalid XML: {e}"));
        }
        Err(Stop::At(offset, message)) => {
            let (l, c) = cx.at(offset);
            out.fatal(l, c, message);
        }
    }
}

/// quick-xml 0.41 hands out bytes; the input was checked to be UTF-8 before reading.
fn utf8(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn is_blank(s: &[u8]) -> bool {
    utf8(s).trim().is_empty()
}

/// An element's name, for matching and messages.
fn name(e: &BytesStart<'_>) -> String {
    utf8(e.name().as_ref()).into_owned()
}

fn document(cx: &mut Ctx<'_>, out: &mut ParsedList) -> Result<(), Stop> {
    loop {
        let pos = cx.pos();
        match cx.reader.read_event()? {
            Event::Start(e) if name(&e) == "rules" => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Text(t) if is_blank(&t) => {}
            Event::Eof => return Err(Stop::At(pos, "empty file: expected <rules>".into())),
            _ => return Err(Stop::At(pos, "expected <rules> as the root element".into())),
        }
    }
    loop {
        let pos = cx.pos();
        match cx.reader.read_event()? {
            Event::Start(e) if name(&e) == "rule" => rule(cx, pos, out)?,
            Event::Start(e) => {
                cx.reader.read_to_end(e.name())?;
                let (l, c) = cx.at(pos);
                out.error(l, c, format!("unexpected <{}> (expected <rule>)", name(&e)));
            }
            Event::End(_) => break,
            Event::Text(t) if is_blank(&t) => {}
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                return Err(Stop::At(
                    pos,
                    "unexpected end of file: <rules> is not closed".into(),
                ));
            }
            _ => {
                let (l, c) = cx.at(pos);
                out.error(l, c, "unexpected text in <rules> (expected <rule>)");
            }
        }
    }
    loop {
        let pos = cx.pos();
        match cx.reader.read_event()? {
            Event::Eof => return Ok(()),
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if is_blank(&t) => {}
            _ => return Err(Stop::At(pos, "unexpected content after </rules>".into())),
        }
    }
}

fn field_of(name: &str) -> Option<Field> {
    Some(match name {
        "name" | "rule_name" => Field::Name,
        "pattern" => Field::Pattern,
        "type" | "match_type" => Field::MatchType,
        "action" => Field::Action,
        "enabled" => Field::Enabled,
        "notes" => Field::Notes,
        _ => return None,
    })
}

/// One `<rule>`, its start tag already read at `start`.
fn rule(cx: &mut Ctx<'_>, start: usize, out: &mut ParsedList) -> Result<(), Stop> {
    let line = cx.lines.line(start);
    if !out.count_row(line) {
        return Err(Stop::Recorded);
    }
    let mut fields = RowFields::default();
    let mut at: [usize; 6] = [start; 6];
    let mut problems: Vec<(usize, String)> = Vec::new();
    // A field already reported (bad entity…) is not reported again as missing.
    let mut bad = [false; 6];
    loop {
        let pos = cx.pos();
        match cx.reader.read_event()? {
            Event::Start(e) => match field_of(&name(&e)) {
                None => {
                    cx.reader.read_to_end(e.name())?;
                    problems.push((pos, format!("unknown element <{}> in <rule>", name(&e))));
                }
                Some(field) => match text(cx, &e)? {
                    Err(message) => {
                        bad[field as usize] = true;
                        problems.push((pos, format!("<{}>: {message}", name(&e))));
                    }
                    Ok(_) if fields.has(field) => {
                        problems.push((pos, format!("<{}> appears twice", name(&e))))
                    }
                    Ok(s) => {
                        at[field as usize] = pos;
                        fields.set(field, s);
                    }
                },
            },
            Event::End(_) => break,
            Event::Text(t) if is_blank(&t) => {}
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => {
                return Err(Stop::At(
                    pos,
                    "unexpected end of file: <rule> is not closed".into(),
                ));
            }
            _ => problems.push((pos, "text outside a field in <rule>".into())),
        }
    }
    if cx.pos().saturating_sub(start) > MAX_ROW_BYTES {
        out.error(
            line,
            None,
            format!("rule longer than {MAX_ROW_BYTES} bytes"),
        );
        return Ok(());
    }
    let result = fields.finish();
    match result {
        Ok(row) if problems.is_empty() => out.rows.push((line, row)),
        other => {
            if let Err(more) = other {
                problems.extend(
                    more.into_iter()
                        .filter(|(f, _)| !bad[*f as usize])
                        .map(|(f, m)| (at[f as usize], m)),
                );
            }
            problems.sort_by_key(|(pos, _)| *pos);
            for (pos, message) in problems {
                let (l, c) = cx.at(pos);
                out.error(l, c, message);
            }
        }
    }
    Ok(())
}

/// The decoded text of a field element; `Ok(Err)` for a problem confined
/// to this field (nested markup, unknown entity).
fn text(cx: &mut Ctx<'_>, start: &BytesStart<'_>) -> Result<Result<String, String>, Stop> {
    let mut s = String::new();
    let mut problem = None;
    loop {
        let pos = cx.pos();
        match cx.reader.read_event()? {
            // Line ends normalised as XML 1.0 says (CR LF and a lone CR become LF).
            Event::Text(t) => match t.xml10_content() {
                Ok(c) => s.push_str(&c),
                Err(e) => problem = Some(format!("bad text: {e}")),
            },
            Event::CData(t) => match t.xml10_content() {
                Ok(c) => s.push_str(&c),
                Err(e) => problem = Some(format!("bad text: {e}")),
            },
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => s.push(c),
                Ok(None) => match resolve_predefined_entity(&utf8(&r)) {
                    Some(e) => s.push_str(e),
                    None => problem = Some(format!("unknown entity &{};", utf8(&r))),
                },
                Err(e) => problem = Some(format!("bad character reference &{};: {e}", utf8(&r))),
            },
            Event::Start(e) => {
                cx.reader.read_to_end(e.name())?;
                problem = Some(format!("unexpected element <{}>", name(&e)));
            }
            Event::End(_) => break,
            Event::Eof => {
                return Err(Stop::At(
                    pos,
                    format!("unexpected end of file: <{}> is not closed", name(start)),
                ));
            }
            _ => {}
        }
    }
    Ok(problem.map_or(Ok(s), Err))
}

/// The reference's layout, plus `<enabled>` and `<notes>` so nothing is lost.
pub(super) fn write(rows: &[RuleRow]) -> Vec<u8> {
    let mut out = String::with_capacity(64 + rows.len() * 200);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rules>\n");
    for r in rows {
        out.push_str("  <rule>\n");
        element(&mut out, "name", &r.rule_name);
        element(&mut out, "pattern", &r.pattern);
        element(&mut out, "type", &r.match_type);
        element(&mut out, "action", &r.action);
        element(
            &mut out,
            "enabled",
            if r.enabled { "true" } else { "false" },
        );
        element(&mut out, "notes", &r.notes);
        out.push_str("  </rule>\n");
    }
    out.push_str("</rules>\n");
    out.into_bytes()
}

fn element(out: &mut String, name: &str, value: &str) {
    out.push_str("    <");
    out.push_str(name);
    out.push('>');
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A literal CR would be normalised to LF by any XML reader.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}
