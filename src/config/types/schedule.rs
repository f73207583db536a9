//! `schedules:` and the `schedule:` of a rule: opening hours and closed dates.

use super::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub timezone: S<String>,
    #[serde(default)]
    pub open: Vec<WindowConfig>,
    #[serde(default)]
    pub closed_dates: Vec<S<String>>,
}

/// `{ days: mon-fri, from: "08:00", to: "18:00" }`; `days` takes a day, a range
/// (`mon-fri`, `fri-mon`), a comma list (`mon,wed,fri`) or `daily`, or a YAML
/// sequence of those (`[fri, sat]`). Each value keeps its place so a bad time
/// is reported on its own line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    pub days: S<DaysConfig>,
    pub from: S<String>,
    pub to: S<String>,
}

/// The `days:` of a window, as written: `"fri,sat"` or `[fri, sat]` (kept
/// as the comma list both mean).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaysConfig(pub String);

impl From<&str> for DaysConfig {
    fn from(s: &str) -> Self {
        DaysConfig(s.to_string())
    }
}

impl<'de> Deserialize<'de> for DaysConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = DaysConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("days as text (`mon-fri`, `fri,sat`, `daily`) or a list (`[fri, sat]`)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DaysConfig, E> {
                Ok(DaysConfig(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<DaysConfig, A::Error> {
                let mut items: Vec<String> = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(DaysConfig(items.join(",")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `{ outside: NAME }` or `{ inside: NAME }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRef {
    pub inside: Option<String>,
    pub outside: Option<String>,
}
