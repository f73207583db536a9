//! Caller-ID normalisation: the raw string a PBX sends → one [`Caller`] with
//! an E.164 form (when there is one) and an anonymity flag.
//!
//! Providers send the same caller as `+15551234567`, `5551234567`,
//! `(555) 123-4567` or `0115551234567`; rules are written once, in E.164, so
//! every caller ID is brought to E.164 before matching. The raw form is kept
//! too, because some rules (`anonymous`, SIP user names) match what was sent.
//!
//! Runs on every call, so the common case (`+` and digits) is a byte scan with
//! one allocation. National and international prefixes are read with a
//! [`Dialing`] per region, compiled from libphonenumber's metadata (through
//! the `phonenumber` crate) when the rule set is built, never on a call.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id;

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

/// Normalises one caller ID in `region`, building that region's dialling
/// rules on the spot. Convenient for tests and one-off tools; the call path
/// uses the [`Dialing`] compiled with the rule set instead, so that no call
/// ever waits for metadata to load or a regex to compile.
#[cfg(test)]
pub(crate) fn normalize(raw: &str, presentation_restricted: bool, region: Region) -> Caller {
    match Dialing::new(region) {
        Ok(d) => d.normalize(raw, presentation_restricted),
        Err(_) => Dialing::plus_only(region).normalize(raw, presentation_restricted),
    }
}

/// One region's dialling rules, compiled once from libphonenumber's metadata
/// when a rule set is built, and then used by every call on a trunk in that
/// region.
///
/// Why not call the `phonenumber` crate per call: it loads its whole metadata
/// database on first use (80–190 ms in a fresh process), compiles each
/// region's regexes lazily on the first number of that region, and keeps the
/// compiled regexes in one process-wide `Mutex` holding 100 entries, so every
/// parse takes a global lock and many regions evict each other. The first
/// national-format caller after a start missed the decision deadline and was
/// let through. Here everything is compiled before a rule set is installed;
/// the call path runs only pre-built regexes, which need no lock and no cache.
///
/// The algorithm follows libphonenumber's `parseHelper` for a string of
/// digits in a default region: international (IDD) prefix, a country code
/// written without `+`, the national prefix with its transform rule, and the
/// possible lengths of the country.
#[derive(Debug, Clone)]
pub struct Dialing {
    region: Region,
    /// The country calling code, e.g. `"1"`, `"31"`.
    country_code: String,
    /// The international prefix (`011`, `00`, `810`, …), anchored at the start.
    idd: Option<regex::Regex>,
    /// The national prefix for parsing, anchored at the start (`0`, `1`, or
    /// a pattern with capture groups where a transform rule applies).
    national_prefix: Option<regex::Regex>,
    /// The replacement for a matched national prefix (`9$1`, `$1`), with
    /// group references spelled `${N}` for the regex crate.
    transform: Option<String>,
    /// The general national-number pattern, anchored at both ends.
    general: Option<regex::Regex>,
    /// Lengths of a national significant number (all number types), sorted.
    lengths: Vec<u16>,
    /// Lengths that only a locally dialled number has (no area code).
    local_lengths: Vec<u16>,
}

/// What libphonenumber's `testNumberLength` says of a national number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// The shortest and longest national significant numbers libphonenumber
/// accepts at all.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

impl Dialing {
    /// Compiles `region`'s rules. Touches the `phonenumber` metadata database
    /// (loading it on first use): call it while building a rule set, never
    /// on the call path.
    pub fn new(region: Region) -> Result<Dialing, String> {
        let meta = phonenumber::metadata::DATABASE
            .by_id(region.code())
            .ok_or_else(|| format!("no dialling metadata for region {region}"))?;
        let compile = |what: &str, src: &str, whole: bool| {
            let anchored = if whole {
                format!("^(?:{src})$")
            } else {
                format!("^(?:{src})")
            };
            regex::RegexBuilder::new(&anchored)
                .ignore_whitespace(true)
                .build()
                .map_err(|e| format!("region {region}: bad {what} pattern in metadata: {e}"))
        };
        let idd = meta
            .international_prefix()
            .map(|re| compile("international prefix", re.as_str(), false))
            .transpose()?;
        let national_prefix = match (meta.national_prefix_for_parsing(), meta.national_prefix()) {
            (Some(re), _) => Some(compile("national prefix", re.as_str(), false)?),
            (None, Some(p)) if !p.is_empty() => {
                Some(compile("national prefix", &regex::escape(p), false)?)
            }
            _ => None,
        };
        let transform = meta
            .national_prefix_transform_rule()
            .filter(|t| !t.is_empty())
            .map(braced_group_refs);
        let d = meta.descriptors();
        let general = d.general().national_number().as_str();
        let general = if general.is_empty() {
            None
        } else {
            Some(compile("general number", general, true)?)
        };
        // phonenumber 0.3 leaves the general descriptor's lengths empty, so
        // take the union over every type of subscriber number, as
        // libphonenumber's metadata builder does (short codes and emergency
        // numbers excluded: they are not caller IDs).
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
        let mut lengths: Vec<u16> = kinds
            .iter()
            .flatten()
            .flat_map(|k| k.possible_length().iter().copied())
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        let mut local_lengths: Vec<u16> = kinds
            .iter()
            .flatten()
            .flat_map(|k| k.possible_local_length().iter().copied())
            .filter(|n| !lengths.contains(n))
            .collect();
        local_lengths.sort_unstable();
        local_lengths.dedup();
        let dialing = Dialing {
            region,
            country_code: meta.country_code().to_string(),
            idd,
            national_prefix,
            transform,
            general,
            lengths,
            local_lengths,
        };
        // Run every regex once so that nothing is left to initialise lazily
        // for the first caller.
        for sample in ["0", "00", "011", "1", "0123456789", "5551234567"] {
            let _ = dialing.national_to_e164(sample);
        }
        Ok(dialing)
    }

    /// Rules that know only `+` numbers: the fallback when a region has no
    /// metadata (callers in national format then have no E.164 form).
    pub(crate) fn plus_only(region: Region) -> Dialing {
        Dialing {
            region,
            country_code: String::new(),
            idd: None,
            national_prefix: None,
            transform: None,
            general: None,
            lengths: Vec::new(),
            local_lengths: Vec::new(),
        }
    }

    pub fn region(&self) -> Region {
        self.region
    }

    /// Normalises one caller ID.
    ///
    /// Anonymous when any of these holds:
    /// - the trimmed caller ID is empty;
    /// - it is one of [`ANONYMOUS_WORDS`] (any case), optionally as the user
    ///   part of a SIP URI: `anonymous@anonymous.invalid` (RFC 3323),
    ///   `sip:Anonymous@host`, `sips:withheld@host`;
    /// - `presentation_restricted` is set. A restricted caller whose number
    ///   the PBX knows still gets its E.164 form, so a blacklist can block it.
    ///
    /// E.164 form: `+` followed by 1–15 digits (separators ` -.()` ignored)
    /// is taken as is; otherwise a string of ASCII digits and separators up
    /// to [`MAX_PARSE_LEN`] bytes is read with this region's rules (national
    /// `0…`, international `00…`/`011…`, bare national digits) and kept only
    /// if its length is possible for the country. Anything else — letters,
    /// SIP URIs, non-ASCII digits — has no E.164 form.
    pub fn normalize(&self, raw: &str, presentation_restricted: bool) -> Caller {
        let trimmed = raw.trim();
        let anonymous = presentation_restricted || is_anonymous_word(trimmed);
        let e164 = if trimmed.is_empty() {
            None
        } else {
            self.to_e164(trimmed)
        };
        Caller {
            raw: trimmed.to_string(),
            e164,
            anonymous,
        }
    }

    fn to_e164(&self, s: &str) -> Option<String> {
        if s.len() > MAX_PARSE_LEN * 2 {
            // Even the fast path will not find 15 digits worth keeping in this.
            return None;
        }
        if let Some(rest) = s.strip_prefix('+') {
            // Fast path: already international. One allocation, no regex.
            let digits = digits_only(rest)?;
            return plus(&digits);
        }
        if s.len() > MAX_PARSE_LEN {
            return None;
        }
        let digits = digits_only(s)?;
        if digits.is_empty() {
            return None;
        }
        self.national_to_e164(&digits)
    }

    /// ASCII digits dialled in this region → E.164.
    fn national_to_e164(&self, digits: &str) -> Option<String> {
        if self.country_code.is_empty() {
            return None;
        }
        // `00…` (NL), `011…` (US) and the like: the international prefix
        // followed by a country code is `+` and the rest, exactly as the
        // fast path reads it. As in libphonenumber, a `0` right after the
        // prefix means it was not an international prefix (no country code
        // starts with 0).
        if let Some(m) = self.idd.as_ref().and_then(|re| re.find(digits)) {
            let rest = &digits[m.end()..];
            if !rest.is_empty() && !rest.starts_with('0') {
                return plus(rest);
            }
        }
        let national = self.national_number(digits);
        let len = national.len();
        if !(MIN_NSN..=MAX_NSN).contains(&len) {
            return None;
        }
        // The length must be within the range of numbers of the country.
        // Rejects internal extensions (`1001`) and US 7-digit local numbers,
        // which would otherwise become a plausible-looking but wrong
        // `+11001`. Gaps inside the range are tolerated: metadata lags
        // reality and a wrong "None" is no better than a lenient answer.
        if let (Some(&min), Some(&max)) = (self.lengths.first(), self.lengths.last())
            && !(usize::from(min)..=usize::from(max)).contains(&len)
        {
            return None;
        }
        let mut e164 = String::with_capacity(1 + self.country_code.len() + len);
        e164.push('+');
        e164.push_str(&self.country_code);
        e164.push_str(&national);
        (e164.len() <= MAX_E164_DIGITS + 1).then_some(e164)
    }

    /// The national significant number in `digits` (no IDD): a country code
    /// written without `+` is dropped where the rest reads better as a
    /// national number, then the national prefix is stripped or transformed
    /// where what remains is still a possible number.
    fn national_number<'a>(&self, digits: &'a str) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow;
        let mut number = Cow::Borrowed(digits);
        if let Some(rest) = digits.strip_prefix(self.country_code.as_str()) {
            let stripped = self.strip_national_prefix(rest);
            let rest_matches = self.general_match(stripped.as_deref().unwrap_or(rest));
            if (!self.general_match(digits) && rest_matches)
                || self.test_length(digits.len()) == Length::TooLong
            {
                number = stripped.map_or(Cow::Borrowed(rest), Cow::Owned);
            }
        }
        match self.strip_national_prefix(&number) {
            Some(potential)
                if !matches!(
                    self.test_length(potential.len()),
                    Length::TooShort | Length::LocalOnly | Length::Invalid
                ) =>
            {
                Cow::Owned(potential)
            }
            _ => number,
        }
    }

    /// libphonenumber's `maybeStripNationalPrefixAndCarrierCode`: the number
    /// without its national prefix (or with the prefix transformed), unless
    /// doing so would turn a number that matched the general pattern into
    /// one that does not.
    fn strip_national_prefix(&self, number: &str) -> Option<String> {
        let re = self.national_prefix.as_ref()?;
        if number.is_empty() {
            return None;
        }
        let caps = re.captures(number)?;
        let whole = caps.get(0)?;
        let viable = self.general_match(number);
        // As in libphonenumber: the last group (the whole match when the
        // pattern has none) decides whether the transform rule applies.
        let last = caps.get(caps.len() - 1);
        let result = match (&self.transform, last) {
            (Some(rule), Some(_)) => {
                let mut out = String::with_capacity(number.len() + 2);
                caps.expand(rule, &mut out);
                out.push_str(&number[whole.end()..]);
                out
            }
            _ => number[whole.end()..].to_string(),
        };
        if viable && !self.general_match(&result) {
            return None;
        }
        Some(result)
    }

    fn general_match(&self, number: &str) -> bool {
        self.general.as_ref().is_some_and(|re| re.is_match(number))
    }

    /// libphonenumber's `testNumberLength` against the general descriptor.
    fn test_length(&self, len: usize) -> Length {
        let (Some(&min), Some(&max)) = (self.lengths.first(), self.lengths.last()) else {
            return Length::Invalid;
        };
        let n = u16::try_from(len).unwrap_or(u16::MAX);
        if self.local_lengths.contains(&n) {
            Length::LocalOnly
        } else if n < min {
            Length::TooShort
        } else if n > max {
            Length::TooLong
        } else if self.lengths.contains(&n) {
            Length::Possible
        } else {
            Length::Invalid
        }
    }
}

/// `$1` → `${1}`: Java's group references (libphonenumber's metadata) read
/// the digits after `$` as a group number only while such a group exists;
/// the regex crate would read `$15` as group 15.
fn braced_group_refs(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$'
            && let Some(d) = chars.peek().copied().filter(char::is_ascii_digit)
        {
            chars.next();
            out.push_str("${");
            out.push(d);
            out.push('}');
        } else {
            out.push(c);
        }
    }
    out
}

/// `digits` (no `+`) as E.164 when it can be one: 1–15 digits, not starting
/// with 0 (no country code does).
fn plus(digits: &str) -> Option<String> {
    let ok = (1..=MAX_E164_DIGITS).contains(&digits.len()) && !digits.starts_with('0');
    ok.then(|| {
        let mut e164 = String::with_capacity(digits.len() + 1);
        e164.push('+');
        e164.push_str(digits);
        e164
    })
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

#[cfg(test)]
mod tests;
