//! How a rule's pattern is matched: the `match` key of a rule in the
//! configuration and the `match_type` column of a list file.
//!
//! It lives with the list files, the lowest layer that names it, so that the
//! file formats need nothing from the configuration above them.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    Exact,
    StartsWith,
    Contains,
    EndsWith,
    #[default]
    Wildcard,
    Regex,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Exact => "exact",
            MatchType::StartsWith => "starts_with",
            MatchType::Contains => "contains",
            MatchType::EndsWith => "ends_with",
            MatchType::Wildcard => "wildcard",
            MatchType::Regex => "regex",
        }
    }

    pub fn parse(s: &str) -> Option<MatchType> {
        Some(match s.trim() {
            "exact" => MatchType::Exact,
            "starts_with" | "prefix" => MatchType::StartsWith,
            "contains" => MatchType::Contains,
            "ends_with" | "suffix" => MatchType::EndsWith,
            "wildcard" => MatchType::Wildcard,
            "regex" => MatchType::Regex,
            _ => return None,
        })
    }
}
