//! TEMPORARY stub (replaced by the leaves branch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Region(u8);
impl Region {
    pub fn parse(code: &str) -> Option<Region> {
        (code.len() == 2).then_some(Region(0))
    }
}
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Caller {
    pub raw: String,
    pub e164: Option<String>,
    pub anonymous: bool,
}
pub fn normalize(raw: &str, presentation_restricted: bool, _region: Region) -> Caller {
    let raw = raw.trim();
    let anonymous = presentation_restricted
        || raw.is_empty()
        || [
            "anonymous",
            "unknown",
            "private",
            "restricted",
            "unavailable",
            "blocked",
        ]
        .iter()
        .any(|w| raw.eq_ignore_ascii_case(w));
    let e164 = raw.starts_with('+').then(|| raw.to_string());
    Caller {
        raw: raw.to_string(),
        e164,
        anonymous,
    }
}
