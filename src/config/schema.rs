//! The config's schema, derived from its serde types: one schema, not two.
//!
//! `unknown` reports every unknown key of a file in one run, even beside a
//! value of the wrong type, so it walks the YAML as a tree and needs to know
//! which keys each mapping may hold. Rather than a hand-written copy of
//! `types.rs` (which drifted unless a test caught it), the shape is read from
//! the types themselves: a probing deserializer drives `RawConfig::deserialize`
//! down one path at a time and records what the type at the end of the path
//! asks for, a struct with serde's own field list (renames included), a map,
//! a list or a plain value. No crate is added: `serde_ignored` would find
//! unknown keys only up to the first type error and without the known fields,
//! which the reports name.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

/// What a mapping at some place in the file may contain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Shape {
    /// A struct: these keys, each with its own shape.
    Struct(Vec<(&'static str, Shape)>),
    /// A map of user-chosen names to values of one shape (`actions`, `trunks`).
    Named(Box<Shape>),
    /// A list of values of one shape.
    List(Box<Shape>),
    /// Anything else: scalars, enums, untagged values.
    Any,
}

impl Shape {
    /// The field names of a struct shape (empty for any other).
    pub(crate) fn fields(&self) -> Vec<&'static str> {
        match self {
            Shape::Struct(f) => f.iter().map(|(n, _)| *n).collect(),
            _ => Vec::new(),
        }
    }
}

/// The shape of the whole file, `types::RawConfig`, derived once.
pub(crate) fn root() -> &'static Shape {
    static ROOT: OnceLock<Shape> = OnceLock::new();
    ROOT.get_or_init(shape_of::<super::types::RawConfig>)
}

/// The shape of any deserializable type.
pub(crate) fn shape_of<T: DeserializeOwned>() -> Shape {
    explore::<T>(&mut Vec::new())
}

/// A type that contains itself would recurse forever; none does today, and a
/// config nested deeper than this is not one a person writes.
const MAX_DEPTH: usize = 32;

fn explore<T: DeserializeOwned>(path: &mut Vec<Step>) -> Shape {
    if path.len() > MAX_DEPTH {
        return Shape::Any;
    }
    let asked = Cell::new(None);
    // The probe always ends in an error: what matters is what was asked.
    let _ = T::deserialize(Probe {
        path,
        asked: &asked,
        spanned: false,
    });
    let mut child = |step: Step| {
        path.push(step);
        let s = explore::<T>(path);
        path.pop();
        s
    };
    match asked.get() {
        Some(Asked::Struct(fields)) => {
            Shape::Struct(fields.iter().map(|f| (*f, child(Step::Field(f)))).collect())
        }
        Some(Asked::Map) => Shape::Named(Box::new(child(Step::Entry))),
        Some(Asked::Seq) => Shape::List(Box::new(child(Step::Element))),
        Some(Asked::Other) | None => Shape::Any,
    }
}

/// One step down from a value to a part of it.
#[derive(Debug, Clone, Copy)]
enum Step {
    Field(&'static str),
    Entry,
    Element,
}

/// What the type at the end of the path asked the deserializer for.
#[derive(Debug, Clone, Copy)]
enum Asked {
    Struct(&'static [&'static str]),
    Map,
    Seq,
    Other,
}

/// The probe's only error: it stops every run once it has its answer.
#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("schema probe")
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

/// `serde_saphyr::Spanned<T>` asks for a newtype struct of this name and then
/// for a map that starts with the private marker key; the probe plays that
/// map so it reaches `T` (a test fails if the library changes it).
const SPANNED_NAME: &str = "__yaml_spanned";
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

struct Probe<'a> {
    /// What is still to walk down before recording.
    path: &'a [Step],
    asked: &'a Cell<Option<Asked>>,
    /// Inside `Spanned`'s newtype: its `deserialize_any` wants the marked map.
    spanned: bool,
}

impl Probe<'_> {
    /// Records `what` when the path is walked to its end; stops the run.
    fn stop(&self, what: Asked) -> Stop {
        if self.path.is_empty() {
            self.asked.set(Some(what));
        }
        Stop
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        if self.spanned {
            return v.visit_map(SpannedMap {
                state: 0,
                inner: Some(Probe {
                    spanned: false,
                    ..self
                }),
            });
        }
        Err(self.stop(Asked::Other))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Stop> {
        match self.path.split_first() {
            Some((Step::Field(f), rest)) => v.visit_map(OneEntry {
                key: Some(f),
                value: Some(Probe { path: rest, ..self }),
            }),
            _ => Err(self.stop(Asked::Struct(fields))),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        match self.path.split_first() {
            Some((Step::Entry, rest)) => v.visit_map(OneEntry {
                key: Some("name"),
                value: Some(Probe { path: rest, ..self }),
            }),
            _ => Err(self.stop(Asked::Map)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        match self.path.split_first() {
            Some((Step::Element, rest)) => {
                v.visit_seq(OneElement(Some(Probe { path: rest, ..self })))
            }
            _ => Err(self.stop(Asked::Seq)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Stop> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Stop> {
        v.visit_newtype_struct(Probe {
            spanned: name == SPANNED_NAME,
            ..self
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct enum identifier ignored_any
    }
}

/// A mapping of one entry: the next step's key, then the probe.
struct OneEntry<'a> {
    key: Option<&'static str>,
    value: Option<Probe<'a>>,
}

impl<'de> MapAccess<'de> for OneEntry<'_> {
    type Error = Stop;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, s: K) -> Result<Option<K::Value>, Stop> {
        match self.key.take() {
            Some(k) => s.deserialize(k.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, s: V) -> Result<V::Value, Stop> {
        s.deserialize(self.value.take().ok_or(Stop)?)
    }
}

/// A sequence of one element: the probe.
struct OneElement<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        s: T,
    ) -> Result<Option<T::Value>, Stop> {
        self.0.take().map(|p| s.deserialize(p)).transpose()
    }
}

/// `Spanned`'s marked map: the marker, then `value:` holding the probe.
struct SpannedMap<'a> {
    state: u8,
    inner: Option<Probe<'a>>,
}

impl<'de> MapAccess<'de> for SpannedMap<'_> {
    type Error = Stop;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, s: K) -> Result<Option<K::Value>, Stop> {
        let key = match self.state {
            0 => SPANNED_MARKER,
            1 => "value",
            _ => return Ok(None),
        };
        s.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, s: V) -> Result<V::Value, Stop> {
        self.state += 1;
        match self.state {
            1 => s.deserialize(().into_deserializer()),
            _ => s.deserialize(self.inner.take().ok_or(Stop)?),
        }
    }
}

#[cfg(test)]
mod tests;
