//! Caller-ID normalisation: the raw string a PBX sends → one [`Caller`] with
//! an E.164 form (when there is one) and an anonymity flag.
//!
//! Providers send the same caller as `+15551234567`, `5551234567`,
//! `(555) 123-4567` or `0115551234567`; rules are written once, in E.164, so
//! every caller ID is brought to E.164 before matching. The raw form is kept
//! too, because some rules (`anonymous`, SIP user names) match what was sent.
//!
//! Runs on every call, so the common case (`+` and digits) is a byte scan with
//! one allocation, and the `phonenumber` crate — whose metadata-driven parser
//! is the only thing that knows national and international prefixes — is only
//! consulted for short, digits-only strings.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;

use phonenumber::country::Id;
use phonenumber::{Mode, PhoneNumber};

/// Longest trimmed caller ID that is handed to the phonenumber parser. The
/// longest real dialled form (`011` + 15 digits + separators) fits easily;
/// anything longer is junk and is not worth parsing.
const MAX_PARSE_LEN: usize = 32;

/// E.164 allows at most 15 digits after the `+`.
const MAX_E164_DIGITS: usize = 15;

/// Caller IDs that PBXs and carriers use to say "no number" (compared case-
/// insensitively). `withheld` is what UK carriers send.
const ANONYMOUS_WORDS: &[&str] = &[
    "anonymous",
    "unknown",
    "private",
    "restricted",
    "unavailable",
    "blocked",
    "withheld",
];

/// The region whose dialling rules apply to national numbers: an ISO 3166
/// alpha-2 code known to libphonenumber's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl Region {
    /// `"US"`, `"nl"`, `" GB "` → the region; an unknown or non-two-letter
    /// code (`"UK"`, `"USA"`, `""`) → `None`, so config validation can point
    /// at the bad value instead of silently using a default.
    pub fn parse(code: &str) -> Option<Region> {
        let code = code.trim();
        let bytes = code.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        let upper = std::str::from_utf8(&upper).ok()?;
        Id::from_str(upper).ok().map(Region)
    }

    /// The upper-case ISO code, e.g. `"US"`.
    pub fn code(&self) -> &str {
        self.0.as_ref()
    }

    /// The phonenumber crate's id, for callers that need the crate directly.
    pub fn id(&self) -> Id {
        self.0
    }
}

impl Default for Region {
    /// US: the default of `normalize.default_region` in the config.
    fn default() -> Self {
        Region(Id::US)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One caller, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller ID as received, trimmed of surrounding whitespace.
    pub raw: String,
    /// `+` and 1–15 digits, when the caller ID is a number.
    pub e164: Option<String>,
    /// The caller hid their identity: no number, an "anonymous" word, or the
    /// PBX's presentation-restricted flag.
    pub anonymous: bool,
}

/// Normalises one caller ID.
///
/// Anonymous when any of these holds:
/// - the trimmed caller ID is empty;
/// - it is one of [`ANONYMOUS_WORDS`] (any case), optionally as the user part
///   of a SIP URI: `anonymous@anonymous.invalid` (RFC 3323),
///   `sip:Anonymous@host`, `sips:withheld@host`;
/// - `presentation_restricted` is set. A restricted caller whose number the PBX
///   knows still gets its E.164 form, so a blacklist can block it.
///
/// E.164 form: `+` followed by 1–15 digits (separators ` -.()` ignored) is
/// taken as is; otherwise a string of ASCII digits and separators up to
/// [`MAX_PARSE_LEN`] bytes is parsed in `region` (national `0…`, international
/// `00…`/`011…`, bare national digits) and kept only if its length is possible
/// for the resulting country. Anything else — letters, SIP URIs, non-ASCII
/// digits — has no E.164 form.
pub fn normalize(raw: &str, presentation_restricted: bool, region: Region) -> Caller {
    let trimmed = raw.trim();
    let anonymous = presentation_restricted || is_anonymous_word(trimmed);
    let e164 = if trimmed.is_empty() {
        None
    } else {
        to_e164(trimmed, region)
    };
    Caller {
        raw: trimmed.to_string(),
        e164,
        anonymous,
    }
}

/// Empty, or an anonymous word, bare or as a SIP user part.
fn is_anonymous_word(s: &str) -> bool {
    if s.is_empty() {
        return true;
    }
    let s = strip_prefix_ci(s, "sips:")
        .or_else(|| strip_prefix_ci(s, "sip:"))
        .unwrap_or(s);
    let user = s.split_once('@').map_or(s, |(user, _)| user);
    ANONYMOUS_WORDS.iter().any(|w| user.eq_ignore_ascii_case(w))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')')
}

/// The digits of `s` with separators dropped, or `None` when `s` holds
/// anything but ASCII digits and separators (after an optional leading `+`).
fn digits_only(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len() + 1);
    for b in s.bytes() {
        if b.is_ascii_digit() {
            out.push(b as char);
        } else if !is_separator(b) {
            return None;
        }
    }
    Some(out)
}

fn to_e164(s: &str, region: Region) -> Option<String> {
    if s.len() > MAX_PARSE_LEN * 2 {
        // Even the fast path will not find 15 digits worth keeping in this.
        return None;
    }
    if let Some(rest) = s.strip_prefix('+') {
        // Fast path: already international. One allocation, no parser.
        let digits = digits_only(rest)?;
        let ok = (1..=MAX_E164_DIGITS).contains(&digits.len()) && !digits.starts_with('0');
        return ok.then(|| {
            let mut e164 = digits;
            e164.insert(0, '+');
            e164
        });
    }
    if s.len() > MAX_PARSE_LEN {
        return None;
    }
    let digits = digits_only(s)?;
    if digits.is_empty() {
        return None;
    }
    parse_national(&digits, region)
}

/// National, `00`/`011`-prefixed or bare digits → E.164, using
/// libphonenumber's metadata for `region`.
///
/// The parser is only ever given ASCII digits (so its grammar for letters,
/// extensions and RFC 3966 URIs is never exercised), yet it has panicked on
/// malformed input before (whisperfish/rust-phonenumber#43, found by fuzzing).
/// A caller ID is attacker-controlled and a panic here would drop a live call,
/// so `catch_unwind` is the last guard: a panic means "no E.164 form". This
/// relies on the default `panic = "unwind"`, which the crate's profiles keep.
fn parse_national(digits: &str, region: Region) -> Option<String> {
    panic::catch_unwind(AssertUnwindSafe(|| {
        strip_idd(digits, region).or_else(|| parse_with_metadata(digits, region))
    }))
    .ok()
    .flatten()
}

/// `00…` (NL), `011…` (US) and the like: the region's international prefix
/// followed by a country code is `+` and the rest, exactly as the fast path
/// does. Done here rather than by the parser because phonenumber 0.3 mangles
/// some numbers after a country code (`011 44 1234 567890` comes back as
/// `+44234567890`). As in libphonenumber, a `0` right after the prefix means
/// the prefix was not an international one (no country code starts with 0).
fn strip_idd(digits: &str, region: Region) -> Option<String> {
    let meta = phonenumber::metadata::DATABASE.by_id(region.code())?;
    let idd = meta.international_prefix()?.find(digits)?;
    if idd.start() != 0 {
        return None;
    }
    let rest = &digits[idd.end()..];
    if rest.is_empty() || rest.starts_with('0') || rest.len() > MAX_E164_DIGITS {
        return None;
    }
    let mut e164 = String::with_capacity(rest.len() + 1);
    e164.push('+');
    e164.push_str(rest);
    Some(e164)
}

fn parse_with_metadata(digits: &str, region: Region) -> Option<String> {
    let parsed = phonenumber::parse(Some(region.0), digits).ok()?;
    if !possible_length(&parsed) {
        return None;
    }
    let e164 = parsed.format().mode(Mode::E164).to_string();
    let ok = e164.len() <= MAX_E164_DIGITS + 1 && e164.starts_with('+');
    ok.then_some(e164)
}

/// Whether the national number's length is within the range of numbers of its
/// country. Rejects internal extensions (`1001`) and US 7-digit local numbers,
/// which the parser would otherwise turn into a plausible-looking but wrong
/// `+11001`. Gaps inside the range are tolerated: metadata lags reality and a
/// wrong "None" is no better than a lenient answer.
fn possible_length(number: &PhoneNumber) -> bool {
    // By calling code, not `number.metadata()`: the latter needs the number to
    // match a region's patterns, and fictional `555` numbers match none.
    let metas = phonenumber::metadata::DATABASE.by_code(&number.code().value());
    let Some(meta) = metas.as_deref().and_then(|m| {
        m.iter()
            .find(|m| m.is_main_country_for_code())
            .or_else(|| m.first())
            .copied()
    }) else {
        return false;
    };
    // phonenumber 0.3 leaves the general descriptor's lengths empty, so take
    // the range over every type of subscriber number (short codes and
    // emergency numbers excluded: they are not caller IDs).
    let d = meta.descriptors();
    let kinds = [
        Some(d.general()),
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ];
    let lengths = kinds
        .into_iter()
        .flatten()
        .flat_map(|k| k.possible_length());
    let (min, max) = lengths.fold((u16::MAX, 0), |(lo, hi), &n| (lo.min(n), hi.max(n)));
    if min > max {
        // No length data for this country: do not second-guess the parser.
        return true;
    }
    let len = number.national().to_string().len() as u16;
    (min..=max).contains(&len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Region {
        Region::default()
    }

    fn nl() -> Region {
        Region::parse("nl").expect("NL")
    }

    fn e164(raw: &str, region: Region) -> Option<String> {
        normalize(raw, false, region).e164
    }

    #[test]
    fn region_parse() {
        assert_eq!(Region::parse("US"), Some(Region::default()));
        assert_eq!(
            Region::parse(" nl ").map(|r| r.code().to_string()),
            Some("NL".into())
        );
        assert_eq!(
            Region::parse("gB").map(|r| r.to_string()),
            Some("GB".into())
        );
        for bad in ["", "U", "USA", "UK", "ZZ", "1A", "ñl", "001"] {
            assert_eq!(Region::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Region::default().code(), "US");
    }

    #[test]
    fn e164_fast_path() {
        assert_eq!(e164("+15551234567", us()).as_deref(), Some("+15551234567"));
        assert_eq!(
            e164("  +1 (555) 123-4567 ", nl()).as_deref(),
            Some("+15551234567")
        );
        assert_eq!(
            e164("+31.20.123.4567", us()).as_deref(),
            Some("+31201234567")
        );
        assert_eq!(e164("+1", us()).as_deref(), Some("+1"));
        assert_eq!(
            e164("+123456789012345", us()).as_deref(),
            Some("+123456789012345")
        );
        // 16 digits, a leading 0, no digits, or a second `+` are not E.164.
        assert_eq!(e164("+1234567890123456", us()), None);
        assert_eq!(e164("+0123", us()), None);
        assert_eq!(e164("+", us()), None);
        assert_eq!(e164("+ - ()", us()), None);
        assert_eq!(e164("++15551234567", us()), None);
        assert_eq!(e164("+1555123456a", us()), None);
    }

    #[test]
    fn e164_national_and_international_prefixes() {
        assert_eq!(e164("0201234567", nl()).as_deref(), Some("+31201234567"));
        assert_eq!(e164("020-123 4567", nl()).as_deref(), Some("+31201234567"));
        assert_eq!(e164("0031201234567", nl()).as_deref(), Some("+31201234567"));
        assert_eq!(
            e164("011441234567890", us()).as_deref(),
            Some("+441234567890")
        );
        assert_eq!(e164("5551234567", us()).as_deref(), Some("+15551234567"));
        assert_eq!(
            e164("(555) 123-4567", us()).as_deref(),
            Some("+15551234567")
        );
        assert_eq!(e164("555.123.4567", us()).as_deref(), Some("+15551234567"));
        assert_eq!(e164("15551234567", us()).as_deref(), Some("+15551234567"));
        assert_eq!(
            e164("1 (555) 123-4567", us()).as_deref(),
            Some("+15551234567")
        );
        assert_eq!(e164("06 12345678", nl()).as_deref(), Some("+31612345678"));
        let gb = Region::parse("GB").expect("GB");
        assert_eq!(e164("020 7946 0018", gb).as_deref(), Some("+442079460018"));
        assert_eq!(
            e164("00 1 555 123 4567", gb).as_deref(),
            Some("+15551234567")
        );
        // The same digits mean different things in different regions.
        assert_eq!(e164("0031201234567", us()), None);
        // An international prefix followed by 0, or by too many digits, is not E.164.
        assert_eq!(e164("0110123456789", us()), None);
        assert_eq!(e164("0111234567890123456", us()), None);
    }

    #[test]
    fn e164_rejects_extensions_and_local_numbers() {
        // An internal extension or a 7-digit local number has no E.164 form.
        assert_eq!(e164("1001", us()), None);
        assert_eq!(e164("1234567", us()), None);
        assert_eq!(e164("0", nl()), None);
    }

    #[test]
    fn e164_junk_is_none() {
        for junk in [
            "sip:+15551234567@example.com",
            "sip:alice@example.com",
            "alice",
            "555-CALL-NOW",
            "5551234567;ext=12",
            "+1 555 123 4567 x12",
            "#31#5551234567",
            "*67",
            "- . ()",
        ] {
            let c = normalize(junk, false, us());
            assert_eq!(c.e164, None, "{junk:?}");
            assert!(!c.anonymous, "{junk:?}");
            assert_eq!(c.raw, junk.trim());
        }
    }

    #[test]
    fn very_long_input() {
        let long = "5".repeat(10_000);
        assert_eq!(e164(&long, us()), None);
        let plus = format!("+{long}");
        assert_eq!(e164(&plus, us()), None);
        // 33 bytes of digits: past the parser's cap even though it is digits.
        assert_eq!(e164(&"1".repeat(33), us()), None);
        let spaced = format!("+1{}5551234567", " ".repeat(100));
        assert_eq!(e164(&spaced, us()), None);
        let c = normalize(&long, false, us());
        assert_eq!(c.raw.len(), 10_000);
        assert!(!c.anonymous);
    }

    #[test]
    fn non_ascii() {
        // Full-width and Arabic-Indic digits are not ASCII digits: no E.164 form.
        for raw in [
            "＋１５５５１２３４５６７",
            "٥٥٥١٢٣٤٥٦٧",
            "+1555123456７",
            "Ånonymous",
            "0201234567é",
        ] {
            let c = normalize(raw, false, nl());
            assert_eq!(c.e164, None, "{raw:?}");
            assert!(!c.anonymous, "{raw:?}");
        }
        // A multi-byte char where the `sip:` prefix would end must not split it.
        assert!(!normalize("siñ:x", false, us()).anonymous);
        assert!(!normalize("sip\u{e9}anonymous", false, us()).anonymous);
    }

    #[test]
    fn anonymous_words_any_case() {
        for word in [
            "anonymous",
            "Anonymous",
            "ANONYMOUS",
            "unknown",
            "Unknown",
            "private",
            "PRIVATE",
            "Restricted",
            "unavailable",
            "UNAVAILABLE",
            "blocked",
            "Withheld",
            "  anonymous  ",
            "",
            "   ",
        ] {
            let c = normalize(word, false, us());
            assert!(c.anonymous, "{word:?}");
            assert_eq!(c.e164, None, "{word:?}");
            assert_eq!(c.raw, word.trim());
        }
    }

    #[test]
    fn anonymous_sip_user_parts() {
        for raw in [
            "anonymous@anonymous.invalid",
            "sip:anonymous@anonymous.invalid",
            "SIP:Anonymous@10.0.0.1",
            "sips:restricted@pbx.example",
            "Unknown@host",
        ] {
            assert!(normalize(raw, false, us()).anonymous, "{raw:?}");
        }
        for raw in [
            "anonymously",
            "sip:alice@anonymous.invalid",
            "not-anonymous",
            "anonymous1",
        ] {
            assert!(!normalize(raw, false, us()).anonymous, "{raw:?}");
        }
    }

    #[test]
    fn restricted_flag() {
        // The PBX knows the number but must not show it: anonymous, still E.164.
        let c = normalize("+15551234567", true, us());
        assert!(c.anonymous);
        assert_eq!(c.e164.as_deref(), Some("+15551234567"));
        let c = normalize("0201234567", true, nl());
        assert!(c.anonymous);
        assert_eq!(c.e164.as_deref(), Some("+31201234567"));
        // Without a number.
        let c = normalize("", true, us());
        assert!(c.anonymous);
        assert_eq!(c.e164, None);
        assert_eq!(c.raw, "");
        let c = normalize("anonymous", true, us());
        assert!(c.anonymous);
        assert_eq!(c.e164, None);
        // And the flag off with a number: not anonymous.
        assert!(!normalize("+15551234567", false, us()).anonymous);
    }
}
